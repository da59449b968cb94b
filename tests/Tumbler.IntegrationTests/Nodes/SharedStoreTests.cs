using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.Client;
using Tumbler.IntegrationTests.Access;
using Tumbler.IntegrationTests.Rotation;
using Tumbler.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Tumbler.IntegrationTests.Nodes;

/// <summary>
/// Several `tumbler serve` processes on loopback ports sharing one PostgreSQL store (--store via TUMBLER_STORE),
/// each with its own data directory and the same root key and root credentials, as an operator deploys them.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SharedStoreTests(ITestOutputHelper output)
{
    private static readonly string PostgresSingleUserArn =
        $"arn:aws:lambda:us-east-1:123456789012:function:{Tumbler.Rotators.BuiltInRotationFunctions.PostgreSqlSingleUser}";

    /// <summary>A database of its own on the test PostgreSQL, and the nodes started on it.</summary>
    private sealed class Cluster : IAsyncDisposable
    {
        private readonly List<TumblerServer> _nodes = [];
        private readonly List<TempDirectory> _directories = [];
        private string _rootKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        private readonly string _accessKeyId = TumblerServer.NewAccessKeyId();
        private readonly string _secretAccessKey = TumblerServer.NewSecretAccessKey();

        private Cluster(string database) => Database = database;

        public string Database { get; }

        /// <summary>The root key every node is started with (base64, as TUMBLER_ROOT_KEY).</summary>
        public string RootKey { get => _rootKey; set => _rootKey = value; }

        /// <summary>The --store URL; a small pool per node, as several test classes share the test server's connections.</summary>
        public string Store =>
            $"postgres://{Uri.EscapeDataString(Postgres.AdminUser)}:{Uri.EscapeDataString(Postgres.AdminPassword)}@{Postgres.Host}:{Postgres.Port}/{Database}?Maximum%20Pool%20Size=12";

        /// <summary>A new, empty database (or, with <paramref name="restore"/>, one that command fills before any node starts).</summary>
        public static async Task<Cluster> CreateAsync(Func<string, Task>? restore = null)
        {
            await using var _ = await Postgres.ConnectAsync();
            var cluster = new Cluster(Postgres.UniqueName("tumbler_nodes_", 26));
            await Postgres.FormatAndExecuteAsync("CREATE DATABASE %I", null, cluster.Database);
            if (restore is not null)
            {
                await restore(cluster.Database);
            }
            return cluster;
        }

        public async Task<TumblerServer> StartNodeAsync(IReadOnlyDictionary<string, string>? environment = null)
        {
            var directory = new TempDirectory();
            lock (_directories)
            {
                _directories.Add(directory);
            }
            var env = new Dictionary<string, string>(RotationProcessTests.FastRotation) { ["TUMBLER_STORE"] = Store, ["TUMBLER_ROOT_KEY"] = _rootKey };
            foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            {
                env[key] = value;
            }
            var node = await TumblerServer.StartAsync(new TumblerServerOptions
            {
                DataDir = Path.Combine(directory.Path, "data"), AccessKeyId = _accessKeyId, SecretAccessKey = _secretAccessKey, Environment = env,
            });
            lock (_nodes)
            {
                _nodes.Add(node);
            }
            return node;
        }

        /// <summary>Nodes started at the same moment: the first start creates the schema while the others wait for it.</summary>
        public async Task<TumblerServer[]> StartNodesAsync(int count) => await Task.WhenAll(Enumerable.Range(0, count).Select(_ => StartNodeAsync()));

        public Task<object?> ScalarAsync(string sql, params (string Name, object Value)[] parameters) => Postgres.ScalarAsync(sql, Database, parameters);

        public async ValueTask DisposeAsync()
        {
            foreach (var node in _nodes)
            {
                await node.DisposeAsync();
            }
            foreach (var directory in _directories)
            {
                directory.Dispose();
            }
            await Postgres.FormatAndExecuteAsync("DROP DATABASE IF EXISTS %I WITH (FORCE)", null, Database);
        }
    }

    /// <summary>Polls until <paramref name="condition"/> holds; a node learns of another's change within its 1 s poll.</summary>
    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {seconds} s: {what}");
            await Task.Delay(250);
        }
    }

    private static async Task<string> ValueAsync(AwsCli cli, string secretId, string stage = "AWSCURRENT") =>
        (await cli.SecretsManager("get-secret-value", "--secret-id", secretId, "--version-stage", stage)).Ok().Json.GetProperty("SecretString").GetString()!;

    [Fact]
    public async Task A_node_given_no_root_key_refuses_to_make_one_for_a_shared_store_and_the_store_password_stays_hidden()
    {
        await using var cluster = await Cluster.CreateAsync();
        var outcome = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions
        {
            Environment = new Dictionary<string, string> { ["TUMBLER_STORE"] = cluster.Store },
        });
        Assert.False(outcome.BecameReady, outcome.ToString());
        Assert.Contains("every node needs the same root key", outcome.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain(Postgres.AdminPassword, outcome.StandardOutput + outcome.StandardError, StringComparison.Ordinal);

        var node = await cluster.StartNodeAsync();
        Assert.Contains("Password=***", node.StandardOutput, StringComparison.Ordinal); // the ready line names the store, masked
        Assert.DoesNotContain(Postgres.AdminPassword, node.StandardOutput + node.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Any_node_answers_alike_and_a_change_made_on_one_node_holds_on_the_others_within_seconds()
    {
        await using var cluster = await Cluster.CreateAsync();
        var nodes = await cluster.StartNodesAsync(3);
        var clis = nodes.Select(AwsCli.For).ToArray();

        (await clis[0].SecretsManager("create-secret", "--name", "shared/app", "--secret-string", "one")).Ok();
        foreach (var cli in clis)
        {
            Assert.Equal("one", await ValueAsync(cli, "shared/app"));
        }
        (await clis[2].SecretsManager("put-secret-value", "--secret-id", "shared/app", "--secret-string", "two")).Ok();
        foreach (var cli in clis)
        {
            Assert.Equal("two", await ValueAsync(cli, "shared/app"));
            Assert.Equal("one", await ValueAsync(cli, "shared/app", "AWSPREVIOUS"));
        }

        // A user and key made through node 0 sign in on node 1; deactivated through node 0, refused by node 2.
        var user = await TumblerProcess.CreateUserAsync(nodes[0], TumblerProcess.Unique("reader"),
            TumblerProcess.Allow(["secretsmanager:GetSecretValue"], TumblerProcess.SecretArnPattern("shared/*")));
        var onNode1 = new AwsCli(nodes[1].Endpoint, user.AccessKeyId, user.SecretAccessKey);
        var onNode2 = new AwsCli(nodes[2].Endpoint, user.AccessKeyId, user.SecretAccessKey);
        await EventuallyAsync(async () => (await onNode1.SecretsManager("get-secret-value", "--secret-id", "shared/app")).ExitCode == 0,
            "an access key created on node 0 works on node 1");
        Assert.Equal(0, (await onNode2.SecretsManager("get-secret-value", "--secret-id", "shared/app")).ExitCode);
        (await TumblerProcess.IamAsRootAsync(nodes[0], "update-access-key", "--user-name", user.UserName, "--access-key-id", user.AccessKeyId,
            "--status", "Inactive")).Ok();
        await EventuallyAsync(async () => (await onNode2.SecretsManager("get-secret-value", "--secret-id", "shared/app")).Stderr
            .Contains("UnrecognizedClientException", StringComparison.Ordinal), "an access key deactivated on node 0 is refused by node 2");

        // A KMS-like key made on node 1 encrypts on node 2; disabled on node 0, node 1 stops decrypting; enabled on node 2, all read again.
        var rootEnv = ProcessRunner.BaseEnvironment(nodes[0].AccessKeyId, nodes[0].SecretAccessKey);
        var keyId = (await TumblerProcess.RunAsync(rootEnv, "keys", "create", "--description", "shared", "--endpoint-url", nodes[1].Endpoint)).Ok()
            .Json.GetProperty("KeyMetadata").GetProperty("KeyId").GetString()!;
        // Named to another node at once (before its next poll): it looks in the store rather than answer NotFoundException.
        (await TumblerProcess.RunAsync(rootEnv, "keys", "describe", "--key-id", keyId, "--endpoint-url", nodes[0].Endpoint)).Ok();
        await EventuallyAsync(async () => (await clis[2].SecretsManager("create-secret", "--name", "shared/keyed", "--secret-string", "k",
            "--kms-key-id", keyId)).ExitCode == 0, "a key created on node 1 is usable on node 2");
        (await TumblerProcess.RunAsync(rootEnv, "keys", "disable", "--key-id", keyId, "--endpoint-url", nodes[0].Endpoint)).Ok();
        await EventuallyAsync(async () => (await clis[1].SecretsManager("get-secret-value", "--secret-id", "shared/keyed")).Stderr
            .Contains("DecryptionFailure", StringComparison.Ordinal), "a key disabled on node 0 no longer decrypts on node 1");
        (await TumblerProcess.RunAsync(rootEnv, "keys", "enable", "--key-id", keyId, "--endpoint-url", nodes[2].Endpoint)).Ok();
        foreach (var cli in clis)
        {
            await EventuallyAsync(async () => (await cli.SecretsManager("get-secret-value", "--secret-id", "shared/keyed")).ExitCode == 0,
                "a key enabled on node 2 decrypts everywhere");
        }
    }

    /// <summary>A PostgreSQL client program (pg_dump, pg_restore) of the installed server, as the admin.</summary>
    private static Task<CliResult> PostgresToolAsync(string tool, params string[] args)
    {
        var path = Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin", tool)).Where(File.Exists).Order().LastOrDefault() ?? tool;
        return ProcessRunner.RunAsync(path, ["--host", Postgres.Host, "--port", Postgres.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--username", Postgres.AdminUser, "--no-password", .. args],
            new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin", ["PGPASSWORD"] = Postgres.AdminPassword });
    }

    [Fact]
    public async Task A_pg_dump_restores_into_a_new_database_and_rotate_root_moves_it_to_a_new_root_key()
    {
        using var work = new TempDirectory();
        var dump = Path.Combine(work.Path, "tumbler.dump");
        string rootKey;
        await using (var original = await Cluster.CreateAsync())
        {
            var node = await original.StartNodeAsync();
            var cli = AwsCli.For(node);
            (await cli.SecretsManager("create-secret", "--name", "dumped/app", "--secret-string", "before-dump")).Ok();
            (await cli.SecretsManager("put-secret-value", "--secret-id", "dumped/app", "--secret-string", "acknowledged")).Ok();
            // Taken while the node serves (pg_dump reads one snapshot).
            (await PostgresToolAsync("pg_dump", "--format=custom", "--file", dump, original.Database)).Ok();
            rootKey = original.RootKey;
        }

        await using var restored = await Cluster.CreateAsync(database => PostgresToolAsync("pg_restore", "--dbname", database, "--no-owner", dump).ContinueWith(t => t.Result.Ok()));
        restored.RootKey = rootKey;
        var first = await restored.StartNodeAsync();
        Assert.Equal("acknowledged", await ValueAsync(AwsCli.For(first), "dumped/app"));
        Assert.Equal("before-dump", await ValueAsync(AwsCli.For(first), "dumped/app", "AWSPREVIOUS"));
        await first.StopAsync();

        // Offline root key rotation of the shared store, then every node on the new key.
        var oldKeyFile = Path.Combine(work.Path, "old.key");
        var newKeyFile = Path.Combine(work.Path, "new.key");
        await File.WriteAllTextAsync(oldKeyFile, rootKey + "\n");
        var newKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        await File.WriteAllTextAsync(newKeyFile, newKey + "\n");
        var rotated = (await TumblerProcess.RunAsync(ProcessRunner.BaseEnvironment(null, null), "keys", "rotate-root", "--data-dir", Path.Combine(work.Path, "any"),
            "--store", restored.Store, "--root-key-file", oldKeyFile, "--new-root-key-file", newKeyFile)).Ok();
        Assert.Contains("Re-wrapped", rotated.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(Postgres.AdminPassword, rotated.Stdout + rotated.Stderr, StringComparison.Ordinal);

        var refused = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions
        {
            Environment = new Dictionary<string, string> { ["TUMBLER_STORE"] = restored.Store, ["TUMBLER_ROOT_KEY"] = rootKey },
        });
        Assert.False(refused.BecameReady, refused.ToString());
        Assert.Contains("root key", refused.StandardError, StringComparison.OrdinalIgnoreCase);
        restored.RootKey = newKey;
        var second = await restored.StartNodeAsync();
        Assert.Equal("acknowledged", await ValueAsync(AwsCli.For(second), "dumped/app"));
    }

    [Fact]
    public async Task A_node_left_on_the_old_root_key_leaves_readiness_once_another_makes_key_material_it_cannot_unwrap()
    {
        using var work = new TempDirectory();
        await using var cluster = await Cluster.CreateAsync();
        var stale = await cluster.StartNodeAsync();
        Assert.Equal(HttpStatusCode.OK, (await ReadinessAsync(stale)).Status);

        // rotate-root while the node runs, then a rolling restart that has reached one node so far.
        var oldKeyFile = Path.Combine(work.Path, "old.key");
        var newKeyFile = Path.Combine(work.Path, "new.key");
        await File.WriteAllTextAsync(oldKeyFile, cluster.RootKey + "\n");
        var newKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        await File.WriteAllTextAsync(newKeyFile, newKey + "\n");
        (await TumblerProcess.RunAsync(ProcessRunner.BaseEnvironment(null, null), "keys", "rotate-root", "--data-dir", Path.Combine(work.Path, "any"),
            "--store", cluster.Store, "--root-key-file", oldKeyFile, "--new-root-key-file", newKeyFile)).Ok();
        cluster.RootKey = newKey;
        var current = await cluster.StartNodeAsync();
        await current.ApiClient().CallAsync("TumblerKMS.CreateKey", "kms", JsonSerializer.SerializeToUtf8Bytes(new { Description = "after the rotation" }));

        // The stale node cannot read what is encrypted under that key: it says so to the load balancer.
        await EventuallyAsync(async () => (await ReadinessAsync(stale)).Status == HttpStatusCode.ServiceUnavailable, "the stale node is not ready");
        Assert.Contains("cannot unwrap", (await ReadinessAsync(stale)).Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await ReadinessAsync(current)).Status);
    }

    private static async Task<(HttpStatusCode Status, string Body)> ReadinessAsync(TumblerServer node)
    {
        using var http = new HttpClient();
        using var response = await http.GetAsync(new Uri(new Uri(node.Endpoint), "/health/ready"));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_key_made_on_one_node_is_usable_on_another_at_once_without_waiting_for_its_poll()
    {
        await using var cluster = await Cluster.CreateAsync();
        // Polls far apart: only the on-demand catch-up can make the key known in time.
        var slow = new Dictionary<string, string> { ["TUMBLER_SHARED_STORE_POLL_SECONDS"] = "600" };
        var nodes = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => cluster.StartNodeAsync(slow)));
        var clients = nodes.Select(n => n.ApiClient()).ToArray();
        var keyId = (await clients[1].CallAsync("TumblerKMS.CreateKey", "kms", JsonSerializer.SerializeToUtf8Bytes(new { Description = "at once" })))
            .GetProperty("KeyMetadata").GetProperty("KeyId").GetString()!;
        await clients[2].SecretsManagerAsync("CreateSecret", new { Name = "now/keyed", SecretString = "fresh", KmsKeyId = keyId, ClientRequestToken = Guid.NewGuid().ToString() });
        var read = await clients[0].SecretsManagerAsync("GetSecretValue", new { SecretId = "now/keyed" });
        Assert.Equal("fresh", read.GetProperty("SecretString").GetString());
    }

    [Fact]
    public async Task While_PostgreSQL_is_out_of_reach_requests_fail_fast_in_the_AWS_shape_and_work_again_when_it_is_back()
    {
        await using var cluster = await Cluster.CreateAsync();
        await using var database = new TcpProxy(Postgres.Port);
        database.Start();
        var store = cluster.Store.Replace($":{Postgres.Port}/", $":{database.Port}/", StringComparison.Ordinal);
        var node = await cluster.StartNodeAsync(new Dictionary<string, string> { ["TUMBLER_STORE"] = store });
        var client = node.ApiClient();
        await client.SecretsManagerAsync("CreateSecret", new { Name = "outage/app", SecretString = "kept", ClientRequestToken = Guid.NewGuid().ToString() });

        await database.StopAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<TumblerApiException>(() => client.SecretsManagerAsync("GetSecretValue", new { SecretId = "outage/app" }));
        Assert.Equal(("InternalServiceError", 500), (error.ErrorCode, error.StatusCode));
        Assert.Contains("store is unavailable", error.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"the answer took {clock.Elapsed}");
        // The console logger writes from its own queue: the line may reach the output just after the answer.
        await EventuallyAsync(() => Task.FromResult(node.StandardOutput.Contains("failed in the store", StringComparison.Ordinal)),
            "the store failure is logged", seconds: 5);
        Assert.DoesNotContain("   at Npgsql", node.StandardOutput, StringComparison.Ordinal); // one line, no stack trace

        database.Start();
        await EventuallyAsync(async () =>
        {
            try
            {
                return (await client.SecretsManagerAsync("GetSecretValue", new { SecretId = "outage/app" })).GetProperty("SecretString").GetString() == "kept";
            }
            catch (TumblerApiException)
            {
                return false;
            }
        }, "reads work again once PostgreSQL is back");
    }

    [Fact]
    public async Task Secrets_due_at_once_are_each_rotated_exactly_once_across_three_nodes()
    {
        const int Count = 200;
        await using var cluster = await Cluster.CreateAsync();
        await using var db = await Postgres.ConnectAsync();
        var nodes = await cluster.StartNodesAsync(3);
        var clients = nodes.Select(n => n.ApiClient()).ToArray();
        var users = new List<(string User, string Initial)>();
        for (var i = 0; i < Count; i++)
        {
            var user = Postgres.UniqueName("due");
            var initial = "initial-" + Guid.NewGuid().ToString("N");
            await db.CreateUserAsync(user, initial);
            users.Add((user, initial));
        }

        // Created and put on a schedule through every node; RotateImmediately=false only tests the current password now.
        await Parallel.ForEachAsync(users.Select((u, i) => (u.User, u.Initial, Client: clients[i % clients.Length])),
            new ParallelOptions { MaxDegreeOfParallelism = 6 }, async (item, ct) =>
            {
                await item.Client.SecretsManagerAsync("CreateSecret", new
                {
                    Name = $"due/{item.User}",
                    ClientRequestToken = Guid.NewGuid().ToString(),
                    SecretString = new JsonObject
                    {
                        ["engine"] = "postgres", ["host"] = Postgres.Host, ["port"] = Postgres.Port, ["username"] = item.User,
                        ["password"] = item.Initial, ["ssl"] = false,
                    }.ToJsonString(),
                }, ct);
                await item.Client.SecretsManagerAsync("RotateSecret", new
                {
                    SecretId = $"due/{item.User}", RotationLambdaARN = PostgresSingleUserArn,
                    RotationRules = new { AutomaticallyAfterDays = 1 }, RotateImmediately = false, ClientRequestToken = Guid.NewGuid().ToString(),
                }, ct);
            });
        await EventuallyAsync(async () => Convert.ToInt64(await cluster.ScalarAsync("SELECT COUNT(*) FROM tumbler.rotations")) == 0,
            "the test-only rotations finished", 180);

        // Every schedule due at this instant: the three schedulers race for the same 200 secrets.
        var dueAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await Postgres.ExecuteAsync("UPDATE tumbler.secrets SET next_rotation_start = @due WHERE rotation_enabled = 1", cluster.Database, ("due", dueAt));
        await EventuallyAsync(async () => Convert.ToInt64(await cluster.ScalarAsync(
                "SELECT COUNT(*) FROM tumbler.secrets s WHERE last_rotated >= @due AND NOT EXISTS (SELECT 1 FROM tumbler.rotations r WHERE r.secret_id = s.id)",
                ("due", dueAt))) == Count,
            $"all {Count} scheduled rotations finished", 240);

        // Exactly one rotation each: two versions, AWSPREVIOUS still the initial password (a second rotation would have replaced it),
        // AWSCURRENT the one password that logs in.
        await Parallel.ForEachAsync(users, new ParallelOptions { MaxDegreeOfParallelism = 6 }, async (u, ct) =>
        {
            var client = clients[Math.Abs(u.User.GetHashCode(StringComparison.Ordinal)) % clients.Length];
            var versions = (await client.SecretsManagerAsync("ListSecretVersionIds", new { SecretId = $"due/{u.User}", IncludeDeprecated = true }, ct))
                .GetProperty("Versions").GetArrayLength();
            Assert.True(versions == 2, $"due/{u.User} has {versions} versions");
            string Password(JsonElement value) => JsonNode.Parse(value.GetProperty("SecretString").GetString()!)!["password"]!.GetValue<string>();
            var previous = Password(await client.SecretsManagerAsync("GetSecretValue", new { SecretId = $"due/{u.User}", VersionStage = "AWSPREVIOUS" }, ct));
            var current = Password(await client.SecretsManagerAsync("GetSecretValue", new { SecretId = $"due/{u.User}" }, ct));
            Assert.Equal(u.Initial, previous);
            Assert.True(await Postgres.CanLoginAsync(u.User, current), $"AWSCURRENT of due/{u.User} does not log in");
            Assert.False(await Postgres.CanLoginAsync(u.User, u.Initial));
        });

        // The audit logs agree: one successful setSecret per secret, across all nodes.
        var setSecrets = nodes.SelectMany(n => StepSuccesses(n.DataDir, "setSecret").Select(arn => (Node: n.Port, Arn: arn))).ToList();
        Assert.Equal(Count, setSecrets.Count); // the test-only rotations ran testSecret only
        Assert.Equal(Count, setSecrets.Select(s => s.Arn).Distinct().Count());
        output.WriteLine(string.Join(", ", setSecrets.GroupBy(s => s.Node).Select(g => $"node :{g.Key} rotated {g.Count()}")));
    }

    /// <summary>ARNs of the secrets whose <paramref name="step"/> succeeded on this node, from its audit log.</summary>
    private static List<string> StepSuccesses(string dataDir, string step) =>
        [.. File.ReadAllLines(Path.Combine(dataDir, "audit", "audit.log"))
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(r => r.GetProperty("operation").GetString() == "RotationStep" && r.GetProperty("rotationStep").GetString() == step
                && r.GetProperty("outcome").GetString() == "Success")
            .Select(r => r.GetProperty("secretArn").GetString()!)];

    [Fact]
    public async Task A_node_killed_inside_a_rotation_leaves_it_to_another_node_which_finishes_it_without_locking_anyone_out()
    {
        await using var cluster = await Cluster.CreateAsync();
        await using var db = await Postgres.ConnectAsync();
        var user = Postgres.UniqueName("kill");
        var initial = "initial-" + Guid.NewGuid().ToString("N");
        await db.CreateUserAsync(user, initial);

        // The doomed node is alone when the rotation starts, so it is the one that runs it, and dies after setSecret.
        var doomed = await cluster.StartNodeAsync(new Dictionary<string, string> { ["TUMBLER_FAULT_INJECTION"] = "setSecret:after" });
        var cli = AwsCli.For(doomed);
        var secret = new JsonObject
        {
            ["engine"] = "postgres", ["host"] = Postgres.Host, ["port"] = Postgres.Port, ["username"] = user, ["password"] = initial, ["ssl"] = false,
        }.ToJsonString();
        (await cli.SecretsManager("create-secret", "--name", $"kill/{user}", "--secret-string", secret)).Ok();
        (await cli.SecretsManager("rotate-secret", "--secret-id", $"kill/{user}", "--rotation-lambda-arn", PostgresSingleUserArn)).Ok();
        await EventuallyAsync(() => Task.FromResult(doomed.HasExited && doomed.StandardError.Contains("killing the process at setSecret:after", StringComparison.Ordinal)),
            "the first node was killed after setSecret", 60);
        Assert.False(await Postgres.CanLoginAsync(user, initial)); // the database already has the pending password

        var survivor = await cluster.StartNodeAsync();
        var survivorCli = AwsCli.For(survivor);
        await RotationProcessTests.WaitForRotationAsync(survivorCli, $"kill/{user}", TimeSpan.FromSeconds(60));
        var current = JsonNode.Parse(await ValueAsync(survivorCli, $"kill/{user}"))!["password"]!.GetValue<string>();
        Assert.True(await Postgres.CanLoginAsync(user, current));
        Assert.False(await Postgres.CanLoginAsync(user, initial));
        Assert.Equal(initial, JsonNode.Parse(await ValueAsync(survivorCli, $"kill/{user}", "AWSPREVIOUS"))!["password"]!.GetValue<string>());
        Assert.Contains(StepSuccesses(survivor.DataDir, "finishSecret"), arn => arn.Contains($":kill/{user}-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_write_storm_across_nodes_leaves_every_secret_with_valid_labels()
    {
        await using var cluster = await Cluster.CreateAsync();
        var nodes = await cluster.StartNodesAsync(3);
        var clients = nodes.Select(n => n.ApiClient()).ToArray();
        var names = Enumerable.Range(0, 4).Select(i => $"storm/{i}").ToArray();
        foreach (var name in names)
        {
            await clients[0].SecretsManagerAsync("CreateSecret", new { Name = name, SecretString = "v0", ClientRequestToken = Guid.NewGuid().ToString() });
        }

        var acknowledged = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, 12), new ParallelOptions { MaxDegreeOfParallelism = 12 }, async (worker, ct) =>
        {
            var client = clients[worker % clients.Length];
            var random = new Random(worker);
            var repeatable = Guid.NewGuid().ToString();
            for (var i = 0; i < 25; i++)
            {
                var name = names[random.Next(names.Length)];
                try
                {
                    switch (random.Next(3))
                    {
                        case 0:
                            await client.SecretsManagerAsync("PutSecretValue", new { SecretId = name, SecretString = $"w{worker}-{i}", ClientRequestToken = Guid.NewGuid().ToString() }, ct);
                            break;
                        case 1: // a repeated token: the first put of it creates a version, the repeats nothing (or a conflict on another secret's value)
                            await client.SecretsManagerAsync("PutSecretValue", new { SecretId = name, SecretString = $"repeat-{worker}", ClientRequestToken = repeatable }, ct);
                            break;
                        default:
                            var versions = (await client.SecretsManagerAsync("ListSecretVersionIds", new { SecretId = name }, ct)).GetProperty("Versions");
                            var target = versions[random.Next(versions.GetArrayLength())].GetProperty("VersionId").GetString()!;
                            var stage = random.Next(2) == 0 ? "AWSCURRENT" : "custom";
                            var holder = versions.EnumerateArray().FirstOrDefault(v => v.GetProperty("VersionStages").EnumerateArray().Any(s => s.GetString() == stage));
                            await client.SecretsManagerAsync("UpdateSecretVersionStage", new
                            {
                                SecretId = name, VersionStage = stage,
                                MoveToVersionId = target,
                                RemoveFromVersionId = holder.ValueKind == JsonValueKind.Object ? holder.GetProperty("VersionId").GetString() : null,
                            }, ct);
                            break;
                    }
                    Interlocked.Increment(ref acknowledged);
                }
                catch (TumblerApiException e) when (e.ErrorCode is "InvalidParameterException" or "InvalidRequestException" or "ResourceExistsException")
                {
                    // Raced another node (a label moved meanwhile, a token reused with another value): refused whole, checked below.
                }
            }
        });
        Assert.True(acknowledged > 150, $"only {acknowledged} of 300 writes succeeded");

        foreach (var name in names)
        {
            var versions = await clients[1].VersionsAsync(name);
            ApiCalls.AssertLabelInvariants(name, versions);
            foreach (var id in versions.Keys)
            {
                // Every version has its value (no half-written put).
                var value = await clients[2].SecretsManagerAsync("GetSecretValue", new { SecretId = name, VersionId = id });
                Assert.False(string.IsNullOrEmpty(value.GetProperty("SecretString").GetString()));
            }
        }
    }
}
