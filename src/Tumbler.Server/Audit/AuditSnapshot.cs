namespace Tumbler.Server.Audit;

/// <summary>
/// A consistent copy of the audit log (log and head) while a server may be appending to it, for backups.
/// <para>
/// The server writes a record to the log first and rewrites the head second, so the log always holds at
/// least the records the head names. The copy reads the head first, then takes exactly the first
/// <c>head.seq</c> lines of the log and checks that the last of them carries the head's hash: the pair
/// verifies as it stands and a server started on it resumes the chain. Records appended after the head
/// was read are left out (they belong to requests later than the store snapshot anyway).
/// </para>
/// </summary>
public static class AuditSnapshot
{
    /// <summary>
    /// The log's first head.seq lines and the head, as (path relative to the data directory, content);
    /// empty when the data directory has no audit log. Throws <see cref="InvalidDataException"/> when the
    /// log and head disagree beyond a moment's race (run <c>tumbler audit verify</c>).
    /// </summary>
    public static IReadOnlyList<(string Name, byte[] Content)> Take(string dataDirectory)
    {
        var headPath = AuditFormat.HeadPath(dataDirectory);
        var logPath = AuditFormat.LogPath(dataDirectory);
        if (!File.Exists(headPath) && !File.Exists(logPath))
        {
            return [];
        }
        for (var attempt = 1; ; attempt++)
        {
            byte[] head;
            AuditHead? parsed;
            try
            {
                head = ReadShared(headPath);
                parsed = AuditFormat.ParseHead(head);
            }
            catch (FormatException) when (attempt < 5)
            {
                Thread.Sleep(20); // caught the head mid-rewrite
                continue;
            }
            catch (FormatException e)
            {
                throw new InvalidDataException($"the audit head {headPath} is malformed ({e.Message}); run tumbler audit verify", e);
            }
            var log = parsed is null ? [] : Prefix(logPath, parsed);
            return
            [
                ($"{AuditFormat.DirectoryName}/{AuditFormat.LogFileName}", log),
                ($"{AuditFormat.DirectoryName}/{AuditFormat.HeadFileName}", head),
            ];
        }
    }

    /// <summary>The log's first <c>head.Seq</c> lines, the last ending with the head's hash.</summary>
    private static byte[] Prefix(string logPath, AuditHead head)
    {
        var log = File.Exists(logPath) ? ReadShared(logPath) : [];
        var lines = 0L;
        var end = 0;
        var lastStart = 0;
        for (var i = 0; i < log.Length && lines < head.Seq; i++)
        {
            if (log[i] == (byte)'\n')
            {
                lines++;
                lastStart = end;
                end = i + 1;
            }
        }
        var expectedEnd = System.Text.Encoding.ASCII.GetBytes($"\"hash\":\"{head.Hash}\"}}\n");
        if (lines < head.Seq || !log.AsSpan(lastStart, end - lastStart).EndsWith(expectedEnd))
        {
            throw new InvalidDataException($"the audit log {logPath} does not match its head (seq {head.Seq}); run tumbler audit verify");
        }
        return log[..end];
    }

    private static byte[] ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }
}
