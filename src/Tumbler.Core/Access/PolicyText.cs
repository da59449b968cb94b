using System.Text;

namespace Tumbler.Core.Access;

/// <summary>
/// A string from a policy (a Resource, or a String/Arn condition value) in which policy variables may appear,
/// as in AWS: only in policies with <c>"Version": "2012-10-17"</c>; in 2008-10-17 policies (and policies
/// without a Version) <c>${...}</c> is literal text.
/// <list type="bullet">
/// <item><c>${key}</c> is the single value of the request context key (case-insensitive), e.g.
/// <c>${aws:username}</c>, <c>${aws:PrincipalArn}</c>, <c>${secretsmanager:ResourceTag/team}</c>.</item>
/// <item><c>${key, 'default'}</c> uses the default when the key has no single value.</item>
/// <item><c>${*}</c>, <c>${?}</c>, <c>${$}</c> are the literal characters (a literal <c>*</c> is not a wildcard).</item>
/// </list>
/// A variable without a value (absent or multi-valued key, no default) makes this one pattern match nothing,
/// as AWS does. Text with an unterminated <c>${</c> is kept literally.
/// </summary>
internal sealed class PolicyText
{
    private readonly Part[]? _parts;

    private PolicyText(string raw, Part[]? parts)
    {
        Raw = raw;
        _parts = parts;
    }

    private enum PartKind { Literal, LiteralWildcardChar, Variable }

    private readonly record struct Part(PartKind Kind, string Text, string? Default);

    public string Raw { get; }

    public bool HasVariables => _parts is not null;

    public static PolicyText Create(string raw, bool variablesEnabled)
    {
        if (!variablesEnabled || !raw.Contains("${", StringComparison.Ordinal))
        {
            return new PolicyText(raw, null);
        }
        var parts = new List<Part>();
        var literal = new StringBuilder();
        var i = 0;
        while (i < raw.Length)
        {
            var start = raw.IndexOf("${", i, StringComparison.Ordinal);
            var end = start < 0 ? -1 : raw.IndexOf('}', start + 2);
            if (start < 0 || end < 0)
            {
                literal.Append(raw, i, raw.Length - i);
                break;
            }
            literal.Append(raw, i, start - i);
            var inner = raw.AsSpan(start + 2, end - start - 2).Trim();
            if (inner is "*" or "?" or "$")
            {
                Flush(parts, literal);
                parts.Add(new Part(inner[0] == '$' ? PartKind.Literal : PartKind.LiteralWildcardChar, inner.ToString(), null));
            }
            else
            {
                Flush(parts, literal);
                string? fallback = null;
                var comma = inner.IndexOf(',');
                var key = inner;
                if (comma >= 0)
                {
                    key = inner[..comma].Trim();
                    var rest = inner[(comma + 1)..].Trim();
                    fallback = rest.Length >= 2 && rest[0] == '\'' && rest[^1] == '\'' ? rest[1..^1].ToString() : rest.ToString();
                }
                parts.Add(new Part(PartKind.Variable, key.ToString(), fallback));
            }
            i = end + 1;
        }
        Flush(parts, literal);
        return new PolicyText(raw, [.. parts]);

        static void Flush(List<Part> parts, StringBuilder literal)
        {
            if (literal.Length > 0)
            {
                parts.Add(new Part(PartKind.Literal, literal.ToString(), null));
                literal.Clear();
            }
        }
    }

    /// <summary>The text with variables replaced. <paramref name="literal"/> marks the '*' and '?' that came
    /// from <c>${*}</c>/<c>${?}</c> (null when there are none). False when a variable has no value.</summary>
    public bool TryResolve(AccessRequest request, out string text, out bool[]? literal)
    {
        literal = null;
        if (_parts is null)
        {
            text = Raw;
            return true;
        }
        var builder = new StringBuilder();
        List<int>? literalPositions = null;
        foreach (var part in _parts)
        {
            switch (part.Kind)
            {
                case PartKind.Literal:
                    builder.Append(part.Text);
                    break;
                case PartKind.LiteralWildcardChar:
                    (literalPositions ??= []).Add(builder.Length);
                    builder.Append(part.Text);
                    break;
                default:
                    var values = request.GetContextValues(part.Text);
                    if (values is { Count: 1 })
                    {
                        builder.Append(values[0]);
                    }
                    else if (part.Default is not null)
                    {
                        builder.Append(part.Default);
                    }
                    else
                    {
                        text = Raw;
                        return false;
                    }
                    break;
            }
        }
        text = builder.ToString();
        if (literalPositions is not null)
        {
            literal = new bool[text.Length];
            foreach (var position in literalPositions)
            {
                literal[position] = true;
            }
        }
        return true;
    }

    /// <summary>A wildcard pattern for this text: the precompiled one when there are no variables, a fresh
    /// one otherwise; null when a variable has no value.</summary>
    public WildcardPattern? ResolvePattern(AccessRequest request, WildcardPattern? compiled, bool ignoreCase)
    {
        if (compiled is not null)
        {
            return compiled;
        }
        return TryResolve(request, out var text, out var literal) ? new WildcardPattern(text, ignoreCase, literal) : null;
    }
}
