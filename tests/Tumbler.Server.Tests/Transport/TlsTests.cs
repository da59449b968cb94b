using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tumbler.Server.Hosting;
using Tumbler.Server.Tests.Support;
using Tumbler.Server.Transport;

namespace Tumbler.Server.Tests.Transport;

/// <summary>HTTPS on a real Kestrel: the self-signed certificate kept in DATA_DIR/tls/, given PEM files, and refusals.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class TlsTests
{
    private static ServerOptions Options(string dataDirectory) => new() { DataDirectory = dataDirectory, Listen = ["127.0.0.1:0"] };

    /// <summary>A client that trusts exactly the certificate in <paramref name="pinnedPem"/> and nothing else.</summary>
    private static HttpClient PinnedClient(string pinnedPem)
    {
        var pinned = X509Certificate2.CreateFromPem(File.ReadAllText(pinnedPem));
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.RawData.AsSpan().SequenceEqual(pinned.RawData),
        };
        return new HttpClient(handler);
    }

    [Fact]
    public async Task Self_signed_certificate_is_made_once_kept_owner_only_pinned_by_clients_and_reused_after_a_restart()
    {
        using var temp = new TempDataDirectory();
        var options = Options(temp.Path) with { TlsSelfSigned = true };
        var tls = Path.Combine(temp.Path, "tls");
        var certificateFile = Path.Combine(tls, "cert.pem");
        string fingerprint;

        var firstOutput = new StringWriter();
        await using (var server = await TumblerServer.StartAsync(options, firstOutput, default))
        {
            Assert.Equal("https", server.Endpoint.Scheme);
            fingerprint = TlsCertificates.Sha256Fingerprint(X509Certificate2.CreateFromPem(File.ReadAllText(certificateFile)));
            // Printed once, with the path and the fingerprint, so users can pin it.
            Assert.Contains(Path.GetFullPath(certificateFile), firstOutput.ToString(), StringComparison.Ordinal);
            Assert.Contains(fingerprint, firstOutput.ToString(), StringComparison.Ordinal);
            Assert.Matches("^([0-9A-F]{2}:){31}[0-9A-F]{2}$", fingerprint);

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(tls));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(tls, "key.pem")));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(certificateFile));

            var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(certificateFile));
            var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
            Assert.Contains("localhost", names.EnumerateDnsNames());
            Assert.Contains(Dns.GetHostName(), names.EnumerateDnsNames());
            Assert.Contains(IPAddress.Loopback, names.EnumerateIPAddresses());
            Assert.Contains(IPAddress.IPv6Loopback, names.EnumerateIPAddresses());
            Assert.InRange(certificate.NotAfter, DateTime.Now.AddDays(360), DateTime.Now.AddDays(370));

            using var pinnedClient = PinnedClient(certificateFile);
            using var created = await SignedCall.SendAsync(pinnedClient, server, "CreateSecret", $$"""{"Name": "tls/one", "SecretString": "over-tls", "ClientRequestToken": "{{Guid.NewGuid()}}"}""");
            Assert.True(created.StatusCode == HttpStatusCode.OK, await created.Content.ReadAsStringAsync());
            using var read = await SignedCall.SendAsync(pinnedClient, server, "GetSecretValue", """{"SecretId": "tls/one"}""");
            Assert.Contains("over-tls", await read.Content.ReadAsStringAsync(), StringComparison.Ordinal);

            // Nobody trusts it by default: no silent fallback.
            using var defaultClient = new HttpClient();
            var refused = await Assert.ThrowsAsync<HttpRequestException>(() => SignedCall.SendAsync(defaultClient, server, "ListSecrets"));
            Assert.IsType<AuthenticationException>(refused.InnerException);

            // Plain HTTP to the HTTPS listener gets no answer.
            using var plain = new HttpClient();
            await Assert.ThrowsAsync<HttpRequestException>(() => SignedCall.SendAsync(plain, server, "ListSecrets", endpoint: new UriBuilder(server.Endpoint) { Scheme = "http" }.Uri));
        }

        var secondOutput = new StringWriter();
        await using (var restarted = await TumblerServer.StartAsync(options, secondOutput, default))
        {
            Assert.Equal(fingerprint, TlsCertificates.Sha256Fingerprint(X509Certificate2.CreateFromPem(File.ReadAllText(certificateFile))));
            Assert.DoesNotContain("self-signed", secondOutput.ToString(), StringComparison.OrdinalIgnoreCase);
            using var pinnedClient = PinnedClient(certificateFile);
            using var read = await SignedCall.SendAsync(pinnedClient, restarted, "GetSecretValue", """{"SecretId": "tls/one"}""");
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Equal(fingerprint, TlsCertificates.Sha256Fingerprint(await PeerCertificateAsync(restarted.Endpoint)));
        }
    }

    [Fact]
    public async Task Given_pem_files_are_served_with_tls_1_2_or_later()
    {
        using var temp = new TempDataDirectory();
        var (certificateFile, keyFile) = WritePemPair(temp.Path, "given");
        await using var server = await TumblerServer.StartAsync(
            Options(Path.Combine(temp.Path, "data")) with { TlsCertificateFile = certificateFile, TlsKeyFile = keyFile }, TextWriter.Null, default);

        using var client = PinnedClient(certificateFile);
        using var response = await SignedCall.SendAsync(client, server, "ListSecrets");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(Directory.Exists(Path.Combine(temp.Path, "data", "tls")), "given files are used where they are");

        // A client offering only TLS 1.1 or older is turned away (the client side may refuse on its own first; either way no session).
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(server.Endpoint.Host, server.Endpoint.Port);
        await using var ssl = new SslStream(tcp.GetStream(), false, (_, certificate, _, _) => certificate is not null);
#pragma warning disable SYSLIB0039, CA5397 // deliberately obsolete protocols: the server must refuse them
        var oldProtocols = SslProtocols.Tls11 | SslProtocols.Tls;
#pragma warning restore SYSLIB0039, CA5397
        await Assert.ThrowsAnyAsync<Exception>(() => ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = oldProtocols }));
    }

    [Fact]
    public async Task A_given_chain_file_is_served_whole_so_a_client_trusting_only_the_root_ca_connects()
    {
        using var temp = new TempDataDirectory();
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var root = CertificateAuthority("CN=tumbler test root", rootKey, issuer: null, issuerKey: null);
        using var intermediateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var intermediate = CertificateAuthority("CN=tumbler test intermediate", intermediateKey, root, rootKey);
        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var server = ServerCertificate(serverKey, intermediate, intermediateKey);
        // As a CA hands it out (fullchain.pem): the server's certificate, then the intermediate.
        var chainFile = Path.Combine(temp.Path, "fullchain.pem");
        var keyFile = Path.Combine(temp.Path, "server.key.pem");
        await File.WriteAllTextAsync(chainFile, server.ExportCertificatePem() + "\n" + intermediate.ExportCertificatePem() + "\n");
        await File.WriteAllTextAsync(keyFile, serverKey.ExportPkcs8PrivateKeyPem());

        await using var tumbler = await TumblerServer.StartAsync(
            Options(Path.Combine(temp.Path, "data")) with { TlsCertificateFile = chainFile, TlsKeyFile = keyFile }, TextWriter.Null, default);

        // The client knows the root CA only; the intermediate must come from the server.
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, sent, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(root);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.ExtraStore.AddRange(sent!.ChainPolicy.ExtraStore);
                return certificate is not null && chain.Build(certificate);
            },
        };
        using var client = new HttpClient(handler);
        using var response = await SignedCall.SendAsync(client, tumbler, "ListSecrets");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task The_client_library_trusts_a_private_ca_from_its_bundle_without_a_revocation_source()
    {
        using var temp = new TempDataDirectory();
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var root = CertificateAuthority("CN=tumbler private ca", rootKey, issuer: null, issuerKey: null);
        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var server = ServerCertificate(serverKey, root, rootKey);
        var certificateFile = Path.Combine(temp.Path, "server.pem");
        var keyFile = Path.Combine(temp.Path, "server.key.pem");
        var bundle = Path.Combine(temp.Path, "ca.pem");
        await File.WriteAllTextAsync(certificateFile, server.ExportCertificatePem());
        await File.WriteAllTextAsync(keyFile, serverKey.ExportPkcs8PrivateKeyPem());
        await File.WriteAllTextAsync(bundle, root.ExportCertificatePem());

        await using var tumbler = await TumblerServer.StartAsync(
            Options(Path.Combine(temp.Path, "data")) with { TlsCertificateFile = certificateFile, TlsKeyFile = keyFile }, TextWriter.Null, default);
        using var client = new Tumbler.Client.SecretsManagerClient(tumbler.Endpoint,
            new Tumbler.Client.AwsCredentials(tumbler.Root.AccessKeyId, tumbler.Root.SecretAccessKey), "us-east-1", bundle);
        Assert.NotNull(await client.ListSecretsAsync(new Tumbler.Client.Model.ListSecretsRequest()));
    }

    /// <summary>A certificate for 127.0.0.1 issued by <paramref name="issuer"/>, as a private CA issues one: no CRL or OCSP URL.</summary>
    private static X509Certificate2 ServerCertificate(ECDsa serverKey, X509Certificate2 issuer, ECDsa issuerKey)
    {
        var request = new CertificateRequest("CN=tumbler test server", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        return request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey),
            DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), [1, 2, 3]);
    }

    private static X509Certificate2 CertificateAuthority(string subject, ECDsa key, X509Certificate2? issuer, ECDsa? issuerKey)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-10);
        var notAfter = DateTimeOffset.UtcNow.AddDays(2);
        return issuer is null
            ? request.CreateSelfSigned(notBefore, notAfter)
            : request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey!), notBefore, notAfter, [4, 5, 6]);
    }

    [Fact]
    public async Task Bad_missing_or_mismatched_pem_files_are_a_one_line_startup_error_before_anything_is_created()
    {
        using var temp = new TempDataDirectory();
        var (certificateFile, keyFile) = WritePemPair(temp.Path, "a");
        var (_, otherKey) = WritePemPair(temp.Path, "b");
        var garbage = Path.Combine(temp.Path, "garbage.pem");
        await File.WriteAllTextAsync(garbage, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
        var dataDirectory = Path.Combine(temp.Path, "data");

        foreach (var (certificate, key, expected) in new[]
        {
            (garbage, keyFile, "garbage.pem"),
            (certificateFile, otherKey, "b.key.pem"),
            (certificateFile, certificateFile, "a.cert.pem"),
            (Path.Combine(temp.Path, "missing.pem"), keyFile, "does not exist"),
        })
        {
            var error = await Assert.ThrowsAsync<StartupException>(() =>
                TumblerServer.StartAsync(Options(dataDirectory) with { TlsCertificateFile = certificate, TlsKeyFile = key }, TextWriter.Null, default));
            Assert.StartsWith("--tls-cert/--tls-key: ", error.Message, StringComparison.Ordinal);
            Assert.Contains(expected, error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', error.Message);
        }
        Assert.False(Directory.Exists(dataDirectory), "a refused start creates no data directory");
    }

    [Fact]
    public async Task A_self_signed_directory_missing_one_of_its_files_is_refused_rather_than_overwritten()
    {
        using var temp = new TempDataDirectory();
        var options = Options(temp.Path) with { TlsSelfSigned = true };
        await (await TumblerServer.StartAsync(options, TextWriter.Null, default)).DisposeAsync();
        var key = Path.Combine(temp.Path, "tls", "key.pem");
        var keyBytes = await File.ReadAllBytesAsync(key);
        File.Delete(Path.Combine(temp.Path, "tls", "cert.pem"));

        var error = await Assert.ThrowsAsync<StartupException>(() => TumblerServer.StartAsync(options, TextWriter.Null, default));
        Assert.StartsWith("--tls-self-signed: ", error.Message, StringComparison.Ordinal);
        Assert.Equal(keyBytes, await File.ReadAllBytesAsync(key));
    }

    private static async Task<X509Certificate2> PeerCertificateAsync(Uri endpoint)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(endpoint.Host, endpoint.Port);
        await using var ssl = new SslStream(tcp.GetStream(), false, (_, certificate, _, _) => certificate is not null);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" });
        Assert.True(ssl.SslProtocol is SslProtocols.Tls12 or SslProtocols.Tls13, $"negotiated {ssl.SslProtocol}");
        return new X509Certificate2(ssl.RemoteCertificate!);
    }

    /// <summary>An RSA 2048 certificate for 127.0.0.1 and localhost, written as NAME.cert.pem and NAME.key.pem.</summary>
    private static (string Certificate, string Key) WritePemPair(string directory, string name)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=tumbler test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certificateFile = Path.Combine(directory, $"{name}.cert.pem");
        var keyFile = Path.Combine(directory, $"{name}.key.pem");
        File.WriteAllText(certificateFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, rsa.ExportPkcs8PrivateKeyPem());
        return (certificateFile, keyFile);
    }
}
