using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using MySqlConnector;

namespace Tumbler.IntegrationTests.Support;

/// <summary>
/// The MariaDB that scripts/start-mariadb.sh runs for the tests, reached with the same environment
/// variables and defaults as that script (TUMBLER_TEST_MARIADB_HOST, _PORT, _ADMIN_USER,
/// _ADMIN_PASSWORD). Helpers create throwaway users and databases (dropped by <see cref="DisposeAsync"/>)
/// and try logins. Names are random so tests can run in parallel against one server.
/// </summary>
public sealed class MariaDb : IAsyncDisposable
{
    private readonly List<string> _users = [];
    private readonly List<string> _databases = [];
    private readonly List<string> _roles = [];

    public static string Host => Environment.GetEnvironmentVariable("TUMBLER_TEST_MARIADB_HOST") is { Length: > 0 } host ? host : "127.0.0.1";
    public static int Port => int.TryParse(Environment.GetEnvironmentVariable("TUMBLER_TEST_MARIADB_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : 13306;
    public static string AdminUser => Environment.GetEnvironmentVariable("TUMBLER_TEST_MARIADB_ADMIN_USER") is { Length: > 0 } user ? user : "tumbler_admin";
    public static string AdminPassword => Environment.GetEnvironmentVariable("TUMBLER_TEST_MARIADB_ADMIN_PASSWORD") is { Length: > 0 } password ? password : "admin-pass";
    /// <summary>The CA that signed the server's TLS certificate (made by the start script).</summary>
    public static string CaFile => Environment.GetEnvironmentVariable("TUMBLER_TEST_MARIADB_CA") is { Length: > 0 } ca ? ca : $"/tmp/tumbler-mariadb-{Port}/tls/ca.pem";

    /// <summary>Connects as the admin, failing with instructions when the test server is not running.</summary>
    public static async Task<MariaDb> ConnectAsync()
    {
        try
        {
            await using var connection = await OpenAsync(AdminUser, AdminPassword);
        }
        catch (MySqlException e)
        {
            throw new InvalidOperationException(
                $"The test MariaDB is not reachable at {Host}:{Port} as {AdminUser} ({e.Message}). " +
                "Start it with scripts/start-mariadb.sh (test.sh does), or point TUMBLER_TEST_MARIADB_* at one.", e);
        }
        return new MariaDb();
    }

    /// <summary>A fresh name: a letter and hex digits, <paramref name="length"/> characters in all.</summary>
    public static string UniqueName(string prefix, int length = 9) =>
        prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))[..(length - prefix.Length)];

