using Tumbler.Core.Access;
using Tumbler.Core.Functions;
using Tumbler.Core.Keys;
using Tumbler.Core.Secrets;
using Tumbler.Server.Auth;

namespace Tumbler.Server.Protocol;

/// <summary>
/// What a request's audit record says, gathered as the request is served: the secret and version
/// it named (from the request, then as resolved by the answer) and, for admin calls, whom it touched.
/// Only identifiers: a request's value fields are never read here.
/// </summary>
internal sealed class AuditFacts
{
    public string Operation { get; set; } = "Unknown";
    public AuthenticatedCaller? Caller { get; set; }
    public string? SecretArn { get; private set; }
    public string? VersionId { get; private set; }
    public string? VersionStage { get; private set; }
    public string? Detail { get; set; }

    public void Describe(object shape)
    {
        switch (shape)
        {
            // Requests: what the caller named.
            case CreateSecretRequest r: Set(r.Name, r.ClientRequestToken); break;
            case GetSecretValueRequest r: Set(r.SecretId, r.VersionId, r.VersionStage); break;
            case PutSecretValueRequest r: Set(r.SecretId, r.ClientRequestToken, r.VersionStages is { } stages ? string.Join(',', stages) : null); break;
            case UpdateSecretRequest r: Set(r.SecretId, r.ClientRequestToken); break;
            case UpdateSecretVersionStageRequest r: Set(r.SecretId, r.MoveToVersionId ?? r.RemoveFromVersionId, r.VersionStage); break;
            case SecretIdRequest r: Set(r.SecretId); break;
            case ListSecretVersionIdsRequest r: Set(r.SecretId); break;
            case DeleteSecretRequest r: Set(r.SecretId); break;
            case TagResourceRequest r: Set(r.SecretId); break;
            case UntagResourceRequest r: Set(r.SecretId); break;
            case RotateSecretRequest r: Set(r.SecretId, r.ClientRequestToken); break;
            case PutResourcePolicyRequest r: Set(r.SecretId); break;
            case ValidateResourcePolicyRequest r: Set(r.SecretId); break;
            case BatchGetSecretValueRequest r: Detail = r.SecretIdList is { } ids ? $"{ids.Count} secret ids" : "filters"; break;
            case UserNameRequest r: Detail = Bounded($"user/{r.UserName}", 256); break;
            case AccessKeyRequest r: Detail = Bounded($"user/{r.UserName} key {r.AccessKeyId}", 256); break;
            // Functions: the name only; never the command's environment values or the shared secret.
            case FunctionRequest r: Detail = Bounded($"function/{r.FunctionName} kind {(r.Command is not null ? "command" : r.PythonHandler is not null ? "python" : r.Url is not null ? "http" : "unchanged")}", 256); break;
            case FunctionNameRequest r: Detail = Bounded($"function/{r.FunctionName}", 256); break;
            // KMS-like keys: the key (as named, then as resolved) and the state it was put in.
            case CreateKeyRequest: Detail = "key new"; break;
            case KeyIdRequest r: Detail = Bounded($"key {r.KeyId}", 256); break;
            case ScheduleKeyDeletionRequest r: Detail = Bounded($"key {r.KeyId} pending window {r.PendingWindowInDays?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default"} days", 256); break;
            case CreateAliasRequest r: Detail = Bounded($"key {r.TargetKeyId} alias {r.AliasName}", 512); break;
            case UpdateAliasRequest r: Detail = Bounded($"key {r.TargetKeyId} alias {r.AliasName}", 512); break;
            case DeleteAliasRequest r: Detail = Bounded($"alias {r.AliasName}", 512); break;
            case ListAliasesRequest r: Detail = r.KeyId is null ? "all aliases" : Bounded($"key {r.KeyId}", 256); break;
            case KeyMetadataResponse r: Detail = $"key {r.KeyMetadata.Arn} state {r.KeyMetadata.KeyState}"; break;
            case RotateKeyOnDemandResponse r: Detail = $"key {r.KeyId} material version {r.KeyMaterialCount}"; break;
            case ScheduleKeyDeletionResponse r: Detail = $"key {r.KeyId} state {r.KeyState} deletion {r.DeletionDate:O}"; break;
            case UserPolicyRequest r: Detail = Bounded($"user/{r.UserName} policy {r.PolicyName}", 256); break;
            // Answers: the full ARN and the version actually read or written.
            case CreateSecretResponse r: Set(r.ARN, r.VersionId); break;
            case GetSecretValueResponse r: Set(r.ARN, r.VersionId); break;
            case PutSecretValueResponse r: Set(r.ARN, r.VersionId); break;
            case UpdateSecretResponse r: Set(r.ARN, r.VersionId); break;
            case RotationResponse r: Set(r.ARN, r.VersionId); break;
            case SecretIdentity r: Set(r.ARN); break;
            case DescribeSecretResponse r: Set(r.ARN); break;
            case ListSecretVersionIdsResponse r: Set(r.ARN); break;
            case DeleteSecretResponse r: Set(r.ARN); break;
            case GetResourcePolicyResponse r: Set(r.ARN); break;
            case CreateAccessKeyResponse r: Detail = $"user/{r.AccessKey.UserName} key {r.AccessKey.AccessKeyId}"; break;
        }
    }

    private void Set(string? secret, string? versionId = null, string? stage = null)
    {
        // Requests are recorded before they are validated: bound what an unvalidated field can put in the log.
        SecretArn = Bounded(secret, 2048) ?? SecretArn;
        VersionId = Bounded(versionId, 64) ?? VersionId;
        VersionStage = Bounded(stage, 256) ?? VersionStage;
    }

    private static string? Bounded(string? text, int max) => text is null || text.Length <= max ? text : text[..max] + "...";
}
