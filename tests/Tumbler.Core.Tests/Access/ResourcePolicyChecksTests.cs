using Tumbler.Core.Access;
using static Tumbler.Core.Tests.Access.PolicyTestKit;

namespace Tumbler.Core.Tests.Access;

public sealed class ResourcePolicyChecksTests
{
    private static string Statement(string effect, string principal, string condition = "") =>
        $$$"""{"Version":"2012-10-17","Statement":[{"Sid":"S","Effect":"{{{effect}}}","Principal":{{{principal}}},"Action":"secretsmanager:GetSecretValue","Resource":"*"{{{condition}}}}]}""";

    private static bool Public(string json) => ResourcePolicyChecks.GrantsPublicAccess(ResourcePolicy(json));

    [Fact]
    public void A_wildcard_principal_in_an_allow_is_public()
    {
        Assert.True(Public(Statement("Allow", "\"*\"")));
        Assert.True(Public(Statement("Allow", "{\"AWS\":\"*\"}")));
        Assert.True(Public(Statement("Allow", $"{{\"AWS\":[\"{Alice}\",\"*\"]}}")));
        // Allow with NotPrincipal grants everyone but the few listed.
        Assert.True(Public($$$"""{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"{{{Bob}}}"},"Action":"*","Resource":"*"}}"""));
        // A condition on some other key does not narrow who may call.
        Assert.True(Public(Statement("Allow", "\"*\"", ",\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"true\"}}")));
    }

    [Fact]
    public void Named_principals_and_deny_statements_are_not_public()
    {
        Assert.False(Public(Statement("Allow", $"{{\"AWS\":\"{Alice}\"}}")));
        Assert.False(Public(Statement("Allow", $"{{\"AWS\":\"{Account}\"}}")));
        Assert.False(Public(Statement("Deny", "\"*\"")));
    }

    [Theory]
    [InlineData("{\"StringEquals\":{\"aws:PrincipalAccount\":\"123456789012\"}}")]
    [InlineData("{\"ArnLike\":{\"AWS:PRINCIPALARN\":\"arn:aws:iam::123456789012:role/app-*\"}}")]
    [InlineData("{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}")]
    [InlineData("{\"StringEquals\":{\"aws:SourceVpc\":\"vpc-1a2b3c4d\"}}")]
    [InlineData("{\"StringEquals\":{\"aws:SourceVpce\":\"vpce-1a2b3c4d\"}}")]
    public void A_narrowing_condition_keeps_a_wildcard_principal_private(string condition) =>
        Assert.False(Public(Statement("Allow", "\"*\"", $",\"Condition\":{condition}")));

    [Theory]
    [InlineData("{\"StringNotEquals\":{\"aws:PrincipalAccount\":\"123456789012\"}}")]
    [InlineData("{\"StringEqualsIfExists\":{\"aws:PrincipalAccount\":\"123456789012\"}}")]
    [InlineData("{\"StringLike\":{\"aws:PrincipalArn\":\"*\"}}")]
    [InlineData("{\"IpAddress\":{\"aws:SourceIp\":[\"0.0.0.0/0\",\"::/0\"]}}")]
    [InlineData("{\"Null\":{\"aws:SourceVpc\":\"false\"}}")]
    [InlineData("{\"ForAllValues:StringEquals\":{\"aws:PrincipalAccount\":\"123456789012\"}}")]
    public void Conditions_that_do_not_really_narrow_leave_the_policy_public(string condition) =>
        Assert.True(Public(Statement("Allow", "\"*\"", $",\"Condition\":{condition}")));

    [Fact]
    public void Validate_returns_nothing_for_a_sound_policy()
    {
        Assert.Empty(ResourcePolicyChecks.Validate(Statement("Allow", $"{{\"AWS\":\"{Alice}\"}}")));
        Assert.Empty(ResourcePolicyChecks.Validate(Statement("Deny", "\"*\"", ",\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}")));
    }

    [Fact]
    public void Validate_reports_syntax_errors_once_with_the_parser_message()
    {
        var finding = Assert.Single(ResourcePolicyChecks.Validate("""{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"""));
        Assert.Equal("SYNTAX_CHECKING", finding.CheckName);
        Assert.Equal("Statement 1: a resource policy statement needs Principal or NotPrincipal.", finding.ErrorMessage);
        Assert.Equal("SYNTAX_CHECKING", Assert.Single(ResourcePolicyChecks.Validate("not json")).CheckName);
    }

    [Fact]
    public void Validate_reports_each_public_statement_as_broad_access()
    {
        var json = $$$"""
            {"Statement":[
              {"Sid":"Open","Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"},
              {"Effect":"Allow","Principal":{"AWS":"{{{Alice}}}"},"Action":"*","Resource":"*"},
              {"Effect":"Allow","Principal":{"AWS":"*"},"Action":"secretsmanager:DescribeSecret","Resource":"*"}]}
            """;
        var findings = ResourcePolicyChecks.Validate(json);
        Assert.Equal(2, findings.Count);
        Assert.All(findings, f => Assert.Equal("BROAD_ACCESS_CHECKING", f.CheckName));
        Assert.StartsWith("Statement 1 (Sid Open) grants access to any principal", findings[0].ErrorMessage, StringComparison.Ordinal);
        Assert.StartsWith("Statement 3 grants access to any principal", findings[1].ErrorMessage, StringComparison.Ordinal);
    }
}
