using System.Collections.Concurrent;
using System.Text;
using Tumbler.Client;
using Tumbler.Client.Model;
using Tumbler.Server.Hosting;

namespace Tumbler.Client.Tests.Support;

/// <summary>A real Tumbler server on Kestrel on 127.0.0.1 (ephemeral port) over a temporary data directory; one per test.</summary>
public sealed class LiveServer : IAsyncLifetime
{
    private readonly string _dataDirectory = Directory.CreateTempSubdirectory("tumbler-client-tests-").FullName;
    private bool _stopped;

    public TumblerServer Server { get; private set; } = null!;
    public Uri Endpoint => Server.Endpoint;
    public AwsCredentials Root => new(Server.Root.AccessKeyId, Server.Root.SecretAccessKey);

    /// <summary>Counts every call the clients made by <see cref="NewClient"/> send, by operation.</summary>
    public CountingHandler Calls { get; } = new();

    public async Task InitializeAsync() =>
        Server = await TumblerServer.StartAsync(new ServerOptions { DataDirectory = _dataDirectory, Listen = ["127.0.0.1:0"] }, TextWriter.Null, default);

    /// <summary>A client whose calls are counted in <see cref="Calls"/>.</summary>
    public SecretsManagerClient NewClient() => new(Endpoint, Root, "us-east-1", handler: Calls);

    /// <summary>An uncounted client, for the test's own setup calls.</summary>
    public SecretsManagerClient NewAdminClient() => new(Endpoint, Root, "us-east-1");

    /// <summary>Stops the server (the port closes): the clients now fail to connect.</summary>
    public async Task StopAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            await Server.DisposeAsync();
        }
    }

    public async Task DisposeAsync()
    {
        await StopAsync();
        Calls.Dispose();
        Directory.Delete(_dataDirectory, recursive: true);
    }

    public async Task<CreateSecretResponse> CreateAsync(string name, string value)
    {
        using var admin = NewAdminClient();
        return await admin.CreateSecretAsync(new CreateSecretRequest { Name = name, SecretString = value });
    }

    public async Task<PutSecretValueResponse> PutAsync(string name, string value)
    {
        using var admin = NewAdminClient();
        return await admin.PutSecretValueAsync(new PutSecretValueRequest { SecretId = name, SecretString = value });
    }

    /// <summary>Any operation by raw JSON (for ones the typed client does not have, e.g. DeleteSecret).</summary>
    public async Task RawAsync(string operation, string json)
    {
        using var raw = new JsonApiClient(Endpoint, Root, "us-east-1");
        await raw.CallAsync("secretsmanager." + operation, "secretsmanager", Encoding.UTF8.GetBytes(json));
    }
}

/// <summary>Counts requests by X-Amz-Target operation on the real HTTP path.</summary>
public sealed class CountingHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    private readonly ConcurrentDictionary<string, int> _counts = new();

    public int this[string operation] => _counts.GetValueOrDefault(operation);

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Headers.TryGetValues("X-Amz-Target", out var target))
        {
            _counts.AddOrUpdate(target.First()["secretsmanager.".Length..], 1, (_, n) => n + 1);
        }
        return base.SendAsync(request, cancellationToken);
    }
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualClock : TimeProvider
{
    private DateTimeOffset _now = DateTimeOffset.UtcNow;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}
