namespace Tumbler.Core.Access;

// Request and response shapes of the admin (IAM) API, named and shaped as `aws iam` prints them.
// Dates are ISO 8601 strings, as the aws CLI shows IAM dates.

public sealed record UserNameRequest
{
    public string? UserName { get; init; }
}

public sealed record IamUser
{
    public string Path { get; init; } = "/";
    public required string UserName { get; init; }
    public required string UserId { get; init; }
    public required string Arn { get; init; }
    public required string CreateDate { get; init; }
}

public sealed record UserResponse
{
    public required IamUser User { get; init; }
}

public sealed record ListUsersResponse
{
    public required IReadOnlyList<IamUser> Users { get; init; }
}

public sealed record AccessKeyRequest
{
    public string? UserName { get; init; }
    public string? AccessKeyId { get; init; }
    public string? Status { get; init; }
}

public sealed record CreatedAccessKey
{
    public required string UserName { get; init; }
    public required string AccessKeyId { get; init; }
    public required string Status { get; init; }
    public required string SecretAccessKey { get; init; }
    public required string CreateDate { get; init; }
}

public sealed record CreateAccessKeyResponse
{
    public required CreatedAccessKey AccessKey { get; init; }
}

public sealed record AccessKeyMetadata
{
    public required string UserName { get; init; }
    public required string AccessKeyId { get; init; }
    public required string Status { get; init; }
    public required string CreateDate { get; init; }
}

public sealed record ListAccessKeysResponse
{
    public required IReadOnlyList<AccessKeyMetadata> AccessKeyMetadata { get; init; }
}

public sealed record UserPolicyRequest
{
    public string? UserName { get; init; }
    public string? PolicyName { get; init; }
    public string? PolicyDocument { get; init; }
}

public sealed record GetUserPolicyResponse
{
    public required string UserName { get; init; }
    public required string PolicyName { get; init; }
    public required string PolicyDocument { get; init; }
}

public sealed record ListUserPoliciesResponse
{
    public required IReadOnlyList<string> PolicyNames { get; init; }
}
