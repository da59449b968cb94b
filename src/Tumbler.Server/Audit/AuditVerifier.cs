using Tumbler.Core.Audit;

namespace Tumbler.Server.Audit;

/// <summary>What <see cref="AuditVerifier"/> found. <see cref="Message"/> names the first bad record (line and seq) and what is wrong.</summary>
public sealed record AuditVerification(bool Intact, long RecordsChecked, string Message)
{
    public AuditProblem Problem { get; init; }
    /// <summary>Line number (1-based) of the first bad record, when one line is to blame.</summary>
    public long? Line { get; init; }
    /// <summary>Seq of the first bad record, when known.</summary>
    public long? Seq { get; init; }
    /// <summary>Seq named by the head file, when there is one.</summary>
    public long? HeadSeq { get; init; }
}

public enum AuditProblem
{
    None,
    /// <summary>Neither a log nor a head exists.</summary>
    NoLog,
    /// <summary>A line that is not a record of this format (garbled or inserted by hand).</summary>
    Malformed,
    /// <summary>A record whose content no longer matches its hash, or whose hash no longer matches the next record's prev.</summary>
    Altered,
    /// <summary>Records missing in the middle (a seq gap).</summary>
    Missing,
    /// <summary>A record that does not belong to the chain (a duplicate or forged seq).</summary>
    Inserted,
    /// <summary>Records out of seq order.</summary>
    Reordered,
    /// <summary>The end of the log is gone: an incomplete last line, or fewer records than the head names.</summary>
    Truncated,
    /// <summary>The head names a hash the log does not have there, or records follow the head over more time than a crash explains.</summary>
    HeadMismatch,
    /// <summary>Records exist but the head file does not.</summary>
    HeadMissing,
}

/// <summary>
/// Checks an audit log (<see cref="AuditFormat"/>) from start to end without loading it: every line's
/// hash, the seq order, every prev against the previous hash, and the end against the head. The head
/// may be behind the log (a crash between the log's write or fsync and the head's, see
/// <see cref="FileAuditLog"/>, or a server appending while this runs); the log is then intact and the message
/// names the records after the head, which the head does not prove.
/// <para>
/// What it proves: nobody changed, removed, inserted or reordered records without also rewriting every
/// later record and the head. The hashes are not keyed: someone who can write the files can rebuild a
/// consistent chain, so copy the head (or the log) somewhere they cannot write to prove more than that.
/// </para>
/// </summary>
public static class AuditVerifier
{
    public static AuditVerification Verify(string dataDirectory)
    {
        var logPath = AuditFormat.LogPath(dataDirectory);
        var headPath = AuditFormat.HeadPath(dataDirectory);
        var logExists = File.Exists(logPath);
        var headExists = File.Exists(headPath);
        if (!logExists && !headExists)
        {
            return new AuditVerification(false, 0, $"No audit log in {Path.GetDirectoryName(Path.GetFullPath(logPath))}.") { Problem = AuditProblem.NoLog };
        }

        AuditHead? head;
        try
        {
            head = AuditFormat.ReadHead(headPath);
        }
        catch (FormatException e)
        {
            return new AuditVerification(false, 0, $"The head file {headPath} is malformed ({e.Message}).") { Problem = AuditProblem.HeadMismatch };
        }

        if (!logExists)
        {
            return head is null
                ? new AuditVerification(true, 0, "Audit log intact: 0 records.")
                : new AuditVerification(false, 0, $"The log {logPath} is missing but the head names seq {head.Seq}: the log was deleted.")
                    { Problem = AuditProblem.Truncated, HeadSeq = head.Seq };
        }

        using var reader = new LineReader(logPath);
        var end = new ScanEnd();
        var result = Scan(reader, head, end);
        if (result is not null)
        {
            return result with { HeadSeq = head?.Seq };
        }
        return CheckHead(headPath, headExists, head, end);
    }

    /// <summary>What the scan saw of the log's end and of the head's place in it.</summary>
    private sealed class ScanEnd
    {
        public long LastSeq;
        public long LastLine;
        public string? LastTime;
        public string? HashAtHead;
        public string? TimeAfterHead;
    }

