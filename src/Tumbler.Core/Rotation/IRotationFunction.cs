using Tumbler.Core.Secrets;

namespace Tumbler.Core.Rotation;

/// <summary>The four steps of a rotation, spelled as in the Lambda event (spec §4.1).</summary>
public static class RotationStep
{
    public const string CreateSecret = "createSecret";
    public const string SetSecret = "setSecret";
    public const string TestSecret = "testSecret";
    public const string FinishSecret = "finishSecret";
    public static readonly IReadOnlyList<string> All = [CreateSecret, SetSecret, TestSecret, FinishSecret];
}

/// <summary>The event a rotation function receives for one step: the Lambda contract, unchanged.</summary>
public sealed record RotationEvent(string SecretId, string ClientRequestToken, string Step, string RotationToken);

/// <summary>
/// A rotation function: runs one step, and throws when the step failed. Built-in functions use the
/// client they are given; it can only touch the secret being rotated (and the superuser secret it
/// names), exactly like the least-privilege role of a rotation Lambda.
/// </summary>
public interface IRotationFunction
{
    Task InvokeAsync(RotationEvent rotationEvent, ISecretsManagerClient secrets, CancellationToken ct);
}

/// <summary>The Secrets Manager operations a rotation function may call (AWSSecretsManagerRotationPolicy).</summary>
public interface ISecretsManagerClient
{
    Task<DescribeSecretResponse> DescribeSecretAsync(SecretIdRequest request, CancellationToken ct);
    Task<GetSecretValueResponse> GetSecretValueAsync(GetSecretValueRequest request, CancellationToken ct);
    Task<PutSecretValueResponse> PutSecretValueAsync(PutSecretValueRequest request, CancellationToken ct);
    Task<SecretIdentity> UpdateSecretVersionStageAsync(UpdateSecretVersionStageRequest request, CancellationToken ct);
    Task<GetRandomPasswordResponse> GetRandomPasswordAsync(GetRandomPasswordRequest request, CancellationToken ct);
}

/// <summary>Finds the function a Lambda ARN names (arn:aws:lambda:REGION:ACCOUNT:function:NAME).</summary>
public interface IRotationFunctionRegistry
{
    IRotationFunction? Find(string lambdaArn);

    /// <summary>Like <see cref="Find"/>, for registries that look functions up in the store (external functions).</summary>
    ValueTask<IRotationFunction?> FindAsync(string lambdaArn, CancellationToken ct) => ValueTask.FromResult(Find(lambdaArn));
}

/// <summary>A step failed; the message is shown to operators, so it must never contain a secret value.</summary>
public sealed class RotationStepException(string message, Exception? inner = null) : Exception(message, inner);
