using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tumbler.Client;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests;

/// <summary>
/// <c>tumbler serve</c>'s configuration: tumbler.json in the data directory, TUMBLER_* overrides, flags over
/// both, refusals of a bad file in one line, --print-config, and JSON logs whose request id is the one in
/// x-amzn-RequestId and in the audit record.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ServeConfigTests
{
    private static string NewDataDir(TempDirectory temp, string json)
    {
        var dataDir = Path.Combine(temp.Path, "data");
        Directory.CreateDirectory(dataDir);
        File.WriteAllText(Path.Combine(dataDir, "tumbler.json"), json);
        return dataDir;
    }

    private static async Task<HttpResponseMessage> CallAsync(TumblerServer server, string region, string operation, string json)
    {
        using var http = new HttpClient();
        var body = Encoding.UTF8.GetBytes(json);
        using var request = new HttpRequestMessage(HttpMethod.Post, server.Endpoint + "/") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/x-amz-json-1.1");
        request.Headers.Add("X-Amz-Target", "secretsmanager." + operation);
        SigV4Signer.Sign(request, body, server.AccessKeyId, server.SecretAccessKey, region, DateTimeOffset.UtcNow);
        var response = await http.SendAsync(request);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    private static async Task<string> ErrorType(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("__type").GetString()!;

    [Fact]
    public async Task A_file_in_the_data_directory_sets_listen_region_and_rate_limit()
    {
        using var temp = new TempDirectory();
        var port = TumblerServer.FreeLoopbackPort();
        var dataDir = NewDataDir(temp, $$"""
            {
              // comments and a trailing comma are allowed
              "listen": ["127.0.0.1:{{port}}"],
              "region": "eu-west-1",
              "rateLimit": 0.1,
              "rateBurst": 2,
            }
            """);
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { DataDir = dataDir, PassListen = false, Port = port });

        Assert.Contains($"127.0.0.1:{port}", server.StandardOutput, StringComparison.Ordinal);
        using var wrongRegion = await CallAsync(server, "us-east-1", "ListSecrets", "{}");
        Assert.Equal(HttpStatusCode.BadRequest, wrongRegion.StatusCode);
        using var first = await CallAsync(server, "eu-west-1", "ListSecrets", "{}");
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var second = await CallAsync(server, "eu-west-1", "ListSecrets", "{}");
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        using var third = await CallAsync(server, "eu-west-1", "ListSecrets", "{}"); // burst 2, one token per 10 s
        Assert.Equal("ThrottlingException", await ErrorType(third));
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact]
    public async Task Print_config_shows_flags_over_environment_over_file_and_masks_secrets()
    {
        using var temp = new TempDirectory();
        var dataDir = NewDataDir(temp, """{"region": "eu-west-1", "rateLimit": 5, "accountId": "111122223333", "logLevel": "Warning"}""");
        var rootKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var outcome = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions
        {
            DataDir = dataDir,
            ExtraArgs = ["--region", "ap-south-1", "--print-config"],
            Environment = new Dictionary<string, string>
            {
                ["TUMBLER_RATE_LIMIT"] = "7",
                ["TUMBLER_REGION"] = "eu-central-1",
                ["TUMBLER_ROOT_KEY"] = rootKey,
            },
        });

        Assert.True(outcome.ExitCode == 0, outcome.ToString());
        Assert.False(outcome.BecameReady);
        var printed = JsonDocument.Parse(outcome.StandardOutput).RootElement;
        Assert.Equal("ap-south-1", Assert.Single(printed.GetProperty("region").EnumerateArray()).GetString()); // flag over env and file
        Assert.Equal(7, printed.GetProperty("rateLimit").GetDouble());                                          // env over file
        Assert.Equal("111122223333", printed.GetProperty("accountId").GetString());                             // file over default
        Assert.Equal("Warning", printed.GetProperty("logLevel").GetString());
        Assert.Equal("file", printed.GetProperty("audit").GetString());                                         // default
        var sources = printed.GetProperty("sources");
        Assert.Equal("--region", sources.GetProperty("region").GetString());
        Assert.Equal("TUMBLER_RATE_LIMIT", sources.GetProperty("rateLimit").GetString());
        Assert.EndsWith("tumbler.json", sources.GetProperty("accountId").GetString(), StringComparison.Ordinal);
        Assert.Equal("default", sources.GetProperty("audit").GetString());
        Assert.StartsWith("********", printed.GetProperty("rootKey").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("********", printed.GetProperty("rootCredentials").GetString(), StringComparison.Ordinal);
        // The harness gives the server TUMBLER_ROOT_SECRET_ACCESS_KEY; neither it nor the root key may be printed.
        Assert.DoesNotContain(rootKey, outcome.StandardOutput + outcome.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("SecretAccessKey\": \"", outcome.StandardOutput, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dataDir, "tumbler.db")), "--print-config must not open the store");
    }

    [Fact]
    public async Task Print_config_names_a_passphrase_as_the_root_key_source_and_refuses_a_missing_passphrase_or_rotation_ca_file()
    {
        using var temp = new TempDirectory();
        var dataDir = NewDataDir(temp, "{}");
        var passphraseFile = Path.Combine(temp.Path, "passphrase.txt");
        await File.WriteAllTextAsync(passphraseFile, "correct horse battery staple\n");

        var fromFile = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions
        {
            DataDir = dataDir, ExtraArgs = ["--root-key-passphrase-file", passphraseFile, "--print-config"],
        });
        Assert.True(fromFile.ExitCode == 0, fromFile.ToString());
        Assert.Equal($"derived from the passphrase in {passphraseFile}",
            JsonDocument.Parse(fromFile.StandardOutput).RootElement.GetProperty("rootKey").GetString());
        Assert.DoesNotContain("correct horse", fromFile.StandardOutput, StringComparison.Ordinal);

        var fromEnvironment = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions
        {
            DataDir = dataDir, ExtraArgs = ["--print-config"],
            Environment = new Dictionary<string, string> { ["TUMBLER_ROOT_KEY_PASSPHRASE"] = "correct horse battery staple" },
        });
        Assert.Equal("derived from the passphrase in TUMBLER_ROOT_KEY_PASSPHRASE",
            JsonDocument.Parse(fromEnvironment.StandardOutput).RootElement.GetProperty("rootKey").GetString());

        var missing = Path.Combine(temp.Path, "no-such-passphrase.txt");
        var refused = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions
        {
            DataDir = dataDir, ExtraArgs = ["--root-key-passphrase-file", missing, "--print-config"],
        });
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains($"--root-key-passphrase-file {missing}: no such file.", refused.StandardError, StringComparison.Ordinal);

        var noCa = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions
        {
            DataDir = dataDir, ExtraArgs = ["--print-config"],
            Environment = new Dictionary<string, string> { ["TUMBLER_ROTATION_CA_FILE"] = missing },
        });
        Assert.Equal(1, noCa.ExitCode);
        Assert.Contains($"rotationCaFile {missing}: no such file.", noCa.StandardError, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"listen": "127.0.0.1:0",""", "not valid JSON at line 1, column 25: Expected start of a property name or value")]
    [InlineData("{\n  \"listen\": \"127.0.0.1:0\",\n  \"rateLimit\": 5x\n}", "not valid JSON at line 3, column 17: 'x' is an invalid end of a number")]
    [InlineData("""{"rateLimt": 5}""", "\"rateLimt\": unknown setting")]
    [InlineData("""{"rateLimit": "fast"}""", "\"rateLimit\": must be a positive number, got \"fast\"")]
    [InlineData("""{"rateLimit": -1}""", "\"rateLimit\": must be a positive number, got -1")]
    [InlineData("""{"metrics": "yes"}""", "\"metrics\": must be true or false")]
    [InlineData("""{"listen": "127.0.0.1:99999"}""", "\"listen\": 127.0.0.1:99999: the port must be")]
    [InlineData("""{"dataDir": "/elsewhere"}""", "\"dataDir\": cannot be set in the configuration file")]
    [InlineData("""{"store": ["postgres://tumbler:SEKRIT@127.0.0.1:1/x"]}""", "\"store\": must be a string, got a JSON array")]
    public async Task A_bad_configuration_file_fails_fast_in_one_line_naming_the_setting(string json, string expected)
    {
        using var temp = new TempDirectory();
        var dataDir = NewDataDir(temp, json);
        var outcome = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions { DataDir = dataDir, PassListen = false });

        Assert.False(outcome.BecameReady, outcome.ToString());
        Assert.Equal(1, outcome.ExitCode);
        var line = Assert.Single(outcome.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"tumbler: {Path.Combine(dataDir, "tumbler.json")}: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("SEKRIT", line, StringComparison.Ordinal); // a store's password is never quoted back
        Assert.False(File.Exists(Path.Combine(dataDir, "tumbler.db")), "nothing may be created before the configuration is valid");
    }

    [Fact]
    public async Task A_bad_environment_value_is_refused_naming_the_variable()
    {
        var outcome = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions
        {
            Environment = new Dictionary<string, string> { ["TUMBLER_LOG_FORMAT"] = "xml" },
        });
        Assert.Equal(1, outcome.ExitCode);
        Assert.Equal("tumbler: TUMBLER_LOG_FORMAT: must be one of text, json, got xml", outcome.StandardError.Trim());
    }

    [Fact]
    public async Task Json_logs_are_json_lines_whose_request_id_matches_the_header_and_the_audit_record()
    {
        using var temp = new TempDirectory();
        // file: text/Warning; environment: json/Error; flag: Debug. Effective: json (env over file), Debug (flag over env).
        var dataDir = NewDataDir(temp, """{"logFormat": "text", "logLevel": "Warning"}""");
        string requestId, secretValue = "never-logged-" + Guid.NewGuid().ToString("N");
        string stdout;
        await using (var server = await TumblerServer.StartAsync(new TumblerServerOptions
        {
            DataDir = dataDir,
            ExtraArgs = ["--log-level", "Debug"],
            Environment = new Dictionary<string, string> { ["TUMBLER_LOG_FORMAT"] = "json", ["TUMBLER_LOG_LEVEL"] = "Error" },
        }))
        {
            var name = "cfg/log-" + Guid.NewGuid().ToString("N")[..8];
            using var created = await CallAsync(server, "us-east-1", "CreateSecret", JsonSerializer.Serialize(new { Name = name, SecretString = secretValue, ClientRequestToken = Guid.NewGuid().ToString() }));
            Assert.True(created.StatusCode == HttpStatusCode.OK, await created.Content.ReadAsStringAsync());
            requestId = Assert.Single(created.Headers.GetValues("x-amzn-RequestId"));
            Assert.Equal(0, await server.StopAsync());
            stdout = server.StandardOutput;
        }

        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var entries = lines.Select(line => JsonDocument.Parse(line).RootElement).ToList(); // every line is JSON
        Assert.All(entries, e => Assert.EndsWith("Z", e.GetProperty("Timestamp").GetString(), StringComparison.Ordinal));
        Assert.Contains(entries, e => e.GetProperty("Message").GetString()!.StartsWith("Tumbler is ready", StringComparison.Ordinal));
        var requestLines = entries.Where(e => e.TryGetProperty("Scopes", out var scopes)
            && scopes.EnumerateArray().Any(s => s.ValueKind == JsonValueKind.Object && s.TryGetProperty("RequestId", out var id) && id.GetString() == requestId)).ToList();
        var line = Assert.Single(requestLines);
        Assert.Equal("Debug", line.GetProperty("LogLevel").GetString());
        Assert.Contains("CreateSecret answered 200", line.GetProperty("Message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(secretValue, stdout, StringComparison.Ordinal);

        var audit = await File.ReadAllLinesAsync(Path.Combine(dataDir, "audit", "audit.log"));
        var record = Assert.Single(audit, l => JsonDocument.Parse(l).RootElement.GetProperty("requestId").GetString() == requestId);
        Assert.Equal("CreateSecret", JsonDocument.Parse(record).RootElement.GetProperty("operation").GetString());
    }
}
