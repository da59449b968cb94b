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
        var key = await ring.CreateKeyAsync(store, "app", ["alias/app"], TimeProvider.System, default);
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
    public async Task A_server_that_cannot_find_the_new_key_keeps_reading_after_the_switch_and_refuses_new_keys_clearly()
    {
        await using var store = await OpenStoreAsync();
        var ring = await KeyRing.OpenAsync(store, _oldKey, Region, Account, TimeProvider.System, default);
        await RotateCrashingAt(null);
        var refused = await Assert.ThrowsAsync<ServiceException>(() => ring.CreateKeyAsync(store, "late", [], TimeProvider.System, default));
        Assert.Contains("restart the server with the new root key", refused.Message, StringComparison.Ordinal);
        Assert.Equal("the-secret", ring.Decrypt(_blob, "arn:s", "v1").Text);
        Assert.True(await OpensWith(_newKey));
    }

    /// <summary>A server on the old key whose data directory holds the next key (root.key.next), as rotate-root leaves it.</summary>
    private async Task<(KeyRing Ring, string NextKeyFile)> ServerFindingTheNextKeyAsync(SqliteSecretStore store)
    {
        var nextKeyFile = Path.Combine(_directory, "root.key.next");
        await File.WriteAllTextAsync(nextKeyFile, Convert.ToBase64String(_newKey) + "\n");
        var ring = await KeyRing.OpenAsync(store, new RootKeys(_oldKey, [Path.Combine(_directory, "root.key"), nextKeyFile]), Region, Account,
            TimeProvider.System, default);
        return (ring, nextKeyFile);
    }

    [Theory]
    [InlineData("after-prepare")]
    [InlineData(null)]
    public async Task Keys_created_and_rotated_by_a_running_server_during_the_rotation_open_with_whichever_key_rules(string? crashPoint)
    {
        await using var store = await OpenStoreAsync();
        var (ring, _) = await ServerFindingTheNextKeyAsync(store);
        var midKeys = new List<(string KeyId, byte[] Blob)>();
        await using var rotation = await OpenStoreAsync(); // the rotate-root process: its own store object on the same file
        try
        {
            await KeyRing.RotateRootKeyAsync(rotation, _oldKey, _newKey, point =>
            {
                if (point != "after-prepare")
                {
                    return;
                }
                // Between the preparation and the switch, the server creates a key and rotates another's material.
                var created = ring.CreateKeyAsync(store, "mid-rotation", [], TimeProvider.System, default).GetAwaiter().GetResult();
                midKeys.Add((created.KeyId, ring.Encrypt(created.KeyId, new SecretPlaintext("mid-secret", null), "arn:m", "v1")));
                ring.RotateMaterialAsync(store, _appKeyId, TimeProvider.System, default).GetAwaiter().GetResult();
                midKeys.Add((_appKeyId, ring.Encrypt(_appKeyId, new SecretPlaintext("mid-secret", null), "arn:m", "v1")));
                if (point == crashPoint)
                {
                    throw new Crash();
                }
            }, default);
        }
        catch (Crash)
        {
        }
        // After the switch (or the crash) the server goes on creating keys: under the new key, or under both.
        var late = await ring.CreateKeyAsync(store, "late", [], TimeProvider.System, default);
        midKeys.Add((late.KeyId, ring.Encrypt(late.KeyId, new SecretPlaintext("mid-secret", null), "arn:m", "v1")));

        if (crashPoint is not null)
        {
            // Crashed before the switch: the old key still rules (the new one would finish the switch), and every key opens with it.
            await AssertEveryKeyOpensWith(_oldKey, midKeys);
            await KeyRing.RotateRootKeyAsync(rotation, _oldKey, _newKey, null, default);
        }
        else
        {
            Assert.False(await OpensWith(_oldKey));
        }
        await AssertEveryKeyOpensWith(_newKey, midKeys);
    }

    private async Task AssertEveryKeyOpensWith(byte[] rootKey, IReadOnlyList<(string KeyId, byte[] Blob)> blobs)
    {
        await using var store = await OpenStoreAsync();
        var ring = await KeyRing.OpenAsync(store, rootKey, Region, Account, TimeProvider.System, default);
        Assert.Equal("the-secret", ring.Decrypt(_blob, "arn:s", "v1").Text);
        foreach (var (_, blob) in blobs)
        {
            Assert.Equal("mid-secret", ring.Decrypt(blob, "arn:m", "v1").Text);
        }
    }

    [Fact]
    public async Task A_server_restarted_on_the_old_key_during_a_rotation_it_can_follow_keeps_the_preparation()
    {
        await RotateCrashingAt("after-prepare");
        await using (var store = await OpenStoreAsync())
        {
            var (ring, _) = await ServerFindingTheNextKeyAsync(store);
            Assert.NotNull(await store.GetSettingAsync(KeyRing.NextRootKeyCheckSetting, default));
            await ring.CreateKeyAsync(store, "during", [], TimeProvider.System, default);
        }
        // The preparation left in place (with the new key's wrapping of the key made meanwhile): the new key finishes it.
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
