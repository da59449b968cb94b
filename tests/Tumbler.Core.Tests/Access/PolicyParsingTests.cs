using Tumbler.Core.Access;
using static Tumbler.Core.Tests.Access.PolicyTestKit;

namespace Tumbler.Core.Tests.Access;

public sealed class PolicyParsingTests
{
    private static string Malformed(string json, PolicyKind kind = PolicyKind.Identity) =>
        Assert.Throws<MalformedPolicyException>(() => PolicyDocument.Parse(json, kind)).Message;

    [Fact]
    public void A_full_policy_parses_and_keeps_its_text()
    {
        const string Json = """
            {
              "Version": "2012-10-17",
              "Id": "secret-policy",
              "Statement": [
                {"Sid": "Read", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::123456789012:role/app", "123456789012"]},
                 "Action": ["secretsmanager:GetSecretValue", "secretsmanager:Describe*"], "Resource": "*",
                 "Condition": {"Bool": {"aws:SecureTransport": true}}},
                {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:root"}, "NotAction": "secretsmanager:Get*",
                 "NotResource": ["arn:aws:secretsmanager:us-east-1:123456789012:secret:a-*"]}
              ]
            }
            """;
        var policy = ResourcePolicy(Json);
        Assert.Equal(Json, policy.Text);
        Assert.Equal("2012-10-17", policy.Version);
        Assert.Equal("secret-policy", policy.Id);
        Assert.Equal(2, policy.Statements.Count);
        var read = policy.Statements[0];
        Assert.Equal(("Read", PolicyEffect.Allow, false, false), (read.Sid, read.Effect, read.IsNotAction, read.IsNotResource));
        Assert.Equal(["secretsmanager:GetSecretValue", "secretsmanager:Describe*"], read.Actions);
        Assert.Equal(["arn:aws:iam::123456789012:role/app", "123456789012"], read.Principal!.AwsValues);
        var deny = policy.Statements[1];
        Assert.Equal((2, PolicyEffect.Deny, true, true, true), (deny.Number, deny.Effect, deny.IsNotAction, deny.IsNotResource, deny.IsNotPrincipal));
    }

    [Fact]
    public void A_single_statement_object_and_a_missing_version_are_accepted()
    {
        var policy = Identity("""{"Statement":{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}}""");
        Assert.Null(policy.Version);
        Assert.Single(policy.Statements);
        Assert.Equal("2008-10-17", Identity("""{"Version":"2008-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}""").Version);
    }

