using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tumbler.Core.Access;
using Tumbler.Core.Crypto;
using Tumbler.Core.Passwords;
using Tumbler.Core.Rotation;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Secrets;

/// <summary>
/// The Secrets Manager operations with AWS semantics (spec §2 and §3): one method per operation.
/// Every change to versions or labels happens in one store transaction.
/// </summary>
public sealed partial class SecretsService(ISecretStore store, KeyRing keys, TimeProvider time, SecretsOptions options,
    IRotationFunctionRegistry? functions = null, RotationSignal? rotationSignal = null, AccessControl? accessControl = null)
{
    private readonly AccessControl _access = accessControl ?? new AccessControl(time);

    private const string MarkedForDeletion = "You can't perform this operation on the secret because it was marked for deletion.";
    private const string SecretNotFound = "Secrets Manager can't find the specified secret.";
    private const string TokenRequired = "You must provide a ClientRequestToken value. We recommend a UUID-type value.";
    private const string BothValues = "You can't specify both a binary secret value and a string secret value in the same secret.";

    public static readonly IReadOnlyList<string> SortByValues = ["created-date", "last-accessed-date", "last-changed-date", "name"];
    public static readonly IReadOnlyList<string> SortOrderValues = ["asc", "desc"];

    [GeneratedRegex(@"^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$")]
    private static partial Regex FilterValuePattern();

    [GeneratedRegex(@"^[a-zA-Z0-9\-]+$")]
    private static partial Regex RotationTokenPattern();

    public async Task<CreateSecretResponse> CreateSecretAsync(CreateSecretRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.Name, "name").Length(request.Name, "name", 1, 512)
            .Length(request.ClientRequestToken, "clientRequestToken", 32, 64)
            .Length(request.Description, "description", 0, 2048)
            .Length(request.KmsKeyId, "kmsKeyId", 0, 2048)
            .Length(request.Type, "type", 0, 256)
            .SecretValue(request.SecretString, request.SecretBinary, options.MaxSecretValueBytes)
            .Count(request.AddReplicaRegions, "addReplicaRegions", 1, int.MaxValue)
            .ThrowIfInvalid();
        ValidateTags(request.Tags);
        if (!SecretArn.IsValidName(request.Name!))
        {
            throw new ServiceException(ErrorCodes.Validation, SecretArn.InvalidNameMessage);
        }
        var value = ValueOf(request.SecretString, request.SecretBinary);
        if (value is not null && request.ClientRequestToken is null)
        {
            throw ServiceException.InvalidRequest(TokenRequired);
        }
        if (request.AddReplicaRegions is { Count: > 0 })
        {
            throw ServiceException.InvalidRequest("Replication to other regions is not supported: each Tumbler region is its own namespace.");
        }
        await keys.CatchUpAsync(store, request.KmsKeyId, null, ct);
        var keyId = keys.ResolveKeyId(request.KmsKeyId);
        var arn = SecretArn.Create(context.Region, options.AccountId, request.Name!);
        _access.Require(context, Demand.SecretsManager("CreateSecret")
            .With("secretsmanager:Name", request.Name).With("secretsmanager:Description", request.Description)
            .With("secretsmanager:KmsKeyId", request.KmsKeyId).WithRequestTags(request.Tags), arn);

        return await store.WriteAsync(async writer =>
        {
            await RequireMasterSecretReadableAsync(writer, value, context);
            var now = time.GetUtcNow();
            var existing = await writer.FindSecretAsync(context.Region, SecretLookup.ByName(request.Name!));
            if (existing is not null)
            {
                if (existing.IsScheduledForDeletion)
                {
                    throw ServiceException.InvalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.");
                }
                if (value is not null && existing.Versions.Find(v => v.VersionId == request.ClientRequestToken) is { } replayed)
                {
                    return await IsSameValueAsync(writer, existing, replayed, value.Value, request.ClientRequestToken!)
                        ? new CreateSecretResponse { ARN = existing.Arn, Name = existing.Name, VersionId = replayed.VersionId }
                        : throw TokenInUse(request.ClientRequestToken!, existing);
                }
                throw new ServiceException(ErrorCodes.ResourceExists, $"The operation failed because the secret {request.Name} already exists.");
            }

            var secret = new SecretEntity
            {
                Region = context.Region,
                Name = request.Name!,
                Arn = arn,
                Description = request.Description,
                KmsKeyId = string.IsNullOrEmpty(request.KmsKeyId) ? null : request.KmsKeyId,
                Type = request.Type,
                CreatedDate = now,
                LastChangedDate = now,
                Tags = request.Tags is { Count: > 0 } tags ? MergeTags([], tags) : null,
            };
            await writer.InsertSecretAsync(secret);
            if (value is null)
            {
                return new CreateSecretResponse { ARN = secret.Arn, Name = secret.Name };
            }
            var version = new VersionEntity { VersionId = request.ClientRequestToken!, CreatedDate = now, KeyId = keyId, HasValue = true };
            secret.Versions.Add(version);
            StagingLabels.AttachToNewVersion(secret, version, null);
            await writer.InsertVersionAsync(secret.Key, version, keys.Encrypt(keyId, value.Value, secret.Arn, version.VersionId));
            return new CreateSecretResponse { ARN = secret.Arn, Name = secret.Name, VersionId = version.VersionId };
        }, ct);
    }

    public async Task<GetSecretValueResponse> GetSecretValueAsync(GetSecretValueRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.SecretId, "secretId").Length(request.SecretId, "secretId", 1, 2048)
            .Length(request.VersionId, "versionId", 32, 64)
            .Length(request.VersionStage, "versionStage", 1, 256)
            .ThrowIfInvalid();
        var secret = await FindActiveAsync(request.SecretId!, context,
            Demand.SecretsManager("GetSecretValue").With("secretsmanager:VersionId", request.VersionId).With("secretsmanager:VersionStage", request.VersionStage), ct);
        return await ReadValueAsync(secret, request.VersionId, request.VersionStage, ct);
    }

    public async Task<BatchGetSecretValueResponse> BatchGetSecretValueAsync(BatchGetSecretValueRequest request, CallContext context, CancellationToken ct)
    {
        var validator = new RequestValidator()
            .Count(request.SecretIdList, "secretIdList", 1, 20)
            .Range(request.MaxResults, "maxResults", 1, 20)
            .Length(request.NextToken, "nextToken", 1, 4096);
        for (var i = 0; i < (request.SecretIdList?.Count ?? 0); i++)
        {
            validator.Required(request.SecretIdList![i], $"secretIdList.{i + 1}.member").Length(request.SecretIdList[i], $"secretIdList.{i + 1}.member", 1, 2048);
        }
        validator.ThrowIfInvalid();
        ValidateFilters(request.Filters);
        if ((request.SecretIdList is null) == (request.Filters is null))
        {
            throw ServiceException.InvalidParameter("Either 'SecretIdList' or 'Filters' must be provided, but not both.");
        }
        if (request.MaxResults is not null && request.Filters is null)
        {
            throw ServiceException.InvalidParameter("'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is provided.");
        }

        var values = new List<SecretValueEntry>();
        var errors = new List<APIErrorType>();
        string? nextToken = null;
        IEnumerable<(string Id, SecretEntity? Secret)> targets;
        if (request.SecretIdList is not null)
        {
            targets = request.SecretIdList.Select(id => (id, (SecretEntity?)null));
        }
        else
        {
            // Filters list secrets as ListSecrets does: the caller needs secretsmanager:ListSecrets too (as on AWS) and
            // sees only the secrets it may describe, so no ARN reaches a caller who could not list it.
            Authorize(context, Demand.SecretsManager("ListSecrets"), "*", null);
            var describe = Demand.SecretsManager("DescribeSecret");
            var listed = await store.ListSecretsAsync(context.Region, includeScheduledForDeletion: false, ct);
            var visible = listed.Where(s => _access.IsAllowed(context, describe, s.Arn, s) && SecretFilter.Matches(request.Filters!, Filterable(s)));
            var page = Paginate(visible, "created-date", "asc",
                request.MaxResults ?? 20, request.NextToken);
            nextToken = page.NextToken;
            targets = page.Items.Select(s => (s.Arn, (SecretEntity?)s));
        }
        // Each secret is a GetSecretValue: one the caller may not read is an error entry, the others are served.
        var read = Demand.SecretsManager("GetSecretValue");
        foreach (var (id, listedSecret) in targets)
        {
            try
            {
                var secret = listedSecret is null
                    ? await FindActiveAsync(id, context, read, ct)
                    : Authorized(context, read, id, listedSecret)!;
                var value = await ReadValueAsync(secret, null, null, ct);
                values.Add(new SecretValueEntry
                {
                    ARN = value.ARN, Name = value.Name, VersionId = value.VersionId, SecretString = value.SecretString,
                    SecretBinary = value.SecretBinary, VersionStages = value.VersionStages, CreatedDate = value.CreatedDate,
                });
            }
            catch (ServiceException e)
            {
                errors.Add(new APIErrorType { SecretId = id, ErrorCode = e.ErrorCode, Message = e.Message });
            }
        }
        return new BatchGetSecretValueResponse { SecretValues = values, Errors = errors, NextToken = nextToken };
    }

    public async Task<PutSecretValueResponse> PutSecretValueAsync(PutSecretValueRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.SecretId, "secretId").Length(request.SecretId, "secretId", 1, 2048)
            .Length(request.ClientRequestToken, "clientRequestToken", 32, 64)
            .SecretValue(request.SecretString, request.SecretBinary, options.MaxSecretValueBytes)
            .Count(request.VersionStages, "versionStages", 1, 20)
            .Length(request.RotationToken, "rotationToken", 36, 256, sensitive: true)
            .Pattern(request.RotationToken, "rotationToken", RotationTokenPattern(), sensitive: true)
            .ThrowIfInvalid();
        ValidateLabels(request.VersionStages, "versionStages");
        if (request.ClientRequestToken is null)
        {
            throw ServiceException.InvalidRequest(TokenRequired);
        }
        var value = ValueOf(request.SecretString, request.SecretBinary)
            ?? throw ServiceException.InvalidRequest("You must provide either SecretString or SecretBinary.");
        CheckSecretIdSyntax(request.SecretId!);
        var token = request.ClientRequestToken;

        return await store.WriteAsync(async writer =>
        {
            var secret = await FindForWriteAsync(writer, request.SecretId!, context,
                Demand.SecretsManager("PutSecretValue").With("secretsmanager:VersionStage", request.VersionStages));
            await RequireMasterSecretReadableAsync(writer, value, context);
            var now = time.GetUtcNow();
            var version = secret.Versions.Find(v => v.VersionId == token);
            if (version is { HasValue: true })
            {
                if (!await IsSameValueAsync(writer, secret, version, value, token))
                {
                    throw TokenInUse(token, secret);
                }
                return new PutSecretValueResponse { ARN = secret.Arn, Name = secret.Name, VersionId = token, VersionStages = StagesOf(version) };
            }

            var snapshot = LabelSnapshot(secret);
            var keyId = keys.ResolveKeyId(secret.KmsKeyId);
            var encrypted = keys.Encrypt(keyId, value, secret.Arn, token);
            if (version is not null)
            {
                // The valueless AWSPENDING placeholder of a rotation receives its value and keeps its labels.
                version.KeyId = keyId;
                version.HasValue = true;
                if (request.VersionStages is not null)
                {
                    StagingLabels.AttachToNewVersion(secret, version, request.VersionStages);
                }
                await writer.UpdateVersionAsync(secret.Key, version, encrypted);
            }
            else
            {
                version = new VersionEntity { VersionId = token, CreatedDate = now, KeyId = keyId, HasValue = true };
                secret.Versions.Add(version);
                StagingLabels.AttachToNewVersion(secret, version, request.VersionStages);
                await writer.InsertVersionAsync(secret.Key, version, encrypted);
            }
            await SaveLabelChangesAsync(writer, secret, snapshot, version);
            await PruneAsync(writer, secret, now);
            RescheduleAfterManualChange(secret, version, now);
            secret.LastChangedDate = now;
            await writer.UpdateSecretAsync(secret);
            return new PutSecretValueResponse { ARN = secret.Arn, Name = secret.Name, VersionId = token, VersionStages = [.. version.Labels] };
        }, ct);
    }

    public async Task<UpdateSecretResponse> UpdateSecretAsync(UpdateSecretRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.SecretId, "secretId").Length(request.SecretId, "secretId", 1, 2048)
            .Length(request.ClientRequestToken, "clientRequestToken", 32, 64)
            .Length(request.Description, "description", 0, 2048)
            .Length(request.KmsKeyId, "kmsKeyId", 0, 2048)
            .Length(request.Type, "type", 0, 256)
            .SecretValue(request.SecretString, request.SecretBinary, options.MaxSecretValueBytes)
            .ThrowIfInvalid();
        var value = ValueOf(request.SecretString, request.SecretBinary);
        if (value is not null && request.ClientRequestToken is null)
        {
            throw ServiceException.InvalidRequest(TokenRequired);
        }
        CheckSecretIdSyntax(request.SecretId!);
        if (request.KmsKeyId is not null)
        {
            await keys.CatchUpAsync(store, request.KmsKeyId, null, ct);
            keys.ResolveKeyId(request.KmsKeyId);
        }

        return await store.WriteAsync(async writer =>
        {
            var secret = await FindForWriteAsync(writer, request.SecretId!, context,
                Demand.SecretsManager("UpdateSecret").With("secretsmanager:Description", request.Description).With("secretsmanager:KmsKeyId", request.KmsKeyId));
            await RequireMasterSecretReadableAsync(writer, value, context);
            var now = time.GetUtcNow();
            if (request.Description is not null)
            {
                secret.Description = request.Description;
            }
            if (request.KmsKeyId is not null)
            {
                secret.KmsKeyId = request.KmsKeyId.Length == 0 ? null : request.KmsKeyId;
            }
            if (request.Type is not null)
            {
                secret.Type = request.Type;
            }
            string? createdVersionId = null;
            if (value is not null)
            {
                var token = request.ClientRequestToken!;
                var existing = secret.Versions.Find(v => v.VersionId == token);
                if (existing is not null)
                {
                    if (!existing.HasValue || !await IsSameValueAsync(writer, secret, existing, value.Value, token))
                    {
                        throw TokenInUse(token, secret);
                    }
                }
                else
                {
                    var snapshot = LabelSnapshot(secret);
                    var keyId = keys.ResolveKeyId(secret.KmsKeyId);
                    var version = new VersionEntity { VersionId = token, CreatedDate = now, KeyId = keyId, HasValue = true };
                    secret.Versions.Add(version);
                    StagingLabels.AttachToNewVersion(secret, version, null);
                    await writer.InsertVersionAsync(secret.Key, version, keys.Encrypt(keyId, value.Value, secret.Arn, token));
                    await SaveLabelChangesAsync(writer, secret, snapshot, version);
                    await PruneAsync(writer, secret, now);
                    RescheduleAfterManualChange(secret, version, now);
                }
                createdVersionId = token;
            }
            if (request.KmsKeyId is not null)
            {
                await ReencryptStagedVersionsAsync(writer, secret);
            }
            secret.LastChangedDate = now;
            await writer.UpdateSecretAsync(secret);
            return new UpdateSecretResponse { ARN = secret.Arn, Name = secret.Name, VersionId = createdVersionId };
        }, ct);
    }

    /// <summary>
    /// After UpdateSecret changed the key, the versions staged AWSCURRENT, AWSPENDING and AWSPREVIOUS are encrypted under
    /// the new one, as on AWS: the old key may then be disabled or deleted without losing them. Older versions keep
    /// theirs. An old key that can no longer decrypt fails the whole update, which then changes nothing.
    /// </summary>
    private async Task ReencryptStagedVersionsAsync(ISecretWriter writer, SecretEntity secret)
    {
        var keyId = keys.ResolveKeyId(secret.KmsKeyId);
        var staged = secret.Versions.Where(v => v.HasValue && v.KeyId != keyId
            && v.Labels.Any(label => label is StagingLabels.Current or StagingLabels.Pending or StagingLabels.Previous));
        foreach (var version in staged)
        {
            if (await writer.ReadValueAsync(secret.Key, version.VersionId) is not { } blob)
            {
                continue;
            }
            var value = keys.Decrypt(blob, secret.Arn, version.VersionId);
            version.KeyId = keyId;
            await writer.UpdateVersionAsync(secret.Key, version, keys.Encrypt(keyId, value, secret.Arn, version.VersionId));
        }
    }

    public async Task<SecretIdentity> UpdateSecretVersionStageAsync(UpdateSecretVersionStageRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.SecretId, "secretId").Length(request.SecretId, "secretId", 1, 2048)
            .Required(request.VersionStage, "versionStage").Length(request.VersionStage, "versionStage", 1, 256)
            .Length(request.RemoveFromVersionId, "removeFromVersionId", 32, 64)
            .Length(request.MoveToVersionId, "moveToVersionId", 32, 64)
            .ThrowIfInvalid();
        CheckSecretIdSyntax(request.SecretId!);
        var label = request.VersionStage!;

        return await store.WriteAsync(async writer =>
        {
            var secret = await FindForWriteAsync(writer, request.SecretId!, context,
                Demand.SecretsManager("UpdateSecretVersionStage").With("secretsmanager:VersionStage", request.VersionStage));
            var moveTo = request.MoveToVersionId is null ? null : VersionOrThrow(secret, request.MoveToVersionId);
            var removeFrom = request.RemoveFromVersionId is null ? null : VersionOrThrow(secret, request.RemoveFromVersionId);
            var holder = StagingLabels.Holder(secret, label);
            if (moveTo is null && removeFrom is null)
            {
                throw ServiceException.InvalidParameter("You must specify MoveToVersionId, RemoveFromVersionId, or both.");
            }
            if (holder is not null && holder != moveTo && removeFrom != holder)
            {
                throw ServiceException.InvalidParameter(removeFrom is null
                    ? $"The parameter RemoveFromVersionId can't be empty. Staging label {label} is currently attached to version {holder.VersionId}, so you must explicitly reference that version in RemoveFromVersionId."
                    : $"The parameter RemoveFromVersionId doesn't match. Staging label {label} is currently attached to version {holder.VersionId}, so you must explicitly reference that version in RemoveFromVersionId.");
            }
            if (removeFrom is not null && holder != removeFrom)
            {
                throw ServiceException.InvalidParameter($"Staging label {label} is not attached to version {removeFrom.VersionId}.");
            }
            if (moveTo is { HasValue: false } && label == StagingLabels.Current)
            {
                throw ServiceException.InvalidRequest($"Version {moveTo.VersionId} has no value yet, so it can't become AWSCURRENT.");
            }
            if (moveTo is null && label == StagingLabels.Current)
            {
                throw ServiceException.InvalidParameter(
                    "You can't remove the staging label AWSCURRENT without moving it to another version: a secret with versions always has a current version.");
            }

            var now = time.GetUtcNow();
            var snapshot = LabelSnapshot(secret);
            StagingLabels.Move(secret, label, moveTo);
            await SaveLabelChangesAsync(writer, secret, snapshot, null);
            await PruneAsync(writer, secret, now, refuseWhenFull: false);
            secret.LastChangedDate = now;
            await writer.UpdateSecretAsync(secret);
            return Identity(secret);
        }, ct);
    }

    public async Task<DescribeSecretResponse> DescribeSecretAsync(SecretIdRequest request, CallContext context, CancellationToken ct)
    {
        ValidateSecretId(request.SecretId);
        var secret = await FindAsync(request.SecretId!, context, Demand.SecretsManager("DescribeSecret"), ct);
        return new DescribeSecretResponse
        {
            ARN = secret.Arn,
            Name = secret.Name,
            Type = NullIfEmpty(secret.Type),
            Description = NullIfEmpty(secret.Description),
            KmsKeyId = secret.KmsKeyId,
            RotationEnabled = secret.RotationEnabled,
            RotationLambdaARN = secret.RotationLambdaArn,
            RotationRules = ReportedRulesOf(secret),
            LastRotatedDate = secret.LastRotatedDate,
            NextRotationDate = secret.RotationEnabled == true ? secret.NextRotationDate : null,
            TumblerRotationStatus = StatusOf(await store.FindRotationAsync(secret.Key, ct)),
            LastChangedDate = secret.LastChangedDate,
            LastAccessedDate = secret.LastAccessedDate,
            DeletedDate = secret.DeletionDate,
            Tags = TagsOf(secret),
            VersionIdsToStages = VersionsToStages(secret),
            CreatedDate = secret.CreatedDate,
        };
    }

    public async Task<ListSecretsResponse> ListSecretsAsync(ListSecretsRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Range(request.MaxResults, "maxResults", 1, 100)
            .Length(request.NextToken, "nextToken", 1, 4096)
            .Enum(request.SortOrder, "sortOrder", SortOrderValues)
            .Enum(request.SortBy, "sortBy", SortByValues)
            .ThrowIfInvalid();
        ValidateFilters(request.Filters);
        Authorize(context, Demand.SecretsManager("ListSecrets"), "*", null);
        var page = await ListPageAsync(request, context, ct);
        return new ListSecretsResponse
        {
            SecretList = page.Items.Select(secret => ListEntries.GetValue(secret, ListEntry)).ToList(),
            NextToken = page.NextToken,
        };
    }

    /// <summary>
    /// Each listed secret's entry, built once per secret object: a page the store's read cache holds is the same
    /// read-only objects for every request (see <see cref="ISecretStore.ListSecretsPageAsync"/>), and the entry is also
    /// what the endpoint keys the entry's rendered JSON to. An entry goes when its secret object does.
    /// </summary>
    private static readonly ConditionalWeakTable<SecretEntity, SecretListEntry> ListEntries = new();

    private static SecretListEntry ListEntry(SecretEntity secret) => new()
    {
        ARN = secret.Arn,
        Name = secret.Name,
        Type = NullIfEmpty(secret.Type),
        Description = NullIfEmpty(secret.Description),
        KmsKeyId = secret.KmsKeyId,
        RotationEnabled = secret.RotationEnabled,
        RotationLambdaARN = secret.RotationLambdaArn,
        RotationRules = ReportedRulesOf(secret),
        LastRotatedDate = secret.LastRotatedDate,
        NextRotationDate = secret.RotationEnabled == true ? secret.NextRotationDate : null,
        LastChangedDate = secret.LastChangedDate,
        LastAccessedDate = secret.LastAccessedDate,
        DeletedDate = secret.DeletionDate,
        Tags = TagsOf(secret),
        SecretVersionsToStages = VersionsToStages(secret),
        CreatedDate = secret.CreatedDate,
    };

    public async Task<ListSecretVersionIdsResponse> ListSecretVersionIdsAsync(ListSecretVersionIdsRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.SecretId, "secretId").Length(request.SecretId, "secretId", 1, 2048)
            .Range(request.MaxResults, "maxResults", 1, 100)
            .Length(request.NextToken, "nextToken", 1, 4096)
            .ThrowIfInvalid();
        CheckSecretIdSyntax(request.SecretId!);
        var secret = await FindAsync(request.SecretId!, context, Demand.SecretsManager("ListSecretVersionIds"), ct);
        // Newest first; the token is the position (creation time, id) of the last version returned, so
        // versions added, pruned or relabelled between pages neither break nor repeat the listing.
        IEnumerable<VersionEntity> versions = secret.Versions
            .Where(v => v.HasValue || !v.IsDeprecated)
            .Where(v => request.IncludeDeprecated == true || !v.IsDeprecated)
            .OrderByDescending(v => v.CreatedDate).ThenBy(v => v.VersionId, StringComparer.Ordinal);
        if (request.NextToken is not null)
        {
            var parts = DecodeToken(request.NextToken).Split('\n');
            if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var afterTicks))
            {
                throw InvalidNextToken();
            }
            versions = versions.Where(v => v.CreatedDate.UtcTicks < afterTicks
                || (v.CreatedDate.UtcTicks == afterTicks && string.CompareOrdinal(v.VersionId, parts[1]) > 0));
        }
        var size = request.MaxResults ?? 100;
        var fetched = versions.Take(size + 1).ToList();
        var page = fetched.Take(size).ToList();
        return new ListSecretVersionIdsResponse
        {
            ARN = secret.Arn,
            Name = secret.Name,
            Versions = page.Select(v => new SecretVersionsListEntry
            {
                VersionId = v.VersionId,
                VersionStages = StagesOf(v),
                CreatedDate = v.CreatedDate,
                LastAccessedDate = v.LastAccessedDate,
                KmsKeyIds = v.KeyId is null ? null : [keys.DisplayKeyId(v.KeyId)],
            }).ToList(),
            NextToken = fetched.Count > size ? EncodeToken($"{page[^1].CreatedDate.UtcTicks}\n{page[^1].VersionId}") : null,
        };
    }

    public async Task<DeleteSecretResponse> DeleteSecretAsync(DeleteSecretRequest request, CallContext context, CancellationToken ct)
    {
        ValidateSecretId(request.SecretId);
        var force = request.ForceDeleteWithoutRecovery == true;
        if (force && request.RecoveryWindowInDays is not null)
        {
            throw ServiceException.InvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
        }
        if (request.RecoveryWindowInDays is < 7 or > 30)
        {
            throw ServiceException.InvalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).");
        }

        return await store.WriteAsync(async writer =>
        {
            var now = time.GetUtcNow();
            var secret = Authorized(context, Demand.SecretsManager("DeleteSecret"), request.SecretId!,
                await FindOrNullAsync(writer.FindSecretAsync, request.SecretId!, context));
            if (secret is null)
            {
                if (!force)
                {
                    throw ServiceException.NotFound(SecretNotFound);
                }
                // AWS answers a forced delete of a missing secret as if it existed.
                var arn = request.SecretId!.StartsWith("arn:", StringComparison.Ordinal)
                    ? request.SecretId
                    : SecretArn.Create(context.Region, options.AccountId, request.SecretId);
                return new DeleteSecretResponse { ARN = arn, Name = request.SecretId, DeletionDate = now };
            }
            if (force)
            {
                await writer.DeleteSecretAsync(secret.Key);
                return new DeleteSecretResponse { ARN = secret.Arn, Name = secret.Name, DeletionDate = now };
            }
            if (secret.IsScheduledForDeletion)
            {
                throw ServiceException.InvalidRequest(MarkedForDeletion);
            }
            secret.DeletionDate = now.AddDays(request.RecoveryWindowInDays ?? 30);
            secret.LastChangedDate = now;
            await writer.UpdateSecretAsync(secret);
            return new DeleteSecretResponse { ARN = secret.Arn, Name = secret.Name, DeletionDate = secret.DeletionDate.Value };
        }, ct);
    }

    public async Task<SecretIdentity> RestoreSecretAsync(SecretIdRequest request, CallContext context, CancellationToken ct)
    {
        ValidateSecretId(request.SecretId);
        return await store.WriteAsync(async writer =>
        {
            var secret = Authorized(context, Demand.SecretsManager("RestoreSecret"), request.SecretId!,
                await FindOrNullAsync(writer.FindSecretAsync, request.SecretId!, context)) ?? throw ServiceException.NotFound(SecretNotFound);
            if (secret.IsScheduledForDeletion)
            {
                secret.DeletionDate = null;
                secret.LastChangedDate = time.GetUtcNow();
                await writer.UpdateSecretAsync(secret);
            }
            return Identity(secret);
        }, ct);
    }

    public async Task TagResourceAsync(TagResourceRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.SecretId, "secretId").Length(request.SecretId, "secretId", 1, 2048)
            .Required(request.Tags, "tags")
            .ThrowIfInvalid();
        ValidateTags(request.Tags);
        CheckSecretIdSyntax(request.SecretId!);
        await store.WriteAsync(async writer =>
        {
            var secret = await FindForWriteAsync(writer, request.SecretId!, context,
                Demand.SecretsManager("TagResource").WithRequestTags(request.Tags));
            var tags = MergeTags(secret.Tags ?? [], request.Tags!);
            if (tags.Count > options.MaxTagsPerSecret)
            {
                throw ServiceException.InvalidParameter($"A secret can have at most {options.MaxTagsPerSecret} tags.");
            }
            secret.Tags = tags;
            secret.LastChangedDate = time.GetUtcNow();
            await writer.UpdateSecretAsync(secret);
            return true;
        }, ct);
    }

    public async Task UntagResourceAsync(UntagResourceRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.SecretId, "secretId").Length(request.SecretId, "secretId", 1, 2048)
            .Required(request.TagKeys, "tagKeys")
            .ThrowIfInvalid();
        var validator = new RequestValidator();
        for (var i = 0; i < request.TagKeys!.Count; i++)
        {
            validator.Required(request.TagKeys[i], $"tagKeys.{i + 1}.member").Length(request.TagKeys[i], $"tagKeys.{i + 1}.member", 1, 128);
        }
        validator.ThrowIfInvalid();
        CheckSecretIdSyntax(request.SecretId!);
        await store.WriteAsync(async writer =>
        {
            var secret = await FindForWriteAsync(writer, request.SecretId!, context,
                Demand.SecretsManager("UntagResource").With("aws:TagKeys", request.TagKeys));
            if (secret.Tags is not null)
            {
                secret.Tags.RemoveAll(t => request.TagKeys.Contains(t.Key));
                secret.LastChangedDate = time.GetUtcNow();
                await writer.UpdateSecretAsync(secret);
            }
            return true;
        }, ct);
    }

    public GetRandomPasswordResponse GetRandomPassword(GetRandomPasswordRequest request, CallContext context)
    {
        Authorize(context, Demand.SecretsManager("GetRandomPassword"), "*", null);
        new RequestValidator()
            .Range(request.PasswordLength, "passwordLength", 1, 4096)
            .Length(request.ExcludeCharacters, "excludeCharacters", 0, 4096)
            .ThrowIfInvalid();
        return new GetRandomPasswordResponse { RandomPassword = PasswordGenerator.Generate(PasswordRules.From(request)) };
    }

    /// <summary>Purges secrets whose recovery window has ended.</summary>
    public Task<IReadOnlyList<string>> PurgeExpiredDeletionsAsync(CancellationToken ct) => store.PurgeDeletedAsync(time.GetUtcNow(), ct);

    // --- reading values ---------------------------------------------------------------------------

    private async Task<GetSecretValueResponse> ReadValueAsync(SecretEntity secret, string? versionId, string? versionStage, CancellationToken ct)
    {
        VersionEntity? version;
        if (versionId is not null)
        {
            version = secret.Versions.Find(v => v.VersionId == versionId);
            if (version is null || (versionStage is null && !version.HasValue))
            {
                throw ServiceException.NotFound($"Secrets Manager can't find the specified secret value for VersionId: {versionId}");
            }
            if (versionStage is not null && !version.Labels.Contains(versionStage))
            {
                throw ServiceException.InvalidRequest("You provided a VersionStage that is not associated to the provided VersionId.");
            }
        }
        else
        {
            version = StagingLabels.Holder(secret, versionStage ?? StagingLabels.Current);
        }
        if (version is not { HasValue: true })
        {
            throw ServiceException.NotFound($"Secrets Manager can't find the specified secret value for staging label: {versionStage ?? StagingLabels.Current}");
        }
        var blob = await store.ReadValueAsync(secret.Key, version.VersionId, ct)
            ?? throw ServiceException.NotFound($"Secrets Manager can't find the specified secret value for VersionId: {version.VersionId}");
        await keys.CatchUpAsync(store, null, blob, ct);
        var value = keys.Decrypt(blob, secret.Arn, version.VersionId);

        var today = new DateTimeOffset(time.GetUtcNow().UtcDateTime.Date, TimeSpan.Zero);
        if (secret.LastAccessedDate != today || version.LastAccessedDate != today)
        {
            try
            {
                await store.SetLastAccessedAsync(secret.Key, version.VersionId, today, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Best effort: a busy or full store must not fail a read that already succeeded; the next read records it.
            }
        }
        return new GetSecretValueResponse
        {
            ARN = secret.Arn,
            Name = secret.Name,
            VersionId = version.VersionId,
            SecretString = value.Text,
            SecretBinary = value.Binary,
            VersionStages = StagesOf(version),
            CreatedDate = version.CreatedDate,
        };
    }

    private async Task<bool> IsSameValueAsync(ISecretWriter writer, SecretEntity secret, VersionEntity version, SecretPlaintext value, string versionId)
    {
        var blob = await writer.ReadValueAsync(secret.Key, version.VersionId);
        return blob is not null && keys.Decrypt(blob, secret.Arn, versionId).SameAs(value);
    }

    // --- resolving SecretId -----------------------------------------------------------------------

    // Each lookup authorizes before it reports: a caller not allowed the action learns nothing, not even
    // whether the secret exists (AccessDenied comes before ResourceNotFound, as on AWS).

    private async Task<SecretEntity> FindAsync(string secretId, CallContext context, Demand demand, CancellationToken ct)
    {
        var secret = await FindOrNullAsync(lookup => store.FindSecretAsync(context.Region, lookup, ct), secretId, context);
        return Authorized(context, demand, secretId, secret) ?? throw ServiceException.NotFound(SecretNotFound);
    }

    private async Task<SecretEntity> FindActiveAsync(string secretId, CallContext context, Demand demand, CancellationToken ct)
    {
        CheckSecretIdSyntax(secretId);
        var secret = await FindAsync(secretId, context, demand, ct);
        return secret.IsScheduledForDeletion ? throw ServiceException.InvalidRequest(MarkedForDeletion) : secret;
    }

    private async Task<SecretEntity> FindForWriteAsync(ISecretWriter writer, string secretId, CallContext context, Demand demand)
    {
        var secret = await FindOrNullAsync(writer.FindSecretAsync, secretId, context);
        secret = Authorized(context, demand, secretId, secret) ?? throw ServiceException.NotFound(SecretNotFound);
        return secret.IsScheduledForDeletion ? throw ServiceException.InvalidRequest(MarkedForDeletion) : secret;
    }

    /// <summary>
    /// Checks the demand against the secret (or, when it does not exist, against the ARN the id names) and passes the
    /// lookup through. A denial names the id as given, as AWS's does: the secret's own ARN (its random suffix) would
    /// tell a caller denied the action that the secret exists.
    /// </summary>
    private SecretEntity? Authorized(CallContext context, Demand demand, string secretId, SecretEntity? secret)
    {
        _access.Require(context, demand, secret?.Arn ?? (secretId.StartsWith("arn:", StringComparison.Ordinal)
            ? secretId : SecretArn.Prefix(context.Region, options.AccountId) + secretId), secret, shownAs: secretId);
        return secret;
    }

    private void Authorize(CallContext context, Demand demand, string resource, SecretEntity? secret) =>
        _access.Require(context, demand, resource, secret);

    private Task<SecretEntity?> FindOrNullAsync(Func<string, SecretLookup, Task<SecretEntity?>> find, string secretId, CallContext context) =>
        FindOrNullAsync(lookup => find(context.Region, lookup), secretId, context);

    /// <summary>Name, full ARN, or partial ARN (spec §3.1).</summary>
    private async Task<SecretEntity?> FindOrNullAsync(Func<SecretLookup, Task<SecretEntity?>> find, string secretId, CallContext context)
    {
        if (!secretId.StartsWith("arn:", StringComparison.Ordinal))
        {
            return await find(SecretLookup.ByName(secretId));
        }
        var byArn = await find(SecretLookup.ByArn(secretId));
        if (byArn is not null)
        {
            return byArn;
        }
        var name = SecretArn.PartialArnName(secretId, context.Region, options.AccountId);
        return name is null ? null : await find(SecretLookup.ByName(name));
    }

    /// <summary>
    /// A value naming a superuser secret (<c>masterarn</c>, read by the alternating-users rotators) is written only by a
    /// caller who may read that secret. The built-in rotation functions read it with Tumbler's authority, so otherwise a
    /// caller allowed to write and rotate their own secret could have Tumbler change any login that superuser reaches and
    /// then read the new password from their secret. (AWS leaves this to each rotation Lambda's role; here every secret
    /// shares the built-in functions.)
    /// </summary>
    private async Task RequireMasterSecretReadableAsync(ISecretWriter writer, SecretPlaintext? value, CallContext context)
    {
        if (context.Principal.Unrestricted || MasterSecretIdOf(value) is not { } master)
        {
            return;
        }
        var secret = await FindOrNullAsync(writer.FindSecretAsync, master, context);
        Authorized(context, Demand.SecretsManager("GetSecretValue"), master, secret);
    }

    /// <summary>The <c>masterarn</c> a JSON object value names (every occurrence is the same to the rotators: they refuse duplicates), or null.</summary>
    private static string? MasterSecretIdOf(SecretPlaintext? value)
    {
        if (value?.Text is not { } text || !text.AsSpan().TrimStart().StartsWith("{", StringComparison.Ordinal))
        {
            return null;
        }
        try
        {
            using var json = JsonDocument.Parse(text);
            foreach (var member in json.RootElement.EnumerateObject())
            {
                if (member.NameEquals("masterarn") && member.Value.ValueKind == JsonValueKind.String)
                {
                    return member.Value.GetString();
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // Not JSON the rotators could read either: it names no superuser secret.
        }
        return null;
    }

    private void ValidateSecretId(string? secretId)
    {
        new RequestValidator().Required(secretId, "secretId").Length(secretId, "secretId", 1, 2048).ThrowIfInvalid();
        CheckSecretIdSyntax(secretId!);
    }

    /// <summary>
    /// A SecretId that is not an ARN must be made of name characters; checked before existence (spec §1.4). Its length is
    /// the model's (1-2048): one longer than a name can be is not found.
    /// </summary>
    private static void CheckSecretIdSyntax(string secretId)
    {
        if (secretId.Length == 0 || (!secretId.StartsWith("arn:", StringComparison.Ordinal) && !SecretArn.HasOnlyNameCharacters(secretId)))
        {
            throw new ServiceException(ErrorCodes.Validation, SecretArn.InvalidNameMessage);
        }
    }

    // --- labels and versions ----------------------------------------------------------------------

    private static Dictionary<string, string> LabelSnapshot(SecretEntity secret) =>
        secret.Versions.ToDictionary(v => v.VersionId, v => string.Join('\n', v.Labels));

    /// <summary>
    /// Writes the labels of every version whose labels changed (except <paramref name="alreadyWritten"/>), unless the
    /// change takes AWSPENDING off a rotation past setSecret.
    /// </summary>
    private static async Task SaveLabelChangesAsync(ISecretWriter writer, SecretEntity secret, Dictionary<string, string> snapshot, VersionEntity? alreadyWritten)
    {
        await RefuseToStrandRotationAsync(writer, secret, snapshot);
        foreach (var version in secret.Versions)
        {
            if (version != alreadyWritten && snapshot.TryGetValue(version.VersionId, out var before) && before != string.Join('\n', version.Labels))
            {
                await writer.UpdateVersionAsync(secret.Key, version, null);
            }
        }
    }

    /// <summary>
    /// Keeps at most MaxDeprecatedVersions unlabelled versions, deleting the oldest ones that are old
    /// enough (spec §3.4). When the excess (plus <paramref name="headroom"/> versions the caller is about
    /// to deprecate) is all recent, writes that create versions are refused; label moves never are,
    /// because a rotation's finishSecret must always be able to make the new password current.
    /// </summary>
    private async Task PruneAsync(ISecretWriter writer, SecretEntity secret, DateTimeOffset now, bool refuseWhenFull = true, int headroom = 0)
    {
        var deprecated = secret.Versions.Where(v => v.IsDeprecated).OrderBy(v => v.CreatedDate).ToList();
        var excess = deprecated.Count + headroom - options.MaxDeprecatedVersions;
        foreach (var version in deprecated.TakeWhile(v => now - v.CreatedDate >= options.MinAgeBeforePruning).Take(Math.Max(excess, 0)))
        {
            await writer.DeleteVersionAsync(secret.Key, version.VersionId);
            secret.Versions.Remove(version);
            excess--;
        }
        if (excess > 0 && refuseWhenFull)
        {
            throw new ServiceException(ErrorCodes.LimitExceeded,
                $"The secret {secret.Name} has more than {options.MaxDeprecatedVersions} versions without staging labels that are less than " +
                $"{options.MinAgeBeforePruning.TotalHours:0} hours old. Wait before you create more versions of this secret.");
        }
    }

    private static VersionEntity VersionOrThrow(SecretEntity secret, string versionId) =>
        secret.Versions.Find(v => v.VersionId == versionId)
            ?? throw ServiceException.InvalidParameter($"The version {versionId} doesn't exist in secret {secret.Arn}.");

    /// <summary>A secret's tags as answers give them; null when it was never tagged (AWS tells that from an emptied list).</summary>
    private static List<Tag>? TagsOf(SecretEntity secret) => secret.Tags?.Select(t => new Tag { Key = t.Key, Value = t.Value }).ToList();

    /// <summary>A version's labels as answers give them: a deprecated (unlabelled) version has no VersionStages member, as AWS answers.</summary>
    private static IReadOnlyList<string>? StagesOf(VersionEntity version) => version.IsDeprecated ? null : [.. version.Labels];

    private static Dictionary<string, IReadOnlyList<string>>? VersionsToStages(SecretEntity secret)
    {
        var labelled = secret.Versions.Where(v => !v.IsDeprecated).ToList();
        return labelled.Count == 0 ? null : labelled.ToDictionary(v => v.VersionId, v => (IReadOnlyList<string>)[.. v.Labels]);
    }

    // --- validation helpers -----------------------------------------------------------------------

    private static SecretPlaintext? ValueOf(string? text, byte[]? binary)
    {
        if (text is not null && binary is not null)
        {
            throw ServiceException.InvalidParameter(BothValues);
        }
        return text is not null || binary is not null ? new SecretPlaintext(text, binary) : null;
    }

    private static ServiceException TokenInUse(string token, SecretEntity secret) => new(ErrorCodes.ResourceExists,
        $"You can't use ClientRequestToken {token} because that value is already in use for a version of secret {secret.Arn}.");

    /// <summary>
    /// Adds tags in order; a key already present keeps its place and takes the new value. A key that differs only in case
    /// from one the secret has, or one added before it, is refused (see <see cref="CaseOnlyDifference"/>).
    /// </summary>
    private static List<SecretTag> MergeTags(List<SecretTag> tags, IReadOnlyList<Tag> added)
    {
        foreach (var tag in added)
        {
            if (tags.Find(t => CaseOnlyDifference(t.Key, tag.Key!)) is { } existing)
            {
                throw CaseOnlyDifferenceError(existing.Key, tag.Key!);
            }
            var index = tags.FindIndex(t => t.Key == tag.Key);
            var replacement = new SecretTag(tag.Key!, tag.Value ?? "");
            if (index >= 0)
            {
                tags[index] = replacement;
            }
            else
            {
                tags.Add(replacement);
            }
        }
        return tags;
    }

    /// <summary>
    /// Tag keys that differ only in case ("Team" and "team"): AWS keeps both, but policy conditions on tags
    /// (aws:ResourceTag/KEY, aws:RequestTag/KEY) match key names case-insensitively and would see only one of them, so a
    /// caller allowed to tag could add "team" to slip past a Deny on "Team". Tumbler refuses the second key.
    /// </summary>
    private static bool CaseOnlyDifference(string key, string other) =>
        !string.Equals(key, other, StringComparison.Ordinal) && string.Equals(key, other, StringComparison.OrdinalIgnoreCase);

    private static ServiceException CaseOnlyDifferenceError(string key, string other) => ServiceException.InvalidParameter(
        $"The tag keys '{key}' and '{other}' differ only in case; policy conditions on tags cannot tell such keys apart, so a secret takes only one of them.");

    private void ValidateTags(IReadOnlyList<Tag>? tags)
    {
        if (tags is null)
        {
            return;
        }
        var validator = new RequestValidator();
        for (var i = 0; i < tags.Count; i++)
        {
            var member = $"tags.{i + 1}.member";
            if (tags[i] is not { } tag)
            {
                validator.Required(null, member);
                continue;
            }
            validator.Required(tag.Key, $"{member}.key").Length(tag.Key, $"{member}.key", 1, 128).Length(tag.Value, $"{member}.value", 0, 256);
        }
        validator.ThrowIfInvalid();
        if (tags.Select(t => t.Key).Distinct(StringComparer.Ordinal).Count() > options.MaxTagsPerSecret)
        {
            throw ServiceException.InvalidParameter($"A secret can have at most {options.MaxTagsPerSecret} tags.");
        }
    }

    private static void ValidateLabels(IReadOnlyList<string>? labels, string member)
    {
        if (labels is null)
        {
            return;
        }
        var validator = new RequestValidator();
        for (var i = 0; i < labels.Count; i++)
        {
            validator.Required(labels[i], $"{member}.{i + 1}.member").Length(labels[i], $"{member}.{i + 1}.member", 1, 256);
        }
        validator.ThrowIfInvalid();
    }

    private static void ValidateFilters(IReadOnlyList<Filter>? filters)
    {
        if (filters is null)
        {
            return;
        }
        var validator = new RequestValidator().Count(filters, "filters", 0, 10);
        for (var i = 0; i < filters.Count; i++)
        {
            var member = $"filters.{i + 1}.member";
            validator.Enum(filters[i]?.Key, $"{member}.key", SecretFilter.Keys).Count(filters[i]?.Values, $"{member}.values", 1, 10);
            var values = filters[i]?.Values ?? [];
            for (var j = 0; j < values.Count; j++)
            {
                validator.Length(values[j], $"{member}.values.{j + 1}.member", 0, 512)
                    .Pattern(values[j], $"{member}.values.{j + 1}.member", FilterValuePattern());
            }
        }
        validator.ThrowIfInvalid();
        foreach (var filter in filters)
        {
            if (filter?.Key is null)
            {
                throw ServiceException.InvalidParameter("Invalid filter key");
            }
            if (filter.Values is null || filter.Values.Any(v => v is null))
            {
                throw ServiceException.InvalidParameter($"Invalid filter values for key: {filter.Key}");
            }
        }
    }

    private static FilterableSecret Filterable(SecretEntity s) =>
        new(s.Name, s.Description, TagsOf(s) ?? [], null, null);

    // --- pagination -------------------------------------------------------------------------------

    private sealed record Page(IReadOnlyList<SecretEntity> Items, string? NextToken);

    /// <summary>
    /// Sorts and pages secrets. The token carries the sort and the position of the last secret
    /// returned (its sort key and row key), so paging stays consistent while secrets come and go.
    /// </summary>
    private static Page Paginate(IEnumerable<SecretEntity> secrets, string sortBy, string sortOrder, int pageSize, string? nextToken)
    {
        Func<SecretEntity, string> sortKey = sortBy switch
        {
            "name" => s => s.Name,
            "last-accessed-date" => s => Ticks(s.LastAccessedDate ?? DateTimeOffset.MinValue),
            "last-changed-date" => s => Ticks(s.LastChangedDate),
            _ => s => Ticks(s.CreatedDate),
        };
        var descending = sortOrder == "desc";
        var sorted = secrets.Select(s => (Secret: s, Key: sortKey(s))).ToList();
        sorted.Sort((a, b) => Compare(a.Key, a.Secret.Key, b.Key, b.Secret.Key) * (descending ? -1 : 1));
        IEnumerable<(SecretEntity Secret, string Key)> remaining = sorted;
        if (nextToken is not null)
        {
            var parts = DecodeToken(nextToken).Split('\n');
            if (parts.Length != 4 || parts[0] != sortBy || parts[1] != sortOrder || !long.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var lastRow)
                || (sortBy != "name" && !TryParseTicks(parts[2], out _)))
            {
                throw InvalidNextToken();
            }
            remaining = sorted.Where(e => Compare(e.Key, e.Secret.Key, parts[2], lastRow) * (descending ? -1 : 1) > 0);
        }
        var page = remaining.Take(pageSize + 1).ToList();
        var items = page.Take(pageSize).Select(e => e.Secret).ToList();
        var token = page.Count > pageSize ? EncodeToken($"{sortBy}\n{sortOrder}\n{page[pageSize - 1].Key}\n{items[^1].Key}") : null;
        return new Page(items, token);

        static string Ticks(DateTimeOffset date) => date.UtcTicks.ToString("D20");
        static int Compare(string key, long row, string otherKey, long otherRow)
        {
            var byKey = string.CompareOrdinal(key, otherKey);
            return byKey != 0 ? byKey : row.CompareTo(otherRow);
        }
    }

    /// <summary>
    /// ListSecrets' page: reads the store in its sort order, a batch at a time, and keeps the secrets the caller
    /// may describe and the filters match, until the page is full. The token carries the sort and the position
    /// (sort value, row key) of the last secret returned, so paging stays consistent while secrets come and go.
    /// </summary>
    private async Task<Page> ListPageAsync(ListSecretsRequest request, CallContext context, CancellationToken ct)
    {
        var sortBy = request.SortBy ?? "created-date";
        var sortOrder = request.SortOrder ?? "asc";
        var order = sortBy switch
        {
            "name" => SecretSortKey.Name,
            "last-accessed-date" => SecretSortKey.LastAccessedDate,
            "last-changed-date" => SecretSortKey.LastChangedDate,
            _ => SecretSortKey.CreatedDate,
        };
        var pageSize = request.MaxResults ?? 100;
        SecretListPosition? position = null;
        if (request.NextToken is not null)
        {
            var parts = DecodeToken(request.NextToken).Split('\n');
            long ticks = 0;
            if (parts.Length != 4 || parts[0] != sortBy || parts[1] != sortOrder || !long.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var lastRow)
                || (order != SecretSortKey.Name && !TryParseTicks(parts[2], out ticks)))
            {
                throw InvalidNextToken();
            }
            position = new SecretListPosition(order, order == SecretSortKey.Name ? parts[2] : null, ticks, lastRow);
        }
        // A list never shows a secret the caller may not describe.
        var describe = Demand.SecretsManager("DescribeSecret");
        var items = new List<SecretEntity>();
        var batchSize = pageSize + 1;
        while (items.Count <= pageSize)
        {
            var batch = await store.ListSecretsPageAsync(context.Region, request.IncludePlannedDeletion == true, order, sortOrder == "desc", position, batchSize, ct);
            foreach (var secret in batch)
            {
                position = SecretListPosition.Of(secret, order);
                if (_access.IsAllowed(context, describe, secret.Arn, secret)
                    && (request.Filters is not { Count: > 0 } filters || SecretFilter.Matches(filters, Filterable(secret))))
                {
                    items.Add(secret);
                    if (items.Count > pageSize)
                    {
                        break;
                    }
                }
            }
            if (batch.Count < batchSize)
            {
                break;
            }
            batchSize = Math.Min(batchSize * 2, 1000); // filters or policies hide secrets: read further ahead
        }
        if (items.Count <= pageSize)
        {
            return new Page(items, null);
        }
        var last = SecretListPosition.Of(items[pageSize - 1], order);
        var sortValue = order == SecretSortKey.Name ? last.Name : last.Ticks.ToString("D20", CultureInfo.InvariantCulture);
        return new Page(items[..pageSize], EncodeToken($"{sortBy}\n{sortOrder}\n{sortValue}\n{last.Key}"));
    }

    /// <summary>A date position in a NextToken: ticks as the 20 digits the token was made with.</summary>
    private static bool TryParseTicks(string text, out long ticks)
    {
        ticks = 0;
        return text.Length == 20 && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ticks);
    }

    private static ServiceException InvalidNextToken() => new(ErrorCodes.InvalidNextToken, "The NextToken value is not valid for this request.");

    private static string EncodeToken(string value) => Convert.ToBase64String(Encoding.UTF8.GetBytes(value));

    private static string DecodeToken(string token)
    {
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(token));
        }
        catch (FormatException)
        {
            throw InvalidNextToken();
        }
    }

    private static SecretIdentity Identity(SecretEntity secret) => new() { ARN = secret.Arn, Name = secret.Name };

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
