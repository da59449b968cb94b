using System.Text.Json;
using System.Text.Json.Serialization;
using Tumbler.Core.Access;
using Tumbler.Core.Rotation;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Secrets;

/// <summary>
/// RotateSecret and CancelRotateSecret, and the state changes the rotation engine makes as a rotation
/// advances (spec §2.12, §2.13, §3.7, §3.8). The pending version and its job are stored before any
/// function runs, so every crash resumes with the same token and never makes a second password.
/// </summary>
public sealed partial class SecretsService
{
    private const string NoRotationFunction = "No Lambda rotation function ARN is associated with this secret.";
    private const string CannotInvoke =
        "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.";
    private const string RotationNotComplete = "A previous rotation isn't complete. That rotation will be reattempted.";

    public async Task<RotationResponse> RotateSecretAsync(RotateSecretRequest request, CallContext context, CancellationToken ct)
    {
        new RequestValidator()
            .Required(request.SecretId, "secretId").Length(request.SecretId, "secretId", 1, 2048)
            .Length(request.ClientRequestToken, "clientRequestToken", 32, 64)
            .Length(request.RotationLambdaARN, "rotationLambdaARN", 0, 2048)
            .Length(request.ExternalSecretRotationRoleArn, "externalSecretRotationRoleArn", 20, 2048)
            .ThrowIfInvalid();
        CheckSecretIdSyntax(request.SecretId!);
        if (request.ClientRequestToken is null)
        {
            throw ServiceException.InvalidParameter(TokenRequired);
        }
        if (request.ExternalSecretRotationMetadata is { Count: > 0 } || request.ExternalSecretRotationRoleArn is not null)
        {
            throw ServiceException.InvalidParameter("Managed external secrets are not supported: rotate with a rotation function.");
        }
        var schedule = request.RotationRules is null ? null : RotationSchedule.Parse(request.RotationRules);
        var token = request.ClientRequestToken;

        var response = await store.WriteAsync(async writer =>
        {
            var secret = await FindForWriteAsync(writer, request.SecretId!, context,
                Demand.SecretsManager("RotateSecret").With("secretsmanager:RotationLambdaARN", request.RotationLambdaARN));
            var now = time.GetUtcNow();
            var job = await writer.FindRotationAsync(secret.Key);
            if (job is not null && IsAbandoned(secret, job))
            {
                await writer.DeleteRotationAsync(secret.Key);
                job = null;
            }
            if (job is not null)
            {
                if (job.Token == token)
                {
                    return new RotationResponse { ARN = secret.Arn, Name = secret.Name, VersionId = token };
                }
                // Refused as AWS does, but the stuck rotation is retried now rather than at its backoff.
                job.NextAttemptDate = now;
                await writer.SaveRotationAsync(job);
                return null;
            }
            if (StagingLabels.RotationInProgress(secret))
            {
                throw ServiceException.InvalidRequest(
                    $"A previous rotation isn't complete: version {StagingLabels.Holder(secret, StagingLabels.Pending)!.VersionId} has the " +
                    "AWSPENDING staging label. Remove it with UpdateSecretVersionStage to start a new rotation.");
            }
            var lambdaArn = request.RotationLambdaARN ?? secret.RotationLambdaArn ?? throw ServiceException.InvalidRequest(NoRotationFunction);
            if (functions is null || await functions.FindAsync(lambdaArn, ct) is null)
            {
                throw new ServiceException(ErrorCodes.AccessDenied, CannotInvoke);
            }
            if (secret.Versions.Exists(v => v.VersionId == token))
            {
                throw TokenInUse(token, secret);
            }

            secret.RotationLambdaArn = lambdaArn;
            secret.RotationEnabled = true;
            if (schedule is not null)
            {
                secret.RotationRulesJson = JsonSerializer.Serialize(schedule.Rules, RotationJson.Default.RotationRulesType);
            }
            var immediately = request.RotateImmediately != false;
            ScheduleNextRotation(secret, immediately ? now : secret.LastRotatedDate ?? now);
            await StartRotationAsync(writer, secret, token, immediately, now);
            secret.LastChangedDate = now;
            await writer.UpdateSecretAsync(secret);
            return new RotationResponse { ARN = secret.Arn, Name = secret.Name, VersionId = token };
        }, ct);
        if (response is null)
        {
            rotationSignal?.Notify();
            throw ServiceException.InvalidRequest(RotationNotComplete);
        }
        rotationSignal?.Notify();
        return response;
    }

    /// <summary><see cref="RotationJob.StepsDone"/> once createSecret and setSecret have completed.</summary>
    private const int SetSecretDone = 2;

