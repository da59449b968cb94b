namespace Tumbler.Core.Storage;

/// <summary>
/// Users, their access keys and their inline identity policies. The secret half of an access key is
/// stored only wrapped (see KeyRing.SealCredential). Every method is one transaction.
/// </summary>
public interface IIdentityStore
{
    Task<UserEntity?> FindUserAsync(string userName, CancellationToken ct);
    Task<IReadOnlyList<UserEntity>> ListUsersAsync(CancellationToken ct);
    /// <summary>False when the name is taken.</summary>
    Task<bool> InsertUserAsync(UserEntity user, CancellationToken ct);
    Task<UserDeletion> DeleteUserAsync(string userName, CancellationToken ct);

    Task<AccessKeyEntity?> FindAccessKeyAsync(string accessKeyId, CancellationToken ct);
    Task<IReadOnlyList<AccessKeyEntity>> ListAccessKeysAsync(string userName, CancellationToken ct);
    /// <summary>Inserts the key unless the user is missing or already holds <paramref name="maxPerUser"/> keys.</summary>
    Task<AccessKeyInsertion> InsertAccessKeyAsync(AccessKeyEntity key, int maxPerUser, CancellationToken ct);
    /// <summary>False when the user holds no such key.</summary>
    Task<bool> SetAccessKeyActiveAsync(string userName, string accessKeyId, bool active, CancellationToken ct);
    /// <summary>False when the user holds no such key.</summary>
    Task<bool> DeleteAccessKeyAsync(string userName, string accessKeyId, CancellationToken ct);

    /// <summary>Adds or replaces the named policy; false when the user does not exist.</summary>
    Task<bool> PutUserPolicyAsync(UserPolicyEntity policy, CancellationToken ct);
    /// <summary>False when the user has no such policy.</summary>
    Task<bool> DeleteUserPolicyAsync(string userName, string policyName, CancellationToken ct);
    Task<IReadOnlyList<UserPolicyEntity>> ListUserPoliciesAsync(string userName, CancellationToken ct);
}

public sealed record UserEntity(string UserName, string UserId, string Arn, DateTimeOffset CreatedDate);

public sealed record AccessKeyEntity(string AccessKeyId, string UserName, byte[] WrappedSecret, bool Active, DateTimeOffset CreatedDate);

public sealed record UserPolicyEntity(string UserName, string PolicyName, string Document);

public enum UserDeletion { Deleted, NotFound, HasAccessKeysOrPolicies }

public enum AccessKeyInsertion { Inserted, NoSuchUser, LimitExceeded }
