using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Crypto;

/// <summary>
/// The KMS-like keys, unwrapped once with the root key and kept in memory so that a read costs one
/// data-key unwrap and one decryption. Each secret version gets its own data key.
/// </summary>
public sealed class KeyRing
{
    public const string DefaultAlias = "alias/aws/secretsmanager";
    /// <summary>Name of the store setting holding the root key check value.</summary>
    public const string RootKeyCheckSetting = "root_key_check";
    private const byte BlobFormat = 1;
    private static readonly byte[] RootKeyCheckPlaintext = "tumbler-root-key-check"u8.ToArray();

    private readonly ConcurrentDictionary<string, KmsKey> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _aliases = new(StringComparer.Ordinal);
    private readonly string _arnPrefix;

    private sealed record KmsKey(KmsKeyEntity Entity, byte[] Material);

    private KeyRing(string region, string accountId) => _arnPrefix = $"arn:aws:kms:{region}:{accountId}:";

    public string DefaultKeyId => _aliases[DefaultAlias];

    /// <summary>True when the default key is present and enabled: new secrets can be encrypted.</summary>
    public bool IsUsable => _aliases.TryGetValue(DefaultAlias, out var id) && _keys.TryGetValue(id, out var key) && key.Entity.Enabled;

    /// <summary>
    /// Opens the key ring of a store: on a new store it records a check value for the root key and
    /// creates the default key; on an existing one it refuses a root key that is not the one the
    /// store was made with.
    /// </summary>
    public static async Task<KeyRing> OpenAsync(ISecretStore store, byte[] rootKey, string region, string accountId,
        TimeProvider time, CancellationToken ct)
    {
        var check = await store.GetSettingAsync(RootKeyCheckSetting, ct);
        if (check is null)
        {
            if (await store.HasDataAsync(ct))
            {
                throw new RootKeyMismatchException("The store holds data but no root key check value; refusing to guess the root key.");
            }
            // Nodes starting together on a new shared store: the first check value stored wins, and must be for this root key.
            check = await store.InitializeSettingAsync(RootKeyCheckSetting, NewRootKeyCheck(rootKey), ct);
            if (!IsRootKeyFor(check, rootKey))
            {
                throw new RootKeyMismatchException("The root key is not the one this store was created with.");
            }
        }
        else
        {
            var next = await store.GetSettingAsync(NextRootKeyCheckSetting, ct);
            if (IsRootKeyFor(check, rootKey))
            {
                if (next is not null)
                {
                    // An interrupted root key rotation, and the operator kept the current key: forget it (rotate-root starts over).
                    await store.AbandonRootKeyRotationAsync(ct);
                }
            }
            else if (next is not null && IsRootKeyFor(next, rootKey))
            {
                // An interrupted root key rotation whose preparation is complete, and the operator gave the new key: finish it.
                if (!await store.CompleteRootKeyRotationAsync(next, ct))
                {
                    throw new RootKeyMismatchException("The root key rotation to this key could not be completed.");
                }
                check = next;
            }
            else
            {
                throw new RootKeyMismatchException("The root key is not the one this store was created with.");
            }
        }

        var ring = new KeyRing(region, accountId) { _rootKeyCheck = check };
        foreach (var entity in await store.ListKeysAsync(ct))
        {
            ring.Add(entity, Envelope.Open(rootKey, entity.WrappedMaterial, KeyAssociatedData(entity.KeyId)));
        }
        if (!ring._aliases.ContainsKey(DefaultAlias)
            && await ring.TryCreateKeyAsync(store, rootKey, "Default key that protects my Secrets Manager data", [DefaultAlias], time, ct) is null)
        {
            await ring.RefreshAsync(store, rootKey, ct); // another node created the default key meanwhile
        }
        return ring;
    }

    /// <summary>Name of the store setting holding the next root key's check value while a root key rotation is under way.</summary>
    public const string NextRootKeyCheckSetting = "root_key_check_next";

    private string _rootKeyCheck = "";

