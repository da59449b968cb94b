using Tumbler.Client.Model;

namespace Tumbler.Client;

/// <summary>
/// An in-memory cache of secret values, as AWS's caching clients and the Secrets Manager Agent keep one:
/// <list type="bullet">
/// <item>a value is served from memory for <see cref="SecretCacheOptions.Ttl"/>; then one DescribeSecret checks
/// whether the wanted stage (default AWSCURRENT) still points at the cached version: if so the value is kept
/// and its TTL starts again, if not the new version is fetched with GetSecretValue (by its VersionId);</item>
/// <item>stale-if-error: when that check cannot reach the server (or it answers 5xx/throttling), the last value
/// is served, for at most <see cref="SecretCacheOptions.MaxStaleness"/> after the server last confirmed it,
/// retrying with back-off; other errors (the secret was deleted, access was revoked) are thrown and the entry dropped;</item>
/// <item>bounded: at most <see cref="SecretCacheOptions.MaxSize"/> entries, least recently used evicted first;</item>
/// <item>thread-safe; at most one call to the server per entry at a time, concurrent callers wait for it.</item>
/// </list>
/// The cache does not own the client.
/// </summary>
public sealed class SecretCache : IDisposable
{
    private readonly ISecretsManager _client;
    private readonly SecretCacheOptions _options;
    private readonly TimeProvider _clock;
    private readonly Lock _lock = new();
    private readonly Dictionary<Key, Entry> _entries = [];
    private readonly LinkedList<Entry> _lru = new();

    public SecretCache(ISecretsManager client, SecretCacheOptions? options = null)
    {
        _client = client ?? throw new ArgumentNullException(nameof(client));
        _options = options ?? new SecretCacheOptions();
        _options.Validate();
        _clock = _options.TimeProvider;
    }

    public SecretCacheOptions Options => _options;

    /// <summary>Entries held now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>The secret's AWSCURRENT (or <see cref="SecretCacheOptions.DefaultVersionStage"/>) value.</summary>
    public Task<SecretValue> GetSecretValueAsync(string secretId, CancellationToken cancellationToken = default) =>
        GetSecretValueAsync(secretId, null, null, false, cancellationToken);

    /// <summary>SecretString of the secret's current value (null for a binary secret).</summary>
    public async Task<string?> GetSecretStringAsync(string secretId, CancellationToken cancellationToken = default) =>
        (await GetSecretValueAsync(secretId, cancellationToken)).SecretString;