    [Theory]
    [InlineData("{\"Statement\": [", "not valid JSON")]
    [InlineData("{\"Statement\": [], }", "not valid JSON")]
    // Half a surrogate pair, escaped: valid to the parser, refused when the string is read.
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"secretsmanager:\\ud800\",\"Resource\":\"*\"}}", "not valid JSON")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"\\udc00\":1}}", "not valid JSON")]
    [InlineData("{\"Statement\":{\"Sid\":\"a\\ud800\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}", "not valid JSON")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"k\":[\"\\ud800\"]}}}}", "not valid JSON")]
    [InlineData("[]", "must be a JSON object")]
    [InlineData("{\"Version\":\"2012-10-17\"}", "has no Statement")]
    [InlineData("{\"Statement\":[]}", "Statement is empty")]
    [InlineData("{\"Statement\":\"Allow\"}", "Statement must be an object or an array")]
    [InlineData("{\"Version\":\"2020-01-01\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}", "Version must be 2012-10-17 or 2008-10-17")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},\"Extra\":1}", "unknown member 'Extra'")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},\"Statement\":{}}", "member 'Statement' twice")]
    [InlineData("{\"Statement\":[{\"Action\":\"*\",\"Resource\":\"*\"}]}", "Statement 1: Effect is required")]
    [InlineData("{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},{\"Effect\":\"allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}", "Statement 2: Effect must be Allow or Deny.")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"NotAction\":\"s3:*\",\"Resource\":\"*\"}}", "Statement 1: has both Action and NotAction")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Resource\":\"*\"}}", "Statement 1: Action or NotAction is required")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\"}}", "Statement 1: Resource or NotResource is required")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"NotResource\":\"*\"}}", "has both Resource and NotResource")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"GetSecretValue\",\"Resource\":\"*\"}}", "Action 'GetSecretValue' must be")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[],\"Resource\":\"*\"}}", "Action is an empty array")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[\"*\",3],\"Resource\":\"*\"}}", "Action must be a string or an array of strings")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"my-secret\"}}", "Resource 'my-secret' must be \"*\" or an ARN")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Principal\":\"*\"}}", "Statement 1: an identity policy cannot have Principal")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"NotPrincipal\":{\"AWS\":\"*\"}}}", "cannot have NotPrincipal")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"StringEqualz\":{\"k\":\"v\"}}}}", "Statement 1: unknown condition operator StringEqualz")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"NullIfExists\":{\"k\":\"true\"}}}}", "unknown condition operator NullIfExists")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"ForSomeValues:StringEquals\":{\"k\":\"v\"}}}}", "unknown condition operator ForSomeValues:StringEquals")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"NumericLessThan\":{\"n\":\"ten\"}}}}", "'ten' is not a number")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"DateLessThan\":{\"aws:CurrentTime\":\"tomorrow\"}}}}", "'tomorrow' is not a date")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/33\"}}}}", "'10.0.0.0/33' is not an IP address or CIDR block")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"yes\"}}}}", "'yes' is not true or false")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"k\":null}}}}", "must be a string, a number or a boolean")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"k\":[]}}}}", "the list of values is empty")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{}}}}", "names no condition key")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"k\":\"a\",\"K\":\"b\"}}}}", "names the key K twice")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":\"x\"}}", "Condition must be an object")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"effect\":\"Deny\"}}", "unknown member 'effect'")]
    [InlineData("{\"Statement\":[{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},{\"Sid\":\"A\",\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}]}", "Statement 2: Sid 'A' is used by another statement")]
    public void Malformed_identity_policies_say_what_is_wrong_and_where(string json, string expected) =>
        Assert.Contains(expected, Malformed(json), StringComparison.Ordinal);

    [Theory]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}", "Statement 1: a resource policy statement needs Principal or NotPrincipal")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\",\"NotPrincipal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}}", "has both Principal and NotPrincipal")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::123456789012:user/*\"},\"Action\":\"*\",\"Resource\":\"*\"}}", "principal 'arn:aws:iam::123456789012:user/*' contains a wildcard")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":[\"arn:aws:iam::12345678901?:root\"]},\"Action\":\"*\",\"Resource\":\"*\"}}", "contains a wildcard")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"alice\"},\"Action\":\"*\",\"Resource\":\"*\"}}", "principal 'alice' must be \"*\", a 12-digit account id or an ARN")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::123456789012\"},\"Action\":\"*\",\"Resource\":\"*\"}}", "is not a valid ARN")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"arn:aws:iam::123456789012:root\",\"Action\":\"*\",\"Resource\":\"*\"}}", "Principal must be \"*\" or an object")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{\"Users\":\"alice\"},\"Action\":\"*\",\"Resource\":\"*\"}}", "Principal has an unknown key 'Users'")]
    [InlineData("{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":{},\"Action\":\"*\",\"Resource\":\"*\"}}", "Principal names no principal")]
    public void Malformed_resource_policies_say_what_is_wrong_and_where(string json, string expected) =>
        Assert.Contains(expected, Malformed(json, PolicyKind.Resource), StringComparison.Ordinal);

    [Fact]
    public void Bad_json_reports_the_position()
    {
        var message = Malformed("{\"Statement\":\n  {\"Effect\" \"Allow\"}}");
        Assert.StartsWith("The policy is not valid JSON:", message, StringComparison.Ordinal);
        Assert.Contains("LineNumber: 1", message, StringComparison.Ordinal);
    }
}
