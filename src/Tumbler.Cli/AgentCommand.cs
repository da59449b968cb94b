using System.CommandLine;
using Tumbler.Agent;
using Tumbler.Client;

namespace Tumbler.Cli;

/// <summary>
/// <c>tumbler agent</c>: a local caching endpoint with the AWS Secrets Manager Agent's interface on 127.0.0.1
/// (default port 2773), in front of a Tumbler server. The token comes from AWS_TOKEN (or file://PATH).
/// </summary>
internal static class AgentCommand
{
    public static Command Create()
    {
        var defaults = new AgentOptions();
        var connection = new ConnectionOptions();
        var port = new Option<int>("--port")
        {
            Description = "Port on 127.0.0.1 to serve on (1024-65535).",
            DefaultValueFactory = _ => defaults.Port,
        };
        var ttl = new Option<int>("--ttl-seconds")
        {
            Description = "Seconds a secret is served from memory before a DescribeSecret version check (0-3600; 0: no caching).",
            DefaultValueFactory = _ => defaults.TtlSeconds,
        };
        var cacheSize = new Option<int>("--cache-size")
        {
            Description = "Most secrets kept (1-1000); the least recently used goes first.",
            DefaultValueFactory = _ => defaults.CacheSize,
        };
        var maxConnections = new Option<int>("--max-connections")
        {
            Description = "Most open connections (1-1000).",
            DefaultValueFactory = _ => defaults.MaxConnections,
        };
        var maxStale = new Option<int>("--max-stale-seconds")
        {
            Description = "When the server can't be reached, serve a cached value for at most this long after the server last confirmed it (0: never serve stale).",
            DefaultValueFactory = _ => (int)defaults.MaxStaleness.TotalSeconds,
        };
        var command = new Command("agent",
            "Serve secrets on 127.0.0.1 from a local cache, as the AWS Secrets Manager Agent does: GET /secretsmanager/get?secretId=ID "
            + "with header X-Aws-Parameters-Secrets-Token set to the token of AWS_TOKEN (or file://PATH).")
        {
            port, ttl, cacheSize, maxConnections, maxStale,
        };
        connection.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                var options = new AgentOptions
                {
                    Port = parse.GetValue(port),
                    TtlSeconds = parse.GetValue(ttl),
                    CacheSize = parse.GetValue(cacheSize),
                    MaxConnections = parse.GetValue(maxConnections),
                    MaxStaleness = TimeSpan.FromSeconds(Math.Max(0, parse.GetValue(maxStale))),
                    IgnoreTransientErrors = parse.GetValue(maxStale) > 0,
                };
                using var client = Connect(parse, connection);
                await using var agent = await AgentHost.StartAsync(options, client, ct);
                Console.WriteLine($"Tumbler agent listening on {agent.Endpoint} for secrets of {client.Endpoint} ({options.TtlSeconds} s TTL).");
                await agent.WaitForShutdownAsync();
                return 0;
            }
            catch (Exception e) when (e is TumblerClientException or IOException or System.Security.Cryptography.CryptographicException)
            {
                await Console.Error.WriteLineAsync($"tumbler agent: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>Like the AWS SDKs: --endpoint-url, else AWS_ENDPOINT_URL_SECRETS_MANAGER, else AWS_ENDPOINT_URL, else the local default.</summary>
    private static SecretsManagerClient Connect(ParseResult parse, ConnectionOptions connection)
    {
        var endpoint = parse.GetValue(connection.EndpointUrl) ?? Env("AWS_ENDPOINT_URL_SECRETS_MANAGER") ?? Env("AWS_ENDPOINT_URL")
            ?? SecretsManagerClient.DefaultEndpoint;
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri))
        {
            throw new TumblerClientException($"--endpoint-url must be an http:// or https:// URL, got '{endpoint}'.");
        }
        var profile = parse.GetValue(connection.Profile);
        return new SecretsManagerClient(uri, AwsProfile.ResolveCredentials(profile),
            parse.GetValue(connection.Region) ?? AwsProfile.ResolveRegion(profile) ?? "us-east-1",
            parse.GetValue(connection.CaBundle) ?? Env("AWS_CA_BUNDLE"));
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;
}
