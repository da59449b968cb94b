namespace Tumbler.Core.Storage;

/// <summary>
/// The durable state of a Tumbler deployment. Values are stored only as envelope-encrypted blobs.
/// Every change to versions or labels goes through <see cref="WriteAsync{T}"/>, one transaction, so a
/// crash leaves either the old or the new state.
/// </summary>
public interface ISecretStore : IAsyncDisposable
{
    /// <summary>Creates or migrates the schema. Fails when the schema is newer than this binary.</summary>
    Task InitializeAsync(CancellationToken ct);

    /// <summary>True when the store holds any data (secrets or keys): a new root key must not be made for it.</summary>
    Task<bool> HasDataAsync(CancellationToken ct);

    Task<string?> GetSettingAsync(string name, CancellationToken ct);

    /// <summary>
    /// A number that changes (at least) with every change to users, access keys, policies, KMS-like keys or functions
    /// (in the same transaction): a node sharing the store polls it to learn of changes another node made.
    /// </summary>
    Task<long> GetConfigurationGenerationAsync(CancellationToken ct);
    Task SetSettingAsync(string name, string value, CancellationToken ct);
    /// <summary>Stores the value unless the setting exists (nodes starting together on a new store); returns the stored value.</summary>
    Task<string> InitializeSettingAsync(string name, string value, CancellationToken ct);

    Task<SecretEntity?> FindSecretAsync(string region, SecretLookup lookup, CancellationToken ct);
    Task<byte[]?> ReadValueAsync(long secretKey, string versionId, CancellationToken ct);

    /// <summary>Every secret of a region with its versions' metadata, oldest first.</summary>
    Task<IReadOnlyList<SecretEntity>> ListSecretsAsync(string region, bool includeScheduledForDeletion, CancellationToken ct);

    /// <summary>
    /// One page of a region's secrets with their versions' metadata: up to <paramref name="limit"/> secrets in
    /// <paramref name="sortBy"/> order (descending when <paramref name="descending"/>), ties broken by row key in
    /// the same direction, starting strictly after <paramref name="after"/> (from the first when null). Lets
    /// ListSecrets read a page instead of every secret.
    /// <para>
    /// The secrets are read-only: the embedded store's read cache hands the same objects to every caller of the same
    /// page (a copy per request cost more than the rest of the page), and ListSecrets keys what it renders of a secret
    /// to the object.
    /// </para>
    /// </summary>
    Task<IReadOnlyList<SecretEntity>> ListSecretsPageAsync(string region, bool includeScheduledForDeletion, SecretSortKey sortBy, bool descending,
        SecretListPosition? after, int limit, CancellationToken ct);

    /// <summary>Records a value read (date granularity, so at most one write a day per secret).</summary>
    Task SetLastAccessedAsync(long secretKey, string versionId, DateTimeOffset date, CancellationToken ct);

    /// <summary>Purges secrets whose scheduled deletion date has passed; returns their ARNs.</summary>
    Task<IReadOnlyList<string>> PurgeDeletedAsync(DateTimeOffset now, CancellationToken ct);

    /// <summary>Every key with its aliases and all its material versions (oldest first), oldest key first.</summary>
    Task<IReadOnlyList<KmsKeyEntity>> ListKeysAsync(CancellationToken ct);
    /// <summary>
    /// Inserts a key, its aliases and its materials (each wrapped under the root key whose check value is
    /// <paramref name="rootKeyCheck"/>, and under the next one, <see cref="KeyMaterialEntity.WrappedNext"/>, when
    /// <paramref name="nextRootKeyCheck"/> is given), in one transaction. False, nothing written, when the store's
    /// root key check values are not exactly these (a root key rotation moved on meanwhile: wrap again and retry), or when one
    /// of its aliases exists already (another node created the key meanwhile).
    /// </summary>
    Task<bool> InsertKeyAsync(KmsKeyEntity key, string rootKeyCheck, string? nextRootKeyCheck, CancellationToken ct);
    /// <summary>
    /// Adds a material version to a key (key material rotation), one transaction, under the same root key check
    /// condition as <see cref="InsertKeyAsync"/>. False, nothing written, when the check values differ or the key
    /// already has that version (another node rotated it).
    /// </summary>
    Task<bool> InsertKeyMaterialAsync(string keyId, KeyMaterialEntity material, string rootKeyCheck, string? nextRootKeyCheck, CancellationToken ct);

