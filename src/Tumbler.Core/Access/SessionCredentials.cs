using System.Security.Cryptography;
using System.Text;
using Tumbler.Core.Crypto;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Access;

/// <summary>A temporary credential as the AWS SDKs read it from the environment.</summary>
public sealed record SessionCredential(string AccessKeyId, string SecretAccessKey, string SessionToken, DateTimeOffset Expiration);

/// <summary>A session credential as the request verifier needs it.</summary>
public sealed record ResolvedSession(string SecretAccessKey, string SessionTokenSha256, DateTimeOffset Expiration, Principal Principal);

/// <summary>Gives an external rotation function a credential for one step of one rotation.</summary>
public interface IRotationCredentialIssuer
{
    Task<SessionCredential> IssueAsync(string secretArn, string functionName, string versionId, TimeSpan lifetime, CancellationToken ct);
    Task RevokeAsync(string accessKeyId, CancellationToken ct);
}

/// <summary>
/// Short-lived, least-privilege credentials for external rotation functions (ASIA... key, secret key
/// and session token, as STS issues them). Their principal may call only DescribeSecret,
/// GetSecretValue, PutSecretValue and UpdateSecretVersionStage on the secret being rotated, and
/// GetRandomPassword: what AWSSecretsManagerRotationPolicy gives a rotation Lambda. They are stored
/// (secret key sealed, token as its SHA-256), so every node accepts them; they are revoked when the
/// step ends and expire on their own shortly after its timeout, should the server die meanwhile.
/// </summary>
public sealed class SessionCredentialService(IFunctionStore store, KeyRing keys, TimeProvider time) : IRotationCredentialIssuer
{
    public const string AccessKeyPrefix = "ASIA";

    public static bool IsSessionKey(string accessKeyId) => accessKeyId.StartsWith(AccessKeyPrefix, StringComparison.Ordinal);

    public async Task<SessionCredential> IssueAsync(string secretArn, string functionName, string versionId, TimeSpan lifetime, CancellationToken ct)
    {
        var (id, secret) = AccessKeys.NewPair(AccessKeyPrefix);
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(96));
        var now = time.GetUtcNow();
        var expiration = now + lifetime;
        await store.InsertSessionAsync(new SessionCredentialEntity(id, keys.SealCredential(id, secret), TokenSha256(token), secretArn, functionName,
            versionId, expiration, now), now, ct);
        return new SessionCredential(id, secret, token, expiration);
    }

    public Task RevokeAsync(string accessKeyId, CancellationToken ct) => store.DeleteSessionAsync(accessKeyId, ct);

    /// <summary>The session's secret, token hash, expiry and principal; null when unknown, revoked or unreadable.</summary>
    public async Task<ResolvedSession?> ResolveAsync(string accessKeyId, CancellationToken ct)
    {
        var session = await store.FindSessionAsync(accessKeyId, ct);
        if (session is null)
        {
            return null;
        }
        string secret;
        try
        {
            secret = keys.OpenCredential(session.AccessKeyId, session.WrappedSecret);
        }
        catch (CryptographicException)
        {
            return null;
        }
        var account = session.SecretArn.Split(':') is { Length: > 4 } parts ? parts[4] : "";
        var principal = new Principal($"arn:aws:sts::{account}:assumed-role/tumbler-function-{session.FunctionName}/{session.VersionId}", account,
            session.AccessKeyId, [PolicyFor(session.SecretArn)], Unrestricted: false);
        return new ResolvedSession(secret, session.SessionTokenSha256, session.Expiration, principal);
    }

    public static string TokenSha256(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>AWSSecretsManagerRotationPolicy narrowed to the one secret.</summary>
    public static PolicyDocument PolicyFor(string secretArn) => PolicyDocument.Parse($$"""
        {"Version": "2012-10-17", "Statement": [
          {"Effect": "Allow", "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
             "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"], "Resource": {{System.Text.Json.JsonSerializer.Serialize(secretArn, PolicyJson.Default.String)}}},
          {"Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"}]}
        """, PolicyKind.Identity);
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class PolicyJson : System.Text.Json.Serialization.JsonSerializerContext;
