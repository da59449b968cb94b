using System.Data.Common;
using Microsoft.Data.Sqlite;
using Tumbler.Core.Storage;

namespace Tumbler.Storage.Sqlite;

/// <summary>
/// The embedded store: one SQLite file in WAL mode (readers never wait for the writer), synchronous
/// FULL (an acknowledged write survives a crash or power loss). Writers are serialized in process and
/// take SQLite's write lock at BEGIN, so a read-modify-write transaction sees no concurrent change.
/// </summary>
public sealed partial class SqliteSecretStore : ISecretStore, IIdentityStore, IFunctionStore
{
    public const int SchemaVersion = 5;
    private readonly string _connectionString;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public SqliteSecretStore(string databasePath)
    {
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            ForeignKeys = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    public async Task InitializeAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        var version = Convert.ToInt32(await Scalar(connection, null, "PRAGMA user_version", ct));
        if (version > SchemaVersion)
        {
            throw new InvalidOperationException(
                $"The database schema is version {version}, newer than this Tumbler understands ({SchemaVersion}). Upgrade Tumbler.");
        }
        await Execute(connection, null, "PRAGMA journal_mode=WAL", ct);
        if (version == 0)
        {
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
            await Execute(connection, transaction, """
                CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE secrets (
                    id INTEGER PRIMARY KEY,
                    region TEXT NOT NULL,
                    name TEXT NOT NULL,
                    arn TEXT NOT NULL UNIQUE,
                    description TEXT,
                    kms_key_id TEXT,
                    type TEXT,
                    created INTEGER NOT NULL,
                    last_changed INTEGER NOT NULL,
                    last_accessed INTEGER,
                    deletion_date INTEGER,
                    tags TEXT,
                    rotation_enabled INTEGER,
                    rotation_lambda_arn TEXT,
                    rotation_rules TEXT,
                    last_rotated INTEGER,
                    next_rotation_start INTEGER,
                    next_rotation INTEGER,
                    UNIQUE (region, name));
                CREATE INDEX secrets_due ON secrets (next_rotation_start) WHERE rotation_enabled = 1;
                CREATE TABLE versions (
                    secret_id INTEGER NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
                    version_id TEXT NOT NULL,
                    labels TEXT NOT NULL,
                    created INTEGER NOT NULL,
                    last_accessed INTEGER,
                    key_id TEXT,
                    value BLOB,
                    PRIMARY KEY (secret_id, version_id));
                CREATE TABLE rotations (
                    secret_id INTEGER PRIMARY KEY REFERENCES secrets(id) ON DELETE CASCADE,
                    secret_arn TEXT NOT NULL,
                    region TEXT NOT NULL,
                    token TEXT NOT NULL,
                    rotation_token TEXT NOT NULL,
                    rotate_immediately INTEGER NOT NULL,
                    steps_done INTEGER NOT NULL,
                    attempts INTEGER NOT NULL,
                    started INTEGER NOT NULL,
                    next_attempt INTEGER NOT NULL,
                    last_error TEXT,
                    lease_owner TEXT,
                    lease_expires INTEGER);
                CREATE INDEX rotations_due ON rotations (next_attempt);
                CREATE TABLE kms_keys (
                    key_id TEXT PRIMARY KEY,
                    arn TEXT NOT NULL,
                    description TEXT NOT NULL,
                    enabled INTEGER NOT NULL,
                    created INTEGER NOT NULL,
                    wrapped BLOB NOT NULL);
                CREATE TABLE kms_aliases (alias TEXT PRIMARY KEY, key_id TEXT NOT NULL REFERENCES kms_keys(key_id));
                PRAGMA user_version = 1;
                """, ct);
            await transaction.CommitAsync(ct);
            version = 1;
        }
        if (version == 1)
        {
            // Access control: resource policies on secrets; users, their access keys (secret half wrapped) and inline policies.
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
            await Execute(connection, transaction, """
                ALTER TABLE secrets ADD COLUMN resource_policy TEXT;
                CREATE TABLE iam_users (
                    name TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL UNIQUE,
                    arn TEXT NOT NULL,
                    created INTEGER NOT NULL);
                CREATE TABLE iam_access_keys (
                    access_key_id TEXT PRIMARY KEY,
                    user_name TEXT NOT NULL REFERENCES iam_users(name),
                    wrapped_secret BLOB NOT NULL,
                    active INTEGER NOT NULL,
                    created INTEGER NOT NULL);
                CREATE INDEX iam_access_keys_user ON iam_access_keys (user_name);
                CREATE TABLE iam_user_policies (
                    user_name TEXT NOT NULL REFERENCES iam_users(name),
                    policy_name TEXT NOT NULL,
                    document TEXT NOT NULL,
                    PRIMARY KEY (user_name, policy_name));
                PRAGMA user_version = 2;
                """, ct);
            await transaction.CommitAsync(ct);
            version = 2;
        }
        if (version == 2)
        {
            // External rotation functions (secret parts sealed) and the session credentials issued to them.
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
            await Execute(connection, transaction, """
                CREATE TABLE functions (
                    name TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    command TEXT,
                    python_handler TEXT,
                    working_dir TEXT,
                    url TEXT,
                    timeout_seconds INTEGER NOT NULL,
                    max_concurrency INTEGER NOT NULL,
                    env_names TEXT NOT NULL,
                    sealed_config BLOB,
                    created INTEGER NOT NULL,
                    last_modified INTEGER NOT NULL);
                CREATE TABLE session_credentials (
                    access_key_id TEXT PRIMARY KEY,
                    wrapped_secret BLOB NOT NULL,
                    token_sha256 TEXT NOT NULL,
                    secret_arn TEXT NOT NULL,
                    function_name TEXT NOT NULL,
                    version_id TEXT NOT NULL,
                    expires INTEGER NOT NULL,
                    created INTEGER NOT NULL);
                CREATE INDEX session_credentials_expires ON session_credentials (expires);
                PRAGMA user_version = 3;
                """, ct);
            await transaction.CommitAsync(ct);
            version = 3;
        }
        if (version == 3)
        {
            // KMS-like key administration: scheduled deletion; wrapped_next holds a key's material wrapped under
            // the next root key while a root key rotation is under way (see RootKeyRotation).
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
            await Execute(connection, transaction, """
                ALTER TABLE kms_keys ADD COLUMN deletion_date INTEGER;
                ALTER TABLE kms_keys ADD COLUMN wrapped_next BLOB;
                CREATE INDEX versions_key ON versions (key_id);
                PRAGMA user_version = 4;
                """, ct);
            await transaction.CommitAsync(ct);
            version = 4;
        }
        if (version == 4)
        {
            // ListSecrets pages in SQL; its default order (created-date) walks this index instead of sorting every secret.
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
            await Execute(connection, transaction, """
                CREATE INDEX secrets_created ON secrets (region, created);
                PRAGMA user_version = 5;
                """, ct);
            await transaction.CommitAsync(ct);
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
        return await Scalar(connection, null, "SELECT value FROM settings WHERE name = $name", ct, ("$name", name)) as string;
    }

    public async Task SetSettingAsync(string name, string value, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await Execute(connection, null, "INSERT INTO settings (name, value) VALUES ($name, $value) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            ct, ("$name", name), ("$value", value));
    }

    public async Task<SecretEntity?> FindSecretAsync(string region, SecretLookup lookup, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await FindSecretAsync(connection, null, region, lookup, ct);
    }

    public async Task<byte[]?> ReadValueAsync(long secretKey, string versionId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await ReadValueAsync(connection, null, secretKey, versionId, ct);
    }

    public async Task<IReadOnlyList<SecretEntity>> ListSecretsAsync(string region, bool includeScheduledForDeletion, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        var deletedClause = includeScheduledForDeletion ? "" : " AND deletion_date IS NULL";
        var secrets = new Dictionary<long, SecretEntity>();
        await using (var command = Command(connection, null, $"SELECT {SecretColumns} FROM secrets WHERE region = $region{deletedClause} ORDER BY created, id", ("$region", region)))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var secret = ReadSecret(reader);
                secrets.Add(secret.Key, secret);
            }
        }
        await using (var command = Command(connection, null,
            $"SELECT v.secret_id, {VersionColumns} FROM versions v JOIN secrets s ON s.id = v.secret_id WHERE s.region = $region{deletedClause} ORDER BY v.created", ("$region", region)))
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
        await using var connection = await OpenAsync(ct);
        var sortColumn = sortBy switch
        {
            SecretSortKey.Name => "name",
            SecretSortKey.LastAccessedDate => $"COALESCE(last_accessed, {ToMs(DateTimeOffset.MinValue.UtcTicks)})",
            SecretSortKey.LastChangedDate => "last_changed",
            _ => "created",
        };
        var (direction, beyond) = descending ? ("DESC", "<") : ("ASC", ">");
        var sql = new System.Text.StringBuilder($"SELECT {SecretColumns} FROM secrets WHERE region = $region");
        if (!includeScheduledForDeletion)
        {
            sql.Append(" AND deletion_date IS NULL");
        }
        var parameters = new List<(string, object?)> { ("$region", region), ("$limit", limit) };
        if (after is { } position)
        {
            if (position.SortBy != sortBy)
            {
                throw new ArgumentException($"A position in {position.SortBy} order does not continue a listing in {sortBy} order.", nameof(after));
            }
            sql.Append($" AND ({sortColumn} {beyond} $value OR ({sortColumn} = $value AND id {beyond} $id))");
            parameters.Add(("$value", sortBy == SecretSortKey.Name ? position.Name : ToMs(position.Ticks)));
            parameters.Add(("$id", position.Key));
        }
        sql.Append($" ORDER BY {sortColumn} {direction}, id {direction} LIMIT $limit");
        var secrets = new List<SecretEntity>();
        await using (var command = Command(connection, null, sql.ToString(), [.. parameters]))
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
        await using (var command = Command(connection, null,
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

    public async Task SetLastAccessedAsync(long secretKey, string versionId, DateTimeOffset date, CancellationToken ct)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
            var ms = date.ToUnixTimeMilliseconds();
            await Execute(connection, transaction, """
                UPDATE secrets SET last_accessed = $date WHERE id = $secret;
                UPDATE versions SET last_accessed = $date WHERE secret_id = $secret AND version_id = $version;
                """, ct, ("$date", ms), ("$secret", secretKey), ("$version", versionId));
            await transaction.CommitAsync(ct); // one commit, one fsync, for both rows
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task<IReadOnlyList<string>> PurgeDeletedAsync(DateTimeOffset now, CancellationToken ct) =>
        await WriteAsync(async writer =>
        {
            var sqlite = (Writer)writer;
            var arns = new List<string>();
            await using (var command = Command(sqlite.Connection, sqlite.Transaction,
                "SELECT arn FROM secrets WHERE deletion_date IS NOT NULL AND deletion_date <= $now", ("$now", now.ToUnixTimeMilliseconds())))
            await using (var reader = await command.ExecuteReaderAsync(ct))
            {
                while (await reader.ReadAsync(ct))
                {
                    arns.Add(reader.GetString(0));
                }
            }
            await Execute(sqlite.Connection, sqlite.Transaction,
                "DELETE FROM secrets WHERE deletion_date IS NOT NULL AND deletion_date <= $now", ct, ("$now", now.ToUnixTimeMilliseconds()));
            return (IReadOnlyList<string>)arns;
        }, ct);

    public async Task<IReadOnlyList<KmsKeyEntity>> ListKeysAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        var aliases = new List<(string Alias, string KeyId)>();
        await using (var command = Command(connection, null, "SELECT alias, key_id FROM kms_aliases"))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                aliases.Add((reader.GetString(0), reader.GetString(1)));
            }
        }
        var keys = new List<KmsKeyEntity>();
        await using (var command = Command(connection, null, "SELECT key_id, arn, description, enabled, created, wrapped, deletion_date FROM kms_keys ORDER BY created"))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var keyId = reader.GetString(0);
                keys.Add(new KmsKeyEntity(keyId, reader.GetString(1), reader.GetString(2), reader.GetInt64(3) != 0,
                    FromMs(reader.GetInt64(4)), (byte[])reader.GetValue(5), [.. aliases.Where(a => a.KeyId == keyId).Select(a => a.Alias)],
                    reader.IsDBNull(6) ? null : FromMs(reader.GetInt64(6))));
            }
        }
        return keys;
    }

    public Task InsertKeyAsync(KmsKeyEntity key, string rootKeyCheck, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sqlite = (Writer)writer;
            var current = await Scalar(sqlite.Connection, sqlite.Transaction, "SELECT value FROM settings WHERE name = $name", ct, ("$name", RootKeyCheckSetting)) as string;
            if (current != rootKeyCheck)
            {
                throw new InvalidOperationException("The store's root key was rotated since this server started; restart it with the new root key to create keys.");
            }
            await Execute(sqlite.Connection, sqlite.Transaction,
                "INSERT INTO kms_keys (key_id, arn, description, enabled, created, wrapped) VALUES ($id, $arn, $description, $enabled, $created, $wrapped)",
                ct, ("$id", key.KeyId), ("$arn", key.Arn), ("$description", key.Description), ("$enabled", key.Enabled ? 1 : 0),
                ("$created", key.CreatedDate.ToUnixTimeMilliseconds()), ("$wrapped", key.WrappedMaterial));
            foreach (var alias in key.Aliases)
            {
                await Execute(sqlite.Connection, sqlite.Transaction, "INSERT INTO kms_aliases (alias, key_id) VALUES ($alias, $id)",
                    ct, ("$alias", alias), ("$id", key.KeyId));
            }
            return true;
        }, ct);

    private const string RootKeyCheckSetting = "root_key_check";
    private const string NextRootKeyCheckSetting = "root_key_check_next";

    public Task PrepareRootKeyRotationAsync(IReadOnlyDictionary<string, byte[]> wrappedNext, string nextRootKeyCheck, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sqlite = (Writer)writer;
            await Execute(sqlite.Connection, sqlite.Transaction, "UPDATE kms_keys SET wrapped_next = NULL", ct);
            foreach (var (keyId, wrapped) in wrappedNext)
            {
                await Execute(sqlite.Connection, sqlite.Transaction, "UPDATE kms_keys SET wrapped_next = $wrapped WHERE key_id = $id", ct,
                    ("$wrapped", wrapped), ("$id", keyId));
            }
            await Execute(sqlite.Connection, sqlite.Transaction,
                "INSERT INTO settings (name, value) VALUES ($name, $value) ON CONFLICT (name) DO UPDATE SET value = excluded.value", ct,
                ("$name", NextRootKeyCheckSetting), ("$value", nextRootKeyCheck));
            return true;
        }, ct);

    public Task<bool> CompleteRootKeyRotationAsync(string nextRootKeyCheck, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sqlite = (Writer)writer;
            var prepared = await Scalar(sqlite.Connection, sqlite.Transaction, "SELECT value FROM settings WHERE name = $name", ct, ("$name", NextRootKeyCheckSetting)) as string;
            if (prepared != nextRootKeyCheck)
            {
                return false;
            }
            // wrapped is NOT NULL: a key created after the preparation (no next wrapping) fails the whole switch.
            await Execute(sqlite.Connection, sqlite.Transaction, "UPDATE kms_keys SET wrapped = wrapped_next, wrapped_next = NULL", ct);
            await Execute(sqlite.Connection, sqlite.Transaction, "UPDATE settings SET value = $value WHERE name = $name", ct,
                ("$name", RootKeyCheckSetting), ("$value", nextRootKeyCheck));
            await Execute(sqlite.Connection, sqlite.Transaction, "DELETE FROM settings WHERE name = $name", ct, ("$name", NextRootKeyCheckSetting));
            return true;
        }, ct);

    public Task AbandonRootKeyRotationAsync(CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sqlite = (Writer)writer;
            await Execute(sqlite.Connection, sqlite.Transaction, "UPDATE kms_keys SET wrapped_next = NULL", ct);
            await Execute(sqlite.Connection, sqlite.Transaction, "DELETE FROM settings WHERE name = $name", ct, ("$name", NextRootKeyCheckSetting));
            return true;
        }, ct);

    public Task<bool> UpdateKeyStateAsync(string keyId, bool enabled, DateTimeOffset? deletionDate, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sqlite = (Writer)writer;
            await using var command = Command(sqlite.Connection, sqlite.Transaction,
                "UPDATE kms_keys SET enabled = $enabled, deletion_date = $deletion WHERE key_id = $id",
                ("$enabled", enabled ? 1 : 0), ("$deletion", deletionDate?.ToUnixTimeMilliseconds()), ("$id", keyId));
            return await command.ExecuteNonQueryAsync(ct) == 1;
        }, ct);

    public Task<IReadOnlyList<string>> PurgeKeysAsync(DateTimeOffset now, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sqlite = (Writer)writer;
            var ids = new List<string>();
            await using (var command = Command(sqlite.Connection, sqlite.Transaction, """
                SELECT key_id FROM kms_keys k WHERE deletion_date IS NOT NULL AND deletion_date <= $now
                AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.key_id = k.key_id)
                """, ("$now", now.ToUnixTimeMilliseconds())))
            await using (var reader = await command.ExecuteReaderAsync(ct))
            {
                while (await reader.ReadAsync(ct))
                {
                    ids.Add(reader.GetString(0));
                }
            }
            foreach (var id in ids)
            {
                await Execute(sqlite.Connection, sqlite.Transaction, "DELETE FROM kms_aliases WHERE key_id = $id", ct, ("$id", id));
                await Execute(sqlite.Connection, sqlite.Transaction, "DELETE FROM kms_keys WHERE key_id = $id", ct, ("$id", id));
            }
            return (IReadOnlyList<string>)ids;
        }, ct);

    public Task<bool> InsertAliasAsync(string alias, string keyId, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sqlite = (Writer)writer;
            await using var command = Command(sqlite.Connection, sqlite.Transaction,
                "INSERT INTO kms_aliases (alias, key_id) VALUES ($alias, $id) ON CONFLICT (alias) DO NOTHING", ("$alias", alias), ("$id", keyId));
            return await command.ExecuteNonQueryAsync(ct) == 1;
        }, ct);

    public async Task<long> CountVersionsUsingKeyAsync(string keyId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return Convert.ToInt64(await Scalar(connection, null, "SELECT COUNT(*) FROM versions WHERE key_id = $id", ct, ("$id", keyId)));
    }

    public async Task<T> WriteAsync<T>(Func<ISecretWriter, Task<T>> work, CancellationToken ct)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            await using var connection = await OpenAsync(ct);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
            var result = await work(new Writer(connection, transaction));
            await transaction.CommitAsync(ct);
            return result;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public ValueTask DisposeAsync()
    {
        _writeLock.Dispose();
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }

    public async Task<RotationJob?> FindRotationAsync(long secretKey, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await FindRotationAsync(connection, null, secretKey, ct);
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
                reader.IsDBNull(3) ? null : FromMs(reader.GetInt64(3)), reader.GetInt64(4) != 0));
        }
        return statuses;
    }

    public async Task<IReadOnlyList<(string Region, string Arn)>> FindDueRotationsAsync(DateTimeOffset now, int limit, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, """
            SELECT region, arn FROM secrets s
            WHERE rotation_enabled = 1 AND next_rotation_start <= $now AND deletion_date IS NULL
              AND NOT EXISTS (SELECT 1 FROM rotations r WHERE r.secret_id = s.id)
            ORDER BY next_rotation_start LIMIT $limit
            """, ("$now", now.ToUnixTimeMilliseconds()), ("$limit", limit));
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
            var sqlite = (Writer)writer;
            var claimed = new List<RotationJob>();
            await using (var command = Command(sqlite.Connection, sqlite.Transaction, $"""
                SELECT {RotationColumns} FROM rotations
                WHERE next_attempt <= $now AND (lease_expires IS NULL OR lease_expires < $now)
                ORDER BY next_attempt LIMIT $limit
                """, ("$now", now.ToUnixTimeMilliseconds()), ("$limit", limit)))
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
                await Execute(sqlite.Connection, sqlite.Transaction, "UPDATE rotations SET lease_owner = $owner, lease_expires = $expires WHERE secret_id = $id",
                    ct, ("$owner", owner), ("$expires", leaseExpires.ToUnixTimeMilliseconds()), ("$id", job.SecretKey));
            }
            return (IReadOnlyList<RotationJob>)claimed;
        }, ct);

    public Task<bool> RenewLeaseAsync(long secretKey, string owner, DateTimeOffset leaseExpires, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sqlite = (Writer)writer;
            await using var command = Command(sqlite.Connection, sqlite.Transaction,
                "UPDATE rotations SET lease_expires = $expires WHERE secret_id = $id AND lease_owner = $owner",
                ("$expires", leaseExpires.ToUnixTimeMilliseconds()), ("$id", secretKey), ("$owner", owner));
            return await command.ExecuteNonQueryAsync(ct) == 1;
        }, ct);

    // --- the write transaction ---------------------------------------------------------------------

    private sealed class Writer(SqliteConnection connection, SqliteTransaction transaction) : ISecretWriter
    {
        public SqliteConnection Connection { get; } = connection;
        public SqliteTransaction Transaction { get; } = transaction;

        public Task<SecretEntity?> FindSecretAsync(string region, SecretLookup lookup) =>
            SqliteSecretStore.FindSecretAsync(Connection, Transaction, region, lookup, CancellationToken.None);

        public Task<byte[]?> ReadValueAsync(long secretKey, string versionId) =>
            SqliteSecretStore.ReadValueAsync(Connection, Transaction, secretKey, versionId, CancellationToken.None);

        public async Task InsertSecretAsync(SecretEntity secret)
        {
            secret.Key = Convert.ToInt64(await Scalar(Connection, Transaction, """
                INSERT INTO secrets (region, name, arn, description, kms_key_id, type, created, last_changed, last_accessed, deletion_date, tags,
                    rotation_enabled, rotation_lambda_arn, rotation_rules, last_rotated, next_rotation_start, next_rotation, resource_policy)
                VALUES ($region, $name, $arn, $description, $kms, $type, $created, $changed, $accessed, $deletion, $tags,
                    $rotationEnabled, $lambda, $rules, $lastRotated, $nextStart, $next, $policy)
                RETURNING id
                """, CancellationToken.None, SecretParameters(secret)));
        }

        public Task UpdateSecretAsync(SecretEntity secret) => Execute(Connection, Transaction, """
            UPDATE secrets SET description = $description, kms_key_id = $kms, type = $type, last_changed = $changed,
                last_accessed = $accessed, deletion_date = $deletion, tags = $tags, rotation_enabled = $rotationEnabled,
                rotation_lambda_arn = $lambda, rotation_rules = $rules, last_rotated = $lastRotated,
                next_rotation_start = $nextStart, next_rotation = $next, resource_policy = $policy
            WHERE id = $id
            """, CancellationToken.None, [.. SecretParameters(secret), ("$id", secret.Key)]);

        public Task DeleteSecretAsync(long secretKey) =>
            Execute(Connection, Transaction, "DELETE FROM secrets WHERE id = $id", CancellationToken.None, ("$id", secretKey));

        public Task InsertVersionAsync(long secretKey, VersionEntity version, byte[]? encryptedValue) => Execute(Connection, Transaction, """
            INSERT INTO versions (secret_id, version_id, labels, created, last_accessed, key_id, value)
            VALUES ($secret, $version, $labels, $created, $accessed, $key, $value)
            """, CancellationToken.None, [.. VersionParameters(secretKey, version), ("$value", encryptedValue)]);

        public Task UpdateVersionAsync(long secretKey, VersionEntity version, byte[]? encryptedValue) => Execute(Connection, Transaction,
            "UPDATE versions SET labels = $labels, last_accessed = $accessed, key_id = $key" + (encryptedValue is null ? "" : ", value = $value") +
            " WHERE secret_id = $secret AND version_id = $version",
            CancellationToken.None, [.. VersionParameters(secretKey, version), ("$value", encryptedValue)]);

        public Task DeleteVersionAsync(long secretKey, string versionId) => Execute(Connection, Transaction,
            "DELETE FROM versions WHERE secret_id = $secret AND version_id = $version", CancellationToken.None,
            ("$secret", secretKey), ("$version", versionId));

        public Task<RotationJob?> FindRotationAsync(long secretKey) =>
            SqliteSecretStore.FindRotationAsync(Connection, Transaction, secretKey, CancellationToken.None);

        public Task SaveRotationAsync(RotationJob job) => Execute(Connection, Transaction, $"""
            INSERT OR REPLACE INTO rotations ({RotationColumns})
            VALUES ($secret, $arn, $region, $token, $rotationToken, $immediately, $steps, $attempts, $started, $next, $error, $owner, $expires)
            """, CancellationToken.None,
            ("$secret", job.SecretKey), ("$arn", job.SecretArn), ("$region", job.Region), ("$token", job.Token), ("$rotationToken", job.RotationToken),
            ("$immediately", job.RotateImmediately ? 1 : 0), ("$steps", job.StepsDone), ("$attempts", job.Attempts),
            ("$started", job.StartedDate.ToUnixTimeMilliseconds()), ("$next", job.NextAttemptDate.ToUnixTimeMilliseconds()), ("$error", job.LastError),
            ("$owner", job.LeaseOwner), ("$expires", job.LeaseExpires?.ToUnixTimeMilliseconds()));

        public Task DeleteRotationAsync(long secretKey) =>
            Execute(Connection, Transaction, "DELETE FROM rotations WHERE secret_id = $id", CancellationToken.None, ("$id", secretKey));

        private static (string, object?)[] SecretParameters(SecretEntity s) =>
        [
            ("$region", s.Region), ("$name", s.Name), ("$arn", s.Arn), ("$description", s.Description), ("$kms", s.KmsKeyId),
            ("$type", s.Type), ("$created", s.CreatedDate.ToUnixTimeMilliseconds()), ("$changed", s.LastChangedDate.ToUnixTimeMilliseconds()),
            ("$accessed", s.LastAccessedDate?.ToUnixTimeMilliseconds()), ("$deletion", s.DeletionDate?.ToUnixTimeMilliseconds()),
            ("$tags", StorageJsonContext.Tags(s.Tags)), ("$rotationEnabled", s.RotationEnabled is null ? null : s.RotationEnabled.Value ? 1 : 0),
            ("$lambda", s.RotationLambdaArn), ("$rules", s.RotationRulesJson), ("$lastRotated", s.LastRotatedDate?.ToUnixTimeMilliseconds()),
            ("$nextStart", s.NextRotationStart?.ToUnixTimeMilliseconds()), ("$next", s.NextRotationDate?.ToUnixTimeMilliseconds()),
            ("$policy", s.ResourcePolicy),
        ];

        private static (string, object?)[] VersionParameters(long secretKey, VersionEntity v) =>
        [
            ("$secret", secretKey), ("$version", v.VersionId), ("$labels", StorageJsonContext.Labels(v.Labels)),
            ("$created", v.CreatedDate.ToUnixTimeMilliseconds()), ("$accessed", v.LastAccessedDate?.ToUnixTimeMilliseconds()), ("$key", v.KeyId),
        ];
    }

    // --- shared queries ----------------------------------------------------------------------------

    private const string SecretColumns =
        "id, region, name, arn, description, kms_key_id, type, created, last_changed, last_accessed, deletion_date, tags, " +
        "rotation_enabled, rotation_lambda_arn, rotation_rules, last_rotated, next_rotation_start, next_rotation, resource_policy";
    private const string VersionColumns = "v.version_id, v.labels, v.created, v.last_accessed, v.key_id, v.value IS NOT NULL";

    private const string RotationColumns =
        "secret_id, secret_arn, region, token, rotation_token, rotate_immediately, steps_done, attempts, started, next_attempt, last_error, lease_owner, lease_expires";

    private static async Task<RotationJob?> FindRotationAsync(SqliteConnection connection, SqliteTransaction? transaction, long secretKey, CancellationToken ct)
    {
        await using var command = Command(connection, transaction, $"SELECT {RotationColumns} FROM rotations WHERE secret_id = $id", ("$id", secretKey));
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
        RotateImmediately = r.GetInt64(5) != 0,
        StepsDone = r.GetInt32(6),
        Attempts = r.GetInt32(7),
        StartedDate = FromMs(r.GetInt64(8)),
        NextAttemptDate = FromMs(r.GetInt64(9)),
        LastError = r.IsDBNull(10) ? null : r.GetString(10),
        LeaseOwner = r.IsDBNull(11) ? null : r.GetString(11),
        LeaseExpires = r.IsDBNull(12) ? null : FromMs(r.GetInt64(12)),
    };

    private static async Task<SecretEntity?> FindSecretAsync(SqliteConnection connection, SqliteTransaction? transaction, string region,
        SecretLookup lookup, CancellationToken ct)
    {
        SecretEntity? secret;
        var (where, parameter) = lookup.Arn is not null ? ("arn = $key", lookup.Arn) : ("region = $region AND name = $key", lookup.Name!);
        await using (var command = Command(connection, transaction, $"SELECT {SecretColumns} FROM secrets WHERE {where}", ("$key", parameter), ("$region", region)))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            if (!await reader.ReadAsync(ct))
            {
                return null;
            }
            secret = ReadSecret(reader);
        }
        if (secret.Region != region)
        {
            return null;
        }
        await using (var command = Command(connection, transaction, $"SELECT {VersionColumns} FROM versions v WHERE v.secret_id = $id ORDER BY v.created", ("$id", secret.Key)))
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                secret.Versions.Add(ReadVersion(reader, 0));
            }
        }
        return secret;
    }

    private static async Task<byte[]?> ReadValueAsync(SqliteConnection connection, SqliteTransaction? transaction, long secretKey, string versionId, CancellationToken ct) =>
        await Scalar(connection, transaction, "SELECT value FROM versions WHERE secret_id = $secret AND version_id = $version", ct,
            ("$secret", secretKey), ("$version", versionId)) as byte[];

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
        RotationEnabled = r.IsDBNull(12) ? null : r.GetInt64(12) != 0,
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
        HasValue = r.GetInt64(first + 5) != 0,
    };

    private static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private async Task<SqliteConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(ct);
        await Execute(connection, null, "PRAGMA synchronous = FULL", ct);
        return connection;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }
        return command;
    }

    private static async Task Execute(SqliteConnection connection, SqliteTransaction? transaction, string sql, CancellationToken ct, params (string, object?)[] parameters)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task<object?> Scalar(SqliteConnection connection, SqliteTransaction? transaction, string sql, CancellationToken ct, params (string, object?)[] parameters)
    {
        await using var command = Command(connection, transaction, sql, parameters);
        var result = await command.ExecuteScalarAsync(ct);
        return result is DBNull ? null : result;
    }
}
