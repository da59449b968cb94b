using System.Buffers;
using System.Security.Cryptography;

namespace Tumbler.Core.Secrets;

/// <summary>Secret names and ARNs (spec §3.1): <c>arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX</c>.</summary>
public static class SecretArn
{
    public const int SuffixLength = 6;
    public const string InvalidNameMessage =
        "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!";

    private const string SuffixAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    private static readonly SearchValues<char> NameChars =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_+=.@-");

    public static bool IsValidName(string name) => name.Length is > 0 and <= 512 && HasOnlyNameCharacters(name);

    /// <summary>The character check alone: a SecretId longer than any name can be is simply not found (as on AWS), not invalid.</summary>
    public static bool HasOnlyNameCharacters(string text) => !text.AsSpan().ContainsAnyExcept(NameChars);

    /// <summary>A fresh ARN for a newly created secret; every creation gets a new random suffix.</summary>
    public static string Create(string region, string accountId, string name)
    {
        Span<char> suffix = stackalloc char[SuffixLength];
        for (var i = 0; i < suffix.Length; i++)
        {
            suffix[i] = SuffixAlphabet[RandomNumberGenerator.GetInt32(SuffixAlphabet.Length)];
        }
        return $"{Prefix(region, accountId)}{name}-{suffix}";
    }

    public static string Prefix(string region, string accountId) => $"arn:aws:secretsmanager:{region}:{accountId}:secret:";

    /// <summary>
    /// How a SecretId that is an ARN may be looked up: always as an exact ARN, and additionally as a
    /// name (a partial ARN) unless its resource part ends in '-' plus six alphanumerics, which AWS
    /// treats as a complete ARN only. Returns null when the ARN is not one of this region and account.
    /// </summary>
    public static string? PartialArnName(string arn, string region, string accountId)
    {
        var prefix = Prefix(region, accountId);
        if (!arn.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }
        var resource = arn[prefix.Length..];
        var looksComplete = resource.Length > SuffixLength + 1
            && resource[^(SuffixLength + 1)] == '-'
            && resource.AsSpan(resource.Length - SuffixLength).IndexOfAnyExcept(SuffixChars) < 0;
        return looksComplete || resource.Length == 0 ? null : resource;
    }

    private static readonly SearchValues<char> SuffixChars = SearchValues.Create(SuffixAlphabet);
}
