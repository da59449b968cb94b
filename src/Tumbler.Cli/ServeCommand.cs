using System.CommandLine;
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
            Description = $"Directory holding the store, the root key, the root credentials and {ServeSettings.FileName} (created on first start). "
                + $"Default: ${ServeSettings.DataDirEnvironment}, else {defaults.DataDirectory}.",
        };
        var store = new Option<string>("--store")
        {
            Description = "sqlite (default: DATA_DIR/tumbler.db), or a PostgreSQL store several nodes share: postgres://USER:PASSWORD@HOST:PORT/DB"
                + "[?sslmode=verify-full&sslrootcert=CA.pem] or an Npgsql connection string. Keep the password off the command line: "
                + $"set TUMBLER_STORE or \"store\" in {ServeSettings.FileName}.",
            HelpName = "STORE",
        };
        var listen = new Option<string[]>("--listen")
        {
            Description = $"Address and port to listen on (HOST:PORT, IPv6 as [::1]:PORT); repeat to listen on several. Default {ServerOptions.DefaultListen}.",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var region = new Option<string>("--region")
        {
            Description = $"Region served, as in ARNs and request signatures; several separated by commas. Default {defaults.Regions[0]}.",
        };
        var accountId = new Option<string>("--account-id")
        {
            Description = $"Account id used in ARNs (12 digits). Default {defaults.AccountId}.",
        };
        var acceptAny = new Option<bool>("--accept-any-credentials")
        {
            Description = "INSECURE, for local development: accept any access key with a well-formed signature. Loopback addresses only.",
        };
        var audit = new Option<string>("--audit")
        {
            Description = "file (default): record every request in DATA_DIR/audit (hash-chained; requests are refused when it cannot be written). none: record nothing.",
            HelpName = "file|none",
        };
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
        var config = new Option<string>("--config")
        {
            Description = $"Configuration file (JSON) with any of the settings below; default DATA_DIR/{ServeSettings.FileName} when it exists. "
                + "Flags override TUMBLER_* environment variables, which override the file.",
            HelpName = "FILE",
        };
        var printConfig = new Option<bool>("--print-config")
        {
            Description = "Print the effective configuration (secrets masked) as JSON, with where each setting came from, and exit.",
        };
        var logFormat = new Option<string>("--log-format")
        {
            Description = "text (default): one line per entry. json: one JSON object per line. Both UTC, with the request id.",
            HelpName = "text|json",
        };
        var logLevel = new Option<string>("--log-level")
        {
            Description = "Least severe level logged: Trace, Debug (one line per request), Information (default), Warning, Error, Critical.",
            HelpName = "LEVEL",
        };
        var command = new Command("serve", "Run the Tumbler server.")
        {
            dataDir, config, printConfig, store, listen, region, accountId, acceptAny, tlsCert, tlsKey, tlsSelfSigned, trustedProxy, rateLimit, rateBurst, audit, metrics,
            logFormat, logLevel, passphraseFile,
        };
        var flags = new Dictionary<string, Option>(StringComparer.Ordinal)
        {
            ["store"] = store, ["listen"] = listen, ["region"] = region, ["accountId"] = accountId, ["acceptAnyCredentials"] = acceptAny, ["tlsCert"] = tlsCert,
            ["tlsKey"] = tlsKey, ["tlsSelfSigned"] = tlsSelfSigned, ["trustedProxy"] = trustedProxy, ["rateLimit"] = rateLimit,
            ["rateBurst"] = rateBurst, ["metrics"] = metrics, ["audit"] = audit, ["logFormat"] = logFormat, ["logLevel"] = logLevel,
        };
        command.SetAction(async (parse, ct) =>
        {
            ServerOptions options;
            string? file = null;
            var merged = new Dictionary<string, ServeSettings.Value>(StringComparer.Ordinal);
            var (directory, directorySource) = ServeSettings.ResolveDataDir(parse.GetValue(dataDir));
            try
            {
                // defaults < file < environment < flags
                file = ServeSettings.ResolveFile(parse.GetValue(config), directory);
                if (file is not null)
                {
                    Overlay(merged, ServeSettings.ReadFile(file));
                }
                Overlay(merged, ServeSettings.ReadEnvironment());
                foreach (var setting in ServeSettings.All)
                {
                    if (flags.TryGetValue(setting.Key, out var option) && parse.GetResult(option) is { Implicit: false } && FlagTexts(parse, option) is { Count: > 0 } texts)
                    {
                        merged[setting.Key] = ServeSettings.FromFlag(setting, texts);
                    }
                }
                options = ServeSettings.Build(directory, merged, FaultInjection()) with { RootKeyPassphraseFile = parse.GetValue(passphraseFile) };
                options.Validate();
                options.RequireNamedFiles();
            }
            catch (StartupException e)
            {
                await Console.Error.WriteLineAsync($"tumbler: {e.Message}");
                return 1;
            }
            if (parse.GetValue(printConfig))
            {
                Console.WriteLine(ServeSettings.Print(options, directorySource, file, merged));
                return 0;
            }
            return await RunAsync(options, ct);
        });
        return command;
    }

    private static void Overlay(Dictionary<string, ServeSettings.Value> merged, Dictionary<string, ServeSettings.Value> layer)
    {
        foreach (var (key, value) in layer)
        {
            merged[key] = value;
        }
    }

    /// <summary>What was typed for an option: its values (repeatable ones in order), "true"/"false" for a switch.</summary>
    private static List<string> FlagTexts(ParseResult parse, Option option) => option switch
    {
        Option<string[]> many => [.. parse.GetValue(many) ?? []],
        Option<bool> flag => [parse.GetValue(flag) ? "true" : "false"],
        Option<string> one when parse.GetValue(one) is { } text => [text],
        _ => [],
    };

    /// <summary>TUMBLER_FAULT_INJECTION=STEP:before|after kills the process at that point of a rotation: for crash tests only.</summary>
    private static Action<string>? FaultInjection()
    {
        var faultPoint = Environment.GetEnvironmentVariable("TUMBLER_FAULT_INJECTION");
        return string.IsNullOrEmpty(faultPoint) ? null : point =>
        {
            if (point == faultPoint)
            {
                Console.Error.WriteLine($"TUMBLER_FAULT_INJECTION: killing the process at {point}");
                System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL: no cleanup, as a crash
            }
        };
    }

    private static async Task<int> RunAsync(ServerOptions options, CancellationToken ct)
    {
        if (options.AcceptAnyCredentials)
        {
            await Console.Error.WriteLineAsync(
                "WARNING: --accept-any-credentials is INSECURE: any access key with a well-formed signature is accepted as root. Use it only for local development and tests.");
        }
        // With --log-format json, standard output holds JSON lines only: the startup messages become log entries too.
        var output = options.LogFormat == "json" ? TextWriter.Synchronized(new JsonLinesWriter(Console.Out)) : Console.Out;
        TumblerServer server;
        try
        {
            server = await TumblerServer.StartAsync(options, output, ct);
        }
        catch (StartupException e)
        {
            await Console.Error.WriteLineAsync($"tumbler: {e.Message}");
            return 1;
        }
        await using (server)
        {
            output.WriteLine($"Tumbler is ready: serving the Secrets Manager API on {string.Join(", ", server.Endpoints)} (regions {string.Join(", ", options.Regions)}, data in {Path.GetFullPath(options.DataDirectory)}{(options.UsesSharedStore ? $", store {Tumbler.Storage.Postgres.PostgresSecretStore.Mask(options.Store!)}" : "")})");
            await server.WaitForShutdownAsync();
        }
        output.WriteLine("Tumbler stopped.");
        output.Flush();
        return 0;
    }
}
