using Tumbler.Core.Secrets;

namespace Tumbler.Core.Keys;

// Request and response shapes of the KMS-like keys admin API (X-Amz-Target: TumblerKMS.<Operation>,
// signed for the "kms" service), named and shaped as AWS KMS's.

public sealed record CreateKeyRequest
{
    public string? Description { get; init; }
}

/// <summary>DescribeKey, EnableKey, DisableKey, CancelKeyDeletion: KeyId is a key id, key ARN, alias name or alias ARN.</summary>
public sealed record KeyIdRequest
{
    public string? KeyId { get; init; }
}

public sealed record ScheduleKeyDeletionRequest
{
    public string? KeyId { get; init; }
    /// <summary>7 to 30 days; 30 when left out, as KMS.</summary>
    public int? PendingWindowInDays { get; init; }
}

public sealed record CreateAliasRequest
{
    public string? AliasName { get; init; }
    public string? TargetKeyId { get; init; }
}

public sealed record KeyMetadata
{
    public required string AWSAccountId { get; init; }
    public required string KeyId { get; init; }
    public required string Arn { get; init; }
    public required Timestamp CreationDate { get; init; }
    public required bool Enabled { get; init; }
    public required string Description { get; init; }
    /// <summary>Enabled, Disabled or PendingDeletion.</summary>
    public required string KeyState { get; init; }
    public Timestamp? DeletionDate { get; init; }
    public string KeyUsage { get; init; } = "ENCRYPT_DECRYPT";
    public string KeySpec { get; init; } = "SYMMETRIC_DEFAULT";
    public string Origin { get; init; } = "AWS_KMS";
    /// <summary>AWS for the default key (alias/aws/secretsmanager), CUSTOMER for keys made with CreateKey.</summary>
    public required string KeyManager { get; init; }
    /// <summary>Tumbler's addition: the aliases that name the key.</summary>
    public IReadOnlyList<string>? Aliases { get; init; }
    /// <summary>Tumbler's addition: how many material versions the key has (1 + its rotations).</summary>
    public int KeyMaterialCount { get; init; }
    /// <summary>Tumbler's addition: when the key's material was last rotated; absent when never.</summary>
    public Timestamp? LastRotationDate { get; init; }
}

public sealed record KeyMetadataResponse
{
    public required KeyMetadata KeyMetadata { get; init; }
}

public sealed record KeyListEntry
{
    public required string KeyId { get; init; }
    public required string KeyArn { get; init; }
    /// <summary>Tumbler's addition, as in <see cref="KeyMetadata"/>.</summary>
    public int KeyMaterialCount { get; init; }
    /// <summary>Tumbler's addition, as in <see cref="KeyMetadata"/>.</summary>
    public Timestamp? LastRotationDate { get; init; }
}

/// <summary>RotateKeyOnDemand's answer: KMS's KeyId, and Tumbler's material count and rotation date.</summary>
public sealed record RotateKeyOnDemandResponse
{
    public required string KeyId { get; init; }
    public int KeyMaterialCount { get; init; }
    public Timestamp? LastRotationDate { get; init; }
}

/// <summary>ListAliases: all aliases, or (KeyId given) those of one key.</summary>
public sealed record ListAliasesRequest
{
    public string? KeyId { get; init; }
}

public sealed record AliasListEntry
{
    public required string AliasName { get; init; }
    public required string AliasArn { get; init; }
    public required string TargetKeyId { get; init; }
}

public sealed record ListAliasesResponse
{
    public required IReadOnlyList<AliasListEntry> Aliases { get; init; }
    public bool Truncated { get; init; }
}

public sealed record UpdateAliasRequest
{
    public string? AliasName { get; init; }
    public string? TargetKeyId { get; init; }
}

public sealed record DeleteAliasRequest
{
    public string? AliasName { get; init; }
}

public sealed record ListKeysResponse
{
    public required IReadOnlyList<KeyListEntry> Keys { get; init; }
    public bool Truncated { get; init; }
}

public sealed record ScheduleKeyDeletionResponse
{
    public required string KeyId { get; init; }
    public required Timestamp DeletionDate { get; init; }
    public required string KeyState { get; init; }
    public required int PendingWindowInDays { get; init; }
}

public sealed record CancelKeyDeletionResponse
{
    public required string KeyId { get; init; }
}

public static class KeyErrors
{
    public const string NotFound = "NotFoundException";
    public const string InvalidState = "KMSInvalidStateException";
    public const string AlreadyExists = "AlreadyExistsException";
    public const string Validation = "ValidationException";
    public const string InvalidAliasName = "InvalidAliasNameException";
    public const string UnsupportedOperation = "UnsupportedOperationException";
    public const string Disabled = "DisabledException";
}
