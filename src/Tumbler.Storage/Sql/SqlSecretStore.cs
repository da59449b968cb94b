using System.Data.Common;
using Tumbler.Core.Storage;

namespace Tumbler.Storage.Sql;

/// <summary>
/// The store's queries, written once in the SQL both engines speak (named <c>@parameters</c>, <c>ON CONFLICT</c>,
/// <c>RETURNING</c>; times as Unix milliseconds, flags as 0/1 integers), so SQLite and PostgreSQL cannot drift.
/// An engine supplies connections, its schema, and <see cref="BeginWriteAsync"/>: writers run one at a time
/// across every process sharing the store, so a read-modify-write transaction sees no concurrent change.
/// </summary>
public abstract partial class SqlSecretStore : ISecretStore, IIdentityStore, IFunctionStore
{
    private readonly SecretReadCache? _cache;

    /// <param name="cachesReads">True only when no other process writes the store (see <see cref="SecretReadCache"/>).</param>
    protected SqlSecretStore(bool cachesReads)
    {
        _cache = cachesReads ? new SecretReadCache() : null;
    }

    public abstract Task InitializeAsync(CancellationToken ct);

    /// <summary>Opens a connection for reads (or for a write the caller wraps in <see cref="BeginWriteAsync"/>).</summary>
    protected abstract Task<DbConnection> OpenAsync(CancellationToken ct);

    /// <summary>
    /// Opens a connection and begins the one write transaction allowed at a time across every process sharing the
    /// store; disposing the scope rolls back what was not committed and lets the next writer in.
    /// </summary>
    protected abstract Task<WriteScope> BeginWriteAsync(CancellationToken ct);

    /// <summary>
    /// Begins a read-only snapshot on a connection, so that the statements of a listing (keys with their materials and
    /// aliases, secrets with their versions) see one state even while other nodes write. Not on the GetSecretValue path:
    /// there the versions come from one statement, and a snapshot's extra round trips cost more than they protect.
    /// </summary>
    protected abstract Task<DbTransaction> BeginReadAsync(DbConnection connection, CancellationToken ct);

    /// <param name="keepsConnection">True when the connection outlives the transaction (the engine's kept write connection).</param>
    protected sealed class WriteScope(DbConnection connection, DbTransaction transaction, Action? release = null, bool keepsConnection = false)
        : IAsyncDisposable
    {
        public DbConnection Connection { get; } = connection;
        public DbTransaction Transaction { get; } = transaction;

        public async ValueTask DisposeAsync()
        {
            try
            {
                try
                {
                    await Transaction.DisposeAsync();
                }
                finally
                {
                    if (!keepsConnection)
                    {
                        await Connection.DisposeAsync();
                    }
                }
            }
            finally
            {
                release?.Invoke();
            }
        }
    }

