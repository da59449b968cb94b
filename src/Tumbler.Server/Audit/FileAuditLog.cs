using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Tumbler.Core.Audit;

namespace Tumbler.Server.Audit;

/// <summary>
/// The hash-chained audit log in DATA_DIR/audit/ (format: <see cref="AuditFormat"/>; directory 0700, files 0600).
/// <para>
/// Appends are written in batches by one writer at a time: the records queued while the previous batch was being
/// written go out together, as whole lines in one positioned write, so a record handed to the OS survives the
/// process being killed (kill -9), and an append returns only once its record is there; then the head is rewritten in
/// place (85 bytes at offset 0; the head file is created empty when the log is). Both files are fsynced on a timer (every second by default) and at
/// dispose, so a power cut can lose at most about that last second.
/// </para>
/// <para>
/// Crash between the two writes: the log is written first and the head second, and the log is fsynced before the
/// head, so a crash leaves the head behind the log: one record after <c>kill -9</c>, up to about the last second's
/// records after a power cut or a disk fault between the two fsyncs (or a head still empty, as created). The records
/// after the head then still form a chain from the head's hash, written within <see cref="AuditFormat.CrashWindow"/>.
/// This is the one disagreement accepted: <see cref="Open"/> checks that chain (only from the head on; the verifier
/// checks all of it), moves the head forward and says so in <see cref="StartupNote"/>, and
/// <see cref="AuditVerifier"/> reports the log intact, naming the records the head does not cover. Writing the head
/// first instead would leave a head ahead of the log after a crash, which looks exactly like removed records, so
/// tampering could hide behind "it was a crash". Any other disagreement makes <see cref="Open"/> throw: the server
/// does not start on a log that may have been tampered with.
/// </para>
/// <para>
/// Failures: a failed write sets <see cref="IsHealthy"/> false and throws <see cref="AuditUnavailableException"/>;
/// a partial line is cut off before the next attempt, and a head that could not be written is written
/// before the next record, so the next successful append leaves a consistent chain. After every append
/// the log's path is checked to still hold this file (same length): if the file or the directory was
/// removed or replaced while the server runs, records would go nowhere, so the log stops for good
/// (until restart) and every append throws.
/// </para>
/// </summary>
public sealed class FileAuditLog : IAuditLog, IAsyncDisposable
{
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _logPath;
    private readonly FileStream _logStream;
    private readonly FileStream _headStream;
    private readonly SafeFileHandle _log;
    private readonly SafeFileHandle _head;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _queueLock = new();
    private List<PendingAppend> _queue = [];
    private List<PendingAppend> _spare = [];
    private bool _draining;
    private readonly ArrayBufferWriter<byte> _lines = new(4096);
    private readonly ArrayBufferWriter<byte> _json = new(1024);
    private readonly Utf8JsonWriter _writer;
    private readonly byte[] _prevHex = new byte[AuditFormat.HashHexLength];
    private readonly byte[] _headBytes = new byte[AuditFormat.HeadLength];
    private readonly Timer _flushTimer;
    private byte[] _line = new byte[1024];
    private long _length;
    private long _seq;
    private bool _lineMayBeTorn;
    private bool _headBehind;
    private string? _stopped;
    private volatile bool _healthy = true;
    private int _unflushed;
    private bool _disposed;

    private FileAuditLog(string directory, FileStream log, FileStream head, long length, long seq, string prevHex, TimeSpan flushInterval)
    {
        Directory = directory;
        _logPath = Path.Combine(directory, AuditFormat.LogFileName);
        _logStream = log;
        _headStream = head;
        _log = log.SafeFileHandle;
        _head = head.SafeFileHandle;
        _length = length;
        _seq = seq;
        Encoding.ASCII.GetBytes(prevHex, _prevHex);
        _writer = new Utf8JsonWriter(_json, AuditFormat.WriterOptions);
        _flushTimer = new Timer(_ => FlushToDisk(), null, flushInterval, flushInterval);
    }

    /// <summary>DATA_DIR/audit.</summary>
    public string Directory { get; }

    /// <summary>Seq of the last record written (0: none yet).</summary>
    public long LastSeq => Volatile.Read(ref _seq);

    /// <summary>True when <see cref="Open"/> found neither a log nor a head and so started a new chain.</summary>
    public bool StartedNewChain { get; private init; }

    /// <summary>Something the operator should read at startup (a repaired head after a crash), or null.</summary>
    public string? StartupNote { get; private set; }

    public bool IsHealthy => _healthy;

    /// <summary>Also false when the log file is gone (its directory moved or deleted) before a write has noticed.</summary>
    public bool CheckHealth() => _healthy && _stopped is null && File.Exists(_logPath);

