using System.Data.Common;
using Microsoft.Data.Sqlite;
using Tumbler.Storage.Sql;

namespace Tumbler.Storage.Sqlite;

/// <summary>
/// The embedded store: one SQLite file in WAL mode (readers never wait for the writer), synchronous
/// FULL (an acknowledged write survives a crash or power loss). Writers are serialized in process and
/// take SQLite's write lock at BEGIN, so a read-modify-write transaction sees no concurrent change.
/// </summary>
public sealed class SqliteSecretStore : SqlSecretStore
{
    public static int SchemaVersion => Migrations.Length;
    private readonly string _connectionString;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private WriteConnection? _writeConnection;
    private int _disposed;

    // Reads are cached: a data directory is served by one server, and other tools change only keys and settings in it.
    public SqliteSecretStore(string databasePath) : base(cachesReads: true)
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

    /// <summary>Schema changes in order: entry N takes a store from version N to N + 1, in one transaction.</summary>
    private static readonly string[] Migrations =
    [
        // 0 -> 1
        """
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
        """,
        // 1 -> 2: Access control: resource policies on secrets; users, their access keys (secret half wrapped) and inline policies.
        """
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
        """,
        // 2 -> 3: External rotation functions (secret parts sealed) and the session credentials issued to them.
        """
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
        """,
        // 3 -> 4: KMS-like key administration: scheduled deletion; wrapped_next holds a key's material wrapped under
        // the next root key while a root key rotation is under way (see RootKeyRotation).
        """
            ALTER TABLE kms_keys ADD COLUMN deletion_date INTEGER;
            ALTER TABLE kms_keys ADD COLUMN wrapped_next BLOB;
            CREATE INDEX versions_key ON versions (key_id);
        """,
        // 4 -> 5: Key material rotation: a key's materials are versions in their own table; a key's existing material
        // becomes its version 1, bytes unchanged, so every value already stored stays readable with no rewrite.
        """
            CREATE TABLE kms_key_materials (
                key_id TEXT NOT NULL REFERENCES kms_keys(key_id),
                version INTEGER NOT NULL,
                created INTEGER NOT NULL,
                wrapped BLOB NOT NULL,
                wrapped_next BLOB,
                PRIMARY KEY (key_id, version));
            INSERT INTO kms_key_materials (key_id, version, created, wrapped, wrapped_next)
                SELECT key_id, 1, created, wrapped, wrapped_next FROM kms_keys;
            ALTER TABLE kms_keys DROP COLUMN wrapped;
            ALTER TABLE kms_keys DROP COLUMN wrapped_next;
        """,
        // 5 -> 6: ListSecrets pages in SQL; its default order (created-date) walks this index instead of sorting every secret.
        """
            CREATE INDEX IF NOT EXISTS secrets_created ON secrets (region, created);
        """,
    ];

    public override async Task InitializeAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        var version = Convert.ToInt32(await Scalar(connection, null, "PRAGMA user_version", ct));
        if (version > SchemaVersion)
        {
            throw new InvalidOperationException(
                $"The database schema is version {version}, newer than this Tumbler understands ({SchemaVersion}). Upgrade Tumbler.");
        }
        await Execute(connection, null, "PRAGMA journal_mode=WAL", ct);
        for (; version < Migrations.Length; version++)
        {
            await using var transaction = await connection.BeginTransactionAsync(ct);
            await Execute(connection, transaction, $"{Migrations[version]}\nPRAGMA user_version = {version + 1};", ct);
            await transaction.CommitAsync(ct);
        }
    }

    protected override async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(ct);
        await Execute(connection, null, "PRAGMA synchronous = FULL", ct);
        return connection;
    }

    // Deferred: a WAL reader's snapshot, taking no lock that would make writers wait.
    protected override Task<DbTransaction> BeginReadAsync(DbConnection connection, CancellationToken ct) =>
        Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: true));

    protected override async Task<WriteScope> BeginWriteAsync(CancellationToken ct)
    {
        await _writeLock.WaitAsync(ct);
        try
        {
            // One write connection for the store's life (writers take turns on it), so its statements are compiled once.
            if (_writeConnection is null)
            {
                var connection = new WriteConnection(_connectionString);
                await connection.OpenAsync(ct);
                await Execute(connection, null, "PRAGMA synchronous = FULL", ct);
                _writeConnection = connection;
            }
            // BEGIN IMMEDIATE: the database write lock is taken now, not at the first write.
            return new WriteScope(_writeConnection, await _writeConnection.BeginTransactionAsync(ct), () => _writeLock.Release(), keepsConnection: true);
        }
        catch
        {
            // Start the next writer on a new connection, in case this one is what failed.
            await (_writeConnection?.DisposeAsync() ?? ValueTask.CompletedTask);
            _writeConnection = null;
            _writeLock.Release();
            throw;
        }
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _writeLock.WaitAsync();
        await (_writeConnection?.DisposeAsync() ?? ValueTask.CompletedTask);
        _writeConnection = null;
        _writeLock.Dispose();
        SqliteConnection.ClearAllPools();
    }

    /// <summary>The write connection: it keeps a command per statement text (at most <see cref="MaxKept"/>), compiled on first use.</summary>
    private sealed class WriteConnection(string connectionString) : SqliteConnection(connectionString), IPreparedCommands
    {
        private const int MaxKept = 256;
        private readonly Dictionary<string, KeptCommand> _kept = new(StringComparer.Ordinal);

        public DbCommand? Rent(string sql)
        {
            if (_kept.TryGetValue(sql, out var command))
            {
                return command;
            }
            if (_kept.Count >= MaxKept)
            {
                return null;
            }
            command = new KeptCommand(sql, this);
            _kept.Add(sql, command);
            return command;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                foreach (var command in _kept.Values)
                {
                    command.Release();
                }
                _kept.Clear();
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>A command whose Dispose ends one use: its compiled statements stay until the connection releases it.</summary>
    private sealed class KeptCommand(string sql, SqliteConnection connection) : SqliteCommand(sql, connection)
    {
        public void Release() => base.Dispose(true);

        [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2215:Dispose methods should call base class dispose",
            Justification = "A caller's using ends one use of a kept command; Release disposes it with its connection.")]
        protected override void Dispose(bool disposing)
        {
        }
    }
}
