using System.Text.Json;

namespace Tumbler.Core.Access;

/// <summary>Resource policies require Principal/NotPrincipal; identity policies forbid them.</summary>
public enum PolicyKind { Identity, Resource }

/// <summary>A policy document that does not follow the IAM policy grammar. The message says what is wrong
/// and where, e.g. <c>Statement 2: Effect must be Allow or Deny.</c></summary>
public sealed class MalformedPolicyException(string message) : Exception(message);

/// <summary>
/// A parsed, validated and compiled IAM policy. Parsing is strict: element names are case-sensitive as AWS
/// writes them (<c>Version</c>, <c>Statement</c>, <c>Effect</c>...), unknown or repeated members are errors,
/// and every value is checked (actions, resources, principals, condition operators and typed condition values),
/// so evaluation never meets a surprise. The caller enforces the size limit.
/// </summary>
public sealed class PolicyDocument
{
    public const string Version2012 = "2012-10-17";
    public const string Version2008 = "2008-10-17";

    private static readonly JsonDocumentOptions JsonOptions = new()
    {
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
        MaxDepth = 32,
    };

    private readonly PolicyStatement[] _statements;

    private PolicyDocument(string text, PolicyKind kind, string? version, string? id, PolicyStatement[] statements)
    {
        Text = text;
        Kind = kind;
        Version = version;
        Id = id;
        _statements = statements;
    }

    /// <summary>The exact text parsed.</summary>
    public string Text { get; }

    public PolicyKind Kind { get; }

    /// <summary>The Version as written; null when absent (AWS then uses 2008-10-17: no policy variables).</summary>
    public string? Version { get; }

    public string? Id { get; }

    public IReadOnlyList<PolicyStatement> Statements => _statements;

