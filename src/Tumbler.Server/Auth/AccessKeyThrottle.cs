using System.Threading.RateLimiting;

namespace Tumbler.Server.Auth;

/// <summary>
/// Per-access-key request rate limit: a token bucket per access key id (System.Threading.RateLimiting).
/// Off unless a rate is given. Memory stays bounded: the partitioned limiter drops a key's bucket once it
/// has been full (idle) for ten seconds, and only keys with a valid signature ever reach it.
/// </summary>
public sealed class AccessKeyThrottle : IDisposable
{
    public const string Message = "Rate exceeded";

    private readonly PartitionedRateLimiter<string>? _limiter;

    /// <param name="requestsPerSecond">Sustained rate per access key; null: no limit.</param>
    /// <param name="burst">Bucket size (requests at once after idling); null: the rate rounded up, at least 1.</param>
    public AccessKeyThrottle(double? requestsPerSecond, int? burst)
    {
        if (requestsPerSecond is not { } rate)
        {
            return;
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rate, nameof(requestsPerSecond));
        var tokenLimit = burst ?? Math.Max(1, (int)Math.Ceiling(Math.Min(rate, int.MaxValue)));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokenLimit, nameof(burst));
        // One token every 1/rate seconds; the limiter refills by elapsed time, so fractional rates are exact.
        var options = new TokenBucketRateLimiterOptions
        {
            TokenLimit = tokenLimit,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromTicks(Math.Max(1, (long)(TimeSpan.TicksPerSecond / rate))),
            QueueLimit = 0,
            AutoReplenishment = false, // the partitioned limiter refills every bucket from one timer
        };
        _limiter = PartitionedRateLimiter.Create<string, string>(
            accessKeyId => RateLimitPartition.GetTokenBucketLimiter(accessKeyId, _ => options),
            StringComparer.Ordinal);
    }

    public bool Enabled => _limiter is not null;

    /// <summary>Takes one request from the access key's bucket; false when it is empty (the caller answers ThrottlingException).</summary>
    public bool TryAcquire(string accessKeyId)
    {
        if (_limiter is null)
        {
            return true;
        }
        using var lease = _limiter.AttemptAcquire(accessKeyId);
        return lease.IsAcquired;
    }

    public void Dispose() => _limiter?.Dispose();
}
