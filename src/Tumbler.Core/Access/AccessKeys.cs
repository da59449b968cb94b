using System.Security.Cryptography;

namespace Tumbler.Core.Access;

/// <summary>New identifiers and key pairs in the shapes AWS issues them.</summary>
public static class AccessKeys
{
    private const string SecretAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    private const string IdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    /// <summary>PREFIX + 16 characters (AKIA for long-term keys, ASIA for session keys), and a 40-character secret.</summary>
    public static (string AccessKeyId, string SecretAccessKey) NewPair(string prefix = "AKIA") =>
        (prefix + RandomNumberGenerator.GetString(IdAlphabet, 16), RandomNumberGenerator.GetString(SecretAlphabet, 40));

    /// <summary>AIDA + 17 characters, as IAM user ids look.</summary>
    public static string NewUserId() => "AIDA" + RandomNumberGenerator.GetString(IdAlphabet, 17);
}
