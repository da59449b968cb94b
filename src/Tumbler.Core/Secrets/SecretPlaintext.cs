using System.Text;

namespace Tumbler.Core.Secrets;

/// <summary>A decrypted secret value: exactly one of a string or bytes. Never log it.</summary>
public readonly record struct SecretPlaintext(string? Text, byte[]? Binary)
{
    private const byte StringKind = 0;
    private const byte BinaryKind = 1;

    public override string ToString() => Text is not null ? "SecretString(***)" : "SecretBinary(***)";

    /// <summary>Same kind and byte-identical content: what ClientRequestToken idempotency compares.</summary>
    public bool SameAs(SecretPlaintext other) =>
        Text is not null
            ? other.Text is not null && string.Equals(Text, other.Text, StringComparison.Ordinal)
            : other.Binary is not null && Binary.AsSpan().SequenceEqual(other.Binary);

    internal byte[] ToBytes()
    {
        if (Text is not null)
        {
            var bytes = new byte[1 + Encoding.UTF8.GetByteCount(Text)];
            bytes[0] = StringKind;
            Encoding.UTF8.GetBytes(Text, bytes.AsSpan(1));
            return bytes;
        }
        var binary = new byte[1 + Binary!.Length];
        binary[0] = BinaryKind;
        Binary.CopyTo(binary, 1);
        return binary;
    }

    internal static SecretPlaintext FromBytes(ReadOnlySpan<byte> bytes) =>
        bytes[0] == StringKind
            ? new SecretPlaintext(Encoding.UTF8.GetString(bytes[1..]), null)
            : new SecretPlaintext(null, bytes[1..].ToArray());
}
