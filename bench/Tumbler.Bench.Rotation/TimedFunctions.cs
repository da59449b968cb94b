using System.Collections.Concurrent;
using System.Diagnostics;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;

namespace Tumbler.Bench.Rotation;

/// <summary>One step of one rotation, as the function saw it.</summary>
/// <param name="Start">Stopwatch timestamp when the engine invoked the step.</param>
/// <param name="Ticks">Stopwatch ticks the step took.</param>
/// <param name="SecretsManagerTicks">Of those, ticks spent in Secrets Manager calls (the rest is the database and the function itself).</param>
public sealed record StepSample(string SecretId, string Step, long Start, long Ticks, long SecretsManagerTicks, bool Succeeded);

/// <summary>
/// The built-in functions, each wrapped so every step and every Secrets Manager call it makes is timed.
/// The wrapper adds nothing else: the engine and the functions run exactly as in the server.
/// </summary>
public sealed class TimedFunctions(IRotationFunctionRegistry inner) : IRotationFunctionRegistry
{
    private readonly ConcurrentDictionary<IRotationFunction, TimedFunction> _wrapped = new();
    private ConcurrentQueue<StepSample> _samples = new();

    public IRotationFunction? Find(string lambdaArn) =>
        inner.Find(lambdaArn) is { } function ? _wrapped.GetOrAdd(function, f => new TimedFunction(f, this)) : null;

    /// <summary>The samples recorded since the last call.</summary>
    public IReadOnlyList<StepSample> Drain() => [.. Interlocked.Exchange(ref _samples, new ConcurrentQueue<StepSample>())];

    private void Record(StepSample sample) => Volatile.Read(ref _samples).Enqueue(sample);

    private sealed class TimedFunction(IRotationFunction inner, TimedFunctions owner) : IRotationFunction
    {
        public async Task InvokeAsync(RotationEvent rotationEvent, ISecretsManagerClient secrets, CancellationToken ct)
        {
            var client = new TimedClient(secrets);
            var start = Stopwatch.GetTimestamp();
            var ok = false;
            try
            {
                await inner.InvokeAsync(rotationEvent, client, ct);
                ok = true;
            }
            finally
            {
                owner.Record(new StepSample(rotationEvent.SecretId, rotationEvent.Step, start, Stopwatch.GetTimestamp() - start, client.Ticks, ok));
            }
        }
    }

    private sealed class TimedClient(ISecretsManagerClient inner) : ISecretsManagerClient
    {
        private long _ticks;
        public long Ticks => Interlocked.Read(ref _ticks);

        public Task<DescribeSecretResponse> DescribeSecretAsync(SecretIdRequest request, CancellationToken ct) => Timed(() => inner.DescribeSecretAsync(request, ct));
        public Task<GetSecretValueResponse> GetSecretValueAsync(GetSecretValueRequest request, CancellationToken ct) => Timed(() => inner.GetSecretValueAsync(request, ct));
        public Task<PutSecretValueResponse> PutSecretValueAsync(PutSecretValueRequest request, CancellationToken ct) => Timed(() => inner.PutSecretValueAsync(request, ct));
        public Task<SecretIdentity> UpdateSecretVersionStageAsync(UpdateSecretVersionStageRequest request, CancellationToken ct) =>
            Timed(() => inner.UpdateSecretVersionStageAsync(request, ct));
        public Task<GetRandomPasswordResponse> GetRandomPasswordAsync(GetRandomPasswordRequest request, CancellationToken ct) =>
            Timed(() => inner.GetRandomPasswordAsync(request, ct));

        // Microsoft.Data.Sqlite's async methods complete synchronously: the call must start inside the timing.
        private async Task<T> Timed<T>(Func<Task<T>> call)
        {
            var start = Stopwatch.GetTimestamp();
            try
            {
                return await call();
            }
            finally
            {
                Interlocked.Add(ref _ticks, Stopwatch.GetTimestamp() - start);
            }
        }
    }
}
