using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Tumbler.Core.Crypto;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;
using Tumbler.Rotators;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Bench.Rotation;

/// <summary>A clock the benchmark moves by hand (only <see cref="TimeProvider.GetUtcNow"/>; timers stay real).</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
    public void Advance(TimeSpan by) => Now += by;
}

/// <summary>
/// What the server wires together, in process: SecretsService on a real SQLite store (WAL, synchronous
/// FULL) in a temporary directory, a KeyRing with a random root key, and the built-in rotation functions
/// (the store wrapped by <see cref="TimedStore"/> and the functions by <see cref="TimedFunctions"/>, which only measure).
/// </summary>
public sealed class BenchHost : IAsyncDisposable
{
    public static readonly CallContext Caller = CallContext.AsRoot("us-east-1", "123456789012");

    private BenchHost(string directory, TimedStore store, ManualClock clock, TimedFunctions functions, SecretsService service)
    {
        Directory = directory;
        Store = store;
        Clock = clock;
        Functions = functions;
        Service = service;
    }

    public string Directory { get; }
    /// <summary>The SQLite store, counted and timed.</summary>
    public TimedStore Store { get; }
    public ManualClock Clock { get; }
    public TimedFunctions Functions { get; }
    public SecretsService Service { get; }

    public static async Task<BenchHost> CreateAsync(CancellationToken ct)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("tumbler-bench-").FullName;
        var store = new TimedStore(new SqliteSecretStore(Path.Combine(directory, "tumbler.db")));
        await store.InitializeAsync(ct);
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 28, 10, 0, 0, TimeSpan.Zero));
        var keys = await KeyRing.OpenAsync(store, RandomNumberGenerator.GetBytes(32), "us-east-1", "123456789012", clock, ct);
        var functions = new TimedFunctions(new BuiltInRotationFunctions());
        var service = new SecretsService(store, keys, clock, new SecretsOptions(), functions);
        return new BenchHost(directory, store, clock, functions, service);
    }

    /// <summary>An engine as the server builds it, with the defaults except where the benchmark says otherwise.</summary>
    public RotationEngine NewEngine(int maxConcurrency, Action<string>? stepBoundary = null) =>
        new(Service, Store, Functions, Clock, new RotationOptions { MaxConcurrency = maxConcurrency, StepBoundary = stepBoundary },
            NullLogger<RotationEngine>.Instance);

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
