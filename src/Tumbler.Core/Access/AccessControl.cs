using System.Collections.Concurrent;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Access;

/// <summary>What an operation asks to do: the IAM action and the condition keys its request carries.</summary>
public sealed class Demand(string action)
{
    private Dictionary<string, IReadOnlyList<string>>? _keys;

    public string Action { get; } = action;

    public static Demand SecretsManager(string operation) => new("secretsmanager:" + operation);

    public Demand With(string key, string? value) => value is null ? this : With(key, [value]);

    public Demand With(string key, IReadOnlyList<string>? values)
    {
        if (values is not null)
        {
            (_keys ??= new(StringComparer.OrdinalIgnoreCase))[key] = values;
        }
        return this;
    }

    /// <summary>aws:RequestTag/KEY for each tag and aws:TagKeys, as on CreateSecret and TagResource.</summary>
    public Demand WithRequestTags(IReadOnlyList<Tag>? tags)
    {
        if (tags is null)
        {
            return this;
        }
        foreach (var tag in tags)
        {
            With("aws:RequestTag/" + tag.Key, tag.Value);
        }
        return With("aws:TagKeys", [.. tags.Select(t => t.Key ?? "")]);
    }

    /// <summary>The values the request carries for a condition key (case-insensitive), or null.</summary>
    internal IReadOnlyList<string>? Find(string key) => _keys?.GetValueOrDefault(key);

    internal IEnumerable<string> Keys => _keys?.Keys ?? Enumerable.Empty<string>();
}

/// <summary>
/// Decides whether a call may proceed, as AWS does for one account: an explicit Deny in any policy
/// wins, then an Allow from an identity policy or the secret's resource policy, else denied. Fails
/// closed: a stored policy that no longer parses denies.
/// </summary>
public sealed class AccessControl(TimeProvider time)
{
    private const int MaxCachedPolicies = 4096;
    private readonly ConcurrentDictionary<string, PolicyDocument?> _resourcePolicies = new(StringComparer.Ordinal);

    /// <summary>Throws AccessDeniedException unless the caller may perform <paramref name="demand"/> on <paramref name="resource"/>.</summary>
    /// <param name="shownAs">What the message names as the resource, when not <paramref name="resource"/> (a secret: the id as the caller gave it).</param>
    public void Require(CallContext call, Demand demand, string resource, SecretEntity? secret = null, string? shownAs = null)
    {
        if (call.Principal.Unrestricted)
        {
            return;
        }
        var (decision, deniedBy) = Decide(call, demand, resource, secret);
        if (decision == PolicyDecision.Allow)
        {
            return;
        }
        var reason = deniedBy switch
        {
            PolicyKind.Identity => "with an explicit deny in an identity-based policy",
            PolicyKind.Resource => "with an explicit deny in a resource-based policy",
            _ => $"because no identity-based policy allows the {demand.Action} action",
        };
        throw new ServiceException(ErrorCodes.AccessDenied,
            $"User: {call.Principal.Arn} is not authorized to perform: {demand.Action} on resource: {shownAs ?? resource} {reason}");
    }

    public bool IsAllowed(CallContext call, Demand demand, string resource, SecretEntity? secret = null) =>
        call.Principal.Unrestricted || Decide(call, demand, resource, secret).Decision == PolicyDecision.Allow;

    private (PolicyDecision Decision, PolicyKind? DeniedBy) Decide(CallContext call, Demand demand, string resource, SecretEntity? secret)
    {
        var principal = call.Principal;
        var request = new AccessRequest(principal.Arn, principal.AccountId, demand.Action, resource,
            new ConditionKeys(call, demand, resource, secret, time.GetUtcNow()));
        PolicyDocument? resourcePolicy = null;
        if (secret?.ResourcePolicy is { } text && !TryParseResourcePolicy(text, out resourcePolicy))
        {
            return (PolicyDecision.ExplicitDeny, PolicyKind.Resource);
        }
        var decision = PolicyEvaluator.Evaluate(principal.IdentityPolicies, resourcePolicy, request);
        if (decision != PolicyDecision.ExplicitDeny)
        {
            return (decision, null);
        }
        // Name the policy that denied, as AWS's message does.
        var identityAlone = PolicyEvaluator.Evaluate(principal.IdentityPolicies, null, request);
        return (decision, identityAlone == PolicyDecision.ExplicitDeny ? PolicyKind.Identity : PolicyKind.Resource);
    }

    private bool TryParseResourcePolicy(string text, out PolicyDocument? policy)
    {
        if (!_resourcePolicies.TryGetValue(text, out policy))
        {
            try
            {
                policy = PolicyDocument.Parse(text, PolicyKind.Resource);
            }
            catch (MalformedPolicyException)
            {
                policy = null;
            }
            if (_resourcePolicies.Count >= MaxCachedPolicies)
            {
                _resourcePolicies.Clear();
            }
            _resourcePolicies[text] = policy;
        }
        return policy is not null;
    }
}
