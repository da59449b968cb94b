using System.Security.Cryptography;
using Tumbler.Core.Crypto;
using Tumbler.Core.Secrets;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Core.Tests.Crypto;

public sealed class KeyRingTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tumbler-keyring-").FullName;
    private SqliteSecretStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = new SqliteSecretStore(Path.Combine(_directory, "tumbler.db"));
        await _store.InitializeAsync(default);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task A_store_refuses_a_root_key_other_than_the_one_it_was_created_with()
    {
        var rootKey = RandomNumberGenerator.GetBytes(32);
        await KeyRing.OpenAsync(_store, rootKey, "us-east-1", "123456789012", TimeProvider.System, default);
        await KeyRing.OpenAsync(_store, rootKey, "us-east-1", "123456789012", TimeProvider.System, default);
        await Assert.ThrowsAsync<RootKeyMismatchException>(() =>
            KeyRing.OpenAsync(_store, RandomNumberGenerator.GetBytes(32), "us-east-1", "123456789012", TimeProvider.System, default));
    }

    [Fact]
    public async Task Keys_resolve_by_id_arn_alias_and_alias_arn_and_unknown_ones_are_an_error()
    {
        var rootKey = RandomNumberGenerator.GetBytes(32);
        var ring = await KeyRing.OpenAsync(_store, rootKey, "us-east-1", "123456789012", TimeProvider.System, default);
        var key = await ring.CreateKeyAsync(_store, "app key", ["alias/app"], TimeProvider.System, default);
        foreach (var reference in new[] { key.KeyId, key.Arn, "alias/app", "arn:aws:kms:us-east-1:123456789012:alias/app" })
        {
            Assert.Equal(key.KeyId, ring.ResolveKeyId(reference));
        }
        Assert.Equal(ring.DefaultKeyId, ring.ResolveKeyId(null));
        Assert.Equal(ring.DefaultKeyId, ring.ResolveKeyId("alias/aws/secretsmanager"));
        Assert.Equal("InvalidParameterException", Assert.Throws<ServiceException>(() => ring.ResolveKeyId("alias/nope")).ErrorCode);

        // A reopened ring unwraps the same keys: what one opening sealed, the next opens.
        var sealedValue = ring.Encrypt(key.KeyId, new SecretPlaintext("hello", null), "arn:x", "v1");
        var reopened = await KeyRing.OpenAsync(_store, rootKey, "us-east-1", "123456789012", TimeProvider.System, default);
        Assert.Equal("hello", reopened.Decrypt(sealedValue, "arn:x", "v1").Text);
        Assert.Equal("DecryptionFailure", Assert.Throws<ServiceException>(() => reopened.Decrypt(sealedValue, "arn:y", "v1")).ErrorCode);
    }

    [Fact]
    public async Task A_value_read_before_is_still_refused_when_its_key_is_disabled_or_its_blob_is_altered_or_moved()
    {
        // The second read of a version uses the data key unwrapped by the first: none of the checks may be skipped with it.
        var ring = await KeyRing.OpenAsync(_store, RandomNumberGenerator.GetBytes(32), "us-east-1", "123456789012", TimeProvider.System, default);
        var key = await ring.CreateKeyAsync(_store, "app key", [], TimeProvider.System, default);
        var blob = ring.Encrypt(key.KeyId, new SecretPlaintext("hello", null), "arn:x", "v1");
        Assert.Equal("hello", ring.Decrypt(blob, "arn:x", "v1").Text);
        Assert.Equal("hello", ring.Decrypt(blob, "arn:x", "v1").Text);

        ring.SetState(key.KeyId, enabled: false, deletionDate: null);
        Assert.Equal("DecryptionFailure", Assert.Throws<ServiceException>(() => ring.Decrypt(blob, "arn:x", "v1")).ErrorCode);
        ring.SetState(key.KeyId, enabled: true, deletionDate: null);
        Assert.Equal("hello", ring.Decrypt(blob, "arn:x", "v1").Text);

        var altered = blob.ToArray();
        altered[^1] ^= 1;
        Assert.Equal("DecryptionFailure", Assert.Throws<ServiceException>(() => ring.Decrypt(altered, "arn:x", "v1")).ErrorCode);
        Assert.Equal("DecryptionFailure", Assert.Throws<ServiceException>(() => ring.Decrypt(blob, "arn:x", "v2")).ErrorCode);
        Assert.Equal("DecryptionFailure", Assert.Throws<ServiceException>(() => ring.Decrypt(blob, "arn:y", "v1")).ErrorCode);

        ring.Remove(key.KeyId);
        Assert.Equal("DecryptionFailure", Assert.Throws<ServiceException>(() => ring.Decrypt(blob, "arn:x", "v1")).ErrorCode);
    }

    [Fact]
    public async Task Keys_past_their_deletion_date_are_purged_with_their_aliases_and_others_stay()
    {
        var rootKey = RandomNumberGenerator.GetBytes(32);
        var ring = await KeyRing.OpenAsync(_store, rootKey, "us-east-1", "123456789012", TimeProvider.System, default);
        var doomed = await ring.CreateKeyAsync(_store, "doomed", ["alias/doomed"], TimeProvider.System, default);
        var later = await ring.CreateKeyAsync(_store, "later", [], TimeProvider.System, default);
        var now = DateTimeOffset.UtcNow;
        await _store.UpdateKeyStateAsync(doomed.KeyId, false, now.AddMinutes(-1), default);
        await _store.UpdateKeyStateAsync(later.KeyId, false, now.AddDays(7), default);

        Assert.Equal([doomed.KeyId], await _store.PurgeKeysAsync(now, default));
        ring.Remove(doomed.KeyId);
        Assert.Null(ring.TryResolveKeyId("alias/doomed"));
        var remaining = (await _store.ListKeysAsync(default)).Select(k => k.KeyId).ToList();
        Assert.DoesNotContain(doomed.KeyId, remaining);
        Assert.Contains(later.KeyId, remaining);
        Assert.Empty(await _store.PurgeKeysAsync(now, default));
    }
}
