using System.Globalization;
using System.Net;
using Tumbler.Core.Rotation;

namespace Tumbler.Server.Hosting;

/// <summary>Everything <c>tumbler serve</c> can be told, with its defaults.</summary>
public sealed record ServerOptions
{
    public const string DefaultListen = "127.0.0.1:8787";

    public string DataDirectory { get; init; } = "./tumbler-data";
    /// <summary>
    /// Null or "sqlite": the embedded store, DATA_DIR/tumbler.db. Otherwise a PostgreSQL URL or connection string: a
    /// store several nodes share (each node keeps its own data directory for the root key file, TLS and audit log).
    /// </summary>
    public string? Store { get; init; }
    /// <summary>How often a node on a shared store looks for users, keys and policies changed by other nodes.</summary>
    public TimeSpan SharedStorePollInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Addresses served (HOST:PORT, IPv6 in brackets); the first one is <see cref="TumblerServer.Endpoint"/>.</summary>
    public IReadOnlyList<string> Listen { get; init; } = [DefaultListen];
    /// <summary>Regions served; requests signed for another region are refused. Each region is its own namespace.</summary>
    public IReadOnlyList<string> Regions { get; init; } = ["us-east-1"];
    public string AccountId { get; init; } = "123456789012";
    public bool AcceptAnyCredentials { get; init; }
    public TimeSpan PurgeInterval { get; init; } = TimeSpan.FromMinutes(1);
    public RotationOptions Rotation { get; init; } = new();
    /// <summary>Limits of external rotation functions (overall concurrency, Python interpreter, output kept).</summary>
    public Tumbler.Rotators.External.ExternalFunctionOptions Functions { get; init; } = new();
    /// <summary>"file" (the hash-chained log in DATA_DIR/audit; requests are refused when it cannot be written) or "none".</summary>
    public string Audit { get; init; } = "file";
    /// <summary>Serve Prometheus metrics on GET /metrics (unauthenticated; secret ARNs appear as labels), on every listen address.</summary>
    public bool Metrics { get; init; }

    /// <summary>PEM certificate (chain) served on every listen address; needs <see cref="TlsKeyFile"/>.</summary>
    public string? TlsCertificateFile { get; init; }
    /// <summary>
    /// PEM file of the CA(s) the built-in rotation functions trust for a database's certificate when a secret says
    /// <c>"ssl": true</c> (a private CA, as a self-hosted database usually has); null: the system's trust store.
    /// </summary>
    public string? RotationCaFile { get; init; }
    /// <summary>PEM private key (PKCS#8, PKCS#1 or SEC1, unencrypted) of <see cref="TlsCertificateFile"/>.</summary>
    public string? TlsKeyFile { get; init; }
    /// <summary>Serve HTTPS with a self-signed certificate kept in DATA_DIR/tls/ (made on first start).</summary>
    public bool TlsSelfSigned { get; init; }

    /// <summary>CIDRs of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed; empty: none are.</summary>
    public IReadOnlyList<string> TrustedProxies { get; init; } = [];

    /// <summary>Requests per second allowed per access key id (token bucket); null: no limit.</summary>
    public double? RateLimit { get; init; }
    /// <summary>Bucket size: requests an idle access key may make at once; null: the rate rounded up (at least 1).</summary>
    public int? RateBurst { get; init; }

    /// <summary>"text" (one line per entry) or "json" (one JSON object per line); both UTC and with the request id scope.</summary>
    public string LogFormat { get; init; } = "text";
    /// <summary>Least severe level logged (Microsoft.* categories: Warning at least).</summary>
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Information;
    /// <summary>File holding a passphrase the root key is derived from (see RootKeyFile.FromPassphrase); TUMBLER_ROOT_KEY_PASSPHRASE likewise.</summary>
    public string? RootKeyPassphraseFile { get; init; }

    public const string DatabaseFile = "tumbler.db";
    public const string RootKeyFile = "root.key";
    /// <summary>Where <c>tumbler keys rotate-root</c> puts the next root key (from its preparation until it replaces root.key).</summary>
    public const string NextRootKeyFile = "root.key.next";
    public const string CredentialsFile = "credentials";
    public const string TlsDirectory = "tls";
    /// <summary>Locked (flock) by the server serving the data directory, so a second one is refused.</summary>
    public const string LockFile = "serve.lock";

