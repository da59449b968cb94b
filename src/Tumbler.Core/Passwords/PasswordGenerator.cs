using System.Security.Cryptography;
using Tumbler.Core.Secrets;

namespace Tumbler.Core.Passwords;

/// <summary>The GetRandomPassword parameters with the AWS defaults applied (spec §3.9).</summary>
public sealed record PasswordRules
{
    public const int DefaultLength = 32;

    public int Length { get; init; } = DefaultLength;
    public string ExcludeCharacters { get; init; } = "";
    public bool ExcludeNumbers { get; init; }
    public bool ExcludePunctuation { get; init; }
    public bool ExcludeUppercase { get; init; }
    public bool ExcludeLowercase { get; init; }
    public bool IncludeSpace { get; init; }
    public bool RequireEachIncludedType { get; init; } = true;

    /// <summary>Absent members take their defaults. The request must already be validated
    /// (PasswordLength 1–4096), so the length always fits an <see cref="int"/>.</summary>
    public static PasswordRules From(GetRandomPasswordRequest request) => new()
    {
        Length = checked((int)(request.PasswordLength ?? DefaultLength)),
        ExcludeCharacters = request.ExcludeCharacters ?? "",
        ExcludeNumbers = request.ExcludeNumbers ?? false,
        ExcludePunctuation = request.ExcludePunctuation ?? false,
        ExcludeUppercase = request.ExcludeUppercase ?? false,
        ExcludeLowercase = request.ExcludeLowercase ?? false,
        IncludeSpace = request.IncludeSpace ?? false,
        RequireEachIncludedType = request.RequireEachIncludedType ?? true,
    };
}

/// <summary>
/// Generates GetRandomPassword passwords. The result is a secret: callers must never log it.
/// </summary>
public static class PasswordGenerator
{
    /// <summary>The 32 printable ASCII characters that are neither letters, digits nor space
    /// (Python's <c>string.punctuation</c>).</summary>
    public const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    private const string Lowercase = "abcdefghijklmnopqrstuvwxyz";
    private const string Uppercase = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    private const string Digits = "0123456789";

    /// <summary>
    /// Returns a password of exactly <see cref="PasswordRules.Length"/> characters drawn from the
    /// included classes minus <see cref="PasswordRules.ExcludeCharacters"/>.
    /// With <see cref="PasswordRules.RequireEachIncludedType"/> it holds at least one character of
    /// every included class among lower case, upper case, digits and punctuation; a class that
    /// <c>ExcludeCharacters</c> empties completely is not required.
    /// The space (<see cref="PasswordRules.IncludeSpace"/>) is only added to the alphabet, never
    /// required: the spec leaves this open (§3.9, UNVERIFIED) and names exactly those four classes
    /// for RequireEachIncludedType.
    /// </summary>
    /// <exception cref="ServiceException">InvalidParameterException when no character is left to
    /// choose from, or the length is shorter than the number of required classes.</exception>
    public static string Generate(PasswordRules rules)
    {
        // PasswordLength 1–4096 is enforced by request validation before we get here.
        ArgumentOutOfRangeException.ThrowIfLessThan(rules.Length, 1);

        var classes = new List<string>(4);
        AddClass(classes, Lowercase, rules.ExcludeLowercase, rules.ExcludeCharacters);
        AddClass(classes, Uppercase, rules.ExcludeUppercase, rules.ExcludeCharacters);
        AddClass(classes, Digits, rules.ExcludeNumbers, rules.ExcludeCharacters);
        AddClass(classes, Punctuation, rules.ExcludePunctuation, rules.ExcludeCharacters);

        var alphabet = string.Concat(classes);
        if (rules.IncludeSpace && !rules.ExcludeCharacters.Contains(' ', StringComparison.Ordinal))
        {
            alphabet += " ";
        }

        if (alphabet.Length == 0)
        {
            throw ServiceException.InvalidParameter(
                "The password cannot be generated: every character class is excluded.");
        }

        List<string> required = rules.RequireEachIncludedType ? classes : [];
        if (rules.Length < required.Count)
        {
            throw ServiceException.InvalidParameter("Password length is too short based on the required types.");
        }

        // string.Create fills the result in place, so no second copy of the password lingers.
        return string.Create(rules.Length, (required, alphabet), static (password, state) =>
        {
            var (required, alphabet) = state;
            for (var i = 0; i < required.Count; i++)
            {
                password[i] = required[i][RandomNumberGenerator.GetInt32(required[i].Length)];
            }

            RandomNumberGenerator.GetItems(alphabet, password[required.Count..]);

            // The required characters sit at the front until the shuffle gives them random positions.
            RandomNumberGenerator.Shuffle(password);
        });
    }

    private static void AddClass(List<string> classes, string characters, bool excluded, string excludeCharacters)
    {
        if (excluded)
        {
            return;
        }

        var remaining = string.Concat(characters.Where(c => !excludeCharacters.Contains(c, StringComparison.Ordinal)));
        if (remaining.Length > 0)
        {
            classes.Add(remaining);
        }
    }
}
