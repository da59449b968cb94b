using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Tumbler.Core.Crypto;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;
using Tumbler.IntegrationTests.Support;
using Tumbler.Rotators;
using Tumbler.Storage.Sqlite;

namespace Tumbler.IntegrationTests.Rotation;

/// <summary>The scheduler starting rotations when they fall due, with a clock the test moves, on a real MariaDB.</summary>
[Trait("Category", "Integration")]
public sealed class ScheduledRotationTests : IAsyncLifetime
{
    private const string MultiUserArn = "arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSMariaDBRotationMultiUser";
    private static readonly CallContext Caller = CallContext.AsRoot("us-east-1", "123456789012");
    private readonly string _directory = Directory.CreateTempSubdirectory("tumbler-schedule-tests-").FullName;
    private readonly Clock _clock = new();
    private SqliteSecretStore _store = null!;
    private SecretsService _service = null!;
    private RotationEngine _engine = null!;

    private sealed class Clock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        public override DateTimeOffset GetUtcNow() => Now;
    }

    public async Task InitializeAsync()
    {
        _store = new SqliteSecretStore(Path.Combine(_directory, "tumbler.db"));
        await _store.InitializeAsync(default);
        var keys = await KeyRing.OpenAsync(_store, RandomNumberGenerator.GetBytes(32), "us-east-1", "123456789012", _clock, default);
        var functions = new BuiltInRotationFunctions();
        _service = new SecretsService(_store, keys, _clock, new SecretsOptions(), functions);
        _engine = new RotationEngine(_service, _store, functions, _clock, new RotationOptions(), NullLogger<RotationEngine>.Instance);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>The (username, password) a stage of the secret holds.</summary>
    private async Task<(string User, string Password)> LoginAsync(string id, string stage)
    {
        var value = JsonNode.Parse((await _service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = id, VersionStage = stage }, Caller, default)).SecretString!)!;
        return (value["username"]!.GetValue<string>(), value["password"]!.GetValue<string>());
    }

    [Fact]
    public async Task Alternating_users_rotate_when_due_and_both_logins_keep_working()
    {
        await using var _ = await MariaDb.ConnectAsync();
        var user = MariaDb.UniqueName("sch");
        var password = "initial-" + Guid.NewGuid().ToString("N");
        await MariaDb.ExecuteAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY @p", ("@p", password));
        await MariaDb.ExecuteAsync($"GRANT SELECT ON mysql.user TO '{user}'@'%'");
        var master = await _service.CreateSecretAsync(new CreateSecretRequest
        {
            Name = $"master-{user}", ClientRequestToken = Guid.NewGuid().ToString(),
            SecretString = new JsonObject { ["engine"] = "mariadb", ["host"] = MariaDb.Host, ["port"] = MariaDb.Port, ["username"] = MariaDb.AdminUser, ["password"] = MariaDb.AdminPassword, ["ssl"] = false }.ToJsonString(),
        }, Caller, default);
        await _service.CreateSecretAsync(new CreateSecretRequest
        {
            Name = user, ClientRequestToken = Guid.NewGuid().ToString(),
            SecretString = new JsonObject
            {
                ["engine"] = "mariadb", ["host"] = MariaDb.Host, ["port"] = MariaDb.Port, ["username"] = user, ["password"] = password,
                ["ssl"] = false, ["masterarn"] = master.ARN,
            }.ToJsonString(),
        }, Caller, default);

        // Configured without rotating now: only testSecret runs, against the current value.
        await _service.RotateSecretAsync(new RotateSecretRequest
        {
            SecretId = user, ClientRequestToken = Guid.NewGuid().ToString(), RotationLambdaARN = MultiUserArn,
            RotationRules = new RotationRulesType { ScheduleExpression = "rate(1 days)" }, RotateImmediately = false,
        }, Caller, default);
        await _engine.RunOnceAsync(default);
        Assert.Equal((user, password), await LoginAsync(user, "AWSCURRENT"));
        Assert.Equal(0, await _engine.RunOnceAsync(default));

        for (var rotation = 1; rotation <= 2; rotation++)
        {
            _clock.Now = _clock.Now.AddDays(2);
            Assert.Equal(1, await _engine.RunOnceAsync(default));
            var described = await _service.DescribeSecretAsync(new SecretIdRequest { SecretId = user }, Caller, default);
            Assert.Null(described.TumblerRotationStatus);
            Assert.Equal(_clock.Now, described.LastRotatedDate);

            var current = await LoginAsync(user, "AWSCURRENT");
            var previous = await LoginAsync(user, "AWSPREVIOUS");
            Assert.Equal(rotation == 1 ? $"{user}_clone" : user, current.User);
            Assert.True(await MariaDb.CanLoginAsync(current.User, current.Password));
            Assert.True(await MariaDb.CanLoginAsync(previous.User, previous.Password));
            Assert.NotNull(await MariaDb.ScalarAsUserAsync(current.User, current.Password, null, "SELECT COUNT(*) FROM mysql.user"));
        }
    }
}
