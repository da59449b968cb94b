using Tumbler.Core.Access;

namespace Tumbler.Core.Tests.Access;

/// <summary>Small builders so each test reads as the policy and the request it is about.</summary>
internal static class PolicyTestKit
{
    public const string Account = "123456789012";
    public const string Alice = "arn:aws:iam::123456789012:user/alice";
    public const string Bob = "arn:aws:iam::123456789012:user/bob";
    public const string Root = "arn:aws:iam::123456789012:root";
    public const string SecretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app/db-AbCdEf";
    public const string GetSecretValue = "secretsmanager:GetSecretValue";

    public static PolicyDocument Identity(string json) => PolicyDocument.Parse(json, PolicyKind.Identity);

    public static PolicyDocument ResourcePolicy(string json) => PolicyDocument.Parse(json, PolicyKind.Resource);

    /// <summary>An identity policy with one statement; <paramref name="extra"/> is spliced into the statement.</summary>
    public static PolicyDocument IdentityStatement(string effect, string action, string resource, string extra = "") =>
        Identity($$$"""{"Version":"2012-10-17","Statement":{"Effect":"{{{effect}}}","Action":{{{action}}},"Resource":{{{resource}}}{{{extra}}}}}""");

    /// <summary>Allow GetSecretValue on everything when <paramref name="condition"/> holds.</summary>
    public static PolicyDocument AllowWhen(string condition) =>
        IdentityStatement("Allow", "\"secretsmanager:GetSecretValue\"", "\"*\"", $",\"Condition\":{condition}");

    public static AccessRequest Request(string principal = Alice, string action = GetSecretValue, string resource = SecretArn,
        params (string Key, string[] Values)[] context)
    {
        var dictionary = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, values) in context)
        {
            dictionary[key] = values;
        }
        var account = principal.Split(':')[4];
        return new AccessRequest(principal, account, action, resource, dictionary);
    }

    public static AccessRequest With(params (string Key, string[] Values)[] context) => Request(context: context);

    public static (string, string[]) Key(string key, params string[] values) => (key, values);

    public static PolicyDecision Decide(PolicyDocument? identity, PolicyDocument? resource, AccessRequest request) =>
        PolicyEvaluator.Evaluate(identity is null ? [] : [identity], resource, request);

    public static bool Allows(PolicyDocument identity, AccessRequest request) =>
        PolicyEvaluator.Evaluate([identity], null, request) == PolicyDecision.Allow;
}
