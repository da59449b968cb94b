using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tumbler.Core.Audit;
using Tumbler.Server.Audit;

namespace Tumbler.Server.Tests.Audit;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FileAuditLogTests
{
    [Fact]
    public async Task A_record_is_one_line_with_exactly_its_given_fields_seq_prev_and_hash()
    {
        using var data = new AuditDataDir();
        await using (var log = FileAuditLog.Open(data.Path))
        {
            await log.AppendAsync(new AuditRecord
            {
                Time = new DateTimeOffset(2025, 1, 2, 3, 4, 5, 678, TimeSpan.FromHours(2)),
                RequestId = "r-1",
                Operation = "GetSecretValue",
                Outcome = AuditOutcome.Denied,
                ErrorCode = "AccessDeniedException",
                SecretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AbCdEf",
                UserAgent = "ua \"quoted\"\nnewline <b>",
            }, CancellationToken.None);
            await log.AppendAsync(AuditDataDir.Record(2) with { VersionId = "v", RotationStep = "createSecret", Detail = "d", ErrorCode = "E" }, CancellationToken.None);
        }

        var text = await File.ReadAllTextAsync(data.LogPath);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        var lines = data.Lines();
        Assert.Equal(2, lines.Count);

        using var first = JsonDocument.Parse(lines[0]);
        Assert.Equal(
            ["seq", "prev", "time", "requestId", "operation", "outcome", "errorCode", "userAgent", "secretArn", "hash"],
            first.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(1, first.RootElement.GetProperty("seq").GetInt64());
        Assert.Equal(new string('0', 64), first.RootElement.GetProperty("prev").GetString());
        Assert.Equal("2025-01-02T01:04:05.6780000Z", first.RootElement.GetProperty("time").GetString());
        Assert.Equal("ua \"quoted\"\nnewline <b>", first.RootElement.GetProperty("userAgent").GetString());

        // The hash covers the line without its hash member.
        var hash = first.RootElement.GetProperty("hash").GetString()!;
        var canonical = lines[0][..lines[0].IndexOf(",\"hash\":", StringComparison.Ordinal)] + "}";
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical))), hash);

        // Every field of the record, and nothing else: the record type has no room for a secret value.
        using var second = JsonDocument.Parse(lines[1]);
        Assert.Equal(
            ["seq", "prev", "time", "requestId", "operation", "outcome", "errorCode", "principalArn", "accessKeyId", "sourceIp",
             "userAgent", "region", "secretArn", "versionId", "versionStage", "rotationStep", "detail", "hash"],
            second.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(hash, second.RootElement.GetProperty("prev").GetString());
        Assert.Equal(2, second.RootElement.GetProperty("seq").GetInt64());
        var recordProperties = typeof(AuditRecord).GetProperties().Select(p => p.Name).Where(n => n != "EqualityContract");
        Assert.Equal(15, recordProperties.Count());
    }

    [Fact]
    public async Task The_chain_continues_across_a_reopen()
    {
        using var data = new AuditDataDir();
        await data.WriteAsync(3);
        await using (var log = FileAuditLog.Open(data.Path))
        {
            Assert.Equal(3, log.LastSeq);
            Assert.Null(log.StartupNote);
            await log.AppendAsync(AuditDataDir.Record(4), CancellationToken.None);
            await log.AppendAsync(AuditDataDir.Record(5), CancellationToken.None);
        }
        var lines = data.Lines().Select(AuditDataDir.Parse).ToList();
        Assert.Equal([1L, 2, 3, 4, 5], lines.Select(l => l.Seq));
        Assert.Equal(lines[2].Hash, lines[3].Prev);
        var result = AuditVerifier.Verify(data.Path);
        Assert.True(result.Intact, result.Message);
        Assert.Equal(5, result.RecordsChecked);
        Assert.Equal("Audit log intact: 5 records, head seq 5.", result.Message);
    }

    [Fact]
    public async Task Concurrent_appends_from_many_tasks_make_one_valid_chain_without_losing_a_record()
    {
        using var data = new AuditDataDir();
        const int Tasks = 32, PerTask = 100;
        await using (var log = FileAuditLog.Open(data.Path))
        {
            await Task.WhenAll(Enumerable.Range(0, Tasks).Select(t => Task.Run(async () =>
            {
                for (var i = 0; i < PerTask; i++)
                {
                    await log.AppendAsync(AuditDataDir.Record(t * PerTask + i), CancellationToken.None);
                }
            })));
            Assert.Equal(Tasks * PerTask, log.LastSeq);
            Assert.True(log.IsHealthy);
        }
        var result = AuditVerifier.Verify(data.Path);
        Assert.True(result.Intact, result.Message);
        Assert.Equal(Tasks * PerTask, result.RecordsChecked);
        var ids = data.Lines().Select(l => AuditDataDir.Parse(l).Fields.RequestId).ToList();
        Assert.Equal(Enumerable.Range(0, Tasks * PerTask).Select(i => $"req-{i}").Order(StringComparer.Ordinal), ids.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task The_directory_is_private_to_the_owner_and_verify_works_while_the_log_is_open()
    {
        using var data = new AuditDataDir();
        await using var log = FileAuditLog.Open(data.Path);
        await log.AppendAsync(AuditDataDir.Record(1), CancellationToken.None);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(data.AuditDir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(data.LogPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(data.HeadPath));
        Assert.Equal(AuditFormat.HeadLength, new FileInfo(data.HeadPath).Length);

        var live = AuditVerifier.Verify(data.Path);
        Assert.True(live.Intact, live.Message);
        Assert.Equal(1, live.RecordsChecked);
    }

    [Fact]
    public async Task Append_fails_closed_when_the_audit_directory_is_replaced_by_a_file()
    {
        // Tests run as root, so permissions would not stop the writes: take the directory away instead.
        using var data = new AuditDataDir();
        await using var log = FileAuditLog.Open(data.Path);
        await log.AppendAsync(AuditDataDir.Record(1), CancellationToken.None);
        Assert.True(log.IsHealthy);

        Directory.Delete(data.AuditDir, recursive: true);
        await File.WriteAllTextAsync(data.AuditDir, "not a directory");

        var e = await Assert.ThrowsAsync<AuditUnavailableException>(() => log.AppendAsync(AuditDataDir.Record(2), CancellationToken.None).AsTask());
        Assert.Contains("audit", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.False(log.IsHealthy);
        await Assert.ThrowsAsync<AuditUnavailableException>(() => log.AppendAsync(AuditDataDir.Record(3), CancellationToken.None).AsTask());
        Assert.False(log.IsHealthy);

        // And a server cannot start on it either.
        Assert.Throws<AuditUnavailableException>(() => FileAuditLog.Open(data.Path));
    }

    [Fact]
    public async Task Append_after_dispose_fails_closed()
    {
        using var data = new AuditDataDir();
        var log = FileAuditLog.Open(data.Path);
        await log.DisposeAsync();
        await Assert.ThrowsAsync<AuditUnavailableException>(() => log.AppendAsync(AuditDataDir.Record(1), CancellationToken.None).AsTask());
    }

    [Theory]
    [InlineData(1)] // kill -9 between the log's write and the head's
    [InlineData(4)] // a power cut or a disk fault between the log's fsync and the head's
    public async Task A_head_behind_the_log_after_a_crash_is_moved_on_at_open_and_said(int behind)
    {
        using var data = new AuditDataDir();
        await data.WriteWithHeadLeftBehindAsync(kept: 2, after: behind);
        var last = 2 + behind;

        var verified = AuditVerifier.Verify(data.Path);
        Assert.True(verified.Intact, verified.Message);
        Assert.Contains(behind == 1 ? $"record seq {last} follows the head" : $"the {behind} records seq 3 to {last} follow the head", verified.Message, StringComparison.Ordinal);

        await using (var log = FileAuditLog.Open(data.Path))
        {
            Assert.Equal(last, log.LastSeq);
            Assert.Contains($"the head named seq 2 but the log holds records up to seq {last}", log.StartupNote, StringComparison.Ordinal);
            await log.AppendAsync(AuditDataDir.Record(last + 1), CancellationToken.None);
        }
        var result = AuditVerifier.Verify(data.Path);
        Assert.True(result.Intact, result.Message);
        Assert.Equal($"Audit log intact: {last + 1} records, head seq {last + 1}.", result.Message);
    }

    [Fact]
    public async Task A_crash_before_the_first_head_write_leaves_an_empty_head_that_open_accepts()
    {
        using var data = new AuditDataDir();
        await data.WriteAsync(6);
        await File.WriteAllBytesAsync(data.HeadPath, []); // the head is created empty with the log, and fsynced after it

        var result = AuditVerifier.Verify(data.Path);
        Assert.True(result.Intact, result.Message);
        Assert.Contains("the 6 records seq 1 to 6 follow the head", result.Message, StringComparison.Ordinal);
        await using (var log = FileAuditLog.Open(data.Path))
        {
            Assert.Equal(6, log.LastSeq);
            Assert.NotNull(log.StartupNote);
        }
        Assert.Equal("Audit log intact: 6 records, head seq 6.", AuditVerifier.Verify(data.Path).Message);

        // Without a head file at all it is not a crash state.
        File.Delete(data.HeadPath);
        Assert.Equal(AuditProblem.HeadMissing, AuditVerifier.Verify(data.Path).Problem);
        Assert.Throws<AuditUnavailableException>(() => FileAuditLog.Open(data.Path));
        Assert.False(File.Exists(data.HeadPath), "a refused open must not create the head");
        Assert.Throws<AuditUnavailableException>(() => FileAuditLog.Open(data.Path));
    }

    [Theory]
    [InlineData(false)] // a head rolled back to an older copy
    [InlineData(true)] // an emptied head
    public async Task Records_after_the_head_spanning_more_than_a_crash_leaves_are_refused(bool emptied)
    {
        // What an emptied or rolled-back head with records removed from the end looks like on a log written over time.
        using var data = new AuditDataDir();
        await data.WriteAsync(2);
        var headAfterTwo = await File.ReadAllBytesAsync(data.HeadPath);
        await using (var log = FileAuditLog.Open(data.Path))
        {
            for (var i = 3; i <= 5; i++)
            {
                await log.AppendAsync(AuditDataDir.Record(i) with { Time = AuditDataDir.Record(i).Time.AddSeconds(10 * i) }, CancellationToken.None);
            }
        }
        await File.WriteAllBytesAsync(data.HeadPath, emptied ? [] : headAfterTwo);

        var e = Assert.Throws<AuditUnavailableException>(() => FileAuditLog.Open(data.Path));
        Assert.Contains($"records seq {(emptied ? 1 : 3)} to 5 follow the head (seq {(emptied ? 0 : 2)}) and span more than 10 s", e.Message, StringComparison.Ordinal);
        var verified = AuditVerifier.Verify(data.Path);
        Assert.Equal(AuditProblem.HeadMismatch, verified.Problem);
        Assert.Contains("over more than 10 s", verified.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("edited", "record seq 4, after the head (seq 2), does not follow a valid record seq 3")]
    [InlineData("rechained", "record seq 3, the first after the head (seq 2), does not follow the head's record")]
    [InlineData("gap", "record seq 5, after the head (seq 2), does not follow a valid record seq 4")]
    public async Task Open_refuses_records_after_the_head_that_do_not_chain_to_it(string damage, string expected)
    {
        using var data = new AuditDataDir();
        await data.WriteWithHeadLeftBehindAsync(kept: 2, after: 3);
        var lines = data.Lines();
        switch (damage)
        {
            case "edited": // seq 3 edited: its hash no longer matches
                lines[2] = lines[2].Replace("req-3", "req-9", StringComparison.Ordinal);
                break;
            case "rechained": // seq 3 to 5 forged on another seq 2: well hashed, but not from the head's record
                lines[2] = AuditDataDir.Forge(3, new string('a', 64), AuditDataDir.Record(3));
                lines[3] = AuditDataDir.Forge(4, AuditDataDir.Parse(lines[2]).Hash, AuditDataDir.Record(4));
                lines[4] = AuditDataDir.Forge(5, AuditDataDir.Parse(lines[3]).Hash, AuditDataDir.Record(5));
                break;
            case "gap": // seq 4 removed
                lines.RemoveAt(3);
                break;
        }
        data.WriteLines(lines);
        var e = Assert.Throws<AuditUnavailableException>(() => FileAuditLog.Open(data.Path));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.False(AuditVerifier.Verify(data.Path).Intact);
    }

    [Theory]
    [InlineData("delete-last", "removed from the end")]
    [InlineData("delete-head", "head file is missing")]
    [InlineData("delete-log", "log is empty")]
    [InlineData("edit-last", "altered")]
    [InlineData("torn-last", "incomplete")]
    public async Task Open_refuses_a_log_that_disagrees_with_its_head(string damage, string expected)
    {
        using var data = new AuditDataDir();
        await data.WriteAsync(3);
        var lines = data.Lines();
        switch (damage)
        {
            case "delete-last": data.WriteLines(lines.Take(2)); break;
            case "delete-head": File.Delete(data.HeadPath); break;
            case "delete-log": File.Delete(data.LogPath); break;
            case "edit-last": data.WriteLines(lines.Take(2).Append(lines[2].Replace("req-3", "req-9", StringComparison.Ordinal))); break;
            case "torn-last": await File.WriteAllTextAsync(data.LogPath, string.Concat(lines.Take(2).Select(l => l + "\n")) + lines[2][..40]); break;
        }
        var e = Assert.Throws<AuditUnavailableException>(() => FileAuditLog.Open(data.Path));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains("tumbler audit verify", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_audit_log_accepts_everything_and_is_healthy()
    {
        await NoAuditLog.Instance.AppendAsync(AuditDataDir.Record(1), CancellationToken.None);
        Assert.True(NoAuditLog.Instance.IsHealthy);
    }
}
