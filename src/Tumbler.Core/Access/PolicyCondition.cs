using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Tumbler.Core.Access;

/// <summary>How a condition treats a multi-valued context key.</summary>
public enum SetQualifier { None, ForAnyValue, ForAllValues }

/// <summary>
/// One key under one condition operator, e.g. <c>"StringEquals": {"aws:username": ["alice", "bob"]}</c>,
/// compiled at parse time. The policy values of one key are ORed; the caller ANDs conditions.
/// </summary>
/// <remarks>
/// Semantics (AWS "Condition operators" and "Condition with multiple context keys or values"):
/// <list type="bullet">
/// <item>Without a set qualifier, a positive operator matches when any request value matches any policy
/// value; a negated operator (<c>StringNotEquals</c>, <c>ArnNotLike</c>, <c>NumericNotEquals</c>,
/// <c>DateNotEquals</c>, <c>NotIpAddress</c>, ...) is exactly the negation of its positive form.</item>
/// <item>Absent key (or an empty list): <c>...IfExists</c> matches; otherwise a positive operator does not
/// match and a negated operator <b>does</b> (AWS documents that a negated operator returns true when the key
/// is missing from the request context); <c>ForAllValues:</c> matches (vacuous truth), <c>ForAnyValue:</c>
/// does not, whatever the operator.</item>
/// <item><c>ForAnyValue:</c> — some request value satisfies the operator; <c>ForAllValues:</c> — every request
/// value does (for a negated operator: matches none of the policy values).</item>
/// <item><c>Null</c>: <c>"true"</c> matches when the key is absent, <c>"false"</c> when present; set
/// qualifiers on Null are accepted and ignored.</item>
/// <item>Operator names and the <c>ForAnyValue:</c>/<c>ForAllValues:</c> prefixes are case-sensitive, spelled
/// as AWS documents them; anything else is a malformed policy. Condition keys are case-insensitive.</item>
/// <item>A request value that does not parse as the operator's type (a number, a date, an IP address, an
/// ARN) matches no policy value.</item>
/// </list>
/// </remarks>
public sealed class PolicyCondition
{
    private enum Family { String, StringIgnoreCase, StringLike, Arn, Numeric, Date, Bool, Ip, Null }

    private enum Comparison { Equal, LessThan, LessThanEquals, GreaterThan, GreaterThanEquals }

    private static readonly Dictionary<string, (Family Family, Comparison Comparison, bool Negated)> Operators = new(StringComparer.Ordinal)
    {
        ["StringEquals"] = (Family.String, Comparison.Equal, false),
        ["StringNotEquals"] = (Family.String, Comparison.Equal, true),
        ["StringEqualsIgnoreCase"] = (Family.StringIgnoreCase, Comparison.Equal, false),
        ["StringNotEqualsIgnoreCase"] = (Family.StringIgnoreCase, Comparison.Equal, true),
        ["StringLike"] = (Family.StringLike, Comparison.Equal, false),
        ["StringNotLike"] = (Family.StringLike, Comparison.Equal, true),
        ["ArnEquals"] = (Family.Arn, Comparison.Equal, false),
        ["ArnLike"] = (Family.Arn, Comparison.Equal, false),
        ["ArnNotEquals"] = (Family.Arn, Comparison.Equal, true),
        ["ArnNotLike"] = (Family.Arn, Comparison.Equal, true),
        ["NumericEquals"] = (Family.Numeric, Comparison.Equal, false),
        ["NumericNotEquals"] = (Family.Numeric, Comparison.Equal, true),
        ["NumericLessThan"] = (Family.Numeric, Comparison.LessThan, false),
        ["NumericLessThanEquals"] = (Family.Numeric, Comparison.LessThanEquals, false),
        ["NumericGreaterThan"] = (Family.Numeric, Comparison.GreaterThan, false),
        ["NumericGreaterThanEquals"] = (Family.Numeric, Comparison.GreaterThanEquals, false),
        ["DateEquals"] = (Family.Date, Comparison.Equal, false),
        ["DateNotEquals"] = (Family.Date, Comparison.Equal, true),
        ["DateLessThan"] = (Family.Date, Comparison.LessThan, false),
        ["DateLessThanEquals"] = (Family.Date, Comparison.LessThanEquals, false),
        ["DateGreaterThan"] = (Family.Date, Comparison.GreaterThan, false),
        ["DateGreaterThanEquals"] = (Family.Date, Comparison.GreaterThanEquals, false),
        ["Bool"] = (Family.Bool, Comparison.Equal, false),
        ["IpAddress"] = (Family.Ip, Comparison.Equal, false),
        ["NotIpAddress"] = (Family.Ip, Comparison.Equal, true),
        ["Null"] = (Family.Null, Comparison.Equal, false),
    };