    /// <summary>
    /// A version of a secret, by <paramref name="versionId"/> and/or <paramref name="versionStage"/> (default stage when both are null).
    /// <paramref name="refreshNow"/>: ask the server now whatever the TTL (GetSecretValue); on failure the error is thrown and the cache is left as it was.
    /// </summary>
    public async Task<SecretValue> GetSecretValueAsync(string secretId, string? versionId, string? versionStage, bool refreshNow = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(secretId);
        var key = new Key(secretId, versionId, versionId is null ? versionStage ?? _options.DefaultVersionStage : versionStage);
        if (_options.Ttl == TimeSpan.Zero)
        {
            return await FetchAsync(key, cancellationToken);
        }
        var entry = Touch(key);
        var state = entry.State;
        if (!refreshNow && state is not null && _clock.GetUtcNow() < state.ExpiresAt)
        {
            return state.Value;
        }
        await entry.Gate.WaitAsync(cancellationToken);
        try
        {
            state = entry.State;
            var now = _clock.GetUtcNow();
            if (refreshNow)
            {
                SecretValue fetched;
                try
                {
                    fetched = await FetchAsync(key, cancellationToken);
                }
                catch when (state is null)
                {
                    Remove(entry); // nothing was cached: leave no empty entry behind
                    throw;
                }
                entry.Succeeded(fetched, _clock.GetUtcNow(), _options.Ttl);
                return fetched;
            }
            if (state is not null && now < state.ExpiresAt)
            {
                return state.Value; // refreshed by the caller we waited for
            }
            if (state is not null && now < entry.NextAttempt && now - state.ConfirmedAt <= _options.MaxStaleness)
            {
                return state.Value; // backing off after a failed refresh
            }
            try
            {
                var value = state is null ? await FetchAsync(key, cancellationToken) : await RevalidateAsync(key, state.Value, cancellationToken);
                entry.Succeeded(value, _clock.GetUtcNow(), _options.Ttl);
                return value;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && state is not null && IsTransient(e)
                && now - state.ConfirmedAt <= _options.MaxStaleness)
            {
                entry.Failures++;
                var delay = TimeSpan.FromTicks(Math.Min(_options.MaxErrorRetryInterval.Ticks,
                    _options.ErrorRetryInterval.Ticks * (1L << Math.Min(entry.Failures - 1, 30))));
                entry.NextAttempt = now + delay;
                return state.Value;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not OperationCanceledException)
            {
                Remove(entry);
                throw;
            }
        }
        finally
        {
            entry.Gate.Release();
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> with the secret's current value; when it fails with an exception for which
    /// <paramref name="isAuthFailure"/> is true (the database refused the password), tries what rotation may have
    /// put in the database instead, with at most two more runs of the action:
    /// <list type="number">
    /// <item>the AWSPENDING version, fetched now (never cached), if there is one with a value not tried yet: the
    /// window between setSecret and finishSecret of a single-user rotation, when the database already has the
    /// pending password and AWSCURRENT still names the old one;</item>
    /// <item>then AWSCURRENT fetched at once, whatever the TTL, when it is a newer version (rotation finished after
    /// the value was cached). Pending comes first: if finishSecret removes it meanwhile, this read already shows the
    /// new version.</item>
    /// </list>
    /// When nothing newer is accepted the first failure is rethrown; a failure that is not an authentication
    /// failure is thrown as it is. Concurrent failures on the same version cause one fetch of AWSCURRENT.
    /// </summary>
    public async Task<T> ExecuteWithRefreshOnAuthFailureAsync<T>(string secretId, Func<SecretValue, Task<T>> action,
        Func<Exception, bool> isAuthFailure, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        ArgumentNullException.ThrowIfNull(isAuthFailure);
        var value = await GetSecretValueAsync(secretId, cancellationToken);
        try
        {
            return await action(value);
        }
        catch (Exception e) when (isAuthFailure(e))
        {
            // The database may be ahead of the cache: on AWSPENDING between setSecret and finishSecret, or on AWSCURRENT's
            // new version once a rotation finished. Pending is looked at first: if finishSecret removes it meanwhile, the
            // AWSCURRENT read that follows already shows the new version. Each version is tried once; two more attempts at most.
            var tried = new HashSet<string>(StringComparer.Ordinal) { value.VersionId };
            foreach (var next in new Func<Task<SecretValue?>>[]
            {
                () => GetPendingAsync(secretId, cancellationToken),
                async () => await RefreshIfStillAsync(secretId, value.VersionId, cancellationToken),
            })
            {
                if (await next() is not { } candidate || !tried.Add(candidate.VersionId))
                {
                    continue;
                }
                try
                {
                    return await action(candidate);
                }
                catch (Exception again) when (isAuthFailure(again))
                {
                    // Refused too: look at the other stage.
                }
            }
            throw;
        }
    }

    /// <summary>Forgets every cached version of <paramref name="secretId"/> (as given to the Get methods).</summary>
    public void Invalidate(string secretId)
    {
        lock (_lock)
        {
            foreach (var entry in _entries.Values.Where(e => e.Key.SecretId == secretId).ToList())
            {
                _entries.Remove(entry.Key);
                _lru.Remove(entry.Node);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _entries.Clear();
            _lru.Clear();
        }
    }

    /// <summary>The default-stage value fetched now, unless another caller already replaced <paramref name="staleVersionId"/>.</summary>
    private async Task<SecretValue> RefreshIfStillAsync(string secretId, string staleVersionId, CancellationToken ct)
    {
        var key = new Key(secretId, null, _options.DefaultVersionStage);
        if (_options.Ttl == TimeSpan.Zero)
        {
            return await FetchAsync(key, ct);
        }
        var entry = Touch(key);
        await entry.Gate.WaitAsync(ct);
        try
        {
            if (entry.State is { } state && state.Value.VersionId != staleVersionId)
            {
                return state.Value;
            }
            var value = await FetchAsync(key, ct);
            entry.Succeeded(value, _clock.GetUtcNow(), _options.Ttl);
            return value;
        }
        finally
        {
            entry.Gate.Release();
        }
    }

    /// <summary>The secret's AWSPENDING version fetched now, or null when it has none (or only the valueless placeholder).</summary>
    private async Task<SecretValue?> GetPendingAsync(string secretId, CancellationToken ct)
    {
        try
        {
            return await FetchAsync(new Key(secretId, null, "AWSPENDING"), ct);
        }
        catch (TumblerApiException e) when (e.ErrorCode == "ResourceNotFoundException")
        {
            return null;
        }
    }

    private async Task<SecretValue> FetchAsync(Key key, CancellationToken ct) =>
        SecretValue.From(await _client.GetSecretValueAsync(
            new GetSecretValueRequest { SecretId = key.SecretId, VersionId = key.VersionId, VersionStage = key.VersionStage }, ct));

    /// <summary>One DescribeSecret: the cached value when it is still the wanted version, else that version fetched.</summary>
    private async Task<SecretValue> RevalidateAsync(Key key, SecretValue cached, CancellationToken ct)
    {
        // By the id the caller gave, as AWS's caching clients do: a secret deleted and made again under that name is the new one.
        var description = await _client.DescribeSecretAsync(new DescribeSecretRequest { SecretId = key.SecretId }, ct);
        if (description.DeletedDate is not null)
        {
            // Scheduled for deletion: DescribeSecret still answers, GetSecretValue refuses. Its refusal is the answer.
            return await FetchAsync(key, ct);
        }
        var versions = description.VersionIdsToStages;
        if (key.VersionId is not null)
        {
            if (versions.TryGetValue(key.VersionId, out var stages) && (key.VersionStage is null || stages.Contains(key.VersionStage)))
            {
                return WithStages(cached, stages);
            }
            return await FetchAsync(key, ct);
        }
        var current = versions.FirstOrDefault(v => v.Value.Contains(key.VersionStage!)).Key;
        if (current == cached.VersionId)
        {
            return WithStages(cached, versions[current]);
        }
        // Fetch exactly the version DescribeSecret named (as AWS's caching clients do); the stage alone when none has it (that error is the answer).
        return await FetchAsync(current is null ? key : new Key(key.SecretId, current, null), ct);
    }

    private static SecretValue WithStages(SecretValue value, List<string> stages) =>
        value.VersionStages.SequenceEqual(stages) ? value : value with { VersionStages = [.. stages] };

    /// <summary>Server unreachable, timed out, 5xx or throttled: worth serving the last value for.</summary>
    public static bool IsTransient(Exception e) => e switch
    {
        TumblerClientException => true,
        TimeoutException or HttpRequestException => true,
        TumblerApiException api => api.StatusCode >= 500 || api.ErrorCode is "ThrottlingException" or "InternalServiceError" or "RequestTimeout",
        _ => false,
    };

    private Entry Touch(Key key)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var entry))
            {
                if (entry.Node.Previous is not null)
                {
                    _lru.Remove(entry.Node);
                    _lru.AddFirst(entry.Node);
                }
                return entry;
            }
            entry = new Entry(key);
            _entries[key] = entry;
            _lru.AddFirst(entry.Node);
            while (_entries.Count > _options.MaxSize)
            {
                var last = _lru.Last!;
                _lru.RemoveLast();
                _entries.Remove(last.Value.Key);
            }
            return entry;
        }
    }

    private void Remove(Entry entry)
    {
        entry.State = null;
        lock (_lock)
        {
            if (_entries.TryGetValue(entry.Key, out var held) && ReferenceEquals(held, entry))
            {
                _entries.Remove(entry.Key);
                _lru.Remove(entry.Node);
            }
        }
    }

    private readonly record struct Key(string SecretId, string? VersionId, string? VersionStage);

    private sealed record CachedState(SecretValue Value, DateTimeOffset ExpiresAt, DateTimeOffset ConfirmedAt);

    private sealed class Entry
    {
        public Entry(Key key)
        {
            Key = key;
            Node = new LinkedListNode<Entry>(this);
        }

        public Key Key { get; }
        public LinkedListNode<Entry> Node { get; }
        public SemaphoreSlim Gate { get; } = new(1, 1);
        // Read without the gate by cache hits; replaced whole, never changed in place.
        public volatile CachedState? State;
        // Only under the gate:
        public int Failures;
        public DateTimeOffset NextAttempt;

        public void Succeeded(SecretValue value, DateTimeOffset now, TimeSpan ttl)
        {
            State = new CachedState(value, now + ttl, now);
            Failures = 0;
            NextAttempt = default;
        }
    }
}
