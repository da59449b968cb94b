using Tumbler.Client;

namespace Tumbler.Agent;

/// <summary>All settings of the agent, with the AWS Secrets Manager Agent's defaults and bounds (spec 6.1), validated in one place.</summary>
public sealed class AgentOptions
{
    public const int DefaultPort = 2773;

    /// <summary>Port on 127.0.0.1 (1024-65535; 0 picks a free one, for tests).</summary>
    public int Port { get; set; } = DefaultPort;

    /// <summary>Seconds a value is served from memory before a DescribeSecret version check (0-3600; 0: no caching).</summary>
    public int TtlSeconds { get; set; } = 300;

    /// <summary>Most secrets cached (1-1000), least recently used evicted.</summary>
    public int CacheSize { get; set; } = 1000;

    /// <summary>Most open connections (1-1000).</summary>
    public int MaxConnections { get; set; } = 800;

    /// <summary>Second way to ask: GET PREFIX&lt;secretId&gt;.</summary>
    public string PathPrefix { get; set; } = "/v1/";

    /// <summary>Serve the last value when the server can't be reached (up to <see cref="MaxStaleness"/>).</summary>
    public bool IgnoreTransientErrors { get; set; } = true;

    /// <summary>How long after the server last confirmed a value it may still be served when the server is unreachable.</summary>
    public TimeSpan MaxStaleness { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Headers any one of which must carry the token (every request except /ping).</summary>
    public IList<string> SsrfHeaders { get; set; } = ["X-Aws-Parameters-Secrets-Token", "X-Vault-Token"];

    /// <summary>Environment variables read for the token, first set wins; a value file://PATH means the token is that file's content.</summary>
    public IList<string> SsrfEnvironmentVariables { get; set; } = ["AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"];

    /// <summary>The token requests must carry; when null, <see cref="ResolveToken"/> reads it from the environment.</summary>
    public string? Token { get; set; }

    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    internal void Validate()
    {
        if (Port != 0 && Port is < 1024 or > 65535)
        {
            throw new TumblerClientException($"The port must be 1024-65535, got {Port}.");
        }
        if (TtlSeconds is < 0 or > 3600)
        {
            throw new TumblerClientException($"The TTL must be 0-3600 seconds, got {TtlSeconds}.");
        }
        if (CacheSize is < 1 or > 1000)
        {
            throw new TumblerClientException($"The cache size must be 1-1000, got {CacheSize}.");
        }
        if (MaxConnections is < 1 or > 1000)
        {
            throw new TumblerClientException($"The connection limit must be 1-1000, got {MaxConnections}.");
        }
        if (!PathPrefix.StartsWith('/') || !PathPrefix.EndsWith('/') || PathPrefix == "/")
        {
            throw new TumblerClientException($"The path prefix must start and end with '/' and not be '/', got '{PathPrefix}'.");
        }
        if (SsrfHeaders.Count == 0)
        {
            throw new TumblerClientException("At least one token header is needed.");
        }
    }

    /// <summary>The token: <see cref="Token"/>, else the first of <see cref="SsrfEnvironmentVariables"/> that is set (file:// read); throws when there is none.</summary>
    public string ResolveToken()
    {
        if (!string.IsNullOrEmpty(Token))
        {
            return Token;
        }
        foreach (var name in SsrfEnvironmentVariables)
        {
            var value = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }
            if (value.StartsWith("file://", StringComparison.Ordinal))
            {
                var path = value["file://".Length..];
                try
                {
                    value = File.ReadAllText(path).Trim();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new TumblerClientException($"Cannot read the token file {path} named by {name}: {e.Message}");
                }
                if (value.Length == 0)
                {
                    throw new TumblerClientException($"The token file {path} named by {name} is empty.");
                }
            }
            return value;
        }
        throw new TumblerClientException($"No token for the agent's SSRF protection: set one of {string.Join(", ", SsrfEnvironmentVariables)} (a value file://PATH reads the token from that file).");
    }
}