    private readonly Family _family;
    private readonly Comparison _comparison;
    private PolicyText[] _texts = [];
    private WildcardPattern?[] _patterns = [];     // StringLike: compiled when no variables
    private ArnPattern?[] _arns = [];              // Arn: compiled when no variables
    private double[] _numbers = [];
    private long[] _dates = [];                     // UTC ticks
    private IpRange[] _ranges = [];
    private bool[] _booleans = [];

    private PolicyCondition(string op, string key, IReadOnlyList<string> values, string baseOperator, SetQualifier qualifier, bool ifExists,
        (Family Family, Comparison Comparison, bool Negated) spec)
    {
        Operator = op;
        Key = key;
        Values = values;
        BaseOperator = baseOperator;
        Qualifier = qualifier;
        IfExists = ifExists;
        IsNegated = spec.Negated;
        _family = spec.Family;
        _comparison = spec.Comparison;
    }

    /// <summary>The operator as written, e.g. <c>ForAnyValue:StringLikeIfExists</c>.</summary>
    public string Operator { get; }

    /// <summary>The operator without qualifier and IfExists, e.g. <c>StringLike</c>.</summary>
    public string BaseOperator { get; }

    public string Key { get; }

    public IReadOnlyList<string> Values { get; }

    public SetQualifier Qualifier { get; }

    public bool IfExists { get; }

    public bool IsNegated { get; }

    internal bool IsNullCheck => _family == Family.Null;

    internal bool IsIpFamily => _family == Family.Ip;

    /// <summary>Compiles one key of one operator; <paramref name="where"/> prefixes error messages.</summary>
    internal static PolicyCondition Create(string op, string key, IReadOnlyList<string> values, bool variablesEnabled, string where)
    {
        var rest = op;
        var qualifier = SetQualifier.None;
        if (rest.StartsWith("ForAnyValue:", StringComparison.Ordinal))
        {
            qualifier = SetQualifier.ForAnyValue;
            rest = rest["ForAnyValue:".Length..];
        }
        else if (rest.StartsWith("ForAllValues:", StringComparison.Ordinal))
        {
            qualifier = SetQualifier.ForAllValues;
            rest = rest["ForAllValues:".Length..];
        }
        var ifExists = false;
        if (!Operators.ContainsKey(rest) && rest.EndsWith("IfExists", StringComparison.Ordinal))
        {
            ifExists = true;
            rest = rest[..^"IfExists".Length];
        }
        if (!Operators.TryGetValue(rest, out var spec) || (ifExists && spec.Family == Family.Null))
        {
            throw new MalformedPolicyException($"{where}: unknown condition operator {op}.");
        }
        if (key.Length == 0)
        {
            throw new MalformedPolicyException($"{where}: a condition key under {op} is empty.");
        }
        var condition = new PolicyCondition(op, key, values, rest, qualifier, ifExists, spec);
        var at = $"{where}: condition {op} {key}";
        switch (spec.Family)
        {
            case Family.String:
            case Family.StringIgnoreCase:
                condition._texts = Texts(values, variablesEnabled);
                break;
            case Family.StringLike:
                condition._texts = Texts(values, variablesEnabled);
                condition._patterns = Array.ConvertAll(condition._texts, t => t.HasVariables ? null : new WildcardPattern(t.Raw, ignoreCase: false));
                break;
            case Family.Arn:
                condition._texts = Texts(values, variablesEnabled);
                condition._arns = Array.ConvertAll(condition._texts, t => t.HasVariables ? null : ArnPattern.Create(t.Raw, null));
                break;
            case Family.Numeric:
                condition._numbers = Array.ConvertAll(values.ToArray(), v => TryParseNumber(v, out var n)
                    ? n : throw new MalformedPolicyException($"{at}: '{v}' is not a number."));
                break;
            case Family.Date:
                condition._dates = Array.ConvertAll(values.ToArray(), v => TryParseDate(v, out var d)
                    ? d : throw new MalformedPolicyException($"{at}: '{v}' is not a date (ISO 8601 or epoch seconds)."));
                break;
            case Family.Bool:
            case Family.Null:
                foreach (var v in values)
                {
                    if (!bool.TryParse(v, out _))
                    {
                        throw new MalformedPolicyException($"{at}: '{v}' is not true or false.");
                    }
                }
                condition._booleans = Array.ConvertAll(values.ToArray(), bool.Parse);
                break;
            case Family.Ip:
                condition._ranges = Array.ConvertAll(values.ToArray(), v => IpRange.TryParse(v, out var r)
                    ? r : throw new MalformedPolicyException($"{at}: '{v}' is not an IP address or CIDR block."));
                break;
        }
        return condition;

        static PolicyText[] Texts(IReadOnlyList<string> values, bool variablesEnabled)
        {
            var texts = new PolicyText[values.Count];
            for (var i = 0; i < texts.Length; i++)
            {
                texts[i] = PolicyText.Create(values[i], variablesEnabled);
            }
            return texts;
        }
    }