    public async Task<bool> HasDataAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return Convert.ToInt64(await Scalar(connection, null,
            "SELECT (SELECT COUNT(*) FROM secrets) + (SELECT COUNT(*) FROM kms_keys)", ct)) > 0;
    }

    public async Task<string?> GetSettingAsync(string name, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await Scalar(connection, null, "SELECT value FROM settings WHERE name = @name", ct, ("@name", name)) as string;
    }

    public Task<string> InitializeSettingAsync(string name, string value, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            await Execute(sql.Connection, sql.Transaction, "INSERT INTO settings (name, value) VALUES (@name, @value) ON CONFLICT (name) DO NOTHING",
                ct, ("@name", name), ("@value", value));
            return (string)(await Scalar(sql.Connection, sql.Transaction, "SELECT value FROM settings WHERE name = @name", ct, ("@name", name)))!;
        }, ct);

    public Task SetSettingAsync(string name, string value, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            await Execute(sql.Connection, sql.Transaction,
                "INSERT INTO settings (name, value) VALUES (@name, @value) ON CONFLICT (name) DO UPDATE SET value = excluded.value", ct,
                ("@name", name), ("@value", value));
            return true;
        }, ct);

    private const string ConfigurationGenerationSetting = "configuration_generation";

    public async Task<long> GetConfigurationGenerationAsync(CancellationToken ct) =>
        await GetSettingAsync(ConfigurationGenerationSetting, ct) is { } value ? long.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : 0;

    /// <summary>Called inside every transaction that changes users, keys, policies, KMS-like keys or functions.</summary>
    private static Task ConfigurationChangedAsync(Writer sql, CancellationToken ct) => Execute(sql.Connection, sql.Transaction, """
        INSERT INTO settings (name, value) VALUES (@name, '1')
        ON CONFLICT (name) DO UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT)
        """, ct, ("@name", ConfigurationGenerationSetting));

    public async Task<SecretEntity?> FindSecretAsync(string region, SecretLookup lookup, CancellationToken ct)
    {
        if (_cache?.FindSecret(region, lookup) is { } cached)
        {
            return cached;
        }
        var epoch = _cache?.Epoch ?? 0;
        using var timer = StoreMetrics.Time();
        await using var connection = await OpenAsync(ct);
        var secret = await FindSecretAsync(connection, null, region, lookup, ct);
        if (secret is not null)
        {
            _cache?.PutSecret(epoch, region, lookup, secret);
        }
        return secret;
    }

    public async Task<byte[]?> ReadValueAsync(long secretKey, string versionId, CancellationToken ct)
    {
        if (_cache?.FindValue(secretKey, versionId) is { } cached)
        {
            return cached;
        }
        var epoch = _cache?.Epoch ?? 0;
        using var timer = StoreMetrics.Time();
        await using var connection = await OpenAsync(ct);
        var blob = await ReadValueAsync(connection, null, secretKey, versionId, ct);
        if (blob is not null)
        {
            _cache?.PutValue(epoch, secretKey, versionId, blob);
        }
        return blob;
    }

    public async Task<IReadOnlyList<SecretEntity>> ListSecretsAsync(string region, bool includeScheduledForDeletion, CancellationToken ct)
    {
        using var timer = StoreMetrics.Time();
        await using var connection = await OpenAsync(ct);
        await using var snapshot = await BeginReadAsync(connection, ct);
        var deletedClause = includeScheduledForDeletion ? "" : " AND deletion_date IS NULL";
        var secrets = new Dictionary<long, SecretEntity>();
        await using (var command = Command(connection, snapshot, $"SELECT {SecretColumns} FROM secrets WHERE region = @region{deletedClause} ORDER BY created, id", ("@region", region)))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var secret = ReadSecret(reader);
                secrets.Add(secret.Key, secret);
            }
        }
        await using (var command = Command(connection, snapshot,
            $"SELECT v.secret_id, {VersionColumns} FROM versions v JOIN secrets s ON s.id = v.secret_id WHERE s.region = @region{deletedClause} ORDER BY v.created", ("@region", region)))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                if (secrets.TryGetValue(reader.GetInt64(0), out var secret))
                {
                    secret.Versions.Add(ReadVersion(reader, 1));
                }
            }
        }
        return [.. secrets.Values];
    }

    public async Task<IReadOnlyList<SecretEntity>> ListSecretsPageAsync(string region, bool includeScheduledForDeletion, SecretSortKey sortBy, bool descending,
        SecretListPosition? after, int limit, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        if (after is { } position && position.SortBy != sortBy)
        {
            throw new ArgumentException($"A position in {position.SortBy} order does not continue a listing in {sortBy} order.", nameof(after));
        }
        var request = new SecretReadCache.PageRequest(region, includeScheduledForDeletion, sortBy, descending, after, limit);
        if (_cache?.FindPage(request) is { } cached)
        {
            return cached;
        }
        var epoch = _cache?.Epoch ?? 0;
        var page = await ReadSecretsPageAsync(request, ct);
        _cache?.PutPage(epoch, request, page);
        return page;
    }

    private async Task<IReadOnlyList<SecretEntity>> ReadSecretsPageAsync(SecretReadCache.PageRequest request, CancellationToken ct)
    {
        var (region, includeScheduledForDeletion, sortBy, descending, after, limit) = request;
        using var timer = StoreMetrics.Time(nameof(ListSecretsPageAsync));
        await using var connection = await OpenAsync(ct);
        await using var snapshot = await BeginReadAsync(connection, ct);
        // Names compare byte-wise in both stores (SQLite's BINARY, PostgreSQL's COLLATE "C"), as ListSecrets' ordinal sort.
        var sortColumn = sortBy switch
        {
            SecretSortKey.Name => "name",
            SecretSortKey.LastAccessedDate => $"COALESCE(last_accessed, {ToMs(DateTimeOffset.MinValue.UtcTicks)})",
            SecretSortKey.LastChangedDate => "last_changed",
            _ => "created",
        };
        var (direction, beyond) = descending ? ("DESC", "<") : ("ASC", ">");
        var sql = new System.Text.StringBuilder($"SELECT {SecretColumns} FROM secrets WHERE region = @region");
        if (!includeScheduledForDeletion)
        {
            sql.Append(" AND deletion_date IS NULL");
        }
        var parameters = new List<(string, object?)> { ("@region", region), ("@limit", limit) };
        if (after is { } position)
        {
            sql.Append($" AND ({sortColumn} {beyond} @value OR ({sortColumn} = @value AND id {beyond} @id))");
            parameters.Add(("@value", sortBy == SecretSortKey.Name ? position.Name : ToMs(position.Ticks)));
            parameters.Add(("@id", position.Key));
        }
        sql.Append($" ORDER BY {sortColumn} {direction}, id {direction} LIMIT @limit");
        var secrets = new List<SecretEntity>();
        await using (var command = Command(connection, snapshot, sql.ToString(), [.. parameters]))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                secrets.Add(ReadSecret(reader));
            }
        }
        if (secrets.Count == 0)
        {
            return secrets;
        }
        var byKey = secrets.ToDictionary(secret => secret.Key);
        // The page's row keys are integers read from the table itself, so inlining them is safe.
        await using (var command = Command(connection, snapshot,
            $"SELECT v.secret_id, {VersionColumns} FROM versions v WHERE v.secret_id IN ({string.Join(',', byKey.Keys)}) ORDER BY v.created"))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                byKey[reader.GetInt64(0)].Versions.Add(ReadVersion(reader, 1));
            }
        }
        return secrets;

        // Dates are stored as Unix milliseconds; a position holds ticks.
        static long ToMs(long ticks) => (ticks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMillisecond;
    }

    public Task SetLastAccessedAsync(long secretKey, string versionId, DateTimeOffset date, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            // One transaction, one commit, for both rows.
            await Execute(sql.Connection, sql.Transaction, """
                UPDATE secrets SET last_accessed = @date WHERE id = @secret;
                UPDATE versions SET last_accessed = @date WHERE secret_id = @secret AND version_id = @version;
                """, ct, ("@date", date.ToUnixTimeMilliseconds()), ("@secret", secretKey), ("@version", versionId));
            return true;
        }, ct);

    public async Task<IReadOnlyList<string>> PurgeDeletedAsync(DateTimeOffset now, CancellationToken ct) =>
        await WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            var arns = new List<string>();
            await using (var command = Command(sql.Connection, sql.Transaction,
                "SELECT arn FROM secrets WHERE deletion_date IS NOT NULL AND deletion_date <= @now", ("@now", now.ToUnixTimeMilliseconds())))
            await using (var reader = await command.ExecuteReaderAsync(ct))
            {
                while (await reader.ReadAsync(ct))
                {
                    arns.Add(reader.GetString(0));
                }
            }
            await Execute(sql.Connection, sql.Transaction,
                "DELETE FROM secrets WHERE deletion_date IS NOT NULL AND deletion_date <= @now", ct, ("@now", now.ToUnixTimeMilliseconds()));
            return (IReadOnlyList<string>)arns;
        }, ct);

    public async Task<IReadOnlyList<KmsKeyEntity>> ListKeysAsync(CancellationToken ct)
    {
        using var timer = StoreMetrics.Time();
        await using var connection = await OpenAsync(ct);
        await using var snapshot = await BeginReadAsync(connection, ct);
        var aliases = new List<(string Alias, string KeyId)>();
        await using (var command = Command(connection, snapshot, "SELECT alias, key_id FROM kms_aliases"))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                aliases.Add((reader.GetString(0), reader.GetString(1)));
            }
        }
        var materials = new List<(string KeyId, KeyMaterialEntity Material)>();
        await using (var command = Command(connection, snapshot, "SELECT key_id, version, created, wrapped, wrapped_next FROM kms_key_materials ORDER BY key_id, version"))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                materials.Add((reader.GetString(0), new KeyMaterialEntity(reader.GetInt32(1), FromMs(reader.GetInt64(2)), (byte[])reader.GetValue(3),
                    reader.IsDBNull(4) ? null : (byte[])reader.GetValue(4))));
            }
        }
        var keys = new List<KmsKeyEntity>();
        await using (var command = Command(connection, snapshot, "SELECT key_id, arn, description, enabled, created, deletion_date FROM kms_keys ORDER BY created"))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var keyId = reader.GetString(0);
                keys.Add(new KmsKeyEntity(keyId, reader.GetString(1), reader.GetString(2), GetFlag(reader, 3), FromMs(reader.GetInt64(4)),
                    [.. materials.Where(m => m.KeyId == keyId).Select(m => m.Material)], [.. aliases.Where(a => a.KeyId == keyId).Select(a => a.Alias)],
                    reader.IsDBNull(5) ? null : FromMs(reader.GetInt64(5))));
            }
        }
        return keys;
    }

    public Task<bool> InsertKeyAsync(KmsKeyEntity key, string rootKeyCheck, string? nextRootKeyCheck, CancellationToken ct) =>
        ChangeConfigurationAsync(async sql =>
        {
            if (!await RootKeyChecksAre(sql, rootKeyCheck, nextRootKeyCheck, ct))
            {
                return false;
            }
            foreach (var alias in key.Aliases)
            {
                if (await Scalar(sql.Connection, sql.Transaction, "SELECT 1 FROM kms_aliases WHERE alias = @alias", ct, ("@alias", alias)) is not null)
                {
                    return false;
                }
            }
            await Execute(sql.Connection, sql.Transaction,
                "INSERT INTO kms_keys (key_id, arn, description, enabled, created) VALUES (@id, @arn, @description, @enabled, @created)",
                ct, ("@id", key.KeyId), ("@arn", key.Arn), ("@description", key.Description), ("@enabled", key.Enabled ? 1 : 0),
                ("@created", key.CreatedDate.ToUnixTimeMilliseconds()));
            foreach (var material in key.Materials)
            {
                await InsertMaterial(sql, key.KeyId, material, ct);
            }
            foreach (var alias in key.Aliases)
            {
                await Execute(sql.Connection, sql.Transaction, "INSERT INTO kms_aliases (alias, key_id) VALUES (@alias, @id)",
                    ct, ("@alias", alias), ("@id", key.KeyId));
            }
            return true;
        }, ct);

    public Task<bool> InsertKeyMaterialAsync(string keyId, KeyMaterialEntity material, string rootKeyCheck, string? nextRootKeyCheck, CancellationToken ct) =>
        ChangeConfigurationAsync(async sql =>
        {
            if (!await RootKeyChecksAre(sql, rootKeyCheck, nextRootKeyCheck, ct)
                || await Scalar(sql.Connection, sql.Transaction, "SELECT 1 FROM kms_key_materials WHERE key_id = @id AND version = @version", ct,
                    ("@id", keyId), ("@version", material.Version)) is not null)
            {
                return false;
            }
            await InsertMaterial(sql, keyId, material, ct);
            return true;
        }, ct);

    private static Task InsertMaterial(Writer sql, string keyId, KeyMaterialEntity material, CancellationToken ct) =>
        Execute(sql.Connection, sql.Transaction,
            "INSERT INTO kms_key_materials (key_id, version, created, wrapped, wrapped_next) VALUES (@id, @version, @created, @wrapped, @next)", ct,
            ("@id", keyId), ("@version", material.Version), ("@created", material.CreatedDate.ToUnixTimeMilliseconds()),
            ("@wrapped", material.Wrapped), ("@next", material.WrappedNext));

    /// <summary>True when the store's root key check value and next root key check value (null: no rotation prepared) are these.</summary>
    private static async Task<bool> RootKeyChecksAre(Writer sql, string rootKeyCheck, string? nextRootKeyCheck, CancellationToken ct) =>
        await Setting(sql, RootKeyCheckSetting, ct) == rootKeyCheck && await Setting(sql, NextRootKeyCheckSetting, ct) == nextRootKeyCheck;

    private static async Task<string?> Setting(Writer sql, string name, CancellationToken ct) =>
        await Scalar(sql.Connection, sql.Transaction, "SELECT value FROM settings WHERE name = @name", ct, ("@name", name)) as string;

    private const string RootKeyCheckSetting = "root_key_check";
    private const string NextRootKeyCheckSetting = "root_key_check_next";

    public Task PrepareRootKeyRotationAsync(IReadOnlyDictionary<(string KeyId, int Version), byte[]> wrappedNext, string nextRootKeyCheck,
        CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            if (await Setting(sql, NextRootKeyCheckSetting, ct) != nextRootKeyCheck)
            {
                await Execute(sql.Connection, sql.Transaction, "UPDATE kms_key_materials SET wrapped_next = NULL", ct);
                await Execute(sql.Connection, sql.Transaction,
                    "INSERT INTO settings (name, value) VALUES (@name, @value) ON CONFLICT (name) DO UPDATE SET value = excluded.value", ct,
                    ("@name", NextRootKeyCheckSetting), ("@value", nextRootKeyCheck));
            }
            foreach (var ((keyId, version), wrapped) in wrappedNext)
            {
                await Execute(sql.Connection, sql.Transaction, "UPDATE kms_key_materials SET wrapped_next = @wrapped WHERE key_id = @id AND version = @version", ct,
                    ("@wrapped", wrapped), ("@id", keyId), ("@version", version));
            }
            return true;
        }, ct);

    public Task<bool> CompleteRootKeyRotationAsync(string nextRootKeyCheck, CancellationToken ct) =>
        ChangeConfigurationAsync(async sql =>
        {
            if (await Setting(sql, NextRootKeyCheckSetting, ct) != nextRootKeyCheck
                || await Scalar(sql.Connection, sql.Transaction, "SELECT 1 FROM kms_key_materials WHERE wrapped_next IS NULL LIMIT 1", ct) is not null)
            {
                return false;
            }
            await Execute(sql.Connection, sql.Transaction, "UPDATE kms_key_materials SET wrapped = wrapped_next, wrapped_next = NULL", ct);
            await Execute(sql.Connection, sql.Transaction, "UPDATE settings SET value = @value WHERE name = @name", ct,
                ("@name", RootKeyCheckSetting), ("@value", nextRootKeyCheck));
            await Execute(sql.Connection, sql.Transaction, "DELETE FROM settings WHERE name = @name", ct, ("@name", NextRootKeyCheckSetting));
            return true;
        }, ct);

    public Task AbandonRootKeyRotationAsync(CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            await Execute(sql.Connection, sql.Transaction, "UPDATE kms_key_materials SET wrapped_next = NULL", ct);
            await Execute(sql.Connection, sql.Transaction, "DELETE FROM settings WHERE name = @name", ct, ("@name", NextRootKeyCheckSetting));
            return true;
        }, ct);

    public Task<bool> UpdateKeyStateAsync(string keyId, bool enabled, DateTimeOffset? deletionDate, CancellationToken ct) =>
        ChangeOneConfigurationRowAsync("UPDATE kms_keys SET enabled = @enabled, deletion_date = @deletion WHERE key_id = @id", ct,
            ("@enabled", enabled ? 1 : 0), ("@deletion", deletionDate?.ToUnixTimeMilliseconds()), ("@id", keyId));

    public Task<IReadOnlyList<string>> PurgeKeysAsync(DateTimeOffset now, CancellationToken ct) =>
        ChangeConfigurationAsync(async sql =>
        {
            var ids = new List<string>();
            await using (var command = Command(sql.Connection, sql.Transaction, """
                SELECT key_id FROM kms_keys k WHERE deletion_date IS NOT NULL AND deletion_date <= @now
                AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.key_id = k.key_id)
                """, ("@now", now.ToUnixTimeMilliseconds())))
            await using (var reader = await command.ExecuteReaderAsync(ct))
            {
                while (await reader.ReadAsync(ct))
                {
                    ids.Add(reader.GetString(0));
                }
            }
            foreach (var id in ids)
            {
                await Execute(sql.Connection, sql.Transaction, "DELETE FROM kms_aliases WHERE key_id = @id", ct, ("@id", id));
                await Execute(sql.Connection, sql.Transaction, "DELETE FROM kms_key_materials WHERE key_id = @id", ct, ("@id", id));
                await Execute(sql.Connection, sql.Transaction, "DELETE FROM kms_keys WHERE key_id = @id", ct, ("@id", id));
            }
            return (IReadOnlyList<string>)ids;
        }, ct);

    public Task<bool> InsertAliasAsync(string alias, string keyId, CancellationToken ct) =>
        ChangeOneConfigurationRowAsync("INSERT INTO kms_aliases (alias, key_id) VALUES (@alias, @id) ON CONFLICT (alias) DO NOTHING", ct,
            ("@alias", alias), ("@id", keyId));

    public Task<bool> UpdateAliasAsync(string alias, string keyId, CancellationToken ct) =>
        ChangeOneConfigurationRowAsync("UPDATE kms_aliases SET key_id = @id WHERE alias = @alias", ct, ("@alias", alias), ("@id", keyId));

    public Task<bool> DeleteAliasAsync(string alias, CancellationToken ct) =>
        ChangeOneConfigurationRowAsync("DELETE FROM kms_aliases WHERE alias = @alias", ct, ("@alias", alias));

    public async Task<long> CountVersionsUsingKeyAsync(string keyId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return Convert.ToInt64(await Scalar(connection, null, "SELECT COUNT(*) FROM versions WHERE key_id = @id", ct, ("@id", keyId)));
    }

    /// <summary>
    /// Runs the work in a write transaction and returns once it is committed. Writes that arrive while a transaction is
    /// being written are committed together (group commit): each work runs in its own savepoint, in arrival order, so
    /// one that throws is rolled back alone and its caller gets the exception; the others share one commit and one
    /// fsync, and fail together if the commit fails.
    /// </summary>
    public Task<T> WriteAsync<T>(Func<ISecretWriter, Task<T>> work, CancellationToken ct)
    {
        var pending = new PendingWrite<T>(work, ct);
        bool lead;
        lock (_writeQueueLock)
        {
            _writeQueue.Add(pending);
            lead = !_writing;
            _writing = true;
        }
        if (lead)
        {
            // Started inline (no thread-pool hop for a lone write), without the caller's execution context: a request's
            // log scope must not follow other requests' work.
            using (ExecutionContext.SuppressFlow())
            {
                _ = CommitQueuedWritesAsync();
            }
        }
        return pending.Done.Task;
    }

    private readonly Lock _writeQueueLock = new();
    private List<PendingWrite> _writeQueue = [];
    private bool _writing;

    private async Task CommitQueuedWritesAsync()
    {
        while (true)
        {
            List<PendingWrite> batch;
            lock (_writeQueueLock)
            {
                if (_writeQueue.Count == 0)
                {
                    _writing = false;
                    return;
                }
                batch = _writeQueue;
                _writeQueue = [];
            }
            await CommitAsync(batch);
        }
    }

    private async Task CommitAsync(List<PendingWrite> batch)
    {
        var ran = new List<PendingWrite>(batch.Count);
        try
        {
            using var timer = StoreMetrics.Time(StoreMetrics.WriteTransaction);
            await using var scope = await BeginWriteAsync(CancellationToken.None);
            var writer = new Writer(scope.Connection, scope.Transaction);
            var alone = batch.Count == 1;
            foreach (var pending in batch)
            {
                if (pending.Cancellation.IsCancellationRequested)
                {
                    pending.Fail(new OperationCanceledException(pending.Cancellation));
                    continue;
                }
                if (!alone)
                {
                    await Execute(scope.Connection, scope.Transaction, "SAVEPOINT tumbler_write", CancellationToken.None);
                }
                try
                {
                    await pending.RunAsync(writer);
                }
                catch (Exception e) when (!alone)
                {
                    await Execute(scope.Connection, scope.Transaction, "ROLLBACK TO SAVEPOINT tumbler_write", CancellationToken.None);
                    pending.Fail(e);
                    continue;
                }
                if (!alone)
                {
                    await Execute(scope.Connection, scope.Transaction, "RELEASE SAVEPOINT tumbler_write", CancellationToken.None);
                }
                ran.Add(pending);
            }
            await scope.Transaction.CommitAsync(CancellationToken.None);
        }
        catch (Exception e)
        {
            // The transaction could not begin, go on or commit, or the only work threw: nothing of this batch is stored.
            foreach (var pending in batch)
            {
                pending.Fail(e);
            }
            return;
        }
        finally
        {
            // After the transaction ends and before any writer's caller goes on: no read begun earlier is served from the cache again.
            _cache?.Invalidate();
        }
        foreach (var pending in ran)
        {
            pending.Complete();
        }
    }

    private abstract class PendingWrite(CancellationToken cancellation)
    {
        public CancellationToken Cancellation { get; } = cancellation;
        public abstract Task RunAsync(ISecretWriter writer);
        public abstract void Complete();
        public abstract void Fail(Exception e);
    }

    private sealed class PendingWrite<T>(Func<ISecretWriter, Task<T>> work, CancellationToken cancellation) : PendingWrite(cancellation)
    {
        private T _result = default!;

        /// <summary>
        /// Completed inline: a lone write returns to its caller with no thread-pool hop, as a plain transaction did. (A
        /// caller must not block on a later write from the continuation; nothing in Tumbler waits synchronously on the store.)
        /// </summary>
        public TaskCompletionSource<T> Done { get; } = new();

        public override async Task RunAsync(ISecretWriter writer) => _result = await work(writer);
        public override void Complete() => Done.TrySetResult(_result);

        public override void Fail(Exception e)
        {
            if (e is OperationCanceledException && Cancellation.IsCancellationRequested)
            {
                Done.TrySetCanceled(Cancellation);
            }
            else
            {
                Done.TrySetException(e);
            }
        }
    }

    /// <summary>A write that changes configuration other nodes cache (see <see cref="GetConfigurationGenerationAsync"/>).</summary>
    private Task<T> ChangeConfigurationAsync<T>(Func<Writer, Task<T>> work, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            var result = await work(sql);
            await ConfigurationChangedAsync(sql, ct);
            return result;
        }, ct);

    /// <summary>One statement changing one row of configuration other nodes cache; false when it changed none.</summary>
    private Task<bool> ChangeOneConfigurationRowAsync(string statement, CancellationToken ct, params (string, object?)[] parameters) =>
        ChangeConfigurationAsync(async sql =>
        {
            await using var command = Command(sql.Connection, sql.Transaction, statement, parameters);
            return await command.ExecuteNonQueryAsync(ct) == 1;
        }, ct);

    public abstract ValueTask DisposeAsync();

    public async Task<RotationJob?> FindRotationAsync(long secretKey, CancellationToken ct)
    {
        if (_cache?.KnownToHaveNoRotation(secretKey) == true)
        {
            return null;
        }
        var epoch = _cache?.Epoch ?? 0;
        await using var connection = await OpenAsync(ct);
        var job = await FindRotationAsync(connection, null, secretKey, ct);
        if (job is null)
        {
            _cache?.PutNoRotation(epoch, secretKey);
        }
        return job;
    }

    public async Task<IReadOnlyList<RotationStatus>> ListRotationStatusAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, """
            SELECT arn, created, last_rotated, next_rotation_start, EXISTS (SELECT 1 FROM rotations r WHERE r.secret_id = s.id)
            FROM secrets s WHERE rotation_enabled = 1 AND deletion_date IS NULL
            """);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var statuses = new List<RotationStatus>();
        while (await reader.ReadAsync(ct))
        {
            statuses.Add(new RotationStatus(reader.GetString(0), FromMs(reader.GetInt64(1)), reader.IsDBNull(2) ? null : FromMs(reader.GetInt64(2)),
                reader.IsDBNull(3) ? null : FromMs(reader.GetInt64(3)), GetFlag(reader, 4)));
        }
        return statuses;
    }

    public async Task<IReadOnlyList<(string Region, string Arn)>> FindDueRotationsAsync(DateTimeOffset now, int limit, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, """
            SELECT region, arn FROM secrets s
            WHERE rotation_enabled = 1 AND next_rotation_start <= @now AND deletion_date IS NULL
              AND NOT EXISTS (SELECT 1 FROM rotations r WHERE r.secret_id = s.id)
            ORDER BY next_rotation_start LIMIT @limit
            """, ("@now", now.ToUnixTimeMilliseconds()), ("@limit", limit));
        await using var reader = await command.ExecuteReaderAsync(ct);
        var due = new List<(string, string)>();
        while (await reader.ReadAsync(ct))
        {
            due.Add((reader.GetString(0), reader.GetString(1)));
        }
        return due;
    }

    public Task<IReadOnlyList<RotationJob>> ClaimRotationsAsync(DateTimeOffset now, string owner, DateTimeOffset leaseExpires, int limit, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            var claimed = new List<RotationJob>();
            await using (var command = Command(sql.Connection, sql.Transaction, $"""
                SELECT {RotationColumns} FROM rotations
                WHERE next_attempt <= @now AND (lease_expires IS NULL OR lease_expires < @now)
                ORDER BY next_attempt LIMIT @limit
                """, ("@now", now.ToUnixTimeMilliseconds()), ("@limit", limit)))
            await using (var reader = await command.ExecuteReaderAsync(ct))
            {
                while (await reader.ReadAsync(ct))
                {
                    claimed.Add(ReadRotation(reader));
                }
            }
            foreach (var job in claimed)
            {
                job.LeaseOwner = owner;
                job.LeaseExpires = leaseExpires;
                await Execute(sql.Connection, sql.Transaction, "UPDATE rotations SET lease_owner = @owner, lease_expires = @expires WHERE secret_id = @id",
                    ct, ("@owner", owner), ("@expires", leaseExpires.ToUnixTimeMilliseconds()), ("@id", job.SecretKey));
            }
            return (IReadOnlyList<RotationJob>)claimed;
        }, ct);

    public Task<bool> RenewLeaseAsync(long secretKey, string owner, DateTimeOffset leaseExpires, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            await using var command = Command(sql.Connection, sql.Transaction,
                "UPDATE rotations SET lease_expires = @expires WHERE secret_id = @id AND lease_owner = @owner",
                ("@expires", leaseExpires.ToUnixTimeMilliseconds()), ("@id", secretKey), ("@owner", owner));
            return await command.ExecuteNonQueryAsync(ct) == 1;
        }, ct);

    public Task<int> ReleaseRotationLeasesAsync(CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            await using var command = Command(sql.Connection, sql.Transaction,
                "UPDATE rotations SET lease_expires = 0 WHERE lease_owner IS NOT NULL AND (lease_expires IS NULL OR lease_expires <> 0)");
            return await command.ExecuteNonQueryAsync(ct);
        }, ct);

    // --- the write transaction ---------------------------------------------------------------------

    private sealed class Writer(DbConnection connection, DbTransaction transaction) : ISecretWriter
    {
        public DbConnection Connection { get; } = connection;
        public DbTransaction Transaction { get; } = transaction;

        public Task<SecretEntity?> FindSecretAsync(string region, SecretLookup lookup) =>
            SqlSecretStore.FindSecretAsync(Connection, Transaction, region, lookup, CancellationToken.None);

        public Task<byte[]?> ReadValueAsync(long secretKey, string versionId) =>
            SqlSecretStore.ReadValueAsync(Connection, Transaction, secretKey, versionId, CancellationToken.None);

        public async Task InsertSecretAsync(SecretEntity secret)
        {
            secret.Key = Convert.ToInt64(await Scalar(Connection, Transaction, """
                INSERT INTO secrets (region, name, arn, description, kms_key_id, type, created, last_changed, last_accessed, deletion_date, tags,
                    rotation_enabled, rotation_lambda_arn, rotation_rules, last_rotated, next_rotation_start, next_rotation, resource_policy)
                VALUES (@region, @name, @arn, @description, @kms, @type, @created, @changed, @accessed, @deletion, @tags,
                    @rotationEnabled, @lambda, @rules, @lastRotated, @nextStart, @next, @policy)
                RETURNING id
                """, CancellationToken.None, SecretParameters(secret)));
        }

        public Task UpdateSecretAsync(SecretEntity secret) => Execute(Connection, Transaction, """
            UPDATE secrets SET description = @description, kms_key_id = @kms, type = @type, last_changed = @changed,
                last_accessed = @accessed, deletion_date = @deletion, tags = @tags, rotation_enabled = @rotationEnabled,
                rotation_lambda_arn = @lambda, rotation_rules = @rules, last_rotated = @lastRotated,
                next_rotation_start = @nextStart, next_rotation = @next, resource_policy = @policy
            WHERE id = @id
            """, CancellationToken.None, [.. SecretParameters(secret), ("@id", secret.Key)]);

        public Task DeleteSecretAsync(long secretKey) =>
            Execute(Connection, Transaction, "DELETE FROM secrets WHERE id = @id", CancellationToken.None, ("@id", secretKey));

        public Task InsertVersionAsync(long secretKey, VersionEntity version, byte[]? encryptedValue) => Execute(Connection, Transaction, """
            INSERT INTO versions (secret_id, version_id, labels, created, last_accessed, key_id, value)
            VALUES (@secret, @version, @labels, @created, @accessed, @key, @value)
            """, CancellationToken.None, [.. VersionParameters(secretKey, version), ("@value", encryptedValue)]);

        public Task UpdateVersionAsync(long secretKey, VersionEntity version, byte[]? encryptedValue) => Execute(Connection, Transaction,
            "UPDATE versions SET labels = @labels, last_accessed = @accessed, key_id = @key" + (encryptedValue is null ? "" : ", value = @value") +
            " WHERE secret_id = @secret AND version_id = @version",
            CancellationToken.None, [.. VersionParameters(secretKey, version), ("@value", encryptedValue)]);

        public Task DeleteVersionAsync(long secretKey, string versionId) => Execute(Connection, Transaction,
            "DELETE FROM versions WHERE secret_id = @secret AND version_id = @version", CancellationToken.None,
            ("@secret", secretKey), ("@version", versionId));

        public Task<RotationJob?> FindRotationAsync(long secretKey) =>
            SqlSecretStore.FindRotationAsync(Connection, Transaction, secretKey, CancellationToken.None);

        public Task SaveRotationAsync(RotationJob job) => Execute(Connection, Transaction, $"""
            INSERT INTO rotations ({RotationColumns})
            VALUES (@secret, @arn, @region, @token, @rotationToken, @immediately, @steps, @attempts, @started, @next, @error, @owner, @expires)
            ON CONFLICT (secret_id) DO UPDATE SET secret_arn = excluded.secret_arn, region = excluded.region, token = excluded.token,
                rotation_token = excluded.rotation_token, rotate_immediately = excluded.rotate_immediately, steps_done = excluded.steps_done,
                attempts = excluded.attempts, started = excluded.started, next_attempt = excluded.next_attempt, last_error = excluded.last_error,
                lease_owner = excluded.lease_owner, lease_expires = excluded.lease_expires
            """, CancellationToken.None,
            ("@secret", job.SecretKey), ("@arn", job.SecretArn), ("@region", job.Region), ("@token", job.Token), ("@rotationToken", job.RotationToken),
            ("@immediately", job.RotateImmediately ? 1 : 0), ("@steps", job.StepsDone), ("@attempts", job.Attempts),
            ("@started", job.StartedDate.ToUnixTimeMilliseconds()), ("@next", job.NextAttemptDate.ToUnixTimeMilliseconds()), ("@error", job.LastError),
            ("@owner", job.LeaseOwner), ("@expires", job.LeaseExpires?.ToUnixTimeMilliseconds()));

        public Task DeleteRotationAsync(long secretKey) =>
            Execute(Connection, Transaction, "DELETE FROM rotations WHERE secret_id = @id", CancellationToken.None, ("@id", secretKey));

        private static (string, object?)[] SecretParameters(SecretEntity s) =>
        [
            ("@region", s.Region), ("@name", s.Name), ("@arn", s.Arn), ("@description", s.Description), ("@kms", s.KmsKeyId),
            ("@type", s.Type), ("@created", s.CreatedDate.ToUnixTimeMilliseconds()), ("@changed", s.LastChangedDate.ToUnixTimeMilliseconds()),
            ("@accessed", s.LastAccessedDate?.ToUnixTimeMilliseconds()), ("@deletion", s.DeletionDate?.ToUnixTimeMilliseconds()),
            ("@tags", StorageJsonContext.Tags(s.Tags)), ("@rotationEnabled", s.RotationEnabled is null ? null : s.RotationEnabled.Value ? 1 : 0),
            ("@lambda", s.RotationLambdaArn), ("@rules", s.RotationRulesJson), ("@lastRotated", s.LastRotatedDate?.ToUnixTimeMilliseconds()),
            ("@nextStart", s.NextRotationStart?.ToUnixTimeMilliseconds()), ("@next", s.NextRotationDate?.ToUnixTimeMilliseconds()),
            ("@policy", s.ResourcePolicy),
        ];

        private static (string, object?)[] VersionParameters(long secretKey, VersionEntity v) =>
        [
            ("@secret", secretKey), ("@version", v.VersionId), ("@labels", StorageJsonContext.Labels(v.Labels)),
            ("@created", v.CreatedDate.ToUnixTimeMilliseconds()), ("@accessed", v.LastAccessedDate?.ToUnixTimeMilliseconds()), ("@key", v.KeyId),
        ];
    }

    // --- shared queries ----------------------------------------------------------------------------

    private const string SecretColumns =
        "id, region, name, arn, description, kms_key_id, type, created, last_changed, last_accessed, deletion_date, tags, " +
        "rotation_enabled, rotation_lambda_arn, rotation_rules, last_rotated, next_rotation_start, next_rotation, resource_policy";
    private const string VersionColumns = "v.version_id, v.labels, v.created, v.last_accessed, v.key_id, v.value IS NOT NULL";

    private const string RotationColumns =
        "secret_id, secret_arn, region, token, rotation_token, rotate_immediately, steps_done, attempts, started, next_attempt, last_error, lease_owner, lease_expires";

    private static async Task<RotationJob?> FindRotationAsync(DbConnection connection, DbTransaction? transaction, long secretKey, CancellationToken ct)
    {
        await using var command = Command(connection, transaction, $"SELECT {RotationColumns} FROM rotations WHERE secret_id = @id", ("@id", secretKey));
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadRotation(reader) : null;
    }

    private static RotationJob ReadRotation(DbDataReader r) => new()
    {
        SecretKey = r.GetInt64(0),
        SecretArn = r.GetString(1),
        Region = r.GetString(2),
        Token = r.GetString(3),
        RotationToken = r.GetString(4),
        RotateImmediately = GetFlag(r, 5),
        StepsDone = r.GetInt32(6),
        Attempts = r.GetInt32(7),
        StartedDate = FromMs(r.GetInt64(8)),
        NextAttemptDate = FromMs(r.GetInt64(9)),
        LastError = r.IsDBNull(10) ? null : r.GetString(10),
        LeaseOwner = r.IsDBNull(11) ? null : r.GetString(11),
        LeaseExpires = r.IsDBNull(12) ? null : FromMs(r.GetInt64(12)),
    };

    private static async Task<SecretEntity?> FindSecretAsync(DbConnection connection, DbTransaction? transaction, string region,
        SecretLookup lookup, CancellationToken ct)
    {
        var (where, parameter) = lookup.Arn is not null ? ("arn = @key", lookup.Arn) : ("region = @region AND name = @key", lookup.Name!);
        // The row and its versions in one command: one round trip to PostgreSQL instead of two.
        await using var command = Command(connection, transaction, $"""
            SELECT {SecretColumns} FROM secrets WHERE {where};
            SELECT {VersionColumns} FROM versions v WHERE v.secret_id = (SELECT id FROM secrets WHERE {where}) ORDER BY v.created
            """, ("@key", parameter), ("@region", region));
        await using var reader = await command.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct))
        {
            return null;
        }
        var secret = ReadSecret(reader);
        if (secret.Region != region)
        {
            return null;
        }
        await reader.NextResultAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            secret.Versions.Add(ReadVersion(reader, 0));
        }
        return secret;
    }

    private static async Task<byte[]?> ReadValueAsync(DbConnection connection, DbTransaction? transaction, long secretKey, string versionId, CancellationToken ct) =>
        await Scalar(connection, transaction, "SELECT value FROM versions WHERE secret_id = @secret AND version_id = @version", ct,
            ("@secret", secretKey), ("@version", versionId)) as byte[];

    private static SecretEntity ReadSecret(DbDataReader r) => new()
    {
        Key = r.GetInt64(0),
        Region = r.GetString(1),
        Name = r.GetString(2),
        Arn = r.GetString(3),
        Description = r.IsDBNull(4) ? null : r.GetString(4),
        KmsKeyId = r.IsDBNull(5) ? null : r.GetString(5),
        Type = r.IsDBNull(6) ? null : r.GetString(6),
        CreatedDate = FromMs(r.GetInt64(7)),
        LastChangedDate = FromMs(r.GetInt64(8)),
        LastAccessedDate = r.IsDBNull(9) ? null : FromMs(r.GetInt64(9)),
        DeletionDate = r.IsDBNull(10) ? null : FromMs(r.GetInt64(10)),
        Tags = StorageJsonContext.Tags(r.IsDBNull(11) ? null : r.GetString(11)),
        RotationEnabled = r.IsDBNull(12) ? null : GetFlag(r, 12),
        RotationLambdaArn = r.IsDBNull(13) ? null : r.GetString(13),
        RotationRulesJson = r.IsDBNull(14) ? null : r.GetString(14),
        LastRotatedDate = r.IsDBNull(15) ? null : FromMs(r.GetInt64(15)),
        NextRotationStart = r.IsDBNull(16) ? null : FromMs(r.GetInt64(16)),
        NextRotationDate = r.IsDBNull(17) ? null : FromMs(r.GetInt64(17)),
        ResourcePolicy = r.IsDBNull(18) ? null : r.GetString(18),
    };

    private static VersionEntity ReadVersion(DbDataReader r, int first) => new()
    {
        VersionId = r.GetString(first),
        Labels = StorageJsonContext.Labels(r.GetString(first + 1)),
        CreatedDate = FromMs(r.GetInt64(first + 2)),
        LastAccessedDate = r.IsDBNull(first + 3) ? null : FromMs(r.GetInt64(first + 3)),
        KeyId = r.IsDBNull(first + 4) ? null : r.GetString(first + 4),
        HasValue = GetFlag(r, first + 5),
    };

    private static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private static bool GetFlag(DbDataReader r, int ordinal) => r.GetValue(ordinal) switch
    {
        bool flag => flag, // PostgreSQL's EXISTS
        var number => Convert.ToInt64(number) != 0,
    };

    protected static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = (connection as IPreparedCommands)?.Rent(sql) ?? connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.Parameters.Clear();
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    protected static async Task Execute(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken ct, params (string, object?)[] parameters)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        await command.ExecuteNonQueryAsync(ct);
    }

    protected static async Task<object?> Scalar(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken ct, params (string, object?)[] parameters)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        var result = await command.ExecuteScalarAsync(ct);
        return result is DBNull ? null : result;
    }
}
