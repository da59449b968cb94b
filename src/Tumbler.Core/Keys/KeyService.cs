using System.Text.RegularExpressions;
using Tumbler.Core.Access;
using Tumbler.Core.Crypto;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Keys;

/// <summary>
/// The KMS-like keys admin API: create, list, describe, enable, disable, schedule and cancel deletion, rotate material, aliases.
/// Each call is authorized as <c>kms:&lt;Operation&gt;</c> on the key's ARN (CreateKey and ListKeys on
/// <c>arn:aws:kms:REGION:ACCOUNT:key/*</c>). A change is written to the store first, then to this node's
/// <see cref="KeyRing"/>, so it takes effect here at once; other nodes sharing a store learn it within a second (SharedStoreWatcher).
/// The default key (alias/aws/secretsmanager) seals Tumbler's own data (access keys, function settings)
/// and can be neither disabled nor deleted.
/// </summary>
public sealed partial class KeyService(ISecretStore store, KeyRing keys, AccessControl access, TimeProvider time, SecretsOptions options)
{
    public const int MinPendingWindowDays = 7;
    public const int MaxPendingWindowDays = 30;

    [GeneratedRegex(@"^alias/[a-zA-Z0-9/_-]{1,250}$")]
    private static partial Regex AliasPattern();

    private readonly SemaphoreSlim _changes = new(1, 1);

    public async Task<KeyMetadataResponse> CreateKeyAsync(CreateKeyRequest request, CallContext call, CancellationToken ct)
    {
        Authorize(call, "CreateKey", AllKeys());
        var description = request.Description ?? "";
        if (description.Length > 8192)
        {
            throw new ServiceException(KeyErrors.Validation, "Description must be at most 8192 characters.");
        }
        var entity = await keys.CreateKeyAsync(store, description, [], time, ct);
        return new KeyMetadataResponse { KeyMetadata = Metadata(entity) };
    }

    public Task<ListKeysResponse> ListKeysAsync(CallContext call, CancellationToken ct)
    {
        Authorize(call, "ListKeys", AllKeys());
        return Task.FromResult(new ListKeysResponse
        {
            Keys = [.. keys.Keys.Select(k => new KeyListEntry { KeyId = k.KeyId, KeyArn = k.Arn, KeyMaterialCount = k.Materials.Count, LastRotationDate = LastRotation(k) })],
        });
    }

    public async Task<KeyMetadataResponse> DescribeKeyAsync(KeyIdRequest request, CallContext call, CancellationToken ct) =>
        new() { KeyMetadata = Metadata(await FindAsync(request.KeyId, call, "DescribeKey", ct)) };

    public Task EnableKeyAsync(KeyIdRequest request, CallContext call, CancellationToken ct) =>
        ChangeAsync(request.KeyId, "EnableKey", call, async key =>
        {
            RefusePendingDeletion(key);
            await SetStateAsync(key, enabled: true, null, ct);
            return true;
        }, ct);

    public Task DisableKeyAsync(KeyIdRequest request, CallContext call, CancellationToken ct) =>
        ChangeAsync(request.KeyId, "DisableKey", call, async key =>
        {
            RefuseDefault(key, "disabled");
            RefusePendingDeletion(key);
            await SetStateAsync(key, enabled: false, null, ct);
            return true;
        }, ct);

    /// <summary>Refused while any secret version (even of a secret scheduled for deletion) is still encrypted under the key.</summary>
    public Task<ScheduleKeyDeletionResponse> ScheduleKeyDeletionAsync(ScheduleKeyDeletionRequest request, CallContext call, CancellationToken ct) =>
        ChangeAsync(request.KeyId, "ScheduleKeyDeletion", call, async key =>
        {
            RefuseDefault(key, "deleted");
            var days = request.PendingWindowInDays ?? MaxPendingWindowDays;
            if (days is < MinPendingWindowDays or > MaxPendingWindowDays)
            {
                throw new ServiceException(KeyErrors.Validation,
                    $"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between {MinPendingWindowDays} and {MaxPendingWindowDays}.");
            }
            RefusePendingDeletion(key);
            var versions = await store.CountVersionsUsingKeyAsync(key.KeyId, ct);
            if (versions > 0)
            {
                throw new ServiceException(KeyErrors.InvalidState,
                    $"{key.Arn} still encrypts {versions} secret version(s); re-encrypt those secrets under another key (UpdateSecret with a new KmsKeyId and value) or delete them before scheduling the key's deletion.");
            }
            var deletionDate = time.GetUtcNow().AddDays(days);
            await SetStateAsync(key, enabled: false, deletionDate, ct);
            return new ScheduleKeyDeletionResponse { KeyId = key.Arn, DeletionDate = deletionDate, KeyState = "PendingDeletion", PendingWindowInDays = days };
        }, ct);

