using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Tumbler.Core.Keys;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Crypto;

/// <summary>
/// The KMS-like keys, unwrapped once with the root key and kept in memory so that a read costs one
/// data-key unwrap (none when the version was read before) and one decryption. Each secret version gets its own data key.
/// </summary>
public sealed class KeyRing
{
    public const string DefaultAlias = "alias/aws/secretsmanager";
    /// <summary>Name of the store setting holding the root key check value.</summary>
    public const string RootKeyCheckSetting = "root_key_check";
    /// <summary>A value's blob: format 1 (before key material rotation) is always under material version 1; format 2 names its version.</summary>
    private const byte UnversionedBlobFormat = 1;
    private const byte BlobFormat = 2;
    /// <summary>First byte of a sealed blob that names its material version (older sealed blobs start with the key id's length and use version 1).</summary>
    private const byte VersionedSealMarker = 0xFF;
    private const int VersionSize = 4;
    /// <summary>Tries of a key material insert whose root key changed under it (a root key rotation running beside the server).</summary>
    private const int MaterialInsertAttempts = 5;
    private static readonly byte[] RootKeyCheckPlaintext = "tumbler-root-key-check"u8.ToArray();

    private readonly ConcurrentDictionary<string, KmsKey> _keys = new(StringComparer.Ordinal);
    /// <summary>
    /// Data keys unwrapped before, so a read of a version read before costs one decryption, not two. Named by everything
    /// the unwrap was bound to, and the wrapped key's GCM tag. Holding them adds no exposure: the key materials that
    /// unwrap them are in memory anyway. Bounded: past <see cref="MaxCachedDataKeys"/> it starts over.
    /// </summary>
    private readonly ConcurrentDictionary<DataKeyName, byte[]> _dataKeys = new();
    private const int MaxCachedDataKeys = 10_000;

    private readonly record struct DataKeyName(string KeyId, int MaterialVersion, string Arn, string VersionId, UInt128 WrapTag);
    private readonly ConcurrentDictionary<string, string> _aliases = new(StringComparer.Ordinal);
    private readonly string _arnPrefix;
    private readonly RootKeys _rootKeys;

    /// <summary>A key and its unwrapped materials: Materials[i] is version i + 1; the last one wraps new data keys.</summary>
    private sealed record KmsKey(KmsKeyEntity Entity, IReadOnlyList<byte[]> Materials)
    {
        public int CurrentVersion => Materials.Count;
        public byte[]? Material(int version) => version >= 1 && version <= Materials.Count ? Materials[version - 1] : null;
    }

    private KeyRing(string region, string accountId, RootKeys rootKeys)
    {
        _arnPrefix = $"arn:aws:kms:{region}:{accountId}:";
        _rootKeys = rootKeys;
    }

    public string DefaultKeyId => _aliases[DefaultAlias];

    /// <summary>True when the default key is present and enabled: new secrets can be encrypted.</summary>
    public bool IsUsable => _aliases.TryGetValue(DefaultAlias, out var id) && _keys.TryGetValue(id, out var key) && key.Entity.Enabled;

    /// <summary>
    /// Keys whose material in the store this node's root key could not unwrap at the last <see cref="RefreshAsync"/>
    /// (the root key was rotated and another node, on the new one, made a key or new material): secrets under that
    /// material cannot be read here until a restart with the current root key.
    /// </summary>
    public IReadOnlyList<string> UnreadableKeys => _unreadableKeys;

    private volatile IReadOnlyList<string> _unreadableKeys = [];

    /// <summary>
    /// Opens the key ring of a store: on a new store it records a check value for the root key and
    /// creates the default key; on an existing one it refuses a root key that is not the one the
    /// store was made with.
    /// </summary>
    public static Task<KeyRing> OpenAsync(ISecretStore store, byte[] rootKey, string region, string accountId,
        TimeProvider time, CancellationToken ct) => OpenAsync(store, new RootKeys(rootKey, []), region, accountId, time, ct);