    /// <summary>
    /// Opens (creating if needed) the audit log of a data directory and resumes its chain: reads the last
    /// line (seeking from the end) and the head. Throws <see cref="AuditUnavailableException"/> when they
    /// disagree (beyond a head behind the log, see the class comment) or the files cannot be opened.
    /// </summary>
    public static FileAuditLog Open(string dataDirectory) => Open(dataDirectory, TimeSpan.FromSeconds(1));

    /// <inheritdoc cref="Open(string)"/>
    public static FileAuditLog Open(string dataDirectory, TimeSpan flushInterval)
    {
        var directory = Path.GetFullPath(Path.Combine(dataDirectory, AuditFormat.DirectoryName));
        FileStream? log = null, head = null;
        try
        {
            if (OperatingSystem.IsWindows())
            {
                System.IO.Directory.CreateDirectory(directory);
            }
            else
            {
                System.IO.Directory.CreateDirectory(directory, DirectoryMode);
                File.SetUnixFileMode(directory, DirectoryMode);
            }
            var headPath = Path.Combine(directory, AuditFormat.HeadFileName);
            var headExisted = File.Exists(headPath);
            var logPath = Path.Combine(directory, AuditFormat.LogFileName);
            var logExisted = File.Exists(logPath);
            if (!headExisted && logExisted && new FileInfo(logPath).Length > 0)
            {
                // Refused before anything is created: an empty head made here would read as "crash after the first record" next time.
                throw Refuse(dataDirectory, directory, "the log holds records but the head file is missing");
            }
            log = OpenFile(logPath);
            head = OpenFile(headPath);

            var headBuffer = new byte[256];
            var headRead = RandomAccess.Read(head.SafeFileHandle, headBuffer, 0);
            AuditHead? current;
            try
            {
                current = headRead == headBuffer.Length ? throw new FormatException("the head is too long") : AuditFormat.ParseHead(headBuffer.AsSpan(0, headRead));
            }
            catch (FormatException e)
            {
                throw Refuse(dataDirectory, directory, $"the head file is malformed ({e.Message})");
            }

            var length = RandomAccess.GetLength(log.SafeFileHandle);
            var seq = 0L;
            var prev = AuditFormat.ZeroHash;
            string? note = null;
            if (length == 0)
            {
                if (current is not null)
                {
                    throw Refuse(dataDirectory, directory, $"the log is empty but the head says seq {current.Seq}: the log was deleted or emptied");
                }
            }
            else
            {
                var lastLine = ReadLastLine(log.SafeFileHandle, length, out var lastStart, out var problem);
                if (lastLine is null)
                {
                    throw Refuse(dataDirectory, directory, problem!);
                }
                var last = AuditFormat.Parse(lastLine, out var error);
                if (last is null)
                {
                    throw Refuse(dataDirectory, directory, $"the last line is not a valid record: {error}");
                }
                if (!last.HashMatches)
                {
                    throw Refuse(dataDirectory, directory, $"the last record (seq {last.Seq}) does not match its hash: it was altered");
                }
                // An empty head names no record yet: it is created empty with the log (a missing one was refused above).
                var headSeq = current?.Seq ?? 0;
                if (last.Seq < headSeq)
                {
                    throw Refuse(dataDirectory, directory, $"the log ends at seq {last.Seq} but the head names seq {headSeq} (records were removed from the end)");
                }
                if (last.Seq == headSeq && last.Hash != current!.Hash)
                {
                    throw Refuse(dataDirectory, directory, $"the log ends at seq {last.Seq} but the head names another hash for it (the last record was replaced)");
                }
                if (last.Seq > headSeq)
                {
                    var broken = CheckRecordsAfterHead(log.SafeFileHandle, last, lastStart, headSeq, current?.Hash ?? AuditFormat.ZeroHash);
                    if (broken is not null)
                    {
                        throw Refuse(dataDirectory, directory, broken);
                    }
                    note = $"audit: the head named seq {headSeq} but the log holds records up to seq {last.Seq}, chained to it: "
                        + "they were written after the head last reached the disk (a crash, power cut or disk fault between the two); "
                        + $"the head now names seq {last.Seq}.";
                }
                seq = last.Seq;
                prev = last.Hash;
            }

            var result = new FileAuditLog(directory, log, head, length, seq, prev, flushInterval)
            {
                StartupNote = note, StartedNewChain = !logExisted && !headExisted,
            };
            if (seq > 0)
            {
                result.WriteHead();
                RandomAccess.SetLength(result._head, AuditFormat.HeadLength);
            }
            return result;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log?.Dispose();
            head?.Dispose();
            throw new AuditUnavailableException($"Cannot open the audit log in {directory}: {e.Message}", e);
        }
        catch
        {
            log?.Dispose();
            head?.Dispose();
            throw;
        }
    }