    /// <summary>As KMS: the key comes back Disabled; enable it to use it again.</summary>
    public Task<CancelKeyDeletionResponse> CancelKeyDeletionAsync(KeyIdRequest request, CallContext call, CancellationToken ct) =>
        ChangeAsync(request.KeyId, "CancelKeyDeletion", call, async key =>
        {
            if (key.DeletionDate is null)
            {
                throw new ServiceException(KeyErrors.InvalidState, $"{key.Arn} is {KeyRing.StateOf(key)}, not pending deletion.");
            }
            await SetStateAsync(key, enabled: false, null, ct);
            return new CancelKeyDeletionResponse { KeyId = key.Arn };
        }, ct);

    public Task CreateAliasAsync(CreateAliasRequest request, CallContext call, CancellationToken ct) =>
        ChangeAsync(request.TargetKeyId, "CreateAlias", call, async key =>
        {
            var alias = request.AliasName;
            if (alias is null || !AliasPattern().IsMatch(alias))
            {
                throw new ServiceException(KeyErrors.Validation,
                    "AliasName must begin with alias/ followed by 1 to 250 letters, digits, slashes, underscores or hyphens.");
            }
            if (alias.StartsWith("alias/aws/", StringComparison.Ordinal))
            {
                throw new ServiceException(KeyErrors.InvalidAliasName, "Alias must not begin with 'alias/aws/'. Those aliases are reserved.");
            }
            RefusePendingDeletion(key);
            if (keys.TryResolveKeyId(alias) is not null || !await store.InsertAliasAsync(alias, key.KeyId, ct))
            {
                throw new ServiceException(KeyErrors.AlreadyExists, $"An alias with the name {keys.AliasArn(alias)} already exists");
            }
            keys.AddAlias(alias, key.KeyId);
            return true;
        }, ct);

    /// <summary>
    /// As KMS's RotateKeyOnDemand: a new material version; secrets written from now on get data keys wrapped under it,
    /// older versions keep opening with theirs (nothing is re-encrypted). Refused for a disabled or pending-deletion key.
    /// </summary>
    public Task<RotateKeyOnDemandResponse> RotateKeyOnDemandAsync(KeyIdRequest request, CallContext call, CancellationToken ct) =>
        ChangeAsync(request.KeyId, "RotateKeyOnDemand", call, async key =>
        {
            RefusePendingDeletion(key);
            if (!key.Enabled)
            {
                throw new ServiceException(KeyErrors.Disabled, $"{key.Arn} is disabled; enable it to rotate its material.");
            }
            var rotated = await keys.RotateMaterialAsync(store, key.KeyId, time, ct);
            return new RotateKeyOnDemandResponse { KeyId = rotated.KeyId, KeyMaterialCount = rotated.Materials.Count, LastRotationDate = LastRotation(rotated) };
        }, ct);

    /// <summary>Every alias, or those of one key (KeyId given), by name. One page: a deployment has few aliases.</summary>
    public async Task<ListAliasesResponse> ListAliasesAsync(ListAliasesRequest request, CallContext call, CancellationToken ct)
    {
        string? keyId = null;
        if (request.KeyId is not null)
        {
            keyId = (await FindAsync(request.KeyId, call, "ListAliases", ct)).KeyId;
        }
        else
        {
            Authorize(call, "ListAliases", AllKeys());
        }
        return new ListAliasesResponse
        {
            Aliases = [.. keys.Aliases.Where(a => keyId is null || a.KeyId == keyId)
                .Select(a => new AliasListEntry { AliasName = a.Alias, AliasArn = keys.AliasArn(a.Alias), TargetKeyId = a.KeyId })],
        };
    }

    /// <summary>Points an existing alias at another key; refused for the default alias.</summary>
    public Task UpdateAliasAsync(UpdateAliasRequest request, CallContext call, CancellationToken ct) =>
        ChangeAsync(request.TargetKeyId, "UpdateAlias", call, async key =>
        {
            var alias = ExistingAlias(request.AliasName, call, "UpdateAlias", "pointed at another key");
            RefusePendingDeletion(key);
            if (!await store.UpdateAliasAsync(alias, key.KeyId, ct))
            {
                throw AliasNotFound(alias);
            }
            keys.AddAlias(alias, key.KeyId);
            return true;
        }, ct);

    /// <summary>Deletes an alias (the key stays); refused for the default alias.</summary>
    public async Task DeleteAliasAsync(DeleteAliasRequest request, CallContext call, CancellationToken ct)
    {
        var alias = ExistingAlias(request.AliasName, call, "DeleteAlias", "deleted");
        await _changes.WaitAsync(ct);
        try
        {
            if (!await store.DeleteAliasAsync(alias, ct))
            {
                throw AliasNotFound(alias);
            }
            keys.RemoveAlias(alias);
        }
        finally
        {
            _changes.Release();
        }
    }

    /// <summary>An alias name the caller may change (authorized on the alias ARN), that exists and is not the default alias.</summary>
    private string ExistingAlias(string? alias, CallContext call, string operation, string what)
    {
        if (alias is null || !AliasPattern().IsMatch(alias))
        {
            throw new ServiceException(KeyErrors.Validation,
                "AliasName must begin with alias/ followed by 1 to 250 letters, digits, slashes, underscores or hyphens.");
        }
        Authorize(call, operation, keys.AliasArn(alias));
        if (alias == KeyRing.DefaultAlias)
        {
            throw new ServiceException(KeyErrors.UnsupportedOperation,
                $"{KeyRing.DefaultAlias} is the default alias: it always names the default key, which seals Tumbler's own data, so it cannot be {what}.");
        }
        if (keys.TryResolveKeyId(alias) is null)
        {
            throw AliasNotFound(alias);
        }
        return alias;
    }