    /// <summary>Strict parse; throws <see cref="MalformedPolicyException"/>.</summary>
    public static PolicyDocument Parse(string json, PolicyKind kind)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new MalformedPolicyException($"The policy is not valid JSON: {e.Message}");
        }
        using (document)
        {
            EnsureStringsReadable(document.RootElement);
            return Parse(json, kind, document.RootElement);
        }
    }

    /// <summary>
    /// JsonDocument checks escapes only when a string is read: "\ud800" (half a surrogate pair) passes the parse and would
    /// throw InvalidOperationException later, so every member name and string is read once here.
    /// </summary>
    private static void EnsureStringsReadable(JsonElement element)
    {
        try
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var member in element.EnumerateObject())
                    {
                        _ = member.Name;
                        EnsureStringsReadable(member.Value);
                    }
                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        EnsureStringsReadable(item);
                    }
                    break;
                case JsonValueKind.String:
                    _ = element.GetString();
                    break;
            }
        }
        catch (InvalidOperationException e)
        {
            throw new MalformedPolicyException($"The policy is not valid JSON: {e.Message}");
        }
    }

    /// <summary>This policy's own verdict: ExplicitDeny when a matching statement denies, Allow when one allows,
    /// otherwise ImplicitDeny.</summary>
    public PolicyDecision Evaluate(AccessRequest request)
    {
        var decision = PolicyDecision.ImplicitDeny;
        foreach (var statement in _statements)
        {
            if (statement.Applies(request))
            {
                if (statement.Effect == PolicyEffect.Deny)
                {
                    return PolicyDecision.ExplicitDeny;
                }
                decision = PolicyDecision.Allow;
            }
        }
        return decision;
    }

    private static PolicyDocument Parse(string text, PolicyKind kind, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new MalformedPolicyException("The policy must be a JSON object.");
        }
        string? version = null;
        string? id = null;
        JsonElement? statementElement = null;
        foreach (var member in Members(root, "The policy"))
        {
            switch (member.Name)
            {
                case "Version":
                    version = String(member.Value, "The policy", "Version");
                    if (version is not (Version2012 or Version2008))
                    {
                        throw new MalformedPolicyException($"The policy Version must be {Version2012} or {Version2008}, not '{version}'.");
                    }
                    break;
                case "Id":
                    id = String(member.Value, "The policy", "Id");
                    break;
                case "Statement":
                    statementElement = member.Value;
                    break;
                default:
                    throw new MalformedPolicyException($"The policy has an unknown member '{member.Name}' (expected Version, Id, Statement).");
            }
        }
        if (statementElement is not { } statements)
        {
            throw new MalformedPolicyException("The policy has no Statement.");
        }
        var elements = statements.ValueKind switch
        {
            JsonValueKind.Object => [statements],
            JsonValueKind.Array => statements.EnumerateArray().ToArray(),
            _ => throw new MalformedPolicyException("The policy Statement must be an object or an array of objects."),
        };
        if (elements.Length == 0)
        {
            throw new MalformedPolicyException("The policy Statement is empty; it needs at least one statement.");
        }
        var variablesEnabled = version == Version2012;
        var parsed = new PolicyStatement[elements.Length];
        var sids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < elements.Length; i++)
        {
            parsed[i] = ParseStatement(elements[i], i + 1, kind, variablesEnabled);
            if (parsed[i].Sid is { } sid && !sids.Add(sid))
            {
                throw new MalformedPolicyException($"Statement {i + 1}: Sid '{sid}' is used by another statement; Sids must be unique.");
            }
        }
        return new PolicyDocument(text, kind, version, id, parsed);
    }

    private static PolicyStatement ParseStatement(JsonElement element, int number, PolicyKind kind, bool variablesEnabled)
    {
        var where = $"Statement {number}";
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new MalformedPolicyException($"{where}: a statement must be a JSON object.");
        }
        string? sid = null;
        PolicyEffect? effect = null;
        IReadOnlyList<string>? actions = null, notActions = null, resources = null, notResources = null;
        JsonElement? principal = null, notPrincipal = null, condition = null;
        foreach (var member in Members(element, where))
        {
            switch (member.Name)
            {
                case "Sid":
                    sid = String(member.Value, where, "Sid");
                    break;
                case "Effect":
                    effect = member.Value.ValueKind == JsonValueKind.String ? member.Value.GetString() switch
                    {
                        "Allow" => PolicyEffect.Allow,
                        "Deny" => PolicyEffect.Deny,
                        _ => null,
                    } : null;
                    if (effect is null)
                    {
                        throw new MalformedPolicyException($"{where}: Effect must be Allow or Deny.");
                    }
                    break;
                case "Action":
                    actions = StringList(member.Value, where, "Action");
                    break;
                case "NotAction":
                    notActions = StringList(member.Value, where, "NotAction");
                    break;
                case "Resource":
                    resources = StringList(member.Value, where, "Resource");
                    break;
                case "NotResource":
                    notResources = StringList(member.Value, where, "NotResource");
                    break;
                case "Principal":
                    principal = member.Value;
                    break;
                case "NotPrincipal":
                    notPrincipal = member.Value;
                    break;
                case "Condition":
                    condition = member.Value;
                    break;
                default:
                    throw new MalformedPolicyException(
                        $"{where}: unknown member '{member.Name}' (expected Sid, Effect, Principal, NotPrincipal, Action, NotAction, Resource, NotResource, Condition).");
            }
        }
        if (effect is null)
        {
            throw new MalformedPolicyException($"{where}: Effect is required (Allow or Deny).");
        }
        var (actionList, isNotAction) = ExactlyOne(actions, notActions, where, "Action", "NotAction");
        foreach (var action in actionList)
        {
            ValidateAction(action, where);
        }
        var (resourceList, isNotResource) = ExactlyOne(resources, notResources, where, "Resource", "NotResource");
        foreach (var resource in resourceList)
        {
            if (resource != "*" && !resource.StartsWith("arn:", StringComparison.Ordinal))
            {
                throw new MalformedPolicyException($"{where}: Resource '{resource}' must be \"*\" or an ARN (arn:partition:service:region:account:resource).");
            }
        }
        PolicyPrincipal? principals = null;
        var isNotPrincipal = notPrincipal is not null;
        if (kind == PolicyKind.Identity)
        {
            if (principal is not null || notPrincipal is not null)
            {
                throw new MalformedPolicyException($"{where}: an identity policy cannot have {(principal is not null ? "Principal" : "NotPrincipal")}; the principal is the identity the policy is attached to.");
            }
        }
        else
        {
            if (principal is not null && notPrincipal is not null)
            {
                throw new MalformedPolicyException($"{where}: has both Principal and NotPrincipal; use exactly one.");
            }
            if (principal is null && notPrincipal is null)
            {
                throw new MalformedPolicyException($"{where}: a resource policy statement needs Principal or NotPrincipal.");
            }
            principals = ParsePrincipal((principal ?? notPrincipal)!.Value, where, isNotPrincipal ? "NotPrincipal" : "Principal");
        }
        var conditions = condition is { } c ? ParseConditions(c, where, variablesEnabled) : [];
        return new PolicyStatement(number, sid, effect.Value, actionList, isNotAction, resourceList, isNotResource,
            principals, isNotPrincipal, conditions, variablesEnabled);
    }

    private static (IReadOnlyList<string> Values, bool IsNot) ExactlyOne(IReadOnlyList<string>? positive, IReadOnlyList<string>? negative,
        string where, string name, string notName)
    {
        if (positive is not null && negative is not null)
        {
            throw new MalformedPolicyException($"{where}: has both {name} and {notName}; use exactly one.");
        }
        if (positive is null && negative is null)
        {
            throw new MalformedPolicyException($"{where}: {name} or {notName} is required.");
        }
        return positive is not null ? (positive, false) : (negative!, true);
    }

    private static void ValidateAction(string action, string where)
    {
        if (action == "*")
        {
            return;
        }
        var colon = action.IndexOf(':', StringComparison.Ordinal);
        var valid = colon > 0 && colon < action.Length - 1 && action.IndexOf(':', colon + 1) < 0;
        foreach (var ch in action)
        {
            valid &= char.IsAsciiLetterOrDigit(ch) || ch is ':' or '-' or '*' or '?' or '_';
        }
        if (!valid)
        {
            throw new MalformedPolicyException($"{where}: Action '{action}' must be \"*\" or service:action (e.g. secretsmanager:GetSecretValue).");
        }
    }

    private static PolicyPrincipal ParsePrincipal(JsonElement element, string where, string name)
    {
        if (element.ValueKind == JsonValueKind.String)
        {
            return element.GetString() == "*"
                ? PolicyPrincipal.Wildcard()
                : throw new MalformedPolicyException($"{where}: {name} must be \"*\" or an object such as {{\"AWS\": \"arn:aws:iam::123456789012:root\"}}.");
        }
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new MalformedPolicyException($"{where}: {name} must be \"*\" or an object such as {{\"AWS\": \"arn:aws:iam::123456789012:root\"}}.");
        }
        IReadOnlyList<string> aws = [];
        var others = new List<string>();
        var any = false;
        foreach (var member in Members(element, $"{where}: {name}"))
        {
            any = true;
            var values = StringList(member.Value, where, $"{name} {member.Name}");
            switch (member.Name)
            {
                case "AWS":
                    aws = values;
                    break;
                case "Service":
                case "Federated":
                case "CanonicalUser":
                    foreach (var value in values)
                    {
                        others.Add($"{member.Name}:{value}");
                    }
                    break;
                default:
                    throw new MalformedPolicyException($"{where}: {name} has an unknown key '{member.Name}' (expected AWS, Service, Federated or CanonicalUser).");
            }
        }
        if (!any)
        {
            throw new MalformedPolicyException($"{where}: {name} names no principal.");
        }
        return PolicyPrincipal.Create(aws, others, $"{where}: {name}");
    }

    private static PolicyCondition[] ParseConditions(JsonElement element, string where, bool variablesEnabled)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new MalformedPolicyException($"{where}: Condition must be an object of operators, e.g. {{\"StringEquals\": {{\"aws:username\": \"alice\"}}}}.");
        }
        var conditions = new List<PolicyCondition>();
        foreach (var op in Members(element, $"{where}: Condition"))
        {
            if (op.Value.ValueKind != JsonValueKind.Object)
            {
                throw new MalformedPolicyException($"{where}: condition operator {op.Name} must map condition keys to values.");
            }
            var keys = 0;
            var seenKeys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var key in Members(op.Value, $"{where}: condition {op.Name}"))
            {
                keys++;
                if (!seenKeys.Add(key.Name))
                {
                    throw new MalformedPolicyException($"{where}: condition {op.Name} names the key {key.Name} twice.");
                }
                var values = ConditionValues(key.Value, $"{where}: condition {op.Name} {key.Name}");
                conditions.Add(PolicyCondition.Create(op.Name, key.Name, values, variablesEnabled, where));
            }
            if (keys == 0)
            {
                throw new MalformedPolicyException($"{where}: condition operator {op.Name} names no condition key.");
            }
        }
        return [.. conditions];
    }

    private static string[] ConditionValues(JsonElement element, string where)
    {
        if (element.ValueKind == JsonValueKind.Array)
        {
            var values = new List<string>();
            foreach (var item in element.EnumerateArray())
            {
                values.Add(Scalar(item, where));
            }
            if (values.Count == 0)
            {
                throw new MalformedPolicyException($"{where}: the list of values is empty.");
            }
            return [.. values];
        }
        return [Scalar(element, where)];

        static string Scalar(JsonElement item, string where) => item.ValueKind switch
        {
            JsonValueKind.String => item.GetString()!,
            JsonValueKind.Number => item.GetRawText(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            _ => throw new MalformedPolicyException($"{where}: a condition value must be a string, a number or a boolean."),
        };
    }

    /// <summary>The members of an object, refusing duplicate names (System.Text.Json would keep the last).</summary>
    private static List<JsonProperty> Members(JsonElement element, string where)
    {
        var members = new List<JsonProperty>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var member in element.EnumerateObject())
        {
            if (!names.Add(member.Name))
            {
                throw new MalformedPolicyException($"{where} has the member '{member.Name}' twice.");
            }
            members.Add(member);
        }
        return members;
    }

    private static string String(JsonElement element, string where, string name) =>
        element.ValueKind == JsonValueKind.String
            ? element.GetString()!
            : throw new MalformedPolicyException($"{where}: {name} must be a string.");

    private static string[] StringList(JsonElement element, string where, string name)
    {
        string[] values;
        if (element.ValueKind == JsonValueKind.String)
        {
            values = [element.GetString()!];
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            values = new string[element.GetArrayLength()];
            var i = 0;
            foreach (var item in element.EnumerateArray())
            {
                values[i++] = item.ValueKind == JsonValueKind.String
                    ? item.GetString()!
                    : throw new MalformedPolicyException($"{where}: {name} must be a string or an array of strings.");
            }
            if (values.Length == 0)
            {
                throw new MalformedPolicyException($"{where}: {name} is an empty array.");
            }
        }
        else
        {
            throw new MalformedPolicyException($"{where}: {name} must be a string or an array of strings.");
        }
        foreach (var value in values)
        {
            if (value.Length == 0)
            {
                throw new MalformedPolicyException($"{where}: {name} contains an empty string.");
            }
        }
        return values;
    }
}
