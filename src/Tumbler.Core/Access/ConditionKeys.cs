using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Access;

/// <summary>
/// The condition keys of one access check, each worked out only when a policy's condition asks for it (most ask for
/// one or two, or none: building all of them for every check was most of the cost of a ListSecrets page, which checks
/// each of its 100 secrets). Key names match case-insensitively, as in AWS; the demand's own keys come first.
/// </summary>
internal sealed class ConditionKeys(CallContext call, Demand demand, string resource, SecretEntity? secret, DateTimeOffset now)
    : IReadOnlyDictionary<string, IReadOnlyList<string>>
{
    private const string SecretsManagerResourceTag = "secretsmanager:ResourceTag/";
    private const string AwsResourceTag = "aws:ResourceTag/";

    /// <summary>Every key that is not a tag or the demand's (enumeration asks each of these).</summary>
    private static readonly string[] FixedKeys =
    [
        "aws:PrincipalArn", "aws:PrincipalAccount", "aws:PrincipalType", "aws:CurrentTime", "aws:EpochTime", "aws:SecureTransport",
        "aws:username", "aws:SourceIp", "aws:UserAgent", "secretsmanager:SecretId",
    ];

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out IReadOnlyList<string> value)
    {
        value = demand.Find(key) ?? Find(key);
        return value is not null;
    }

    private IReadOnlyList<string>? Find(string key)
    {
        if (key.StartsWith(SecretsManagerResourceTag, StringComparison.OrdinalIgnoreCase))
        {
            return ResourceTag(key[SecretsManagerResourceTag.Length..]);
        }
        if (key.StartsWith(AwsResourceTag, StringComparison.OrdinalIgnoreCase))
        {
            return ResourceTag(key[AwsResourceTag.Length..]);
        }
        var principal = call.Principal;
        return key.ToLowerInvariant() switch
        {
            "aws:principalarn" => [principal.Arn],
            "aws:principalaccount" => [principal.AccountId],
            "aws:principaltype" => [principal.Arn.Contains(":user/", StringComparison.Ordinal) ? "User" : "Account"],
            "aws:currenttime" => [now.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)],
            "aws:epochtime" => [now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)],
            "aws:securetransport" => [call.Origin?.SecureTransport == true ? "true" : "false"],
            "aws:username" => principal.Arn.Contains(":user/", StringComparison.Ordinal) ? [principal.Arn[(principal.Arn.LastIndexOf('/') + 1)..]] : null,
            "aws:sourceip" => call.Origin?.SourceIp is { } sourceIp ? [sourceIp] : null,
            "aws:useragent" => call.Origin?.UserAgent is { } userAgent ? [userAgent] : null,
            "secretsmanager:secretid" => resource.StartsWith("arn:", StringComparison.Ordinal)
                && demand.Action.StartsWith("secretsmanager:", StringComparison.Ordinal) ? [resource] : null,
            _ => null,
        };
    }

    /// <summary>A tag of the secret; tag keys compare case-insensitively (the last of two that differ only in case wins).</summary>
    private IReadOnlyList<string>? ResourceTag(string tagKey) =>
        secret?.Tags?.LastOrDefault(tag => string.Equals(tag.Key, tagKey, StringComparison.OrdinalIgnoreCase)) is { } tag ? [tag.Value] : null;

    private Dictionary<string, IReadOnlyList<string>> All()
    {
        var all = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);
        var tagKeys = (secret?.Tags ?? []).SelectMany(tag => new[] { SecretsManagerResourceTag + tag.Key, AwsResourceTag + tag.Key });
        foreach (var key in FixedKeys.Concat(tagKeys).Concat(demand.Keys))
        {
            if (TryGetValue(key, out var values))
            {
                all[key] = values;
            }
        }
        return all;
    }

    public IReadOnlyList<string> this[string key] => TryGetValue(key, out var values) ? values : throw new KeyNotFoundException(key);
    public bool ContainsKey(string key) => TryGetValue(key, out _);
    public IEnumerable<string> Keys => All().Keys;
    public IEnumerable<IReadOnlyList<string>> Values => All().Values;
    public int Count => All().Count;
    public IEnumerator<KeyValuePair<string, IReadOnlyList<string>>> GetEnumerator() => All().GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
