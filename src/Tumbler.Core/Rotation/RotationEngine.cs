using Microsoft.Extensions.Logging;
using Tumbler.Core.Access;
using Tumbler.Core.Audit;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Rotation;

public sealed record RotationOptions
{
    /// <summary>How long a claimed rotation stays with one node without renewal; a dead node's rotation resumes after it.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan StepTimeout { get; init; } = TimeSpan.FromMinutes(5);
    public int MaxConcurrency { get; init; } = 4;
    /// <summary>Scheduled rotations started per pass.</summary>
    public int BatchSize { get; init; } = 100;
    public TimeSpan RetryBase { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan RetryMax { get; init; } = TimeSpan.FromHours(1);
    /// <summary>
    /// Attempts of a test-only rotation (RotateImmediately false) before it gives up. A real rotation is retried until it
    /// succeeds (past setSecret the database may hold only the pending password); a test changes nothing, so after its
    /// last attempt its copy goes and the secret is free to rotate again.
    /// </summary>
    public int TestAttempts { get; init; } = 3;
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Test-only fault injection: called with "STEP:before" and "STEP:after" around every step.</summary>
    public Action<string>? StepBoundary { get; init; }
}

/// <summary>
/// Runs rotations: createSecret, setSecret, testSecret, finishSecret, strictly in order, each through
/// the secret's rotation function. Progress is persisted after every step and the work is leased, so
/// a crash anywhere resumes on this or another node from the last completed step, with the same
/// pending version (and so the same password). A failed attempt is retried with exponential backoff.
/// </summary>
public sealed class RotationEngine(SecretsService secrets, ISecretStore store, IRotationFunctionRegistry functions, TimeProvider time,
    RotationOptions options, ILogger<RotationEngine> logger, IAuditLog? audit = null)
{
    private readonly IAuditLog _audit = audit ?? NoAuditLog.Instance;

    public string NodeId { get; } = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}";