    /// <summary>Whether this condition holds for the request.</summary>
    public bool Matches(AccessRequest request)
    {
        var values = request.GetContextValues(Key);
        var present = values is { Count: > 0 };
        if (_family == Family.Null)
        {
            foreach (var expectAbsent in _booleans)
            {
                if (expectAbsent != present)
                {
                    return true;
                }
            }
            return false;
        }
        if (!present)
        {
            if (IfExists)
            {
                return true;
            }
            return Qualifier switch
            {
                SetQualifier.ForAllValues => true,
                SetQualifier.ForAnyValue => false,
                _ => IsNegated,
            };
        }
        switch (Qualifier)
        {
            case SetQualifier.ForAnyValue:
                for (var i = 0; i < values!.Count; i++)
                {
                    if (MatchesAnyPolicyValue(values[i], request) != IsNegated)
                    {
                        return true;
                    }
                }
                return false;
            case SetQualifier.ForAllValues:
                for (var i = 0; i < values!.Count; i++)
                {
                    if (MatchesAnyPolicyValue(values[i], request) == IsNegated)
                    {
                        return false;
                    }
                }
                return true;
            default:
                var any = false;
                for (var i = 0; i < values!.Count && !any; i++)
                {
                    any = MatchesAnyPolicyValue(values[i], request);
                }
                return any != IsNegated;
        }
    }

    /// <summary>The positive operator for one request value: true when it matches any policy value.</summary>
    private bool MatchesAnyPolicyValue(string value, AccessRequest request)
    {
        switch (_family)
        {
            case Family.String:
            case Family.StringIgnoreCase:
                var comparison = _family == Family.String ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
                foreach (var text in _texts)
                {
                    if (text.TryResolve(request, out var resolved, out _) && string.Equals(value, resolved, comparison))
                    {
                        return true;
                    }
                }
                return false;
            case Family.StringLike:
                for (var i = 0; i < _texts.Length; i++)
                {
                    if (_texts[i].ResolvePattern(request, _patterns[i], ignoreCase: false)?.IsMatch(value) == true)
                    {
                        return true;
                    }
                }
                return false;
            case Family.Arn:
                for (var i = 0; i < _texts.Length; i++)
                {
                    var pattern = _arns[i];
                    if (pattern is null && _texts[i].TryResolve(request, out var resolved, out var literal))
                    {
                        pattern = ArnPattern.Create(resolved, literal);
                    }
                    if (pattern?.IsMatch(value) == true)
                    {
                        return true;
                    }
                }
                return false;
            case Family.Numeric:
                if (!TryParseNumber(value, out var number))
                {
                    return false;
                }
                foreach (var policyNumber in _numbers)
                {
                    if (Compare(number.CompareTo(policyNumber)))
                    {
                        return true;
                    }
                }
                return false;
            case Family.Date:
                if (!TryParseDate(value, out var date))
                {
                    return false;
                }
                foreach (var policyDate in _dates)
                {
                    if (Compare(date.CompareTo(policyDate)))
                    {
                        return true;
                    }
                }
                return false;
            case Family.Bool:
                foreach (var expected in _booleans)
                {
                    if (bool.TryParse(value, out var actual) && actual == expected)
                    {
                        return true;
                    }
                }
                return false;
            case Family.Ip:
                if (!IPAddress.TryParse(value, out var address))
                {
                    return false;
                }
                foreach (var range in _ranges)
                {
                    if (range.Contains(address))
                    {
                        return true;
                    }
                }
                return false;
            default:
                return false;
        }
    }

    private bool Compare(int order) => _comparison switch
    {
        Comparison.Equal => order == 0,
        Comparison.LessThan => order < 0,
        Comparison.LessThanEquals => order <= 0,
        Comparison.GreaterThan => order > 0,
        _ => order >= 0,
    };

    /// <summary>True when every value of an IpAddress condition is a whole address space (0.0.0.0/0, ::/0).</summary>
    internal bool CoversAllAddresses()
    {
        foreach (var range in _ranges)
        {
            if (range.PrefixLength != 0)
            {
                return false;
            }
        }
        return true;
    }

