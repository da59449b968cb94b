namespace Tumbler.Client;

/// <summary>Settings of <see cref="SecretCache"/>; the defaults are those of AWS's Java and Go caching clients where they have one.</summary>
public sealed class SecretCacheOptions
{
    /// <summary>
    /// How long a value is served without asking the server (AWS caching clients: 1 hour). After it, one
    /// DescribeSecret checks whether the wanted version is still the one cached; only if not is the value
    /// fetched again. Zero: no caching, every call is a GetSecretValue.
    /// </summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Most secrets (secret id + version) held; the least recently used one goes first (AWS: 1024).</summary>
    public int MaxSize { get; set; } = 1024;

    /// <summary>
    /// Stale-if-error bound: when the server cannot be reached (or answers 5xx/throttling), the last value is
    /// served for at most this long after it was last confirmed by the server. Zero: never serve stale.
    /// </summary>
    public TimeSpan MaxStaleness { get; set; } = TimeSpan.FromHours(24);

    /// <summary>After a failed refresh, the stale value is served without asking again for this long, doubling per failure up to <see cref="MaxErrorRetryInterval"/>.</summary>
    public TimeSpan ErrorRetryInterval { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxErrorRetryInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The stage served when none is asked for.</summary>
    public string DefaultVersionStage { get; set; } = "AWSCURRENT";

    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    internal void Validate()
    {
        if (Ttl < TimeSpan.Zero || MaxStaleness < TimeSpan.Zero || ErrorRetryInterval < TimeSpan.Zero || MaxErrorRetryInterval < TimeSpan.Zero)
        {
            throw new ArgumentException("SecretCacheOptions: durations must not be negative.");
        }
        if (MaxSize < 1)
        {
            throw new ArgumentException("SecretCacheOptions: MaxSize must be at least 1.");
        }
    }
}
