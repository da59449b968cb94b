using System.Globalization;
using System.Security.Cryptography;
using Npgsql;
using Tumbler.Storage.Postgres;
using Tumbler.Storage.Sql;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Storage.Tests;

/// <summary>Where a conformance test gets its fresh, empty stores: each backend makes a new database per test.</summary>
public interface IStoreBackend : IAsyncDisposable
{
    /// <summary>A new store object on this test's database (call twice for two "nodes" sharing it).</summary>
    SqlSecretStore Open();
    /// <summary>Marks the database's schema as version <paramref name="version"/> (to prove a newer schema is refused).</summary>
    Task SetSchemaVersionAsync(int version);
}

public sealed class SqliteBackend : IStoreBackend
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tumbler-store-tests-").FullName;
    private string DatabasePath => Path.Combine(_directory, "tumbler.db");

    public SqlSecretStore Open() => new SqliteSecretStore(DatabasePath);

    public async Task SetSchemaVersionAsync(int version)
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"PRAGMA user_version = {version}";
        await command.ExecuteNonQueryAsync();
    }

    public ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// A fresh database on the PostgreSQL that scripts/start-postgres.sh runs (TUMBLER_TEST_POSTGRES_HOST, _PORT,
/// _ADMIN_USER, _ADMIN_PASSWORD, as there), dropped at the end.
/// </summary>
public sealed class PostgresBackend : IStoreBackend
{
    private readonly string _database = "tumbler_store_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    public static string Host => Environment.GetEnvironmentVariable("TUMBLER_TEST_POSTGRES_HOST") is { Length: > 0 } host ? host : "127.0.0.1";
    public static int Port => int.TryParse(Environment.GetEnvironmentVariable("TUMBLER_TEST_POSTGRES_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : 15432;
    public static string AdminUser => Environment.GetEnvironmentVariable("TUMBLER_TEST_POSTGRES_ADMIN_USER") is { Length: > 0 } user ? user : "tumbler_admin";
    public static string AdminPassword => Environment.GetEnvironmentVariable("TUMBLER_TEST_POSTGRES_ADMIN_PASSWORD") is { Length: > 0 } password ? password : "admin-pass";

    private PostgresBackend() { }

    /// <summary>A URL as an operator writes it for <c>--store</c>.</summary>
    public string Url => $"postgres://{Uri.EscapeDataString(AdminUser)}:{Uri.EscapeDataString(AdminPassword)}@{Host}:{Port}/{_database}";

    public static async Task<PostgresBackend> CreateAsync()
    {
        var backend = new PostgresBackend();
        await AdminAsync($"CREATE DATABASE {backend._database}", "postgres");
        return backend;
    }

    public SqlSecretStore Open() => new PostgresSecretStore(Url);

    public Task SetSchemaVersionAsync(int version) => AdminAsync($"UPDATE {PostgresSecretStore.Schema}.tumbler_schema SET version = {version}", _database);

    public ValueTask DisposeAsync() => new(AdminAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", "postgres"));

    /// <summary>Runs statements as the admin on this test's database.</summary>
    public Task AdminAsync(string sql) => AdminAsync(sql, _database);

    /// <summary>The first column of the first row of a query run as the admin on this test's database.</summary>
    public async Task<object?> AdminScalarAsync(string sql)
    {
        await using var connection = await OpenAdminAsync(_database);
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    private static async Task AdminAsync(string sql, string database)
    {
        await using var connection = await OpenAdminAsync(database);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<NpgsqlConnection> OpenAdminAsync(string database)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = Host, Port = Port, Username = AdminUser, Password = AdminPassword, Database = database, Pooling = false, Timeout = 5,
        }.ConnectionString);
        try
        {
            await connection.OpenAsync();
            return connection;
        }
        catch (NpgsqlException e)
        {
            await connection.DisposeAsync();
            throw new InvalidOperationException(
                $"The test PostgreSQL is not reachable at {Host}:{Port} as {AdminUser} ({e.Message}). " +
                "Start it with scripts/start-postgres.sh, or point TUMBLER_TEST_POSTGRES_* at one.", e);
        }
    }
}