    private static string NewRootKeyCheck(byte[] rootKey) =>
        Convert.ToBase64String(Envelope.Seal(rootKey, RootKeyCheckPlaintext, Envelope.AssociatedData("root-key-check")));

    /// <summary>
    /// Re-wraps every KMS-like key under <paramref name="newRootKey"/>, crash-safe: first the new wrappings and the new
    /// key's check value are written beside the current ones (one transaction; the current root key still rules), then
    /// one transaction switches both. A crash before the switch leaves the store opening with either key (the new key
    /// finishes the switch, the current one forgets the preparation); after it, with the new key only.
    /// <paramref name="boundary"/> is called at "after-prepare" and "after-switch" (fault injection for tests).
    /// Returns the number of keys re-wrapped.
    /// </summary>
    public static async Task<int> RotateRootKeyAsync(ISecretStore store, byte[] currentRootKey, byte[] newRootKey, Action<string>? boundary,
        CancellationToken ct)
    {
        var check = await store.GetSettingAsync(RootKeyCheckSetting, ct)
            ?? throw new RootKeyMismatchException("The store has no root key check value: start the server on it once first.");
        if (!IsRootKeyFor(check, currentRootKey))
        {
            throw new RootKeyMismatchException("The current root key given is not the one this store is encrypted with.");
        }
        if (IsRootKeyFor(check, newRootKey))
        {
            throw new RootKeyMismatchException("The new root key is the current one.");
        }
        var wrappedNext = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var entity in await store.ListKeysAsync(ct))
        {
            var material = Envelope.Open(currentRootKey, entity.WrappedMaterial, KeyAssociatedData(entity.KeyId));
            try
            {
                wrappedNext[entity.KeyId] = Envelope.Seal(newRootKey, material, KeyAssociatedData(entity.KeyId));
            }
            finally
            {
                CryptographicOperations.ZeroMemory(material);
            }
        }
        var nextCheck = NewRootKeyCheck(newRootKey);
        await store.PrepareRootKeyRotationAsync(wrappedNext, nextCheck, ct);
        boundary?.Invoke("after-prepare");
        if (!await store.CompleteRootKeyRotationAsync(nextCheck, ct))
        {
            throw new InvalidOperationException("The prepared root key rotation was abandoned meanwhile (a server started with the current key?); run it again.");
        }
        boundary?.Invoke("after-switch");
        return wrappedNext.Count;
    }

    /// <summary>True when <paramref name="rootKey"/> is the key a store's root key check value (its <see cref="RootKeyCheckSetting"/>) was sealed with.</summary>
    public static bool IsRootKeyFor(string rootKeyCheck, byte[] rootKey)
    {
        try
        {
            Envelope.Open(rootKey, Convert.FromBase64String(rootKeyCheck), Envelope.AssociatedData("root-key-check"));
            return true;
        }
        catch (Exception e) when (e is CryptographicException or FormatException)
        {
            return false;
        }
    }

    public async Task<KmsKeyEntity> CreateKeyAsync(ISecretStore store, byte[] rootKey, string description,
        IReadOnlyList<string> aliases, TimeProvider time, CancellationToken ct) =>
        await TryCreateKeyAsync(store, rootKey, description, aliases, time, ct)
            ?? throw new InvalidOperationException("An alias of the new key exists already.");

    /// <summary>Null (nothing stored) when one of <paramref name="aliases"/> exists already.</summary>
    private async Task<KmsKeyEntity?> TryCreateKeyAsync(ISecretStore store, byte[] rootKey, string description,
        IReadOnlyList<string> aliases, TimeProvider time, CancellationToken ct)
    {
        var keyId = Guid.NewGuid().ToString();
        var material = RandomNumberGenerator.GetBytes(Envelope.KeySize);
        var entity = new KmsKeyEntity(keyId, $"{_arnPrefix}key/{keyId}", description, Enabled: true, time.GetUtcNow(),
            Envelope.Seal(rootKey, material, KeyAssociatedData(keyId)), aliases);
        if (!await store.InsertKeyAsync(entity, _rootKeyCheck, ct))
        {
            CryptographicOperations.ZeroMemory(material);
            return null;
        }
        Add(entity, material);
        return entity;
    }

    /// <summary>
    /// Resolves what a caller passes as KmsKeyId (key id, key ARN, alias name or alias ARN) to a key
    /// id; null or empty means the default key.
    /// </summary>
    public string ResolveKeyId(string? kmsKeyId)
    {
        if (string.IsNullOrEmpty(kmsKeyId))
        {
            return DefaultKeyId;
        }
        var reference = kmsKeyId.StartsWith(_arnPrefix, StringComparison.Ordinal) ? kmsKeyId[_arnPrefix.Length..] : kmsKeyId;
        if (reference.StartsWith("key/", StringComparison.Ordinal))
        {
            reference = reference[4..];
        }
        if (_keys.ContainsKey(reference))
        {
            return reference;
        }
        if (_aliases.TryGetValue(reference, out var keyId))
        {
            return keyId;
        }
        throw ServiceException.InvalidParameter($"Secrets Manager can't find the specified KMS key: {kmsKeyId}.");
    }

    /// <summary>Encrypts a value under a fresh data key wrapped by the given KMS-like key.</summary>
    public byte[] Encrypt(string keyId, SecretPlaintext value, string arn, string versionId)
    {
        var key = _keys[keyId];
        if (!key.Entity.Enabled)
        {
            throw new ServiceException(ErrorCodes.EncryptionFailure,
                $"Secrets Manager can't encrypt the protected secret text using the provided KMS key. Check that the KMS key is available, enabled, and not in an invalid state. (KMS key {key.Entity.Arn} is {StateOf(key.Entity)}.)");
        }
        var keyIdBytes = Encoding.ASCII.GetBytes(keyId);
        var plaintext = value.ToBytes();
        var dataKey = RandomNumberGenerator.GetBytes(Envelope.KeySize);
        try
        {
            var blob = new byte[2 + keyIdBytes.Length + Envelope.Overhead + Envelope.KeySize + Envelope.Overhead + plaintext.Length];
            blob[0] = BlobFormat;
            blob[1] = checked((byte)keyIdBytes.Length);
            keyIdBytes.CopyTo(blob, 2);
            var wrappedStart = 2 + keyIdBytes.Length;
            var valueStart = wrappedStart + Envelope.Overhead + Envelope.KeySize;
            Envelope.Seal(key.Material, dataKey, DataKeyAssociatedData(keyId, arn, versionId), blob.AsSpan(wrappedStart, valueStart - wrappedStart));
            Envelope.Seal(dataKey, plaintext, ValueAssociatedData(arn, versionId), blob.AsSpan(valueStart));
            return blob;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    public SecretPlaintext Decrypt(byte[] blob, string arn, string versionId)
    {
        try
        {
            if (blob.Length < 2 || blob[0] != BlobFormat)
            {
                throw new CryptographicException("Unknown value format.");
            }
            var keyId = Encoding.ASCII.GetString(blob, 2, blob[1]);
            if (!_keys.TryGetValue(keyId, out var key))
            {
                throw new ServiceException(ErrorCodes.DecryptionFailure, $"The KMS key {keyId} that encrypts this secret is not available.");
            }
            if (!key.Entity.Enabled)
            {
                throw new ServiceException(ErrorCodes.DecryptionFailure,
                    $"Secrets Manager can't decrypt the protected secret text using the provided KMS key. (KMS key {key.Entity.Arn} is {StateOf(key.Entity)}.)");
            }
            var wrappedStart = 2 + blob[1];
            var valueStart = wrappedStart + Envelope.Overhead + Envelope.KeySize;
            var dataKey = Envelope.Open(key.Material, blob.AsSpan(wrappedStart, valueStart - wrappedStart), DataKeyAssociatedData(keyId, arn, versionId));
            try
            {
                var plaintext = Envelope.Open(dataKey, blob.AsSpan(valueStart), ValueAssociatedData(arn, versionId));
                try
                {
                    return SecretPlaintext.FromBytes(plaintext);
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(plaintext);
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(dataKey);
            }
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw new ServiceException(ErrorCodes.DecryptionFailure,
                "Secrets Manager can't decrypt the protected secret text using the provided KMS key.");
        }
    }

    /// <summary>
    /// Wraps the secret half of an access key under the default key, bound to the access key id. SigV4
    /// needs the secret itself (an HMAC key), so it is stored wrapped rather than hashed.
    /// </summary>
    public byte[] SealCredential(string accessKeyId, string secretAccessKey)
    {
        var plaintext = Encoding.UTF8.GetBytes(secretAccessKey);
        try
        {
            return Seal("access-key", accessKeyId, plaintext);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>The secret half of an access key; throws <see cref="CryptographicException"/> when the blob was not sealed for this id.</summary>
    public string OpenCredential(string accessKeyId, byte[] wrapped)
    {
        var plaintext = Open("access-key", accessKeyId, wrapped);
        try
        {
            return Encoding.UTF8.GetString(plaintext);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>
    /// Seals any small secret (a function's configuration, for instance) under the default key, bound to
    /// <paramref name="purpose"/> and <paramref name="id"/>: a blob copied to another row or purpose does not open.
    /// </summary>
    public byte[] Seal(string purpose, string id, ReadOnlySpan<byte> plaintext)
    {
        var keyId = DefaultKeyId;
        var keyIdBytes = Encoding.ASCII.GetBytes(keyId);
        var blob = new byte[1 + keyIdBytes.Length + Envelope.Overhead + plaintext.Length];
        blob[0] = checked((byte)keyIdBytes.Length);
        keyIdBytes.CopyTo(blob, 1);
        Envelope.Seal(_keys[keyId].Material, plaintext, Envelope.AssociatedData("sealed", purpose, id), blob.AsSpan(1 + keyIdBytes.Length));
        return blob;
    }

    /// <summary>Opens what <see cref="Seal"/> made; throws <see cref="CryptographicException"/> when it was sealed for another purpose or id.</summary>
    public byte[] Open(string purpose, string id, byte[] sealedBlob)
    {
        if (sealedBlob.Length < 1 + sealedBlob[0] || !_keys.TryGetValue(Encoding.ASCII.GetString(sealedBlob, 1, sealedBlob[0]), out var key))
        {
            throw new CryptographicException("The blob is sealed with an unknown key.");
        }
        return Envelope.Open(key.Material, sealedBlob.AsSpan(1 + sealedBlob[0]), Envelope.AssociatedData("sealed", purpose, id));
    }

    /// <summary>The key id a version reports in ListSecretVersionIds: AWS says "DefaultEncryptionKey" for the default key.</summary>
    public string DisplayKeyId(string keyId) => keyId == DefaultKeyId ? "DefaultEncryptionKey" : _keys.TryGetValue(keyId, out var k) ? k.Entity.Arn : keyId;

    /// <summary>Enabled, Disabled or PendingDeletion, as KMS names a key's state.</summary>
    public static string StateOf(KmsKeyEntity key) => key.DeletionDate is not null ? "PendingDeletion" : key.Enabled ? "Enabled" : "Disabled";

    /// <summary>The keys this ring holds (their state as of the last change made on this node).</summary>
    public IReadOnlyList<KmsKeyEntity> Keys => [.. _keys.Values.Select(k => k.Entity with { Aliases = [.. _aliases.Where(a => a.Value == k.Entity.KeyId).Select(a => a.Key).Order(StringComparer.Ordinal)] }).OrderBy(e => e.CreatedDate)];

    /// <summary>Resolves a key id, key ARN, alias name or alias ARN; null when it names no key.</summary>
    public string? TryResolveKeyId(string? reference)
    {
        if (string.IsNullOrEmpty(reference))
        {
            return null;
        }
        var local = reference.StartsWith(_arnPrefix, StringComparison.Ordinal) ? reference[_arnPrefix.Length..] : reference;
        if (local.StartsWith("key/", StringComparison.Ordinal))
        {
            local = local[4..];
        }
        return _keys.ContainsKey(local) ? local : _aliases.TryGetValue(local, out var keyId) ? keyId : null;
    }

    public KmsKeyEntity? Find(string keyId) => _keys.TryGetValue(keyId, out var key) ? Keys.First(k => k.KeyId == keyId) : null;

    public string AliasArn(string alias) => _arnPrefix + alias;

    /// <summary>
    /// Changes a key's state in memory after the store recorded it: takes effect for this node's next
    /// Encrypt/Decrypt. Other nodes sharing the store learn it from <see cref="RefreshAsync"/>.
    /// </summary>
    public void SetState(string keyId, bool enabled, DateTimeOffset? deletionDate)
    {
        var key = _keys[keyId];
        _keys[keyId] = key with { Entity = key.Entity with { Enabled = enabled, DeletionDate = deletionDate } };
    }

    /// <summary>
    /// Brings the ring up to the store after another node changed keys: new keys are unwrapped with the root key, states
    /// and aliases replaced, deleted keys forgotten. A key this root key cannot unwrap (the root key was rotated on
    /// another node) is left out and named in the returned list, so the caller can say so; the others still refresh.
    /// </summary>
    public async Task<IReadOnlyList<string>> RefreshAsync(ISecretStore store, byte[] rootKey, CancellationToken ct)
    {
        var entities = await store.ListKeysAsync(ct);
        var unreadable = new List<string>();
        foreach (var entity in entities)
        {
            if (_keys.TryGetValue(entity.KeyId, out var known))
            {
                _keys[entity.KeyId] = known with { Entity = entity };
                continue;
            }
            try
            {
                _keys[entity.KeyId] = new KmsKey(entity, Envelope.Open(rootKey, entity.WrappedMaterial, KeyAssociatedData(entity.KeyId)));
            }
            catch (CryptographicException)
            {
                unreadable.Add(entity.KeyId);
            }
        }
        var present = entities.Select(e => e.KeyId).ToHashSet(StringComparer.Ordinal);
        foreach (var gone in _keys.Keys.Where(id => !present.Contains(id)).ToList())
        {
            Remove(gone);
        }
        var aliases = entities.SelectMany(e => e.Aliases.Select(alias => (alias, e.KeyId))).ToDictionary(a => a.alias, a => a.KeyId, StringComparer.Ordinal);
        foreach (var stale in _aliases.Keys.Where(alias => !aliases.ContainsKey(alias)).ToList())
        {
            _aliases.TryRemove(stale, out _);
        }
        foreach (var (alias, keyId) in aliases)
        {
            _aliases[alias] = keyId;
        }
        return unreadable;
    }

    /// <summary>Forgets a key (and its aliases) after the store deleted it; its material is zeroed.</summary>
    public void Remove(string keyId)
    {
        foreach (var alias in _aliases.Where(a => a.Value == keyId).Select(a => a.Key).ToList())
        {
            _aliases.TryRemove(alias, out _);
        }
        if (_keys.TryRemove(keyId, out var key))
        {
            CryptographicOperations.ZeroMemory(key.Material);
        }
    }

    /// <summary>Records an alias in memory after the store recorded it.</summary>
    public void AddAlias(string alias, string keyId) => _aliases[alias] = keyId;

    private void Add(KmsKeyEntity entity, byte[] material)
    {
        _keys[entity.KeyId] = new KmsKey(entity, material);
        foreach (var alias in entity.Aliases)
        {
            _aliases[alias] = entity.KeyId;
        }
    }

    private static byte[] KeyAssociatedData(string keyId) => Envelope.AssociatedData("kms-key", keyId);
    private static byte[] DataKeyAssociatedData(string keyId, string arn, string versionId) => Envelope.AssociatedData("data-key", keyId, arn, versionId);
    private static byte[] ValueAssociatedData(string arn, string versionId) => Envelope.AssociatedData("secret-value", arn, versionId);
}

public sealed class RootKeyMismatchException(string message) : Exception(message);
