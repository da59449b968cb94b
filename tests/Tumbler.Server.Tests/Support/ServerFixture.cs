using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Tumbler.Client;
using Tumbler.Server.Hosting;

namespace Tumbler.Server.Tests.Support;

/// <summary>A real Tumbler server on Kestrel, on an ephemeral loopback port, over a temporary data directory.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private readonly string _dataDirectory = Directory.CreateTempSubdirectory("tumbler-server-tests-").FullName;

    public string DataDirectory => _dataDirectory;

    public TumblerServer Server { get; private set; } = null!;
    public HttpClient Http { get; } = new();

    public async Task InitializeAsync() =>
        Server = await TumblerServer.StartAsync(new ServerOptions { DataDirectory = _dataDirectory, Listen = ["127.0.0.1:0"] }, TextWriter.Null, default);

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Directory.Delete(_dataDirectory, recursive: true);
    }

    /// <summary>Sends a signed AWS JSON 1.1 call with exactly this body.</summary>
    public Task<HttpResponseMessage> SendAsync(string operation, string body, string? secretAccessKey = null, DateTimeOffset? at = null, string region = "us-east-1") =>
        SendAsync(operation, Encoding.UTF8.GetBytes(body), secretAccessKey, at, region);

    public async Task<HttpResponseMessage> SendAsync(string operation, byte[] body, string? secretAccessKey = null, DateTimeOffset? at = null, string region = "us-east-1")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Server.Endpoint) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-amz-json-1.1");
        request.Headers.TryAddWithoutValidation("X-Amz-Target", $"secretsmanager.{operation}");
        SigV4Signer.Sign(request, body, Server.Root.AccessKeyId, secretAccessKey ?? Server.Root.SecretAccessKey, region, at ?? DateTimeOffset.UtcNow);
        return await Http.SendAsync(request);
    }

    public async Task<JsonElement> CallAsync(string operation, object body)
    {
        using var response = await SendAsync(operation, JsonSerializer.Serialize(body));
        var json = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{operation} failed: {json}");
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    /// <summary>Sends <paramref name="body"/> to an X-Amz-Target signed with the given key pair for <paramref name="service"/>.</summary>
    public async Task<HttpResponseMessage> SendAsAsync(string target, string body, string accessKeyId, string secretAccessKey, string service = "secretsmanager")
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        using var request = new HttpRequestMessage(HttpMethod.Post, Server.Endpoint) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-amz-json-1.1");
        request.Headers.TryAddWithoutValidation("X-Amz-Target", target);
        SigV4Signer.Sign(request, bytes, accessKeyId, secretAccessKey, "us-east-1", DateTimeOffset.UtcNow, service);
        return await Http.SendAsync(request);
    }

    /// <summary>Calls the admin API as root and returns the answer.</summary>
    public async Task<JsonElement> AdminAsync(string operation, object body)
    {
        using var response = await SendAsAsync("TumblerIAM." + operation, JsonSerializer.Serialize(body), Server.Root.AccessKeyId, Server.Root.SecretAccessKey, "iam");
        var json = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{operation} failed: {json}");
        return JsonDocument.Parse(json).RootElement.Clone();
    }
}
