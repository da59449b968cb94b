using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Primitives;
using Tumbler.Client.Configuration;
using Tumbler.Client.Tests.Support;

namespace Tumbler.Client.Tests;

/// <remarks>In the process-environment collection: one test clears the AWS variables.</remarks>
[Collection(ProcessEnvironment.Collection)]
public sealed class ConfigurationProviderTests : IAsyncLifetime
{
    private readonly LiveServer _server = new();
    private SecretsManagerClient _client = null!;

    public async Task InitializeAsync()
    {
        await _server.InitializeAsync();
        _client = _server.NewClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Json_members_become_keys_under_the_secret_id_and_other_secrets_one_key()
    {
        await _server.CreateAsync("prod/app/db", """{"username":"app","password":"p1","port":3306,"ssl":true,"hosts":["a","b"],"opts":{"x":"y"}}""");
        await _server.CreateAsync("prod/api-key", "plain-text");
        using var configuration = (ConfigurationRoot)new ConfigurationBuilder()
            .AddTumblerSecrets(o => { o.SecretIds = ["prod/app/db", "prod/api-key"]; o.Client = _client; })
            .Build();
        Assert.Equal("app", configuration["prod:app:db:username"]);
        Assert.Equal("p1", configuration["prod:app:db:password"]);
        Assert.Equal("3306", configuration["prod:app:db:port"]);
        Assert.Equal("true", configuration["prod:app:db:ssl"]);
        Assert.Equal("b", configuration["prod:app:db:hosts:1"]);
        Assert.Equal("y", configuration["prod:app:db:opts:x"]);
        Assert.Equal("plain-text", configuration["prod:api-key"]);
        Assert.Equal("p1", configuration.GetSection("prod:app:db")["password"]);
    }

    [Fact]
    public async Task A_prefix_or_a_mapping_names_the_keys()
    {
        await _server.CreateAsync("prod/app/db", """{"username":"app","password":"p1"}""");
        await _server.CreateAsync("prod/api-key", "k");
        using var prefixed = (ConfigurationRoot)new ConfigurationBuilder()
            .AddTumblerSecrets(o => { o.SecretIds = ["prod/app/db"]; o.Prefix = "Database"; o.Client = _client; })
            .AddTumblerSecrets(o => { o.SecretIds = ["prod/api-key"]; o.Prefix = "Api:Key"; o.Client = _client; })
            .Build();
        Assert.Equal("p1", prefixed["Database:Password"]);
        Assert.Equal("k", prefixed["Api:Key"]);

        using var mapped = (ConfigurationRoot)new ConfigurationBuilder()
            .AddTumblerSecrets(o =>
            {
                o.SecretIds = ["prod/app/db"];
                o.Client = _client;
                o.KeyMapping = (id, member) => member == "password" ? "ConnectionStrings:Password" : null;
            })
            .Build();
        Assert.Equal("p1", mapped["ConnectionStrings:Password"]);
        Assert.Single(mapped.AsEnumerable(), pair => pair.Value is not null);
    }

    [Fact]
    public async Task A_missing_secret_fails_the_build_unless_optional()
    {
        Assert.Throws<TumblerApiException>(() => new ConfigurationBuilder()
            .AddTumblerSecrets(o => { o.SecretIds = ["nope"]; o.Client = _client; }).Build());
        await _server.CreateAsync("there", "1");
        using var configuration = (ConfigurationRoot)new ConfigurationBuilder()
            .AddTumblerSecrets(o => { o.SecretIds = ["nope", "there"]; o.Optional = true; o.Client = _client; })
            .Build();
        Assert.Equal("1", configuration["there"]);
        Assert.Null(configuration["nope"]);
    }

    [Fact]
    public async Task A_new_current_version_is_loaded_and_fires_the_reload_token()
    {
        await _server.CreateAsync("prod/app/db", """{"password":"p1"}""");
        using var configuration = (ConfigurationRoot)new ConfigurationBuilder()
            .AddTumblerSecrets(o => { o.SecretIds = ["prod/app/db"]; o.Client = _client; o.ReloadInterval = TimeSpan.FromMilliseconds(100); })
            .Build();
        Assert.Equal("p1", configuration["prod:app:db:password"]);

        // Polls that find nothing new do not fire the token and cost a DescribeSecret only.
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscription = ChangeToken.OnChange(configuration.GetReloadToken, () => fired.TrySetResult());
        // Two polls at least (on a loaded machine they may come later than every 100 ms, never sooner).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (_server.Calls["DescribeSecret"] < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the provider did not poll twice within 10 s");
            await Task.Delay(50);
        }
        Assert.False(fired.Task.IsCompleted);
        Assert.Equal(1, _server.Calls["GetSecretValue"]);

        await _server.PutAsync("prod/app/db", """{"password":"p2"}""");
        await fired.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("p2", configuration["prod:app:db:password"]);
    }

