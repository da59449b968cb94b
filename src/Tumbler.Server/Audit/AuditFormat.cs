using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Tumbler.Core.Audit;

namespace Tumbler.Server.Audit;

/// <summary>
/// The audit log's on-disk format, shared by <see cref="FileAuditLog"/> (writer) and <see cref="AuditVerifier"/>.
/// <para>
/// <b>DATA_DIR/audit/audit.log</b>: one JSON object per line (UTF-8, '\n'-terminated). Members, in this
/// order, nulls left out: <c>seq</c> (1, 2, 3...), <c>prev</c> (the previous line's <c>hash</c>, 64 zeros
/// for seq 1), <c>time</c> (UTC, ISO 8601), <c>requestId</c>, <c>operation</c>, <c>outcome</c>,
/// <c>errorCode</c>, <c>principalArn</c>, <c>accessKeyId</c>, <c>sourceIp</c>, <c>userAgent</c>,
/// <c>region</c>, <c>secretArn</c>, <c>versionId</c>, <c>versionStage</c>, <c>rotationStep</c>,
/// <c>detail</c>, and last <c>hash</c>.
/// </para>
/// <para>
/// <c>hash</c> is the lowercase hex SHA-256 of the line's canonical bytes: the line exactly as written,
/// without its trailing <c>,"hash":"..."</c> member (so it ends in <c>}</c>). The canonical bytes include
/// <c>prev</c>, so each record commits to the whole log before it. The hash is taken over the bytes on
/// disk, not over a re-serialization, so changing any byte of a record (a field, spacing, escaping) is
/// detected.
/// </para>
/// <para>
/// <b>DATA_DIR/audit/head</b>: the last record's seq and hash, one line <c>SEQ HASH\n</c> with SEQ
/// zero-padded to 19 digits (always 85 bytes, rewritten in place after every append). An empty head
/// means no record was written yet. The head lets a verifier notice records removed from the end.
/// </para>
/// </summary>
public static class AuditFormat
{
    public const string DirectoryName = "audit";
    public const string LogFileName = "audit.log";
    public const string HeadFileName = "head";

    /// <summary><c>prev</c> of the first record.</summary>
    public static readonly string ZeroHash = new('0', HashHexLength);

    public const int HashHexLength = 64;
    /// <summary>Length of the head file: 19 digits, a space, 64 hex digits, '\n'.</summary>
    public const int HeadLength = 19 + 1 + HashHexLength + 1;
    /// <summary>Longest line the reader accepts; a line is a few hundred bytes in practice.</summary>
    public const int MaxLineLength = 1 << 20;
    /// <summary>User agents longer than this are cut (they are client-controlled and unbounded).</summary>
    public const int MaxUserAgentLength = 512;

    private static readonly byte[] HashMemberPrefix = ",\"hash\":\""u8.ToArray();
    /// <summary>Length of <c>,"hash":"&lt;64 hex&gt;"}</c>, the tail that the hash does not cover (except its closing brace).</summary>
    private static readonly int HashSuffixLength = HashMemberPrefix.Length + HashHexLength + 2;

    internal static readonly JsonWriterOptions WriterOptions = new()
    {
        // Readable user agents and ARNs in the file; quotes, backslashes and control characters are still escaped,
        // so a record is always one line.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
        SkipValidation = false,
    };

    public static string LogPath(string dataDirectory) => Path.Combine(dataDirectory, DirectoryName, LogFileName);

    public static string HeadPath(string dataDirectory) => Path.Combine(dataDirectory, DirectoryName, HeadFileName);

