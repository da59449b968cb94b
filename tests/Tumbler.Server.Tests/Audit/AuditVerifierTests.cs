using Tumbler.Server.Audit;

namespace Tumbler.Server.Tests.Audit;

/// <summary>Each way of tampering with a 5-record log, and the record the verifier names for it.</summary>
public sealed class AuditVerifierTests
{
    private static async Task<AuditDataDir> FiveRecordsAsync()
    {
        var data = new AuditDataDir();
        await data.WriteAsync(5);
        return data;
    }

    private static void AssertBad(AuditVerification result, AuditProblem problem, long? line, long? seq, params string[] words)
    {
        Assert.False(result.Intact, result.Message);
        Assert.True(problem == result.Problem, $"expected {problem}, got {result.Problem}: {result.Message}");
        Assert.True(line == result.Line, $"expected line {line}, got {result.Line}: {result.Message}");
        Assert.True(seq == result.Seq, $"expected seq {seq}, got {result.Seq}: {result.Message}");
        foreach (var word in words)
        {
            Assert.Contains(word, result.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_intact_log_passes()
    {
        using var data = await FiveRecordsAsync();
        var result = AuditVerifier.Verify(data.Path);
        Assert.True(result.Intact, result.Message);
        Assert.Equal(5, result.RecordsChecked);
        Assert.Equal(5, result.HeadSeq);
        Assert.Equal("Audit log intact: 5 records, head seq 5.", result.Message);
    }

    [Fact]
    public void No_log_is_its_own_answer()
    {
        using var data = new AuditDataDir();
        var result = AuditVerifier.Verify(data.Path);
        Assert.False(result.Intact);
        Assert.Equal(AuditProblem.NoLog, result.Problem);
        Assert.StartsWith("No audit log in ", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_edited_field_is_named()
    {
        using var data = await FiveRecordsAsync();
        var lines = data.Lines();
        lines[2] = lines[2].Replace("\"outcome\":\"Success\"", "\"outcome\":\"Denied\"", StringComparison.Ordinal);
        data.WriteLines(lines);
        var result = AuditVerifier.Verify(data.Path);
        AssertBad(result, AuditProblem.Altered, 3, 3, "line 3, seq 3: altered");
        Assert.Equal(2, result.RecordsChecked);
    }

    [Fact]
    public async Task An_edited_record_with_a_recomputed_hash_is_named_by_the_next_records_prev()
    {
        using var data = await FiveRecordsAsync();
        var lines = data.Lines();
        var original = AuditDataDir.Parse(lines[2]);
        lines[2] = AuditDataDir.Forge(3, original.Prev, AuditDataDir.Record(3) with { PrincipalArn = "arn:aws:iam::123456789012:user/someone-else" });
        data.WriteLines(lines);
        AssertBad(AuditVerifier.Verify(data.Path), AuditProblem.Altered, 3, 3, "line 3, seq 3: altered or replaced");
    }

    [Fact]
    public async Task A_deleted_middle_record_is_named()
    {
        using var data = await FiveRecordsAsync();
        var lines = data.Lines();
        lines.RemoveAt(2);
        data.WriteLines(lines);
        AssertBad(AuditVerifier.Verify(data.Path), AuditProblem.Missing, 3, 4, "line 3, seq 4: missing: record seq 3 was removed");
    }

    [Fact]
    public async Task A_copied_record_inserted_in_the_middle_is_named()
    {
        using var data = await FiveRecordsAsync();
        var lines = data.Lines();
        lines.Insert(3, lines[0]);
        data.WriteLines(lines);
        AssertBad(AuditVerifier.Verify(data.Path), AuditProblem.Inserted, 4, 1, "line 4, seq 1: inserted");
    }

    [Fact]
    public async Task A_forged_well_hashed_record_inserted_in_the_middle_is_named()
    {
        using var data = await FiveRecordsAsync();
        var lines = data.Lines();
        var second = AuditDataDir.Parse(lines[1]);
        lines.Insert(2, AuditDataDir.Forge(3, second.Hash, AuditDataDir.Record(99)));
        data.WriteLines(lines);
        AssertBad(AuditVerifier.Verify(data.Path), AuditProblem.Inserted, 3, 3, "line 3, seq 3: inserted", "lines 3 and 4 both claim seq 3");
    }

    [Fact]
    public async Task A_hand_written_line_is_named()
    {
        using var data = await FiveRecordsAsync();
        var lines = data.Lines();
        lines.Insert(1, "{\"seq\":2,\"note\":\"hello\"}");
        data.WriteLines(lines);
        AssertBad(AuditVerifier.Verify(data.Path), AuditProblem.Malformed, 2, null, "line 2: not a valid audit record");
    }

    [Fact]
    public async Task Swapped_records_are_named()
    {
        using var data = await FiveRecordsAsync();
        var lines = data.Lines();
        (lines[1], lines[2]) = (lines[2], lines[1]);
        data.WriteLines(lines);
        AssertBad(AuditVerifier.Verify(data.Path), AuditProblem.Reordered, 2, 3, "line 2, seq 3: reordered", "at line 3");
    }

    [Fact]
    public async Task A_deleted_last_record_is_found_through_the_head()
    {
        using var data = await FiveRecordsAsync();
        data.WriteLines(data.Lines().Take(4));
        var result = AuditVerifier.Verify(data.Path);
        AssertBad(result, AuditProblem.Truncated, 5, 5, "record seq 5 was removed from the end");
        Assert.Equal(4, result.RecordsChecked);
    }

    [Fact]
    public async Task A_file_truncated_inside_a_record_is_named()
    {
        using var data = await FiveRecordsAsync();
        var length = new FileInfo(data.LogPath).Length;
        using (var stream = new FileStream(data.LogPath, FileMode.Open))
        {
            stream.SetLength(length - 30);
        }
        AssertBad(AuditVerifier.Verify(data.Path), AuditProblem.Truncated, 5, null, "line 5: the last line is incomplete", "after seq 4");
    }

    [Fact]
    public async Task A_file_truncated_between_records_is_found_through_the_head()
    {
        using var data = await FiveRecordsAsync();
        data.WriteLines(data.Lines().Take(2));
        AssertBad(AuditVerifier.Verify(data.Path), AuditProblem.Truncated, 3, 3, "records seq 3 to 5 were removed from the end");
    }

    [Fact]
    public async Task A_deleted_log_with_its_head_left_is_found()
    {
        using var data = await FiveRecordsAsync();
        File.Delete(data.LogPath);
        var result = AuditVerifier.Verify(data.Path);
        Assert.False(result.Intact);
        Assert.Equal(AuditProblem.Truncated, result.Problem);
        Assert.Contains("missing but the head names seq 5", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_head_is_found()
    {
        using var data = await FiveRecordsAsync();
        File.Delete(data.HeadPath);
        AssertBad(AuditVerifier.Verify(data.Path), AuditProblem.HeadMissing, 5, 5, "head file", "missing");
    }

    [Fact]
    public async Task A_replaced_last_record_is_found_through_the_head()
    {
        using var data = await FiveRecordsAsync();
        var lines = data.Lines();
        lines[4] = AuditDataDir.Forge(5, AuditDataDir.Parse(lines[4]).Prev, AuditDataDir.Record(55));
        data.WriteLines(lines);
        AssertBad(AuditVerifier.Verify(data.Path), AuditProblem.HeadMismatch, 5, 5, "line 5, seq 5: head mismatch");
    }

    [Fact]
    public async Task Records_after_the_head_chain_to_it_but_are_named_as_not_proven_by_it()
    {
        // What a crash leaves (the head fsynced after the log) and what someone who can write the log could append look
        // the same; the verdict is "intact" and the message says which records the head does not cover.
        using var data = await FiveRecordsAsync();
        var lines = data.Lines();
        var six = AuditDataDir.Forge(6, AuditDataDir.Parse(lines[4]).Hash, AuditDataDir.Record(6));
        var seven = AuditDataDir.Forge(7, AuditDataDir.Parse(six).Hash, AuditDataDir.Record(7));
        data.WriteLines(lines.Append(six).Append(seven));
        var result = AuditVerifier.Verify(data.Path);
        Assert.True(result.Intact, result.Message);
        Assert.Equal(5, result.HeadSeq);
        Assert.Contains("head seq 5: the 2 records seq 6 to 7 follow the head, chained to it, and the head does not prove them", result.Message, StringComparison.Ordinal);
    }
}
