using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.Client;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests.Functions;

/// <summary>One server with fast rotation retries, shared by the external function tests.</summary>
public sealed class FunctionsServerFixture : IAsyncLifetime
{
    private TumblerServer? _server;

    public TumblerServer Server => _server ?? throw new InvalidOperationException("server not started");

    public async Task InitializeAsync() =>
        _server = await TumblerServer.StartAsync(new TumblerServerOptions { Environment = ExternalFunctionTests.FastRotation }).ConfigureAwait(false);

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>
/// External rotation functions as an operator uses them: registered with `tumbler functions`, used by
/// `aws secretsmanager rotate-secret --rotation-lambda-arn`, run as real processes (Debian's python3 and
/// boto3, /bin/sh) or behind a real HTTP endpoint.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ExternalFunctionTests(FunctionsServerFixture fixture) : IClassFixture<FunctionsServerFixture>
{
    public static readonly Dictionary<string, string> FastRotation = new()
    {
        ["TUMBLER_ROTATION_LEASE_SECONDS"] = "2",
        ["TUMBLER_ROTATION_POLL_SECONDS"] = "0.5",
        ["TUMBLER_ROTATION_RETRY_SECONDS"] = "1",
    };

    private static string FunctionsDir => Path.Combine(AppContext.BaseDirectory, "Functions", "python");

    /// <summary>Runs the lambda_function module as a command function: the event on stdin, handler(event, None).</summary>
    private const string PythonCommand =
        "/usr/bin/python3 -c \"import json, sys, lambda_function; lambda_function.lambda_handler(json.load(sys.stdin), None)\"";

    private static string LambdaArn(string name) => $"arn:aws:lambda:us-east-1:123456789012:function:{name}";

    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    private static Task<CliResult> Tumbler(TumblerServer server, params string[] args) =>
        TumblerAs(server, server.AccessKeyId, server.SecretAccessKey, args);

    private static Task<CliResult> TumblerAs(TumblerServer server, string accessKeyId, string secretAccessKey, params string[] args) =>
        ProcessRunner.RunAsync(TumblerServer.DotnetHost, [TumblerServer.TumblerDll, .. args, "--endpoint-url", server.Endpoint],
            ProcessRunner.BaseEnvironment(accessKeyId, secretAccessKey));

    private static JsonApiClient RootClient(TumblerServer server) => server.ApiClient();

    private static Task<JsonElement> CallAsync(JsonApiClient client, string operation, object body) => client.SecretsManagerAsync(operation, body);

    // Polling and reads go through an in-process signed client: a process per poll would cost more than the rotations.
    private static async Task<string> ValueAsync(TumblerServer server, string secretId, string stage = "AWSCURRENT")
    {
        using var client = RootClient(server);
        return (await CallAsync(client, "GetSecretValue", new { SecretId = secretId, VersionStage = stage })).GetProperty("SecretString").GetString()!;
    }

    /// <summary>Waits until the rotation finished: no AWSPENDING left and a LastRotatedDate.</summary>
    private static async Task WaitForRotationAsync(TumblerServer server, string secretId, TimeSpan timeout, Func<string>? diagnostics = null)
    {
        using var client = RootClient(server);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var described = await CallAsync(client, "DescribeSecret", new { SecretId = secretId });
            var pending = described.GetProperty("VersionIdsToStages").EnumerateObject()
                .Any(v => v.Value.EnumerateArray().Any(s => s.GetString() == "AWSPENDING"));
            if (!pending && described.TryGetProperty("LastRotatedDate", out _))
            {
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, $"rotation did not finish in {timeout}: {described}\n{diagnostics?.Invoke()}");
            await Task.Delay(200);
        }
    }

