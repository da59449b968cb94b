using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Npgsql;

namespace Tumbler.IntegrationTests.Support;

/// <summary>
/// The PostgreSQL that scripts/start-postgres.sh runs for the tests, reached with the same environment
/// variables and defaults as that script (TUMBLER_TEST_POSTGRES_HOST, _PORT, _ADMIN_USER,
/// _ADMIN_PASSWORD). Helpers create throwaway roles and databases (dropped by <see cref="DisposeAsync"/>)
/// and try logins. Names are random so tests can run in parallel against one server.
/// </summary>
public sealed class Postgres : IAsyncDisposable
{
    private readonly List<string> _roles = [];
    private readonly List<string> _databases = [];

    public static string Host => Environment.GetEnvironmentVariable("TUMBLER_TEST_POSTGRES_HOST") is { Length: > 0 } host ? host : "127.0.0.1";
    public static int Port => int.TryParse(Environment.GetEnvironmentVariable("TUMBLER_TEST_POSTGRES_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : 15432;
    public static string AdminUser => Environment.GetEnvironmentVariable("TUMBLER_TEST_POSTGRES_ADMIN_USER") is { Length: > 0 } user ? user : "tumbler_admin";
    public static string AdminPassword => Environment.GetEnvironmentVariable("TUMBLER_TEST_POSTGRES_ADMIN_PASSWORD") is { Length: > 0 } password ? password : "admin-pass";
    /// <summary>The throwaway CA that signed the test cluster's TLS certificate (scripts/start-postgres.sh).</summary>
    public static string CaFile => Environment.GetEnvironmentVariable("TUMBLER_TEST_POSTGRES_CA") is { Length: > 0 } ca ? ca : $"/tmp/tumbler-postgres-{Port}/tls/ca.pem";

    /// <summary>Connects as the admin, failing with instructions when the test server is not running.</summary>
    public static async Task<Postgres> ConnectAsync()
    {
        try
        {
            await using var connection = await OpenAsync(AdminUser, AdminPassword);
        }
        catch (NpgsqlException e)
        {
            throw new InvalidOperationException(
                $"The test PostgreSQL is not reachable at {Host}:{Port} as {AdminUser} ({e.Message}). " +
                "Start it with scripts/start-postgres.sh, or point TUMBLER_TEST_POSTGRES_* at one.", e);
        }
        return new Postgres();
    }

    /// <summary>A fresh lower-case name: the prefix and hex digits, <paramref name="length"/> characters in all.</summary>
    public static string UniqueName(string prefix, int length = 12) =>
        prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16))[..(length - prefix.Length)];

