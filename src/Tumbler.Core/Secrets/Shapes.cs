namespace Tumbler.Core.Secrets;

// Request and response shapes of the Secrets Manager API, named and spelled as in the AWS model
// (spec §2) so the wire JSON maps onto them without renaming. Every member is optional here:
// required members and constraints are checked by RequestValidator, with the AWS messages.
// Timestamps are Timestamp (Timestamp.cs), epoch seconds on the wire.

public sealed record Tag
{
    public string? Key { get; init; }
    public string? Value { get; init; }
}

public sealed record Filter
{
    public string? Key { get; init; }
    public IReadOnlyList<string>? Values { get; init; }
}

public sealed record RotationRulesType
{
    public long? AutomaticallyAfterDays { get; init; }
    public string? Duration { get; init; }
    public string? ScheduleExpression { get; init; }
}

public sealed record ReplicaRegionType
{
    public string? Region { get; init; }
    public string? KmsKeyId { get; init; }
}

public sealed record ExternalSecretRotationMetadataItem
{
    public string? Key { get; init; }
    public string? Value { get; init; }
}

public sealed record CreateSecretRequest
{
    public string? Name { get; init; }
    public string? ClientRequestToken { get; init; }
    public string? Description { get; init; }
    public string? KmsKeyId { get; init; }
    public byte[]? SecretBinary { get; init; }
    public string? SecretString { get; init; }
    public IReadOnlyList<Tag>? Tags { get; init; }
    public IReadOnlyList<ReplicaRegionType>? AddReplicaRegions { get; init; }
    public bool? ForceOverwriteReplicaSecret { get; init; }
    public string? Type { get; init; }
}

public sealed record CreateSecretResponse
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
    public string? VersionId { get; init; }
}

public sealed record GetSecretValueRequest
{
    public string? SecretId { get; init; }
    public string? VersionId { get; init; }
    public string? VersionStage { get; init; }
}

public sealed record GetSecretValueResponse
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
    public required string VersionId { get; init; }
    public byte[]? SecretBinary { get; init; }
    public string? SecretString { get; init; }
    /// <summary>Absent for a deprecated (unlabelled) version.</summary>
    public IReadOnlyList<string>? VersionStages { get; init; }
    public required Timestamp CreatedDate { get; init; }
}

public sealed record BatchGetSecretValueRequest
{
    public IReadOnlyList<string>? SecretIdList { get; init; }
    public IReadOnlyList<Filter>? Filters { get; init; }
    public int? MaxResults { get; init; }
    public string? NextToken { get; init; }
}

public sealed record SecretValueEntry
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
    public required string VersionId { get; init; }
    public byte[]? SecretBinary { get; init; }
    public string? SecretString { get; init; }
    public IReadOnlyList<string>? VersionStages { get; init; }
    public required Timestamp CreatedDate { get; init; }
}

public sealed record APIErrorType
{
    public string? SecretId { get; init; }
    public string? ErrorCode { get; init; }
    public string? Message { get; init; }
}

public sealed record BatchGetSecretValueResponse
{
    public required IReadOnlyList<SecretValueEntry> SecretValues { get; init; }
    public string? NextToken { get; init; }
    public required IReadOnlyList<APIErrorType> Errors { get; init; }
}

public sealed record PutSecretValueRequest
{
    public string? SecretId { get; init; }
    public string? ClientRequestToken { get; init; }
    public byte[]? SecretBinary { get; init; }
    public string? SecretString { get; init; }
    public IReadOnlyList<string>? VersionStages { get; init; }
    public string? RotationToken { get; init; }
}

public sealed record PutSecretValueResponse
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
    public required string VersionId { get; init; }
    /// <summary>Absent when a repeated request names a version that has since lost every label.</summary>
    public IReadOnlyList<string>? VersionStages { get; init; }
}

public sealed record UpdateSecretRequest
{
    public string? SecretId { get; init; }
    public string? ClientRequestToken { get; init; }
    public string? Description { get; init; }
    public string? KmsKeyId { get; init; }
    public byte[]? SecretBinary { get; init; }
    public string? SecretString { get; init; }
    public string? Type { get; init; }
}

public sealed record UpdateSecretResponse
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
    public string? VersionId { get; init; }
}

public sealed record UpdateSecretVersionStageRequest
{
    public string? SecretId { get; init; }
    public string? VersionStage { get; init; }
    public string? RemoveFromVersionId { get; init; }
    public string? MoveToVersionId { get; init; }
}

/// <summary>The answer of the operations that only name the secret they acted on.</summary>
public sealed record SecretIdentity
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
}

public sealed record SecretIdRequest
{
    public string? SecretId { get; init; }
}

public sealed record DescribeSecretResponse
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
    public string? Type { get; init; }
    public string? Description { get; init; }
    public string? KmsKeyId { get; init; }
    public bool? RotationEnabled { get; init; }
    public string? RotationLambdaARN { get; init; }
    public RotationRulesType? RotationRules { get; init; }
    public Timestamp? LastRotatedDate { get; init; }
    public required Timestamp LastChangedDate { get; init; }
    public Timestamp? LastAccessedDate { get; init; }
    public Timestamp? DeletedDate { get; init; }
    public Timestamp? NextRotationDate { get; init; }
    public IReadOnlyList<Tag>? Tags { get; init; }
    public IReadOnlyDictionary<string, IReadOnlyList<string>>? VersionIdsToStages { get; init; }
    public string? OwningService { get; init; }
    public required Timestamp CreatedDate { get; init; }
    public string? PrimaryRegion { get; init; }
    public TumblerRotationStatus? TumblerRotationStatus { get; init; }
}

