using System.Text.Json;
using Tumbler.IntegrationTests.Support;
using static Tumbler.IntegrationTests.Access.TumblerProcess;

namespace Tumbler.IntegrationTests.Access;

/// <summary>
/// The audit log of a real <c>tumbler serve</c> after aws CLI traffic from root, an allowed and a denied
/// user: who was denied is there, no secret value or secret access key is, <c>tumbler audit verify</c>
/// accepts it after the server stopped and names the line once one record is edited; <c>--audit none</c>
/// writes nothing.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AuditEndToEndTests
{
    private static Task<CliResult> VerifyAsync(string dataDir) =>
        RunAsync(ProcessRunner.BaseEnvironment(null, null), "audit", "verify", "--data-dir", dataDir);

    private static List<JsonElement> Records(string[] lines) =>
        [.. lines.Select(l => { using var d = JsonDocument.Parse(l); return d.RootElement.Clone(); })];

    private static string? Member(JsonElement record, string name) =>
        record.TryGetProperty(name, out var v) ? v.GetString() : null;

    [Fact]
    public async Task Allowed_and_denied_aws_cli_calls_are_recorded_without_values_and_the_log_verifies_until_a_record_is_edited()
    {
        using var temp = new TempDirectory();
        var dataDir = Path.Combine(temp.Path, "data");
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { DataDir = dataDir });
        var root = AwsCli.For(server);

        var name = Unique("audited") + "/db";
        var firstValue = "first-" + Guid.NewGuid().ToString("N");
        var refusedValue = "refused-" + Guid.NewGuid().ToString("N");
        var secondValue = "second-" + Guid.NewGuid().ToString("N");
        var secretArn = (await root.SecretsManager("create-secret", "--name", name, "--secret-string", firstValue)).Ok().Json.Str("ARN");
        var users = await Task.WhenAll(
            CreateUserAsync(server, Unique("reader"), Allow(["secretsmanager:GetSecretValue"], secretArn)),
            CreateUserAsync(server, Unique("intruder"), null));
        var (reader, intruder) = (users[0], users[1]);
        var readerCli = new AwsCli(server.Endpoint, reader.AccessKeyId, reader.SecretAccessKey);
        var intruderCli = new AwsCli(server.Endpoint, intruder.AccessKeyId, intruder.SecretAccessKey);

        var calls = await Task.WhenAll(
            readerCli.SecretsManager("get-secret-value", "--secret-id", name),
            intruderCli.SecretsManager("get-secret-value", "--secret-id", name),
            intruderCli.SecretsManager("put-secret-value", "--secret-id", name, "--secret-string", refusedValue),
            root.SecretsManager("get-secret-value", "--secret-id", name + "-missing"));
        var readVersion = calls[0].Ok().Json.Str("VersionId");
        AssertAwsError(calls[1], "AccessDeniedException", "GetSecretValue", firstValue);
        AssertAwsError(calls[2], "AccessDeniedException", "PutSecretValue", refusedValue);
        AssertAwsError(calls[3], "ResourceNotFoundException", "GetSecretValue");
        (await root.SecretsManager("put-secret-value", "--secret-id", name, "--secret-string", secondValue)).Ok();

        Assert.Equal(0, await server.StopAsync());

        var logPath = Path.Combine(dataDir, "audit", "audit.log");
        var lines = await File.ReadAllLinesAsync(logPath);
        var records = Records(lines);

        var denied = Assert.Single(records, r => Member(r, "operation") == "GetSecretValue" && Member(r, "outcome") == "Denied");
        Assert.Equal(intruder.Arn, Member(denied, "principalArn"));
        Assert.Equal(intruder.AccessKeyId, Member(denied, "accessKeyId"));
        Assert.Equal("AccessDeniedException", Member(denied, "errorCode"));
        Assert.Equal("127.0.0.1", Member(denied, "sourceIp"));
        Assert.StartsWith("aws-cli/2.", Member(denied, "userAgent"), StringComparison.Ordinal);
        Assert.Contains(name, Member(denied, "secretArn"), StringComparison.Ordinal);
        var deniedPut = Assert.Single(records, r => Member(r, "operation") == "PutSecretValue" && Member(r, "outcome") == "Denied");
        Assert.Equal(intruder.Arn, Member(deniedPut, "principalArn"));

        var read = Assert.Single(records, r => Member(r, "operation") == "GetSecretValue" && Member(r, "outcome") == "Success");
        Assert.Equal(reader.Arn, Member(read, "principalArn"));
        Assert.Equal(reader.AccessKeyId, Member(read, "accessKeyId"));
        Assert.Equal(secretArn, Member(read, "secretArn"));
        Assert.Equal(readVersion, Member(read, "versionId"));

        var missing = Assert.Single(records, r => Member(r, "operation") == "GetSecretValue" && Member(r, "outcome") == "Failed");
        Assert.Equal("ResourceNotFoundException", Member(missing, "errorCode"));
        Assert.Contains(records, r => Member(r, "operation") == "CreateAccessKey" && Member(r, "outcome") == "Success"
            && (Member(r, "detail") ?? "").Contains(intruder.AccessKeyId, StringComparison.Ordinal));
        Assert.Contains(records, r => Member(r, "operation") == "PutSecretValue" && Member(r, "outcome") == "Success"
            && Member(r, "principalArn") == $"arn:aws:iam::{Account}:root");

        string[] secrets = [firstValue, refusedValue, secondValue, server.SecretAccessKey, reader.SecretAccessKey, intruder.SecretAccessKey];
        foreach (var (line, number) in lines.Select((l, i) => (l, i + 1)))
        {
            foreach (var secret in secrets)
            {
                Assert.False(line.Contains(secret, StringComparison.Ordinal), $"line {number} of the audit log holds a secret: {line}");
            }
        }

        var intact = await VerifyAsync(dataDir);
        Assert.True(intact.ExitCode == 0, intact.ToString());
        Assert.Equal($"Audit log intact: {lines.Length} records, head seq {lines.Length}.", intact.Stdout.Trim());

        // Someone turns the denial into a success.
        var index = Array.FindIndex(lines, l => l.Contains("\"outcome\":\"Denied\"", StringComparison.Ordinal) && l.Contains(intruder.AccessKeyId, StringComparison.Ordinal));
        lines[index] = lines[index].Replace("\"outcome\":\"Denied\"", "\"outcome\":\"Success\"", StringComparison.Ordinal);
        await File.WriteAllTextAsync(logPath, string.Join('\n', lines) + "\n");

        var edited = await VerifyAsync(dataDir);
        Assert.True(edited.ExitCode == 1, edited.ToString());
        var seq = records[index].GetProperty("seq").GetInt64();
        Assert.Contains($"line {index + 1}, seq {seq}: altered", AssertOneLineError(edited), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_with_audit_none_writes_no_audit_directory()
    {
        using var temp = new TempDirectory();
        var dataDir = Path.Combine(temp.Path, "data");
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { DataDir = dataDir, ExtraArgs = ["--audit", "none"] });
        var root = AwsCli.For(server);
        var name = Unique("unaudited");
        (await root.SecretsManager("create-secret", "--name", name, "--secret-string", "x")).Ok();
        AssertAwsError(await new AwsCli(server.Endpoint, TumblerServer.NewAccessKeyId(), TumblerServer.NewSecretAccessKey())
            .SecretsManager("get-secret-value", "--secret-id", name), "UnrecognizedClientException", "GetSecretValue");
        Assert.Equal(0, await server.StopAsync());

        Assert.False(Directory.Exists(Path.Combine(dataDir, "audit")), string.Join(", ", Directory.GetFileSystemEntries(dataDir)));
        var verify = await VerifyAsync(dataDir);
        Assert.Equal(2, verify.ExitCode);
    }
}
