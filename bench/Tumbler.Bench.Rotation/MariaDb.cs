using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using MySqlConnector;

namespace Tumbler.Bench.Rotation;

/// <summary>
/// The MariaDB of scripts/start-mariadb.sh, reached with the variables and defaults the integration
/// tests use (TUMBLER_TEST_MARIADB_HOST, _PORT, _ADMIN_USER, _ADMIN_PASSWORD). Remembers every user it
/// creates and drops them all in <see cref="DisposeAsync"/>.
/// </summary>
public sealed class MariaDb : IAsyncDisposable
{
    private readonly List<string> _users = [];
    private readonly string _prefix = "tb" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3)) + "_";
    private int _next;

    public static string Host => Variable("TUMBLER_TEST_MARIADB_HOST") ?? "127.0.0.1";
    public static int Port => int.TryParse(Variable("TUMBLER_TEST_MARIADB_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : 13306;
    public static string AdminUser => Variable("TUMBLER_TEST_MARIADB_ADMIN_USER") ?? "tumbler_admin";
    public static string AdminPassword => Variable("TUMBLER_TEST_MARIADB_ADMIN_PASSWORD") ?? "admin-pass";

    /// <summary>The pid of the mariadbd the start script runs (for its CPU time), when it is the local one.</summary>
    public static int? ServerPid =>
        File.Exists($"/tmp/tumbler-mariadb-{Port}/mariadb.pid")
        && int.TryParse(File.ReadAllText($"/tmp/tumbler-mariadb-{Port}/mariadb.pid").Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
            ? pid
            : null;

    private static string? Variable(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    public static string ConnectionString(string user, string password, MySqlSslMode sslMode) => new MySqlConnectionStringBuilder
    {
        Server = Host,
        Port = (uint)Port,
        UserID = user,
        Password = password,
        SslMode = sslMode,
        Pooling = false,
        ConnectionTimeout = 5,
        AllowPublicKeyRetrieval = true,
    }.ConnectionString;

    public static async Task<MySqlConnection> OpenAdminAsync(CancellationToken ct)
    {
        var connection = new MySqlConnection(ConnectionString(AdminUser, AdminPassword, MySqlSslMode.Preferred));
        try
        {
            await connection.OpenAsync(ct);
            return connection;
        }
        catch (MySqlException e)
        {
            await connection.DisposeAsync();
            throw new InvalidOperationException(
                $"The test MariaDB is not reachable at {Host}:{Port} as {AdminUser} ({e.Message}). Start it with scripts/start-mariadb.sh.", e);
        }
    }

    public static async Task<string> VersionAsync(CancellationToken ct)
    {
        await using var connection = await OpenAdminAsync(ct);
        await using var command = new MySqlCommand("SELECT VERSION()", connection);
        return Convert.ToString(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture) ?? "";
    }

    /// <summary>True when the credentials log in; an access-denied answer is false, other errors throw.</summary>
    public static async Task<bool> CanLoginAsync(string user, string password, MySqlSslMode sslMode, CancellationToken ct)
    {
        try
        {
            await using var connection = new MySqlConnection(ConnectionString(user, password, sslMode));
            await connection.OpenAsync(ct);
            return true;
        }
        catch (MySqlException e) when (e.ErrorCode is MySqlErrorCode.AccessDenied)
        {
            return false;
        }
    }

    /// <summary>Creates <paramref name="count"/> users <c>'tbXXXXXX_N'@'%'</c> with random passwords (50 per statement).</summary>
    public async Task<IReadOnlyList<(string User, string Password)>> CreateUsersAsync(int count, CancellationToken ct)
    {
        var created = new List<(string, string)>(count);
        await using var connection = await OpenAdminAsync(ct);
        foreach (var chunk in Enumerable.Range(0, count).Chunk(50))
        {
            var sql = new StringBuilder();
            await using var command = new MySqlCommand { Connection = connection };
            foreach (var i in chunk)
            {
                var user = _prefix + (_next++).ToString(CultureInfo.InvariantCulture);
                var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
                sql.Append(CultureInfo.InvariantCulture, $"CREATE USER @u{i} IDENTIFIED BY @p{i};");
                command.Parameters.AddWithValue($"@u{i}", user);
                command.Parameters.AddWithValue($"@p{i}", password);
                _users.Add(user);
                created.Add((user, password));
            }
            command.CommandText = sql.ToString();
            await command.ExecuteNonQueryAsync(ct);
        }
        return created;
    }

    /// <summary>Drops every user this instance created.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_users.Count == 0)
        {
            return;
        }
        await using var connection = await OpenAdminAsync(CancellationToken.None);
        foreach (var chunk in _users.Chunk(100))
        {
            await using var command = new MySqlCommand { Connection = connection };
            var names = new List<string>();
            for (var i = 0; i < chunk.Length; i++)
            {
                names.Add($"@u{i}");
                command.Parameters.AddWithValue($"@u{i}", chunk[i]);
            }
            command.CommandText = $"DROP USER IF EXISTS {string.Join(", ", names)}";
            await command.ExecuteNonQueryAsync();
        }
        Console.WriteLine($"Dropped the {_users.Count} MariaDB users the benchmark created ({_prefix}*).");
        _users.Clear();
    }
}