    private ServiceException AliasNotFound(string alias) => new(KeyErrors.NotFound, $"Alias {keys.AliasArn(alias)} is not found.");

    /// <summary>Date of the newest material when the key was ever rotated.</summary>
    private static DateTimeOffset? LastRotation(KmsKeyEntity key) => key.Materials.Count > 1 ? key.Materials[^1].CreatedDate : null;

    /// <summary>Deletes the keys whose deletion date has passed (and that no version uses); returns their ids. Run by the deletion purger.</summary>
    public async Task<IReadOnlyList<string>> PurgeExpiredKeysAsync(CancellationToken ct)
    {
        await _changes.WaitAsync(ct);
        try
        {
            var purged = await store.PurgeKeysAsync(time.GetUtcNow(), ct);
            foreach (var keyId in purged)
            {
                keys.Remove(keyId);
            }
            return purged;
        }
        finally
        {
            _changes.Release();
        }
    }

    private async Task<T> ChangeAsync<T>(string? keyId, string operation, CallContext call, Func<KmsKeyEntity, Task<T>> change, CancellationToken ct)
    {
        var key = await FindAsync(keyId, call, operation, ct);
        // One change at a time on this node, so a check (no version uses the key) and the change it guards are not interleaved with another change.
        await _changes.WaitAsync(ct);
        try
        {
            return await change(keys.Find(key.KeyId)!);
        }
        finally
        {
            _changes.Release();
        }
    }

    private async Task SetStateAsync(KmsKeyEntity key, bool enabled, DateTimeOffset? deletionDate, CancellationToken ct)
    {
        if (!await store.UpdateKeyStateAsync(key.KeyId, enabled, deletionDate, ct))
        {
            throw NotFound(key.KeyId);
        }
        keys.SetState(key.KeyId, enabled, deletionDate);
    }

    /// <summary>
    /// The key a reference names, once the caller may do the operation on it. For a reference that names no key,
    /// the caller is authorized on the ARN it would have, so a caller denied the action learns nothing more.
    /// </summary>
    private async Task<KmsKeyEntity> FindAsync(string? reference, CallContext call, string operation, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(reference))
        {
            throw new ServiceException(KeyErrors.Validation, "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null.");
        }
        if (reference.Length > 2048)
        {
            throw new ServiceException(KeyErrors.Validation, "KeyId must be at most 2048 characters.");
        }
        // A key another node sharing the store made since this node's last poll is found now, not after the next poll.
        await keys.CatchUpAsync(store, reference, null, ct);
        var key = keys.TryResolveKeyId(reference) is { } keyId ? keys.Find(keyId) : null;
        Authorize(call, operation, key?.Arn
            ?? (reference.StartsWith("arn:", StringComparison.Ordinal) ? reference
            : reference.StartsWith("alias/", StringComparison.Ordinal) ? keys.AliasArn(reference)
            : keys.AliasArn("key/" + reference)));
        return key ?? throw NotFound(reference);
    }

    private void RefuseDefault(KmsKeyEntity key, string what)
    {
        if (key.KeyId == keys.DefaultKeyId)
        {
            throw new ServiceException(KeyErrors.UnsupportedOperation,
                $"{key.Arn} is the default key ({KeyRing.DefaultAlias}); it seals Tumbler's own data and cannot be {what}.");
        }
    }

    private static void RefusePendingDeletion(KmsKeyEntity key)
    {
        if (key.DeletionDate is not null)
        {
            throw new ServiceException(KeyErrors.InvalidState, $"{key.Arn} is pending deletion.");
        }
    }

    private KeyMetadata Metadata(KmsKeyEntity key) => new()
    {
        AWSAccountId = options.AccountId,
        KeyId = key.KeyId,
        Arn = key.Arn,
        CreationDate = key.CreatedDate,
        Enabled = key.Enabled && key.DeletionDate is null,
        Description = key.Description,
        KeyState = KeyRing.StateOf(key),
        DeletionDate = key.DeletionDate,
        KeyManager = key.KeyId == keys.DefaultKeyId ? "AWS" : "CUSTOMER",
        Aliases = key.Aliases.Count == 0 ? null : key.Aliases,
        KeyMaterialCount = key.Materials.Count,
        LastRotationDate = LastRotation(key),
    };

    private string AllKeys() => keys.Find(keys.DefaultKeyId)!.Arn[..^keys.DefaultKeyId.Length] + "*";

    private static ServiceException NotFound(string reference) => new(KeyErrors.NotFound, $"Key '{reference}' does not exist");

    private void Authorize(CallContext call, string operation, string resource) =>
        access.Require(call, new Demand("kms:" + operation), resource);
}
