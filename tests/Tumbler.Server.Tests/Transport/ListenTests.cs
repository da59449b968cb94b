using System.Net;
using System.Net.Sockets;
using Tumbler.Server.Hosting;
using Tumbler.Server.Tests.Support;

namespace Tumbler.Server.Tests.Transport;

/// <summary>Several --listen addresses on one server, and the one-line refusals of the listen options.</summary>
public sealed class ListenTests
{
    [Fact]
    public async Task Every_listen_address_answers_and_the_first_is_the_endpoint()
    {
        using var temp = new TempDataDirectory();
        await using var server = await TumblerServer.StartAsync(
            new ServerOptions { DataDirectory = temp.Path, Listen = ["127.0.0.1:0", "127.0.0.1:0"] }, TextWriter.Null, default);

        Assert.Equal(2, server.Endpoints.Count);
        Assert.Equal(server.Endpoints[0], server.Endpoint);
        Assert.NotEqual(server.Endpoints[0].Port, server.Endpoints[1].Port);
        using var http = new HttpClient();
        foreach (var endpoint in server.Endpoints)
        {
            Assert.Equal("http", endpoint.Scheme);
            using var response = await SignedCall.SendAsync(http, server, "ListSecrets", endpoint: endpoint);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task An_address_in_use_among_several_is_named_in_a_one_line_error()
    {
        using var temp = new TempDataDirectory();
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var busy = $"127.0.0.1:{((IPEndPoint)occupant.LocalEndpoint).Port}";

        var error = await Assert.ThrowsAsync<StartupException>(() =>
            TumblerServer.StartAsync(new ServerOptions { DataDirectory = temp.Path, Listen = ["127.0.0.1:0", busy] }, TextWriter.Null, default));
        Assert.StartsWith($"Cannot listen on {busy}: ", error.Message, StringComparison.Ordinal);
        Assert.Contains("address already in use", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Theory]
    [InlineData(new[] { "127.0.0.1:0", "0.0.0.0:0" }, "--accept-any-credentials is refused on 0.0.0.0:0")]
    [InlineData(new[] { "[::1]:0", "10.1.2.3:0" }, "--accept-any-credentials is refused on 10.1.2.3:0")]
    public void Accept_any_credentials_needs_every_listen_address_to_be_loopback(string[] listen, string expected)
    {
        var error = Assert.Throws<StartupException>(() => new ServerOptions { Listen = listen, AcceptAnyCredentials = true }.Validate());
        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
        new ServerOptions { Listen = ["127.0.0.1:0", "[::1]:0", "localhost:0"], AcceptAnyCredentials = true }.Validate();
    }

    [Theory]
    [InlineData("--listen 127.0.0.1:9: this address is given more than once", "127.0.0.1:9", "127.0.0.1:9")]
    [InlineData("--listen 127.0.0.1:http: the port must be", "127.0.0.1:0", "127.0.0.1:http")]
    [InlineData("--listen example.com:80: give an IP address", "example.com:80")]
    public void Bad_listen_addresses_are_named(string expected, params string[] listen)
    {
        var error = Assert.Throws<StartupException>(() => new ServerOptions { Listen = listen }.Validate());
        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--trusted-proxy 10.0.0.1/8: ", null, null, "10.0.0.1/8")]
    [InlineData("--trusted-proxy proxy.local: ", null, null, "proxy.local")]
    [InlineData("--rate-limit 0: ", 0.0, null)]
    [InlineData("--rate-limit -1: ", -1.0, null)]
    [InlineData("--rate-burst 0: ", 5.0, 0)]
    [InlineData("--rate-burst needs --rate-limit", null, 3)]
    public void Bad_proxy_and_rate_options_are_named(string expected, double? rate, int? burst, params string[] proxies)
    {
        var error = Assert.Throws<StartupException>(() => new ServerOptions { TrustedProxies = proxies, RateLimit = rate, RateBurst = burst }.Validate());
        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tls_options_go_together_or_not_at_all()
    {
        Assert.StartsWith("--tls-cert needs --tls-key", Assert.Throws<StartupException>(() => new ServerOptions { TlsCertificateFile = "c.pem" }.Validate()).Message, StringComparison.Ordinal);
        Assert.StartsWith("--tls-key needs --tls-cert", Assert.Throws<StartupException>(() => new ServerOptions { TlsKeyFile = "k.pem" }.Validate()).Message, StringComparison.Ordinal);
        Assert.StartsWith("--tls-self-signed cannot be combined", Assert.Throws<StartupException>(() =>
            new ServerOptions { TlsSelfSigned = true, TlsCertificateFile = "c.pem", TlsKeyFile = "k.pem" }.Validate()).Message, StringComparison.Ordinal);
        Assert.Equal(["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"],
            new ServerOptions { TrustedProxies = ["10.0.0.0/8", "192.0.2.7", "fd00::/8"] }.TrustedProxyNetworks().Select(n => n.ToString()));
    }
}
