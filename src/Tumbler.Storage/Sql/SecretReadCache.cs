using System.Collections.Concurrent;
using Tumbler.Core.Storage;

namespace Tumbler.Storage.Sql;

/// <summary>
/// The secrets (row and versions), encrypted value blobs, absent rotations and listing pages that reads outside a write
/// transaction found, so a GetSecretValue, DescribeSecret or ListSecrets page read before costs no statement. Only for
/// a store this process alone writes (the embedded SQLite one): it cannot see other processes' writes.
/// <para>
/// Invalidation is by epoch: every write transaction ends by moving the epoch on, and an entry serves only the epoch
/// in which its read began. A read that raced a write is therefore never served later, and nothing is searched or
/// removed on a write. Values stay ciphertext here, as on disk. Memory is bounded by a rough byte count: past
/// <see cref="BudgetBytes"/> the cache starts over empty.
/// </para>
/// </summary>
internal sealed class SecretReadCache
{
    public const long BudgetBytes = 32L * 1024 * 1024;
    private const int EntryOverheadBytes = 256;
    private const int ListingBytesPerSecret = 1024;

    private readonly ConcurrentDictionary<(string Region, string Key, bool ByArn), Entry<SecretEntity>> _secrets = new();
    private readonly ConcurrentDictionary<(long SecretKey, string VersionId), Entry<byte[]>> _values = new();
    private readonly ConcurrentDictionary<long, long> _withoutRotation = new();
    private readonly ConcurrentDictionary<PageRequest, Entry<IReadOnlyList<SecretEntity>>> _pages = new();
    private long _epoch;
    private long _bytes;

    private sealed record Entry<T>(long Epoch, T Item);

    /// <summary>The arguments of one <see cref="ISecretStore.ListSecretsPageAsync"/> call.</summary>
    public readonly record struct PageRequest(string Region, bool IncludeScheduledForDeletion, SecretSortKey SortBy, bool Descending,
        SecretListPosition? After, int Limit);

    /// <summary>Read before a store read; pass it to the Put of what that read found.</summary>
    public long Epoch => Volatile.Read(ref _epoch);

    /// <summary>After every write transaction, committed or not.</summary>
    public void Invalidate() => Interlocked.Increment(ref _epoch);

    public SecretEntity? FindSecret(string region, SecretLookup lookup) =>
        _secrets.TryGetValue(SecretKey(region, lookup), out var entry) && entry.Epoch == Epoch ? entry.Item.Copy() : null;

    public void PutSecret(long epoch, string region, SecretLookup lookup, SecretEntity secret)
    {
        Charge(Cost(secret));
        _secrets[SecretKey(region, lookup)] = new Entry<SecretEntity>(epoch, secret.Copy());
    }

    public byte[]? FindValue(long secretKey, string versionId) =>
        _values.TryGetValue((secretKey, versionId), out var entry) && entry.Epoch == Epoch ? entry.Item.ToArray() : null;

    public void PutValue(long epoch, long secretKey, string versionId, byte[] blob)
    {
        Charge(EntryOverheadBytes + blob.Length);
        _values[(secretKey, versionId)] = new Entry<byte[]>(epoch, blob.ToArray());
    }

    /// <summary>The page itself, not a copy: a listing's secrets are read-only (see <see cref="ISecretStore.ListSecretsPageAsync"/>).</summary>
    public IReadOnlyList<SecretEntity>? FindPage(PageRequest request) =>
        _pages.TryGetValue(request, out var entry) && entry.Epoch == Epoch ? entry.Item : null;

    public void PutPage(long epoch, PageRequest request, IReadOnlyList<SecretEntity> page)
    {
        // ListSecrets keeps each listed secret's entry and rendered JSON for as long as the secret object lives.
        Charge(page.Sum(Cost) + page.Count * ListingBytesPerSecret);
        _pages[request] = new Entry<IReadOnlyList<SecretEntity>>(epoch, page);
    }

    /// <summary>True when a read in this epoch found no rotation in progress for the secret (the usual answer to DescribeSecret's question).</summary>
    public bool KnownToHaveNoRotation(long secretKey) => _withoutRotation.TryGetValue(secretKey, out var epoch) && epoch == Epoch;

    public void PutNoRotation(long epoch, long secretKey)
    {
        Charge(EntryOverheadBytes);
        _withoutRotation[secretKey] = epoch;
    }

    private static long Cost(SecretEntity secret) => EntryOverheadBytes * (1 + secret.Versions.Count) + (secret.ResourcePolicy?.Length ?? 0) * 2;

    private static (string, string, bool) SecretKey(string region, SecretLookup lookup) =>
        lookup.Arn is not null ? (region, lookup.Arn, true) : (region, lookup.Name!, false);

    /// <summary>Counts what an entry costs (replaced entries included, so the count errs high) and starts over past the budget.</summary>
    private void Charge(long bytes)
    {
        if (Interlocked.Add(ref _bytes, bytes) > BudgetBytes)
        {
            _secrets.Clear();
            _values.Clear();
            _withoutRotation.Clear();
            _pages.Clear();
            Interlocked.Exchange(ref _bytes, 0);
        }
    }
}
