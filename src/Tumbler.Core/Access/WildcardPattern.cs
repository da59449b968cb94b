namespace Tumbler.Core.Access;

/// <summary>
/// A pattern with the IAM wildcards <c>*</c> (any run of characters, including none, across <c>:</c> and
/// <c>/</c>) and <c>?</c> (exactly one character), compiled once. Matching is allocation-free: the common
/// shapes (<c>*</c>, an exact string, <c>prefix*</c>) take a shortcut, the rest use a greedy matcher with
/// one backtrack point (linear in practice, never exponential).
/// </summary>
internal sealed class WildcardPattern
{
    private enum Shape { Any, Exact, Prefix, General }

    private readonly string _pattern;
    // Set at the positions whose '*' or '?' is a literal character (from the policy variables ${*} and ${?});
    // null when every '*' and '?' is a wildcard.
    private readonly bool[]? _literal;
    private readonly StringComparison _comparison;
    private readonly Shape _shape;

    public WildcardPattern(string pattern, bool ignoreCase, bool[]? literal = null)
    {
        _pattern = pattern;
        _literal = literal;
        _comparison = ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        IgnoreCase = ignoreCase;
        var wildcards = 0;
        var lastWildcard = -1;
        for (var i = 0; i < pattern.Length; i++)
        {
            if (IsWildcard(i))
            {
                wildcards++;
                lastWildcard = i;
            }
        }
        if (wildcards == 0)
        {
            _shape = Shape.Exact;
        }
        else if (wildcards == 1 && lastWildcard == pattern.Length - 1 && pattern[lastWildcard] == '*')
        {
            _shape = pattern.Length == 1 ? Shape.Any : Shape.Prefix;
        }
        else
        {
            _shape = Shape.General;
        }
    }

    public string Pattern => _pattern;

    public bool IgnoreCase { get; }

    /// <summary>True for the pattern that matches everything (<c>*</c>).</summary>
    public bool MatchesEverything => _shape == Shape.Any;

    /// <summary>True when the pattern consists only of wildcards (<c>*</c>, <c>**</c>, <c>*?</c>...).</summary>
    public bool IsOnlyWildcards
    {
        get
        {
            for (var i = 0; i < _pattern.Length; i++)
            {
                if (!IsWildcard(i))
                {
                    return false;
                }
            }
            return _pattern.Length > 0;
        }
    }

    public bool IsMatch(ReadOnlySpan<char> text) => _shape switch
    {
        Shape.Any => true,
        Shape.Exact => text.Equals(_pattern, _comparison),
        Shape.Prefix => text.StartsWith(_pattern.AsSpan(0, _pattern.Length - 1), _comparison),
        _ => MatchGeneral(text),
    };

    private bool IsWildcard(int i) => _pattern[i] is '*' or '?' && (_literal is null || !_literal[i]);

    private bool MatchGeneral(ReadOnlySpan<char> text)
    {
        var pattern = _pattern;
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && IsWildcard(p))
            {
                if (pattern[p] == '*')
                {
                    star = p++;
                    mark = t;
                    continue;
                }
                p++;
                t++;
                continue;
            }
            if (p < pattern.Length && SameChar(pattern[p], text[t]))
            {
                p++;
                t++;
                continue;
            }
            if (star < 0)
            {
                return false;
            }
            p = star + 1;
            t = ++mark;
        }
        while (p < pattern.Length && pattern[p] == '*' && IsWildcard(p))
        {
            p++;
        }
        return p == pattern.Length;
    }

    private bool SameChar(char a, char b) =>
        a == b || (IgnoreCase && char.ToUpperInvariant(a) == char.ToUpperInvariant(b));

    public override string ToString() => _pattern;
}
