using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using Tumbler.Core.Crypto;
using Tumbler.Core.Secrets;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Core.Tests.Crypto;

/// <summary>
/// Key material rotation (KMS's RotateKeyOnDemand) on a real SQLite store: new values use the newest material, values
/// under older materials stay readable (after a restart and a root key rotation too), and a store written before
/// material versions existed (schema 4, unversioned blobs) still reads after its migration.
/// </summary>
public sealed class KeyMaterialRotationTests : IAsyncLifetime
{
    private const string Region = "us-east-1";
    private const string Account = "123456789012";
    private readonly string _directory = Directory.CreateTempSubdirectory("tumbler-material-").FullName;
    private readonly byte[] _rootKey = RandomNumberGenerator.GetBytes(32);
    private string _database = null!;
    private SqliteSecretStore _store = null!;

    public async Task InitializeAsync()
    {
        _database = Path.Combine(_directory, "tumbler.db");
        _store = await OpenStoreAsync(_database);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    private static async Task<SqliteSecretStore> OpenStoreAsync(string path)
    {
        var store = new SqliteSecretStore(path);
        await store.InitializeAsync(default);
        return store;
    }

    private Task<KeyRing> OpenRingAsync(SqliteSecretStore store, byte[]? rootKey = null) =>
        KeyRing.OpenAsync(store, rootKey ?? _rootKey, Region, Account, TimeProvider.System, default);

    private static SecretPlaintext Text(string text) => new(text, null);

    [Fact]
    public async Task New_values_use_the_new_material_and_old_values_stay_readable_after_a_restart()
    {
        var ring = await OpenRingAsync(_store);
        var key = await ring.CreateKeyAsync(_store, "app", ["alias/app"], TimeProvider.System, default);
        var before = ring.Encrypt(key.KeyId, Text("before-rotation"), "arn:s", "v1");
        // A copy of the store as it was before the rotation: a server that never saw the new material.
        await using (var copy = new SqliteConnection($"Data Source={_database}"))
        {
            copy.Open();
            using var command = copy.CreateCommand();
            command.CommandText = $"VACUUM INTO '{Path.Combine(_directory, "before.db")}'";
            command.ExecuteNonQuery();
        }

        var rotated = await ring.RotateMaterialAsync(_store, key.KeyId, TimeProvider.System, default);
        Assert.Equal([1, 2], rotated.Materials.Select(m => m.Version));
        var after = ring.Encrypt(key.KeyId, Text("after-rotation"), "arn:s", "v2");
        Assert.Equal(("before-rotation", "after-rotation"), (ring.Decrypt(before, "arn:s", "v1").Text, ring.Decrypt(after, "arn:s", "v2").Text));

        var reopened = await OpenRingAsync(_store);
        Assert.Equal(2, reopened.Find(key.KeyId)!.Materials.Count);
        Assert.Equal(("before-rotation", "after-rotation"), (reopened.Decrypt(before, "arn:s", "v1").Text, reopened.Decrypt(after, "arn:s", "v2").Text));

        // The new value's data key is wrapped under material 2: without it (the copy), it does not open; the old one does.
        await using var stale = await OpenStoreAsync(Path.Combine(_directory, "before.db"));
        var staleRing = await OpenRingAsync(stale);
        Assert.Equal("before-rotation", staleRing.Decrypt(before, "arn:s", "v1").Text);
        var refused = Assert.Throws<ServiceException>(() => staleRing.Decrypt(after, "arn:s", "v2"));
        Assert.Equal(ErrorCodes.DecryptionFailure, refused.ErrorCode);
    }

    [Fact]
    public async Task Rotating_the_default_key_keeps_sealed_credentials_readable_and_seals_new_ones_under_the_new_material()
    {
        var ring = await OpenRingAsync(_store);
        var old = ring.SealCredential("AKIAOLD", "old-secret");
        await ring.RotateMaterialAsync(_store, ring.DefaultKeyId, TimeProvider.System, default);
        var fresh = ring.SealCredential("AKIANEW", "new-secret");
        var reopened = await OpenRingAsync(_store);
        Assert.Equal(("old-secret", "new-secret"), (reopened.OpenCredential("AKIAOLD", old), reopened.OpenCredential("AKIANEW", fresh)));
        Assert.ThrowsAny<CryptographicException>(() => reopened.OpenCredential("AKIAOTHER", fresh));
    }

    [Fact]
    public async Task Rotated_materials_are_re_wrapped_by_a_root_key_rotation()
    {
        var ring = await OpenRingAsync(_store);
        var key = await ring.CreateKeyAsync(_store, "app", [], TimeProvider.System, default);
        var before = ring.Encrypt(key.KeyId, Text("one"), "arn:s", "v1");
        await ring.RotateMaterialAsync(_store, key.KeyId, TimeProvider.System, default);
        await ring.RotateMaterialAsync(_store, key.KeyId, TimeProvider.System, default);
        var after = ring.Encrypt(key.KeyId, Text("three"), "arn:s", "v3");

        var newRootKey = RandomNumberGenerator.GetBytes(32);
        Assert.Equal(2, await KeyRing.RotateRootKeyAsync(_store, _rootKey, newRootKey, null, default));
        await Assert.ThrowsAsync<RootKeyMismatchException>(() => OpenRingAsync(_store));
        var reopened = await OpenRingAsync(_store, newRootKey);
        Assert.Equal(3, reopened.Find(key.KeyId)!.Materials.Count);
        Assert.Equal(("one", "three"), (reopened.Decrypt(before, "arn:s", "v1").Text, reopened.Decrypt(after, "arn:s", "v3").Text));
    }

    [Fact]
    public async Task A_schema_4_store_with_unversioned_values_migrates_and_reads_unchanged()
    {
        var ring = await OpenRingAsync(_store);
        var key = await ring.CreateKeyAsync(_store, "app", ["alias/app"], TimeProvider.System, default);
        // What Tumbler wrote before material versions: format 1, no version field (material 1), and sealed blobs with no marker.
        var current = ring.Encrypt(key.KeyId, Text("legacy-value"), "arn:s", "v1");
        var legacyValue = new byte[current.Length - 4];
        legacyValue[0] = 1;
        current.AsSpan(1, 1 + current[1]).CopyTo(legacyValue.AsSpan(1));
        current.AsSpan(2 + current[1] + 4).CopyTo(legacyValue.AsSpan(2 + current[1]));
        var sealedNow = ring.SealCredential("AKIALEGACY", "legacy-secret");
        var legacySealed = sealedNow.AsSpan(1, 1 + sealedNow[1]).ToArray().Concat(sealedNow.AsSpan(2 + sealedNow[1] + 4).ToArray()).ToArray();
        await _store.DisposeAsync();

        // Put the store back in schema 4's shape: each key's one material in kms_keys.wrapped.
        await using (var connection = new SqliteConnection($"Data Source={_database}"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                ALTER TABLE kms_keys ADD COLUMN wrapped BLOB;
                ALTER TABLE kms_keys ADD COLUMN wrapped_next BLOB;
                UPDATE kms_keys SET wrapped = (SELECT m.wrapped FROM kms_key_materials m WHERE m.key_id = kms_keys.key_id AND m.version = 1);
                DROP TABLE kms_key_materials;
                PRAGMA user_version = 4;
                """;
            command.ExecuteNonQuery();
        }
        SqliteConnection.ClearAllPools();

        _store = await OpenStoreAsync(_database);
        var migrated = await OpenRingAsync(_store);
        Assert.Equal("legacy-value", migrated.Decrypt(legacyValue, "arn:s", "v1").Text);
        Assert.Equal("legacy-secret", migrated.OpenCredential("AKIALEGACY", legacySealed));
        Assert.Equal(key.KeyId, migrated.ResolveKeyId("alias/app"));
        // And the migrated key rotates like any other.
        await migrated.RotateMaterialAsync(_store, key.KeyId, TimeProvider.System, default);
        var after = migrated.Encrypt(key.KeyId, Text("new-value"), "arn:s", "v2");
        var reopened = await OpenRingAsync(_store);
        Assert.Equal(("legacy-value", "new-value"), (reopened.Decrypt(legacyValue, "arn:s", "v1").Text, reopened.Decrypt(after, "arn:s", "v2").Text));
    }
}
