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
        var listen = new Option<string[]>("--listen")
        {
            Description = $"Address and port to listen on (HOST:PORT, IPv6 as [::1]:PORT); repeat to listen on several. Default {ServerOptions.DefaultListen}.",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
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
        var metrics = new Option<bool>("--metrics")
        {
            Description = "Serve Prometheus metrics on GET /metrics (unauthenticated: secret ARNs appear as labels; expose only to your monitoring).",
        };
        var tlsCert = new Option<string>("--tls-cert")
        {
            Description = "Serve HTTPS (on every --listen address) with this PEM certificate (chain); needs --tls-key. TLS 1.2 or later.",
            HelpName = "FILE",
        };
        var tlsKey = new Option<string>("--tls-key")
        {
            Description = "The unencrypted PEM private key of --tls-cert.",
            HelpName = "FILE",
        };
        var tlsSelfSigned = new Option<bool>("--tls-self-signed")
        {
            Description = "Serve HTTPS (on every --listen address) with a self-signed certificate made on first start and kept in DATA_DIR/tls/ "
                + "(cert.pem, key.pem); clients pin it, e.g. aws --ca-bundle DATA_DIR/tls/cert.pem.",
        };
        var trustedProxy = new Option<string[]>("--trusted-proxy")
        {
            Description = "CIDR (or address) of a reverse proxy whose X-Forwarded-For and X-Forwarded-Proto are believed; repeatable. "
                + "Without it those headers are ignored and the TCP peer is the source IP.",
            HelpName = "CIDR",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var rateLimit = new Option<string>("--rate-limit")
        {
            Description = "Requests per second allowed per access key (token bucket; excess answered ThrottlingException). Default: no limit.",
            HelpName = "RPS",
        };
        var rateBurst = new Option<string>("--rate-burst")
        {
            Description = "Requests an idle access key may make at once under --rate-limit. Default: the rate rounded up.",
            HelpName = "N",
        };
        var passphraseFile = new Option<string?>("--root-key-passphrase-file")
        {
            Description = "Derive the root key from the passphrase in this file (PBKDF2-HMAC-SHA256, 600,000 iterations, salt kept in the store) "
                + "instead of DATA_DIR/root.key; TUMBLER_ROOT_KEY_PASSPHRASE likewise. Only for a store created this way.",
            HelpName = "FILE",
        };
        var command = new Command("serve", "Run the Tumbler server.")
        {
            dataDir, listen, region, accountId, acceptAny, tlsCert, tlsKey, tlsSelfSigned, trustedProxy, rateLimit, rateBurst, audit, metrics, passphraseFile,
        };
        command.SetAction(async (parse, ct) =>
        {
            var account = parse.GetValue(accountId)!;
            if (account.Length != 12 || !account.All(char.IsAsciiDigit))
            {
                await Console.Error.WriteLineAsync($"tumbler: --account-id must be 12 digits, got '{account}'.");
                return 1;
            }
            ServerOptions options;
            try
            {
                options = new ServerOptions
                {
                    DataDirectory = parse.GetValue(dataDir)!,
                    Listen = parse.GetValue(listen) is { Length: > 0 } addresses ? addresses : defaults.Listen,
                    Regions = parse.GetValue(region)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                    AccountId = account,
                    AcceptAnyCredentials = parse.GetValue(acceptAny),
                    Audit = parse.GetValue(audit)!,
                    Metrics = parse.GetValue(metrics),
                    TlsCertificateFile = parse.GetValue(tlsCert),
                    TlsKeyFile = parse.GetValue(tlsKey),
                    TlsSelfSigned = parse.GetValue(tlsSelfSigned),
                    TrustedProxies = parse.GetValue(trustedProxy) ?? [],
                    RateLimit = Positive("--rate-limit", parse.GetValue(rateLimit), wholeNumber: false),
                    RateBurst = (int?)Positive("--rate-burst", parse.GetValue(rateBurst), wholeNumber: true),
                    Rotation = RotationTuning(),
                    RootKeyPassphraseFile = parse.GetValue(passphraseFile),
                };
                options.Validate();
            }
            catch (StartupException e)
            {
                await Console.Error.WriteLineAsync($"tumbler: {e.Message}");
                return 1;
            }
            return await RunAsync(options, ct);
        });
        return command;
    }

    /// <summary>A positive number given as text, or null when the option is absent; throws <see cref="StartupException"/> naming the option.</summary>
    private static double? Positive(string option, string? text, bool wholeNumber)
    {
        if (text is null)
        {
            return null;
        }
        var style = wholeNumber ? System.Globalization.NumberStyles.None : System.Globalization.NumberStyles.AllowDecimalPoint;
        return double.TryParse(text.Trim(), style, System.Globalization.CultureInfo.InvariantCulture, out var value)
            && double.IsFinite(value) && value > 0 && (!wholeNumber || value <= int.MaxValue)
            ? value
            : throw new StartupException(wholeNumber
                ? $"--{option.TrimStart('-')} {text}: give a positive whole number."
                : $"--{option.TrimStart('-')} {text}: give a positive number of requests per second (such as 50 or 0.5).");
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
            Console.WriteLine($"Tumbler is ready: serving the Secrets Manager API on {string.Join(", ", server.Endpoints)} (regions {string.Join(", ", options.Regions)}, data in {Path.GetFullPath(options.DataDirectory)})");
            await server.WaitForShutdownAsync();
        }
        Console.WriteLine("Tumbler stopped.");
        return 0;
    }
}
