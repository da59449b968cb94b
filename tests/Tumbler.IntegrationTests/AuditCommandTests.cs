using Tumbler.Core.Audit;
using Tumbler.IntegrationTests.Support;
using Tumbler.Server.Audit;

namespace Tumbler.IntegrationTests;

/// <summary>
/// <c>tumbler audit verify</c> as a process: exit 0 with a summary on an intact log, exit 1 naming the
/// first bad record on an edited one, exit 2 when there is no log. The log is written with FileAuditLog.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AuditCommandTests
{
    private static Task<CliResult> VerifyAsync(string dataDir) =>
        ProcessRunner.RunAsync(TumblerServer.DotnetHost, [TumblerServer.TumblerDll, "audit", "verify", "--data-dir", dataDir], ProcessRunner.BaseEnvironment(null, null));

    private static async Task WriteLogAsync(string dataDir, int count)
    {
        await using var log = FileAuditLog.Open(dataDir);
        for (var i = 1; i <= count; i++)
        {
            await log.AppendAsync(new AuditRecord
            {
                Time = DateTimeOffset.UtcNow,
                RequestId = $"req-{i}",
                Operation = "GetSecretValue",
                Outcome = AuditOutcome.Success,
                PrincipalArn = "arn:aws:iam::123456789012:root",
                SecretArn = $"arn:aws:secretsmanager:us-east-1:123456789012:secret:app/{i}-AbCdEf",
                VersionStage = "AWSCURRENT",
            }, CancellationToken.None);
        }
    }

    [Fact]
    public async Task Verify_exits_0_on_an_intact_log_and_1_naming_the_record_once_a_line_is_edited()
    {
        using var temp = new TempDirectory();
        var dataDir = Path.Combine(temp.Path, "data");
        await WriteLogAsync(dataDir, 3);

        var intact = await VerifyAsync(dataDir);
        Assert.True(intact.ExitCode == 0, intact.ToString());
        Assert.Equal("Audit log intact: 3 records, head seq 3.", intact.Stdout.Trim());

        var logPath = Path.Combine(dataDir, "audit", "audit.log");
        var text = await File.ReadAllTextAsync(logPath);
        await File.WriteAllTextAsync(logPath, text.Replace("app/2-AbCdEf", "app/X-AbCdEf", StringComparison.Ordinal));

        var edited = await VerifyAsync(dataDir);
        Assert.True(edited.ExitCode == 1, edited.ToString());
        Assert.Contains("line 2, seq 2: altered", edited.Stderr, StringComparison.Ordinal);
        Assert.Single(edited.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task Verify_without_data_dir_checks_the_directory_TUMBLER_DATA_DIR_names_as_serve_does()
    {
        using var temp = new TempDirectory();
        var dataDir = Path.Combine(temp.Path, "data");
        await WriteLogAsync(dataDir, 2);
        var environment = ProcessRunner.BaseEnvironment(null, null);
        environment["TUMBLER_DATA_DIR"] = dataDir;

        var result = await ProcessRunner.RunAsync(TumblerServer.DotnetHost, [TumblerServer.TumblerDll, "audit", "verify"], environment);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("Audit log intact: 2 records, head seq 2.", result.Stdout.Trim());
    }

    [Fact]
    public async Task Verify_exits_2_with_one_line_when_there_is_no_audit_log()
    {
        using var temp = new TempDirectory();
        var result = await VerifyAsync(temp.Path);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Equal($"tumbler: No audit log in {Path.Combine(temp.Path, "audit")}.", result.Stderr.Trim());
    }
}
