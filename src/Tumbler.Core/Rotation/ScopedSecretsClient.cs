using System.Text.Json;
using Tumbler.Core.Secrets;

namespace Tumbler.Core.Rotation;

/// <summary>
/// What a built-in rotation function may do, and no more: read and write the one secret being rotated,
/// read the superuser secret its value names in <c>masterarn</c>, and generate passwords. The same
/// least privilege AWSSecretsManagerRotationPolicy gives a rotation Lambda.
/// </summary>
public sealed class ScopedSecretsClient(SecretsService secrets, CallContext context, string secretArn) : ISecretsManagerClient
{
    public async Task<DescribeSecretResponse> DescribeSecretAsync(SecretIdRequest request, CancellationToken ct)
    {
        await EnsureReadableAsync(request.SecretId, ct);
        return await secrets.DescribeSecretAsync(request, context, ct);
    }

    public async Task<GetSecretValueResponse> GetSecretValueAsync(GetSecretValueRequest request, CancellationToken ct)
    {
        await EnsureReadableAsync(request.SecretId, ct);
        return await secrets.GetSecretValueAsync(request, context, ct);
    }

    public async Task<PutSecretValueResponse> PutSecretValueAsync(PutSecretValueRequest request, CancellationToken ct)
    {
        await EnsureRotatedSecretAsync(request.SecretId, ct);
        return await secrets.PutSecretValueAsync(request, context, ct);
    }

    public async Task<SecretIdentity> UpdateSecretVersionStageAsync(UpdateSecretVersionStageRequest request, CancellationToken ct)
    {
        await EnsureRotatedSecretAsync(request.SecretId, ct);
        return await secrets.UpdateSecretVersionStageAsync(request, context, ct);
    }

    public Task<GetRandomPasswordResponse> GetRandomPasswordAsync(GetRandomPasswordRequest request, CancellationToken ct) =>
        Task.FromResult(secrets.GetRandomPassword(request, context));

    private async Task EnsureRotatedSecretAsync(string? secretId, CancellationToken ct)
    {
        if (!await IsRotatedSecretAsync(secretId, ct))
        {
            throw Denied(secretId);
        }
    }

    private async Task EnsureReadableAsync(string? secretId, CancellationToken ct)
    {
        if (!await IsRotatedSecretAsync(secretId, ct) && !await IsMasterSecretAsync(secretId, ct))
        {
            throw Denied(secretId);
        }
    }

    private async Task<bool> IsRotatedSecretAsync(string? secretId, CancellationToken ct)
    {
        if (secretId == secretArn)
        {
            return true;
        }
        if (secretId is null)
        {
            return false;
        }
        try
        {
            return (await secrets.DescribeSecretAsync(new SecretIdRequest { SecretId = secretId }, context, ct)).ARN == secretArn;
        }
        catch (ServiceException)
        {
            return false;
        }
    }

    /// <summary>True when the rotated secret's current or pending value names this id as its superuser secret.</summary>
    private async Task<bool> IsMasterSecretAsync(string? secretId, CancellationToken ct)
    {
        if (secretId is null)
        {
            return false;
        }
        foreach (var stage in new[] { StagingLabels.Current, StagingLabels.Pending })
        {
            try
            {
                var value = await secrets.GetSecretValueAsync(new GetSecretValueRequest { SecretId = secretArn, VersionStage = stage }, context, ct);
                using var json = JsonDocument.Parse(value.SecretString ?? "{}");
                if (json.RootElement.ValueKind == JsonValueKind.Object
                    && json.RootElement.TryGetProperty("masterarn", out var master) && master.ValueKind == JsonValueKind.String
                    && master.GetString() == secretId)
                {
                    return true;
                }
            }
            catch (Exception e) when (e is ServiceException or JsonException)
            {
                // No such value, or not JSON: it names no superuser secret.
            }
        }
        return false;
    }

    private ServiceException Denied(string? secretId) => new(ErrorCodes.AccessDenied,
        $"The rotation of {secretArn} is not allowed to access {secretId ?? "(no SecretId)"}: a rotation function may only use the secret it rotates and the superuser secret that secret names.");
}
