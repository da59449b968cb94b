using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.IntegrationTests.Rotation;
using Tumbler.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Tumbler.IntegrationTests.Samples;

/// <summary>
/// samples/Tumbler.Sample.Web as a process, reading its MariaDB login from `tumbler serve`, keeps answering
/// while the aws CLI rotates that user's password several times.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SampleAppTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_sample_app_answers_every_request_while_its_database_password_is_rotated_three_times()
    {
        var total = Stopwatch.StartNew();
        var (user, initial) = await RotationProcessTests.CreateDatabaseUserAsync();
        try
        {
            await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { Environment = RotationProcessTests.FastRotation });
            var cli = AwsCli.For(server);
            var secretId = $"db/{user}";
            (await cli.SecretsManager("create-secret", "--name", secretId,
                "--secret-string", RotationProcessTests.SecretJson(user, initial, MariaDb.Port))).Ok();

            // One app with the connection pool (the default), one opening a new connection per query, so every
            // query after a rotation meets the database's refusal of the cached password.
            await using var pooled = await SampleApp.StartAsync(server, secretId, pooling: true);
            await using var unpooled = await SampleApp.StartAsync(server, secretId, pooling: false);
            output.WriteLine($"server and apps up after {total.ElapsedMilliseconds} ms");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
            foreach (var app in new[] { pooled, unpooled })
            {
                var first = await http.GetAsync(app.Url + "/now");
                Assert.True(first.IsSuccessStatusCode, $"{first.StatusCode}: {await first.Content.ReadAsStringAsync()}\n{app.Output}");
            }

            var failures = new ConcurrentQueue<string>();
            var requests = 0;
            using var stop = new CancellationTokenSource();
            var clients = Enumerable.Range(0, 6).Select(i => Task.Run(async () =>
            {
                var app = i % 2 == 0 ? pooled : unpooled;
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        using var response = await http.GetAsync(app.Url + "/now", CancellationToken.None);
                        var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
                        if (!response.IsSuccessStatusCode || !body.Contains("\"now\"", StringComparison.Ordinal))
                        {
                            failures.Enqueue($"{app.Name}: {(int)response.StatusCode} {body}");
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        failures.Enqueue($"{app.Name}: {e.GetType().Name} {e.Message}");
                    }
                    Interlocked.Increment(ref requests);
                }
            })).ToList();

            var rotate = new List<string>
            {
                "rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", RotationProcessTests.SingleUserArn,
                "--rotation-rules", "AutomaticallyAfterDays=30",
            };
            var passwords = new List<string> { initial };
            for (var rotation = 0; rotation < 3; rotation++)
            {
                await Task.Delay(500); // some traffic on the current password first
                var clock = Stopwatch.StartNew();
                var started = (await cli.SecretsManager([.. rotate])).Ok().Json;
                await WaitUntilCurrentAsync(cli, secretId, started.GetProperty("VersionId").GetString()!, TimeSpan.FromSeconds(30));
                output.WriteLine($"rotation {rotation + 1}: {clock.ElapsedMilliseconds} ms, {Volatile.Read(ref requests)} requests so far");
                passwords.Add(await CurrentPasswordAsync(cli, secretId));
                rotate = ["rotate-secret", "--secret-id", secretId, "--rotate-immediately"];
            }
            await Task.Delay(1000); // traffic on the last password
            await stop.CancelAsync();
            await Task.WhenAll(clients);

            Assert.True(failures.IsEmpty, $"{failures.Count} of {requests} requests failed:\n{string.Join('\n', failures.Take(20))}\n" +
                $"--- pooled ---\n{pooled.Output}\n--- unpooled ---\n{unpooled.Output}");
            Assert.True(requests > 50, $"only {requests} requests");
            Assert.Equal(4, passwords.Distinct().Count());
            Assert.False(await MariaDb.CanLoginAsync(user, initial));
            Assert.True(await MariaDb.CanLoginAsync(user, passwords[^1]));
            // The unpooled app met the refusals and got past them through ExecuteWithRefreshOnAuthFailureAsync.
            var stats = await http.GetFromJsonAsync<JsonElement>(unpooled.Url + "/stats");
            output.WriteLine($"{requests} requests; unpooled app: {stats}; pooled app: {await http.GetStringAsync(pooled.Url + "/stats")}");
            Assert.True(stats.GetProperty("refusedLogins").GetInt64() >= 3, stats.ToString());
        }
        finally
        {
            await MariaDb.ExecuteAsync("DROP USER IF EXISTS @user", ("@user", user));
        }
    }

    /// <summary>Waits until <paramref name="versionId"/> is AWSCURRENT and no AWSPENDING is left.</summary>
    private static async Task WaitUntilCurrentAsync(AwsCli cli, string secretId, string versionId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var described = (await cli.SecretsManager("describe-secret", "--secret-id", secretId)).Ok().Json;
            var stages = described.GetProperty("VersionIdsToStages");
            var pending = stages.EnumerateObject().Any(v => v.Value.EnumerateArray().Any(s => s.GetString() == "AWSPENDING"));
            var current = stages.TryGetProperty(versionId, out var labels) && labels.EnumerateArray().Any(s => s.GetString() == "AWSCURRENT");
            if (current && !pending)
            {
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, $"rotation to {versionId} did not finish in {timeout}: {described}");
            await Task.Delay(200);
        }
    }

    private static async Task<string> CurrentPasswordAsync(AwsCli cli, string secretId)
    {
        var value = (await cli.SecretsManager("get-secret-value", "--secret-id", secretId)).Ok().Json;
        return JsonNode.Parse(value.GetProperty("SecretString").GetString()!)!["password"]!.GetValue<string>();
    }
}

