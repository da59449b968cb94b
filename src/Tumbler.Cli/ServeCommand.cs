using System.CommandLine;
using Tumbler.Core.Rotation;
using Tumbler.Server.Hosting;

namespace Tumbler.Cli;

/// <summary><c>tumbler serve</c>: run the server on a data directory.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var defaults = new ServerOptions();
        var dataDir = new Option<string>("--data-dir")
        {
            Description = "Directory holding the store, the root key and the root credentials (created on first start).",
            DefaultValueFactory = _ => defaults.DataDirectory,
        };
        var listen = new Option<string>("--listen")
        {
            Description = "Address and port to listen on (HOST:PORT).",
            DefaultValueFactory = _ => defaults.Listen,
        };
        var region = new Option<string>("--region")
        {
            Description = "Region served, as in ARNs and request signatures; several separated by commas.",
            DefaultValueFactory = _ => defaults.Regions[0],
        };
        var accountId = new Option<string>("--account-id")
        {
            Description = "Account id used in ARNs (12 digits).",
            DefaultValueFactory = _ => defaults.AccountId,
        };
        var acceptAny = new Option<bool>("--accept-any-credentials")
        {
            Description = "INSECURE, for local development: accept any access key with a well-formed signature. Loopback addresses only.",
        };
        var audit = new Option<string>("--audit")
        {
            Description = "file: record every request in DATA_DIR/audit (hash-chained; requests are refused when it cannot be written). none: record nothing.",
            DefaultValueFactory = _ => defaults.Audit,
        };
        audit.AcceptOnlyFromAmong("file", "none");
        var command = new Command("serve", "Run the Tumbler server.") { dataDir, listen, region, accountId, acceptAny, audit };
        command.SetAction(async (parse, ct) =>
        {
            var account = parse.GetValue(accountId)!;
            if (account.Length != 12 || !account.All(char.IsAsciiDigit))
            {
                await Console.Error.WriteLineAsync($"tumbler: --account-id must be 12 digits, got '{account}'.");
                return 1;
            }
            var options = new ServerOptions
            {
                DataDirectory = parse.GetValue(dataDir)!,
                Listen = parse.GetValue(listen)!,
                Regions = parse.GetValue(region)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                AccountId = account,
                AcceptAnyCredentials = parse.GetValue(acceptAny),
                Audit = parse.GetValue(audit)!,
                Rotation = RotationTuning(),
            };
            return await RunAsync(options, ct);
        });
        return command;
    }

    /// <summary>
    /// Rotation timings from the environment (seconds): TUMBLER_ROTATION_LEASE_SECONDS,
    /// TUMBLER_ROTATION_POLL_SECONDS, TUMBLER_ROTATION_RETRY_SECONDS (first retry delay, doubling).
    /// TUMBLER_FAULT_INJECTION=STEP:before|after kills the process at that point of a rotation: for crash tests only.
    /// </summary>
    private static RotationOptions RotationTuning()
    {
        var defaults = new RotationOptions();
        var faultPoint = Environment.GetEnvironmentVariable("TUMBLER_FAULT_INJECTION");
        return defaults with
        {
            LeaseDuration = Seconds("TUMBLER_ROTATION_LEASE_SECONDS") ?? defaults.LeaseDuration,
            PollInterval = Seconds("TUMBLER_ROTATION_POLL_SECONDS") ?? defaults.PollInterval,
            RetryBase = Seconds("TUMBLER_ROTATION_RETRY_SECONDS") ?? defaults.RetryBase,
            StepBoundary = string.IsNullOrEmpty(faultPoint) ? null : point =>
            {
                if (point == faultPoint)
                {
                    Console.Error.WriteLine($"TUMBLER_FAULT_INJECTION: killing the process at {point}");
                    System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL: no cleanup, as a crash
                }
            },
        };

        static TimeSpan? Seconds(string variable) =>
            double.TryParse(Environment.GetEnvironmentVariable(variable), System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0
                ? TimeSpan.FromSeconds(seconds)
                : null;
    }

    private static async Task<int> RunAsync(ServerOptions options, CancellationToken ct)
    {
        if (options.AcceptAnyCredentials)
        {
            await Console.Error.WriteLineAsync(
                "WARNING: --accept-any-credentials is INSECURE: any access key with a well-formed signature is accepted as root. Use it only for local development and tests.");
        }
        TumblerServer server;
        try
        {
            server = await TumblerServer.StartAsync(options, Console.Out, ct);
        }
        catch (StartupException e)
        {
            await Console.Error.WriteLineAsync($"tumbler: {e.Message}");
            return 1;
        }
        await using (server)
        {
            Console.WriteLine($"Tumbler is ready: serving the Secrets Manager API on {server.Endpoint} (regions {string.Join(", ", options.Regions)}, data in {Path.GetFullPath(options.DataDirectory)})");
            await server.WaitForShutdownAsync();
        }
        Console.WriteLine("Tumbler stopped.");
        return 0;
    }
}
