using System.Data.Common;
using Tumbler.Core.Storage;

namespace Tumbler.Storage.Sql;

/// <summary>The identity tables: users, access keys, inline user policies.</summary>
public abstract partial class SqlSecretStore
{
    public async Task<UserEntity?> FindUserAsync(string userName, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {UserColumns} FROM iam_users WHERE name = @name", ("@name", userName));
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadUser(reader) : null;
    }

    public async Task<IReadOnlyList<UserEntity>> ListUsersAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {UserColumns} FROM iam_users ORDER BY name");
        await using var reader = await command.ExecuteReaderAsync(ct);
        var users = new List<UserEntity>();
        while (await reader.ReadAsync(ct))
        {
            users.Add(ReadUser(reader));
        }
        return users;
    }

    public Task<bool> InsertUserAsync(UserEntity user, CancellationToken ct) =>
        ChangeConfigurationAsync(async sql =>
        {
            await using var command = Command(sql.Connection, sql.Transaction,
                "INSERT INTO iam_users (name, user_id, arn, created) VALUES (@name, @id, @arn, @created) ON CONFLICT (name) DO NOTHING",
                ("@name", user.UserName), ("@id", user.UserId), ("@arn", user.Arn), ("@created", user.CreatedDate.ToUnixTimeMilliseconds()));
            return await command.ExecuteNonQueryAsync(ct) == 1;
        }, ct);

    public Task<UserDeletion> DeleteUserAsync(string userName, CancellationToken ct) =>
        ChangeConfigurationAsync(async sql =>
        {
            var dependents = Convert.ToInt64(await Scalar(sql.Connection, sql.Transaction,
                "SELECT (SELECT COUNT(*) FROM iam_access_keys WHERE user_name = @name) + (SELECT COUNT(*) FROM iam_user_policies WHERE user_name = @name)",
                ct, ("@name", userName)));
            if (dependents > 0)
            {
                return UserDeletion.HasAccessKeysOrPolicies;
            }
            await using var command = Command(sql.Connection, sql.Transaction, "DELETE FROM iam_users WHERE name = @name", ("@name", userName));
            return await command.ExecuteNonQueryAsync(ct) == 1 ? UserDeletion.Deleted : UserDeletion.NotFound;
        }, ct);

    public async Task<AccessKeyEntity?> FindAccessKeyAsync(string accessKeyId, CancellationToken ct)
    {
        using var timer = StoreMetrics.Time();
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {AccessKeyColumns} FROM iam_access_keys WHERE access_key_id = @id", ("@id", accessKeyId));
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadAccessKey(reader) : null;
    }

    public async Task<IReadOnlyList<AccessKeyEntity>> ListAccessKeysAsync(string userName, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            $"SELECT {AccessKeyColumns} FROM iam_access_keys WHERE user_name = @name ORDER BY created", ("@name", userName));
        await using var reader = await command.ExecuteReaderAsync(ct);
        var keys = new List<AccessKeyEntity>();
        while (await reader.ReadAsync(ct))
        {
            keys.Add(ReadAccessKey(reader));
        }
        return keys;
    }

    public Task<AccessKeyInsertion> InsertAccessKeyAsync(AccessKeyEntity key, int maxPerUser, CancellationToken ct) =>
        ChangeConfigurationAsync(async sql =>
        {
            if (await Scalar(sql.Connection, sql.Transaction, "SELECT 1 FROM iam_users WHERE name = @name", ct, ("@name", key.UserName)) is null)
            {
                return AccessKeyInsertion.NoSuchUser;
            }
            var held = Convert.ToInt64(await Scalar(sql.Connection, sql.Transaction,
                "SELECT COUNT(*) FROM iam_access_keys WHERE user_name = @name", ct, ("@name", key.UserName)));
            if (held >= maxPerUser)
            {
                return AccessKeyInsertion.LimitExceeded;
            }
            await Execute(sql.Connection, sql.Transaction, $"INSERT INTO iam_access_keys ({AccessKeyColumns}) VALUES (@id, @name, @wrapped, @active, @created)",
                ct, ("@id", key.AccessKeyId), ("@name", key.UserName), ("@wrapped", key.WrappedSecret), ("@active", key.Active ? 1 : 0),
                ("@created", key.CreatedDate.ToUnixTimeMilliseconds()));
            return AccessKeyInsertion.Inserted;
        }, ct);

    public Task<bool> SetAccessKeyActiveAsync(string userName, string accessKeyId, bool active, CancellationToken ct) =>
        ChangeOneConfigurationRowAsync("UPDATE iam_access_keys SET active = @active WHERE access_key_id = @id AND user_name = @name", ct,
            ("@active", active ? 1 : 0), ("@id", accessKeyId), ("@name", userName));

    public Task<bool> DeleteAccessKeyAsync(string userName, string accessKeyId, CancellationToken ct) =>
        ChangeOneConfigurationRowAsync("DELETE FROM iam_access_keys WHERE access_key_id = @id AND user_name = @name", ct, ("@id", accessKeyId), ("@name", userName));

    public Task<bool> PutUserPolicyAsync(UserPolicyEntity policy, CancellationToken ct) =>
        ChangeConfigurationAsync(async sql =>
        {
            if (await Scalar(sql.Connection, sql.Transaction, "SELECT 1 FROM iam_users WHERE name = @name", ct, ("@name", policy.UserName)) is null)
            {
                return false;
            }
            await Execute(sql.Connection, sql.Transaction, """
                INSERT INTO iam_user_policies (user_name, policy_name, document) VALUES (@name, @policy, @document)
                ON CONFLICT (user_name, policy_name) DO UPDATE SET document = excluded.document
                """, ct, ("@name", policy.UserName), ("@policy", policy.PolicyName), ("@document", policy.Document));
            return true;
        }, ct);

    public Task<bool> DeleteUserPolicyAsync(string userName, string policyName, CancellationToken ct) =>
        ChangeOneConfigurationRowAsync("DELETE FROM iam_user_policies WHERE user_name = @name AND policy_name = @policy", ct, ("@name", userName), ("@policy", policyName));

    public async Task<IReadOnlyList<UserPolicyEntity>> ListUserPoliciesAsync(string userName, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            "SELECT user_name, policy_name, document FROM iam_user_policies WHERE user_name = @name ORDER BY policy_name", ("@name", userName));
        await using var reader = await command.ExecuteReaderAsync(ct);
        var policies = new List<UserPolicyEntity>();
        while (await reader.ReadAsync(ct))
        {
            policies.Add(new UserPolicyEntity(reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }
        return policies;
    }

    private const string UserColumns = "name, user_id, arn, created";
    private const string AccessKeyColumns = "access_key_id, user_name, wrapped_secret, active, created";

    private static UserEntity ReadUser(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.GetString(2), FromMs(r.GetInt64(3)));

    private static AccessKeyEntity ReadAccessKey(DbDataReader r) =>
        new(r.GetString(0), r.GetString(1), (byte[])r.GetValue(2), GetFlag(r, 3), FromMs(r.GetInt64(4)));
}