    private static AuditUnavailableException Refuse(string dataDirectory, string directory, string what) =>
        new($"The audit log in {directory} does not match its head: {what}. It may have been tampered with. "
            + $"Run `tumbler audit verify --data-dir {dataDirectory}` to find the first bad record; keep the directory as evidence, "
            + "and move it aside to start a new chain.");

    private static FileStream OpenFile(string path)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate,
            Access = FileAccess.ReadWrite,
            Share = FileShare.Read,
            BufferSize = 0,
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode0600;
        }
        var stream = new FileStream(path, options);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(stream.SafeFileHandle, FileMode0600);
        }
        return stream;
    }

    /// <summary>
    /// The last line before <paramref name="length"/> without its '\n', read backwards, and where it starts; null (with
    /// the reason) when the bytes before <paramref name="length"/> do not end in a whole line.
    /// </summary>
    private static byte[]? ReadLastLine(SafeFileHandle handle, long length, out long start, out string? problem)
    {
        start = length;
        var one = new byte[1];
        RandomAccess.Read(handle, one, length - 1);
        if (one[0] != (byte)'\n')
        {
            problem = "the last line is incomplete (the file was truncated or a write was torn)";
            return null;
        }
        var end = length - 1; // exclusive end of the last line
        var chunk = new byte[4096];
        var position = end;
        while (position > 0 && end - position <= AuditFormat.MaxLineLength)
        {
            var size = (int)Math.Min(chunk.Length, position);
            position -= size;
            var read = RandomAccess.Read(handle, chunk.AsSpan(0, size), position);
            var newline = chunk.AsSpan(0, read).LastIndexOf((byte)'\n');
            if (newline >= 0)
            {
                position += newline + 1;
                break;
            }
        }
        if (end - position > AuditFormat.MaxLineLength)
        {
            problem = "the last line is too long to be a record";
            return null;
        }
        var line = new byte[end - position];
        RandomAccess.Read(handle, line, position);
        start = position;
        problem = null;
        return line;
    }

    /// <summary>
    /// Walks back from the last record to the head's: each record must match its hash, follow the one before it and lie
    /// within <see cref="AuditFormat.CrashWindow"/> of the last, and the first after the head must name the head's hash as
    /// prev. Null when they do; otherwise what is wrong.
    /// </summary>
    private static string? CheckRecordsAfterHead(SafeFileHandle log, ParsedLine last, long lastStart, long headSeq, string headHash)
    {
        var record = last;
        var start = lastStart;
        while (true)
        {
            // Checked on the way back, so the walk stops within the window however far behind the head is.
            if (!AuditFormat.WithinCrashWindow(record.Fields.Time, last.Fields.Time))
            {
                return $"records seq {headSeq + 1} to {last.Seq} follow the head (seq {headSeq}) and span more than "
                    + $"{AuditFormat.CrashWindow.TotalSeconds:0} s, more than a crash between the log's write and the head's leaves";
            }
            if (record.Seq == headSeq + 1)
            {
                return record.Prev == headHash ? null : $"record seq {record.Seq}, the first after the head (seq {headSeq}), does not follow the head's record";
            }
            var line = start > 0 ? ReadLastLine(log, start, out start, out _) : null;
            var previous = line is null ? null : AuditFormat.Parse(line, out _);
            if (previous is null || !previous.HashMatches || previous.Seq != record.Seq - 1 || previous.Hash != record.Prev)
            {
                return $"record seq {record.Seq}, after the head (seq {headSeq}), does not follow a valid record seq {record.Seq - 1}";
            }
            record = previous;
        }
    }

    public ValueTask AppendAsync(AuditRecord record, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(record);
        var pending = new PendingAppend(record);
        bool lead;
        lock (_queueLock)
        {
            _queue.Add(pending);
            lead = !_draining;
            _draining = true;
        }
        if (lead)
        {
            // The first appender writes the queue (its own record included) inline; what queued meanwhile goes out
            // from the thread pool, so this caller does not go on writing other callers' records.
            if (WriteQueuedBatch())
            {
                ThreadPool.UnsafeQueueUserWorkItem(static log => log.DrainQueue(), this, preferLocal: false);
            }
        }
        return new ValueTask(pending.Done.Task);
    }

    private void DrainQueue()
    {
        while (WriteQueuedBatch())
        {
        }
    }

    /// <summary>Writes every queued record as one batch; true when more were queued meanwhile (the caller stays the writer).</summary>
    private bool WriteQueuedBatch()
    {
        List<PendingAppend> batch;
        lock (_queueLock)
        {
            batch = _queue;
            _queue = _spare;
        }
        Exception? failure = null;
        _gate.Wait();
        try
        {
            AppendBatch(batch);
        }
        catch (Exception e)
        {
            failure = e;
        }
        finally
        {
            _gate.Release();
        }
        // Each waiting request goes on inline here (answers, then waits for its connection's next request), instead of
        // one more trip through the thread pool per request.
        foreach (var pending in batch)
        {
            if (failure is null)
            {
                pending.Done.TrySetResult();
            }
            else
            {
                pending.Done.TrySetException(failure);
            }
        }
        batch.Clear();
        lock (_queueLock)
        {
            _spare = batch;
            _draining = _queue.Count > 0;
            return _draining;
        }
    }

    /// <summary>
    /// Appends the records as consecutive lines with one positioned write and one head update (group commit):
    /// under concurrent requests that is one write for many records, not two per record. The chain moves on only
    /// when the whole batch is in the log; any failure fails every record of the batch, so each caller fails closed.
    /// </summary>
    private void AppendBatch(List<PendingAppend> batch)
    {
        if (_disposed)
        {
            throw new AuditUnavailableException($"The audit log in {Directory} is closed.");
        }
        if (_stopped is not null)
        {
            throw new AuditUnavailableException(_stopped);
        }
        try
        {
            if (_headBehind)
            {
                WriteHead();
                _headBehind = false;
            }
            if (_lineMayBeTorn)
            {
                RandomAccess.SetLength(_log, _length);
                _lineMayBeTorn = false;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _healthy = false;
            throw new AuditUnavailableException($"Cannot write the audit log in {Directory}: {e.Message}", e);
        }

        _lines.ResetWrittenCount();
        Span<byte> prevHex = stackalloc byte[AuditFormat.HashHexLength];
        _prevHex.CopyTo(prevHex);
        var seq = _seq;
        foreach (var pending in batch)
        {
            _json.ResetWrittenCount();
            _writer.Reset();
            AuditFormat.WriteCanonical(_writer, ++seq, prevHex, pending.Record);
            var lineLength = AuditFormat.CompleteLine(_json.WrittenSpan, ref _line, prevHex);
            _lines.Write(_line.AsSpan(0, lineLength));
        }

        try
        {
            RandomAccess.Write(_log, _lines.WrittenSpan, _length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _healthy = false;
            _lineMayBeTorn = true;
            throw new AuditUnavailableException($"Cannot write the audit log in {Directory}: {e.Message}", e);
        }
        // The records are in the log: the chain moves on whatever happens to the head.
        _length += _lines.WrittenCount;
        Volatile.Write(ref _seq, seq);
        prevHex.CopyTo(_prevHex);
        Volatile.Write(ref _unflushed, 1);
        try
        {
            WriteHead();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _healthy = false;
            _headBehind = true;
            throw new AuditUnavailableException($"Cannot write the audit head in {Directory}: {e.Message}", e);
        }

        // Still our file? If the directory or the file was removed or replaced, the writes above went to
        // an unlinked file and are lost: stop, rather than audit into nothing.
        var onDisk = new FileInfo(_logPath);
        if (!onDisk.Exists || onDisk.Length != _length)
        {
            _healthy = false;
            _stopped = $"The audit log {_logPath} was removed, replaced or written by someone else while the server ran "
                + $"(expected {_length} bytes, found {(onDisk.Exists ? onDisk.Length + " bytes" : "no file")}); auditing stopped until restart.";
            throw new AuditUnavailableException(_stopped);
        }
        _healthy = true;
    }

    private sealed class PendingAppend(AuditRecord record)
    {
        public AuditRecord Record { get; } = record;

        /// <summary>Completed when the record's batch is in the log.</summary>
        public TaskCompletionSource Done { get; } = new();
    }

    private void WriteHead()
    {
        AuditFormat.FormatHead(_headBytes, _seq, _prevHex);
        RandomAccess.Write(_head, _headBytes, 0);
    }

    /// <summary>fsync of both files when something was written since the last one (timer callback).</summary>
    private void FlushToDisk()
    {
        if (Interlocked.Exchange(ref _unflushed, 0) == 0)
        {
            return;
        }
        try
        {
            RandomAccess.FlushToDisk(_log);
            RandomAccess.FlushToDisk(_head);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            _healthy = false;
            Volatile.Write(ref _unflushed, 1);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _flushTimer.DisposeAsync().ConfigureAwait(false); // waits for a running flush
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            Volatile.Write(ref _unflushed, 1);
            FlushToDisk();
            await _writer.DisposeAsync().ConfigureAwait(false);
            await _logStream.DisposeAsync().ConfigureAwait(false);
            await _headStream.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }
}