    /// <summary>Writes the canonical form (everything but <c>hash</c>) of one record into <paramref name="json"/>.</summary>
    internal static void WriteCanonical(Utf8JsonWriter w, long seq, ReadOnlySpan<byte> prevHex, AuditRecord r)
    {
        w.WriteStartObject();
        w.WriteNumber("seq"u8, seq);
        w.WriteString("prev"u8, prevHex);
        Span<byte> time = stackalloc byte[40];
        r.Time.UtcDateTime.TryFormat(time, out var timeLength, "yyyy-MM-ddTHH:mm:ss.fffffffZ", CultureInfo.InvariantCulture);
        w.WriteString("time"u8, time[..timeLength]);
        w.WriteString("requestId"u8, r.RequestId);
        w.WriteString("operation"u8, r.Operation);
        w.WriteString("outcome"u8, r.Outcome);
        Optional(w, "errorCode"u8, r.ErrorCode);
        Optional(w, "principalArn"u8, r.PrincipalArn);
        Optional(w, "accessKeyId"u8, r.AccessKeyId);
        Optional(w, "sourceIp"u8, r.SourceIp);
        Optional(w, "userAgent"u8, r.UserAgent is { Length: > MaxUserAgentLength } ua ? ua[..MaxUserAgentLength] : r.UserAgent);
        Optional(w, "region"u8, r.Region);
        Optional(w, "secretArn"u8, r.SecretArn);
        Optional(w, "versionId"u8, r.VersionId);
        Optional(w, "versionStage"u8, r.VersionStage);
        Optional(w, "rotationStep"u8, r.RotationStep);
        Optional(w, "detail"u8, r.Detail);
        w.WriteEndObject();
        w.Flush();

        static void Optional(Utf8JsonWriter w, ReadOnlySpan<byte> name, string? value)
        {
            if (value is not null)
            {
                w.WriteString(name, value);
            }
        }
    }