/// <summary>samples/Tumbler.Sample.Web run with <c>dotnet exec</c> on a free loopback port; dispose kills it.</summary>
internal sealed class SampleApp : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private SampleApp(Process process, string name, string url)
    {
        _process = process;
        Name = name;
        Url = url;
    }

    public string Name { get; }
    public string Url { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>The sample's dll built with this test assembly's configuration (the ProjectReference builds it first).</summary>
    public static string Dll
    {
        get
        {
            var tfm = Path.GetFileName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var dll = Path.Combine(TumblerServer.RepoRoot, "samples", "Tumbler.Sample.Web", "bin", TumblerServer.Configuration, tfm, "Tumbler.Sample.Web.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException($"{dll} not found; build samples/Tumbler.Sample.Web with -c {TumblerServer.Configuration} first.", dll);
        }
    }

    public static async Task<SampleApp> StartAsync(TumblerServer server, string secretId, bool pooling)
    {
        var url = $"http://127.0.0.1:{TumblerServer.FreeLoopbackPort()}";
        var psi = new ProcessStartInfo(TumblerServer.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(Dll);
        foreach (var key in psi.Environment.Keys.ToList())
        {
            if (key.StartsWith("AWS_", StringComparison.Ordinal) || key.StartsWith("ASPNETCORE_", StringComparison.Ordinal) || key.StartsWith("DOTNET_URLS", StringComparison.Ordinal))
            {
                psi.Environment.Remove(key);
            }
        }
        psi.Environment["ASPNETCORE_URLS"] = url;
        psi.Environment["AWS_ENDPOINT_URL"] = server.Endpoint;
        psi.Environment["AWS_ACCESS_KEY_ID"] = server.AccessKeyId;
        psi.Environment["AWS_SECRET_ACCESS_KEY"] = server.SecretAccessKey;
        psi.Environment["AWS_REGION"] = "us-east-1";
        psi.Environment["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent";
        psi.Environment["AWS_CONFIG_FILE"] = "/nonexistent";
        psi.Environment["SECRET_ID"] = secretId;
        psi.Environment["SECRET_CACHE_TTL_SECONDS"] = "300"; // only a refused login makes the app look for a new password
        psi.Environment["DB_POOLING"] = pooling ? "true" : "false";
        psi.Environment["Logging__LogLevel__Default"] = "Warning";

        var process = Process.Start(psi)!;
        var app = new SampleApp(process, pooling ? "pooled" : "unpooled", url);
        process.OutputDataReceived += (_, e) => app.Append(e.Data);
        process.ErrorDataReceived += (_, e) => app.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                if ((await http.GetAsync(url + "/health")).IsSuccessStatusCode)
                {
                    return app;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                await app.DisposeAsync();
                throw new InvalidOperationException($"the sample app did not start at {url}:\n{app.Output}");
            }
            await Task.Delay(100);
        }
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
