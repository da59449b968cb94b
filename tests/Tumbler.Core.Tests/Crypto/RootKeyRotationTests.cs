using System.Security.Cryptography;
using Tumbler.Core.Crypto;
using Tumbler.Core.Secrets;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Core.Tests.Crypto;

/// <summary>
/// Root key rotation on a real SQLite store, interrupted at each of its points (the boundary hook throws, as a
/// crash would stop it; nothing after it runs): before the switch either key opens the store, after it only the new one.
/// </summary>
public sealed class RootKeyRotationTests : IAsyncLifetime
{
    private const string Region = "us-east-1";
    private const string Account = "123456789012";
    private readonly string _directory = Directory.CreateTempSubdirectory("tumbler-rootkey-").FullName;
    private readonly byte[] _oldKey = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _newKey = RandomNumberGenerator.GetBytes(32);
    private string _database = null!;
    private byte[] _blob = null!;
    private string _appKeyId = null!;

    private sealed class Crash : Exception;

    public async Task InitializeAsync()
    {
        _database = Path.Combine(_directory, "tumbler.db");
        await using var store = await OpenStoreAsync();
        var ring = await KeyRing.OpenAsync(store, _oldKey, Region, Account, TimeProvider.System, default);
        var key = await ring.CreateKeyAsync(store, _oldKey, "app", ["alias/app"], TimeProvider.System, default);
        _appKeyId = key.KeyId;
        _blob = ring.Encrypt(key.KeyId, new SecretPlaintext("the-secret", null), "arn:s", "v1");
    }

    public Task DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return Task.CompletedTask;
    }

    private async Task<SqliteSecretStore> OpenStoreAsync()
    {
        var store = new SqliteSecretStore(_database);
        await store.InitializeAsync(default);
        return store;
    }

    /// <summary>Opens the store with <paramref name="rootKey"/> as a restarting server would and reads the secret; false when the key is refused.</summary>
    private async Task<bool> OpensWith(byte[] rootKey)
    {
        await using var store = await OpenStoreAsync();
        try
        {
            var ring = await KeyRing.OpenAsync(store, rootKey, Region, Account, TimeProvider.System, default);
            Assert.Equal("the-secret", ring.Decrypt(_blob, "arn:s", "v1").Text);
            Assert.Equal(_appKeyId, ring.ResolveKeyId("alias/app"));
            return true;
        }
        catch (RootKeyMismatchException)
        {
            return false;
        }
    }

    private async Task RotateCrashingAt(string? point)
    {
        await using var store = await OpenStoreAsync();
        try
        {
            var count = await KeyRing.RotateRootKeyAsync(store, _oldKey, _newKey, p => { if (p == point) { throw new Crash(); } }, default);
            Assert.Equal(2, count);
        }
        catch (Crash)
        {
        }
    }

    [Fact]
    public async Task A_completed_rotation_opens_with_the_new_key_only()
    {
        await RotateCrashingAt(null);
        Assert.False(await OpensWith(_oldKey));
        Assert.True(await OpensWith(_newKey));
        Assert.False(await OpensWith(_oldKey));
    }

    [Fact]
    public async Task Interrupted_after_the_switch_only_the_new_key_opens()
    {
        await RotateCrashingAt("after-switch");
        Assert.False(await OpensWith(_oldKey));
        Assert.True(await OpensWith(_newKey));
    }

    [Fact]
    public async Task Interrupted_before_the_switch_the_new_key_finishes_it()
    {
        await RotateCrashingAt("after-prepare");
        Assert.True(await OpensWith(_newKey));
        Assert.False(await OpensWith(_oldKey));
        Assert.True(await OpensWith(_newKey));
    }

    [Fact]
    public async Task Interrupted_before_the_switch_the_old_key_still_opens_and_the_rotation_can_be_run_again()
    {
        await RotateCrashingAt("after-prepare");
        Assert.True(await OpensWith(_oldKey));
        // The old key's start forgot the prepared rotation: the new key is refused until rotate-root runs again.
        Assert.False(await OpensWith(_newKey));
        await RotateCrashingAt(null);
        Assert.True(await OpensWith(_newKey));
        Assert.False(await OpensWith(_oldKey));
    }

    [Fact]
    public async Task A_server_still_running_on_the_old_key_cannot_create_keys_after_the_switch_but_keeps_reading()
    {
        await using var store = await OpenStoreAsync();
        var ring = await KeyRing.OpenAsync(store, _oldKey, Region, Account, TimeProvider.System, default);
        await RotateCrashingAt(null);
        await Assert.ThrowsAsync<InvalidOperationException>(() => ring.CreateKeyAsync(store, _oldKey, "late", [], TimeProvider.System, default));
        Assert.Equal("the-secret", ring.Decrypt(_blob, "arn:s", "v1").Text);
        Assert.True(await OpensWith(_newKey));
    }

    [Fact]
    public async Task Rotation_refuses_a_wrong_current_key_and_leaves_the_store_as_it_was()
    {
        await using (var store = await OpenStoreAsync())
        {
            await Assert.ThrowsAsync<RootKeyMismatchException>(() =>
                KeyRing.RotateRootKeyAsync(store, RandomNumberGenerator.GetBytes(32), _newKey, null, default));
        }
        Assert.True(await OpensWith(_oldKey));
    }
}
