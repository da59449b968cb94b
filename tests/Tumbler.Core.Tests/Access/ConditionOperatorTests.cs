using Tumbler.Core.Access;
using static Tumbler.Core.Tests.Access.PolicyTestKit;

namespace Tumbler.Core.Tests.Access;

public sealed class ConditionOperatorTests
{
    private static bool Holds(string condition, params (string, string[])[] context) => Allows(AllowWhen(condition), With(context));

    [Fact]
    public void String_operators_compare_exactly_ignoring_case_or_with_wildcards()
    {
        Assert.True(Holds("""{"StringEquals":{"aws:username":["bob","alice"]}}""", Key("aws:username", "alice")));
        Assert.False(Holds("""{"StringEquals":{"aws:username":"alice"}}""", Key("aws:username", "ALICE")));
        Assert.True(Holds("""{"StringEqualsIgnoreCase":{"aws:username":"alice"}}""", Key("aws:username", "ALICE")));
        Assert.False(Holds("""{"StringNotEqualsIgnoreCase":{"aws:username":"alice"}}""", Key("aws:username", "ALICE")));
        Assert.True(Holds("""{"StringNotEquals":{"aws:username":["bob","carol"]}}""", Key("aws:username", "alice")));
        Assert.False(Holds("""{"StringNotEquals":{"aws:username":["bob","alice"]}}""", Key("aws:username", "alice")));
        Assert.True(Holds("""{"StringLike":{"aws:userid":"AIDA*:session-??"}}""", Key("aws:userid", "AIDAEXAMPLE:session-42")));
        Assert.False(Holds("""{"StringLike":{"aws:userid":"AIDA*:session-??"}}""", Key("aws:userid", "AIDAEXAMPLE:session-4")));
        Assert.False(Holds("""{"StringLike":{"aws:userid":"aida*"}}""", Key("aws:userid", "AIDAEXAMPLE")));
        Assert.True(Holds("""{"StringNotLike":{"aws:userid":"AROA*"}}""", Key("aws:userid", "AIDAEXAMPLE")));
        Assert.False(Holds("""{"StringNotLike":{"aws:userid":["x","AIDA*"]}}""", Key("aws:userid", "AIDAEXAMPLE")));
    }

    [Fact]
    public void Numbers_booleans_and_numeric_json_values_are_compared_as_their_type()
    {
        Assert.True(Holds("""{"NumericEquals":{"secretsmanager:RecoveryWindowInDays":7}}""", Key("secretsmanager:RecoveryWindowInDays", "7.0")));
        Assert.True(Holds("""{"NumericNotEquals":{"secretsmanager:RecoveryWindowInDays":"7"}}""", Key("secretsmanager:RecoveryWindowInDays", "30")));
        Assert.False(Holds("""{"NumericNotEquals":{"secretsmanager:RecoveryWindowInDays":"7"}}""", Key("secretsmanager:RecoveryWindowInDays", "7")));
        Assert.True(Holds("""{"NumericLessThan":{"n":"10"}}""", Key("n", "9.5")));
        Assert.False(Holds("""{"NumericLessThan":{"n":"10"}}""", Key("n", "10")));
        Assert.True(Holds("""{"NumericLessThanEquals":{"n":"10"}}""", Key("n", "10")));
        Assert.True(Holds("""{"NumericGreaterThan":{"n":"-1"}}""", Key("n", "0")));
        Assert.False(Holds("""{"NumericGreaterThan":{"n":"10"}}""", Key("n", "9")));
        Assert.True(Holds("""{"NumericGreaterThanEquals":{"n":"10"}}""", Key("n", "10")));
        // Numbers compare as numbers, not as text ("9" < "10").
        Assert.True(Holds("""{"NumericLessThan":{"n":"10"}}""", Key("n", "9")));
        // A request value that is not a number matches nothing.
        Assert.False(Holds("""{"NumericLessThan":{"n":"10"}}""", Key("n", "ten")));
    }

    [Fact]
    public void Bool_checks_secure_transport()
    {
        const string TlsOnly = """{"Bool":{"aws:SecureTransport":"true"}}""";
        Assert.True(Holds(TlsOnly, Key("aws:SecureTransport", "true")));
        Assert.True(Holds(TlsOnly, Key("aws:SecureTransport", "TRUE")));
        Assert.False(Holds(TlsOnly, Key("aws:SecureTransport", "false")));
        Assert.False(Holds(TlsOnly));
        Assert.True(Holds("""{"Bool":{"aws:SecureTransport":false}}""", Key("aws:SecureTransport", "false")));
        // The classic deny of plain HTTP.
        var denyPlain = Identity("""
            {"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
                          {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}
            """);
        Assert.Equal(PolicyDecision.ExplicitDeny, Decide(denyPlain, null, With(Key("aws:SecureTransport", "false"))));
        Assert.Equal(PolicyDecision.Allow, Decide(denyPlain, null, With(Key("aws:SecureTransport", "true"))));
    }

