using System.Globalization;
using System.Text.RegularExpressions;
using Tumbler.Core.Crypto;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Access;

/// <summary>
/// The admin API: users, their access keys (at most two each) and inline identity policies, with
/// IAM's names, limits and errors. Each call is authorized as <c>iam:&lt;Operation&gt;</c> on the user's ARN,
/// so only the root credential or a principal a policy allows may manage identities.
/// </summary>
public sealed partial class IdentityService(IIdentityStore store, KeyRing keys, AccessControl access, TimeProvider time, SecretsOptions options)
{
    public const int MaxAccessKeysPerUser = 2;
    /// <summary>IAM's quota on the aggregate size of a user's inline policies (whitespace not counted).</summary>
    public const int MaxUserPolicyCharacters = 2048;

    private int _generation;

    /// <summary>Changes after every successful write, so cached credentials and policies can be dropped at once.</summary>
    public int Generation => Volatile.Read(ref _generation);

    [GeneratedRegex(@"^[\w+=,.@-]+$")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^[\w]+$")]
    private static partial Regex AccessKeyIdPattern();

    public string UserArn(string userName) => $"arn:aws:iam::{options.AccountId}:user/{userName}";

    public async Task<UserResponse> CreateUserAsync(UserNameRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidUserName(request.UserName);
        Authorize(call, "CreateUser", UserArn(name));
        var user = new UserEntity(name, AccessKeys.NewUserId(), UserArn(name), time.GetUtcNow());
        if (!await store.InsertUserAsync(user, ct))
        {
            throw new ServiceException(IamErrors.EntityAlreadyExists, $"User with name {name} already exists.");
        }
        Changed();
        return new UserResponse { User = Shape(user) };
    }

    public async Task<UserResponse> GetUserAsync(UserNameRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidUserName(request.UserName);
        Authorize(call, "GetUser", UserArn(name));
        return new UserResponse { User = Shape(await FindUserAsync(name, ct)) };
    }

    public async Task<ListUsersResponse> ListUsersAsync(CallContext call, CancellationToken ct)
    {
        Authorize(call, "ListUsers", UserArn("*"));
        return new ListUsersResponse { Users = [.. (await store.ListUsersAsync(ct)).Select(Shape)] };
    }

    public async Task DeleteUserAsync(UserNameRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidUserName(request.UserName);
        Authorize(call, "DeleteUser", UserArn(name));
        switch (await store.DeleteUserAsync(name, ct))
        {
            case UserDeletion.NotFound:
                throw NoSuchUser(name);
            case UserDeletion.HasAccessKeysOrPolicies:
                throw new ServiceException(IamErrors.DeleteConflict, "Cannot delete entity, must delete access keys and policies first.");
        }
        Changed();
    }

    public async Task<CreateAccessKeyResponse> CreateAccessKeyAsync(AccessKeyRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidUserName(request.UserName);
        Authorize(call, "CreateAccessKey", UserArn(name));
        var (id, secret) = AccessKeys.NewPair();
        var key = new AccessKeyEntity(id, name, keys.SealCredential(id, secret), Active: true, time.GetUtcNow());
        switch (await store.InsertAccessKeyAsync(key, MaxAccessKeysPerUser, ct))
        {
            case AccessKeyInsertion.NoSuchUser:
                throw NoSuchUser(name);
            case AccessKeyInsertion.LimitExceeded:
                throw new ServiceException(IamErrors.LimitExceeded, $"Cannot exceed quota for AccessKeysPerUser: {MaxAccessKeysPerUser}");
        }
        Changed();
        return new CreateAccessKeyResponse
        {
            AccessKey = new CreatedAccessKey { UserName = name, AccessKeyId = id, Status = "Active", SecretAccessKey = secret, CreateDate = Iso(key.CreatedDate) },
        };
    }

    public async Task<ListAccessKeysResponse> ListAccessKeysAsync(UserNameRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidUserName(request.UserName);
        Authorize(call, "ListAccessKeys", UserArn(name));
        await FindUserAsync(name, ct);
        return new ListAccessKeysResponse
        {
            AccessKeyMetadata = [.. (await store.ListAccessKeysAsync(name, ct)).Select(k => new AccessKeyMetadata
            {
                UserName = k.UserName, AccessKeyId = k.AccessKeyId, Status = k.Active ? "Active" : "Inactive", CreateDate = Iso(k.CreatedDate),
            })],
        };
    }

    /// <summary>Active or Inactive; an inactive key is refused from the next request on.</summary>
    public async Task UpdateAccessKeyAsync(AccessKeyRequest request, CallContext call, CancellationToken ct)
    {
        new RequestValidator().Required(request.Status, "status").Enum(request.Status, "status", ["Active", "Inactive"]).ThrowIfInvalid(IamErrors.Validation);
        var (name, id) = await AuthorizedKeyAsync(request, call, "UpdateAccessKey", ct);
        if (!await store.SetAccessKeyActiveAsync(name, id, request.Status == "Active", ct))
        {
            throw NoSuchKey(id);
        }
        Changed();
    }

    public async Task DeleteAccessKeyAsync(AccessKeyRequest request, CallContext call, CancellationToken ct)
    {
        var (name, id) = await AuthorizedKeyAsync(request, call, "DeleteAccessKey", ct);
        if (!await store.DeleteAccessKeyAsync(name, id, ct))
        {
            throw NoSuchKey(id);
        }
        Changed();
    }

    public async Task PutUserPolicyAsync(UserPolicyRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidUserName(request.UserName);
        var policyName = ValidPolicyName(request.PolicyName);
        new RequestValidator().Required(request.PolicyDocument, "policyDocument").Length(request.PolicyDocument, "policyDocument", 1, 131072)
            .ThrowIfInvalid(IamErrors.Validation);
        Authorize(call, "PutUserPolicy", UserArn(name));
        try
        {
            PolicyDocument.Parse(request.PolicyDocument!, PolicyKind.Identity);
        }
        catch (MalformedPolicyException e)
        {
            throw new ServiceException(IamErrors.MalformedPolicyDocument, e.Message);
        }
        var others = (await store.ListUserPoliciesAsync(name, ct)).Where(p => p.PolicyName != policyName);
        if (others.Sum(p => CountedLength(p.Document)) + CountedLength(request.PolicyDocument!) > MaxUserPolicyCharacters)
        {
            throw new ServiceException(IamErrors.LimitExceeded, $"Maximum policy size of {MaxUserPolicyCharacters} bytes exceeded for user {name}");
        }
        if (!await store.PutUserPolicyAsync(new UserPolicyEntity(name, policyName, request.PolicyDocument!), ct))
        {
            throw NoSuchUser(name);
        }
        Changed();
    }

    public async Task<GetUserPolicyResponse> GetUserPolicyAsync(UserPolicyRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidUserName(request.UserName);
        var policyName = ValidPolicyName(request.PolicyName);
        Authorize(call, "GetUserPolicy", UserArn(name));
        var policy = (await store.ListUserPoliciesAsync(name, ct)).FirstOrDefault(p => p.PolicyName == policyName) ?? throw NoSuchPolicy(policyName);
        return new GetUserPolicyResponse { UserName = name, PolicyName = policyName, PolicyDocument = policy.Document };
    }

    public async Task DeleteUserPolicyAsync(UserPolicyRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidUserName(request.UserName);
        var policyName = ValidPolicyName(request.PolicyName);
        Authorize(call, "DeleteUserPolicy", UserArn(name));
        if (!await store.DeleteUserPolicyAsync(name, policyName, ct))
        {
            throw NoSuchPolicy(policyName);
        }
        Changed();
    }

    public async Task<ListUserPoliciesResponse> ListUserPoliciesAsync(UserNameRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidUserName(request.UserName);
        Authorize(call, "ListUserPolicies", UserArn(name));
        await FindUserAsync(name, ct);
        return new ListUserPoliciesResponse { PolicyNames = [.. (await store.ListUserPoliciesAsync(name, ct)).Select(p => p.PolicyName)] };
    }

    /// <summary>
    /// The principal an access key signs as, with its parsed policies; null when the key is unknown,
    /// inactive or unreadable (every one of them a denial).
    /// </summary>
    public async Task<(string SecretAccessKey, Principal Principal)?> ResolveAccessKeyAsync(string accessKeyId, CancellationToken ct)
    {
        var key = await store.FindAccessKeyAsync(accessKeyId, ct);
        if (key is not { Active: true })
        {
            return null;
        }
        string secret;
        try
        {
            secret = keys.OpenCredential(key.AccessKeyId, key.WrappedSecret);
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
        var policies = new List<PolicyDocument>();
        foreach (var policy in await store.ListUserPoliciesAsync(key.UserName, ct))
        {
            // Stored policies were validated on the way in; one that no longer parses grants nothing.
            try
            {
                policies.Add(PolicyDocument.Parse(policy.Document, PolicyKind.Identity));
            }
            catch (MalformedPolicyException)
            {
                return null;
            }
        }
        return (secret, Principal.User(UserArn(key.UserName), options.AccountId, key.AccessKeyId, policies));
    }

    private void Authorize(CallContext call, string operation, string resource) =>
        access.Require(call, new Demand("iam:" + operation), resource);

    private void Changed() => Interlocked.Increment(ref _generation);

    /// <summary>Drops what was derived from the store before now: another node changed users, keys or policies.</summary>
    public void ChangedElsewhere() => Changed();

    private async Task<UserEntity> FindUserAsync(string name, CancellationToken ct) =>
        await store.FindUserAsync(name, ct) ?? throw NoSuchUser(name);

    /// <summary>UserName may be left out (as with aws iam): the key's owner is meant; given, it must be the owner.</summary>
    /// <summary>
    /// The user whose key a call names, authorized before the key is looked up, so a caller denied the action learns
    /// nothing of other users' keys. As in IAM, without UserName the user is the caller's own (root: the key's owner).
    /// </summary>
    private async Task<(string UserName, string AccessKeyId)> AuthorizedKeyAsync(AccessKeyRequest request, CallContext call, string operation,
        CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.AccessKeyId, "accessKeyId").Length(request.AccessKeyId, "accessKeyId", 16, 128)
            .Pattern(request.AccessKeyId, "accessKeyId", AccessKeyIdPattern())
            .Length(request.UserName, "userName", 1, 64).Pattern(request.UserName, "userName", NamePattern())
            .ThrowIfInvalid(IamErrors.Validation);
        var id = request.AccessKeyId!;
        // Read before the check, but what the answer depends on before it does not: the named user, or the caller's own.
        var owner = (await store.FindAccessKeyAsync(id, ct))?.UserName;
        var user = request.UserName ?? (call.Principal.Unrestricted ? owner
            : call.Principal.AccessKeyId is { } own ? (await store.FindAccessKeyAsync(own, ct))?.UserName : null);
        if (user is null)
        {
            throw NoSuchKey(id);
        }
        Authorize(call, operation, UserArn(user));
        return owner == user ? (user, id) : throw NoSuchKey(id);
    }

    private static string ValidUserName(string? name)
    {
        new RequestValidator().Required(name, "userName").Length(name, "userName", 1, 64).Pattern(name, "userName", NamePattern())
            .ThrowIfInvalid(IamErrors.Validation);
        return name!;
    }

    private static string ValidPolicyName(string? name)
    {
        new RequestValidator().Required(name, "policyName").Length(name, "policyName", 1, 128).Pattern(name, "policyName", NamePattern())
            .ThrowIfInvalid(IamErrors.Validation);
        return name!;
    }

    private static int CountedLength(string document) => document.Count(c => !char.IsWhiteSpace(c));

    private static IamUser Shape(UserEntity user) =>
        new() { UserName = user.UserName, UserId = user.UserId, Arn = user.Arn, CreateDate = Iso(user.CreatedDate) };

    private static string Iso(DateTimeOffset date) => date.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'+00:00'", CultureInfo.InvariantCulture);

    private static ServiceException NoSuchUser(string name) => new(IamErrors.NoSuchEntity, $"The user with name {name} cannot be found.");
    private static ServiceException NoSuchKey(string id) => new(IamErrors.NoSuchEntity, $"The Access Key with id {id} cannot be found.");
    private static ServiceException NoSuchPolicy(string name) => new(IamErrors.NoSuchEntity, $"The user policy with name {name} cannot be found.");
}

/// <summary>IAM's error codes (they differ from Secrets Manager's).</summary>
public static class IamErrors
{
    public const string NoSuchEntity = "NoSuchEntity";
    public const string EntityAlreadyExists = "EntityAlreadyExists";
    public const string LimitExceeded = "LimitExceeded";
    public const string DeleteConflict = "DeleteConflict";
    public const string MalformedPolicyDocument = "MalformedPolicyDocument";
    public const string Validation = "ValidationError";
}
