using Tumbler.Client.Model;
using Tumbler.Client.Tests.Support;

namespace Tumbler.Client.Tests;

public sealed class SecretCacheTests : IAsyncLifetime
{
    private readonly LiveServer _server = new();
    private readonly ManualClock _clock = new();
    private SecretsManagerClient _client = null!;

    public async Task InitializeAsync()
    {
        await _server.InitializeAsync();
        _client = _server.NewClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    private SecretCache NewCache(TimeSpan? ttl = null, int maxSize = 1024, TimeSpan? maxStaleness = null) => new(_client, new SecretCacheOptions
    {
        Ttl = ttl ?? TimeSpan.FromMinutes(5),
        MaxSize = maxSize,
        MaxStaleness = maxStaleness ?? TimeSpan.FromHours(1),
        TimeProvider = _clock,
    });

    [Fact]
    public async Task Within_the_ttl_values_come_from_memory()
    {
        await _server.CreateAsync("app/db", "p1");
        using var cache = NewCache();
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("p1", await cache.GetSecretStringAsync("app/db"));
            _clock.Advance(TimeSpan.FromSeconds(29));
        }
        Assert.Equal(1, _server.Calls["GetSecretValue"]);
        Assert.Equal(0, _server.Calls["DescribeSecret"]);
    }

    [Fact]
    public async Task After_the_ttl_an_unchanged_version_costs_one_DescribeSecret_and_no_GetSecretValue()
    {
        await _server.CreateAsync("app/db", "p1");
        using var cache = NewCache();
        var first = await cache.GetSecretValueAsync("app/db");
        _clock.Advance(TimeSpan.FromMinutes(6));
        Assert.Same(first, await cache.GetSecretValueAsync("app/db"));
        Assert.Same(first, await cache.GetSecretValueAsync("app/db")); // TTL started again
        Assert.Equal((1, 1), (_server.Calls["GetSecretValue"], _server.Calls["DescribeSecret"]));
    }

    [Fact]
    public async Task A_new_version_is_picked_up_once_the_ttl_lapses()
    {
        await _server.CreateAsync("app/db", "p1");
        using var cache = NewCache();
        Assert.Equal("p1", await cache.GetSecretStringAsync("app/db"));
        var put = await _server.PutAsync("app/db", "p2");

        _clock.Advance(TimeSpan.FromMinutes(4));
        Assert.Equal("p1", await cache.GetSecretStringAsync("app/db"));
        _clock.Advance(TimeSpan.FromMinutes(2));
        var fresh = await cache.GetSecretValueAsync("app/db");
        Assert.Equal(("p2", put.VersionId), (fresh.SecretString, fresh.VersionId));
        Assert.Equal((2, 1), (_server.Calls["GetSecretValue"], _server.Calls["DescribeSecret"]));

        // Versions asked for by id or stage are cached apart.
        var previous = await cache.GetSecretValueAsync("app/db", null, "AWSPREVIOUS");
        Assert.Equal("p1", previous.SecretString);
        Assert.Equal("p2", (await cache.GetSecretValueAsync("app/db", put.VersionId, null)).SecretString);
    }

    [Fact]
    public async Task When_the_server_is_down_the_last_value_is_served_up_to_the_staleness_bound()
    {
        await _server.CreateAsync("app/db", "p1");
        using var cache = NewCache(maxStaleness: TimeSpan.FromMinutes(30));
        Assert.Equal("p1", await cache.GetSecretStringAsync("app/db"));
        await _server.StopAsync();

        _clock.Advance(TimeSpan.FromMinutes(6));
        Assert.Equal("p1", await cache.GetSecretStringAsync("app/db"));
        _clock.Advance(TimeSpan.FromMinutes(20));
        Assert.Equal("p1", await cache.GetSecretStringAsync("app/db"));
        _clock.Advance(TimeSpan.FromMinutes(5)); // 31 minutes since the server last confirmed it
        await Assert.ThrowsAsync<TumblerClientException>(() => cache.GetSecretStringAsync("app/db"));
        // refreshNow never serves stale.
        await Assert.ThrowsAsync<TumblerClientException>(() => cache.GetSecretValueAsync("app/db", null, null, refreshNow: true));
    }