    [Fact]
    public void Dates_compare_the_current_time_in_iso_8601_or_epoch_seconds()
    {
        const string Now = "2025-06-01T12:00:00Z";
        Assert.True(Holds("""{"DateLessThan":{"aws:CurrentTime":"2025-12-31T23:59:59Z"}}""", Key("aws:CurrentTime", Now)));
        Assert.False(Holds("""{"DateLessThan":{"aws:CurrentTime":"2025-01-01"}}""", Key("aws:CurrentTime", Now)));
        Assert.True(Holds("""{"DateGreaterThan":{"aws:CurrentTime":"2025-01-01"}}""", Key("aws:CurrentTime", Now)));
        Assert.True(Holds("""{"DateGreaterThanEquals":{"aws:CurrentTime":"2025-06-01T14:00:00+02:00"}}""", Key("aws:CurrentTime", Now)));
        Assert.True(Holds("""{"DateLessThanEquals":{"aws:CurrentTime":1748779200}}""", Key("aws:CurrentTime", Now)));
        Assert.True(Holds("""{"DateEquals":{"aws:CurrentTime":"1748779200"}}""", Key("aws:CurrentTime", Now)));
        Assert.True(Holds("""{"DateEquals":{"aws:EpochTime":"2025-06-01T12:00:00Z"}}""", Key("aws:EpochTime", "1748779200")));
        Assert.True(Holds("""{"DateNotEquals":{"aws:CurrentTime":"2025-06-01T12:00:01Z"}}""", Key("aws:CurrentTime", Now)));
        Assert.False(Holds("""{"DateNotEquals":{"aws:CurrentTime":"2025-06-01T12:00:00Z"}}""", Key("aws:CurrentTime", Now)));
        // A window: both bounds must hold.
        const string Window = """{"DateGreaterThan":{"aws:CurrentTime":"2025-06-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2025-06-02T00:00:00Z"}}""";
        Assert.True(Holds(Window, Key("aws:CurrentTime", Now)));
        Assert.False(Holds(Window, Key("aws:CurrentTime", "2025-06-02T00:00:01Z")));
        Assert.False(Holds(Window, Key("aws:CurrentTime", "not a date")));
    }

    [Fact]
    public void Arn_operators_match_segment_by_segment()
    {
        const string Role = "arn:aws:iam::123456789012:role/app/worker";
        Assert.True(Holds("""{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/app/*"}}""", Key("aws:PrincipalArn", Role)));
        Assert.True(Holds("""{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/*"}}""", Key("aws:PrincipalArn", Role)));
        Assert.True(Holds("""{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:*"}}""", Key("aws:PrincipalArn", Role)));
        // A wildcard in one segment does not run into the next one.
        Assert.False(Holds("""{"ArnLike":{"aws:PrincipalArn":"arn:aws:*:role/app/worker"}}""", Key("aws:PrincipalArn", Role)));
        Assert.False(Holds("""{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"}}""", Key("aws:PrincipalArn", Role)));
        Assert.True(Holds("""{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"}}""", Key("aws:PrincipalArn", Role)));
        Assert.False(Holds("""{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/app/worker"}}""", Key("aws:PrincipalArn", Role)));
        // The resource segment may itself contain colons.
        Assert.True(Holds("""{"ArnLike":{"aws:SourceArn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:a:*"}}""",
            Key("aws:SourceArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:a:b:c")));
        // A request value that is not an ARN never matches an ARN pattern.
        Assert.False(Holds("""{"ArnLike":{"aws:SourceArn":"arn:*:*:*:*:*"}}""", Key("aws:SourceArn", "not-an-arn")));
    }

