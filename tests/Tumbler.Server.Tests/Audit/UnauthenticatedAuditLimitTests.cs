using Tumbler.Server.Audit;

namespace Tumbler.Server.Tests.Audit;

/// <summary>The budget of audit records for requests that never authenticated (the server-level behaviour is in ServerAuditTests).</summary>
public sealed class UnauthenticatedAuditLimitTests
{
    [Theory]
    [InlineData("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64")]
    [InlineData("203.0.113.7", "203.0.113.7")]
    [InlineData("::ffff:203.0.113.7", "::ffff:203.0.113.7")]
    [InlineData(null, "")]
    public void An_IPv6_address_shares_its_budget_with_its_64(string? address, string source) =>
        Assert.Equal(source, UnauthenticatedAuditLimit.SourceOf(address));

    [Fact]
    public void Many_sources_together_get_the_total_budget_and_every_refusal_is_counted_once()
    {
        using var limit = new UnauthenticatedAuditLimit();
        var recorded = 0;
        for (var source = 0; source < 10; source++)
        {
            for (var i = 0; i < UnauthenticatedAuditLimit.Burst; i++)
            {
                recorded += limit.TryRecord($"198.51.100.{source}", out _) ? 1 : 0;
            }
        }
        // 10 sources of 20 each: the total bucket (100 at once) caps them, give or take its refill meanwhile.
        Assert.InRange(recorded, UnauthenticatedAuditLimit.TotalBurst, UnauthenticatedAuditLimit.TotalBurst + 5);

        // The last source was refused all along: its next record carries all of its refusals (those while waiting for a
        // token too), and gives them back when it cannot be written.
        var (first, waited) = NextRecord(limit, "198.51.100.9");
        Assert.Equal(UnauthenticatedAuditLimit.Burst + waited, first);
        limit.Restore("198.51.100.9", first);
        var (again, waitedAgain) = NextRecord(limit, "198.51.100.9");
        Assert.Equal(first + waitedAgain, again);
    }

    /// <summary>Tries until the source gets a record: its count, and how many tries were refused (and counted) first.</summary>
    private static (long Unrecorded, int Refused) NextRecord(UnauthenticatedAuditLimit limit, string source)
    {
        for (var refused = 0; refused < 100; refused++)
        {
            if (limit.TryRecord(source, out var unrecorded))
            {
                return (unrecorded, refused);
            }
            Thread.Sleep(50);
        }
        throw new InvalidOperationException($"{source} got no record in 5 s");
    }
}
