using System.Data.Common;
using Tumbler.Core.Storage;

namespace Tumbler.Storage.Sql;

/// <summary>The function tables: registered rotation functions and the session credentials issued to them.</summary>
public abstract partial class SqlSecretStore
{
    private const string FunctionColumns =
        "name, kind, command, python_handler, working_dir, url, timeout_seconds, max_concurrency, env_names, sealed_config, created, last_modified";
    private const string SessionColumns = "access_key_id, wrapped_secret, token_sha256, secret_arn, function_name, version_id, expires, created";

    public async Task<FunctionEntity?> FindFunctionAsync(string name, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {FunctionColumns} FROM functions WHERE name = @name", ("@name", name));
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadFunction(reader) : null;
    }

    public async Task<IReadOnlyList<FunctionEntity>> ListFunctionsAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {FunctionColumns} FROM functions ORDER BY name");
        await using var reader = await command.ExecuteReaderAsync(ct);
        var functions = new List<FunctionEntity>();
        while (await reader.ReadAsync(ct))
        {
            functions.Add(ReadFunction(reader));
        }
        return functions;
    }

    public Task<bool> InsertFunctionAsync(FunctionEntity function, CancellationToken ct) =>
        ChangeOneConfigurationRowAsync($"""
            INSERT INTO functions ({FunctionColumns})
            VALUES (@name, @kind, @command, @handler, @dir, @url, @timeout, @concurrency, @env, @sealed, @created, @modified)
            ON CONFLICT (name) DO NOTHING
            """, ct, FunctionParameters(function));

    public Task<bool> UpdateFunctionAsync(FunctionEntity function, CancellationToken ct) =>
        ChangeOneConfigurationRowAsync("""
            UPDATE functions SET kind = @kind, command = @command, python_handler = @handler, working_dir = @dir, url = @url,
                timeout_seconds = @timeout, max_concurrency = @concurrency, env_names = @env, sealed_config = @sealed,
                created = @created, last_modified = @modified
            WHERE name = @name
            """, ct, FunctionParameters(function));

    public Task<bool> DeleteFunctionAsync(string name, CancellationToken ct) =>
        ChangeOneConfigurationRowAsync("DELETE FROM functions WHERE name = @name", ct, ("@name", name));

    public Task InsertSessionAsync(SessionCredentialEntity session, DateTimeOffset purgeExpiredBefore, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            await Execute(sql.Connection, sql.Transaction, "DELETE FROM session_credentials WHERE expires < @now", ct,
                ("@now", purgeExpiredBefore.ToUnixTimeMilliseconds()));
            await Execute(sql.Connection, sql.Transaction,
                $"INSERT INTO session_credentials ({SessionColumns}) VALUES (@id, @wrapped, @token, @arn, @function, @version, @expires, @created)", ct,
                ("@id", session.AccessKeyId), ("@wrapped", session.WrappedSecret), ("@token", session.SessionTokenSha256), ("@arn", session.SecretArn),
                ("@function", session.FunctionName), ("@version", session.VersionId), ("@expires", session.Expiration.ToUnixTimeMilliseconds()),
                ("@created", session.CreatedDate.ToUnixTimeMilliseconds()));
            return true;
        }, ct);

    public async Task<SessionCredentialEntity?> FindSessionAsync(string accessKeyId, CancellationToken ct)
    {
        using var timer = StoreMetrics.Time();
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {SessionColumns} FROM session_credentials WHERE access_key_id = @id", ("@id", accessKeyId));
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new SessionCredentialEntity(reader.GetString(0), (byte[])reader.GetValue(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.GetString(5), FromMs(reader.GetInt64(6)), FromMs(reader.GetInt64(7)))
            : null;
    }

    // Sessions are never cached, so deleting one is not a configuration change other nodes need to hear of.
    public Task DeleteSessionAsync(string accessKeyId, CancellationToken ct) =>
        WriteAsync(async writer =>
        {
            var sql = (Writer)writer;
            await Execute(sql.Connection, sql.Transaction, "DELETE FROM session_credentials WHERE access_key_id = @id", ct, ("@id", accessKeyId));
            return true;
        }, ct);

    private static (string, object?)[] FunctionParameters(FunctionEntity f) =>
    [
        ("@name", f.Name), ("@kind", f.Kind), ("@command", f.Command), ("@handler", f.PythonHandler), ("@dir", f.WorkingDirectory), ("@url", f.Url),
        ("@timeout", f.TimeoutSeconds), ("@concurrency", f.MaxConcurrency), ("@env", StorageJsonContext.Labels([.. f.EnvironmentNames])),
        ("@sealed", f.SealedConfig), ("@created", f.CreatedDate.ToUnixTimeMilliseconds()), ("@modified", f.LastModified.ToUnixTimeMilliseconds()),
    ];

    private static FunctionEntity ReadFunction(DbDataReader r) => new(
        r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
        r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5), r.GetInt32(6), r.GetInt32(7),
        StorageJsonContext.Labels(r.GetString(8)),
        r.IsDBNull(9) ? null : (byte[])r.GetValue(9), FromMs(r.GetInt64(10)), FromMs(r.GetInt64(11)));
}