    [Fact]
    public void Ip_conditions_take_ipv4_and_ipv6_cidrs_and_single_addresses()
    {
        const string Loopback = """{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}""";
        Assert.True(Holds(Loopback, Key("aws:SourceIp", "127.0.0.1")));
        Assert.False(Holds("""{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}""", Key("aws:SourceIp", "127.0.0.1")));
        Assert.True(Holds("""{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}""", Key("aws:SourceIp", "127.0.0.1")));
        Assert.False(Holds("""{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","127.0.0.0/8"]}}""", Key("aws:SourceIp", "127.0.0.1")));
        Assert.True(Holds("""{"IpAddress":{"aws:SourceIp":"192.168.1.0/25"}}""", Key("aws:SourceIp", "192.168.1.127")));
        Assert.False(Holds("""{"IpAddress":{"aws:SourceIp":"192.168.1.0/25"}}""", Key("aws:SourceIp", "192.168.1.128")));
        Assert.True(Holds("""{"IpAddress":{"aws:SourceIp":"203.0.113.7"}}""", Key("aws:SourceIp", "203.0.113.7")));
        Assert.False(Holds("""{"IpAddress":{"aws:SourceIp":"203.0.113.7"}}""", Key("aws:SourceIp", "203.0.113.8")));
        // Host bits in the policy's network are ignored.
        Assert.True(Holds("""{"IpAddress":{"aws:SourceIp":"203.0.113.77/24"}}""", Key("aws:SourceIp", "203.0.113.1")));
        // IPv6.
        Assert.True(Holds("""{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}""", Key("aws:SourceIp", "2001:db8:1234::1")));
        Assert.False(Holds("""{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}""", Key("aws:SourceIp", "2001:db9::1")));
        Assert.True(Holds("""{"IpAddress":{"aws:SourceIp":"::1"}}""", Key("aws:SourceIp", "::1")));
        Assert.False(Holds("""{"IpAddress":{"aws:SourceIp":"2001:db8::/33"}}""", Key("aws:SourceIp", "2001:db8:8000::1")));
        // An IPv4 address never falls in an IPv6 block and vice versa, but IPv4-mapped IPv6 counts as IPv4.
        Assert.False(Holds("""{"IpAddress":{"aws:SourceIp":"::/0"}}""", Key("aws:SourceIp", "127.0.0.1")));
        Assert.True(Holds(Loopback, Key("aws:SourceIp", "::ffff:127.0.0.1")));
        Assert.True(Holds("""{"IpAddress":{"aws:SourceIp":"::ffff:10.0.0.0/104"}}""", Key("aws:SourceIp", "10.1.2.3")));
        Assert.False(Holds(Loopback, Key("aws:SourceIp", "garbage")));
    }

    [Fact]
    public void A_missing_key_fails_positive_operators_and_satisfies_negated_ones()
    {
        Assert.False(Holds("""{"StringEquals":{"aws:username":"alice"}}"""));
        Assert.False(Holds("""{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"""));
        Assert.False(Holds("""{"NumericLessThan":{"n":"10"}}"""));
        // AWS: a negated operator returns true when the key is absent from the request context.
        Assert.True(Holds("""{"StringNotEquals":{"aws:username":"alice"}}"""));
        Assert.True(Holds("""{"StringNotLike":{"aws:username":"a*"}}"""));
        Assert.True(Holds("""{"ArnNotLike":{"aws:SourceArn":"arn:*:*:*:*:*"}}"""));
        Assert.True(Holds("""{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"""));
        Assert.True(Holds("""{"NumericNotEquals":{"n":"1"}}"""));
        Assert.True(Holds("""{"DateNotEquals":{"aws:CurrentTime":"2020-01-01"}}"""));
        // An empty list is the same as an absent key.
        Assert.False(Holds("""{"StringEquals":{"aws:TagKeys":"a"}}""", Key("aws:TagKeys")));
    }

    [Fact]
    public void IfExists_matches_when_the_key_is_absent_and_compares_when_present()
    {
        const string Condition = """{"StringEqualsIfExists":{"secretsmanager:ResourceTag/env":"dev"}}""";
        Assert.True(Holds(Condition));
        Assert.True(Holds(Condition, Key("secretsmanager:ResourceTag/env", "dev")));
        Assert.False(Holds(Condition, Key("secretsmanager:ResourceTag/env", "prod")));
        Assert.True(Holds("""{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"""));
        Assert.False(Holds("""{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}""", Key("aws:SourceIp", "127.0.0.1")));
        Assert.True(Holds("""{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"""));
        Assert.False(Holds("""{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}""", Key("aws:MultiFactorAuthPresent", "false")));
        Assert.True(Holds("""{"NumericLessThanIfExists":{"n":"3"}}"""));
        Assert.True(Holds("""{"DateLessThanIfExists":{"aws:CurrentTime":"2020-01-01"}}"""));
        Assert.True(Holds("""{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:*:*:*:*"}}"""));
        Assert.False(Holds("""{"StringNotEqualsIfExists":{"k":"v"}}""", Key("k", "v")));
        Assert.True(Holds("""{"StringNotEqualsIfExists":{"k":"v"}}"""));
    }

    [Fact]
    public void Null_tests_whether_a_key_is_absent()
    {
        Assert.True(Holds("""{"Null":{"aws:TokenIssueTime":"true"}}"""));
        Assert.False(Holds("""{"Null":{"aws:TokenIssueTime":"true"}}""", Key("aws:TokenIssueTime", "2025-01-01T00:00:00Z")));
        Assert.True(Holds("""{"Null":{"secretsmanager:ResourceTag/team":false}}""", Key("secretsmanager:ResourceTag/team", "red")));
        Assert.False(Holds("""{"Null":{"secretsmanager:ResourceTag/team":"false"}}"""));
    }