    /// <summary>
    /// Whether setSecret may have given the database the pending password: it completed, or it is running or was
    /// interrupted (createSecret done and an attempt still holds, or held when its server died, the lease; an attempt
    /// that ends in failure gives the lease back). Only a failed setSecret leaves the rotation free to cancel.
    /// </summary>
    private static bool MayHaveSetPassword(RotationJob? job) =>
        job is { RotateImmediately: true } && (job.StepsDone >= SetSecretDone || (job.StepsDone == SetSecretDone - 1 && job.LeaseOwner is not null));

    /// <summary>
    /// Once setSecret may have run, a single-user database may take only the pending version's password, so nothing may
    /// leave that version without AWSPENDING (unless it became AWSCURRENT): no version would hold the password that works.
    /// </summary>
    private static ServiceException PastSetSecret(SecretEntity secret, RotationJob job, string action) => ServiceException.InvalidRequest(
        $"The rotation of {secret.Name} has run setSecret (or is running it): the database may already use the password of the pending "
        + $"version {job.Token}, so {action} could lock applications out. Let the rotation finish (RotateSecret retries it now), or make "
        + $"that version current with UpdateSecretVersionStage (VersionStage AWSCURRENT, MoveToVersionId {job.Token}).");

    /// <summary>Refuses a label change that takes AWSPENDING off a rotation's version past setSecret (see <see cref="PastSetSecret"/>).</summary>
    private static async Task RefuseToStrandRotationAsync(ISecretWriter writer, SecretEntity secret, Dictionary<string, string> labelsBefore)
    {
        var stranded = secret.Versions.Find(v => !v.Labels.Contains(StagingLabels.Pending) && !v.Labels.Contains(StagingLabels.Current)
            && labelsBefore.TryGetValue(v.VersionId, out var before) && before.Split('\n').Contains(StagingLabels.Pending));
        if (stranded is not null && await writer.FindRotationAsync(secret.Key) is { } job && MayHaveSetPassword(job) && job.Token == stranded.VersionId)
        {
            throw PastSetSecret(secret, job, "moving AWSPENDING off it");
        }
    }

    public async Task<RotationResponse> CancelRotateSecretAsync(SecretIdRequest request, CallContext context, CancellationToken ct)
    {
        ValidateSecretId(request.SecretId);
        return await store.WriteAsync(async writer =>
        {
            var secret = await FindForWriteAsync(writer, request.SecretId!, context,
                Demand.SecretsManager("CancelRotateSecret"));
            if (secret.RotationEnabled is null)
            {
                throw ServiceException.InvalidRequest("Rotation is not configured for this secret.");
            }
            // As on AWS, the pending version keeps its AWSPENDING label: the caller removes it.
            var job = await writer.FindRotationAsync(secret.Key);
            if (job is not null && MayHaveSetPassword(job))
            {
                // Unlike AWS: a cancelled rotation leaves its version for the caller to strip of AWSPENDING.
                throw PastSetSecret(secret, job, "cancelling it");
            }
            if (job is not null)
            {
                await writer.DeleteRotationAsync(secret.Key);
            }
            secret.RotationEnabled = false;
            secret.NextRotationStart = null;
            secret.NextRotationDate = null;
            secret.LastChangedDate = time.GetUtcNow();
            await writer.UpdateSecretAsync(secret);
            return new RotationResponse { ARN = secret.Arn, Name = secret.Name, VersionId = job?.Token };
        }, ct);
    }

    // --- transitions made by the rotation engine --------------------------------------------------

    /// <summary>Starts the scheduled rotation of a secret if it is still due; false when there is nothing to do.</summary>
    internal Task<bool> StartScheduledRotationAsync(string region, string arn, CancellationToken ct) =>
        store.WriteAsync(async writer =>
        {
            var now = time.GetUtcNow();
            var secret = await writer.FindSecretAsync(region, SecretLookup.ByArn(arn));
            if (secret is not { RotationEnabled: true, IsScheduledForDeletion: false } || secret.NextRotationStart > now
                || await writer.FindRotationAsync(secret.Key) is not null)
            {
                return false;
            }
            if (StagingLabels.RotationInProgress(secret))
            {
                // A pending version nobody is driving (left by a cancelled rotation or a manual put):
                // like AWS, re-attempt the rotation with it rather than skip the secret forever.
                await writer.SaveRotationAsync(NewJob(secret, StagingLabels.Holder(secret, StagingLabels.Pending)!.VersionId, immediately: true, now));
                return true;
            }
            await StartRotationAsync(writer, secret, Guid.NewGuid().ToString(), immediately: true, now);
            await writer.UpdateSecretAsync(secret);
            return true;
        }, ct);