    /// <summary>One pass: starts the scheduled rotations that are due, then runs the rotations this node claims. Returns how many ran.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        var running = await StartDueAsync(options.MaxConcurrency, ct);
        await Task.WhenAll(running);
        return running.Count;
    }

    /// <summary>
    /// Starts the scheduled rotations that are due, then claims up to <paramref name="freeSlots"/>
    /// rotations and starts running them; the tasks end when each rotation succeeded or failed.
    /// </summary>
    public async Task<IReadOnlyList<Task>> StartDueAsync(int freeSlots, CancellationToken ct)
    {
        foreach (var (region, arn) in await store.FindDueRotationsAsync(time.GetUtcNow(), options.BatchSize, ct))
        {
            try
            {
                if (await secrets.StartScheduledRotationAsync(region, arn, ct))
                {
                    logger.LogInformation("Scheduled rotation of {Arn} started", arn);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Could not start the scheduled rotation of {Arn}", arn);
            }
        }
        if (freeSlots <= 0)
        {
            return [];
        }
        var now = time.GetUtcNow();
        var jobs = await store.ClaimRotationsAsync(now, NodeId, now + options.LeaseDuration, freeSlots, ct);
        return [.. jobs.Select(job => RunAsync(job, ct))];
    }

    private async Task RunAsync(RotationJob job, CancellationToken ct)
    {
        using var leased = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var renewal = KeepLeaseAsync(job, leased);
        var steps = job.RotateImmediately ? RotationStep.All : [RotationStep.TestSecret];
        var step = steps[Math.Min(job.StepsDone, steps.Count - 1)];
        var function = RotationMetrics.Function(null);
        try
        {
            if (await secrets.DropIfAbandonedAsync(job, ct))
            {
                logger.LogWarning("Rotation {Token} of {Arn} was abandoned: its pending version is gone or no longer AWSPENDING", job.Token, job.SecretArn);
                return;
            }
            var secret = await store.FindSecretAsync(job.Region, SecretLookup.ByArn(job.SecretArn), ct)
                ?? throw new RotationStepException("The secret no longer exists.");
            function = RotationMetrics.Function(secret.RotationLambdaArn);
            var client = new ScopedSecretsClient(secrets, new CallContext(job.Region, RotationPrincipal(job)), job.SecretArn);
            for (var i = job.StepsDone; i < steps.Count; i++)
            {
                step = steps[i];
                // Found again for every step: a function deleted or changed meanwhile (tumbler functions delete, update)
                // takes effect at the next step, not after the rest of this attempt ran the old one.
                var rotationFunction = (secret.RotationLambdaArn is { } arn ? await functions.FindAsync(arn, ct) : null)
                    ?? throw new RotationStepException($"The rotation function {secret.RotationLambdaArn} is not available.");
                options.StepBoundary?.Invoke($"{step}:before");
                using (var stepTimeout = CancellationTokenSource.CreateLinkedTokenSource(leased.Token))
                {
                    stepTimeout.CancelAfter(options.StepTimeout);
                    try
                    {
                        await rotationFunction.InvokeAsync(new RotationEvent(job.SecretArn, job.Token, step, job.RotationToken), client, stepTimeout.Token);
                    }
                    catch (OperationCanceledException) when (stepTimeout.IsCancellationRequested && !leased.IsCancellationRequested)
                    {
                        throw new RotationStepException($"The step timed out after {options.StepTimeout.TotalSeconds:0} seconds.");
                    }
                }
                options.StepBoundary?.Invoke($"{step}:after");
                // Audited before the step counts as done: if the record cannot be written the step is retried (steps are idempotent).
                await AuditStepAsync(job, step, null);
                RotationMetrics.Steps.Add(1, function, new("step", step), new("result", "success"));
                job.StepsDone = i + 1;
                if (!await secrets.RecordStepDoneAsync(job, ct))
                {
                    logger.LogWarning("Rotation {Token} of {Arn} was cancelled or taken over; stopping", job.Token, job.SecretArn);
                    return;
                }
            }
            await secrets.FinishRotationAsync(job, ct);
            RotationMetrics.Attempts.Add(1, function, new("result", "success"));
            logger.LogInformation("Rotation {Token} of {Arn} succeeded", job.Token, job.SecretArn);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            if (leased.IsCancellationRequested)
            {
                logger.LogWarning("Lost the lease on rotation {Token} of {Arn} during {Step}; another node resumes it", job.Token, job.SecretArn, step);
                return;
            }
            var retryAfter = TimeSpan.FromTicks(Math.Min(options.RetryMax.Ticks, options.RetryBase.Ticks << Math.Min(job.Attempts, 20)));
            var error = $"{step}: {Describe(e)}";
            RotationMetrics.Steps.Add(1, function, new("step", step), new("result", "failure"));
            RotationMetrics.Attempts.Add(1, function, new("result", "failure"));
            try
            {
                await AuditStepAsync(job, step, e);
            }
            catch (AuditUnavailableException audited)
            {
                logger.LogError("Could not audit the failed {Step} of rotation {Token}: {Reason}", step, job.Token, audited.Message);
            }
            if (!job.RotateImmediately && job.Attempts + 1 >= options.TestAttempts)
            {
                await secrets.FinishRotationAsync(job, CancellationToken.None);
                logger.LogError("The rotation test {Token} of {Arn} failed {Attempts} times, last at {Error}; gave up and removed its pending version",
                    job.Token, job.SecretArn, job.Attempts + 1, error);
                return;
            }
            await secrets.RecordFailureAsync(job, error, retryAfter, CancellationToken.None);
            logger.LogWarning("Rotation {Token} of {Arn} failed (attempt {Attempt}) at {Error}; retrying in {RetryAfter}",
                job.Token, job.SecretArn, job.Attempts + 1, error, retryAfter);
        }
        finally
        {
            await leased.CancelAsync();
            await renewal;
        }
    }

    private ValueTask AuditStepAsync(RotationJob job, string step, Exception? failure) =>
        _audit.AppendAsync(new AuditRecord
        {
            Time = time.GetUtcNow(),
            RequestId = $"rotation-{job.Token}-{step}-{job.Attempts + 1}",
            Operation = "RotationStep",
            Outcome = failure is null ? AuditOutcome.Success : AuditOutcome.Failed,
            ErrorCode = failure switch { null => null, ServiceException service => service.ErrorCode, _ => failure.GetType().Name },
            PrincipalArn = RotationPrincipal(job).Arn,
            Region = job.Region,
            SecretArn = job.SecretArn,
            VersionId = job.Token,
            VersionStage = "AWSPENDING",
            RotationStep = step,
        }, CancellationToken.None);

    /// <summary>Renews the lease while the rotation runs; cancels the run when the lease is lost.</summary>
    private async Task KeepLeaseAsync(RotationJob job, CancellationTokenSource leased)
    {
        try
        {
            while (true)
            {
                await Task.Delay(options.LeaseDuration / 3, time, leased.Token);
                if (!await store.RenewLeaseAsync(job.SecretKey, NodeId, time.GetUtcNow() + options.LeaseDuration, leased.Token))
                {
                    await leased.CancelAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The rotation ended.
        }
        catch (Exception e)
        {
            // Without a renewed lease another node may take the rotation over: stop rather than race it.
            logger.LogWarning(e, "Could not renew the lease on rotation {Token} of {Arn}; stopping it", job.Token, job.SecretArn);
            await leased.CancelAsync();
        }
    }

    /// <summary>Failure text for operators: our own messages, and the type and message of anything else (never a value).</summary>
    private static string Describe(Exception e) => e switch
    {
        RotationStepException or ServiceException => e.Message,
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    private static Principal RotationPrincipal(RotationJob job)
    {
        var account = job.SecretArn.Split(':')[4];
        return Principal.Internal($"arn:aws:sts::{account}:assumed-role/TumblerRotation/{job.Token}", account);
    }
}