    /// <summary>A loopback port nothing listens on (a database that is down).</summary>
    public static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>A plain connection, or with <paramref name="verifiedTls"/> one over TLS verified against <see cref="CaFile"/>.</summary>
    public static async Task<NpgsqlConnection> OpenAsync(string user, string password, string? database = null, bool verifiedTls = false)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = Host,
            Port = Port,
            Username = user,
            Password = password,
            Database = database ?? "postgres",
            SslMode = verifiedTls ? SslMode.VerifyFull : SslMode.Disable,
            RootCertificate = verifiedTls ? CaFile : null,
            Pooling = false,
            Timeout = 5,
        }.ConnectionString);
        try
        {
            await connection.OpenAsync();
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>True when the credentials log in (a refused password or role is false; other errors throw).</summary>
    public static async Task<bool> CanLoginAsync(string user, string password, string? database = null, bool verifiedTls = false)
    {
        try
        {
            await using var connection = await OpenAsync(user, password, database, verifiedTls);
            return true;
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification)
        {
            return false;
        }
    }

    /// <summary>Runs statements as the admin. Parameters are given as (name, value) pairs, e.g. ("name", "app").</summary>
    public static async Task ExecuteAsync(string sql, string? database = null, params (string Name, object Value)[] parameters)
    {
        await using var connection = await OpenAsync(AdminUser, AdminPassword, database);
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs one query as the admin and returns the first column of the first row.</summary>
    public static async Task<object?> ScalarAsync(string sql, string? database = null, params (string Name, object Value)[] parameters)
    {
        await using var connection = await OpenAsync(AdminUser, AdminPassword, database);
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return await command.ExecuteScalarAsync();
    }

    /// <summary>Runs statements as the given user and returns the first column of the first row.</summary>
    public static async Task<object?> ScalarAsUserAsync(string user, string password, string? database, string sql)
    {
        await using var connection = await OpenAsync(user, password, database);
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    /// <summary>
    /// Builds a statement with the server's own <c>format()</c> (%I identifiers, %L literals) from
    /// parameters and runs it as the admin: test setup that does not depend on the rotators' quoting.
    /// </summary>
    public static async Task FormatAndExecuteAsync(string format, string? database, params string[] arguments)
    {
        await using var connection = await OpenAsync(AdminUser, AdminPassword, database);
        string statement;
        await using (var build = new NpgsqlCommand(
            "SELECT format(@format, " + string.Join(", ", arguments.Select((_, i) => $"@a{i}")) + ")", connection))
        {
            build.Parameters.AddWithValue("format", format);
            for (var i = 0; i < arguments.Length; i++)
            {
                build.Parameters.AddWithValue($"a{i}", arguments[i]);
            }
            statement = (string)(await build.ExecuteScalarAsync())!;
        }
        await using var run = new NpgsqlCommand(statement, connection);
        await run.ExecuteNonQueryAsync();
    }

    /// <summary>True when the role exists.</summary>
    public static async Task<bool> RoleExistsAsync(string role) =>
        await ScalarAsync("SELECT 1 FROM pg_roles WHERE rolname = @name", null, ("name", role)) is not null;

    /// <summary>True when <paramref name="member"/> is a direct member of <paramref name="role"/>.</summary>
    public static async Task<bool> IsMemberAsync(string member, string role) =>
        await ScalarAsync("SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member " +
            "WHERE r.rolname = @role AND u.rolname = @member", null, ("role", role), ("member", member)) is not null;

    /// <summary>pg_authid.rolpassword: the stored verifier of a role.</summary>
    public static async Task<string?> StoredPasswordAsync(string role) =>
        await ScalarAsync("SELECT rolpassword FROM pg_authid WHERE rolname = @name", null, ("name", role)) as string;

    /// <summary>Creates a login role with a password; it (and its _clone) is dropped on dispose.</summary>
    public async Task CreateUserAsync(string user, string password)
    {
        _roles.Add(user + "_clone");
        _roles.Add(user);
        await FormatAndExecuteAsync("CREATE ROLE %I WITH LOGIN PASSWORD %L", null, user, password);
    }

    /// <summary>Creates a database with one table <c>items(id INT PRIMARY KEY, name TEXT)</c>; dropped on dispose.</summary>
    public async Task CreateDatabaseAsync(string database)
    {
        _databases.Insert(0, database);
        await FormatAndExecuteAsync("CREATE DATABASE %I", null, database);
        await ExecuteAsync("CREATE TABLE items (id INT PRIMARY KEY, name TEXT)", database);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var database in _databases)
        {
            await FormatAndExecuteAsync("DROP DATABASE IF EXISTS %I WITH (FORCE)", null, database);
        }
        foreach (var role in _roles)
        {
            await FormatAndExecuteAsync("DROP ROLE IF EXISTS %I", null, role);
        }
    }
}

/// <summary>
/// A loopback TCP server that answers a PostgreSQL SSLRequest with 'N' (no TLS here), then only records
/// what each client sends: a client that insists on TLS must hang up after its SSLRequest, without
/// sending a StartupMessage (user name) or any password.
/// </summary>
public sealed class PostgresServerWithoutTls : IAsyncDisposable
{
    /// <summary>An SSLRequest: length 8, code 80877103.</summary>
    public const string SslRequest = "0000000804D2162F";

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _received = new();
    private int _connections;
    private bool _disposed;

    public PostgresServerWithoutTls()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _loop = Task.Run(AcceptAsync);
    }

    public int Port { get; }
    public int Connections => Volatile.Read(ref _connections);
    /// <summary>What each finished connection sent, in hex; complete once the server is disposed.</summary>
    public IReadOnlyList<string> Received => [.. _received];

    private async Task AcceptAsync()
    {
        var clients = new List<Task>();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                Interlocked.Increment(ref _connections);
                clients.Add(ServeAsync(client));
            }
        }
        catch (OperationCanceledException)
        {
        }
        await Task.WhenAll(clients);
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            using var received = new MemoryStream();
            try
            {
                var stream = client.GetStream();
                var buffer = new byte[4096];
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                var answered = false;
                int read;
                while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
                {
                    received.Write(buffer, 0, read);
                    if (!answered && received.Length >= 8)
                    {
                        answered = true;
                        await stream.WriteAsync("N"u8.ToArray(), timeout.Token);
                    }
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
            {
            }
            finally
            {
                _received.Enqueue(Convert.ToHexString(received.ToArray()));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await _stop.CancelAsync();
        _listener.Stop();
        await _loop;
        _stop.Dispose();
    }
}
