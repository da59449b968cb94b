namespace Tumbler.Core.Storage;

/// <summary>A secret's metadata and its versions' metadata (values are read separately).</summary>
public sealed class SecretEntity
{
    /// <summary>The store's own row key; set by the store on insert.</summary>
    public long Key { get; set; }
    public required string Region { get; init; }
    public required string Name { get; init; }
    public required string Arn { get; init; }
    public string? Description { get; set; }
    /// <summary>The KmsKeyId the caller gave (echoed back); null means the default key.</summary>
    public string? KmsKeyId { get; set; }
    public string? Type { get; set; }
    public required DateTimeOffset CreatedDate { get; init; }
    public required DateTimeOffset LastChangedDate { get; set; }
    public DateTimeOffset? LastAccessedDate { get; set; }
    /// <summary>When a scheduled deletion purges the secret; null when not scheduled for deletion.</summary>
    public DateTimeOffset? DeletionDate { get; set; }
    /// <summary>Null when never tagged; an empty list once every tag was removed (AWS tells the two apart).</summary>
    public List<SecretTag>? Tags { get; set; }
    public List<VersionEntity> Versions { get; init; } = [];

    /// <summary>Null until rotation was first configured; false after CancelRotateSecret.</summary>
    public bool? RotationEnabled { get; set; }
    public string? RotationLambdaArn { get; set; }
    /// <summary>The rules as the caller gave them (echoed in DescribeSecret), as JSON.</summary>
    public string? RotationRulesJson { get; set; }
    public DateTimeOffset? LastRotatedDate { get; set; }
    /// <summary>When the next scheduled rotation becomes due (the start of its window); indexed for the scheduler.</summary>
    public DateTimeOffset? NextRotationStart { get; set; }
    /// <summary>The end of that window: the "on or before" date AWS reports as NextRotationDate.</summary>
    public DateTimeOffset? NextRotationDate { get; set; }
    /// <summary>The resource policy exactly as PutResourcePolicy received it; null when none is attached.</summary>
    public string? ResourcePolicy { get; set; }

    public bool IsScheduledForDeletion => DeletionDate is not null;

    /// <summary>A deep copy: what a caller changes in it does not reach the original (the store's read cache hands out copies of a secret it found).</summary>
    public SecretEntity Copy() => new()
    {
        Key = Key, Region = Region, Name = Name, Arn = Arn, Description = Description, KmsKeyId = KmsKeyId, Type = Type,
        CreatedDate = CreatedDate, LastChangedDate = LastChangedDate, LastAccessedDate = LastAccessedDate, DeletionDate = DeletionDate,
        Tags = Tags is null ? null : [.. Tags], Versions = Versions.ConvertAll(v => v.Copy()),
        RotationEnabled = RotationEnabled, RotationLambdaArn = RotationLambdaArn, RotationRulesJson = RotationRulesJson,
        LastRotatedDate = LastRotatedDate, NextRotationStart = NextRotationStart, NextRotationDate = NextRotationDate,
        ResourcePolicy = ResourcePolicy,
    };
}

public sealed record SecretTag(string Key, string Value);

public sealed class VersionEntity
{
    public required string VersionId { get; init; }
    /// <summary>Staging labels in the order they were attached.</summary>
    public List<string> Labels { get; init; } = [];
    public required DateTimeOffset CreatedDate { get; init; }
    public DateTimeOffset? LastAccessedDate { get; set; }
    /// <summary>Id of the KMS-like key that wraps this version's data key; null while the version has no value.</summary>
    public string? KeyId { get; set; }
    /// <summary>False for the placeholder RotateSecret creates before the value exists.</summary>
    public bool HasValue { get; set; }

    public bool IsDeprecated => Labels.Count == 0;

    public VersionEntity Copy() => new()
    {
        VersionId = VersionId, Labels = [.. Labels], CreatedDate = CreatedDate, LastAccessedDate = LastAccessedDate, KeyId = KeyId, HasValue = HasValue,
    };
}

/// <summary>A KMS-like key: its material is stored wrapped by the root key.</summary>
public sealed record KmsKeyEntity(
    string KeyId,
    string Arn,
    string Description,
    bool Enabled,
    DateTimeOffset CreatedDate,
    IReadOnlyList<KeyMaterialEntity> Materials,
    IReadOnlyList<string> Aliases,
    DateTimeOffset? DeletionDate = null);

/// <summary>
/// One version of a KMS-like key's material (1 at creation, one more per rotation; the newest wraps new data keys),
/// wrapped under the root key and, while a root key rotation is prepared, under the next root key too.
/// </summary>
public sealed record KeyMaterialEntity(int Version, DateTimeOffset CreatedDate, byte[] Wrapped, byte[]? WrappedNext = null);

/// <summary>How a SecretId resolves: by exact name or by exact ARN.</summary>
public readonly record struct SecretLookup(string? Name, string? Arn)
{
    public static SecretLookup ByName(string name) => new(name, null);
    public static SecretLookup ByArn(string arn) => new(null, arn);
}

/// <summary>
/// A rotation in progress, persisted after every step so that a crash resumes where it stopped.
/// A node runs it only while it holds the lease.
/// </summary>
public sealed class RotationJob
{
    public required long SecretKey { get; init; }
    public required string SecretArn { get; init; }
    public required string Region { get; init; }
    /// <summary>The pending version's id: the ClientRequestToken of every step.</summary>
    public required string Token { get; init; }
    public required string RotationToken { get; init; }
    /// <summary>False for RotateImmediately=false: only testSecret runs, against a copy of the current value.</summary>
    public required bool RotateImmediately { get; init; }
    /// <summary>How many of the steps have completed (0 to 4; a test-only rotation has one step).</summary>
    public int StepsDone { get; set; }
    public int Attempts { get; set; }
    public required DateTimeOffset StartedDate { get; init; }
    public required DateTimeOffset NextAttemptDate { get; set; }
    public string? LastError { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTimeOffset? LeaseExpires { get; set; }
}