    /// <summary>Whether the store is a PostgreSQL database other nodes may share.</summary>
    public bool UsesSharedStore => Store is not null && !string.Equals(Store, "sqlite", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether the server speaks HTTPS (on every listen address) rather than plain HTTP.</summary>
    public bool UsesTls => TlsSelfSigned || TlsCertificateFile is not null || TlsKeyFile is not null;

    /// <summary>Every listen address parsed, in order; throws <see cref="StartupException"/> naming the bad one.</summary>
    public IReadOnlyList<IPEndPoint> ListenEndPoints()
    {
        if (Listen.Count == 0)
        {
            throw new StartupException("--listen: give at least one address to listen on.");
        }
        var endPoints = new List<IPEndPoint>(Listen.Count);
        foreach (var text in Listen)
        {
            var endPoint = ParseListen(text);
            if (endPoint.Port != 0 && endPoints.Contains(endPoint))
            {
                throw new StartupException($"--listen {text}: this address is given more than once.");
            }
            endPoints.Add(endPoint);
        }
        return endPoints;
    }

    /// <summary>Parses HOST:PORT (IPv6 in brackets).</summary>
    public static IPEndPoint ParseListen(string listen)
    {
        var text = listen.Trim();
        var host = text;
        var port = 8787;
        var colon = text.LastIndexOf(':');
        if (colon > 0 && (text[0] != '[' || text[colon - 1] == ']'))
        {
            host = text[..colon];
            if (!int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 0 or > 65535)
            {
                throw new StartupException($"--listen {listen}: the port must be a number from 0 to 65535.");
            }
        }
        host = host.Trim('[', ']');
        if (host == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }
        return IPAddress.TryParse(host, out var address)
            ? new IPEndPoint(address, port)
            : throw new StartupException($"--listen {listen}: give an IP address (or localhost) and a port, such as 127.0.0.1:8787.");
    }

    /// <summary>The trusted proxy networks parsed; throws <see cref="StartupException"/> naming the bad one.</summary>
    public IReadOnlyList<IPNetwork> TrustedProxyNetworks()
    {
        var networks = new List<IPNetwork>(TrustedProxies.Count);
        foreach (var text in TrustedProxies)
        {
            var trimmed = text.Trim();
            if (IPAddress.TryParse(trimmed, out var single) && !trimmed.Contains('/', StringComparison.Ordinal))
            {
                networks.Add(new IPNetwork(single, single.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
                continue;
            }
            if (!IPNetwork.TryParse(trimmed, out var network))
            {
                throw new StartupException($"--trusted-proxy {text}: give a network in CIDR form, such as 10.0.0.0/8 or fd00::/8, or a single address.");
            }
            if (!IPAddress.TryParse(trimmed.AsSpan(0, trimmed.IndexOf('/', StringComparison.Ordinal)), out var given) || !given.Equals(network.BaseAddress))
            {
                // Trusting more than was written is the unsafe direction: make the operator say it.
                throw new StartupException($"--trusted-proxy {text}: the address has bits set beyond the prefix; did you mean {network}?");
            }
            networks.Add(network);
        }
        return networks;
    }

    /// <summary>
    /// Checks that the files read later (the passphrase at start, the rotation CA at the first rotation) exist, so a typo
    /// fails at once, --print-config included; throws <see cref="StartupException"/>. (The TLS files are read at start.)
    /// </summary>
    public void RequireNamedFiles()
    {
        if (RootKeyPassphraseFile is { } passphrase && !File.Exists(passphrase))
        {
            throw new StartupException($"--root-key-passphrase-file {passphrase}: no such file.");
        }
        if (RotationCaFile is { } rotationCa && !File.Exists(rotationCa))
        {
            throw new StartupException($"rotationCaFile {rotationCa}: no such file.");
        }
    }

    /// <summary>Checks the combinations that are wrong whatever the machine; throws <see cref="StartupException"/>.</summary>
    public void Validate()
    {
        var endPoints = ListenEndPoints();
        for (var i = 0; i < endPoints.Count; i++)
        {
            if (AcceptAnyCredentials && !IPAddress.IsLoopback(endPoints[i].Address))
            {
                throw new StartupException($"--accept-any-credentials is refused on {Listen[i]}: it is only allowed when every listen address is a loopback address.");
            }
        }
        if (Regions.Count == 0)
        {
            throw new StartupException("At least one region must be served.");
        }
        if (TlsSelfSigned && (TlsCertificateFile is not null || TlsKeyFile is not null))
        {
            throw new StartupException("--tls-self-signed cannot be combined with --tls-cert/--tls-key: choose one source of certificate.");
        }
        if ((TlsCertificateFile is null) != (TlsKeyFile is null))
        {
            throw new StartupException(TlsCertificateFile is null
                ? "--tls-key needs --tls-cert: give both PEM files."
                : "--tls-cert needs --tls-key: give both PEM files.");
        }
        TrustedProxyNetworks();
        if (RateLimit is { } rate && (!double.IsFinite(rate) || rate <= 0))
        {
            throw new StartupException($"--rate-limit {rate.ToString(CultureInfo.InvariantCulture)}: give a positive number of requests per second.");
        }
        if (RateBurst is { } burst && burst <= 0)
        {
            throw new StartupException($"--rate-burst {burst.ToString(CultureInfo.InvariantCulture)}: give a positive whole number of requests.");
        }
        if (LogFormat is not ("text" or "json"))
        {
            throw new StartupException($"--log-format {LogFormat}: give text or json.");
        }
        if (RateBurst is not null && RateLimit is null)
        {
            throw new StartupException("--rate-burst needs --rate-limit: the burst is the bucket size of a rate limit.");
        }
    }
}

/// <summary>A reason not to start, told to the operator in one line; the process exits with code 1.</summary>
public sealed class StartupException(string message) : Exception(message);