    /// <inheritdoc cref="OpenAsync(ISecretStore, byte[], string, string, TimeProvider, CancellationToken)"/>
    /// <param name="keepInterruptedRotation">
    /// True on a store other nodes share: a root key rotation prepared meanwhile may be running from another host, whose
    /// next key this node cannot see, so it is never forgotten here.
    /// </param>
    public static async Task<KeyRing> OpenAsync(ISecretStore store, RootKeys rootKeys, string region, string accountId,
        TimeProvider time, CancellationToken ct, bool keepInterruptedRotation = false)
    {
        var rootKey = rootKeys.StartKey;
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
                throw new RootKeyMismatchException("The root key is not this store's current root key.");
            }
        }
        else
        {
            var next = await store.GetSettingAsync(NextRootKeyCheckSetting, ct);
            if (IsRootKeyFor(check, rootKey))
            {
                if (next is not null && rootKeys.Find(next) is null && !keepInterruptedRotation)
                {
                    // An interrupted root key rotation whose next key this server cannot find: forget it (rotate-root starts over).
                    // When it can (root.key.next), the rotation may be running now beside this server: leave it be.
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
            else if (rootKeys.Find(check) is null)
            {
                // (Found: a rotate-root that switched the store but died before renaming root.key.next over root.key.)
                throw new RootKeyMismatchException("The root key is not this store's current root key.");
            }
        }

        var currentRootKey = rootKeys.Find(check)!;
        var ring = new KeyRing(region, accountId, rootKeys);
        foreach (var entity in await store.ListKeysAsync(ct))
        {
            ring.Add(entity, [.. entity.Materials.Select(m => Envelope.Open(currentRootKey, m.Wrapped, MaterialAssociatedData(entity.KeyId, m.Version)))]);
        }
        if (!ring._aliases.ContainsKey(DefaultAlias))
        {
            try
            {
                await ring.CreateKeyAsync(store, "Default key that protects my Secrets Manager data", [DefaultAlias], time, ct);
            }
            catch (ServiceException)
            {
                // Nodes starting together on a new store: another one created the default key meanwhile.
                await ring.RefreshAsync(store, ct);
                if (!ring._aliases.ContainsKey(DefaultAlias))
                {
                    throw;
                }
            }
        }
        return ring;
    }

    /// <summary>Name of the store setting holding the next root key's check value while a root key rotation is under way.</summary>
    public const string NextRootKeyCheckSetting = "root_key_check_next";

    private static string NewRootKeyCheck(byte[] rootKey) =>
        Convert.ToBase64String(Envelope.Seal(rootKey, RootKeyCheckPlaintext, Envelope.AssociatedData("root-key-check")));

    /// <summary>
    /// Re-wraps every KMS-like key material under <paramref name="newRootKey"/>, crash-safe and while a server runs on the
    /// store: first the new wrappings and the new key's check value are written beside the current ones (the current root
    /// key still rules), then one transaction switches both. A crash before the switch leaves the store opening with
    /// either key (the new key finishes the switch; the current one keeps the preparation when it can find the new key
    /// in its root key files, else forgets it); after it, with the new key only.
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
        var nextCheck = NewRootKeyCheck(newRootKey);
        // A server running on the store may add key material meanwhile. Once the first preparation is committed, it wraps
        // what it adds under both keys (it sees the next check value); what it added before, the second pass wraps.
        // The switch itself refuses to leave a material without its new wrapping.
        IReadOnlyList<KmsKeyEntity> keys = [];
        for (var pass = 0; pass < 2; pass++)
        {
            keys = await store.ListKeysAsync(ct);
            var wrappedNext = new Dictionary<(string KeyId, int Version), byte[]>();
            foreach (var entity in keys)
            {
                foreach (var stored in entity.Materials.Where(m => pass == 0 || m.WrappedNext is null))
                {
                    var associatedData = MaterialAssociatedData(entity.KeyId, stored.Version);
                    var material = Envelope.Open(currentRootKey, stored.Wrapped, associatedData);
                    try
                    {
                        wrappedNext[(entity.KeyId, stored.Version)] = Envelope.Seal(newRootKey, material, associatedData);
                    }
                    finally
                    {
                        CryptographicOperations.ZeroMemory(material);
                    }
                }
            }
            await store.PrepareRootKeyRotationAsync(wrappedNext, nextCheck, ct);
        }
        boundary?.Invoke("after-prepare");
        if (!await store.CompleteRootKeyRotationAsync(nextCheck, ct))
        {
            throw new InvalidOperationException(
                "The prepared root key rotation was abandoned meanwhile (a server started with the current key and could not find the new one in DATA_DIR/root.key.next?); run it again.");
        }
        boundary?.Invoke("after-switch");
        return keys.Count;
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

    /// <summary>Creates a key with fresh material (version 1), wrapped under the store's current root key (and the next one during a root key rotation).</summary>
    public async Task<KmsKeyEntity> CreateKeyAsync(ISecretStore store, string description, IReadOnlyList<string> aliases, TimeProvider time,
        CancellationToken ct)
    {
        var keyId = Guid.NewGuid().ToString();
        var material = RandomNumberGenerator.GetBytes(Envelope.KeySize);
        var created = time.GetUtcNow();
        KmsKeyEntity entity = null!;
        await InsertMaterialAsync(store, keyId, 1, material, created, (stored, check, nextCheck) =>
        {
            entity = new KmsKeyEntity(keyId, $"{_arnPrefix}key/{keyId}", description, Enabled: true, created, [stored], aliases);
            return store.InsertKeyAsync(entity, check, nextCheck, ct);
        }, ct);
        Add(entity, [material]);
        return entity;
    }

    /// <summary>
    /// Key material rotation: adds a fresh material version to a key (one store transaction). New values are encrypted
    /// under it; values encrypted under older versions still open with theirs. Returns the key as it is now.
    /// </summary>
    public async Task<KmsKeyEntity> RotateMaterialAsync(ISecretStore store, string keyId, TimeProvider time, CancellationToken ct)
    {
        var key = _keys[keyId];
        var version = key.CurrentVersion + 1;
        var material = RandomNumberGenerator.GetBytes(Envelope.KeySize);
        KeyMaterialEntity added = null!;
        await InsertMaterialAsync(store, keyId, version, material, time.GetUtcNow(), (stored, check, nextCheck) =>
        {
            added = stored;
            return store.InsertKeyMaterialAsync(keyId, stored, check, nextCheck, ct);
        }, ct);
        var rotated = key with { Entity = key.Entity with { Materials = [.. key.Entity.Materials, added] }, Materials = [.. key.Materials, material] };
        _keys[keyId] = rotated;
        return Find(keyId)!;
    }

    /// <summary>
    /// Wraps new material under the root key the store now rules with (and the next one when a root key rotation is
    /// prepared) and inserts it; when the store's root key changed between the look and the insert, does it again.
    /// </summary>
    private async Task InsertMaterialAsync(ISecretStore store, string keyId, int version, byte[] material, DateTimeOffset created,
        Func<KeyMaterialEntity, string, string?, Task<bool>> insert, CancellationToken ct)
    {
        var associatedData = MaterialAssociatedData(keyId, version);
        for (var attempt = 0; attempt < MaterialInsertAttempts; attempt++)
        {
            var check = await store.GetSettingAsync(RootKeyCheckSetting, ct) ?? throw new InvalidOperationException("The store has no root key check value.");
            var nextCheck = await store.GetSettingAsync(NextRootKeyCheckSetting, ct);
            var rootKey = _rootKeys.Find(check) ?? throw new ServiceException(KeyErrors.InvalidState,
                "The store's root key was rotated to a key this server cannot read (it was not in DATA_DIR/root.key or root.key.next); " +
                "restart the server with the new root key to create keys or rotate key material. Secrets stay readable and writable meanwhile.");
            byte[]? nextKey = null;
            if (nextCheck is not null)
            {
                nextKey = _rootKeys.Find(nextCheck) ?? throw new ServiceException(KeyErrors.InvalidState,
                    "A root key rotation is under way and this server cannot read the next root key (it is not in DATA_DIR/root.key.next); " +
                    "create keys or rotate key material once the rotation is finished.");
            }
            var stored = new KeyMaterialEntity(version, created, Envelope.Seal(rootKey, material, associatedData),
                nextKey is null ? null : Envelope.Seal(nextKey, material, associatedData));
            if (await insert(stored, check, nextCheck))
            {
                return;
            }
        }
        throw new ServiceException(KeyErrors.InvalidState,
            $"The key material of {keyId} could not be stored: the store's root key or the key's material versions changed meanwhile. Try again.");
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
            // format 2 | key id length | key id | material version (big endian) | data key wrapped by that material | value sealed by the data key
            var blob = new byte[2 + keyIdBytes.Length + VersionSize + Envelope.Overhead + Envelope.KeySize + Envelope.Overhead + plaintext.Length];
            blob[0] = BlobFormat;
            blob[1] = checked((byte)keyIdBytes.Length);
            keyIdBytes.CopyTo(blob, 2);
            BinaryPrimitives.WriteInt32BigEndian(blob.AsSpan(2 + keyIdBytes.Length), key.CurrentVersion);
            var wrappedStart = 2 + keyIdBytes.Length + VersionSize;
            var valueStart = wrappedStart + Envelope.Overhead + Envelope.KeySize;
            Envelope.Seal(key.Materials[^1], dataKey, DataKeyAssociatedData(keyId, arn, versionId), blob.AsSpan(wrappedStart, valueStart - wrappedStart));
            Envelope.Seal(dataKey, plaintext, ValueAssociatedData(arn, versionId), blob.AsSpan(valueStart));
            return blob;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>
    /// On a store other nodes share: when <paramref name="kmsKeyId"/> names a key, or <paramref name="blob"/> a key or
    /// material version, that this node has not loaded (made on another node since its last poll), loads the ring from
    /// the store once, so the call that needs it succeeds now rather than after the next poll. One refresh at a time;
    /// nothing happens when everything named is known (the usual case, and always on a single node).
    /// </summary>
    public async Task CatchUpAsync(ISecretStore store, string? kmsKeyId, byte[]? blob, CancellationToken ct)
    {
        if (Knows(kmsKeyId, blob))
        {
            return;
        }
        await _catchUp.WaitAsync(ct);
        try
        {
            if (!Knows(kmsKeyId, blob))
            {
                await RefreshAsync(store, ct);
            }
        }
        finally
        {
            _catchUp.Release();
        }
    }

    private readonly SemaphoreSlim _catchUp = new(1, 1);

    private bool Knows(string? kmsKeyId, byte[]? blob) =>
        (string.IsNullOrEmpty(kmsKeyId) || TryResolveKeyId(kmsKeyId) is not null)
        && (blob is null || BlobKey(blob) is not { } named || (_keys.TryGetValue(named.KeyId, out var key) && key.Material(named.Version) is not null));

    /// <summary>The key id and material version a value blob names; null when it is not a value blob.</summary>
    private static (string KeyId, int Version)? BlobKey(byte[] blob) =>
        blob.Length < 2 || blob[0] is not (UnversionedBlobFormat or BlobFormat) || blob.Length < 2 + blob[1] + (blob[0] == BlobFormat ? VersionSize : 0)
            ? null
            : (Encoding.ASCII.GetString(blob, 2, blob[1]),
                blob[0] == UnversionedBlobFormat ? 1 : BinaryPrimitives.ReadInt32BigEndian(blob.AsSpan(2 + blob[1], VersionSize)));

    public SecretPlaintext Decrypt(byte[] blob, string arn, string versionId)
    {
        try
        {
            if (blob.Length < 2 || blob[0] is not (UnversionedBlobFormat or BlobFormat))
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
            var (version, wrappedStart) = blob[0] == UnversionedBlobFormat ? (1, 2 + blob[1])
                : (BinaryPrimitives.ReadInt32BigEndian(blob.AsSpan(2 + blob[1], VersionSize)), 2 + blob[1] + VersionSize);
            var material = key.Material(version) ?? throw new ServiceException(ErrorCodes.DecryptionFailure,
                $"Version {version} of the material of KMS key {key.Entity.Arn} that encrypts this secret is not available on this server.");
            var valueStart = wrappedStart + Envelope.Overhead + Envelope.KeySize;
            var wrapped = blob.AsSpan(wrappedStart, valueStart - wrappedStart);
            // Checked above on every read, not cached: the key is enabled and has this material.
            var name = new DataKeyName(keyId, version, arn, versionId, BinaryPrimitives.ReadUInt128LittleEndian(wrapped.Slice(Envelope.NonceSize, Envelope.TagSize)));
            if (!_dataKeys.TryGetValue(name, out var dataKey))
            {
                dataKey = Envelope.Open(material, wrapped, DataKeyAssociatedData(keyId, arn, versionId));
                if (_dataKeys.Count >= MaxCachedDataKeys)
                {
                    _dataKeys.Clear();
                }
                _dataKeys[name] = dataKey;
            }
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
        // marker | key id length | key id | material version (big endian) | sealed
        var key = _keys[DefaultKeyId];
        var keyIdBytes = Encoding.ASCII.GetBytes(key.Entity.KeyId);
        var headerLength = 2 + keyIdBytes.Length + VersionSize;
        var blob = new byte[headerLength + Envelope.Overhead + plaintext.Length];
        blob[0] = VersionedSealMarker;
        blob[1] = checked((byte)keyIdBytes.Length);
        keyIdBytes.CopyTo(blob, 2);
        BinaryPrimitives.WriteInt32BigEndian(blob.AsSpan(2 + keyIdBytes.Length), key.CurrentVersion);
        Envelope.Seal(key.Materials[^1], plaintext, Envelope.AssociatedData("sealed", purpose, id), blob.AsSpan(headerLength));
        return blob;
    }

    /// <summary>Opens what <see cref="Seal"/> made; throws <see cref="CryptographicException"/> when it was sealed for another purpose or id.</summary>
    public byte[] Open(string purpose, string id, byte[] sealedBlob)
    {
        // Blobs sealed before key material rotation have no marker: key id length | key id | sealed, under version 1.
        var versioned = sealedBlob.Length > 1 && sealedBlob[0] == VersionedSealMarker;
        var idStart = versioned ? 2 : 1;
        var idLength = sealedBlob.Length > idStart ? sealedBlob[idStart - 1] : 0;
        var headerLength = idStart + idLength + (versioned ? VersionSize : 0);
        if (sealedBlob.Length < headerLength || !_keys.TryGetValue(Encoding.ASCII.GetString(sealedBlob, idStart, idLength), out var key))
        {
            throw new CryptographicException("The blob is sealed with an unknown key.");
        }
        var version = versioned ? BinaryPrimitives.ReadInt32BigEndian(sealedBlob.AsSpan(idStart + idLength, VersionSize)) : 1;
        var material = key.Material(version) ?? throw new CryptographicException("The blob is sealed with a key material version this server does not have.");
        return Envelope.Open(material, sealedBlob.AsSpan(headerLength), Envelope.AssociatedData("sealed", purpose, id));
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
    public async Task<IReadOnlyList<string>> RefreshAsync(ISecretStore store, CancellationToken ct)
    {
        var check = await store.GetSettingAsync(RootKeyCheckSetting, ct);
        var rootKey = check is null ? null : _rootKeys.Find(check);
        var entities = await store.ListKeysAsync(ct);
        var unreadable = new List<string>();
        foreach (var entity in entities)
        {
            _keys.TryGetValue(entity.KeyId, out var known);
            try
            {
                // Materials already held stay as they are; only those added elsewhere (a new key, a rotated one) are unwrapped.
                var materials = entity.Materials.Select(m => known?.Material(m.Version)
                    ?? Envelope.Open(rootKey ?? throw new CryptographicException("No root key for the store's check value."), m.Wrapped,
                        MaterialAssociatedData(entity.KeyId, m.Version))).ToList();
                _keys[entity.KeyId] = new KmsKey(entity, materials);
            }
            catch (CryptographicException)
            {
                unreadable.Add(entity.KeyId);
                if (known is not null)
                {
                    // The new state still applies (a disabled key stops decrypting); the new material waits for a restart.
                    _keys[entity.KeyId] = known with { Entity = entity with { Materials = known.Entity.Materials } };
                }
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
        _unreadableKeys = unreadable;
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
            foreach (var material in key.Materials)
            {
                CryptographicOperations.ZeroMemory(material);
            }
        }
    }

    /// <summary>Records an alias (new, or pointed at another key) in memory after the store recorded it.</summary>
    public void AddAlias(string alias, string keyId) => _aliases[alias] = keyId;

    /// <summary>Forgets an alias after the store deleted it.</summary>
    public void RemoveAlias(string alias) => _aliases.TryRemove(alias, out _);

    /// <summary>Every alias and the key id it names, by alias name.</summary>
    public IReadOnlyList<(string Alias, string KeyId)> Aliases => [.. _aliases.Select(a => (a.Key, a.Value)).OrderBy(a => a.Key, StringComparer.Ordinal)];

    private void Add(KmsKeyEntity entity, IReadOnlyList<byte[]> materials)
    {
        _keys[entity.KeyId] = new KmsKey(entity, materials);
        foreach (var alias in entity.Aliases)
        {
            _aliases[alias] = entity.KeyId;
        }
    }

    /// <summary>A material bound to its key and version (version 1 as wrapped before material rotation existed, so old rows open unchanged).</summary>
    private static byte[] MaterialAssociatedData(string keyId, int version) => version == 1
        ? Envelope.AssociatedData("kms-key", keyId)
        : Envelope.AssociatedData("kms-key", keyId, version.ToString(CultureInfo.InvariantCulture));
    private static byte[] DataKeyAssociatedData(string keyId, string arn, string versionId) => Envelope.AssociatedData("data-key", keyId, arn, versionId);
    private static byte[] ValueAssociatedData(string arn, string versionId) => Envelope.AssociatedData("secret-value", arn, versionId);
}

public sealed class RootKeyMismatchException(string message) : Exception(message);
