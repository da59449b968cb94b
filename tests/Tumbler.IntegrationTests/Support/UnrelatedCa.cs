using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Tumbler.IntegrationTests.Support;

/// <summary>A PEM file holding a CA certificate that issued none of the test databases' certificates; deleted on dispose.</summary>
internal sealed class UnrelatedCa : IDisposable
{
    public UnrelatedCa()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=Some other CA", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(PemFile, ca.ExportCertificatePem());
    }

    public string PemFile { get; } = Path.Combine(Path.GetTempPath(), $"tumbler-other-ca-{Guid.NewGuid():N}.pem");

    public void Dispose() => File.Delete(PemFile);
}
