namespace Tumbler.Core.Access;

public enum PolicyEffect { Allow, Deny }

/// <summary>
/// One statement of a policy, compiled: action and resource patterns, principals and conditions are ready to
/// match without further parsing or allocation (except policy variables, resolved per request).
/// </summary>
public sealed class PolicyStatement
{
    private readonly WildcardPattern[] _actions;
    private readonly PolicyText[] _resources;
    private readonly WildcardPattern?[] _resourcePatterns;   // null where the resource has policy variables
    private readonly PolicyCondition[] _conditions;

    internal PolicyStatement(int number, string? sid, PolicyEffect effect, IReadOnlyList<string> actions, bool isNotAction,
        IReadOnlyList<string> resources, bool isNotResource, PolicyPrincipal? principal, bool isNotPrincipal,
        PolicyCondition[] conditions, bool variablesEnabled)
    {
        Number = number;
        Sid = sid;
        Effect = effect;
        Actions = actions;
        IsNotAction = isNotAction;
        Resources = resources;
        IsNotResource = isNotResource;
        Principal = principal;
        IsNotPrincipal = isNotPrincipal;
        _conditions = conditions;
        _actions = new WildcardPattern[actions.Count];
        for (var i = 0; i < _actions.Length; i++)
        {
            _actions[i] = new WildcardPattern(actions[i], ignoreCase: true);
        }
        _resources = new PolicyText[resources.Count];
        _resourcePatterns = new WildcardPattern?[resources.Count];
        for (var i = 0; i < _resources.Length; i++)
        {
            _resources[i] = PolicyText.Create(resources[i], variablesEnabled);
            _resourcePatterns[i] = _resources[i].HasVariables ? null : new WildcardPattern(resources[i], ignoreCase: false);
        }
    }

    /// <summary>1-based position in the policy, as error messages and findings name it.</summary>
    public int Number { get; }

    public string? Sid { get; }

    public PolicyEffect Effect { get; }

    /// <summary>The Action (or NotAction, see <see cref="IsNotAction"/>) values as written.</summary>
    public IReadOnlyList<string> Actions { get; }

    public bool IsNotAction { get; }

    /// <summary>The Resource (or NotResource, see <see cref="IsNotResource"/>) values as written.</summary>
    public IReadOnlyList<string> Resources { get; }

    public bool IsNotResource { get; }

    /// <summary>Principal or NotPrincipal (see <see cref="IsNotPrincipal"/>); null in identity policies.</summary>
    public PolicyPrincipal? Principal { get; }

    public bool IsNotPrincipal { get; }

    /// <summary>Every key of every operator; all must hold.</summary>
    public IReadOnlyList<PolicyCondition> Conditions => _conditions;

    /// <summary>Whether the statement applies to the request: action, resource, principal (resource policies)
    /// and every condition match. The effect is the caller's business.</summary>
    public bool Applies(AccessRequest request)
    {
        if (MatchesAny(_actions, request.Action) == IsNotAction)
        {
            return false;
        }
        if (MatchesResource(request) == IsNotResource)
        {
            return false;
        }
        if (Principal is not null
            && !(IsNotPrincipal ? Principal.MatchesAsNotPrincipal(request) : Principal.Matches(request, Effect)))
        {
            return false;
        }
        foreach (var condition in _conditions)
        {
            if (!condition.Matches(request))
            {
                return false;
            }
        }
        return true;
    }

    private static bool MatchesAny(WildcardPattern[] patterns, string value)
    {
        foreach (var pattern in patterns)
        {
            if (pattern.IsMatch(value))
            {
                return true;
            }
        }
        return false;
    }

    private bool MatchesResource(AccessRequest request)
    {
        for (var i = 0; i < _resources.Length; i++)
        {
            if (_resources[i].ResolvePattern(request, _resourcePatterns[i], ignoreCase: false)?.IsMatch(request.Resource) == true)
            {
                return true;
            }
        }
        return false;
    }
}
