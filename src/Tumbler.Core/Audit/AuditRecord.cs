namespace Tumbler.Core.Audit;

/// <summary>
/// One audited event: a request (any API or admin operation) or one rotation step. The type has no
/// member that could hold a secret value or a secret access key, on purpose: nothing put in here may
/// be secret. Null members are left out of the log line.
/// </summary>
public sealed record AuditRecord
{
    public required DateTimeOffset Time { get; init; }
    public required string RequestId { get; init; }
    /// <summary>The API operation ("GetSecretValue"), "RotationStep" for rotation steps, or the admin call ("CreateUser").</summary>
    public required string Operation { get; init; }
    /// <summary><see cref="AuditOutcome.Success"/>, <see cref="AuditOutcome.Denied"/> or <see cref="AuditOutcome.Failed"/>.</summary>
    public required string Outcome { get; init; }
    public string? ErrorCode { get; init; }
    public string? PrincipalArn { get; init; }
    public string? AccessKeyId { get; init; }
    public string? SourceIp { get; init; }
    public string? UserAgent { get; init; }
    public string? Region { get; init; }
    public string? SecretArn { get; init; }
    public string? VersionId { get; init; }
    public string? VersionStage { get; init; }
    /// <summary>createSecret, setSecret, testSecret or finishSecret, for rotation records.</summary>
    public string? RotationStep { get; init; }
    /// <summary>A short non-secret note, e.g. the target user name of an IAM call.</summary>
    public string? Detail { get; init; }
}

/// <summary>The values of <see cref="AuditRecord.Outcome"/>.</summary>
public static class AuditOutcome
{
    public const string Success = "Success";
    public const string Denied = "Denied";
    public const string Failed = "Failed";
}

/// <summary>Where audit records go. Implementations serialize concurrent appends.</summary>
public interface IAuditLog
{
    /// <summary>
    /// Appends one record (handed to the operating system before this returns, so it survives the
    /// process being killed); throws <see cref="AuditUnavailableException"/> when it cannot, so the
    /// caller fails closed.
    /// </summary>
    ValueTask AppendAsync(AuditRecord record, CancellationToken ct);

    /// <summary>False after a write failure until a later write succeeds; the server checks it before doing work.</summary>
    bool IsHealthy { get; }

    /// <summary>
    /// The readiness probe's check: <see cref="IsHealthy"/>, and whatever the log can see of a fault that no write has
    /// met yet (costlier than IsHealthy, so not for every request).
    /// </summary>
    bool CheckHealth() => IsHealthy;
}

/// <summary>The audit record could not be written: the request it describes must not go ahead.</summary>
public sealed class AuditUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Audits nothing: for <c>--audit none</c> and for tests.</summary>
public sealed class NoAuditLog : IAuditLog
{
    public static readonly NoAuditLog Instance = new();

    private NoAuditLog()
    {
    }

    public ValueTask AppendAsync(AuditRecord record, CancellationToken ct) => ValueTask.CompletedTask;

    public bool IsHealthy => true;
}
