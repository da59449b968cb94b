using System.Net;
using System.Text.Json;
using Tumbler.Agent;
using Tumbler.Client.Tests.Support;

namespace Tumbler.Client.Tests;

/// <summary>The agent hosted in-process (the same class `tumbler agent` runs) in front of a real server.</summary>
public sealed class AgentTests : IAsyncLifetime
{
    private const string Token = "agent-test-token";
    private readonly LiveServer _server = new();
    private readonly ManualClock _clock = new();
    private readonly HttpClient _http = new();
    private SecretsManagerClient _client = null!;
    private AgentHost _agent = null!;

    public async Task InitializeAsync()
    {
        await _server.InitializeAsync();
        _client = _server.NewClient();
        _agent = await AgentHost.StartAsync(new AgentOptions { Port = 0, Token = Token, TimeProvider = _clock }, _client);
    }

    public async Task DisposeAsync()
    {
        await _agent.DisposeAsync();
        _client.Dispose();
        _http.Dispose();
        await _server.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, string Body)> GetAsync(string pathAndQuery, string? token = Token, Action<HttpRequestMessage>? more = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_agent.Endpoint, pathAndQuery));
        if (token is not null)
        {
            request.Headers.Add("X-Aws-Parameters-Secrets-Token", token);
        }
        more?.Invoke(request);
        using var response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private async Task<JsonElement> SecretAsync(string secretId)
    {
        var (status, body) = await GetAsync("/secretsmanager/get?secretId=" + Uri.EscapeDataString(secretId));
        Assert.True(status == HttpStatusCode.OK, $"{status}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    [Fact]
    public async Task Listens_on_loopback_and_answers_ping_without_a_token()
    {
        Assert.Equal("127.0.0.1", _agent.Endpoint.Host);
        Assert.Equal((HttpStatusCode.OK, "healthy"), await GetAsync("/ping", token: null));
    }

    [Fact]
    public async Task Refuses_requests_without_the_token_or_forwarded_and_malformed_ones()
    {
        await _server.CreateAsync("app/db", "p1");
        Assert.Equal((HttpStatusCode.Forbidden, "Bad Token"), await GetAsync("/secretsmanager/get?secretId=app/db", token: null));
        Assert.Equal((HttpStatusCode.Forbidden, "Bad Token"), await GetAsync("/secretsmanager/get?secretId=app/db", token: "wrong"));
        Assert.Equal((HttpStatusCode.BadRequest, "Forwarded"),
            await GetAsync("/secretsmanager/get?secretId=app/db", more: r => r.Headers.Add("X-Forwarded-For", "10.0.0.1")));
        Assert.Equal((HttpStatusCode.BadRequest, "unknown parameter: foo"), await GetAsync("/secretsmanager/get?secretId=app/db&foo=1"));
        Assert.Equal(HttpStatusCode.BadRequest, (await GetAsync("/secretsmanager/get")).Status);
        Assert.Equal((HttpStatusCode.NotFound, "Not found"), await GetAsync("/elsewhere"));
        using var post = await _http.PostAsync(new Uri(_agent.Endpoint, "/secretsmanager/get?secretId=app/db"), null);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        // The other accepted header.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync("/secretsmanager/get?secretId=app/db", token: null, more: r => r.Headers.Add("X-Vault-Token", Token))).Status);
        Assert.Equal(0, _server.Calls["DescribeSecret"]);
    }

    [Fact]
    public async Task With_the_token_the_body_is_GetSecretValue_json_with_CreatedDate_as_a_string()
    {
        var created = await _server.CreateAsync("prod/app/db", """{"password":"p1"}""");
        var secret = await SecretAsync("prod/app/db");
        Assert.Equal(created.ARN, secret.GetProperty("ARN").GetString());
        Assert.Equal("prod/app/db", secret.GetProperty("Name").GetString());
        Assert.Equal(created.VersionId, secret.GetProperty("VersionId").GetString());
        Assert.Equal("""{"password":"p1"}""", secret.GetProperty("SecretString").GetString());
        Assert.False(secret.TryGetProperty("SecretBinary", out _), "a string secret has no SecretBinary member, as AWS's agent answers");
        Assert.Equal("AWSCURRENT", secret.GetProperty("VersionStages")[0].GetString());
        Assert.Matches(@"^\d{10}\.\d{3}$", secret.GetProperty("CreatedDate").GetString());

        var (status, body) = await GetAsync("/v1/prod/app/db?versionStage=AWSCURRENT");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(created.VersionId, JsonDocument.Parse(body).RootElement.GetProperty("VersionId").GetString());
        var (escapedStatus, escaped) = await GetAsync("/v1/prod%2Fapp%2Fdb");
        Assert.Equal(HttpStatusCode.OK, escapedStatus);
        Assert.Equal(created.VersionId, JsonDocument.Parse(escaped).RootElement.GetProperty("VersionId").GetString());

        var (missing, error) = await GetAsync("/secretsmanager/get?secretId=nope");
        Assert.Equal(HttpStatusCode.BadRequest, missing);
        Assert.Equal("ResourceNotFoundException", JsonDocument.Parse(error).RootElement.GetProperty("__type").GetString());
        Assert.Equal(2, _server.Calls["GetSecretValue"]); // one for prod/app/db (cached for /v1/ too), one for nope
    }

    [Fact]
    public async Task A_new_value_is_served_once_the_ttl_lapses_or_at_once_with_refreshNow()
    {
        await _server.CreateAsync("app/db", "p1");
        Assert.Equal("p1", (await SecretAsync("app/db")).GetProperty("SecretString").GetString());
        await _server.PutAsync("app/db", "p2");
        _clock.Advance(TimeSpan.FromSeconds(299));
        Assert.Equal("p1", (await SecretAsync("app/db")).GetProperty("SecretString").GetString());
        _clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal("p2", (await SecretAsync("app/db")).GetProperty("SecretString").GetString());
        Assert.Equal((2, 1), (_server.Calls["GetSecretValue"], _server.Calls["DescribeSecret"]));

        await _server.PutAsync("app/db", "p3");
        var (_, body) = await GetAsync("/secretsmanager/get?secretId=app/db&refreshNow=true");
        Assert.Equal("p3", JsonDocument.Parse(body).RootElement.GetProperty("SecretString").GetString());
    }

    [Fact]
    public async Task When_the_server_is_down_the_cached_value_is_served()
    {
        await _server.CreateAsync("app/db", "p1");
        await SecretAsync("app/db");
        await _server.StopAsync();
        _clock.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal("p1", (await SecretAsync("app/db")).GetProperty("SecretString").GetString());

        var (status, body) = await GetAsync("/secretsmanager/get?secretId=app/db&refreshNow=true");
        Assert.Equal(HttpStatusCode.BadGateway, status);
        Assert.Equal("ConnectionError", JsonDocument.Parse(body).RootElement.GetProperty("__type").GetString());
        var (never, _) = await GetAsync("/secretsmanager/get?secretId=never-cached");
        Assert.Equal(HttpStatusCode.BadGateway, never);
    }
}
