using System.Data.Common;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tumbler.Core.Rotation;

namespace Tumbler.Rotators;

/// <summary>
/// Verified TLS to a database (secret <c>ssl</c> true), the same for every engine: the drivers connect with TLS
/// required and this check as their certificate callback, so a refusal happens in the handshake, before anything of
/// the login is sent, and says why.
/// </summary>
internal static class ServerCertificateCheck
{
    /// <summary>
    /// The certificate check of verified TLS (secret <c>ssl</c> true): the host name must match, and the
    /// chain must lead to the system's trust store, or, when the settings name a CA file, to one of its
    /// certificates (and only those). Revocation is not checked, as the templates do not.
    /// </summary>
    /// <returns>Null when the certificate is accepted, else why not.</returns>
    public static string? Verify(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors,
        X509Certificate2Collection? trustedRoots)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return "the server sent no certificate";
        }
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return "it is not issued for the host name in the secret";
        }
        if (trustedRoots is null)
        {
            return errors == SslPolicyErrors.None ? null : $"it is not trusted by the system's CA store ({Describe(presented)})";
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trustedRoots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        // As SslStream requires of a chain to the system store: a certificate with key usages must allow server authentication.
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }
        bool built;
        if (certificate is X509Certificate2 leaf)
        {
            built = chain.Build(leaf);
        }
        else
        {
            using var copy = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            built = chain.Build(copy);
        }
        return built ? null : $"it is not issued by the configured CA ({Describe(chain)})";

        static string Describe(X509Chain? chain) =>
            chain is null || chain.ChainStatus.Length == 0
                ? "no chain"
                : string.Join(", ", chain.ChainStatus.Select(status => status.Status.ToString()).Distinct());
    }

    /// <summary>The certificates of a PEM CA file (the rotation CA setting), or null when none is named.</summary>
    public static X509Certificate2Collection? LoadCaFile(string? path)
    {
        if (path is null)
        {
            return null;
        }
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new RotationStepException($"The TLS CA file {path} cannot be read: {e.Message}");
        }
        return certificates.Count > 0
            ? certificates
            : throw new RotationStepException($"The TLS CA file {path} holds no PEM certificate");
    }

    /// <summary>Why a verified-TLS login failed: the certificate's problem when the check refused it, else the driver's error.</summary>
    public static string Describe(string? certificateProblem, DbException error) =>
        certificateProblem is not null ? $"the server's TLS certificate was refused: {certificateProblem}" : DatabaseLogin.Describe(error);
}
