using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;

namespace Tumbler.Server.Audit;

/// <summary>
/// Bounds the audit records of requests that never authenticated (an unknown access key, a bad signature, an unreadable
/// body): each source (an IPv4 address, an IPv6 /64, as one host usually holds a whole /64) has a token bucket of
/// <see cref="Burst"/> records refilled at <see cref="PerSecond"/>, and all sources together one of
/// <see cref="TotalBurst"/> refilled at <see cref="TotalPerSecond"/>. The requests beyond them are answered as usual but
/// only counted, and the count goes into the <c>detail</c> of that source's next such record. Without it anyone who can
/// reach the port could grow the audit log at line rate (and, once its disk is full, stop every request), since only
/// authenticated callers meet the access-key throttle. Authenticated requests, allowed or denied, are always recorded.
/// </summary>
public sealed class UnauthenticatedAuditLimit : IDisposable
{
    public const int Burst = 20;
    public const int PerSecond = 5;
    public const int TotalBurst = 100;
    public const int TotalPerSecond = 20;
    /// <summary>Sources with a count waiting for their next record; beyond this the counts are dropped (memory stays bounded).</summary>
    private const int MaxCountedSources = 10_000;

    private readonly PartitionedRateLimiter<string> _perSource = PartitionedRateLimiter.Create<string, string>(
        // The partitioned limiter refills every source's bucket from one timer.
        source => RateLimitPartition.GetTokenBucketLimiter(source, _ => Bucket(Burst, PerSecond, autoReplenishment: false)),
        StringComparer.Ordinal);

    private readonly TokenBucketRateLimiter _total = new(Bucket(TotalBurst, TotalPerSecond, autoReplenishment: true));
    private readonly ConcurrentDictionary<string, long> _unrecorded = new(StringComparer.Ordinal);
    private int _countedSources;

    private static TokenBucketRateLimiterOptions Bucket(int burst, int perSecond, bool autoReplenishment) => new()
    {
        TokenLimit = burst,
        TokensPerPeriod = 1,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1.0 / perSecond),
        QueueLimit = 0,
        AutoReplenishment = autoReplenishment,
    };

    /// <summary>The address a budget belongs to: IPv6 addresses by their /64.</summary>
    public static string SourceOf(string? sourceIp)
    {
        if (sourceIp is null || !IPAddress.TryParse(sourceIp, out var address) || address.AddressFamily != AddressFamily.InterNetworkV6
            || address.IsIPv4MappedToIPv6)
        {
            return sourceIp ?? "";
        }
        var bytes = address.GetAddressBytes();
        bytes.AsSpan(8).Clear();
        return new IPAddress(bytes) + "/64";
    }

    /// <summary>
    /// True when this request from <paramref name="source"/> (see <see cref="SourceOf"/>) gets its own record, with how
    /// many before it did not; false when it is only counted.
    /// </summary>
    public bool TryRecord(string source, out long unrecordedBefore)
    {
        using (var lease = _perSource.AttemptAcquire(source))
        {
            if (lease.IsAcquired)
            {
                using var total = _total.AttemptAcquire();
                if (total.IsAcquired)
                {
                    if (_unrecorded.TryRemove(source, out unrecordedBefore))
                    {
                        Interlocked.Decrement(ref _countedSources);
                    }
                    return true;
                }
            }
        }
        Count(source, 1);
        unrecordedBefore = 0;
        return false;
    }

    /// <summary>Puts back a count taken by <see cref="TryRecord"/> whose record could not be written.</summary>
    public void Restore(string source, long unrecorded)
    {
        if (unrecorded > 0)
        {
            Count(source, unrecorded);
        }
    }

    private void Count(string source, long requests)
    {
        if (_unrecorded.TryAdd(source, requests))
        {
            if (Interlocked.Increment(ref _countedSources) > MaxCountedSources)
            {
                _unrecorded.Clear();
                Volatile.Write(ref _countedSources, 0);
            }
            return;
        }
        _unrecorded.AddOrUpdate(source, requests, (_, count) => count + requests);
    }

    /// <summary>The <c>detail</c> of a record that follows requests counted but not recorded.</summary>
    public static string Detail(long unrecordedBefore) =>
        $"{unrecordedBefore} earlier unauthenticated requests from this address were refused without a record each "
        + $"(beyond {Burst} at once or {PerSecond} per second per address, or {TotalPerSecond} per second in all)";

    public void Dispose()
    {
        _perSource.Dispose();
        _total.Dispose();
    }
}
