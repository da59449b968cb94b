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

    private static JsonApiClient RootClient(TumblerServer server) =>
        new(new Uri(server.Endpoint), new AwsCredentials(server.AccessKeyId, server.SecretAccessKey), "us-east-1");

    private static async Task<JsonElement> CallAsync(JsonApiClient client, string operation, object body) =>
        await client.CallAsync("secretsmanager." + operation, "secretsmanager", JsonSerializer.SerializeToUtf8Bytes(body));

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
    public async Task An_http_function_receives_every_step_signed_with_the_shared_secret_and_rotates_the_secret()
    {
        var server = fixture.Server;
        var cli = AwsCli.For(server);
        using var dir = new TempDirectory();
        var sharedSecret = Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
        var secretFile = Path.Combine(dir.Path, "shared-secret");
        await File.WriteAllTextAsync(secretFile, sharedSecret + "\n");
        await using var endpoint = new HttpRotationEndpoint(sharedSecret, server);
        var name = Unique("http");
        (await Tumbler(server, "functions", "create", "--name", name, "--url", endpoint.Url, "--shared-secret-file", secretFile, "--timeout", "10s")).Ok();
        var secretId = $"api/{name}";
        (await cli.SecretsManager("create-secret", "--name", secretId, "--secret-string", """{"api_key":"initial"}""")).Ok();

        (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", LambdaArn(name))).Ok();
        await WaitForRotationAsync(server, secretId, TimeSpan.FromSeconds(30), () => string.Join("\n", endpoint.Log));

        Assert.Equal(["createSecret valid", "setSecret valid", "testSecret valid", "finishSecret valid"], endpoint.Log);
        Assert.NotEqual("""{"api_key":"initial"}""", await ValueAsync(server, secretId));
        Assert.Equal("""{"api_key":"initial"}""", await ValueAsync(server, secretId, "AWSPREVIOUS"));
        var described = (await Tumbler(server, "functions", "describe", "--name", name)).Ok();
        Assert.DoesNotContain(sharedSecret, described.Stdout, StringComparison.Ordinal);
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
    /// A rotation function behind HTTP, as a team would run one: checks Tumbler's signature (the documented
    /// format, computed here independently), then rotates with its own credentials (here the root's).
    /// </summary>
    private sealed class HttpRotationEndpoint : IAsyncDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly string _sharedSecret;
        private readonly JsonApiClient _client;
        private readonly Task _loop;

        public HttpRotationEndpoint(string sharedSecret, TumblerServer server)
        {
            _sharedSecret = sharedSecret;
            _client = RootClient(server);
            Url = $"http://127.0.0.1:{TumblerServer.FreeLoopbackPort()}/rotate/";
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _loop = Task.Run(ServeAsync);
        }

        public string Url { get; }
        public List<string> Log { get; } = [];

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }
                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                var bytes = body.ToArray();
                var valid = Verify(context.Request.Headers["X-Tumbler-Signature"], bytes);
                var rotationEvent = JsonDocument.Parse(bytes).RootElement;
                var step = rotationEvent.GetProperty("Step").GetString()!;
                lock (Log)
                {
                    Log.Add($"{step} {(valid ? "valid" : "INVALID")}");
                }
                try
                {
                    if (!valid)
                    {
                        context.Response.StatusCode = 401;
                    }
                    else
                    {
                        await RotateAsync(step, rotationEvent.GetProperty("SecretId").GetString()!, rotationEvent.GetProperty("ClientRequestToken").GetString()!);
                        context.Response.StatusCode = 200;
                    }
                }
                catch (TumblerApiException e)
                {
                    context.Response.StatusCode = 500;
                    await context.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(e.Message));
                }
                context.Response.Close();
            }
        }

        /// <summary>X-Tumbler-Signature: t=UNIX,v1=hex(HMAC-SHA256(secret, "UNIX." + body)), within five minutes.</summary>
        private bool Verify(string? header, byte[] body)
        {
            var parts = (header ?? "").Split(',').Select(p => p.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
            if (!parts.TryGetValue("t", out var t) || !parts.TryGetValue("v1", out var v1) || !long.TryParse(t, out var unix)
                || Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - unix) > 300)
            {
                return false;
            }
            byte[] signed = [.. Encoding.ASCII.GetBytes(t + "."), .. body];
            var expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(_sharedSecret), signed);
            return CryptographicOperations.FixedTimeEquals(expected, Convert.FromHexString(v1));
        }

        private async Task RotateAsync(string step, string arn, string token)
        {
            switch (step)
            {
                case "createSecret":
                    try
                    {
                        await CallAsync(_client, "GetSecretValue", new { SecretId = arn, VersionId = token, VersionStage = "AWSPENDING" });
                    }
                    catch (TumblerApiException e) when (e.ErrorCode == "ResourceNotFoundException")
                    {
                        var password = (await CallAsync(_client, "GetRandomPassword", new { PasswordLength = 32, ExcludePunctuation = true }))
                            .GetProperty("RandomPassword").GetString();
                        await CallAsync(_client, "PutSecretValue", new
                        {
                            SecretId = arn, ClientRequestToken = token, VersionStages = new[] { "AWSPENDING" },
                            SecretString = new JsonObject { ["api_key"] = password }.ToJsonString(),
                        });
                    }
                    break;
                case "finishSecret":
                    var versions = (await CallAsync(_client, "DescribeSecret", new { SecretId = arn })).GetProperty("VersionIdsToStages");
                    var current = versions.EnumerateObject().First(v => v.Value.EnumerateArray().Any(s => s.GetString() == "AWSCURRENT")).Name;
                    if (current != token)
                    {
                        await CallAsync(_client, "UpdateSecretVersionStage", new { SecretId = arn, VersionStage = "AWSCURRENT", MoveToVersionId = token, RemoveFromVersionId = current });
                    }
                    break;
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            _listener.Close();
            await _loop.ConfigureAwait(false);
            _client.Dispose();
        }
    }
}
