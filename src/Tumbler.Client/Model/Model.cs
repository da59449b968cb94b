namespace Tumbler.Client.Model;

// Request and response classes named and shaped as AWSSDK.SecretsManager's (Amazon.SecretsManager.Model),
// so code written against Tumbler.Client compiles against the AWS SDK after changing the usings:
// mutable classes with settable properties, AWS member names (ARN, VersionIdsToStages...), dates as
// DateTime? in UTC, SecretBinary as a MemoryStream. Differences: enums the SDK models as ConstantClass
// (Filter.Key, SortOrder) are plain strings here (the SDK's convert implicitly from string), and errors
// are TumblerApiException with the AWS error code rather than one exception class per code.

public sealed class Tag
{
    public string? Key { get; set; }
    public string? Value { get; set; }
}

public sealed class Filter
{
    /// <summary>description, name, tag-key, tag-value, primary-region, owning-service or all.</summary>
    public string? Key { get; set; }
    public List<string>? Values { get; set; }
}

public sealed class RotationRulesType
{
    public long? AutomaticallyAfterDays { get; set; }
    public string? Duration { get; set; }
    public string? ScheduleExpression { get; set; }
}

public sealed class GetSecretValueRequest
{
    public string? SecretId { get; set; }
    public string? VersionId { get; set; }
    public string? VersionStage { get; set; }
}

public sealed class GetSecretValueResponse
{
    public string? ARN { get; set; }
    public string? Name { get; set; }
    public string? VersionId { get; set; }
    public string? SecretString { get; set; }
    public MemoryStream? SecretBinary { get; set; }
    public List<string> VersionStages { get; set; } = [];
    public DateTime? CreatedDate { get; set; }
}

public sealed class DescribeSecretRequest
{
    public string? SecretId { get; set; }
}

public sealed class DescribeSecretResponse
{
    public string? ARN { get; set; }
    public string? Name { get; set; }
    public string? Description { get; set; }
    public string? KmsKeyId { get; set; }
    public bool? RotationEnabled { get; set; }
    public string? RotationLambdaARN { get; set; }
    public RotationRulesType? RotationRules { get; set; }
    public DateTime? LastRotatedDate { get; set; }
    public DateTime? LastChangedDate { get; set; }
    public DateTime? LastAccessedDate { get; set; }
    public DateTime? DeletedDate { get; set; }
    public DateTime? NextRotationDate { get; set; }
    public DateTime? CreatedDate { get; set; }
    public List<Tag> Tags { get; set; } = [];
    public Dictionary<string, List<string>> VersionIdsToStages { get; set; } = [];
    public string? OwningService { get; set; }
    public string? PrimaryRegion { get; set; }
}

public sealed class ListSecretsRequest
{
    public List<Filter>? Filters { get; set; }
    public bool? IncludePlannedDeletion { get; set; }
    public int? MaxResults { get; set; }
    public string? NextToken { get; set; }
    /// <summary>asc or desc.</summary>
    public string? SortOrder { get; set; }
}

public sealed class SecretListEntry
{
    public string? ARN { get; set; }
    public string? Name { get; set; }
    public string? Description { get; set; }
    public string? KmsKeyId { get; set; }
    public bool? RotationEnabled { get; set; }
    public string? RotationLambdaARN { get; set; }
    public RotationRulesType? RotationRules { get; set; }
    public DateTime? LastRotatedDate { get; set; }
    public DateTime? LastChangedDate { get; set; }
    public DateTime? LastAccessedDate { get; set; }
    public DateTime? DeletedDate { get; set; }
    public DateTime? NextRotationDate { get; set; }
    public DateTime? CreatedDate { get; set; }
    public List<Tag> Tags { get; set; } = [];
    public Dictionary<string, List<string>> SecretVersionsToStages { get; set; } = [];
    public string? OwningService { get; set; }
    public string? PrimaryRegion { get; set; }
}

public sealed class ListSecretsResponse
{
    public List<SecretListEntry> SecretList { get; set; } = [];
    public string? NextToken { get; set; }
}

public sealed class PutSecretValueRequest
{
    public string? SecretId { get; set; }
    /// <summary>The new version's id; a random one is made when left null (as the SDKs do).</summary>
    public string? ClientRequestToken { get; set; }
    public string? SecretString { get; set; }
    public MemoryStream? SecretBinary { get; set; }
    public List<string>? VersionStages { get; set; }
    public string? RotationToken { get; set; }
}

public sealed class PutSecretValueResponse
{
    public string? ARN { get; set; }
    public string? Name { get; set; }
    public string? VersionId { get; set; }
    public List<string> VersionStages { get; set; } = [];
}

public sealed class CreateSecretRequest
{
    public string? Name { get; set; }
    /// <summary>The first version's id; a random one is made when left null (as the SDKs do).</summary>
    public string? ClientRequestToken { get; set; }
    public string? Description { get; set; }
    public string? KmsKeyId { get; set; }
    public string? SecretString { get; set; }
    public MemoryStream? SecretBinary { get; set; }
    public List<Tag>? Tags { get; set; }
    public bool? ForceOverwriteReplicaSecret { get; set; }
}

public sealed class CreateSecretResponse
{
    public string? ARN { get; set; }
    public string? Name { get; set; }
    public string? VersionId { get; set; }
}

public sealed class BatchGetSecretValueRequest
{
    public List<string>? SecretIdList { get; set; }
    public List<Filter>? Filters { get; set; }
    public int? MaxResults { get; set; }
    public string? NextToken { get; set; }
}

public sealed class SecretValueEntry
{
    public string? ARN { get; set; }
    public string? Name { get; set; }
    public string? VersionId { get; set; }
    public string? SecretString { get; set; }
    public MemoryStream? SecretBinary { get; set; }
    public List<string> VersionStages { get; set; } = [];
    public DateTime? CreatedDate { get; set; }
}

public sealed class APIErrorType
{
    public string? SecretId { get; set; }
    public string? ErrorCode { get; set; }
    public string? Message { get; set; }
}

public sealed class BatchGetSecretValueResponse
{
    public List<SecretValueEntry> SecretValues { get; set; } = [];
    public List<APIErrorType> Errors { get; set; } = [];
    public string? NextToken { get; set; }
}
