using Tumbler.Core.Access;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;
using Tumbler.Core.Tests.Support;
using static Tumbler.Core.Tests.Access.PolicyTestKit;

namespace Tumbler.Core.Tests.Access;

/// <summary>The condition keys AccessControl gives a policy for a real call: each one, its value, and its absence.</summary>
public sealed class ConditionKeysTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 29, 12, 30, 45, TimeSpan.Zero);
    private const string DivisionAlice = "arn:aws:iam::123456789012:user/division/alice";

    private static readonly SecretEntity Secret = new()
    {
        Region = "us-east-1", Name = "prod/app/db", Arn = PolicyTestKit.SecretArn, CreatedDate = Now, LastChangedDate = Now,
        Tags = [new SecretTag("Team", "payments"), new SecretTag("env", "prod")],
    };

    public static TheoryData<string, string, string> KeysAndValues => new()
    {
        { "StringEquals", "aws:PrincipalArn", DivisionAlice },
        { "StringEquals", "AWS:principalarn", DivisionAlice },
        { "StringEquals", "aws:PrincipalAccount", Account },
        { "StringEquals", "aws:PrincipalType", "User" },
        { "StringEquals", "aws:username", "alice" },
        { "StringEquals", "aws:CurrentTime", "2026-11-29T12:30:45Z" },
        { "DateGreaterThan", "aws:CurrentTime", "2026-11-29T12:00:00Z" },
        { "NumericEquals", "aws:EpochTime", Now.ToUnixTimeSeconds().ToString() },
        { "Bool", "aws:SecureTransport", "true" },
        { "StringEquals", "aws:RequestedRegion", "us-east-1" }, // the region the request was signed for
        { "IpAddress", "aws:SourceIp", "10.1.2.0/24" },
        { "StringLike", "aws:UserAgent", "aws-cli/2*" },
        { "StringEquals", "secretsmanager:SecretId", PolicyTestKit.SecretArn },
        { "StringEquals", "secretsmanager:ResourceTag/team", "payments" },
        { "StringEquals", "aws:ResourceTag/Team", "payments" },
        { "StringEquals", "aws:ResourceTag/env", "prod" },
        { "StringEquals", "secretsmanager:VersionStage", "AWSPREVIOUS" },
    };

    [Theory]
    [MemberData(nameof(KeysAndValues))]
    public void A_condition_on_the_key_sees_the_calls_value(string conditionOperator, string key, string value)
    {
        Assert.True(Allowed($$$"""{"{{{conditionOperator}}}":{"{{{key}}}":"{{{value}}}"}}""", origin: Origin));
        Assert.False(Allowed($$$"""{"{{{conditionOperator}}}":{"{{{key}}}":"{{{Other(conditionOperator)}}}"}}""", origin: Origin));
    }

    [Theory]
    [InlineData("aws:ResourceTag/owner")]
    [InlineData("aws:RequestTag/env")]
    [InlineData("aws:username")] // an account's own ARN names no user
    [InlineData("aws:SourceIp")] // a call made inside the server has no origin
    public void An_absent_key_fails_its_condition_and_passes_IfExists(string key)
    {
        Assert.False(Allowed($$$"""{"StringLike":{"{{{key}}}":"*"}}""", Root, origin: null));
        Assert.True(Allowed($$$"""{"StringLikeIfExists":{"{{{key}}}":"*"}}""", Root, origin: null));
    }

    [Fact]
    public void The_demands_own_value_of_a_key_wins()
    {
        var demand = Demand.SecretsManager("GetSecretValue").With("secretsmanager:SecretId", "as-demanded");
        Assert.True(Allowed("""{"StringEquals":{"secretsmanager:SecretId":"as-demanded"}}""", origin: Origin, demand: demand));
    }

    [Fact]
    public void Enumerating_the_keys_gives_what_looking_each_up_gives()
    {
        var keys = new ConditionKeys(new CallContext("us-east-1", Principal.User(DivisionAlice, Account, "AKIAEXAMPLE", []), Origin),
            Demand.SecretsManager("GetSecretValue").With("secretsmanager:VersionStage", "AWSPREVIOUS"), PolicyTestKit.SecretArn, Secret, Now);

        var all = keys.ToDictionary(pair => pair.Key, pair => pair.Value, StringComparer.OrdinalIgnoreCase);
        Assert.Equal(16, all.Count); // 11 of the call, 2 per tag, the demand's one
        Assert.All(all, pair => Assert.Equal(pair.Value, keys[pair.Key]));
        Assert.Equal(["payments"], all["aws:ResourceTag/Team"]);
        Assert.Equal(["AWSPREVIOUS"], all["secretsmanager:VersionStage"]);
        Assert.Equal(all.Count, keys.Count);
        Assert.False(keys.ContainsKey("aws:RequestTag/env"));
    }

    private static readonly RequestOrigin Origin = new("10.1.2.3", SecureTransport: true, UserAgent: "aws-cli/2.15.0 Python/3.11");

    private static bool Allowed(string condition, string principalArn = DivisionAlice, RequestOrigin? origin = null, Demand? demand = null) =>
        new AccessControl(new ManualClock(Now)).IsAllowed(
            new CallContext("us-east-1", Principal.User(principalArn, Account, "AKIAEXAMPLE", [AllowWhen(condition)]), origin),
            demand ?? Demand.SecretsManager("GetSecretValue").With("secretsmanager:VersionStage", "AWSPREVIOUS"), PolicyTestKit.SecretArn, Secret);

    private static string Other(string conditionOperator) => conditionOperator switch
    {
        "DateGreaterThan" => "2026-11-30T00:00:00Z",
        "NumericEquals" => "1",
        "Bool" => "false",
        "IpAddress" => "192.168.0.0/16",
        _ => "something-else",
    };
}
