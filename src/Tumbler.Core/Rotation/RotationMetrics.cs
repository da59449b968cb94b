using System.Diagnostics.Metrics;

namespace Tumbler.Core.Rotation;

/// <summary>
/// Rotation counters on the BCL metrics API (no exporter dependency in Core); the server exports
/// the "Tumbler.*" meters in Prometheus format.
/// </summary>
internal static class RotationMetrics
{
    public const string MeterName = "Tumbler.Rotation";
    private static readonly Meter Meter = new(MeterName);

    /// <summary>Steps run, by function, step and result (success/failure).</summary>
    public static readonly Counter<long> Steps = Meter.CreateCounter<long>("tumbler_rotation_steps", description: "Rotation steps run, by function, step and result.");

    /// <summary>Rotation attempts ended, by function and result (success, or failure: retried with backoff).</summary>
    public static readonly Counter<long> Attempts = Meter.CreateCounter<long>("tumbler_rotation_attempts", description: "Rotation attempts ended, by function and result.");

    public static KeyValuePair<string, object?> Function(string? lambdaArn) =>
        new("function", lambdaArn is null ? "none" : lambdaArn[(lambdaArn.LastIndexOf(':') + 1)..]);
}
