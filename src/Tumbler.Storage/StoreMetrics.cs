using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace Tumbler.Storage;

/// <summary>
/// Store latency on the BCL metrics API (the server exports the "Tumbler.*" meters in Prometheus format): the
/// time of each read by the store method that made it, and of each write transaction (waiting for the write
/// lock included: that wait is what a client feels when writers queue).
/// </summary>
public static class StoreMetrics
{
    public const string MeterName = "Tumbler.Storage";
    public const string WriteTransaction = "write_transaction";
    private static readonly Meter Meter = new(MeterName);

    public static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("tumbler_store_operation_duration", "s",
        "Time of a store read (by method) or write transaction.");

    /// <summary>Times the calling method until disposed: <c>using var _ = StoreMetrics.Time();</c>.</summary>
    public static Timer Time([CallerMemberName] string operation = "") => new(operation, Stopwatch.GetTimestamp());

    public readonly struct Timer(string operation, long started) : IDisposable
    {
        public void Dispose() =>
            Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("operation", operation));
    }
}
