namespace Tumbler.Core.Access;

/// <summary>The outcome of evaluating policies for one request, as AWS names it.</summary>
public enum PolicyDecision { ImplicitDeny, Allow, ExplicitDeny }

/// <summary>
/// What is being asked. Condition keys are matched case-insensitively by key name; values are lists
/// (single-valued keys have one value; an absent key is simply not in the dictionary). A dictionary built
/// with <see cref="StringComparer.OrdinalIgnoreCase"/> (or the server's own <see cref="ConditionKeys"/>) is looked up
/// directly; any other one is also scanned case-insensitively when the exact key is missing.
/// </summary>
/// <remarks><c>aws:PrincipalArn</c> and <c>aws:PrincipalAccount</c> always have a value, as in AWS: when the
/// context does not carry them they are taken from <see cref="PrincipalArn"/> and <see cref="AccountId"/>.</remarks>
public sealed record AccessRequest(
    string PrincipalArn,
    string AccountId,
    string Action,
    string Resource,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Context)
{
    /// <summary>The values of a context key (case-insensitive), or null when the key is absent.</summary>
    public IReadOnlyList<string>? GetContextValues(string key)
    {
        if (Context.TryGetValue(key, out var values))
        {
            return values;
        }
        var caseInsensitive = Context is ConditionKeys
            || (Context is Dictionary<string, IReadOnlyList<string>> dictionary && ReferenceEquals(dictionary.Comparer, StringComparer.OrdinalIgnoreCase));
        if (!caseInsensitive)
        {
            foreach (var pair in Context)
            {
                if (string.Equals(pair.Key, key, StringComparison.OrdinalIgnoreCase))
                {
                    return pair.Value;
                }
            }
        }
        if (string.Equals(key, "aws:PrincipalArn", StringComparison.OrdinalIgnoreCase))
        {
            return [PrincipalArn];
        }
        if (string.Equals(key, "aws:PrincipalAccount", StringComparison.OrdinalIgnoreCase))
        {
            return [AccountId];
        }
        return null;
    }
}
