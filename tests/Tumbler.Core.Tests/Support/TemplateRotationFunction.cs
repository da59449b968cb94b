using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;

namespace Tumbler.Core.Tests.Support;

/// <summary>
/// The generic AWS rotation template (SecretsManagerRotationTemplate) without a database: enough to
/// test the engine's rules. The built-in database functions are proven against real databases in
/// the integration tests.
/// </summary>
public sealed class TemplateRotationFunction : IRotationFunction
{
    public const string Arn = "arn:aws:lambda:us-east-1:123456789012:function:TestTemplate";

    public List<(string Step, string Token)> Calls { get; } = [];
    /// <summary>Steps that throw while listed.</summary>
    public HashSet<string> Failing { get; } = [];
    public Func<RotationEvent, ISecretsManagerClient, Task>? Extra { get; set; }

    public async Task InvokeAsync(RotationEvent rotationEvent, ISecretsManagerClient secrets, CancellationToken ct)
    {
        Calls.Add((rotationEvent.Step, rotationEvent.ClientRequestToken));
        if (Failing.Contains(rotationEvent.Step))
        {
            throw new RotationStepException($"{rotationEvent.Step} failed on purpose");
        }
        if (Extra is not null)
        {
            await Extra(rotationEvent, secrets);
        }
        var described = await secrets.DescribeSecretAsync(new SecretIdRequest { SecretId = rotationEvent.SecretId }, ct);
        var stages = described.VersionIdsToStages?.GetValueOrDefault(rotationEvent.ClientRequestToken)
            ?? throw new RotationStepException($"Secret version {rotationEvent.ClientRequestToken} has no stage for rotation.");
        if (stages.Contains("AWSCURRENT"))
        {
            return;
        }
        switch (rotationEvent.Step)
        {
            case RotationStep.CreateSecret:
                try
                {
                    await secrets.GetSecretValueAsync(new GetSecretValueRequest
                    {
                        SecretId = rotationEvent.SecretId, VersionId = rotationEvent.ClientRequestToken, VersionStage = "AWSPENDING",
                    }, ct);
                }
                catch (ServiceException e) when (e.ErrorCode == ErrorCodes.ResourceNotFound)
                {
                    var password = await secrets.GetRandomPasswordAsync(new GetRandomPasswordRequest(), ct);
                    await secrets.PutSecretValueAsync(new PutSecretValueRequest
                    {
                        SecretId = rotationEvent.SecretId, ClientRequestToken = rotationEvent.ClientRequestToken,
                        SecretString = password.RandomPassword, VersionStages = ["AWSPENDING"],
                    }, ct);
                }
                break;
            case RotationStep.FinishSecret:
                var current = described.VersionIdsToStages!.Single(p => p.Value.Contains("AWSCURRENT")).Key;
                await secrets.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
                {
                    SecretId = rotationEvent.SecretId, VersionStage = "AWSCURRENT",
                    MoveToVersionId = rotationEvent.ClientRequestToken, RemoveFromVersionId = current,
                }, ct);
                break;
        }
    }
}

public sealed class SingleFunctionRegistry(IRotationFunction function) : IRotationFunctionRegistry
{
    public IRotationFunction? Find(string lambdaArn) => lambdaArn == TemplateRotationFunction.Arn ? function : null;
}