    [Fact]
    public async Task A_deleted_secret_is_an_error_not_a_stale_value()
    {
        await _server.CreateAsync("app/db", "p1");
        using var cache = NewCache();
        await cache.GetSecretValueAsync("app/db");
        await _server.RawAsync("DeleteSecret", """{"SecretId":"app/db","ForceDeleteWithoutRecovery":true}""");
        _clock.Advance(TimeSpan.FromMinutes(6));
        var error = await Assert.ThrowsAsync<TumblerApiException>(() => cache.GetSecretValueAsync("app/db"));
        Assert.Equal("ResourceNotFoundException", error.ErrorCode);
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public async Task A_secret_deleted_and_made_again_under_its_name_is_the_new_one_once_the_ttl_lapses()
    {
        await _server.CreateAsync("app/remade", "old");
        using var cache = NewCache();
        Assert.Equal("old", await cache.GetSecretStringAsync("app/remade"));
        await _server.RawAsync("DeleteSecret", """{"SecretId":"app/remade","ForceDeleteWithoutRecovery":true}""");
        await _server.CreateAsync("app/remade", "new");
        _clock.Advance(TimeSpan.FromMinutes(6));
        Assert.Equal("new", await cache.GetSecretStringAsync("app/remade"));
    }

    [Fact]
    public async Task A_secret_scheduled_for_deletion_is_an_error_once_the_ttl_lapses_as_GetSecretValue_answers()
    {
        await _server.CreateAsync("app/db", "p1");
        using var cache = NewCache();
        await cache.GetSecretValueAsync("app/db");
        await _server.RawAsync("DeleteSecret", """{"SecretId":"app/db","RecoveryWindowInDays":7}""");
        _clock.Advance(TimeSpan.FromMinutes(6));
        // DescribeSecret still answers for it; the cache must not take that for "unchanged".
        var error = await Assert.ThrowsAsync<TumblerApiException>(() => cache.GetSecretValueAsync("app/db"));
        Assert.Equal("InvalidRequestException", error.ErrorCode);
        Assert.Contains("marked for deletion", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public async Task Concurrent_misses_make_one_call()
    {
        await _server.CreateAsync("app/db", "p1");
        using var cache = NewCache();
        var values = await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Task.Run(() => cache.GetSecretStringAsync("app/db"))));
        Assert.All(values, v => Assert.Equal("p1", v));
        Assert.Equal(1, _server.Calls["GetSecretValue"]);

        _clock.Advance(TimeSpan.FromMinutes(6));
        await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Task.Run(() => cache.GetSecretStringAsync("app/db"))));
        Assert.Equal(1, _server.Calls["DescribeSecret"]);
    }

    [Fact]
    public async Task The_least_recently_used_secret_is_evicted_beyond_the_size_bound()
    {
        await _server.CreateAsync("a", "1");
        await _server.CreateAsync("b", "2");
        await _server.CreateAsync("c", "3");
        using var cache = NewCache(maxSize: 2);
        await cache.GetSecretValueAsync("a");
        await cache.GetSecretValueAsync("b");
        await cache.GetSecretValueAsync("a"); // b is now the least recently used
        await cache.GetSecretValueAsync("c");
        Assert.Equal(2, cache.Count);
        Assert.Equal(3, _server.Calls["GetSecretValue"]);
        await cache.GetSecretValueAsync("a");
        Assert.Equal(3, _server.Calls["GetSecretValue"]);
        await cache.GetSecretValueAsync("b");
        Assert.Equal(4, _server.Calls["GetSecretValue"]);
    }

    [Fact]
    public async Task An_auth_failure_refreshes_at_once_and_retries_once_with_the_new_password()
    {
        await _server.CreateAsync("app/db", "old-password");
        using var cache = NewCache(ttl: TimeSpan.FromHours(1));
        Assert.Equal("old-password", await cache.GetSecretStringAsync("app/db"));
        // Rotation replaces the password in the database and in Tumbler; the cache still holds the old one.
        var database = "new-password";
        await _server.PutAsync("app/db", database);

        var attempts = new List<string>();
        var result = await cache.ExecuteWithRefreshOnAuthFailureAsync("app/db", secret =>
        {
            attempts.Add(secret.SecretString!);
            return secret.SecretString == database ? Task.FromResult("connected") : throw new UnauthorizedAccessException("Access denied for user 'app'");
        }, e => e is UnauthorizedAccessException);

        Assert.Equal("connected", result);
        Assert.Equal(["old-password", "new-password"], attempts);
        Assert.Equal("new-password", await cache.GetSecretStringAsync("app/db")); // the cache now holds it
        // The cached value, AWSPENDING (none), AWSCURRENT refreshed.
        Assert.Equal(3, _server.Calls["GetSecretValue"]);
    }

    [Fact]
    public async Task An_auth_failure_with_no_newer_version_is_rethrown_after_one_attempt()
    {
        await _server.CreateAsync("app/db", "pw");
        using var cache = NewCache();
        var attempts = 0;
        var error = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => cache.ExecuteWithRefreshOnAuthFailureAsync<int>("app/db", _ =>
        {
            attempts++;
            throw new UnauthorizedAccessException("denied");
        }, e => e is UnauthorizedAccessException));
        Assert.Equal("denied", error.Message);
        Assert.Equal(1, attempts);

        // Failures that are not authentication failures are not retried.
        await Assert.ThrowsAsync<TimeoutException>(() => cache.ExecuteWithRefreshOnAuthFailureAsync<int>("app/db",
            _ => throw new TimeoutException(), e => e is UnauthorizedAccessException));
        // The first value, AWSPENDING (none), AWSCURRENT refreshed (same version); the second call used the cache.
        Assert.Equal(3, _server.Calls["GetSecretValue"]);
    }

    private async Task<string> PutPendingAsync(string name, string value)
    {
        using var admin = _server.NewAdminClient();
        var put = await admin.PutSecretValueAsync(new PutSecretValueRequest { SecretId = name, SecretString = value, VersionStages = ["AWSPENDING"] });
        return put.VersionId!;
    }

    [Fact]
    public async Task In_the_rotation_window_an_auth_failure_falls_back_to_the_pending_password()
    {
        await _server.CreateAsync("app/db", "old-password");
        using var cache = NewCache(ttl: TimeSpan.FromHours(1));
        Assert.Equal("old-password", await cache.GetSecretStringAsync("app/db"));
        // setSecret done, finishSecret not yet: the database has the pending password, AWSCURRENT still the old one.
        await PutPendingAsync("app/db", "pending-password");

        var attempts = new List<string>();
        var result = await cache.ExecuteWithRefreshOnAuthFailureAsync("app/db", secret =>
        {
            attempts.Add(secret.SecretString!);
            return secret.SecretString == "pending-password" ? Task.FromResult("connected") : throw new UnauthorizedAccessException("denied");
        }, e => e is UnauthorizedAccessException);

        Assert.Equal("connected", result);
        Assert.Equal(["old-password", "pending-password"], attempts);
        Assert.Equal("old-password", await cache.GetSecretStringAsync("app/db")); // the pending value is not cached as current
        // The cached value, then AWSPENDING, which worked: AWSCURRENT was not asked again.
        Assert.Equal(2, _server.Calls["GetSecretValue"]);
    }

    [Fact]
    public async Task When_a_rotation_finished_and_the_next_is_in_its_window_the_pending_password_is_tried_first()
    {
        await _server.CreateAsync("app/db", "p1");
        using var cache = NewCache(ttl: TimeSpan.FromHours(1));
        await cache.GetSecretValueAsync("app/db");
        await _server.PutAsync("app/db", "p2"); // a rotation finished...
        await PutPendingAsync("app/db", "p3");  // ...and the next one is in its window

        var attempts = new List<string>();
        var result = await cache.ExecuteWithRefreshOnAuthFailureAsync("app/db", secret =>
        {
            attempts.Add(secret.SecretString!);
            return secret.SecretString == "p3" ? Task.FromResult(1) : throw new UnauthorizedAccessException(secret.SecretString);
        }, e => e is UnauthorizedAccessException);

        Assert.Equal(1, result);
        Assert.Equal(["p1", "p3"], attempts);
    }

    [Fact]
    public async Task Without_a_pending_version_the_original_error_is_rethrown_after_at_most_three_attempts()
    {
        await _server.CreateAsync("app/db", "p1");
        using var cache = NewCache(ttl: TimeSpan.FromHours(1));
        await cache.GetSecretValueAsync("app/db");
        await _server.PutAsync("app/db", "p2");

        var attempts = new List<string>();
        var error = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => cache.ExecuteWithRefreshOnAuthFailureAsync<int>("app/db", secret =>
        {
            attempts.Add(secret.SecretString!);
            throw new UnauthorizedAccessException("denied " + secret.SecretString);
        }, e => e is UnauthorizedAccessException));
        Assert.Equal("denied p1", error.Message);
        Assert.Equal(["p1", "p2"], attempts);

        // A pending version that is refused too: three attempts at most, the first error rethrown.
        await PutPendingAsync("app/db", "p3");
        await _server.PutAsync("app/db", "p4");
        attempts.Clear();
        error = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => cache.ExecuteWithRefreshOnAuthFailureAsync<int>("app/db", secret =>
        {
            attempts.Add(secret.SecretString!);
            throw new UnauthorizedAccessException("denied " + secret.SecretString);
        }, e => e is UnauthorizedAccessException));
        Assert.Equal("denied p2", error.Message);
        Assert.Equal(["p2", "p3", "p4"], attempts);
    }
}
