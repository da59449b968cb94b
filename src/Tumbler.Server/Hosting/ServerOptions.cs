using System.Net;
using Tumbler.Core.Rotation;

namespace Tumbler.Server.Hosting;

/// <summary>Everything <c>tumbler serve</c> can be told, with its defaults.</summary>
public sealed record ServerOptions
{
    public string DataDirectory { get; init; } = "./tumbler-data";
    public string Listen { get; init; } = "127.0.0.1:8787";
    /// <summary>Regions served; requests signed for another region are refused. Each region is its own namespace.</summary>
    public IReadOnlyList<string> Regions { get; init; } = ["us-east-1"];
    public string AccountId { get; init; } = "123456789012";
    public bool AcceptAnyCredentials { get; init; }
    public TimeSpan PurgeInterval { get; init; } = TimeSpan.FromMinutes(1);
    public RotationOptions Rotation { get; init; } = new();
    /// <summary>"file" (the hash-chained log in DATA_DIR/audit; requests are refused when it cannot be written) or "none".</summary>
    public string Audit { get; init; } = "file";

    public const string DatabaseFile = "tumbler.db";
    public const string RootKeyFile = "root.key";
    public const string CredentialsFile = "credentials";

    /// <summary>Parses HOST:PORT (IPv6 in brackets).</summary>
    public IPEndPoint ListenEndPoint()
    {
        var text = Listen.Trim();
        var host = text;
        var port = 8787;
        var colon = text.LastIndexOf(':');
        if (colon > 0 && (text[0] != '[' || text[colon - 1] == ']'))
        {
            host = text[..colon];
            if (!int.TryParse(text[(colon + 1)..], out port) || port is < 0 or > 65535)
            {
                throw new StartupException($"--listen {Listen}: the port must be a number from 0 to 65535.");
            }
        }
        host = host.Trim('[', ']');
        if (host == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }
        return IPAddress.TryParse(host, out var address)
            ? new IPEndPoint(address, port)
            : throw new StartupException($"--listen {Listen}: give an IP address (or localhost) and a port, such as 127.0.0.1:8787.");
    }
}

/// <summary>A reason not to start, told to the operator in one line; the process exits with code 1.</summary>
public sealed class StartupException(string message) : Exception(message);