    private static AuditVerification? Scan(LineReader reader, AuditHead? head, ScanEnd end)
    {
        long expected = 1, line = 0;
        string prevHash = AuditFormat.ZeroHash, prevPrev = "";
        while (reader.TryReadLine(out var bytes, out var complete, out var tooLong))
        {
            line++;
            if (!complete)
            {
                return Bad(AuditProblem.Truncated, line, null, expected - 1,
                    $"line {line}: the last line is incomplete: the file was truncated (or a write was torn) after seq {expected - 1}.");
            }
            var error = "too long";
            var parsed = tooLong ? null : AuditFormat.Parse(bytes.Span, out error);
            if (parsed is null)
            {
                return Bad(AuditProblem.Malformed, line, null, expected - 1,
                    $"line {line}: not a valid audit record ({error}): a line was inserted or corrupted after seq {expected - 1}.");
            }
            var seq = parsed.Seq;
            if (!parsed.HashMatches)
            {
                return Bad(AuditProblem.Altered, line, seq, expected - 1,
                    $"line {line}, seq {seq}: altered: the record does not match its hash.");
            }
            if (seq > expected)
            {
                // Gone, or further down? Look ahead (streaming) for the seqs skipped here.
                var start = line;
                var found = FindSeqInRange(reader, expected, seq - 1, ref line);
                return found is long laterLine
                    ? Bad(AuditProblem.Reordered, start, seq, expected - 1,
                        $"line {start}, seq {seq}: reordered: expected seq {expected} here, which comes later, at line {laterLine}.")
                    : Bad(AuditProblem.Missing, start, seq, expected - 1,
                        $"line {start}, seq {seq}: missing: {(seq - expected == 1 ? $"record seq {expected} was" : $"records seq {expected} to {seq - 1} were")} removed before this line.");
            }
            if (seq < expected)
            {
                if (seq == expected - 1 && parsed.Prev == prevPrev)
                {
                    // Two lines claim the same seq and predecessor: the one the next record links to is genuine.
                    var thisHash = parsed.Hash;
                    var previousHash = prevHash;
                    var next = reader.TryReadLine(out var nextBytes, out var nextComplete, out var nextTooLong) && nextComplete && !nextTooLong
                        ? AuditFormat.Parse(nextBytes.Span, out _) : null;
                    var previousInserted = next is not null && next.Prev == thisHash && next.Prev != previousHash;
                    var culprit = previousInserted ? line - 1 : line;
                    return Bad(AuditProblem.Inserted, culprit, seq, expected - 2,
                        $"line {culprit}, seq {seq}: inserted: lines {line - 1} and {line} both claim seq {seq}; line {culprit} is not part of the chain.");
                }
                return Bad(AuditProblem.Inserted, line, seq, expected - 1,
                    $"line {line}, seq {seq}: inserted: seq {seq} already appeared before this line (expected seq {expected}).");
            }
            if (parsed.Prev != prevHash)
            {
                return Bad(AuditProblem.Altered, line - 1, seq - 1, expected - 2,
                    $"line {line - 1}, seq {seq - 1}: altered or replaced: its hash is not the prev recorded by the next record (line {line}, seq {seq}).");
            }
            if (head is not null && seq == head.Seq)
            {
                end.HashAtHead = parsed.Hash;
            }
            if (seq == (head?.Seq ?? 0) + 1)
            {
                end.TimeAfterHead = parsed.Fields.Time;
            }
            prevPrev = parsed.Prev;
            prevHash = parsed.Hash;
            end.LastSeq = seq;
            end.LastLine = line;
            end.LastTime = parsed.Fields.Time;
            expected++;
        }
        return null;
    }

    private static long? FindSeqInRange(LineReader reader, long from, long to, ref long line)
    {
        while (reader.TryReadLine(out var bytes, out var complete, out var tooLong))
        {
            line++;
            if (complete && !tooLong && AuditFormat.Parse(bytes.Span, out _) is { } parsed && parsed.Seq >= from && parsed.Seq <= to)
            {
                return line;
            }
        }
        return null;
    }

    private static AuditVerification Bad(AuditProblem problem, long line, long? seq, long recordsChecked, string message) =>
        new(false, Math.Max(0, recordsChecked), message) { Problem = problem, Line = line, Seq = seq };

