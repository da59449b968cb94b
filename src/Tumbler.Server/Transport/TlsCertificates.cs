using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tumbler.Server.Hosting;

namespace Tumbler.Server.Transport;

/// <summary>The certificate the server presents, with its private key, and the intermediate CA certificates sent after it.</summary>
public sealed record ServerCertificate(X509Certificate2 Certificate, X509Certificate2Collection Intermediates);

/// <summary>
/// The server certificate: from PEM files the operator gives (<c>--tls-cert</c>/<c>--tls-key</c>), or a
/// self-signed one made on first start and kept in DATA_DIR/tls/ (<c>--tls-self-signed</c>).
/// </summary>
public static class TlsCertificates
{
    public const string CertificateFile = "cert.pem";
    public const string KeyFile = "key.pem";

    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode WorldReadable = OwnerReadWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>The certificate the options ask for, or null for plain HTTP; throws <see cref="StartupException"/> in one line.</summary>
    public static ServerCertificate? Load(ServerOptions options, TextWriter output)
    {
        if (options.TlsSelfSigned)
        {
            return new ServerCertificate(LoadOrCreateSelfSigned(Path.Combine(options.DataDirectory, ServerOptions.TlsDirectory), output), []);
        }
        if (options.TlsCertificateFile is { } certificate && options.TlsKeyFile is { } key)
        {
            const string optionNames = "--tls-cert/--tls-key";
            return new ServerCertificate(LoadPem(certificate, key, optionNames), LoadIntermediates(certificate, optionNames));
        }
        return null;
    }

    /// <summary>
    /// The certificates after the first in a chain file (a CA's fullchain.pem: the server's, then its intermediates).
    /// Sent with the server's, they let a client that trusts only the root CA build the chain.
    /// </summary>
    private static X509Certificate2Collection LoadIntermediates(string certificateFile, string optionNames)
    {
        var chain = new X509Certificate2Collection();
        try
        {
            chain.ImportFromPemFile(certificateFile);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"{optionNames}: cannot read the certificate chain in {certificateFile}: {OneLine(e.Message)}");
        }
        var server = chain[0]; // LoadPem has read this one, with its key
        chain.RemoveAt(0);
        server.Dispose();
        return chain;
    }

    /// <summary>The SHA-256 of the certificate's DER bytes, as <c>openssl x509 -fingerprint -sha256</c> prints it.</summary>
    public static string Sha256Fingerprint(X509Certificate2 certificate) =>
        string.Join(':', SHA256.HashData(certificate.RawData).Select(b => b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Loads a PEM certificate and its PEM private key, checking they belong together.</summary>
    public static X509Certificate2 LoadPem(string certificateFile, string keyFile, string optionNames)
    {
        foreach (var file in new[] { certificateFile, keyFile })
        {
            if (!File.Exists(file))
            {
                throw new StartupException($"{optionNames}: {file} does not exist.");
            }
        }
        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"{optionNames}: cannot read {certificateFile} or {keyFile}: {e.Message}");
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            // ArgumentException: no PEM in the file, or a key that is not the certificate's.
            throw new StartupException(
                $"{optionNames}: {certificateFile} and {keyFile} are not a PEM certificate and its matching unencrypted private key: {OneLine(e.Message)}");
        }
        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new StartupException($"{optionNames}: {keyFile} holds no private key for {certificateFile}.");
        }
        if (OperatingSystem.IsWindows())
        {
            // SChannel cannot use an ephemeral key; a PKCS#12 round trip gives it a persisted one.
            using (certificate)
            {
                return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
            }
        }
        return certificate;
    }

    /// <summary>Reuses DIR/cert.pem and DIR/key.pem, or makes them (directory 0700, key 0600, certificate 0644).</summary>
    public static X509Certificate2 LoadOrCreateSelfSigned(string directory, TextWriter output)
    {
        var certificatePath = Path.Combine(directory, CertificateFile);
        var keyPath = Path.Combine(directory, KeyFile);
        bool certificateExists = File.Exists(certificatePath), keyExists = File.Exists(keyPath);
        if (certificateExists && keyExists)
        {
            var existing = LoadPem(certificatePath, keyPath, "--tls-self-signed");
            if (existing.NotAfter < DateTime.Now)
            {
                output.WriteLine($"WARNING: the self-signed certificate {Path.GetFullPath(certificatePath)} expired on {existing.NotAfter:yyyy-MM-dd}; " +
                    $"clients will refuse it. Delete {Path.GetFullPath(directory)} to make a new one (clients must then trust the new certificate).");
            }
            return existing;
        }
        if (certificateExists || keyExists)
        {
            throw new StartupException(
                $"--tls-self-signed: {Path.GetFullPath(directory)} holds {(certificateExists ? CertificateFile : KeyFile)} but not {(certificateExists ? KeyFile : CertificateFile)}; " +
                "restore the missing file, or delete both to make a new certificate.");
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var certificate = CreateSelfSigned(key);
        try
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(directory);
            }
            else
            {
                Directory.CreateDirectory(directory, OwnerOnlyDirectory);
            }
            // The key first, owner-only from the moment it exists; the certificate last, so a crash in
            // between leaves a state the next start reports rather than a certificate without its key.
            WriteNew(keyPath, key.ExportPkcs8PrivateKeyPem(), OwnerReadWrite);
            WriteNew(certificatePath, certificate.ExportCertificatePem(), WorldReadable);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"--tls-self-signed: cannot write the certificate to {Path.GetFullPath(directory)}: {e.Message}");
        }
        output.WriteLine($"Created a self-signed TLS certificate {Path.GetFullPath(certificatePath)} (key {KeyFile} mode 0600), " +
            $"valid until {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}, SHA-256 fingerprint {Sha256Fingerprint(certificate)}.");
        output.WriteLine($"  Clients trust it by pinning that file, e.g. aws --ca-bundle {Path.GetFullPath(certificatePath)} ...");
        return LoadPem(certificatePath, keyPath, "--tls-self-signed");
    }

    /// <summary>
    /// An ECDSA P-256 certificate for this machine, valid for one year: SANs localhost, the host name,
    /// 127.0.0.1 and ::1; not a CA (it is trusted as itself, never as an issuer).
    /// </summary>
    public static X509Certificate2 CreateSelfSigned(ECDsa key)
    {
        var request = new CertificateRequest("CN=Tumbler self-signed", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        var hostName = MachineHostName();
        if (hostName is not null)
        {
            names.AddDnsName(hostName);
        }
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(names.Build(critical: false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1", "Server Authentication")], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        // No KeyUsage extension: OpenSSL only treats a certificate as self-signed (so usable as its own
        // trust anchor with --ca-bundle) when it has none or one that includes keyCertSign.
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(1));
    }

    private static string? MachineHostName()
    {
        try
        {
            var name = Dns.GetHostName().Trim().TrimEnd('.');
            return name.Length == 0 || name.Equals("localhost", StringComparison.OrdinalIgnoreCase) || Uri.CheckHostName(name) != UriHostNameType.Dns
                ? null
                : name;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return null;
        }
    }

    private static void WriteNew(string path, string content, UnixFileMode mode)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = mode;
        }
        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(content);
            writer.Write('\n');
        }
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode); // the umask may have taken bits from the create mode
        }
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();
}
