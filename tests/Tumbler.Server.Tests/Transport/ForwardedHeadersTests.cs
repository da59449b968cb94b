using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tumbler.Server.Hosting;
using Tumbler.Server.Transport;

namespace Tumbler.Server.Tests.Transport;

/// <summary>
/// What the request looks like to policy conditions (aws:SourceIp from Connection.RemoteIpAddress,
/// aws:SecureTransport from Request.IsHttps), on a bare app on real Kestrel configured by the very
/// methods TumblerServer uses.
/// </summary>
public sealed class ForwardedHeadersTests
{
    private static async Task<(string RemoteIp, bool IsHttps)> Echo(string[] trustedProxies, (string Name, string Value)[] headers,
        Action<WebApplicationBuilder>? before = null)
    {
        var settings = new TransportSettings([new IPEndPoint(IPAddress.Loopback, 0)], null,
            new ServerOptions { TrustedProxies = trustedProxies }.TrustedProxyNetworks());
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        before?.Invoke(builder);
        builder.ConfigureTransport(settings);
        await using var app = builder.Build();
        app.UseTransport(settings);
        app.MapGet("/", (HttpContext http) => $"{http.Connection.RemoteIpAddress}|{http.Request.IsHttps}");
        await app.StartAsync();
        try
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            using var http = new HttpClient();
            using var request = new HttpRequestMessage(HttpMethod.Get, address);
            foreach (var (name, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
            using var response = await http.SendAsync(request);
            var parts = (await response.Content.ReadAsStringAsync()).Split('|');
            return (parts[0], bool.Parse(parts[1]));
        }
        finally
        {
            await app.StopAsync();
        }
    }

    private static readonly (string, string)[] Forged = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")];

    [Fact]
    public async Task Without_a_trusted_proxy_the_peer_is_the_source_and_forwarded_headers_are_ignored() =>
        Assert.Equal(("127.0.0.1", false), await Echo([], Forged));

    [Fact]
    public async Task The_hosting_switch_that_trusts_everyone_cannot_turn_forwarded_headers_on() =>
        Assert.Equal(("127.0.0.1", false), await Echo([], Forged, builder => builder.Configuration["ForwardedHeaders_Enabled"] = "true"));

    [Fact]
    public async Task A_trusted_proxy_is_believed_for_the_client_address_and_the_scheme() =>
        Assert.Equal(("203.0.113.9", true), await Echo(["127.0.0.0/8"], Forged));

    [Fact]
    public async Task A_proxy_outside_the_trusted_networks_is_not_believed() =>
        Assert.Equal(("127.0.0.1", false), await Echo(["10.0.0.0/8", "127.0.0.2"], Forged));

    [Fact]
    public async Task A_forged_entry_before_the_one_the_trusted_proxy_added_is_not_believed() =>
        // The client sent "198.51.100.7"; the trusted proxy appended the real client 203.0.113.9, which is not trusted itself.
        Assert.Equal("203.0.113.9", (await Echo(["127.0.0.0/8"], [("X-Forwarded-For", "198.51.100.7, 203.0.113.9")])).RemoteIp);

    [Theory]
    [InlineData(null)]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.2, 127.0.0.1")]
    public async Task A_scheme_written_before_the_ones_the_trusted_proxies_added_is_not_believed(string? forwardedFor)
    {
        // The client (itself inside the trusted networks) sent "https"; the proxy appended the scheme it was reached by.
        (string, string)[] headers = forwardedFor is null
            ? [("X-Forwarded-Proto", "https, http")]
            : [("X-Forwarded-For", forwardedFor), ("X-Forwarded-Proto", "https, " + string.Join(", ", forwardedFor.Split(',').Select(_ => "http")))];
        Assert.False((await Echo(["127.0.0.0/8"], headers)).IsHttps);
    }

    [Fact]
    public async Task A_chain_of_trusted_proxies_is_followed_to_the_first_untrusted_address() =>
        Assert.Equal("203.0.113.9", (await Echo(["127.0.0.0/8", "10.0.0.0/8"], [("X-Forwarded-For", "198.51.100.7, 203.0.113.9, 10.1.1.1")])).RemoteIp);
}