    /// <summary>
    /// Turns canonical bytes (ending in '}') into the full line in <paramref name="line"/>: the canonical
    /// bytes without their closing brace, <c>,"hash":"HEX"}</c>, '\n'. Writes the hash (hex) into
    /// <paramref name="hashHex"/> and returns the line length.
    /// </summary>
    internal static int CompleteLine(ReadOnlySpan<byte> canonical, ref byte[] line, Span<byte> hashHex)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(canonical, digest);
        Convert.TryToHexStringLower(digest, hashHex, out _);
        var length = canonical.Length - 1 + HashSuffixLength + 1;
        if (line.Length < length)
        {
            line = new byte[Math.Max(length, line.Length * 2)];
        }
        var span = line.AsSpan();
        canonical[..^1].CopyTo(span);
        var at = canonical.Length - 1;
        HashMemberPrefix.CopyTo(span[at..]);
        at += HashMemberPrefix.Length;
        hashHex.CopyTo(span[at..]);
        at += HashHexLength;
        span[at++] = (byte)'"';
        span[at++] = (byte)'}';
        span[at++] = (byte)'\n';
        return at;
    }

    /// <summary>Formats one full line (with hash and '\n'); for tests and tools. The server reuses its buffers instead.</summary>
    public static byte[] FormatLine(long seq, string prevHex, AuditRecord record, out string hashHex)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            WriteCanonical(w, seq, Encoding.ASCII.GetBytes(prevHex), record);
        }
        var line = Array.Empty<byte>();
        Span<byte> hex = stackalloc byte[HashHexLength];
        var length = CompleteLine(buffer.WrittenSpan, ref line, hex);
        hashHex = Encoding.ASCII.GetString(hex);
        return line[..length];
    }

    /// <summary>
    /// Parses one line (without its '\n'). Returns null with <paramref name="error"/> when it is not a
    /// record of this format; otherwise the record, with <see cref="ParsedLine.HashMatches"/> telling
    /// whether its content still matches its hash.
    /// </summary>
    public static ParsedLine? Parse(ReadOnlySpan<byte> line, out string error)
    {
        if (line.Length < HashSuffixLength + 2 || !line.EndsWith("\"}"u8) || !line[^HashSuffixLength..].StartsWith(HashMemberPrefix))
        {
            error = "it does not end with a \"hash\" member";
            return null;
        }
        AuditLogLine? parsed;
        try
        {
            parsed = JsonSerializer.Deserialize(line, AuditJsonContext.Default.AuditLogLine);
        }
        catch (JsonException e)
        {
            error = $"it is not a valid record ({e.Message})";
            return null;
        }
        var hashText = line[(line.Length - 2 - HashHexLength)..^2];
        if (parsed is null || parsed.Seq is not long seq || seq < 1 || parsed.Prev is not { Length: HashHexLength } prev || !IsLowerHex(prev)
            || parsed.Hash is null || !IsLowerHex(hashText) || parsed.RequestId is null || parsed.Operation is null || parsed.Outcome is null || parsed.Time is null)
        {
            error = "a required member (seq, prev, time, requestId, operation, outcome, hash) is missing or malformed";
            return null;
        }

        // Canonical bytes: the line without ,"hash":"..." but with its closing brace.
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            sha.AppendData(line[..^HashSuffixLength]);
            sha.AppendData("}"u8);
            sha.GetHashAndReset(digest);
        }
        Span<byte> computed = stackalloc byte[HashHexLength];
        Convert.TryToHexStringLower(digest, computed, out _);
        error = "";
        return new ParsedLine(seq, prev, Encoding.ASCII.GetString(hashText), computed.SequenceEqual(hashText), parsed);
    }

    private static bool IsLowerHex(string s) => s.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');

    private static bool IsLowerHex(ReadOnlySpan<byte> s)
    {
        foreach (var b in s)
        {
            if (!(b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f'))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// How far apart in time the records after the head may be for a crash to explain them: the head is fsynced about
    /// a second after the log (<see cref="FileAuditLog"/>'s timer), with room for a slow disk or a busy machine. Records
    /// after the head that span more (an emptied or rolled-back head with records removed from the end) are refused.
    /// </summary>
    public static readonly TimeSpan CrashWindow = TimeSpan.FromSeconds(10);

    /// <summary>Whether the records from <paramref name="firstAfterHead"/> to <paramref name="last"/> were written within <see cref="CrashWindow"/>.</summary>
    public static bool WithinCrashWindow(string? firstAfterHeadTime, string? lastTime) =>
        TryParseTime(firstAfterHeadTime, out var first) && TryParseTime(lastTime, out var last) && last - first <= CrashWindow;

    private static bool TryParseTime(string? text, out DateTimeOffset time) =>
        DateTimeOffset.TryParseExact(text, "yyyy-MM-ddTHH:mm:ss.fffffffZ", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out time);

    /// <summary>The head's bytes for (seq, hash).</summary>
    internal static void FormatHead(Span<byte> destination, long seq, ReadOnlySpan<byte> hashHex)
    {
        seq.TryFormat(destination, out _, "D19", CultureInfo.InvariantCulture);
        destination[19] = (byte)' ';
        hashHex.CopyTo(destination[20..]);
        destination[HeadLength - 1] = (byte)'\n';
    }

    /// <summary>Parses head file content: null when empty (no record yet); throws <see cref="FormatException"/> when malformed.</summary>
    public static AuditHead? ParseHead(ReadOnlySpan<byte> content)
    {
        var text = Encoding.ASCII.GetString(content).Trim();
        if (text.Length == 0)
        {
            return null;
        }
        var parts = text.Split(' ');
        if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var seq) || seq < 1
            || parts[1].Length != HashHexLength || !IsLowerHex(parts[1]))
        {
            throw new FormatException("the head is not \"SEQ HASH\"");
        }
        return new AuditHead(seq, parts[1]);
    }

    /// <summary>Reads the head file: null when absent or empty; throws <see cref="FormatException"/> when malformed.</summary>
    public static AuditHead? ReadHead(string headPath)
    {
        if (!File.Exists(headPath))
        {
            return null;
        }
        using var stream = new FileStream(headPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
        var buffer = new byte[256];
        var read = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        if (read == buffer.Length)
        {
            throw new FormatException("the head is too long");
        }
        return ParseHead(buffer.AsSpan(0, read));
    }
}

/// <summary>The head: seq and hash of the last record.</summary>
public sealed record AuditHead(long Seq, string Hash);

/// <summary>One parsed log line.</summary>
public sealed record ParsedLine(long Seq, string Prev, string Hash, bool HashMatches, AuditLogLine Fields);

/// <summary>The JSON shape of a log line, for reading it back.</summary>
public sealed record AuditLogLine
{
    public long? Seq { get; init; }
    public string? Prev { get; init; }
    public string? Time { get; init; }
    public string? RequestId { get; init; }
    public string? Operation { get; init; }
    public string? Outcome { get; init; }
    public string? ErrorCode { get; init; }
    public string? PrincipalArn { get; init; }
    public string? AccessKeyId { get; init; }
    public string? SourceIp { get; init; }
    public string? UserAgent { get; init; }
    public string? Region { get; init; }
    public string? SecretArn { get; init; }
    public string? VersionId { get; init; }
    public string? VersionStage { get; init; }
    public string? RotationStep { get; init; }
    public string? Detail { get; init; }
    public string? Hash { get; init; }
}

/// <summary>Reading log lines back: camelCase, unknown or repeated members refused (a record has exactly the known members).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    AllowDuplicateProperties = false,
    MaxDepth = 4)]
[JsonSerializable(typeof(AuditLogLine))]
public sealed partial class AuditJsonContext : JsonSerializerContext;
