using System.Security.Cryptography;
using Tumbler.Core.Crypto;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Core.Tests.Support;

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
    public void Advance(TimeSpan by) => Now += by;
}

/// <summary>SecretsService on a real SQLite store in a temporary directory.</summary>
public sealed class ServiceHarness : IAsyncDisposable
{
    public static readonly CallContext Caller = CallContext.AsRoot("us-east-1", "123456789012");

    private ServiceHarness(string directory, SqliteSecretStore store, KeyRing keys, ManualClock clock, SecretsService service)
    {
        Directory = directory;
        Store = store;
        Keys = keys;
        Clock = clock;
        Service = service;
    }

    public string Directory { get; }
    public string DatabasePath => Path.Combine(Directory, "tumbler.db");
    public SqliteSecretStore Store { get; }
    public KeyRing Keys { get; }
    public ManualClock Clock { get; }
    public SecretsService Service { get; }

    public static async Task<ServiceHarness> CreateAsync(SecretsOptions? options = null, IRotationFunctionRegistry? functions = null)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("tumbler-core-tests-").FullName;
        var store = new SqliteSecretStore(Path.Combine(directory, "tumbler.db"));
        await store.InitializeAsync(CancellationToken.None);
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 28, 10, 0, 0, TimeSpan.Zero));
        var keys = await KeyRing.OpenAsync(store, RandomNumberGenerator.GetBytes(32), "us-east-1", "123456789012", clock, CancellationToken.None);
        return new ServiceHarness(directory, store, keys, clock, new SecretsService(store, keys, clock, options ?? new SecretsOptions(), functions));
    }

    public static string Token() => Guid.NewGuid().ToString();

    public Task<CreateSecretResponse> CreateAsync(string name, string? value = null) =>
        Service.CreateSecretAsync(new CreateSecretRequest { Name = name, SecretString = value, ClientRequestToken = Token() }, Caller, default);

    public Task<PutSecretValueResponse> PutAsync(string id, string value, IReadOnlyList<string>? stages = null, string? token = null) =>
        Service.PutSecretValueAsync(new PutSecretValueRequest
        {
            SecretId = id, SecretString = value, VersionStages = stages, ClientRequestToken = token ?? Token(),
        }, Caller, default);

    public async Task<Dictionary<string, List<string>>> LabelsAsync(string id)
    {
        var described = await Service.DescribeSecretAsync(new SecretIdRequest { SecretId = id }, Caller, default);
        return described.VersionIdsToStages?.ToDictionary(p => p.Key, p => p.Value.Order(StringComparer.Ordinal).ToList()) ?? [];
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