    private static bool TryParseNumber(string text, out double number) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out number) && double.IsFinite(number);

    /// <summary>ISO 8601 (a bare date or date-time; no zone means UTC) or epoch seconds.</summary>
    internal static bool TryParseDate(string text, out long utcTicks)
    {
        utcTicks = 0;
        var trimmed = text.AsSpan().Trim();
        if (trimmed.Length > 0 && (char.IsAsciiDigit(trimmed[0]) || trimmed[0] == '-') && !trimmed[1..].ContainsAny('-', ':')
            && double.TryParse(trimmed, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds))
        {
            const double MaxSeconds = 253402300799; // 9999-12-31T23:59:59Z
            if (seconds < -62135596800 || seconds > MaxSeconds)
            {
                return false;
            }
            utcTicks = DateTimeOffset.UnixEpoch.UtcTicks + (long)(seconds * TimeSpan.TicksPerSecond);
            return true;
        }
        if (DateTimeOffset.TryParse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
        {
            utcTicks = parsed.UtcTicks;
            return true;
        }
        return false;
    }
}

/// <summary>An ARN pattern matched segment by segment (partition, service, region, account, resource) as
/// ArnLike/ArnEquals do: a wildcard does not cross the first five colons, but may span colons in the resource
/// part. A policy value that does not start with <c>arn:</c> (e.g. <c>*</c>) is matched against the whole
/// request value; one that starts with <c>arn:</c> but has fewer than six segments matches nothing.</summary>
internal sealed class ArnPattern
{
    private readonly WildcardPattern[]? _segments;
    private readonly WildcardPattern? _whole;

    private ArnPattern(WildcardPattern[]? segments, WildcardPattern? whole)
    {
        _segments = segments;
        _whole = whole;
    }

    public static ArnPattern Create(string text, bool[]? literal)
    {
        Span<Range> ranges = stackalloc Range[6];
        if (!text.StartsWith("arn:", StringComparison.Ordinal))
        {
            return new ArnPattern(null, new WildcardPattern(text, ignoreCase: false, literal));
        }
        if (!TrySplit(text, ranges))
        {
            return new ArnPattern(null, null);
        }
        var segments = new WildcardPattern[6];
        for (var i = 0; i < 6; i++)
        {
            var (offset, length) = ranges[i].GetOffsetAndLength(text.Length);
            segments[i] = new WildcardPattern(text.Substring(offset, length), ignoreCase: false, literal?.AsSpan(offset, length).ToArray());
        }
        return new ArnPattern(segments, null);
    }

    public bool IsMatch(string value)
    {
        if (_whole is not null)
        {
            return _whole.IsMatch(value);
        }
        if (_segments is null)
        {
            return false;
        }
        Span<Range> ranges = stackalloc Range[6];
        if (!TrySplit(value, ranges) || !value.StartsWith("arn:", StringComparison.Ordinal))
        {
            return false;
        }
        for (var i = 0; i < 6; i++)
        {
            if (!_segments![i].IsMatch(value.AsSpan()[ranges[i]]))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Splits at the first five colons; false when there are fewer than five.</summary>
    private static bool TrySplit(string text, Span<Range> ranges)
    {
        var start = 0;
        for (var i = 0; i < 5; i++)
        {
            var colon = text.IndexOf(':', start);
            if (colon < 0)
            {
                return false;
            }
            ranges[i] = new Range(start, colon);
            start = colon + 1;
        }
        ranges[5] = new Range(start, text.Length);
        return true;
    }
}

/// <summary>An IPv4 or IPv6 CIDR block (a single address is /32 or /128). IPv4-mapped IPv6 addresses are
/// compared as IPv4, both in the policy (::ffff:10.0.0.0/104 is 10.0.0.0/8) and in the request. Host bits
/// set in the policy's network address are ignored, as AWS does.</summary>
internal readonly struct IpRange
{
    private readonly byte[] _network;

    private IpRange(byte[] network, int prefixLength)
    {
        _network = network;
        PrefixLength = prefixLength;
    }

    public int PrefixLength { get; }

    public static bool TryParse(string text, out IpRange range)
    {
        range = default;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text.AsSpan() : text.AsSpan(0, slash);
        if (addressText.Contains('%') || !IPAddress.TryParse(addressText, out var address)
            || address.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            return false;
        }
        var bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var prefix = bits;
        if (slash >= 0 && (!int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > bits))
        {
            return false;
        }
        if (address.IsIPv4MappedToIPv6 && prefix >= 96)
        {
            address = address.MapToIPv4();
            prefix -= 96;
        }
        range = new IpRange(address.GetAddressBytes(), prefix);
        return true;
    }

    public bool Contains(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6 && _network.Length == 4)
        {
            address = address.MapToIPv4();
        }
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written) || written != _network.Length)
        {
            return false;
        }
        var full = PrefixLength / 8;
        if (!bytes[..full].SequenceEqual(_network.AsSpan(0, full)))
        {
            return false;
        }
        var remaining = PrefixLength % 8;
        if (remaining == 0)
        {
            return true;
        }
        var mask = (byte)(0xFF << (8 - remaining));
        return (bytes[full] & mask) == (_network[full] & mask);
    }
}
