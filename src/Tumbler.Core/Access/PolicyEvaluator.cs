namespace Tumbler.Core.Access;

/// <summary>
/// AWS's evaluation logic for requests within one account: a matching Deny statement in any policy wins
/// (ExplicitDeny); otherwise a matching Allow in an identity policy or in the resource policy allows;
/// otherwise the request is implicitly denied. (Within one account a resource-policy Allow that names the
/// principal suffices on its own; see <see cref="PolicyPrincipal"/> for how an account principal counts.)
/// Each document must have been parsed as the kind it is used as (an identity policy has no Principal to
/// check, so using one as the resource policy would grant every caller): a mismatch is an ArgumentException.
/// </summary>
public static class PolicyEvaluator
{
    public static PolicyDecision Evaluate(IEnumerable<PolicyDocument> identityPolicies, PolicyDocument? resourcePolicy, AccessRequest request)
    {
        ArgumentNullException.ThrowIfNull(identityPolicies);
        ArgumentNullException.ThrowIfNull(request);
        var allowed = false;
        if (identityPolicies is IReadOnlyList<PolicyDocument> list)
        {
            for (var i = 0; i < list.Count; i++)
            {
                switch (CheckKind(list[i], PolicyKind.Identity).Evaluate(request))
                {
                    case PolicyDecision.ExplicitDeny:
                        return PolicyDecision.ExplicitDeny;
                    case PolicyDecision.Allow:
                        allowed = true;
                        break;
                }
            }
        }
        else
        {
            foreach (var policy in identityPolicies)
            {
                switch (CheckKind(policy, PolicyKind.Identity).Evaluate(request))
                {
                    case PolicyDecision.ExplicitDeny:
                        return PolicyDecision.ExplicitDeny;
                    case PolicyDecision.Allow:
                        allowed = true;
                        break;
                }
            }
        }
        if (resourcePolicy is not null)
        {
            switch (CheckKind(resourcePolicy, PolicyKind.Resource).Evaluate(request))
            {
                case PolicyDecision.ExplicitDeny:
                    return PolicyDecision.ExplicitDeny;
                case PolicyDecision.Allow:
                    allowed = true;
                    break;
            }
        }
        return allowed ? PolicyDecision.Allow : PolicyDecision.ImplicitDeny;
    }

    private static PolicyDocument CheckKind(PolicyDocument policy, PolicyKind kind) =>
        policy.Kind == kind ? policy : throw new ArgumentException($"A policy parsed as {policy.Kind} cannot be evaluated as a {kind} policy.");
}
