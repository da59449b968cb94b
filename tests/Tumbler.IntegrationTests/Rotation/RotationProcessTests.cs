using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests.Rotation;

/// <summary>
/// Rotation as an operator sees it: `tumbler serve` as a process, driven by the aws CLI, rotating a
/// real MariaDB (and PostgreSQL) user; killed inside each step and restarted; cut off from its database.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RotationProcessTests
{
    internal const string SingleUserArn = "arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSMariaDBRotationSingleUser";

    /// <summary>
    /// Short poll and retry. The lease keeps its default (a minute): a restarted server resumes a rotation its last run
    /// left at once, not when that run's lease expires.
    /// </summary>
    internal static readonly Dictionary<string, string> FastRotation = new()
    {
        ["TUMBLER_ROTATION_POLL_SECONDS"] = "0.5",
        ["TUMBLER_ROTATION_RETRY_SECONDS"] = "1",
    };

    internal static async Task<(string User, string Password)> CreateDatabaseUserAsync()
    {
        await using var _ = await MariaDb.ConnectAsync();
        var user = MariaDb.UniqueName("rot");
        var password = "initial-" + Guid.NewGuid().ToString("N");
        await MariaDb.ExecuteAsync($"CREATE USER '{user}'@'%' IDENTIFIED BY @p", ("@p", password));
        return (user, password);
    }

    internal static string SecretJson(string user, string password, int port) => new JsonObject
    {
        ["engine"] = "mariadb", ["host"] = MariaDb.Host, ["port"] = port, ["username"] = user, ["password"] = password, ["ssl"] = false,
    }.ToJsonString();

    private static async Task<string> PasswordAsync(AwsCli cli, string secretId, string stage = "AWSCURRENT")
    {
        var value = (await cli.SecretsManager("get-secret-value", "--secret-id", secretId, "--version-stage", stage)).Ok().Json;
        return JsonNode.Parse(value.GetProperty("SecretString").GetString()!)!["password"]!.GetValue<string>();
    }

    /// <summary>Waits until the rotation finished: no AWSPENDING left and a LastRotatedDate.</summary>
    internal static async Task<JsonElement> WaitForRotationAsync(AwsCli cli, string secretId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var described = (await cli.SecretsManager("describe-secret", "--secret-id", secretId)).Ok().Json;
            var pending = described.GetProperty("VersionIdsToStages").EnumerateObject()
                .Any(v => v.Value.EnumerateArray().Any(s => s.GetString() == "AWSPENDING"));
            if (!pending && described.TryGetProperty("LastRotatedDate", out _))
            {
                return described;
            }
            Assert.True(DateTime.UtcNow < deadline, $"rotation did not finish in {timeout}: {described}");
            await Task.Delay(250);
        }
    }

    [Fact]
    public async Task A_secret_with_ssl_true_rotates_against_a_database_whose_private_ca_is_named_by_TUMBLER_ROTATION_CA_FILE()
    {
        var (user, initial) = await CreateDatabaseUserAsync();
        await MariaDb.ExecuteAsync($"ALTER USER '{user}'@'%' REQUIRE SSL"); // only a verified TLS login works
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions
        {
            Environment = new Dictionary<string, string>(FastRotation) { ["TUMBLER_ROTATION_CA_FILE"] = MariaDb.CaFile },
        });
        var cli = AwsCli.For(server);
        var secret = new JsonObject
        {
            ["engine"] = "mariadb", ["host"] = MariaDb.Host, ["port"] = MariaDb.Port, ["username"] = user, ["password"] = initial, ["ssl"] = true,
        }.ToJsonString();
        (await cli.SecretsManager("create-secret", "--name", $"db/{user}", "--secret-string", secret)).Ok();
        (await cli.SecretsManager("rotate-secret", "--secret-id", $"db/{user}", "--rotation-lambda-arn", SingleUserArn)).Ok();
        await WaitForRotationAsync(cli, $"db/{user}", TimeSpan.FromSeconds(60));
        Assert.True(await MariaDb.CanLoginAsync(user, await PasswordAsync(cli, $"db/{user}")));
        Assert.False(await MariaDb.CanLoginAsync(user, initial));
    }

    [Fact]
    public async Task The_aws_cli_rotates_a_real_database_password_and_describe_shows_the_schedule()
    {
        var (user, initial) = await CreateDatabaseUserAsync();
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { Environment = FastRotation });
        var cli = AwsCli.For(server);
        (await cli.SecretsManager("create-secret", "--name", $"db/{user}", "--secret-string", SecretJson(user, initial, MariaDb.Port))).Ok();

        var rotated = (await cli.SecretsManager("rotate-secret", "--secret-id", $"db/{user}", "--rotation-lambda-arn", SingleUserArn,
            "--rotation-rules", "AutomaticallyAfterDays=30")).Ok().Json;
        var described = await WaitForRotationAsync(cli, $"db/{user}", TimeSpan.FromSeconds(60));

        Assert.True(described.GetProperty("RotationEnabled").GetBoolean());
        Assert.Equal(SingleUserArn, described.GetProperty("RotationLambdaARN").GetString());
        Assert.Equal(30, described.GetProperty("RotationRules").GetProperty("AutomaticallyAfterDays").GetInt32());
        var next = DateTimeOffset.Parse(described.GetProperty("NextRotationDate").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(next, DateTimeOffset.UtcNow.AddDays(29), DateTimeOffset.UtcNow.AddDays(32));
        var stages = described.GetProperty("VersionIdsToStages");
        Assert.Equal("AWSCURRENT", stages.GetProperty(rotated.GetProperty("VersionId").GetString()!)[0].GetString());

        var current = await PasswordAsync(cli, $"db/{user}");
        Assert.NotEqual(initial, current);
        Assert.Equal(initial, await PasswordAsync(cli, $"db/{user}", "AWSPREVIOUS"));
        Assert.True(await MariaDb.CanLoginAsync(user, current));
        Assert.False(await MariaDb.CanLoginAsync(user, initial));

        // The audit log holds the four steps, in order, each a success for this secret and its pending version.
        var steps = await RotationStepRecordsAsync(server.DataDir, described.GetProperty("ARN").GetString()!, 4, TimeSpan.FromSeconds(10));
        Assert.Equal(["createSecret", "setSecret", "testSecret", "finishSecret"], steps.Select(r => r.GetProperty("rotationStep").GetString()));
        Assert.All(steps, r =>
        {
            Assert.Equal("Success", r.GetProperty("outcome").GetString());
            Assert.Equal(rotated.GetProperty("VersionId").GetString(), r.GetProperty("versionId").GetString());
        });
        var log = await File.ReadAllTextAsync(Path.Combine(server.DataDir, "audit", "audit.log"));
        Assert.DoesNotContain(initial, log, StringComparison.Ordinal);
        Assert.DoesNotContain(current, log, StringComparison.Ordinal);
    }

    /// <summary>The RotationStep records of one secret in DATA_DIR/audit/audit.log, waiting until there are at least <paramref name="count"/>.</summary>
    private static async Task<List<JsonElement>> RotationStepRecordsAsync(string dataDir, string secretArn, int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var records = new List<JsonElement>();
            foreach (var line in await File.ReadAllLinesAsync(Path.Combine(dataDir, "audit", "audit.log")))
            {
                using var doc = JsonDocument.Parse(line);
                var r = doc.RootElement;
                if (r.GetProperty("operation").GetString() == "RotationStep" && r.TryGetProperty("secretArn", out var arn) && arn.GetString() == secretArn)
                {
                    records.Add(r.Clone());
                }
            }
            if (records.Count >= count || DateTime.UtcNow > deadline)
            {
                return records;
            }
            await Task.Delay(100);
        }
    }

    [Theory]
    [InlineData("createSecret:after")]
    [InlineData("setSecret:after")]
    [InlineData("testSecret:after")]
    [InlineData("finishSecret:after")]
    public async Task A_server_killed_inside_a_step_resumes_the_rotation_after_restart_and_nobody_is_locked_out(string killPoint)
    {
        var (user, initial) = await CreateDatabaseUserAsync();
        await KilledAndResumedAsync(killPoint, SingleUserArn, user, initial, SecretJson(user, initial, MariaDb.Port), (login, password) => MariaDb.CanLoginAsync(login, password));
    }

    [Theory]
    [InlineData("createSecret:after")]
    [InlineData("setSecret:after")]
    [InlineData("testSecret:after")]
    [InlineData("finishSecret:after")]
    public async Task A_postgres_rotation_killed_inside_a_step_resumes_after_restart_and_nobody_is_locked_out(string killPoint)
    {
        await using var db = await Postgres.ConnectAsync();
        var user = Postgres.UniqueName("rot");
        var initial = "initial-" + Guid.NewGuid().ToString("N");
        await db.CreateUserAsync(user, initial);
        var secret = new JsonObject
        {
            ["engine"] = "postgres", ["host"] = Postgres.Host, ["port"] = Postgres.Port, ["username"] = user, ["password"] = initial, ["ssl"] = false,
        }.ToJsonString();
        await KilledAndResumedAsync(killPoint, $"arn:aws:lambda:us-east-1:123456789012:function:{Tumbler.Rotators.BuiltInRotationFunctions.PostgreSqlSingleUser}",
            user, initial, secret, (login, password) => Postgres.CanLoginAsync(login, password));
    }

    /// <summary>Kills `tumbler serve` at <paramref name="killPoint"/> of a rotation, restarts it, and checks the rotation finished with a working password.</summary>
    private static async Task KilledAndResumedAsync(string killPoint, string functionArn, string user, string initial, string secretJson,
        Func<string, string, Task<bool>> canLogin)
    {
        using var dataDir = new TempDirectory();
        var credentials = (Id: TumblerServer.NewAccessKeyId(), Secret: TumblerServer.NewSecretAccessKey());
        var options = new TumblerServerOptions
        {
            DataDir = dataDir.Path, AccessKeyId = credentials.Id, SecretAccessKey = credentials.Secret,
            Environment = new Dictionary<string, string>(FastRotation) { ["TUMBLER_FAULT_INJECTION"] = killPoint },
        };
        var secretId = $"db/{user}";
        await using (var doomed = await TumblerServer.StartAsync(options))
        {
            var cli = AwsCli.For(doomed);
            (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", secretJson)).Ok();
            // The rotation starts as the request is answered, so an early kill point (createSecret:after) can stop the
            // server before its answer leaves: rotate-secret may then fail to connect, but only because of that kill.
            var rotate = await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", functionArn);
            // Killed by its own fault injection point (the output pump may trail the exit a little).
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!doomed.HasExited || !doomed.StandardError.Contains($"killing the process at {killPoint}", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the server was not killed at {killPoint}:\n{rotate}\n{doomed.StandardOutput}\n{doomed.StandardError}");
                await Task.Delay(100);
            }
        }

        await using var restarted = await TumblerServer.StartAsync(options with { Environment = FastRotation });
        var restartedCli = AwsCli.For(restarted);
        // Well within the minute the killed run's lease had left: the restart freed it.
        await WaitForRotationAsync(restartedCli, secretId, TimeSpan.FromSeconds(30));
        var current = await PasswordAsync(restartedCli, secretId);
        Assert.NotEqual(initial, current);
        Assert.True(await canLogin(user, current), $"AWSCURRENT does not log in after a crash at {killPoint}");
        Assert.False(await canLogin(user, initial));
        Assert.Equal(initial, await PasswordAsync(restartedCli, secretId, "AWSPREVIOUS"));
    }

    [Fact]
    public async Task While_the_database_is_unreachable_rotation_fails_visibly_and_succeeds_once_it_is_back()
    {
        var (user, initial) = await CreateDatabaseUserAsync();
        await using var database = new TcpProxy(MariaDb.Port);
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { Environment = FastRotation });
        var cli = AwsCli.For(server);
        var secretId = $"db/{user}";
        (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", SecretJson(user, initial, database.Port))).Ok();

        (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", SingleUserArn)).Ok();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!server.StandardOutput.Contains("failed (attempt 2)", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no failed attempts logged:\n{server.StandardOutput}");
            await Task.Delay(200);
        }
        Assert.DoesNotContain(initial, server.StandardOutput + server.StandardError, StringComparison.Ordinal);
        var again = await cli.SecretsManager("rotate-secret", "--secret-id", secretId);
        Assert.Contains("InvalidRequestException", again.Stderr, StringComparison.Ordinal);
        Assert.Contains("A previous rotation isn't complete", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(initial, await PasswordAsync(cli, secretId));

        database.Start();
        Assert.True(await MariaDb.CanLoginAsync(user, initial)); // AWSCURRENT still logs in once the database is back
        await WaitForRotationAsync(cli, secretId, TimeSpan.FromSeconds(60));
        Assert.True(await MariaDb.CanLoginAsync(user, await PasswordAsync(cli, secretId)));
        Assert.False(await MariaDb.CanLoginAsync(user, initial));
    }
}
