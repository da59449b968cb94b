using Tumbler.Client.Model;

namespace Tumbler.Client;

/// <summary>
/// One secret version's value as <see cref="SecretCache"/> hands it out: immutable, so one instance can
/// be shared by every caller (GetSecretValueResponse is mutable and holds a MemoryStream).
/// </summary>
public sealed record SecretValue(
    string Arn,
    string Name,
    string VersionId,
    string? SecretString,
    ReadOnlyMemory<byte>? SecretBinary,
    IReadOnlyList<string> VersionStages,
    DateTime? CreatedDate)
{
    public static SecretValue From(GetSecretValueResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        // Spelled out: a null byte[] (`SecretBinary?.ToArray()`, even a bare `null` beside a ReadOnlyMemory in `?:`)
        // converts to an empty ReadOnlyMemory, and a string secret would seem to have an empty binary value too.
        ReadOnlyMemory<byte>? binary = null;
        if (response.SecretBinary is { } stream)
        {
            binary = stream.ToArray();
        }
        return new SecretValue(response.ARN ?? "", response.Name ?? "", response.VersionId ?? "", response.SecretString,
            binary, [.. response.VersionStages], response.CreatedDate);
    }

    /// <summary>A new response object (with its own MemoryStream) carrying this value.</summary>
    public GetSecretValueResponse ToResponse() => new()
    {
        ARN = Arn,
        Name = Name,
        VersionId = VersionId,
        SecretString = SecretString,
        SecretBinary = SecretBinary is { } bytes ? new MemoryStream(bytes.ToArray(), writable: false) : null,
        VersionStages = [.. VersionStages],
        CreatedDate = CreatedDate,
    };
}