    [Fact]
    public void Resource_tags_are_matched_by_key_name_case_insensitively()
    {
        const string Condition = """{"StringEquals":{"secretsmanager:ResourceTag/Team":"payments"}}""";
        Assert.True(Holds(Condition, Key("secretsmanager:resourcetag/team", "payments")));
        Assert.False(Holds(Condition, Key("secretsmanager:ResourceTag/team", "Payments")));
        Assert.False(Holds(Condition, Key("secretsmanager:ResourceTag/owner", "payments")));
    }

    [Fact]
    public void ForAnyValue_and_ForAllValues_compare_multi_valued_tag_keys()
    {
        const string OnlyAllowedTags = """{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}""";
        Assert.True(Holds(OnlyAllowedTags, Key("aws:TagKeys", "team", "env")));
        Assert.True(Holds(OnlyAllowedTags, Key("aws:TagKeys", "env")));
        Assert.False(Holds(OnlyAllowedTags, Key("aws:TagKeys", "env", "owner")));
        // ForAllValues on an absent or empty key is vacuously true; ForAnyValue is false.
        Assert.True(Holds(OnlyAllowedTags));
        Assert.True(Holds(OnlyAllowedTags, Key("aws:TagKeys")));

        const string AnyForbiddenTag = """{"ForAnyValue:StringLike":{"aws:TagKeys":["aws:*","secret*"]}}""";
        Assert.True(Holds(AnyForbiddenTag, Key("aws:TagKeys", "team", "secretive")));
        Assert.False(Holds(AnyForbiddenTag, Key("aws:TagKeys", "team", "env")));
        Assert.False(Holds(AnyForbiddenTag));
        Assert.False(Holds("""{"ForAnyValue:StringNotEquals":{"aws:TagKeys":"team"}}"""));

        // Negated set operators: ForAllValues:StringNotEquals = no request value is listed; ForAnyValue = some is not listed.
        Assert.True(Holds("""{"ForAllValues:StringNotEquals":{"aws:TagKeys":["owner"]}}""", Key("aws:TagKeys", "team", "env")));
        Assert.False(Holds("""{"ForAllValues:StringNotEquals":{"aws:TagKeys":["owner"]}}""", Key("aws:TagKeys", "team", "owner")));
        Assert.True(Holds("""{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["team"]}}""", Key("aws:TagKeys", "team", "owner")));
        Assert.False(Holds("""{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["team"]}}""", Key("aws:TagKeys", "team")));
        // With IfExists, an absent key matches under either qualifier.
        Assert.True(Holds("""{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"team"}}"""));

        // Without a qualifier: any request value against any policy value; the negated form is its negation.
        Assert.True(Holds("""{"StringEquals":{"aws:TagKeys":"env"}}""", Key("aws:TagKeys", "team", "env")));
        Assert.False(Holds("""{"StringNotEquals":{"aws:TagKeys":"env"}}""", Key("aws:TagKeys", "team", "env")));
    }

    [Fact]
    public void Operators_keys_and_values_combine_as_and_and_or()
    {
        const string Condition = """
            {"StringEquals":{"aws:username":["alice","bob"],"secretsmanager:ResourceTag/env":"dev"},
             "IpAddress":{"aws:SourceIp":["10.0.0.0/8","127.0.0.1"]}}
            """;
        Assert.True(Holds(Condition, Key("aws:username", "bob"), Key("secretsmanager:ResourceTag/env", "dev"), Key("aws:SourceIp", "127.0.0.1")));
        Assert.True(Holds(Condition, Key("aws:username", "alice"), Key("secretsmanager:ResourceTag/env", "dev"), Key("aws:SourceIp", "10.9.9.9")));
        Assert.False(Holds(Condition, Key("aws:username", "alice"), Key("secretsmanager:ResourceTag/env", "prod"), Key("aws:SourceIp", "10.9.9.9")));
        Assert.False(Holds(Condition, Key("aws:username", "alice"), Key("secretsmanager:ResourceTag/env", "dev"), Key("aws:SourceIp", "192.0.2.1")));
        Assert.False(Holds(Condition, Key("aws:username", "carol"), Key("secretsmanager:ResourceTag/env", "dev"), Key("aws:SourceIp", "127.0.0.1")));
    }

    [Fact]
    public void The_parsed_condition_exposes_operator_parts()
    {
        var condition = Assert.Single(AllowWhen("""{"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":["a*",1,true]}}""").Statements[0].Conditions);
        Assert.Equal("ForAnyValue:StringLikeIfExists", condition.Operator);
        Assert.Equal("StringLike", condition.BaseOperator);
        Assert.Equal(SetQualifier.ForAnyValue, condition.Qualifier);
        Assert.True(condition.IfExists);
        Assert.False(condition.IsNegated);
        Assert.Equal(["a*", "1", "true"], condition.Values);
    }
}