    private static AuditVerification CheckHead(string headPath, bool headExists, AuditHead? head, ScanEnd end)
    {
        var (lastSeq, lastLine, hashAtHead) = (end.LastSeq, end.LastLine, end.HashAtHead);
        if (lastSeq == 0)
        {
            return head is null
                ? new AuditVerification(true, 0, "Audit log intact: 0 records.")
                : new AuditVerification(false, 0, $"The log is empty but the head names seq {head.Seq}: the log was emptied.")
                    { Problem = AuditProblem.Truncated, HeadSeq = head.Seq, Line = 1 };
        }
        if (head is null && !headExists)
        {
            return new AuditVerification(false, lastSeq,
                $"The head file {headPath} is missing but the log holds {lastSeq} records (last: line {lastLine}, seq {lastSeq}): the end of the log cannot be proven.")
                { Problem = AuditProblem.HeadMissing, Line = lastLine, Seq = lastSeq };
        }
        // An empty head names no record yet (it is created empty with the log): the chain then starts from zeros, as Scan checked.
        var headSeq = head?.Seq ?? 0;
        if (lastSeq < headSeq)
        {
            var removed = headSeq - lastSeq == 1 ? $"record seq {headSeq} was" : $"records seq {lastSeq + 1} to {headSeq} were";
            return new AuditVerification(false, lastSeq,
                $"line {lastLine + 1}, seq {lastSeq + 1}: truncated: the log ends at seq {lastSeq} (line {lastLine}) but the head names seq {headSeq}: {removed} removed from the end.")
                { Problem = AuditProblem.Truncated, Line = lastLine + 1, Seq = lastSeq + 1, HeadSeq = headSeq };
        }
        var headLine = lastLine - (lastSeq - headSeq);
        if (head is not null && hashAtHead != head.Hash)
        {
            return new AuditVerification(false, headSeq - 1,
                $"line {headLine}, seq {headSeq}: head mismatch: the head names another hash for seq {headSeq}: the record was replaced (with the chain rebuilt after it) or the head was edited.")
                { Problem = AuditProblem.HeadMismatch, Line = headLine, Seq = headSeq, HeadSeq = headSeq };
        }
        if (lastSeq == headSeq)
        {
            return new AuditVerification(true, lastSeq, $"Audit log intact: {lastSeq} records, head seq {headSeq}.") { HeadSeq = headSeq };
        }
        var uncovered = lastSeq - headSeq == 1 ? $"record seq {lastSeq} follows" : $"the {lastSeq - headSeq} records seq {headSeq + 1} to {lastSeq} follow";
        if (!AuditFormat.WithinCrashWindow(end.TimeAfterHead, end.LastTime))
        {
            return new AuditVerification(false, headSeq,
                $"line {headLine + 1}, seq {headSeq + 1}: head mismatch: {uncovered} the head (seq {headSeq}) over more than {AuditFormat.CrashWindow.TotalSeconds:0} s, "
                + "more than a crash between the log's write and the head's leaves: the head was emptied or rolled back (records removed from the end?), "
                + "or records were appended without the server.")
                { Problem = AuditProblem.HeadMismatch, Line = headLine + 1, Seq = headSeq + 1, HeadSeq = headSeq };
        }
        return new AuditVerification(true, lastSeq,
            $"Audit log intact: {lastSeq} records, head seq {headSeq}: {uncovered} the head, chained to it, and the head does not prove them. "
            + "They were written after the head last reached the disk (a crash, power cut or disk fault; the server moves the head on at its next start), "
            + "or while this check ran, or by someone who can write the log.")
            { HeadSeq = headSeq };
    }

    /// <summary>Reads '\n'-terminated lines as bytes through one growing buffer; a last line without '\n' is reported incomplete.</summary>
    private sealed class LineReader : IDisposable
    {
        private readonly FileStream _stream;
        private byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;
        private bool _eof;

        public LineReader(string path) =>
            _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);

        public bool TryReadLine(out ReadOnlyMemory<byte> line, out bool complete, out bool tooLong)
        {
            tooLong = false;
            var searched = 0;
            while (true)
            {
                var newline = _buffer.AsSpan(_start + searched, _end - _start - searched).IndexOf((byte)'\n');
                if (newline >= 0)
                {
                    var length = searched + newline;
                    line = _buffer.AsMemory(_start, length);
                    _start += length + 1;
                    complete = true;
                    return true;
                }
                searched = _end - _start;
                if (_eof)
                {
                    complete = false;
                    line = _buffer.AsMemory(_start, _end - _start);
                    _start = _end;
                    return line.Length > 0;
                }
                if (searched > AuditFormat.MaxLineLength)
                {
                    // Skip the rest of this overlong line.
                    tooLong = true;
                    complete = true;
                    line = ReadOnlyMemory<byte>.Empty;
                    SkipToNewline();
                    return true;
                }
                Fill();
            }
        }

        private void Fill()
        {
            if (_start > 0)
            {
                _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
                _end -= _start;
                _start = 0;
            }
            if (_end == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }
            var read = _stream.Read(_buffer, _end, _buffer.Length - _end);
            if (read == 0)
            {
                _eof = true;
            }
            _end += read;
        }

        private void SkipToNewline()
        {
            while (true)
            {
                var newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
                if (newline >= 0)
                {
                    _start += newline + 1;
                    return;
                }
                _start = _end = 0;
                if (_eof)
                {
                    return;
                }
                Fill();
            }
        }

        public void Dispose() => _stream.Dispose();
    }
}
