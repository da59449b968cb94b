using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace Tumbler.Server.Audit;

/// <summary>
/// Bounds the audit records of requests that never authenticated (an unknown access key, a bad signature, an unreadable
/// body): each source address has a token bucket of <see cref="Burst"/> records refilled at <see cref="PerSecond"/>; the
/// requests beyond it are answered as usual but only counted, and the count goes into the <c>detail</c> of that
/// address's next record. Without it anyone who can reach the port could grow the audit log at line rate (and, once its
/// disk is full, stop every request), since only authenticated callers meet the access-key throttle. Authenticated
/// requests, allowed or denied, are always recorded one by one.
/// </summary>
public sealed class UnauthenticatedAuditLimit : IDisposable
{
    public const int Burst = 20;
    public const int PerSecond = 5;
    /// <summary>Addresses with a count waiting for their next record; beyond this the counts are dropped (memory stays bounded).</summary>
    private const int MaxCountedAddresses = 10_000;

    private readonly PartitionedRateLimiter<string> _limiter = PartitionedRateLimiter.Create<string, string>(
        address => RateLimitPartition.GetTokenBucketLimiter(address, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = Burst,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1.0 / PerSecond),
            QueueLimit = 0,
            AutoReplenishment = false, // the partitioned limiter refills every bucket from one timer
        }),
        StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, long> _unrecorded = new(StringComparer.Ordinal);

    /// <summary>
    /// True when this request from <paramref name="sourceIp"/> gets its own record, with how many before it did not;
    /// false when it is only counted.
    /// </summary>
    public bool TryRecord(string sourceIp, out long unrecordedBefore)
    {
        using var lease = _limiter.AttemptAcquire(sourceIp);
        if (lease.IsAcquired)
        {
            _unrecorded.TryRemove(sourceIp, out unrecordedBefore);
            return true;
        }
        if (_unrecorded.Count >= MaxCountedAddresses)
        {
            _unrecorded.Clear();
        }
        _unrecorded.AddOrUpdate(sourceIp, 1, static (_, count) => count + 1);
        unrecordedBefore = 0;
        return false;
    }

    /// <summary>The <c>detail</c> of a record that follows requests counted but not recorded.</summary>
    public static string Detail(long unrecordedBefore) =>
        $"{unrecordedBefore} earlier unauthenticated requests from this address were refused without a record each "
        + $"(beyond {Burst} at once or {PerSecond} per second)";

    public void Dispose() => _limiter.Dispose();
}
