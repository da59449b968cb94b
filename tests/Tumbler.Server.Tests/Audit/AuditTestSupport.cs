using System.Text;
using Tumbler.Core.Audit;
using Tumbler.Server.Audit;

namespace Tumbler.Server.Tests.Audit;

/// <summary>A data directory under /tmp, deleted on dispose, with helpers to write and edit its audit log.</summary>
internal sealed class AuditDataDir : IDisposable
{
    public AuditDataDir() => System.IO.Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "tumbler-audit-" + Guid.NewGuid().ToString("N")[..12]);

    public string AuditDir => System.IO.Path.Combine(Path, AuditFormat.DirectoryName);
    public string LogPath => AuditFormat.LogPath(Path);
    public string HeadPath => AuditFormat.HeadPath(Path);

    public static AuditRecord Record(int i) => new()
    {
        Time = new DateTimeOffset(2025, 11, 6, 13, 26, 8, TimeSpan.Zero).AddMilliseconds(i),
        RequestId = $"req-{i}",
        Operation = "GetSecretValue",
        Outcome = AuditOutcome.Success,
        PrincipalArn = "arn:aws:iam::123456789012:root",
        AccessKeyId = "AKIATUMBLERTEST00001",
        SourceIp = "127.0.0.1",
        UserAgent = "aws-cli/2.15.0 Python/3.11",
        Region = "us-east-1",
        SecretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
        VersionStage = "AWSCURRENT",
    };

    /// <summary>Writes records 1..count through a FileAuditLog and closes it.</summary>
    public async Task WriteAsync(int count, int firstIndex = 1)
    {
        await using var log = FileAuditLog.Open(Path);
        for (var i = firstIndex; i < firstIndex + count; i++)
        {
            await log.AppendAsync(Record(i), CancellationToken.None);
        }
    }

    /// <summary>
    /// Writes records 1..<paramref name="kept"/>, then <paramref name="after"/> more, and puts the head back as it was after
    /// <paramref name="kept"/>: what a crash between the log's fsync and the head's leaves.
    /// </summary>
    public async Task WriteWithHeadLeftBehindAsync(int kept, int after)
    {
        await WriteAsync(kept);
        var head = await File.ReadAllBytesAsync(HeadPath);
        await WriteAsync(after, firstIndex: kept + 1);
        await File.WriteAllBytesAsync(HeadPath, head);
    }

    public List<string> Lines() => [.. File.ReadAllText(LogPath).Split('\n', StringSplitOptions.RemoveEmptyEntries)];

    public void WriteLines(IEnumerable<string> lines) => File.WriteAllText(LogPath, string.Concat(lines.Select(l => l + "\n")));

    public static ParsedLine Parse(string line) => AuditFormat.Parse(Encoding.UTF8.GetBytes(line), out var error) ?? throw new InvalidOperationException(error);

    /// <summary>A correctly hashed line for (seq, prev): what someone who knows the format can forge.</summary>
    public static string Forge(long seq, string prev, AuditRecord record) =>
        Encoding.UTF8.GetString(AuditFormat.FormatLine(seq, prev, record, out _)).TrimEnd('\n');

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
