using System.Security.Cryptography;
using System.Text;

namespace Tumbler.Core.Crypto;

/// <summary>
/// AES-256-GCM sealing used at every layer of the key hierarchy: secret values under a fresh data
/// key, data keys under a KMS-like key, KMS-like keys under the root key. Associated data binds a
/// ciphertext to where it belongs, so rows swapped in the database fail to open.
/// </summary>
public static class Envelope
{
    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int TagSize = 16;
    public const int Overhead = NonceSize + TagSize;

    /// <summary>nonce | tag | ciphertext</summary>
    public static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var output = new byte[Overhead + plaintext.Length];
        Seal(key, plaintext, associatedData, output);
        return output;
    }

    public static void Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, Span<byte> output)
    {
        var nonce = output[..NonceSize];
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagSize);
        aes.Encrypt(nonce, plaintext, output[Overhead..], output.Slice(NonceSize, TagSize), associatedData);
    }

    /// <summary>Opens a sealed blob; throws <see cref="CryptographicException"/> when it was tampered with,
    /// sealed under another key, or bound to other associated data.</summary>
    public static byte[] Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> sealedData, ReadOnlySpan<byte> associatedData)
    {
        if (sealedData.Length < Overhead)
        {
            throw new CryptographicException("Sealed data is truncated.");
        }
        var plaintext = new byte[sealedData.Length - Overhead];
        using var aes = new AesGcm(key, TagSize);
        aes.Decrypt(sealedData[..NonceSize], sealedData[Overhead..], sealedData.Slice(NonceSize, TagSize), plaintext, associatedData);
        return plaintext;
    }

    public static byte[] AssociatedData(params string[] parts) => Encoding.UTF8.GetBytes(string.Join('\n', parts));

}
