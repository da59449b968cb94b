using System.Security.Cryptography;

namespace Tumbler.Core.Crypto;

/// <summary>
/// The root key: 32 random bytes, base64 in a file readable by its owner only, or base64 in an
/// environment variable so it need not sit next to the database.
/// </summary>
public static class RootKeyFile
{
    public const string EnvironmentVariable = "TUMBLER_ROOT_KEY";
    public const string PassphraseVariable = "TUMBLER_ROOT_KEY_PASSPHRASE";
    /// <summary>Store setting holding the base64 salt of a passphrase-derived root key.</summary>
    public const string SaltSetting = "root_key_salt";
    /// <summary>PBKDF2-HMAC-SHA256 iterations: OWASP's 2023 recommendation for that hash.</summary>
    public const int PassphraseIterations = 600_000;
    public const int MinPassphraseLength = 12;

    /// <summary>The root key derived from a passphrase: PBKDF2-HMAC-SHA256, <see cref="PassphraseIterations"/> iterations, the store's 16-byte salt.</summary>
    public static byte[] FromPassphrase(string passphrase, byte[] salt)
    {
        if (passphrase.Length < MinPassphraseLength)
        {
            throw new InvalidDataException($"The root key passphrase must be at least {MinPassphraseLength} characters.");
        }
        return Rfc2898DeriveBytes.Pbkdf2(passphrase, salt, PassphraseIterations, HashAlgorithmName.SHA256, Envelope.KeySize);
    }

    /// <summary>A passphrase file's text without its final line break.</summary>
    public static string ReadPassphrase(string path) => File.ReadAllText(path).TrimEnd('\r', '\n');

    public static byte[] Read(string path) => Parse(File.ReadAllText(path), path);

    public static byte[] Parse(string text, string source)
    {
        byte[] key;
        try
        {
            key = Convert.FromBase64String(text.Trim());
        }
        catch (FormatException)
        {
            throw new InvalidDataException($"The root key in {source} is not base64.");
        }
        if (key.Length != Envelope.KeySize)
        {
            throw new InvalidDataException($"The root key in {source} must be {Envelope.KeySize} bytes, found {key.Length}.");
        }
        return key;
    }

    /// <summary>Creates a new root key file with mode 0600; fails if the file exists.</summary>
    public static byte[] Create(string path)
    {
        var key = RandomNumberGenerator.GetBytes(Envelope.KeySize);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var stream = new FileStream(path, options))
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(key) + "\n"));
            // On disk before any data is encrypted under it: a power cut must not leave data without its key.
            stream.Flush(flushToDisk: true);
        }
        return key;
    }
}
