using System.Diagnostics.Metrics;
using Prometheus;
using Tumbler.Core.Storage;
using Tumbler.Storage;

namespace Tumbler.Server.Metrics;

/// <summary>
/// The server's Prometheus metrics, in a registry of its own (several servers in one process do not
/// mix): requests by operation and outcome with their latency, rotation steps and attempts by function
/// and result, and, computed at scrape time from the store, how long ago each secret with
/// rotation enabled last rotated and how late the scheduler is.
/// </summary>
public sealed class ServerMetrics : IDisposable
{
    private readonly Counter _requests;
    private readonly Histogram _requestSeconds;
    private readonly Gauge _sinceLastRotation;
    private readonly Gauge _schedulerLag;
    private readonly Gauge _rotationsInProgress;
    private readonly Counter _rotationSteps;
    private readonly Counter _rotationAttempts;
    private readonly Histogram _storeSeconds;
    private readonly MeterListener _meterListener = new();
    private readonly HashSet<string> _exportedSecrets = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public ServerMetrics(ISecretStore store, TimeProvider time)
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        _requests = factory.CreateCounter("tumbler_requests_total", "API and admin requests answered, by operation and outcome.",
            new CounterConfiguration { LabelNames = ["operation", "outcome"] });
        _requestSeconds = factory.CreateHistogram("tumbler_request_duration_seconds", "Time to answer a request, by operation.",
            new HistogramConfiguration { LabelNames = ["operation"], Buckets = Histogram.ExponentialBuckets(0.0001, 2, 16) });
        _sinceLastRotation = factory.CreateGauge("tumbler_secret_seconds_since_last_rotation",
            "Seconds since each secret with rotation enabled last rotated successfully (since its creation if never): alarm on it to catch rotation that silently stopped.",
            new GaugeConfiguration { LabelNames = ["secret"] });
        _schedulerLag = factory.CreateGauge("tumbler_rotation_scheduler_lag_seconds",
            "How long the most overdue scheduled rotation has been due without starting (0 when none is).");
        _rotationsInProgress = factory.CreateGauge("tumbler_rotations_in_progress", "Rotations started and not yet finished.");
        _rotationSteps = factory.CreateCounter("tumbler_rotation_steps_total", "Rotation steps run, by function, step and result.",
            new CounterConfiguration { LabelNames = ["function", "step", "result"] });
        _rotationAttempts = factory.CreateCounter("tumbler_rotation_attempts_total",
            "Rotation attempts ended, by function and result (a failed attempt is retried with backoff).",
            new CounterConfiguration { LabelNames = ["function", "result"] });
        _storeSeconds = factory.CreateHistogram("tumbler_store_operation_duration_seconds",
            "Time of a store read (by store method) or write transaction (operation=\"write_transaction\", waiting for the write lock included).",
            new HistogramConfiguration { LabelNames = ["operation"], Buckets = Histogram.ExponentialBuckets(0.00005, 2, 16) });
        ListenToMeters();
        Registry.AddBeforeCollectCallback(async ct => Observe(await store.ListRotationStatusAsync(ct), time.GetUtcNow()));
    }

    public CollectorRegistry Registry { get; }

    public void RecordRequest(string operation, string outcome, TimeSpan elapsed)
    {
        _requests.WithLabels(operation, outcome).Inc();
        _requestSeconds.WithLabels(operation).Observe(elapsed.TotalSeconds);
    }

    public void Dispose() => _meterListener.Dispose();

    /// <summary>
    /// Core counts rotations and the store times its operations on the BCL metrics API (they have no exporter dependency);
    /// the measurements are carried over here by name.
    /// </summary>
    private void ListenToMeters()
    {
        _meterListener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name is "Tumbler.Rotation" or StoreMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        static string Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string name)
        {
            foreach (var tag in tags)
            {
                if (tag.Key == name)
                {
                    return tag.Value?.ToString() ?? "";
                }
            }
            return "";
        }
        _meterListener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "tumbler_store_operation_duration")
            {
                _storeSeconds.WithLabels(Tag(tags, "operation")).Observe(value);
            }
        });
        _meterListener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "tumbler_rotation_steps")
            {
                _rotationSteps.WithLabels(Tag(tags, "function"), Tag(tags, "step"), Tag(tags, "result")).Inc(value);
            }
            else if (instrument.Name == "tumbler_rotation_attempts")
            {
                _rotationAttempts.WithLabels(Tag(tags, "function"), Tag(tags, "result")).Inc(value);
            }
        });
        _meterListener.Start();
    }

    private void Observe(IReadOnlyList<RotationStatus> statuses, DateTimeOffset now)
    {
        lock (_gate)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var lag = TimeSpan.Zero;
            foreach (var status in statuses)
            {
                seen.Add(status.Arn);
                _sinceLastRotation.WithLabels(status.Arn).Set((now - (status.LastRotatedDate ?? status.CreatedDate)).TotalSeconds);
                if (!status.InProgress && status.NextRotationStart is { } due && now - due > lag)
                {
                    lag = now - due;
                }
            }
            // Secrets deleted or no longer rotating stop being reported rather than freezing at their last value.
            foreach (var gone in _exportedSecrets.Where(arn => !seen.Contains(arn)).ToList())
            {
                _sinceLastRotation.RemoveLabelled(gone);
                _exportedSecrets.Remove(gone);
            }
            _exportedSecrets.UnionWith(seen);
            _schedulerLag.Set(lag.TotalSeconds);
            _rotationsInProgress.Set(statuses.Count(s => s.InProgress));
        }
    }
}