    /// <summary>
    /// Root key rotation, first half, one transaction: records the given materials' wrappings under the next root key
    /// beside their current ones, and the next root key's check value. The current root key still rules. When no rotation
    /// to <paramref name="nextRootKeyCheck"/> is prepared, every other next wrapping is forgotten first; when it is, the
    /// wrappings are added (for materials a running server inserted before the first call took effect).
    /// </summary>
    Task PrepareRootKeyRotationAsync(IReadOnlyDictionary<(string KeyId, int Version), byte[]> wrappedNext, string nextRootKeyCheck, CancellationToken ct);
    /// <summary>
    /// Root key rotation, second half, one transaction: every material's next wrapping becomes its wrapping and the
    /// next check value the root key check value. False, nothing changed, when no rotation to <paramref name="nextRootKeyCheck"/>
    /// is prepared or a material has no next wrapping (added meanwhile by a server that could not wrap it twice).
    /// </summary>
    Task<bool> CompleteRootKeyRotationAsync(string nextRootKeyCheck, CancellationToken ct);
    /// <summary>Forgets a prepared root key rotation.</summary>
    Task AbandonRootKeyRotationAsync(CancellationToken ct);
    /// <summary>Sets a key's enabled flag and scheduled deletion date; false when there is no such key.</summary>
    Task<bool> UpdateKeyStateAsync(string keyId, bool enabled, DateTimeOffset? deletionDate, CancellationToken ct);
    /// <summary>Deletes keys (their aliases and materials) whose scheduled deletion date has passed and that no secret version uses; returns their ids.</summary>
    Task<IReadOnlyList<string>> PurgeKeysAsync(DateTimeOffset now, CancellationToken ct);
    /// <summary>Points a new alias at a key; false when the alias exists already.</summary>
    Task<bool> InsertAliasAsync(string alias, string keyId, CancellationToken ct);
    /// <summary>Points an existing alias at another key; false when there is no such alias.</summary>
    Task<bool> UpdateAliasAsync(string alias, string keyId, CancellationToken ct);
    /// <summary>Deletes an alias; false when there is no such alias.</summary>
    Task<bool> DeleteAliasAsync(string alias, CancellationToken ct);
    /// <summary>How many secret versions (of any secret, any region, deleted or not) are encrypted under the key.</summary>
    Task<long> CountVersionsUsingKeyAsync(string keyId, CancellationToken ct);

    Task<RotationJob?> FindRotationAsync(long secretKey, CancellationToken ct);

    /// <summary>The rotation state of every secret with rotation enabled and not scheduled for deletion (for monitoring).</summary>
    Task<IReadOnlyList<RotationStatus>> ListRotationStatusAsync(CancellationToken ct);

    /// <summary>Secrets whose scheduled rotation is due and that have no rotation in progress, soonest first.</summary>
    Task<IReadOnlyList<(string Region, string Arn)>> FindDueRotationsAsync(DateTimeOffset now, int limit, CancellationToken ct);

    /// <summary>
    /// Leases up to <paramref name="limit"/> rotations whose next attempt is due and whose lease is free
    /// or expired, so exactly one node runs each; a dead node's lease simply expires.
    /// </summary>
    Task<IReadOnlyList<RotationJob>> ClaimRotationsAsync(DateTimeOffset now, string owner, DateTimeOffset leaseExpires, int limit, CancellationToken ct);

    /// <summary>Extends a lease this owner still holds; false when it was lost.</summary>
    Task<bool> RenewLeaseAsync(long secretKey, string owner, DateTimeOffset leaseExpires, CancellationToken ct);

    /// <summary>
    /// Ends every rotation's lease now, so the next claim takes the job at once, and returns how many were held. The
    /// owner stays: it marks an attempt that was interrupted (its step, setSecret say, may have run). Only for a store
    /// one server has to itself, at its start: a lease found then was left by a run of that server that stopped
    /// (crashed, killed) mid-rotation.
    /// </summary>
    Task<int> ReleaseRotationLeasesAsync(CancellationToken ct);

    /// <summary>Runs <paramref name="work"/> in one serializable write transaction and commits it if it returns.</summary>
    Task<T> WriteAsync<T>(Func<ISecretWriter, Task<T>> work, CancellationToken ct);
}

public sealed record RotationStatus(string Arn, DateTimeOffset CreatedDate, DateTimeOffset? LastRotatedDate, DateTimeOffset? NextRotationStart, bool InProgress);

/// <summary>The operations available inside a write transaction.</summary>
public interface ISecretWriter
{
    Task<SecretEntity?> FindSecretAsync(string region, SecretLookup lookup);
    Task<byte[]?> ReadValueAsync(long secretKey, string versionId);
    Task InsertSecretAsync(SecretEntity secret);
    /// <summary>Writes the secret's own columns (not its versions).</summary>
    Task UpdateSecretAsync(SecretEntity secret);
    Task DeleteSecretAsync(long secretKey);
    Task InsertVersionAsync(long secretKey, VersionEntity version, byte[]? encryptedValue);
    /// <summary>Writes a version's labels and metadata, and its value when <paramref name="encryptedValue"/> is given.</summary>
    Task UpdateVersionAsync(long secretKey, VersionEntity version, byte[]? encryptedValue);
    Task DeleteVersionAsync(long secretKey, string versionId);
    Task<RotationJob?> FindRotationAsync(long secretKey);
    /// <summary>Inserts or replaces the secret's rotation job.</summary>
    Task SaveRotationAsync(RotationJob job);
    Task DeleteRotationAsync(long secretKey);
}