    /// <summary>A loopback port nothing listens on (a database that is down).</summary>
    public static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public static async Task<MySqlConnection> OpenAsync(string user, string password, string? database = null)
    {
        var connection = new MySqlConnection(new MySqlConnectionStringBuilder
        {
            Server = Host,
            Port = (uint)Port,
            UserID = user,
            Password = password,
            Database = database ?? "",
            // TLS when offered (the start script's server offers it), so logins that REQUIRE SSL work too.
            SslMode = MySqlSslMode.Preferred,
            Pooling = false,
            ConnectionTimeout = 5,
            AllowUserVariables = true,
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

    /// <summary>True when the credentials log in (an access-denied answer is false; other errors throw).</summary>
    public static async Task<bool> CanLoginAsync(string user, string password, string? database = null)
    {
        try
        {
            await using var connection = await OpenAsync(user, password, database);
            return true;
        }
        catch (MySqlException e) when (e.ErrorCode is MySqlErrorCode.AccessDenied or MySqlErrorCode.DatabaseAccessDenied)
        {
            return false;
        }
    }

    /// <summary>Runs statements as the admin. Parameters are given as (name, value) pairs, e.g. ("@user", "app").</summary>
    public static async Task ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = await OpenAsync(AdminUser, AdminPassword);
        await using var command = new MySqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs one statement as the given user and returns the first column of the first row.</summary>
    public static async Task<object?> ScalarAsUserAsync(string user, string password, string? database, string sql)
    {
        await using var connection = await OpenAsync(user, password, database);
        await using var command = new MySqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    /// <summary>Runs one statement as the given user.</summary>
    public static async Task ExecuteAsUserAsync(string user, string password, string? database, string sql)
    {
        await using var connection = await OpenAsync(user, password, database);
        await using var command = new MySqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>SHOW GRANTS FOR 'user'@'%'.</summary>
    public static async Task<IReadOnlyList<string>> ShowGrantsAsync(string user)
    {
        await using var connection = await OpenAsync(AdminUser, AdminPassword);
        await using var command = new MySqlCommand("SHOW GRANTS FOR @user", connection);
        command.Parameters.AddWithValue("@user", user);
        var grants = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            grants.Add(reader.GetString(0));
        }
        return grants;
    }

    /// <summary>mysql.user's ssl_type of 'user'@'%' ("" none, "ANY" = REQUIRE SSL, "X509", "SPECIFIED").</summary>
    public static async Task<string> SslTypeAsync(string user)
    {
        await using var connection = await OpenAsync(AdminUser, AdminPassword);
        await using var command = new MySqlCommand("SELECT ssl_type FROM mysql.user WHERE User = @user AND Host = '%'", connection);
        command.Parameters.AddWithValue("@user", user);
        return Convert.ToString(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture) ?? "";
    }

    /// <summary>True when 'user'@'%' exists.</summary>
    public static async Task<bool> UserExistsAsync(string user)
    {
        await using var connection = await OpenAsync(AdminUser, AdminPassword);
        await using var command = new MySqlCommand("SELECT COUNT(*) FROM mysql.user WHERE User = @user AND Host = '%'", connection);
        command.Parameters.AddWithValue("@user", user);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>Creates 'user'@'%' with a password; it (and its _clone) is dropped on dispose.</summary>
    public async Task CreateUserAsync(string user, string password)
    {
        _users.Add(user);
        _users.Add(user + "_clone");
        await ExecuteAsync("CREATE USER @user IDENTIFIED BY @password", ("@user", user), ("@password", password));
    }

    /// <summary>Creates a database with one table <c>items(id INT PRIMARY KEY, name VARCHAR(50))</c>; dropped on dispose.</summary>
    public async Task CreateDatabaseAsync(string database)
    {
        _databases.Add(database);
        await ExecuteAsync($"CREATE DATABASE `{database}`; CREATE TABLE `{database}`.items (id INT PRIMARY KEY, name VARCHAR(50))");
    }

    /// <summary>Creates a role; dropped on dispose.</summary>
    public async Task CreateRoleAsync(string role)
    {
        _roles.Add(role);
        await ExecuteAsync($"CREATE ROLE `{role}`");
    }

    /// <summary>GRANT privileges ON target TO 'user'@'%' (privileges and target are trusted test text).</summary>
    public static Task GrantAsync(string privileges, string target, string user, bool withGrantOption = false) =>
        ExecuteAsync($"GRANT {privileges} ON {target} TO @user{(withGrantOption ? " WITH GRANT OPTION" : "")}", ("@user", user));

    public async ValueTask DisposeAsync()
    {
        foreach (var user in _users)
        {
            await ExecuteAsync("DROP USER IF EXISTS @user", ("@user", user));
        }
        foreach (var role in _roles)
        {
            await ExecuteAsync($"DROP ROLE IF EXISTS `{role}`");
        }
        foreach (var database in _databases)
        {
            await ExecuteAsync($"DROP DATABASE IF EXISTS `{database}`");
        }
    }
}

/// <summary>
/// A loopback TCP server that greets like a MySQL/MariaDB server without TLS support (no CLIENT_SSL
/// capability), then only records what each client sends: a client that insists on TLS must hang up
/// without sending its login (at most a COM_QUIT, <c>0100000001</c>).
/// </summary>
public sealed class ServerWithoutTls : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _received = new();
    private int _connections;
    private bool _disposed;

    public ServerWithoutTls()
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
            try
            {
                var stream = client.GetStream();
                await stream.WriteAsync(Greeting(), _stop.Token);
                var buffer = new byte[4096];
                using var received = new MemoryStream();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                int read;
                try
                {
                    while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
                    {
                        received.Write(buffer, 0, read);
                    }
                }
                finally
                {
                    _received.Enqueue(Convert.ToHexString(received.ToArray()));
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
            {
            }
        }
    }

    /// <summary>A protocol-10 handshake packet whose capabilities lack CLIENT_SSL (0x800).</summary>
    private static byte[] Greeting()
    {
        const uint capabilities = 0x1 | 0x2 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x10000 | 0x20000 | 0x80000 | 0x200000;
        var payload = new List<byte> { 0x0a };
        payload.AddRange("5.5.5-10.11.0-MariaDB-no-tls\0"u8.ToArray());
        payload.AddRange(BitConverter.GetBytes(1)); // connection id
        payload.AddRange("abcdefgh"u8.ToArray()); // scramble, part 1
        payload.Add(0);
        payload.AddRange(BitConverter.GetBytes((ushort)(capabilities & 0xffff)));
        payload.Add(0x21); // utf8_general_ci
        payload.AddRange(BitConverter.GetBytes((ushort)0x0002)); // autocommit
        payload.AddRange(BitConverter.GetBytes((ushort)(capabilities >> 16)));
        payload.Add(21); // scramble length
        payload.AddRange(new byte[10]);
        payload.AddRange("ijklmnopqrst\0"u8.ToArray()); // scramble, part 2
        payload.AddRange("mysql_native_password\0"u8.ToArray());
        var packet = new List<byte> { (byte)payload.Count, (byte)(payload.Count >> 8), (byte)(payload.Count >> 16), 0 };
        packet.AddRange(payload);
        return [.. packet];
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