    /// <summary>Waits until DescribeSecret's TumblerRotationStatus (a raw member the SDKs drop) shows <paramref name="attempts"/> failed attempts.</summary>
    private static async Task<JsonElement> WaitForFailuresAsync(TumblerServer server, string secretId, int attempts, TimeSpan timeout)
    {
        using var client = RootClient(server);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var described = await CallAsync(client, "DescribeSecret", new { SecretId = secretId });
            if (described.TryGetProperty("TumblerRotationStatus", out var status) && status.GetProperty("Attempts").GetInt32() >= attempts)
            {
                return status;
            }
            Assert.True(DateTime.UtcNow < deadline, $"no {attempts} failed attempts in {timeout}: {described}\n{server.StandardOutput}");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task A_python_lambda_handler_rotates_an_api_key_with_a_credential_that_reaches_only_that_secret_and_dies_with_the_step()
    {
        var server = fixture.Server;
        var cli = AwsCli.For(server);
        using var probe = new TempDirectory();
        var name = Unique("apikey");
        var other = Unique("other/secret");
        (await cli.SecretsManager("create-secret", "--name", other, "--secret-string", "not for the rotator")).Ok();
        (await Tumbler(server, "functions", "create", "--name", name, "--python-handler", "lambda_function.lambda_handler",
            "--working-dir", FunctionsDir, "--env", $"PROBE_DIR={probe.Path}", "--env", $"OTHER_SECRET_ID={other}",
            "--env", "PYTHONDONTWRITEBYTECODE=1", "--timeout", "30s")).Ok();
        var secretId = $"api/{name}";
        (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", """{"api_key":"initial"}""")).Ok();

        (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", LambdaArn(name))).Ok();
        await WaitForRotationAsync(server, secretId, TimeSpan.FromSeconds(45), () => server.StandardOutput);

        var current = JsonNode.Parse(await ValueAsync(server, secretId))!["api_key"]!.GetValue<string>();
        Assert.Equal(32, current.Length);
        Assert.Equal("""{"api_key":"initial"}""", await ValueAsync(server, secretId, "AWSPREVIOUS"));
        Assert.Equal(["createSecret", "setSecret", "testSecret", "finishSecret"], File.ReadAllLines(Path.Combine(probe.Path, "steps.log")));

        // What the function saw during testSecret: an ASIA session credential that may not read another
        // secret and is refused with any other session token.
        var seen = JsonDocument.Parse(File.ReadAllText(Path.Combine(probe.Path, "probe.json"))).RootElement;
        var credentials = seen.GetProperty("credentials");
        var keyId = credentials.GetProperty("AWS_ACCESS_KEY_ID").GetString()!;
        Assert.StartsWith("ASIA", keyId, StringComparison.Ordinal);
        Assert.Equal("us-east-1", seen.GetProperty("region").GetString());
        Assert.Equal("AccessDeniedException", seen.GetProperty("other_secret").GetString());
        Assert.Equal("UnrecognizedClientException", seen.GetProperty("wrong_token").GetString());

        // After the rotation the credential no longer works at all.
        var env = ProcessRunner.BaseEnvironment(keyId, credentials.GetProperty("AWS_SECRET_ACCESS_KEY").GetString()!);
        env["AWS_SESSION_TOKEN"] = credentials.GetProperty("AWS_SESSION_TOKEN").GetString()!;
        var after = await ProcessRunner.RunAsync(AwsCli.Executable,
            ["--endpoint-url", server.Endpoint, "--output", "json", "secretsmanager", "describe-secret", "--secret-id", secretId], env);
        Assert.NotEqual(0, after.ExitCode);
        Assert.Matches("UnrecognizedClientException|ExpiredTokenException", after.Stderr);
        // The function's stderr and the credential never reach the server's log.
        Assert.DoesNotContain(credentials.GetProperty("AWS_SECRET_ACCESS_KEY").GetString()!, server.StandardOutput + server.StandardError, StringComparison.Ordinal);

        var described = (await Tumbler(server, "functions", "describe", "--name", name)).Ok().Json.GetProperty("Configuration");
        Assert.Equal("python", described.GetProperty("Kind").GetString());
        Assert.DoesNotContain(probe.Path, described.ToString(), StringComparison.Ordinal); // env values are never shown
    }

    [Fact]
    public async Task A_command_function_failing_in_setSecret_is_retried_its_stderr_is_in_the_failure_record_and_AWSCURRENT_is_kept()
    {
        var server = fixture.Server;
        var cli = AwsCli.For(server);
        var name = Unique("failing");
        (await Tumbler(server, "functions", "create", "--name", name, "--command", "sh fail_in_set_secret.sh", "--working-dir", FunctionsDir)).Ok();
        var secretId = $"api/{name}";
        (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", """{"api_key":"initial"}""")).Ok();

        (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", LambdaArn(name))).Ok();
        var status = await WaitForFailuresAsync(server, secretId, attempts: 2, TimeSpan.FromSeconds(30));

        Assert.Equal("Retrying", status.GetProperty("State").GetString());
        Assert.Equal("setSecret", status.GetProperty("NextStep").GetString());
        var error = status.GetProperty("LastError").GetString()!;
        Assert.Contains("exited with code 3", error, StringComparison.Ordinal);
        Assert.Contains("api.example.invalid refused the new key (HTTP 503)", error, StringComparison.Ordinal);
        Assert.Contains("api.example.invalid refused the new key", server.StandardOutput, StringComparison.Ordinal); // the server log too
        Assert.Equal("""{"api_key":"initial"}""", await ValueAsync(server, secretId)); // garbage on stdout and a failure change nothing
        var again = await cli.SecretsManager("rotate-secret", "--secret-id", secretId);
        Assert.Contains("A previous rotation isn't complete", again.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_function_hanging_past_its_timeout_is_killed_with_its_children()
    {
        var server = fixture.Server;
        var cli = AwsCli.For(server);
        using var probe = new TempDirectory();
        var name = Unique("hang");
        (await Tumbler(server, "functions", "create", "--name", name, "--command", "sh hang.sh", "--working-dir", FunctionsDir,
            "--env", $"PROBE_DIR={probe.Path}", "--timeout", "1s")).Ok();
        var secretId = $"api/{name}";
        (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", """{"api_key":"initial"}""")).Ok();

        (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", LambdaArn(name))).Ok();
        var status = await WaitForFailuresAsync(server, secretId, attempts: 1, TimeSpan.FromSeconds(30));

        Assert.Contains("timed out after 1 seconds and was killed; stderr: hanging in step", status.GetProperty("LastError").GetString(), StringComparison.Ordinal);
        var pid = int.Parse(File.ReadAllText(Path.Combine(probe.Path, "hang.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the function's child {pid} still runs after the timeout");
            await Task.Delay(100);
        }
        Assert.Equal("""{"api_key":"initial"}""", await ValueAsync(server, secretId));
        (await Tumbler(server, "functions", "delete", "--name", name)).Ok();
    }

    [Fact]
    public async Task A_function_deleted_during_a_rotation_runs_no_further_step()
    {
        var server = fixture.Server;
        var cli = AwsCli.For(server);
        using var probe = new TempDirectory();
        var steps = Path.Combine(probe.Path, "steps.log");
        var name = Unique("deleted");
        (await Tumbler(server, "functions", "create", "--name", name, "--command", "read e; echo \"$e\" >> \"$PROBE_DIR/steps.log\"; sleep 2",
            "--env", $"PROBE_DIR={probe.Path}", "--timeout", "10s")).Ok();
        var secretId = $"api/{name}";
        (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", """{"api_key":"initial"}""")).Ok();
        (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", LambdaArn(name))).Ok();

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(steps))
        {
            Assert.True(DateTime.UtcNow < deadline, "the first step did not start");
            await Task.Delay(50);
        }
        (await Tumbler(server, "functions", "delete", "--name", name)).Ok(); // while createSecret runs

        var status = await WaitForFailuresAsync(server, secretId, attempts: 1, TimeSpan.FromSeconds(30));
        Assert.Contains("is not available", status.GetProperty("LastError").GetString(), StringComparison.Ordinal);
        var ran = File.ReadAllLines(steps);
        Assert.True(ran.Length == 1 && ran[0].Contains("createSecret", StringComparison.Ordinal), string.Join("\n", ran));
    }

    [Fact]
    public async Task The_same_lambda_handler_rotates_an_api_key_as_a_command_function()
    {
        var server = fixture.Server;
        var cli = AwsCli.For(server);
        using var probe = new TempDirectory();
        var name = Unique("cmd");
        (await Tumbler(server, "functions", "create", "--name", name, "--command", PythonCommand, "--working-dir", FunctionsDir,
            "--env", $"PROBE_DIR={probe.Path}", "--env", "PYTHONDONTWRITEBYTECODE=1", "--timeout", "30s")).Ok();
        var secretId = $"api/{name}";
        (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", """{"api_key":"initial"}""")).Ok();

        (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", LambdaArn(name))).Ok();
        await WaitForRotationAsync(server, secretId, TimeSpan.FromSeconds(45), () => server.StandardOutput);

        Assert.Equal(["createSecret", "setSecret", "testSecret", "finishSecret"], File.ReadAllLines(Path.Combine(probe.Path, "steps.log")));
        Assert.Equal(32, JsonNode.Parse(await ValueAsync(server, secretId))!["api_key"]!.GetValue<string>().Length);
        Assert.Equal("""{"api_key":"initial"}""", await ValueAsync(server, secretId, "AWSPREVIOUS"));
        var seen = JsonDocument.Parse(File.ReadAllText(Path.Combine(probe.Path, "probe.json"))).RootElement;
        Assert.StartsWith("ASIA", seen.GetProperty("credentials").GetProperty("AWS_ACCESS_KEY_ID").GetString(), StringComparison.Ordinal);
        Assert.Equal("command", (await Tumbler(server, "functions", "describe", "--name", name)).Ok().Json
            .GetProperty("Configuration").GetProperty("Kind").GetString());
    }

    [Fact]
    public async Task The_same_lambda_handler_behind_a_python_http_endpoint_checks_the_signature_and_rotates_with_its_own_key()
    {
        var server = fixture.Server;
        var cli = AwsCli.For(server);
        using var dir = new TempDirectory();
        using var probe = new TempDirectory();
        var name = Unique("http");
        var secretId = $"api/{name}";
        var secretArn = (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", """{"api_key":"initial"}""")).Ok()
            .Json.GetProperty("ARN").GetString()!;

        // The endpoint's own credential: a Tumbler user that may rotate this one secret and nothing else.
        var user = Unique("rotator");
        (await Tumbler(server, "iam", "create-user", "--user-name", user)).Ok();
        var key = (await Tumbler(server, "iam", "create-access-key", "--user-name", user)).Ok().Json.GetProperty("AccessKey");
        (await Tumbler(server, "iam", "put-user-policy", "--user-name", user, "--policy-name", "rotate-one", "--policy-document",
            JsonSerializer.Serialize(new
            {
                Version = "2012-10-17",
                Statement = new object[]
                {
                    new { Effect = "Allow", Action = new[] { "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage" }, Resource = secretArn },
                    new { Effect = "Allow", Action = new[] { "secretsmanager:GetRandomPassword" }, Resource = "*" },
                },
            }))).Ok();

        var sharedSecret = Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
        var secretFile = Path.Combine(dir.Path, "shared-secret");
        await File.WriteAllTextAsync(secretFile, sharedSecret + "\n");
        var env = ProcessRunner.BaseEnvironment(key.GetProperty("AccessKeyId").GetString(), key.GetProperty("SecretAccessKey").GetString());
        env["SECRETS_MANAGER_ENDPOINT"] = server.Endpoint;
        env["AWS_REGION"] = "us-east-1";
        env["TUMBLER_SHARED_SECRET_FILE"] = secretFile;
        env["PROBE_DIR"] = probe.Path;
        env["OTHER_SECRET_ID"] = $"api/{Unique("elsewhere")}";
        await using var runner = await PythonHttpRunner.StartAsync(env);
        (await Tumbler(server, "functions", "create", "--name", name, "--url", runner.Url, "--shared-secret-file", secretFile, "--timeout", "10s")).Ok();

        (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", LambdaArn(name))).Ok();
        await WaitForRotationAsync(server, secretId, TimeSpan.FromSeconds(30), () => runner.Stderr);

        Assert.Equal(["createSecret", "setSecret", "testSecret", "finishSecret"], File.ReadAllLines(Path.Combine(probe.Path, "steps.log")));
        Assert.Equal(32, JsonNode.Parse(await ValueAsync(server, secretId))!["api_key"]!.GetValue<string>().Length);
        Assert.Equal("""{"api_key":"initial"}""", await ValueAsync(server, secretId, "AWSPREVIOUS"));
        var seen = JsonDocument.Parse(File.ReadAllText(Path.Combine(probe.Path, "probe.json"))).RootElement;
        Assert.Equal(key.GetProperty("AccessKeyId").GetString(), seen.GetProperty("credentials").GetProperty("AWS_ACCESS_KEY_ID").GetString());
        Assert.Equal("AccessDeniedException", seen.GetProperty("other_secret").GetString()); // its policy is the limit, not Tumbler
        Assert.DoesNotContain("refused a request", runner.Stderr, StringComparison.Ordinal); // every step Tumbler sent was signed correctly

        // The runner does check: the same event unsigned, signed with another secret, or with an old timestamp is refused.
        var body = JsonSerializer.SerializeToUtf8Bytes(new { SecretId = secretArn, ClientRequestToken = Guid.NewGuid().ToString(), Step = "createSecret" });
        string Sign(string secret, long unix) =>
            $"t={unix},v1={Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), (byte[])[.. Encoding.ASCII.GetBytes(unix + "."), .. body])).ToLowerInvariant()}";
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        using var http = new HttpClient();
        foreach (var signature in new[] { null, Sign("not-the-shared-secret", now), Sign(sharedSecret, now - 600) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, runner.Url) { Content = new ByteArrayContent(body) };
            request.Headers.ConnectionClose = true; // the runner closes every connection (HTTP/1.0): never reuse one it may have closed
            if (signature is not null)
            {
                request.Headers.TryAddWithoutValidation("X-Tumbler-Signature", signature);
            }
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
        Assert.Equal(4, File.ReadAllLines(Path.Combine(probe.Path, "steps.log")).Length); // the handler never ran for them

        var described = (await Tumbler(server, "functions", "describe", "--name", name)).Ok();
        Assert.Equal("http", described.Json.GetProperty("Configuration").GetProperty("Kind").GetString());
        Assert.DoesNotContain(sharedSecret, described.Stdout, StringComparison.Ordinal);
    }

    /// <summary>The lambda handler as a command, first appending "$MARK $AWS_LAMBDA_FUNCTION_TIMEOUT" to env.log.</summary>
    private const string MarkingCommand = "echo \"$MARK $AWS_LAMBDA_FUNCTION_TIMEOUT\" >> \"$PROBE_DIR/env.log\"; " + PythonCommand;

    [Fact]
    public async Task An_updated_timeout_and_environment_are_used_by_the_next_rotation()
    {
        var server = fixture.Server;
        var cli = AwsCli.For(server);
        using var probe = new TempDirectory();
        var name = Unique("upd");
        (await Tumbler(server, "functions", "create", "--name", name, "--command", MarkingCommand, "--working-dir", FunctionsDir,
            "--env", $"PROBE_DIR={probe.Path}", "--env", "MARK=first", "--timeout", "30s")).Ok();
        var secretId = $"api/{name}";
        (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", """{"api_key":"initial"}""")).Ok();
        (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", LambdaArn(name))).Ok();
        await WaitForRotationAsync(server, secretId, TimeSpan.FromSeconds(45), () => server.StandardOutput);
        var first = await ValueAsync(server, secretId);

        var updated = (await Tumbler(server, "functions", "update", "--name", name, "--env", $"PROBE_DIR={probe.Path}", "--env", "MARK=second",
            "--timeout", "2m")).Ok().Json;
        Assert.Equal(120, updated.GetProperty("Timeout").GetInt32());
        using (var client = RootClient(server))
        {
            await CallAsync(client, "RotateSecret", new { SecretId = secretId, ClientRequestToken = Guid.NewGuid().ToString() }); // the stored function again
        }
        var deadline = DateTime.UtcNow.AddSeconds(45);
        while (await ValueAsync(server, secretId, "AWSPREVIOUS") != first)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the second rotation did not finish:\n{server.StandardOutput}");
            await Task.Delay(200);
        }
        await WaitForRotationAsync(server, secretId, TimeSpan.FromSeconds(10));

        Assert.Equal([.. Enumerable.Repeat("first 30", 4), .. Enumerable.Repeat("second 120", 4)], File.ReadAllLines(Path.Combine(probe.Path, "env.log")));
    }

    [Fact]
    public async Task A_function_with_max_concurrency_1_runs_two_rotations_one_step_at_a_time()
    {
        var server = fixture.Server;
        using var probe = new TempDirectory();
        // Each invocation sleeps, runs the handler, then appends "NAME START END" (seconds) to spans.log.
        const string timed = "s=$(date +%s.%N); sleep 0.7; " + PythonCommand + "; rc=$?; echo \"$AWS_LAMBDA_FUNCTION_NAME $s $(date +%s.%N)\" >> \"$PROBE_DIR/spans.log\"; exit $rc";
        var capped = Unique("one");
        var free = Unique("four");
        (await Tumbler(server, "functions", "create", "--name", capped, "--command", timed, "--working-dir", FunctionsDir,
            "--env", $"PROBE_DIR={probe.Path}", "--max-concurrency", "1")).Ok();
        (await Tumbler(server, "functions", "create", "--name", free, "--command", timed, "--working-dir", FunctionsDir,
            "--env", $"PROBE_DIR={probe.Path}")).Ok();
        using var client = RootClient(server);
        var secrets = new List<(string Function, string SecretId)>();
        foreach (var function in new[] { capped, capped, free, free })
        {
            var secretId = $"api/{Unique(function)}";
            await CallAsync(client, "CreateSecret", new { Name = secretId, SecretString = """{"api_key":"initial"}""", ClientRequestToken = Guid.NewGuid().ToString() });
            secrets.Add((function, secretId));
        }

        await Task.WhenAll(secrets.Select(s => CallAsync(client, "RotateSecret", new { s.SecretId, RotationLambdaARN = LambdaArn(s.Function), ClientRequestToken = Guid.NewGuid().ToString() })));
        await Task.WhenAll(secrets.Select(s => WaitForRotationAsync(server, s.SecretId, TimeSpan.FromSeconds(60), () => server.StandardOutput)));

        var spans = File.ReadAllLines(Path.Combine(probe.Path, "spans.log")).Select(line => line.Split(' '))
            .Select(p => (Function: p[0], Start: double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture), End: double.Parse(p[2], System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
        static bool Overlap(IReadOnlyList<(string Function, double Start, double End)> s) =>
            s.SelectMany((a, i) => s.Skip(i + 1).Select(b => a.Start < b.End && b.Start < a.End)).Any(x => x);
        var cappedSpans = spans.Where(s => s.Function == capped).ToList();
        var freeSpans = spans.Where(s => s.Function == free).ToList();
        Assert.Equal(8, cappedSpans.Count);
        Assert.Equal(8, freeSpans.Count);
        Assert.False(Overlap(cappedSpans), "invocations of the max-concurrency 1 function overlapped:\n" + string.Join("\n", cappedSpans));
        Assert.True(Overlap(freeSpans), "the uncapped function's two rotations never ran at once, so the cap proves nothing:\n" + string.Join("\n", freeSpans));
    }

    [Fact]
    public async Task A_working_directory_missing_on_the_server_is_refused_when_the_function_is_created_or_updated()
    {
        var server = fixture.Server;
        var missingDir = Path.Combine(Path.GetTempPath(), Unique("no-such-dir"));
        var created = await Tumbler(server, "functions", "create", "--name", Unique("typo"), "--command", "true", "--working-dir", missingDir);
        Assert.Equal(1, created.ExitCode);
        Assert.Contains($"WorkingDirectory {missingDir} is not a directory on the Tumbler server.", created.Stderr, StringComparison.Ordinal);

        var name = Unique("moved");
        (await Tumbler(server, "functions", "create", "--name", name, "--command", "true", "--working-dir", FunctionsDir)).Ok();
        var updated = await Tumbler(server, "functions", "update", "--name", name, "--working-dir", missingDir);
        Assert.Equal(1, updated.ExitCode);
        Assert.Contains("is not a directory on the Tumbler server", updated.Stderr, StringComparison.Ordinal);
        Assert.Contains(FunctionsDir, (await Tumbler(server, "functions", "describe", "--name", name)).Ok().Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Function_admin_calls_need_lambda_permissions_and_an_unknown_function_cannot_be_rotated_with()
    {
        var server = fixture.Server;
        var user = Unique("ops");
        (await Tumbler(server, "iam", "create-user", "--user-name", user)).Ok();
        var key = (await Tumbler(server, "iam", "create-access-key", "--user-name", user)).Ok().Json.GetProperty("AccessKey");
        var (id, secret) = (key.GetProperty("AccessKeyId").GetString()!, key.GetProperty("SecretAccessKey").GetString()!);

        var denied = await TumblerAs(server, id, secret, "functions", "create", "--name", Unique("evil"), "--command", "true");
        Assert.Equal(1, denied.ExitCode);
        Assert.Contains("AccessDeniedException", denied.Stderr, StringComparison.Ordinal);
        Assert.Contains("lambda:CreateFunction", denied.Stderr, StringComparison.Ordinal);
        Assert.Contains("AccessDeniedException", (await TumblerAs(server, id, secret, "functions", "list")).Stderr, StringComparison.Ordinal);

        (await Tumbler(server, "iam", "put-user-policy", "--user-name", user, "--policy-name", "read-functions", "--policy-document",
            """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["lambda:GetFunction","lambda:ListFunctions"],"Resource":"*"}]}""")).Ok();
        (await TumblerAs(server, id, secret, "functions", "list")).Ok();
        Assert.Contains("AccessDeniedException", (await TumblerAs(server, id, secret, "functions", "delete", "--name", "anything")).Stderr, StringComparison.Ordinal);

        var cli = AwsCli.For(server);
        var secretId = $"api/{Unique("unknown")}";
        (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", "x")).Ok();
        var rotate = await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", LambdaArn("no-such-function"));
        Assert.Contains("AccessDeniedException", rotate.Stderr, StringComparison.Ordinal);
        Assert.Contains("cannot invoke the specified Lambda function", rotate.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_killed_after_setSecret_resumes_the_external_rotation_from_the_persisted_step()
    {
        using var dataDir = new TempDirectory();
        using var probe = new TempDirectory();
        var options = new TumblerServerOptions
        {
            DataDir = dataDir.Path, AccessKeyId = TumblerServer.NewAccessKeyId(), SecretAccessKey = TumblerServer.NewSecretAccessKey(),
            Environment = new Dictionary<string, string>(FastRotation) { ["TUMBLER_FAULT_INJECTION"] = "setSecret:after" },
        };
        const string secretId = "api/crash";
        await using (var doomed = await TumblerServer.StartAsync(options))
        {
            var cli = AwsCli.For(doomed);
            (await Tumbler(doomed, "functions", "create", "--name", "crash-rotator", "--command", PythonCommand, "--working-dir", FunctionsDir,
                "--env", $"PROBE_DIR={probe.Path}", "--env", "PYTHONDONTWRITEBYTECODE=1")).Ok();
            (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", """{"api_key":"initial"}""")).Ok();
            (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", LambdaArn("crash-rotator"))).Ok();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!doomed.HasExited || !doomed.StandardError.Contains("killing the process at setSecret:after", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the server was not killed at setSecret:after:\n{doomed.StandardOutput}\n{doomed.StandardError}");
                await Task.Delay(100);
            }
        }

        await using var restarted = await TumblerServer.StartAsync(options with { Environment = FastRotation });
        await WaitForRotationAsync(restarted, secretId, TimeSpan.FromSeconds(45), () => restarted.StandardOutput);
        // createSecret ran once (its pending value survived the crash); setSecret, done but not recorded, ran again.
        Assert.Equal(["createSecret", "setSecret", "setSecret", "testSecret", "finishSecret"], File.ReadAllLines(Path.Combine(probe.Path, "steps.log")));
        Assert.Equal("""{"api_key":"initial"}""", await ValueAsync(restarted, secretId, "AWSPREVIOUS"));
        Assert.Equal(32, JsonNode.Parse(await ValueAsync(restarted, secretId))!["api_key"]!.GetValue<string>().Length);
    }

    /// <summary>
    /// python/http_runner.py: lambda_function.lambda_handler behind HTTP, checking Tumbler's signature with the
    /// shared secret and calling back with the credentials of its own environment.
    /// </summary>
    private sealed class PythonHttpRunner : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _stderr = new();

        private PythonHttpRunner(Process process) => _process = process;

        public string Url { get; private set; } = "";

        public string Stderr
        {
            get
            {
                lock (_stderr)
                {
                    return _stderr.ToString();
                }
            }
        }

        public static async Task<PythonHttpRunner> StartAsync(IReadOnlyDictionary<string, string> environment)
        {
            var psi = new ProcessStartInfo("/usr/bin/python3")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
                UseShellExecute = false, WorkingDirectory = FunctionsDir,
            };
            psi.ArgumentList.Add("http_runner.py");
            psi.Environment.Clear();
            foreach (var (k, v) in environment)
            {
                psi.Environment[k] = v;
            }
            var process = Process.Start(psi)!;
            process.StandardInput.Close();
            var runner = new PythonHttpRunner(process);
            process.ErrorDataReceived += (_, e) =>
            {
                lock (runner._stderr)
                {
                    runner._stderr.AppendLine(e.Data);
                }
            };
            process.BeginErrorReadLine();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            var first = await process.StandardOutput.ReadLineAsync(cts.Token);
            if (first is null || !first.StartsWith("listening ", StringComparison.Ordinal))
            {
                await runner.DisposeAsync();
                throw new InvalidOperationException($"http_runner.py did not start: {first}\n{runner.Stderr}");
            }
            runner.Url = $"http://127.0.0.1:{first["listening ".Length..]}/rotate";
            return runner;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            await _process.WaitForExitAsync();
            _process.Dispose();
        }
    }
}
