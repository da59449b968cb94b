namespace Tumbler.Core.Access;

/// <summary>
/// AWS's evaluation logic for requests within one account: a matching Deny statement in any policy wins
/// (ExplicitDeny); otherwise a matching Allow in an identity policy or in the resource policy allows;
/// otherwise the request is implicitly denied. (Within one account a resource-policy Allow that names the
/// principal suffices on its own; see <see cref="PolicyPrincipal"/> for how an account principal counts.)
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
                switch (list[i].Evaluate(request))
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
                switch (policy.Evaluate(request))
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
            switch (resourcePolicy.Evaluate(request))
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
}
