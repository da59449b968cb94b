using System.Data.Common;
using Npgsql;
using Tumbler.Storage.Sql;

namespace Tumbler.Storage.Postgres;

/// <summary>
/// The store for several nodes: one PostgreSQL database shared by every <c>tumbler serve</c>, which keep no
/// state of their own; Tumbler's tables live in the schema <c>tumbler</c>. Write transactions run one at a time
/// across all nodes, as on SQLite (a secrets manager writes rarely): one writer per node (in process) queues for
/// one transaction-scoped advisory lock, so queued writers never hold more than one connection per node and reads
/// keep the rest of the pool. A node that dies mid-transaction loses its session and PostgreSQL rolls back and
/// releases the lock; one that hangs mid-transaction is cut off by <c>idle_in_transaction_session_timeout</c>.
/// </summary>
public sealed class PostgresSecretStore : SqlSecretStore
{
    public const int SchemaVersion = 1;

    /// <summary>The advisory lock key of the write lock ("Tumbler" in ASCII).</summary>
    private const long WriteLockKey = 0x54756D626C6572;

    /// <summary>Tumbler's tables live in this schema, apart from whatever else the database holds.</summary>
    public const string Schema = "tumbler";

    private readonly NpgsqlDataSource _dataSource;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    // Not cached: other nodes write the same tables.
    public PostgresSecretStore(string connectionString) : base(cachesReads: false)
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionStringFrom(connectionString)) { SearchPath = Schema };
        // Defaults for a shared store, unless the operator chose: fail fast when the database is down, a small pool per
        // node (N nodes share the server's max_connections), keepalive queries on idle connections (a dead server is noticed)
        // and a cap on a transaction left idle by a hung node.
        if (builder.Timeout == new NpgsqlConnectionStringBuilder().Timeout)
        {
            builder.Timeout = 5;
        }
        if (builder.MaxPoolSize == new NpgsqlConnectionStringBuilder().MaxPoolSize)
        {
            builder.MaxPoolSize = 20;
        }
        if (builder.KeepAlive == 0)
        {
            builder.KeepAlive = 30;
        }
        builder.Options = $"{builder.Options} -c idle_in_transaction_session_timeout=60000".Trim();
        // The store leaves no session state behind (search path and options are startup parameters, its one advisory
        // lock is transaction-scoped, nothing is prepared, listened to or temporary), so a connection taken from the
        // pool needs no DISCARD ALL before its next statement.
        builder.NoResetOnClose = true;
        _dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
    }

    /// <summary>
    /// Accepts a URL (<c>postgres://user:password@host:port/database?sslmode=verify-full</c>, query parameters
    /// being Npgsql connection string keywords or libpq's <c>sslmode</c>/<c>sslrootcert</c>) or an Npgsql connection string.
    /// </summary>
    public static string ConnectionStringFrom(string store)
    {
        if (!store.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) && !store.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                return new NpgsqlConnectionStringBuilder(store).ConnectionString;
            }
            catch (ArgumentException)
            {
                // Not the builder's message: it may quote a value, and values include the password.
                throw new FormatException("The PostgreSQL connection string is not valid (an unknown keyword or a value of the wrong kind).");
            }
        }
        if (!Uri.TryCreate(store, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new FormatException("The PostgreSQL URL is not valid; expected postgres://user:password@host:port/database.");
        }
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host.Trim('[', ']'),
            Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')) is { Length: > 0 } database ? database : "postgres",
        };
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            builder.Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (colon >= 0)
            {
                builder.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
        }
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString(equals < 0 ? pair : pair[..equals]);
            var value = equals < 0 ? "" : Uri.UnescapeDataString(pair[(equals + 1)..]);
            var keyword = name.ToLowerInvariant() switch
            {
                "sslmode" => "SSL Mode",
                "sslrootcert" => "Root Certificate",
                "sslcert" => "SSL Certificate",
                "sslkey" => "SSL Key",
                "connect_timeout" => "Timeout",
                "application_name" => "Application Name",
                _ => name,
            };
            try
            {
                builder[keyword] = keyword == "SSL Mode" ? LibpqSslMode(value) : value;
            }
            catch (ArgumentException)
            {
                throw new FormatException($"The PostgreSQL URL has an unknown or invalid parameter '{name}'.");
            }
        }
        return builder.ConnectionString;
    }

    /// <summary>libpq spells the modes verify-full / verify-ca; Npgsql VerifyFull / VerifyCA.</summary>
    private static string LibpqSslMode(string mode) => mode.ToLowerInvariant() switch
    {
        "verify-full" => "VerifyFull",
        "verify-ca" => "VerifyCA",
        _ => mode,
    };

    /// <summary>The URL or connection string with its password replaced by ***, for messages and --print-config.</summary>
    public static string Mask(string store)
    {
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(ConnectionStringFrom(store));
            if (builder.Password is not null)
            {
                builder.Password = "***";
            }
            if (builder.SslPassword is not null)
            {
                builder.SslPassword = "***";
            }
            return builder.ConnectionString;
        }
        catch (FormatException)
        {
            return "(not a valid PostgreSQL connection string)";
        }
    }

    public override async Task InitializeAsync(CancellationToken ct)
    {
        // Under the write lock: nodes starting together migrate once, and no write runs on a half-migrated schema.
        await using var scope = await BeginWriteAsync(ct);
        await Execute(scope.Connection, scope.Transaction, $"CREATE SCHEMA IF NOT EXISTS {Schema}", ct);
        var exists = await Scalar(scope.Connection, scope.Transaction, $"SELECT to_regclass('{Schema}.tumbler_schema') IS NOT NULL", ct) is true;
        var version = exists ? Convert.ToInt32(await Scalar(scope.Connection, scope.Transaction, "SELECT version FROM tumbler_schema", ct)) : 0;
        if (version > SchemaVersion)
        {
            throw new InvalidOperationException(
                $"The database schema is version {version}, newer than this Tumbler understands ({SchemaVersion}). Upgrade Tumbler.");
        }
        if (version == 0)
        {
            // The SQLite schema at its version 6, in PostgreSQL's types. Text keys compare byte-wise (COLLATE "C"), as SQLite does.
            await Execute(scope.Connection, scope.Transaction, """
                CREATE TABLE tumbler_schema (version integer NOT NULL);
                INSERT INTO tumbler_schema (version) VALUES (1);
                CREATE TABLE settings (name text COLLATE "C" PRIMARY KEY, value text NOT NULL);
                CREATE TABLE secrets (
                    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                    region text COLLATE "C" NOT NULL,
                    name text COLLATE "C" NOT NULL,
                    arn text COLLATE "C" NOT NULL UNIQUE,
                    description text,
                    kms_key_id text,
                    type text,
                    created bigint NOT NULL,
                    last_changed bigint NOT NULL,
                    last_accessed bigint,
                    deletion_date bigint,
                    tags text,
                    rotation_enabled integer,
                    rotation_lambda_arn text,
                    rotation_rules text,
                    last_rotated bigint,
                    next_rotation_start bigint,
                    next_rotation bigint,
                    resource_policy text,
                    UNIQUE (region, name));
                CREATE INDEX secrets_due ON secrets (next_rotation_start) WHERE rotation_enabled = 1;
                CREATE INDEX secrets_created ON secrets (region, created);
                CREATE TABLE versions (
                    secret_id bigint NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
                    version_id text COLLATE "C" NOT NULL,
                    labels text NOT NULL,
                    created bigint NOT NULL,
                    last_accessed bigint,
                    key_id text COLLATE "C",
                    value bytea,
                    PRIMARY KEY (secret_id, version_id));
                CREATE INDEX versions_key ON versions (key_id);
                CREATE TABLE rotations (
                    secret_id bigint PRIMARY KEY REFERENCES secrets(id) ON DELETE CASCADE,
                    secret_arn text NOT NULL,
                    region text NOT NULL,
                    token text NOT NULL,
                    rotation_token text NOT NULL,
                    rotate_immediately integer NOT NULL,
                    steps_done integer NOT NULL,
                    attempts integer NOT NULL,
                    started bigint NOT NULL,
                    next_attempt bigint NOT NULL,
                    last_error text,
                    lease_owner text,
                    lease_expires bigint);
                CREATE INDEX rotations_due ON rotations (next_attempt);
                CREATE TABLE kms_keys (
                    key_id text COLLATE "C" PRIMARY KEY,
                    arn text NOT NULL,
                    description text NOT NULL,
                    enabled integer NOT NULL,
                    created bigint NOT NULL,
                    deletion_date bigint);
                CREATE TABLE kms_key_materials (
                    key_id text COLLATE "C" NOT NULL REFERENCES kms_keys(key_id),
                    version integer NOT NULL,
                    created bigint NOT NULL,
                    wrapped bytea NOT NULL,
                    wrapped_next bytea,
                    PRIMARY KEY (key_id, version));
                CREATE TABLE kms_aliases (alias text COLLATE "C" PRIMARY KEY, key_id text COLLATE "C" NOT NULL REFERENCES kms_keys(key_id));
                CREATE TABLE iam_users (
                    name text COLLATE "C" PRIMARY KEY,
                    user_id text NOT NULL UNIQUE,
                    arn text NOT NULL,
                    created bigint NOT NULL);
                CREATE TABLE iam_access_keys (
                    access_key_id text COLLATE "C" PRIMARY KEY,
                    user_name text COLLATE "C" NOT NULL REFERENCES iam_users(name),
                    wrapped_secret bytea NOT NULL,
                    active integer NOT NULL,
                    created bigint NOT NULL);
                CREATE INDEX iam_access_keys_user ON iam_access_keys (user_name);
                CREATE TABLE iam_user_policies (
                    user_name text COLLATE "C" NOT NULL REFERENCES iam_users(name),
                    policy_name text COLLATE "C" NOT NULL,
                    document text NOT NULL,
                    PRIMARY KEY (user_name, policy_name));
                CREATE TABLE functions (
                    name text COLLATE "C" PRIMARY KEY,
                    kind text NOT NULL,
                    command text,
                    python_handler text,
                    working_dir text,
                    url text,
                    timeout_seconds integer NOT NULL,
                    max_concurrency integer NOT NULL,
                    env_names text NOT NULL,
                    sealed_config bytea,
                    created bigint NOT NULL,
                    last_modified bigint NOT NULL);
                CREATE TABLE session_credentials (
                    access_key_id text COLLATE "C" PRIMARY KEY,
                    wrapped_secret bytea NOT NULL,
                    token_sha256 text NOT NULL,
                    secret_arn text NOT NULL,
                    function_name text NOT NULL,
                    version_id text NOT NULL,
                    expires bigint NOT NULL,
                    created bigint NOT NULL);
                CREATE INDEX session_credentials_expires ON session_credentials (expires);
                """, ct);
        }
        await scope.Transaction.CommitAsync(ct);
    }

    protected override async Task<DbConnection> OpenAsync(CancellationToken ct) => await _dataSource.OpenConnectionAsync(ct);

    protected override async Task<DbTransaction> BeginReadAsync(DbConnection connection, CancellationToken ct) =>
        await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);

    protected override async Task<WriteScope> BeginWriteAsync(CancellationToken ct)
    {
        await _writeLock.WaitAsync(ct);
        NpgsqlConnection? connection = null;
        try
        {
            connection = await _dataSource.OpenConnectionAsync(ct);
            var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, ct);
            // Read committed after the lock: every statement sees all that the previous writers committed.
            await Execute(connection, transaction, "SELECT pg_advisory_xact_lock(@key)", ct, ("@key", WriteLockKey));
            return new WriteScope(connection, transaction, () => _writeLock.Release());
        }
        catch
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
            _writeLock.Release();
            throw;
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await _dataSource.DisposeAsync();
        _writeLock.Dispose();
    }
}