public sealed record ListSecretsRequest
{
    public bool? IncludePlannedDeletion { get; init; }
    public int? MaxResults { get; init; }
    public string? NextToken { get; init; }
    public IReadOnlyList<Filter>? Filters { get; init; }
    public string? SortOrder { get; init; }
    public string? SortBy { get; init; }
}

public sealed record SecretListEntry
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
    public string? Type { get; init; }
    public string? Description { get; init; }
    public string? KmsKeyId { get; init; }
    public bool? RotationEnabled { get; init; }
    public string? RotationLambdaARN { get; init; }
    public RotationRulesType? RotationRules { get; init; }
    public Timestamp? LastRotatedDate { get; init; }
    public required Timestamp LastChangedDate { get; init; }
    public Timestamp? LastAccessedDate { get; init; }
    public Timestamp? DeletedDate { get; init; }
    public Timestamp? NextRotationDate { get; init; }
    public IReadOnlyList<Tag>? Tags { get; init; }
    public IReadOnlyDictionary<string, IReadOnlyList<string>>? SecretVersionsToStages { get; init; }
    public string? OwningService { get; init; }
    public required Timestamp CreatedDate { get; init; }
    public string? PrimaryRegion { get; init; }
}

public sealed record ListSecretsResponse
{
    public required IReadOnlyList<SecretListEntry> SecretList { get; init; }
    public string? NextToken { get; init; }
}

public sealed record ListSecretVersionIdsRequest
{
    public string? SecretId { get; init; }
    public int? MaxResults { get; init; }
    public string? NextToken { get; init; }
    public bool? IncludeDeprecated { get; init; }
}

public sealed record SecretVersionsListEntry
{
    public required string VersionId { get; init; }
    public IReadOnlyList<string>? VersionStages { get; init; }
    public Timestamp? LastAccessedDate { get; init; }
    public required Timestamp CreatedDate { get; init; }
    public IReadOnlyList<string>? KmsKeyIds { get; init; }
}

public sealed record ListSecretVersionIdsResponse
{
    public required IReadOnlyList<SecretVersionsListEntry> Versions { get; init; }
    public string? NextToken { get; init; }
    public required string ARN { get; init; }
    public required string Name { get; init; }
}

public sealed record DeleteSecretRequest
{
    public string? SecretId { get; init; }
    public long? RecoveryWindowInDays { get; init; }
    public bool? ForceDeleteWithoutRecovery { get; init; }
}

public sealed record DeleteSecretResponse
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
    public required Timestamp DeletionDate { get; init; }
}

public sealed record GetRandomPasswordRequest
{
    public long? PasswordLength { get; init; }
    public string? ExcludeCharacters { get; init; }
    public bool? ExcludeNumbers { get; init; }
    public bool? ExcludePunctuation { get; init; }
    public bool? ExcludeUppercase { get; init; }
    public bool? ExcludeLowercase { get; init; }
    public bool? IncludeSpace { get; init; }
    public bool? RequireEachIncludedType { get; init; }
}

public sealed record GetRandomPasswordResponse
{
    public required string RandomPassword { get; init; }
}

public sealed record TagResourceRequest
{
    public string? SecretId { get; init; }
    public IReadOnlyList<Tag>? Tags { get; init; }
}

public sealed record UntagResourceRequest
{
    public string? SecretId { get; init; }
    public IReadOnlyList<string>? TagKeys { get; init; }
}

public sealed record RotateSecretRequest
{
    public string? SecretId { get; init; }
    public string? ClientRequestToken { get; init; }
    public string? RotationLambdaARN { get; init; }
    public RotationRulesType? RotationRules { get; init; }
    public IReadOnlyList<ExternalSecretRotationMetadataItem>? ExternalSecretRotationMetadata { get; init; }
    public string? ExternalSecretRotationRoleArn { get; init; }
    public bool? RotateImmediately { get; init; }
}

/// <summary>The answer of RotateSecret and CancelRotateSecret.</summary>
public sealed record RotationResponse
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
    public string? VersionId { get; init; }
}

/// <summary>
/// Not an AWS member: the state of a rotation that is running or failing, so an operator sees why a
/// rotation is stuck. AWS SDKs ignore members they don't know.
/// </summary>
public sealed record TumblerRotationStatus
{
    public required string VersionId { get; init; }
    public required string State { get; init; }
    public string? NextStep { get; init; }
    public int Attempts { get; init; }
    public string? LastError { get; init; }
    public Timestamp? NextAttemptDate { get; init; }
}

/// <summary>The empty answer of TagResource and UntagResource: <c>{}</c>.</summary>
public sealed record EmptyResponse
{
    public static readonly EmptyResponse Instance = new();
}

public sealed record PutResourcePolicyRequest
{
    public string? SecretId { get; init; }
    public string? ResourcePolicy { get; init; }
    public bool? BlockPublicPolicy { get; init; }
}

public sealed record GetResourcePolicyResponse
{
    public required string ARN { get; init; }
    public required string Name { get; init; }
    public string? ResourcePolicy { get; init; }
}

public sealed record ValidateResourcePolicyRequest
{
    public string? SecretId { get; init; }
    public string? ResourcePolicy { get; init; }
}

public sealed record ValidateResourcePolicyResponse
{
    public required bool PolicyValidationPassed { get; init; }
    public required IReadOnlyList<ValidationErrorsEntry> ValidationErrors { get; init; }
}

public sealed record ValidationErrorsEntry
{
    public string? CheckName { get; init; }
    public string? ErrorMessage { get; init; }
}
