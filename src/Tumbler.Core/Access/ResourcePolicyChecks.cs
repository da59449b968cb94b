namespace Tumbler.Core.Access;

/// <summary>One result of <see cref="ResourcePolicyChecks.Validate"/>, shaped like Secrets Manager's
/// <c>ValidationErrors</c> entries.</summary>
public sealed record PolicyFinding(string CheckName, string ErrorMessage);

/// <summary>The checks behind PutResourcePolicy's <c>BlockPublicPolicy</c> and ValidateResourcePolicy.</summary>
public static class ResourcePolicyChecks
{
    public const string SyntaxChecking = "SYNTAX_CHECKING";
    public const string BroadAccessChecking = "BROAD_ACCESS_CHECKING";

    /// <summary>Condition keys that, under a narrowing operator, keep a wildcard principal from being public.</summary>
    private static readonly HashSet<string> NarrowingKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "aws:PrincipalArn", "aws:PrincipalAccount", "aws:SourceIp", "aws:SourceVpc", "aws:SourceVpce",
    };

    /// <summary>
    /// True when some Allow statement grants access to every principal: <c>"Principal": "*"</c>,
    /// <c>{"AWS": "*"}</c> among its values, or any <c>NotPrincipal</c> (an Allow with NotPrincipal grants
    /// everyone but the few listed) — unless the statement has a narrowing condition. The rule is deliberately
    /// simple: a condition narrows when its key is aws:PrincipalArn, aws:PrincipalAccount, aws:SourceIp,
    /// aws:SourceVpc or aws:SourceVpce, its operator is positive (not a Not... operator), has no IfExists, no
    /// ForAllValues: qualifier (both hold when the key is absent) and is not Null; and its values are not all
    /// wildcard-only (<c>*</c>) or whole address spaces (<c>0.0.0.0/0</c>, <c>::/0</c>). Deny statements
    /// never grant anything.
    /// </summary>
    public static bool GrantsPublicAccess(PolicyDocument policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        foreach (var statement in policy.Statements)
        {
            if (IsPublicStatement(statement))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// An empty list when the policy is valid. A malformed policy gives one SYNTAX_CHECKING finding with the
    /// parser's message; otherwise each statement granting public access (see <see cref="GrantsPublicAccess"/>)
    /// gives one BROAD_ACCESS_CHECKING finding. (The lock-out check AWS also runs needs the caller's identity
    /// and is not done here.)
    /// </summary>
    public static IReadOnlyList<PolicyFinding> Validate(string json)
    {
        PolicyDocument policy;
        try
        {
            policy = PolicyDocument.Parse(json, PolicyKind.Resource);
        }
        catch (MalformedPolicyException e)
        {
            return [new PolicyFinding(SyntaxChecking, e.Message)];
        }
        var findings = new List<PolicyFinding>();
        foreach (var statement in policy.Statements)
        {
            if (IsPublicStatement(statement))
            {
                var name = statement.Sid is { } sid ? $"Statement {statement.Number} (Sid {sid})" : $"Statement {statement.Number}";
                findings.Add(new PolicyFinding(BroadAccessChecking,
                    $"{name} grants access to any principal without a condition on aws:PrincipalArn, aws:PrincipalAccount, "
                    + "aws:SourceIp, aws:SourceVpc or aws:SourceVpce, so the secret would be public."));
            }
        }
        return findings;
    }

    private static bool IsPublicStatement(PolicyStatement statement)
    {
        if (statement.Effect != PolicyEffect.Allow || statement.Principal is not { } principal)
        {
            return false;
        }
        if (!statement.IsNotPrincipal && !principal.IsWildcard)
        {
            return false;
        }
        foreach (var condition in statement.Conditions)
        {
            if (Narrows(condition))
            {
                return false;
            }
        }
        return true;
    }

    private static bool Narrows(PolicyCondition condition)
    {
        if (!NarrowingKeys.Contains(condition.Key) || condition.IsNegated || condition.IfExists || condition.IsNullCheck
            || condition.Qualifier == SetQualifier.ForAllValues)
        {
            return false;
        }
        if (condition.IsIpFamily)
        {
            return !condition.CoversAllAddresses();
        }
        foreach (var value in condition.Values)
        {
            if (!IsWildcardOnly(value))
            {
                return true;
            }
        }
        return false;
    }

    private static bool IsWildcardOnly(string value)
    {
        foreach (var c in value)
        {
            if (c is not ('*' or '?'))
            {
                return false;
            }
        }
        return true;
    }
}
