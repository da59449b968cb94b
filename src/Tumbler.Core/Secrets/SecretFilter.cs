using System.Diagnostics;

namespace Tumbler.Core.Secrets;

/// <summary>What a filter looks at.</summary>
public sealed record FilterableSecret(
    string Name, string? Description, IReadOnlyList<Tag> Tags, string? PrimaryRegion, string? OwningService);

/// <summary>
/// The ListSecrets / BatchGetSecretValue <c>Filters</c> (spec §3.10).
/// <list type="bullet">
/// <item>Filters are AND-ed, also when a key repeats.</item>
/// <item>Within one filter the values are OR-ed: the secret passes when any value matches.</item>
/// <item>A value <c>!x</c> matches exactly when <c>x</c> does not, so <c>["one", "!two"]</c> reads
/// "one OR NOT two", and <c>!x</c> on a missing attribute (no description, no tags) matches.</item>
/// <item><c>name</c>, <c>tag-key</c>, <c>tag-value</c> (any tag), <c>primary-region</c>,
/// <c>owning-service</c>: case-sensitive prefix of the whole attribute.</item>
/// <item><c>description</c>: every whitespace-separated word of the value is a case-insensitive
/// prefix of some word of the description.</item>
/// <item><c>all</c>: the value and the attributes (name, description, tag keys and values) are
/// split by <see cref="SplitWords"/>; every value word is a case-insensitive prefix of some word of
/// any of those attributes (the words of all attributes are pooled).</item>
/// </list>
/// A word-based value without any word (<c>"+"</c>, <c>""</c>) matches nothing, as AWS answers
/// <c>all</c>: <c>+</c> with no secret.
/// </summary>
public static class SecretFilter
{
    public static readonly IReadOnlyList<string> Keys =
        ["description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all"];

    private const string AllSeparators = "/_+=.@-";

    /// <summary>True when the secret passes every filter.</summary>
    /// <exception cref="ServiceException">InvalidParameterException for a filter without a known
    /// key or without values (request validation normally rejects those first).</exception>
    public static bool Matches(IReadOnlyList<Filter> filters, FilterableSecret secret) =>
        filters.All(filter => MatchesFilter(filter, secret));

    private static bool MatchesFilter(Filter filter, FilterableSecret secret)
    {
        if (filter.Key is not { } key || !Keys.Contains(key))
        {
            throw ServiceException.InvalidParameter("Invalid filter key");
        }

        if (filter.Values is not { Count: > 0 } values)
        {
            throw ServiceException.InvalidParameter($"Invalid filter values for key: {key}");
        }

        return values.Any(value => value.StartsWith('!')
            ? !MatchesValue(key, value[1..], secret)
            : MatchesValue(key, value, secret));
    }

    private static bool MatchesValue(string key, string value, FilterableSecret secret) => key switch
    {
        "name" => IsPrefix(value, secret.Name),
        "tag-key" => secret.Tags.Any(tag => IsPrefix(value, tag.Key)),
        "tag-value" => secret.Tags.Any(tag => IsPrefix(value, tag.Value)),
        "primary-region" => IsPrefix(value, secret.PrimaryRegion),
        "owning-service" => IsPrefix(value, secret.OwningService),
        "description" => EveryWordIsPrefixOfSome(SplitAtWhitespace(value), SplitAtWhitespace(secret.Description)),
        "all" => EveryWordIsPrefixOfSome(SplitWords(value), AllWords(secret)),
        _ => throw new UnreachableException($"Filter key {key} has no matcher."),
    };

    private static bool IsPrefix(string value, string? attribute) =>
        attribute is not null && attribute.StartsWith(value, StringComparison.Ordinal);

    private static bool EveryWordIsPrefixOfSome(IReadOnlyList<string> valueWords, IReadOnlyList<string> attributeWords) =>
        valueWords.Count > 0 && valueWords.All(valueWord =>
            attributeWords.Any(word => word.StartsWith(valueWord, StringComparison.OrdinalIgnoreCase)));

    private static string[] SplitAtWhitespace(string? text) =>
        text?.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries) ?? [];

    private static List<string> AllWords(FilterableSecret secret)
    {
        var words = SplitWords(secret.Name);
        words.AddRange(SplitWords(secret.Description ?? ""));
        foreach (var tag in secret.Tags)
        {
            words.AddRange(SplitWords(tag.Key ?? ""));
            words.AddRange(SplitWords(tag.Value ?? ""));
        }

        return words;
    }

    /// <summary>
    /// Splits text into the words of the <c>all</c> filter: at <c>/ _ + = . @ -</c>, whitespace, and
    /// before an upper-case letter that follows a lower-case one (<c>SecretOne</c> → <c>Secret</c>,
    /// <c>One</c>) or that ends an upper-case run followed by lower case (<c>COMPANYthings</c> →
    /// <c>COMPAN</c>, <c>Ythings</c>, as AWS does). A digit is no case boundary: <c>db1Prod</c> stays
    /// one word, since the spec only names upper/lower-case boundaries.
    /// </summary>
    internal static List<string> SplitWords(string text)
    {
        var words = new List<string>();
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsWhiteSpace(text[i]) || AllSeparators.Contains(text[i], StringComparison.Ordinal))
            {
                AddWord(start, i);
                start = i + 1;
            }
            else if (i > start && StartsCaseWord(text, i))
            {
                AddWord(start, i);
                start = i;
            }
        }

        AddWord(start, text.Length);
        return words;

        void AddWord(int from, int to)
        {
            if (to > from)
            {
                words.Add(text[from..to]);
            }
        }
    }

    // Only called inside a word, so text[i - 1] belongs to the same word.
    private static bool StartsCaseWord(string text, int i) =>
        char.IsUpper(text[i]) && (char.IsLower(text[i - 1])
            || (char.IsUpper(text[i - 1]) && i + 1 < text.Length && char.IsLower(text[i + 1])));
}
