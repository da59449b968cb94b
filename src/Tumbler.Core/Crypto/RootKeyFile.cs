using System.Security.Cryptography;

namespace Tumbler.Core.Crypto;

/// <summary>
/// The root key: 32 random bytes, base64 in a file readable by its owner only, or base64 in an
/// environment variable so it need not sit next to the database.
/// </summary>
public static class RootKeyFile
{
    public const string EnvironmentVariable = "TUMBLER_ROOT_KEY";

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
