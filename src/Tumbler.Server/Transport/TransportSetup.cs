using System.Net;
using System.Security.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Primitives;
using IPNetwork = System.Net.IPNetwork;

namespace Tumbler.Server.Transport;

/// <summary>How the server meets the network: where it listens, whether it speaks TLS, which proxies it believes.</summary>
/// <param name="EndPoints">Listen addresses, in order.</param>
/// <param name="Certificate">Served on every address when not null (the server is then HTTPS only).</param>
/// <param name="TrustedProxies">Peers whose X-Forwarded-For / X-Forwarded-Proto are applied; empty: the headers are ignored.</param>
public sealed record TransportSettings(IReadOnlyList<IPEndPoint> EndPoints, ServerCertificate? Certificate, IReadOnlyList<IPNetwork> TrustedProxies);

/// <summary>
/// The one place Kestrel listeners, TLS and forwarded headers are configured, used by
/// <see cref="Hosting.TumblerServer"/> and by tests that need the same behaviour on a bare app.
/// </summary>
public static class TransportSetup
{
    /// <summary>
    /// How many X-Forwarded-For entries are read, right to left. The middleware stops earlier at the first
    /// address outside the trusted networks, so a client cannot push a forged entry past a real proxy.
    /// </summary>
    public const int ForwardLimit = 8;

    /// <summary>Listeners (with TLS when there is a certificate) and no forwarded-header handling but ours.</summary>
    public static void ConfigureTransport(this WebApplicationBuilder builder, TransportSettings settings)
    {
        // ASPNETCORE_FORWARDEDHEADERS_ENABLED would add a middleware believing X-Forwarded-* from anyone.
        builder.Configuration["ForwardedHeaders_Enabled"] = "false";
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            ApplyLimits(kestrel.Limits);
            foreach (var endPoint in settings.EndPoints)
            {
                kestrel.Listen(endPoint, listen =>
                {
                    if (settings.Certificate is { } served)
                    {
                        listen.UseHttps(new HttpsConnectionAdapterOptions
                        {
                            ServerCertificate = served.Certificate,
                            ServerCertificateChain = served.Intermediates,
                            SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                        });
                    }
                });
            }
        });
    }

    /// <summary>Most headers a request may carry (an SDK sends about a dozen; Kestrel's default is 100).</summary>
    public const int MaxRequestHeaderCount = 64;
    /// <summary>Most bytes of all request headers together (request line excluded) (SigV4 plus a session token fit in a few KiB; Kestrel's default is 32 KiB).</summary>
    public const int MaxRequestHeadersTotalSize = 16 * 1024;
    /// <summary>Time a client has to send all its headers (Kestrel's default is 30 s): a slowloris connection is closed after it.</summary>
    public static readonly TimeSpan RequestHeadersTimeout = TimeSpan.FromSeconds(10);
    /// <summary>Time an idle kept-alive connection is held open (Kestrel's default is 130 s).</summary>
    public static readonly TimeSpan KeepAliveTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Kestrel limits against clients that hold connections and memory: header count and size, the time to send
    /// headers, the slowest body and response rates, idle keep-alive. The 1 MiB body cap is the endpoint's (an AWS error).
    /// </summary>
    public static void ApplyLimits(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerLimits limits)
    {
        limits.MaxRequestHeaderCount = MaxRequestHeaderCount;
        limits.MaxRequestHeadersTotalSize = MaxRequestHeadersTotalSize;
        limits.RequestHeadersTimeout = RequestHeadersTimeout;
        limits.KeepAliveTimeout = KeepAliveTimeout;
        // At least 240 bytes/s after a 5 s grace, both ways (Kestrel's defaults, stated so they cannot drift):
        // a 1 MiB body then takes at most about 75 s, and a trickling client is disconnected.
        limits.MinRequestBodyDataRate = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(240, TimeSpan.FromSeconds(5));
        limits.MinResponseDataRate = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(240, TimeSpan.FromSeconds(5));
    }

    /// <summary>
    /// Believes X-Forwarded-For and X-Forwarded-Proto only from the trusted proxies; adds nothing when there
    /// are none, so <c>Connection.RemoteIpAddress</c> stays the TCP peer and <c>Request.IsHttps</c> the listener's scheme.
    /// Call before the endpoints are mapped.
    /// </summary>
    public static void UseTransport(this WebApplication app, TransportSettings settings)
    {
        if (settings.TrustedProxies.Count > 0)
        {
            app.Use((context, next) =>
            {
                AlignForwardedProto(context.Request.Headers);
                return next(context);
            });
            app.UseForwardedHeaders(ForwardedHeaders(settings.TrustedProxies));
        }
    }

    /// <summary>
    /// Keeps the rightmost X-Forwarded-Proto entries, as many as X-Forwarded-For has (at least one). The middleware reads
    /// the two lists pairwise from the right; where X-Forwarded-For runs out while the peer is still a trusted address, it
    /// would go on to the entries left of them, which the client wrote (an "https" that made aws:SecureTransport true).
    /// </summary>
    private static void AlignForwardedProto(IHeaderDictionary headers)
    {
        var schemes = Entries(headers[ForwardedHeadersDefaults.XForwardedProtoHeaderName]);
        var kept = Math.Max(Entries(headers[ForwardedHeadersDefaults.XForwardedForHeaderName]).Length, 1);
        if (schemes.Length > kept)
        {
            headers[ForwardedHeadersDefaults.XForwardedProtoHeaderName] = string.Join(", ", schemes[^kept..]);
        }

        static string[] Entries(StringValues values) =>
            [.. values.SelectMany(value => (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))];
    }

    public static ForwardedHeadersOptions ForwardedHeaders(IReadOnlyList<IPNetwork> trustedProxies)
    {
        var options = new ForwardedHeadersOptions
        {
            ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor | Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedProto,
            ForwardLimit = ForwardLimit,
        };
        options.KnownProxies.Clear();
        options.KnownIPNetworks.Clear();
        foreach (var network in trustedProxies)
        {
            options.KnownIPNetworks.Add(network);
        }
        return options;
    }
}
