using System.Diagnostics;
using Tumbler.Core.Storage;

namespace Tumbler.Bench.Rotation;

/// <summary>What the store did over an interval: durable writes (each one SQLite transaction, fsynced) and reads.</summary>
public readonly record struct StoreCounters(long Writes, long WriteTicks, long Reads, long ReadTicks)
{
    public static StoreCounters operator -(StoreCounters a, StoreCounters b) =>
        new(a.Writes - b.Writes, a.WriteTicks - b.WriteTicks, a.Reads - b.Reads, a.ReadTicks - b.ReadTicks);
}

/// <summary>
/// The real store, with every call counted and timed (a write's time includes waiting for the store's
/// single writer). Nothing else changes: each call goes straight to <paramref name="inner"/>.
/// </summary>
public sealed class TimedStore(ISecretStore inner) : ISecretStore
{
    private long _writes, _writeTicks, _reads, _readTicks;

    public StoreCounters Counters => new(Interlocked.Read(ref _writes), Interlocked.Read(ref _writeTicks), Interlocked.Read(ref _reads), Interlocked.Read(ref _readTicks));

    private async Task<T> Write<T>(Func<Task<T>> call)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            return await call();
        }
        finally
        {
            Interlocked.Increment(ref _writes);
            Interlocked.Add(ref _writeTicks, Stopwatch.GetTimestamp() - start);
        }
    }

    private Task Write(Func<Task> call) => Write(async () =>
    {
        await call();
        return true;
    });

    private async Task<T> Read<T>(Func<Task<T>> call)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            return await call();
        }
        finally
        {
            Interlocked.Increment(ref _reads);
            Interlocked.Add(ref _readTicks, Stopwatch.GetTimestamp() - start);
        }
    }

    public Task InitializeAsync(CancellationToken ct) => inner.InitializeAsync(ct);
    public Task<bool> HasDataAsync(CancellationToken ct) => Read(() => inner.HasDataAsync(ct));
    public Task<string?> GetSettingAsync(string name, CancellationToken ct) => Read(() => inner.GetSettingAsync(name, ct));
    public Task SetSettingAsync(string name, string value, CancellationToken ct) => Write(() => inner.SetSettingAsync(name, value, ct));
    public Task<string> InitializeSettingAsync(string name, string value, CancellationToken ct) => Write(() => inner.InitializeSettingAsync(name, value, ct));
    public Task<long> GetConfigurationGenerationAsync(CancellationToken ct) => Read(() => inner.GetConfigurationGenerationAsync(ct));
    public Task<SecretEntity?> FindSecretAsync(string region, SecretLookup lookup, CancellationToken ct) => Read(() => inner.FindSecretAsync(region, lookup, ct));
    public Task<byte[]?> ReadValueAsync(long secretKey, string versionId, CancellationToken ct) => Read(() => inner.ReadValueAsync(secretKey, versionId, ct));
    public Task<IReadOnlyList<SecretEntity>> ListSecretsAsync(string region, bool includeScheduledForDeletion, CancellationToken ct) =>
        Read(() => inner.ListSecretsAsync(region, includeScheduledForDeletion, ct));

    public Task<IReadOnlyList<SecretEntity>> ListSecretsPageAsync(string region, bool includeScheduledForDeletion, SecretSortKey sortBy, bool descending,
        SecretListPosition? after, int limit, CancellationToken ct) =>
        Read(() => inner.ListSecretsPageAsync(region, includeScheduledForDeletion, sortBy, descending, after, limit, ct));
    public Task SetLastAccessedAsync(long secretKey, string versionId, DateTimeOffset date, CancellationToken ct) =>
        Write(() => inner.SetLastAccessedAsync(secretKey, versionId, date, ct));
    public Task<IReadOnlyList<string>> PurgeDeletedAsync(DateTimeOffset now, CancellationToken ct) => Write(() => inner.PurgeDeletedAsync(now, ct));
    public Task<IReadOnlyList<KmsKeyEntity>> ListKeysAsync(CancellationToken ct) => Read(() => inner.ListKeysAsync(ct));
    public Task<bool> InsertKeyAsync(KmsKeyEntity key, string rootKeyCheck, string? nextRootKeyCheck, CancellationToken ct) =>
        Write(() => inner.InsertKeyAsync(key, rootKeyCheck, nextRootKeyCheck, ct));
    public Task<bool> InsertKeyMaterialAsync(string keyId, KeyMaterialEntity material, string rootKeyCheck, string? nextRootKeyCheck, CancellationToken ct) =>
        Write(() => inner.InsertKeyMaterialAsync(keyId, material, rootKeyCheck, nextRootKeyCheck, ct));
    public Task<bool> UpdateKeyStateAsync(string keyId, bool enabled, DateTimeOffset? deletionDate, CancellationToken ct) =>
        Write(() => inner.UpdateKeyStateAsync(keyId, enabled, deletionDate, ct));
    public Task<IReadOnlyList<string>> PurgeKeysAsync(DateTimeOffset now, CancellationToken ct) => Write(() => inner.PurgeKeysAsync(now, ct));
    public Task<bool> InsertAliasAsync(string alias, string keyId, CancellationToken ct) => Write(() => inner.InsertAliasAsync(alias, keyId, ct));
    public Task<bool> UpdateAliasAsync(string alias, string keyId, CancellationToken ct) => Write(() => inner.UpdateAliasAsync(alias, keyId, ct));
    public Task<bool> DeleteAliasAsync(string alias, CancellationToken ct) => Write(() => inner.DeleteAliasAsync(alias, ct));
    public Task<long> CountVersionsUsingKeyAsync(string keyId, CancellationToken ct) => Read(() => inner.CountVersionsUsingKeyAsync(keyId, ct));
    public Task PrepareRootKeyRotationAsync(IReadOnlyDictionary<(string KeyId, int Version), byte[]> wrappedNext, string nextRootKeyCheck, CancellationToken ct) =>
        Write(() => inner.PrepareRootKeyRotationAsync(wrappedNext, nextRootKeyCheck, ct));
    public Task<bool> CompleteRootKeyRotationAsync(string nextRootKeyCheck, CancellationToken ct) =>
        Write(() => inner.CompleteRootKeyRotationAsync(nextRootKeyCheck, ct));
    public Task AbandonRootKeyRotationAsync(CancellationToken ct) => Write(() => inner.AbandonRootKeyRotationAsync(ct));
    public Task<RotationJob?> FindRotationAsync(long secretKey, CancellationToken ct) => Read(() => inner.FindRotationAsync(secretKey, ct));
    public Task<IReadOnlyList<RotationStatus>> ListRotationStatusAsync(CancellationToken ct) => Read(() => inner.ListRotationStatusAsync(ct));
    public Task<IReadOnlyList<(string Region, string Arn)>> FindDueRotationsAsync(DateTimeOffset now, int limit, CancellationToken ct) =>
        Read(() => inner.FindDueRotationsAsync(now, limit, ct));
    public Task<IReadOnlyList<RotationJob>> ClaimRotationsAsync(DateTimeOffset now, string owner, DateTimeOffset leaseExpires, int limit, CancellationToken ct) =>
        Write(() => inner.ClaimRotationsAsync(now, owner, leaseExpires, limit, ct));
    public Task<bool> RenewLeaseAsync(long secretKey, string owner, DateTimeOffset leaseExpires, CancellationToken ct) =>
        Write(() => inner.RenewLeaseAsync(secretKey, owner, leaseExpires, ct));
    public Task<int> ReleaseRotationLeasesAsync(CancellationToken ct) => Write(() => inner.ReleaseRotationLeasesAsync(ct));
    public Task<T> WriteAsync<T>(Func<ISecretWriter, Task<T>> work, CancellationToken ct) => Write(() => inner.WriteAsync(work, ct));
    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