    /// <summary>Records that a step completed; false when this node no longer holds the rotation.</summary>
    internal Task<bool> RecordStepDoneAsync(RotationJob job, CancellationToken ct) =>
        store.WriteAsync(async writer =>
        {
            var stored = await writer.FindRotationAsync(job.SecretKey);
            if (!IsSameRun(stored, job))
            {
                return false;
            }
            stored!.StepsDone = job.StepsDone;
            await writer.SaveRotationAsync(stored);
            return true;
        }, ct);

    /// <summary>
    /// Ends a rotation whose steps all succeeded: the pending version must now be AWSCURRENT; it loses
    /// AWSPENDING (the quiescent state) and the schedule moves on. A test-only rotation, passed or given up,
    /// removes its copy.
    /// </summary>
    internal Task FinishRotationAsync(RotationJob job, CancellationToken ct) =>
        store.WriteAsync(async writer =>
        {
            var secret = await writer.FindSecretAsync(job.Region, SecretLookup.ByArn(job.SecretArn));
            var stored = await writer.FindRotationAsync(job.SecretKey);
            if (secret is null || !IsSameRun(stored, job))
            {
                return false;
            }
            var now = time.GetUtcNow();
            var version = secret.Versions.Find(v => v.VersionId == job.Token);
            var snapshot = LabelSnapshot(secret);
            if (!job.RotateImmediately)
            {
                // The copy goes, unless someone gave it another label meanwhile (then only AWSPENDING goes).
                if (version is not null)
                {
                    StagingLabels.Move(secret, StagingLabels.Pending, null);
                    if (version.IsDeprecated)
                    {
                        await writer.DeleteVersionAsync(secret.Key, version.VersionId);
                        secret.Versions.Remove(version);
                    }
                    await SaveLabelChangesAsync(writer, secret, snapshot, null);
                }
            }
            else
            {
                if (version is null || !version.Labels.Contains(StagingLabels.Current))
                {
                    throw new RotationStepException($"finishSecret returned, but version {job.Token} is not AWSCURRENT.");
                }
                StagingLabels.Move(secret, StagingLabels.Pending, null);
                await SaveLabelChangesAsync(writer, secret, snapshot, null);
                await PruneAsync(writer, secret, now, refuseWhenFull: false);
                secret.LastRotatedDate = now;
                ScheduleNextRotation(secret, now);
                secret.LastChangedDate = now;
                await writer.UpdateSecretAsync(secret);
            }
            await writer.DeleteRotationAsync(secret.Key);
            return true;
        }, ct);

    /// <summary>Records a failed attempt (message only, never a value) and when to try again.</summary>
    internal Task RecordFailureAsync(RotationJob job, string error, TimeSpan retryAfter, CancellationToken ct) =>
        store.WriteAsync(async writer =>
        {
            var stored = await writer.FindRotationAsync(job.SecretKey);
            if (!IsSameRun(stored, job))
            {
                return false;
            }
            stored!.Attempts++;
            // When every step ran but the result was wrong (finishSecret did not make the version current),
            // the next attempt runs the last step again rather than nothing.
            stored.StepsDone = Math.Min(job.StepsDone, (job.RotateImmediately ? RotationStep.All.Count : 1) - 1);
            stored.LastError = error;
            stored.NextAttemptDate = time.GetUtcNow() + retryAfter;
            stored.LeaseOwner = null;
            stored.LeaseExpires = null;
            await writer.SaveRotationAsync(stored);
            return true;
        }, ct);

    /// <summary>
    /// Drops a job whose pending version was abandoned; true when it did. The engine asks before each run.
    /// </summary>
    internal Task<bool> DropIfAbandonedAsync(RotationJob job, CancellationToken ct) =>
        store.WriteAsync(async writer =>
        {
            var secret = await writer.FindSecretAsync(job.Region, SecretLookup.ByArn(job.SecretArn));
            if (secret is not null && !IsAbandoned(secret, job))
            {
                return false;
            }
            if (secret is not null && IsSameRun(await writer.FindRotationAsync(secret.Key), job))
            {
                await writer.DeleteRotationAsync(secret.Key);
            }
            return true;
        }, ct);

    /// <summary>The stored job is still this run: same rotation and still leased by the same node.</summary>
    private static bool IsSameRun(RotationJob? stored, RotationJob job) =>
        stored is not null && stored.Token == job.Token && stored.LeaseOwner == job.LeaseOwner;

    /// <summary>The rotation status DescribeSecret shows while a rotation is running or failing.</summary>
    private static TumblerRotationStatus? StatusOf(RotationJob? job) => job is null ? null : new TumblerRotationStatus
    {
        VersionId = job.Token,
        State = job.LastError is null ? "InProgress" : "Retrying",
        NextStep = job.RotateImmediately ? RotationStep.All[Math.Min(job.StepsDone, 3)] : RotationStep.TestSecret,
        Attempts = job.Attempts,
        LastError = job.LastError,
        NextAttemptDate = job.LastError is null ? null : job.NextAttemptDate,
    };