    [Fact]
    public async Task A_secret_that_fails_a_poll_keeps_its_values_the_others_still_reload_and_a_secret_made_again_is_followed()
    {
        await _server.CreateAsync("poll/a", """{"v":"a1"}""");
        await _server.CreateAsync("poll/b", """{"v":"b1"}""");
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        using var configuration = (ConfigurationRoot)new ConfigurationBuilder()
            .AddTumblerSecrets(o =>
            {
                o.SecretIds = ["poll/b", "poll/a"]; // the failing one first: it must not stop the other
                o.Client = _client;
                o.ReloadInterval = TimeSpan.FromMilliseconds(100);
                o.OnReloadError = errors.Enqueue;
            })
            .Build();

        await _server.RawAsync("DeleteSecret", """{"SecretId": "poll/b", "ForceDeleteWithoutRecovery": true}""");
        await _server.PutAsync("poll/a", """{"v":"a2"}""");
        await Eventually(() => configuration["poll:a:v"] == "a2", "poll/a's new value was not loaded while poll/b failed");
        Assert.Equal("b1", configuration["poll:b:v"]);
        Assert.Contains(errors, e => e is TumblerApiException { ErrorCode: "ResourceNotFoundException" });

        // Made again under the same name (a new ARN): the provider follows the name, as it was listed.
        await _server.CreateAsync("poll/b", """{"v":"b2"}""");
        await Eventually(() => configuration["poll:b:v"] == "b2", "poll/b made again was not loaded");
    }

    private static async Task Eventually(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(50);
        }
    }

    [Fact]
    public void Without_credentials_an_optional_build_succeeds_empty_and_a_required_one_fails()
    {
        var names = new[] { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE" };
        var saved = names.ToDictionary(n => n, Environment.GetEnvironmentVariable);
        try
        {
            foreach (var name in names)
            {
                Environment.SetEnvironmentVariable(name, null);
            }
            var nowhere = Path.Combine(Path.GetTempPath(), $"no-aws-{Guid.NewGuid():N}");
            Environment.SetEnvironmentVariable("AWS_SHARED_CREDENTIALS_FILE", Path.Combine(nowhere, "credentials"));
            Environment.SetEnvironmentVariable("AWS_CONFIG_FILE", Path.Combine(nowhere, "config"));

            using var optional = (ConfigurationRoot)new ConfigurationBuilder()
                .AddTumblerSecrets(o => { o.SecretIds = ["prod/app/db"]; o.Optional = true; })
                .Build();
            Assert.Null(optional["prod:app:db"]);
            Assert.Throws<TumblerClientException>(() => new ConfigurationBuilder().AddTumblerSecrets(o => o.SecretIds = ["prod/app/db"]).Build());
        }
        finally
        {
            foreach (var (name, value) in saved)
            {
                Environment.SetEnvironmentVariable(name, value);
            }
        }
    }
}
