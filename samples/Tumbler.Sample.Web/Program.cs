using System.Globalization;
using System.Text.Json;
using MySqlConnector;
using Tumbler.Client;

// Configuration from the environment: AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_SECRETS_MANAGER), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION (or a profile) as the aws CLI reads them; SECRET_ID names the database secret;
// SECRET_CACHE_TTL_SECONDS (default 300) how long a value is used before a DescribeSecret version check;
// DB_POOLING=false opens a new connection (a new login) for every query, which makes every query meet a rotation.
var builder = WebApplication.CreateBuilder(args);
var secretId = Environment.GetEnvironmentVariable("SECRET_ID") is { Length: > 0 } id
    ? id
    : throw new InvalidOperationException("Set SECRET_ID to the id of the database secret.");
var ttl = int.TryParse(Environment.GetEnvironmentVariable("SECRET_CACHE_TTL_SECONDS"), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
    ? TimeSpan.FromSeconds(seconds)
    : TimeSpan.FromMinutes(5);

builder.Services.AddSingleton<ISecretsManager>(_ => SecretsManagerClient.FromEnvironment());
builder.Services.AddSingleton(services => new SecretCache(services.GetRequiredService<ISecretsManager>(), new SecretCacheOptions { Ttl = ttl }));
var pooling = !string.Equals(Environment.GetEnvironmentVariable("DB_POOLING"), "false", StringComparison.OrdinalIgnoreCase);
builder.Services.AddSingleton(services => new Database(services.GetRequiredService<SecretCache>(), secretId, pooling));

var app = builder.Build();

app.MapGet("/now", async (Database database, CancellationToken ct) =>
{
    var now = await database.QueryAsync(async connection =>
    {
        await using var command = new MySqlCommand("SELECT NOW()", connection);
        return Convert.ToDateTime(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }, ct);
    return Results.Ok(new { now = now.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) });
});

app.MapGet("/health", () => Results.Text("ok"));

// How many logins the database refused (each one then retried with a newer password).
app.MapGet("/stats", (Database database) => Results.Ok(new { refusedLogins = database.RefusedLogins }));

app.Run();

/// <summary>
/// Opens connections with the login from the secret. When the database refuses it (ER_ACCESS_DENIED_ERROR, 1045),
/// <see cref="SecretCache.ExecuteWithRefreshOnAuthFailureAsync{T}"/> retries with the newest AWSCURRENT, then with
/// AWSPENDING (the window between setSecret and finishSecret of a rotation).
/// </summary>
internal sealed class Database(SecretCache cache, string secretId, bool pooling)
{
    private long _refusedLogins;

    public long RefusedLogins => Interlocked.Read(ref _refusedLogins);

    public Task<T> QueryAsync<T>(Func<MySqlConnection, Task<T>> query, CancellationToken ct) =>
        cache.ExecuteWithRefreshOnAuthFailureAsync(secretId, async secret =>
        {
            await using var connection = new MySqlConnection(ConnectionString(secret.SecretString
                ?? throw new InvalidOperationException($"Secret {secretId} has no SecretString."), pooling));
            await connection.OpenAsync(ct);
            return await query(connection);
        }, IsAuthFailure, ct);

    private bool IsAuthFailure(Exception e)
    {
        if (e is MySqlException { ErrorCode: MySqlErrorCode.AccessDenied })
        {
            Interlocked.Increment(ref _refusedLogins);
            return true;
        }
        return false;
    }

    /// <summary>The connection string for a secret shaped as the RDS rotation templates keep it.</summary>
    private static string ConnectionString(string secretJson, bool pooling)
    {
        using var document = JsonDocument.Parse(secretJson);
        var secret = document.RootElement;
        var port = secret.TryGetProperty("port", out var p)
            ? p.ValueKind == JsonValueKind.Number ? p.GetUInt32() : uint.Parse(p.GetString()!, CultureInfo.InvariantCulture)
            : 3306u;
        var ssl = secret.TryGetProperty("ssl", out var s) && (s.ValueKind == JsonValueKind.True
            || (s.ValueKind == JsonValueKind.String && bool.TryParse(s.GetString(), out var b) && b));
        return new MySqlConnectionStringBuilder
        {
            Server = secret.GetProperty("host").GetString(),
            Port = port,
            UserID = secret.GetProperty("username").GetString(),
            Password = secret.GetProperty("password").GetString(),
            Database = secret.TryGetProperty("dbname", out var db) ? db.GetString() : "",
            SslMode = ssl ? MySqlSslMode.VerifyFull : MySqlSslMode.Preferred,
            ConnectionTimeout = 5,
            Pooling = pooling,
        }.ConnectionString;
    }
}
