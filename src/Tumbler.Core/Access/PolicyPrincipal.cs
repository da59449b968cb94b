namespace Tumbler.Core.Access;

/// <summary>
/// The principals a resource-policy statement names in <c>Principal</c> or <c>NotPrincipal</c>.
/// </summary>
/// <remarks>
/// Matching, for same-account evaluation as Tumbler does it:
/// <list type="bullet">
/// <item><c>"*"</c> or <c>{"AWS": "*"}</c> matches anyone.</item>
/// <item>A user/role/assumed-role ARN matches exactly that principal ARN. Wildcards are not allowed in a
/// principal ARN (AWS rejects them too), only the lone <c>*</c>.</item>
/// <item>An account (<c>123456789012</c> or <c>arn:aws:iam::123456789012:root</c>): in an Allow, naming the
/// account delegates to that account's identity policies and grants nothing by itself, so it matches only the
/// account root principal; in a Deny it matches every principal of the account.</item>
/// <item>Service, Federated and CanonicalUser principals are accepted and never match (Tumbler has none).</item>
/// <item>NotPrincipal matches a principal that is not listed; "listed" means the ARN is named exactly, the
/// list holds <c>*</c>, or the principal is the root of a listed account (an account entry excludes its root,
/// not its users).</item>
/// </list>
/// </remarks>
public sealed class PolicyPrincipal
{
    private readonly HashSet<string> _arns;
    private readonly string[] _accountIds;
    private readonly HashSet<string> _accountRoots;

    private PolicyPrincipal(bool isWildcard, IReadOnlyList<string> awsValues, HashSet<string> arns, string[] accountIds,
        HashSet<string> accountRoots, IReadOnlyList<string> otherValues)
    {
        IsWildcard = isWildcard;
        AwsValues = awsValues;
        _arns = arns;
        _accountIds = accountIds;
        _accountRoots = accountRoots;
        OtherValues = otherValues;
    }

    /// <summary>True when anyone is named (<c>"*"</c> or <c>{"AWS": "*"}</c>).</summary>
    public bool IsWildcard { get; }

    /// <summary>The values of the AWS key as written (for <c>"*"</c>: one value, <c>*</c>).</summary>
    public IReadOnlyList<string> AwsValues { get; }

    /// <summary>Service/Federated/CanonicalUser values, as <c>Key:value</c>; they never match.</summary>
    public IReadOnlyList<string> OtherValues { get; }

    internal static PolicyPrincipal Wildcard() => new(true, ["*"], [], [], [], []);

    /// <summary>Compiles the AWS values; throws for a value that is not <c>*</c>, an account id or an ARN
    /// without wildcards.</summary>
    internal static PolicyPrincipal Create(IReadOnlyList<string> awsValues, IReadOnlyList<string> otherValues, string where)
    {
        var wildcard = false;
        var arns = new HashSet<string>(StringComparer.Ordinal);
        var accountIds = new List<string>();
        var roots = new HashSet<string>(StringComparer.Ordinal);
        foreach (var value in awsValues)
        {
            if (value == "*")
            {
                wildcard = true;
            }
            else if (IsAccountId(value))
            {
                accountIds.Add(value);
                roots.Add($"arn:aws:iam::{value}:root");
            }
            else if (value.StartsWith("arn:", StringComparison.Ordinal))
            {
                if (value.AsSpan().IndexOfAny('*', '?') >= 0)
                {
                    throw new MalformedPolicyException($"{where}: principal '{value}' contains a wildcard; only \"*\" alone may name every principal.");
                }
                var parts = value.Split(':', 6);
                if (parts.Length < 6 || parts[1].Length == 0 || parts[2].Length == 0 || parts[5].Length == 0)
                {
                    throw new MalformedPolicyException($"{where}: principal '{value}' is not a valid ARN.");
                }
                if (parts[2] == "iam" && parts[5] == "root" && IsAccountId(parts[4]))
                {
                    accountIds.Add(parts[4]);
                    roots.Add(value);
                }
                else
                {
                    arns.Add(value);
                }
            }
            else
            {
                throw new MalformedPolicyException($"{where}: principal '{value}' must be \"*\", a 12-digit account id or an ARN.");
            }
        }
        return new PolicyPrincipal(wildcard, awsValues, arns, [.. accountIds], roots, otherValues);
    }

    /// <summary>Whether a Principal element of a statement with this effect matches the requester.</summary>
    internal bool Matches(AccessRequest request, PolicyEffect effect)
    {
        if (IsWildcard || _arns.Contains(request.PrincipalArn))
        {
            return true;
        }
        if (effect == PolicyEffect.Allow)
        {
            return _accountRoots.Contains(request.PrincipalArn);
        }
        foreach (var account in _accountIds)
        {
            if (string.Equals(account, request.AccountId, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return _accountRoots.Contains(request.PrincipalArn);
    }

    /// <summary>Whether a NotPrincipal element matches the requester: it is not among those listed.</summary>
    internal bool MatchesAsNotPrincipal(AccessRequest request) =>
        !(IsWildcard || _arns.Contains(request.PrincipalArn) || _accountRoots.Contains(request.PrincipalArn));

    private static bool IsAccountId(string value)
    {
        if (value.Length != 12)
        {
            return false;
        }
        foreach (var c in value)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }
        return true;
    }
}
