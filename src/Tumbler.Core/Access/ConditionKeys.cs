using System.Collections;
using System.Collections.Frozen;
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

    private readonly CallContext _call = call;
    private readonly Demand _demand = demand;
    private readonly string _resource = resource;
    private readonly SecretEntity? _secret = secret;
    private readonly DateTimeOffset _now = now;

    /// <summary>Every key that is not a tag or the demand's, and how to work it out (null: absent from this call).</summary>
    private static readonly FrozenDictionary<string, Func<ConditionKeys, IReadOnlyList<string>?>> Resolvers =
        new Dictionary<string, Func<ConditionKeys, IReadOnlyList<string>?>>
        {
            ["aws:PrincipalArn"] = keys => [keys._call.Principal.Arn],
            ["aws:PrincipalAccount"] = keys => [keys._call.Principal.AccountId],
            ["aws:PrincipalType"] = keys => [keys._call.Principal.Arn.Contains(":user/", StringComparison.Ordinal) ? "User" : "Account"],
            ["aws:CurrentTime"] = keys => [keys._now.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)],
            ["aws:EpochTime"] = keys => [keys._now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)],
            ["aws:SecureTransport"] = keys => [keys._call.Origin?.SecureTransport == true ? "true" : "false"],
            ["aws:RequestedRegion"] = keys => [keys._call.Region],
            ["aws:username"] = keys => keys._call.Principal.Arn is var arn && arn.Contains(":user/", StringComparison.Ordinal)
                ? [arn[(arn.LastIndexOf('/') + 1)..]]
                : null,
            ["aws:SourceIp"] = keys => keys._call.Origin?.SourceIp is { } sourceIp ? [sourceIp] : null,
            ["aws:UserAgent"] = keys => keys._call.Origin?.UserAgent is { } userAgent ? [userAgent] : null,
            ["secretsmanager:SecretId"] = keys => keys._resource.StartsWith("arn:", StringComparison.Ordinal)
                && keys._demand.Action.StartsWith("secretsmanager:", StringComparison.Ordinal) ? [keys._resource] : null,
        }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out IReadOnlyList<string> value)
    {
        value = _demand.Find(key) ?? Find(key);
        return value is not null;
    }

    private IReadOnlyList<string>? Find(string key)
    {
        if (Resolvers.TryGetValue(key, out var resolve))
        {
            return resolve(this);
        }
        if (key.StartsWith(SecretsManagerResourceTag, StringComparison.OrdinalIgnoreCase))
        {
            return ResourceTag(key[SecretsManagerResourceTag.Length..]);
        }
        return key.StartsWith(AwsResourceTag, StringComparison.OrdinalIgnoreCase) ? ResourceTag(key[AwsResourceTag.Length..]) : null;
    }

    /// <summary>A tag of the secret; tag keys compare case-insensitively (SecretsService refuses two that differ only in case).</summary>
    private IReadOnlyList<string>? ResourceTag(string tagKey) =>
        _secret?.Tags?.FirstOrDefault(tag => string.Equals(tag.Key, tagKey, StringComparison.OrdinalIgnoreCase)) is { } tag ? [tag.Value] : null;

    private Dictionary<string, IReadOnlyList<string>> All()
    {
        var all = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);
        var tagKeys = (_secret?.Tags ?? []).SelectMany(tag => new[] { SecretsManagerResourceTag + tag.Key, AwsResourceTag + tag.Key });
        foreach (var key in Resolvers.Keys.Concat(tagKeys).Concat(_demand.Keys))
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
