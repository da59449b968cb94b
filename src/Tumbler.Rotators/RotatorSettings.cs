using System.Globalization;
using Tumbler.Core.Secrets;

namespace Tumbler.Rotators;

/// <summary>
/// The settings of one built-in rotation function: what the AWS templates read from the Lambda's
/// environment variables (spec §4.4, §4.6, §4.10), with the same defaults. A null member means "the
/// function's own default" (the excluded characters and the clone-name limit differ per engine).
/// </summary>
public sealed record RotatorSettings
{
    /// <summary>The templates' default for MySQL and MariaDB (and the generic template).</summary>
    public const string MySqlDefaultExcludeCharacters = "/@\"'\\";
    /// <summary>The templates' default for PostgreSQL: the MySQL set plus the colon.</summary>
    public const string PostgreSqlDefaultExcludeCharacters = ":/@\"'\\";

    public static readonly RotatorSettings Default = new();

    /// <summary><c>EXCLUDE_CHARACTERS</c>; null = the function's default (<see cref="MySqlDefaultExcludeCharacters"/> for MySQL/MariaDB).</summary>
    public string? ExcludeCharacters { get; init; }
    /// <summary><c>PASSWORD_LENGTH</c>.</summary>
    public int PasswordLength { get; init; } = 32;
    /// <summary><c>EXCLUDE_NUMBERS</c>.</summary>
    public bool ExcludeNumbers { get; init; }
    /// <summary><c>EXCLUDE_PUNCTUATION</c>.</summary>
    public bool ExcludePunctuation { get; init; }
    /// <summary><c>EXCLUDE_UPPERCASE</c>.</summary>
    public bool ExcludeUppercase { get; init; }
    /// <summary><c>EXCLUDE_LOWERCASE</c>.</summary>
    public bool ExcludeLowercase { get; init; }
    /// <summary><c>REQUIRE_EACH_INCLUDED_TYPE</c>.</summary>
    public bool RequireEachIncludedType { get; init; } = true;
    /// <summary>
    /// <c>USERNAME_CHARACTER_LIMIT</c>: the longest name the alternating-users functions may create with
    /// <c>_clone</c> appended; null = the function's default (MySQL 16, MariaDB 80, PostgreSQL 63).
    /// </summary>
    public int? UsernameCharacterLimit { get; init; }
    /// <summary>Connect (and login) timeout of one database connection attempt; the templates use 5 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>
    /// Not in the templates (they hard-code the Amazon Linux CA bundle, spec §4.10): a PEM file of the CA
    /// that signed the database's certificate, for secrets with <c>ssl</c> true. Null = the system's trust store.
    /// </summary>
    public string? TlsCaFile { get; init; }
    /// <summary>
    /// Not in the templates (issue 8): the PostgreSQL functions send the new password to the database as
    /// a SCRAM-SHA-256 verifier computed here instead of in clear, so the clear password never reaches the
    /// server (its statement log, pg_stat_activity). Off by default, as the templates send it in clear;
    /// the database then stores a SCRAM verifier whatever its <c>password_encryption</c>. Passwords with
    /// characters outside printable ASCII are still sent in clear (SASLprep could change them).
    /// </summary>
    public bool PostgreSqlScramVerifier { get; init; }

    /// <summary>The GetRandomPassword call the templates make in createSecret.</summary>
    public GetRandomPasswordRequest ToPasswordRequest(string defaultExcludeCharacters) => new()
    {
        ExcludeCharacters = ExcludeCharacters ?? defaultExcludeCharacters,
        PasswordLength = PasswordLength,
        ExcludeNumbers = ExcludeNumbers,
        ExcludePunctuation = ExcludePunctuation,
        ExcludeUppercase = ExcludeUppercase,
        ExcludeLowercase = ExcludeLowercase,
        RequireEachIncludedType = RequireEachIncludedType,
    };

    /// <summary>
    /// Reads the template environment variables (<c>EXCLUDE_CHARACTERS</c>, <c>PASSWORD_LENGTH</c>,
    /// <c>EXCLUDE_NUMBERS</c>, <c>EXCLUDE_PUNCTUATION</c>, <c>EXCLUDE_UPPERCASE</c>,
    /// <c>EXCLUDE_LOWERCASE</c>, <c>REQUIRE_EACH_INCLUDED_TYPE</c>, <c>USERNAME_CHARACTER_LIMIT</c>) with
    /// their semantics: a boolean is true for <c>true</c>, <c>1</c>, <c>y</c>, <c>yes</c> (any case) and false
    /// for anything else; an absent variable keeps the default. Unknown variables are ignored.
    /// </summary>
    public static RotatorSettings FromVariables(IReadOnlyDictionary<string, string> variables)
    {
        var settings = new RotatorSettings();
        string? Get(string name) => variables.TryGetValue(name, out var value) ? value : null;

        if (Get("EXCLUDE_CHARACTERS") is { } exclude)
        {
            settings = settings with { ExcludeCharacters = exclude };
        }
        if (Get("PASSWORD_LENGTH") is { } length)
        {
            settings = settings with { PasswordLength = ParseInt("PASSWORD_LENGTH", length) };
        }
        if (Get("USERNAME_CHARACTER_LIMIT") is { } limit)
        {
            settings = settings with { UsernameCharacterLimit = ParseInt("USERNAME_CHARACTER_LIMIT", limit) };
        }
        return settings with
        {
            ExcludeNumbers = ParseBool(Get("EXCLUDE_NUMBERS"), settings.ExcludeNumbers),
            ExcludePunctuation = ParseBool(Get("EXCLUDE_PUNCTUATION"), settings.ExcludePunctuation),
            ExcludeUppercase = ParseBool(Get("EXCLUDE_UPPERCASE"), settings.ExcludeUppercase),
            ExcludeLowercase = ParseBool(Get("EXCLUDE_LOWERCASE"), settings.ExcludeLowercase),
            RequireEachIncludedType = ParseBool(Get("REQUIRE_EACH_INCLUDED_TYPE"), settings.RequireEachIncludedType),
        };
    }

    private static bool ParseBool(string? value, bool defaultValue) =>
        value is null ? defaultValue : value.Trim().ToLowerInvariant() is "true" or "1" or "y" or "yes";

    private static int ParseInt(string name, string value) =>
        int.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number)
            ? number
            : throw new FormatException($"{name} must be an integer.");
}
