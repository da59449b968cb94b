namespace Tumbler.Core.Access;

/// <summary>
/// Who is calling. <see cref="Unrestricted"/> principals (the root credential, and Tumbler's own
/// in-process rotation functions, which reach only the secret they rotate) skip policy evaluation;
/// every other principal is allowed only what its identity policies or a secret's resource policy allow.
/// </summary>
public sealed record Principal(string Arn, string AccountId, string? AccessKeyId, IReadOnlyList<PolicyDocument> IdentityPolicies, bool Unrestricted)
{
    public static Principal Root(string accountId, string? accessKeyId = null) =>
        new($"arn:aws:iam::{accountId}:root", accountId, accessKeyId, [], Unrestricted: true);

    public static Principal User(string arn, string accountId, string accessKeyId, IReadOnlyList<PolicyDocument> policies) =>
        new(arn, accountId, accessKeyId, policies, Unrestricted: false);

    /// <summary>The principal a built-in rotation function acts as; its client is scoped to one secret (ScopedSecretsClient).</summary>
    public static Principal Internal(string arn, string accountId) => new(arn, accountId, null, [], Unrestricted: true);
}

/// <summary>Where a request came from: the facts network conditions (aws:SourceIp, aws:SecureTransport) test.</summary>
public sealed record RequestOrigin(string? SourceIp, bool SecureTransport, string? UserAgent = null);