    /// <summary>
    /// Creates the pending version (the valueless AWSPENDING placeholder, or for a test-only rotation a
    /// copy of the current value) and the job that drives it.
    /// </summary>
    private async Task StartRotationAsync(ISecretWriter writer, SecretEntity secret, string token, bool immediately, DateTimeOffset now)
    {
        // A rotation deprecates one version when it finishes: refuse now, before the database is touched,
        // rather than leave a password set that the secret can't make current.
        await PruneAsync(writer, secret, now, headroom: immediately ? 1 : 0);
        var snapshot = LabelSnapshot(secret);
        var version = new VersionEntity { VersionId = token, CreatedDate = now };
        byte[]? value = null;
        if (!immediately)
        {
            var current = StagingLabels.Holder(secret, StagingLabels.Current) is { HasValue: true } holder
                ? holder
                : throw ServiceException.InvalidRequest("The secret has no current value to test the rotation function with.");
            var blob = await writer.ReadValueAsync(secret.Key, current.VersionId)
                ?? throw ServiceException.InvalidRequest("The secret has no current value to test the rotation function with.");
            version.KeyId = keys.ResolveKeyId(secret.KmsKeyId);
            version.HasValue = true;
            value = keys.Encrypt(version.KeyId, keys.Decrypt(blob, secret.Arn, current.VersionId), secret.Arn, token);
        }
        secret.Versions.Add(version);
        StagingLabels.Move(secret, StagingLabels.Pending, version);
        await writer.InsertVersionAsync(secret.Key, version, value);
        await SaveLabelChangesAsync(writer, secret, snapshot, version);
        await writer.SaveRotationAsync(NewJob(secret, token, immediately, now));
    }

    private static RotationJob NewJob(SecretEntity secret, string token, bool immediately, DateTimeOffset now) => new()
    {
        SecretKey = secret.Key,
        SecretArn = secret.Arn,
        Region = secret.Region,
        Token = token,
        RotationToken = Guid.NewGuid().ToString(),
        RotateImmediately = immediately,
        StartedDate = now,
        NextAttemptDate = now,
    };

    /// <summary>
    /// A job whose pending version is gone or no longer pending (someone removed the label, as AWS tells
    /// users to do with a stuck rotation) has nothing left to drive.
    /// </summary>
    private static bool IsAbandoned(SecretEntity secret, RotationJob job) =>
        secret.Versions.Find(v => v.VersionId == job.Token) is not { } version
        || !(version.Labels.Contains(StagingLabels.Pending) || version.Labels.Contains(StagingLabels.Current));

    /// <summary>A manual change of AWSCURRENT counts as a rotation for the schedule (spec §3.7).</summary>
    private static void RescheduleAfterManualChange(SecretEntity secret, VersionEntity version, DateTimeOffset now)
    {
        if (secret.RotationEnabled == true && version.Labels.Contains(StagingLabels.Current))
        {
            ScheduleNextRotation(secret, now);
        }
    }

    private static void ScheduleNextRotation(SecretEntity secret, DateTimeOffset lastRotation)
    {
        var rules = RulesOf(secret);
        if (secret.RotationEnabled != true || rules is null)
        {
            secret.NextRotationStart = null;
            secret.NextRotationDate = null;
            return;
        }
        var window = RotationSchedule.Parse(rules).NextWindow(lastRotation);
        secret.NextRotationStart = window.Start;
        secret.NextRotationDate = window.End;
    }

    private static RotationRulesType? RulesOf(SecretEntity secret) =>
        secret.RotationRulesJson is null ? null : JsonSerializer.Deserialize(secret.RotationRulesJson, RotationJson.Default.RotationRulesType);

    /// <summary>
    /// The RotationRules DescribeSecret and ListSecrets show: as the caller gave them, and with a ScheduleExpression
    /// also the AutomaticallyAfterDays AWS works out from it after each rotation (so a compliance check that reads
    /// only that member sees every schedule). The schedule itself keeps only what the caller gave.
    /// </summary>
    private static RotationRulesType? ReportedRulesOf(SecretEntity secret)
    {
        var rules = RulesOf(secret);
        if (rules is not { ScheduleExpression: not null, AutomaticallyAfterDays: null })
        {
            return rules;
        }
        var lastRotation = secret.LastRotatedDate ?? secret.CreatedDate;
        return rules with { AutomaticallyAfterDays = RotationSchedule.Parse(rules).DaysBetweenRotations(lastRotation) };
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RotationRulesType))]
internal sealed partial class RotationJson : JsonSerializerContext;
