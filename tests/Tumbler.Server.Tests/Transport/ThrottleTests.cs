using System.Net;
using Tumbler.Server.Auth;
using Tumbler.Server.Hosting;
using Tumbler.Server.Tests.Support;

namespace Tumbler.Server.Tests.Transport;

/// <summary>Per-access-key rate limits: --rate-limit / --rate-burst.</summary>
public sealed class ThrottleTests
{
    [Fact]
    public async Task Over_the_burst_a_key_gets_ThrottlingException_and_after_waiting_it_is_served_again()
    {
        using var temp = new TempDataDirectory();
        await using var server = await TumblerServer.StartAsync(
            new ServerOptions { DataDirectory = temp.Path, Listen = ["127.0.0.1:0"], RateLimit = 0.2, RateBurst = 2 }, TextWriter.Null, default);
        using var http = new HttpClient();

        // Requests that fail verification take nothing from the bucket.
        for (var i = 0; i < 3; i++)
        {
            using var unsigned = await SignedCall.SendAsync(http, server.Endpoint, server.Root, "ListSecrets", secretAccessKey: "wrong-secret");
            Assert.Contains("InvalidSignatureException", await unsigned.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        for (var i = 0; i < 2; i++)
        {
            using var ok = await SignedCall.SendAsync(http, server, "ListSecrets");
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        using (var throttled = await SignedCall.SendAsync(http, server, "ListSecrets"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, throttled.StatusCode);
            Assert.Equal("""{"__type":"ThrottlingException","message":"Rate exceeded"}""", await throttled.Content.ReadAsStringAsync());
            Assert.Equal("ThrottlingException", throttled.Headers.GetValues("x-amzn-ErrorType").Single());
        }

        // One token per five seconds (slow enough that a loaded machine cannot refill the bucket between the
        // requests above); the refill comes from a timer, so wait for it rather than guess its moment.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            using var again = await SignedCall.SendAsync(http, server, "ListSecrets");
            if (again.StatusCode == HttpStatusCode.OK)
            {
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "no token came back within 20 s");
            await Task.Delay(500);
        }
    }

    [Fact]
    public void Each_access_key_has_its_own_bucket()
    {
        using var throttle = new AccessKeyThrottle(1, 2);
        Assert.True(throttle.TryAcquire("AKIAFIRST"));
        Assert.True(throttle.TryAcquire("AKIAFIRST"));
        Assert.False(throttle.TryAcquire("AKIAFIRST"));
        Assert.True(throttle.TryAcquire("AKIASECOND"));
        Assert.True(throttle.TryAcquire("AKIASECOND"));
        Assert.False(throttle.TryAcquire("AKIASECOND"));
        Assert.False(throttle.TryAcquire("AKIAFIRST"));
    }

    [Fact]
    public async Task Fractional_rates_refill_at_that_rate_and_the_default_burst_is_the_rate_rounded_up()
    {
        using var fast = new AccessKeyThrottle(2.5, null);
        Assert.Equal(3, Enumerable.Range(0, 10).Count(_ => fast.TryAcquire("AKIAFAST")));

        using var slow = new AccessKeyThrottle(0.5, null);
        var started = System.Diagnostics.Stopwatch.StartNew();
        Assert.True(slow.TryAcquire("AKIASLOW"));
        Assert.False(slow.TryAcquire("AKIASLOW"));
        await Task.Delay(TimeSpan.FromSeconds(1.2));
        Assert.False(slow.TryAcquire("AKIASLOW")); // one token per two seconds
        // The refill comes from a timer: on a loaded machine it may be late, never early.
        while (!slow.TryAcquire("AKIASLOW"))
        {
            Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), "no token came back within 10 s");
            await Task.Delay(50);
        }
        Assert.True(started.Elapsed >= TimeSpan.FromSeconds(1.9), $"a token came back after only {started.Elapsed}");
    }

    [Fact]
    public void Off_by_default()
    {
        using var off = new AccessKeyThrottle(null, null);
        Assert.False(off.Enabled);
        Assert.All(Enumerable.Range(0, 1000), _ => Assert.True(off.TryAcquire("AKIAANY")));
    }
}
