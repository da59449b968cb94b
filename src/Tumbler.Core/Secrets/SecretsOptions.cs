using Tumbler.Core.Access;

namespace Tumbler.Core.Secrets;

public sealed record SecretsOptions
{
    public string AccountId { get; init; } = "123456789012";
    /// <summary>Deprecated (unlabelled) versions kept per secret before the oldest are pruned (spec §3.4).</summary>
    public int MaxDeprecatedVersions { get; init; } = 100;
    /// <summary>Versions younger than this are never pruned; above the limit a new version is refused instead.</summary>
    public TimeSpan MinAgeBeforePruning { get; init; } = TimeSpan.FromHours(24);
    public int MaxSecretValueBytes { get; init; } = 65536;
    public int MaxTagsPerSecret { get; init; } = 50;
}

/// <summary>Who is calling, from where, and in which region: the region comes from the request signature.</summary>
public sealed record CallContext(string Region, Principal Principal, RequestOrigin? Origin = null)
{
    public static CallContext AsRoot(string region, string accountId) => new(region, Principal.Root(accountId));
}
