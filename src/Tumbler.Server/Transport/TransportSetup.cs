using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.HttpOverrides;
using IPNetwork = System.Net.IPNetwork;

namespace Tumbler.Server.Transport;

/// <summary>How the server meets the network: where it listens, whether it speaks TLS, which proxies it believes.</summary>
/// <param name="EndPoints">Listen addresses, in order.</param>
/// <param name="Certificate">Served on every address when not null (the server is then HTTPS only).</param>
/// <param name="TrustedProxies">Peers whose X-Forwarded-For / X-Forwarded-Proto are applied; empty: the headers are ignored.</param>
public sealed record TransportSettings(IReadOnlyList<IPEndPoint> EndPoints, X509Certificate2? Certificate, IReadOnlyList<IPNetwork> TrustedProxies);

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
            foreach (var endPoint in settings.EndPoints)
            {
                kestrel.Listen(endPoint, listen =>
                {
                    if (settings.Certificate is { } certificate)
                    {
                        listen.UseHttps(certificate, https => https.SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13);
                    }
                });
            }
        });
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
            app.UseForwardedHeaders(ForwardedHeaders(settings.TrustedProxies));
        }
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
