using Tumbler.Core.Access;
using static Tumbler.Core.Tests.Access.PolicyTestKit;

namespace Tumbler.Core.Tests.Access;

public sealed class PolicyEvaluatorTests
{
    private static readonly PolicyDocument AllowRead = IdentityStatement("Allow", "\"secretsmanager:GetSecretValue\"", "\"*\"");

    [Fact]
    public void Nothing_matching_is_an_implicit_deny()
    {
        Assert.Equal(PolicyDecision.ImplicitDeny, Decide(null, null, Request()));
        Assert.Equal(PolicyDecision.ImplicitDeny, Decide(AllowRead, null, Request(action: "secretsmanager:PutSecretValue")));
        var onlyOtherSecret = IdentityStatement("Allow", "\"secretsmanager:*\"", "\"arn:aws:secretsmanager:us-east-1:123456789012:secret:other-*\"");
        Assert.Equal(PolicyDecision.ImplicitDeny, Decide(onlyOtherSecret, null, Request()));
    }

    [Fact]
    public void An_allow_from_either_the_identity_policy_or_the_resource_policy_is_enough()
    {
        var resourceAllow = ResourcePolicy($$$"""
            {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"{{{Alice}}}"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}
            """);
        Assert.Equal(PolicyDecision.Allow, Decide(AllowRead, null, Request()));
        Assert.Equal(PolicyDecision.Allow, Decide(null, resourceAllow, Request()));
        Assert.Equal(PolicyDecision.Allow, Decide(AllowRead, resourceAllow, Request()));
        // The resource policy names alice only: bob gets nothing from it.
        Assert.Equal(PolicyDecision.ImplicitDeny, Decide(null, resourceAllow, Request(principal: Bob)));
    }

    [Fact]
    public void An_explicit_deny_anywhere_beats_every_allow()
    {
        var denyIdentity = IdentityStatement("Deny", "\"secretsmanager:Get*\"", "\"*\"");
        var allowAll = IdentityStatement("Allow", "\"*\"", "\"*\"");
        var denyResource = ResourcePolicy("""
            {"Statement":{"Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}}
            """);
        var allowResource = ResourcePolicy("""
            {"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}
            """);
        Assert.Equal(PolicyDecision.ExplicitDeny, PolicyEvaluator.Evaluate([allowAll, denyIdentity], allowResource, Request()));
        Assert.Equal(PolicyDecision.ExplicitDeny, PolicyEvaluator.Evaluate([allowAll], denyResource, Request()));
        // The deny statement may come after the allow in the same document.
        var both = Identity("""
            {"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}
            """);
        Assert.Equal(PolicyDecision.ExplicitDeny, Decide(both, null, Request()));
        Assert.Equal(PolicyDecision.Allow, Decide(both, null, Request(action: "secretsmanager:DescribeSecret")));
        // An identity-policy deny also beats the resource policy's allow, and a lazy sequence is fine too.
        Assert.Equal(PolicyDecision.ExplicitDeny, PolicyEvaluator.Evaluate(new[] { denyIdentity }.Where(_ => true), allowResource, Request()));
    }

    [Fact]
    public void NotAction_allows_everything_but_the_listed_actions()
    {
        var allButDelete = Identity("""
            {"Statement":{"Effect":"Allow","NotAction":["secretsmanager:Delete*","secretsmanager:PutResourcePolicy"],"Resource":"*"}}
            """);
        Assert.True(Allows(allButDelete, Request(action: "secretsmanager:GetSecretValue")));
        Assert.False(Allows(allButDelete, Request(action: "secretsmanager:DeleteSecret")));
        Assert.False(Allows(allButDelete, Request(action: "secretsmanager:PutResourcePolicy")));
        // A Deny with NotAction denies every other action.
        var denyAllButRead = Identity("""
            {"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","NotAction":"secretsmanager:Describe*","Resource":"*"}]}
            """);
        Assert.Equal(PolicyDecision.Allow, Decide(denyAllButRead, null, Request(action: "secretsmanager:DescribeSecret")));
        Assert.Equal(PolicyDecision.ExplicitDeny, Decide(denyAllButRead, null, Request(action: "secretsmanager:GetSecretValue")));
    }

    [Fact]
    public void NotResource_applies_to_every_resource_but_the_listed_ones()
    {
        var denyOutsideDev = Identity("""
            {"Statement":[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"},
                          {"Effect":"Deny","Action":"secretsmanager:*","NotResource":"arn:aws:secretsmanager:*:123456789012:secret:dev/*"}]}
            """);
        Assert.Equal(PolicyDecision.Allow, Decide(denyOutsideDev, null,
            Request(resource: "arn:aws:secretsmanager:us-east-1:123456789012:secret:dev/db-AbCdEf")));
        Assert.Equal(PolicyDecision.ExplicitDeny, Decide(denyOutsideDev, null, Request()));
        Assert.Equal(PolicyDecision.ExplicitDeny, Decide(denyOutsideDev, null, Request(action: "secretsmanager:ListSecrets", resource: "*")));
    }

    [Fact]
    public void Actions_match_case_insensitively_with_wildcards()
    {
        var policy = IdentityStatement("Allow", "[\"SecretsManager:get*\", \"secretsmanager:Describe?ecret\"]", "\"*\"");
        Assert.True(Allows(policy, Request(action: "secretsmanager:GetSecretValue")));
        Assert.True(Allows(policy, Request(action: "SECRETSMANAGER:GETRANDOMPASSWORD")));
        Assert.True(Allows(policy, Request(action: "secretsmanager:DescribeSecret")));
        Assert.False(Allows(policy, Request(action: "secretsmanager:DescribeSecrets")));
        Assert.False(Allows(policy, Request(action: "secretsmanager:ListSecrets")));
        Assert.False(Allows(policy, Request(action: "kms:GetPublicKey")));
        var star = IdentityStatement("Allow", "\"*\"", "\"*\"");
        Assert.True(Allows(star, Request(action: "kms:Decrypt")));
        var middle = IdentityStatement("Allow", "\"secretsmanager:*Secret*\"", "\"*\"");
        Assert.True(Allows(middle, Request(action: "secretsmanager:ListSecretVersionIds")));
        Assert.False(Allows(middle, Request(action: "secretsmanager:GetRandomPassword")));
    }

    [Fact]
    public void Resources_match_case_sensitively_and_star_spans_colons_and_slashes()
    {
        var policy = IdentityStatement("Allow", "\"*\"", "\"arn:aws:secretsmanager:*:123456789012:secret:prod/*\"");
        Assert.True(Allows(policy, Request()));
        Assert.True(Allows(policy, Request(resource: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/a/b/c:d-XyZ123")));
        Assert.False(Allows(policy, Request(resource: "arn:aws:secretsmanager:us-east-1:123456789012:secret:Prod/app-AbCdEf")));
        Assert.False(Allows(policy, Request(resource: "arn:aws:secretsmanager:us-east-1:210987654321:secret:prod/app-AbCdEf")));
        // ListSecrets and GetRandomPassword ask for "*": only a "*" resource covers it.
        Assert.False(Allows(policy, Request(action: "secretsmanager:ListSecrets", resource: "*")));
        var question = IdentityStatement("Allow", "\"*\"", "\"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app/db-??????\"");
        Assert.True(Allows(question, Request()));
        Assert.False(Allows(question, Request(resource: SecretArn + "x")));
        var exact = IdentityStatement("Allow", "\"*\"", $"\"{SecretArn}\"");
        Assert.True(Allows(exact, Request()));
        Assert.False(Allows(exact, Request(resource: SecretArn.ToUpperInvariant())));
    }

    [Fact]
    public void A_user_or_role_principal_matches_exactly_that_principal()
    {
        var role = "arn:aws:iam::123456789012:role/app";
        var policy = ResourcePolicy($$$"""
            {"Statement":{"Effect":"Allow","Principal":{"AWS":["{{{Alice}}}","{{{role}}}"]},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}
            """);
        Assert.Equal(PolicyDecision.Allow, Decide(null, policy, Request(principal: Alice)));
        Assert.Equal(PolicyDecision.Allow, Decide(null, policy, Request(principal: role)));
        Assert.Equal(PolicyDecision.ImplicitDeny, Decide(null, policy, Request(principal: Bob)));
        Assert.Equal(PolicyDecision.ImplicitDeny, Decide(null, policy, Request(principal: Root)));
        Assert.Equal(PolicyDecision.ImplicitDeny, Decide(null, policy, Request(principal: "arn:aws:iam::123456789012:user/alice2")));
    }

    [Fact]
    public void An_account_principal_in_an_allow_grants_only_the_root_but_in_a_deny_covers_the_whole_account()
    {
        foreach (var account in new[] { Account, Root })
        {
            var allow = ResourcePolicy($$$"""
                {"Statement":{"Effect":"Allow","Principal":{"AWS":"{{{account}}}"},"Action":"*","Resource":"*"}}
                """);
            Assert.Equal(PolicyDecision.Allow, Decide(null, allow, Request(principal: Root)));
            Assert.Equal(PolicyDecision.ImplicitDeny, Decide(null, allow, Request(principal: Alice)));
            // Alice still gets in through her own identity policy (the account delegated to IAM).
            Assert.Equal(PolicyDecision.Allow, Decide(AllowRead, allow, Request(principal: Alice)));

            var deny = ResourcePolicy($$$"""
                {"Statement":{"Effect":"Deny","Principal":{"AWS":"{{{account}}}"},"Action":"*","Resource":"*"}}
                """);
            Assert.Equal(PolicyDecision.ExplicitDeny, Decide(AllowRead, deny, Request(principal: Alice)));
            Assert.Equal(PolicyDecision.ExplicitDeny, Decide(AllowRead, deny, Request(principal: Root)));
            Assert.Equal(PolicyDecision.Allow, Decide(AllowRead, deny, Request(principal: "arn:aws:iam::210987654321:user/eve")));
        }
    }

    [Fact]
    public void A_wildcard_principal_matches_anyone_and_service_principals_match_no_one()
    {
        foreach (var principal in new[] { "\"*\"", "{\"AWS\":\"*\"}", "{\"AWS\":[\"*\"]}" })
        {
            var policy = ResourcePolicy($$$"""{"Statement":{"Effect":"Allow","Principal":{{{principal}}},"Action":"*","Resource":"*"}}""");
            Assert.Equal(PolicyDecision.Allow, Decide(null, policy, Request(principal: Bob)));
            Assert.Equal(PolicyDecision.Allow, Decide(null, policy, Request(principal: "arn:aws:iam::210987654321:role/x")));
        }
        var service = ResourcePolicy("""
            {"Statement":{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com","Federated":"cognito-identity.amazonaws.com"},"Action":"*","Resource":"*"}}
            """);
        Assert.Equal(PolicyDecision.ImplicitDeny, Decide(null, service, Request()));
        Assert.Equal(["Service:lambda.amazonaws.com", "Federated:cognito-identity.amazonaws.com"], service.Statements[0].Principal!.OtherValues);
    }

    [Fact]
    public void NotPrincipal_matches_everyone_not_listed()
    {
        var denyAllButAlice = ResourcePolicy($$$"""
            {"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":["{{{Alice}}}","{{{Account}}}"]},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}
            """);
        Assert.Equal(PolicyDecision.Allow, Decide(AllowRead, denyAllButAlice, Request(principal: Alice)));
        // The account entry excludes the account's root, not its users.
        Assert.Equal(PolicyDecision.Allow, Decide(AllowRead, denyAllButAlice, Request(principal: Root)));
        Assert.Equal(PolicyDecision.ExplicitDeny, Decide(AllowRead, denyAllButAlice, Request(principal: Bob)));
        var notEveryone = ResourcePolicy("""{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"*"},"Action":"*","Resource":"*"}}""");
        Assert.Equal(PolicyDecision.Allow, Decide(AllowRead, notEveryone, Request(principal: Bob)));
    }

    [Fact]
    public void Policy_variables_resolve_in_resources_only_in_2012_policies()
    {
        const string Template = "arn:aws:secretsmanager:us-east-1:123456789012:secret:home/${aws:username}/*";
        var modern = Identity($$$"""{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"{{{Template}}}"}}""");
        var aliceHome = "arn:aws:secretsmanager:us-east-1:123456789012:secret:home/alice/db-AbCdEf";
        Assert.True(Allows(modern, Request(resource: aliceHome, context: Key("aws:username", "alice"))));
        Assert.False(Allows(modern, Request(resource: aliceHome, context: Key("aws:username", "bob"))));
        // No value for the variable: the resource matches nothing.
        Assert.False(Allows(modern, Request(resource: aliceHome)));
        // ${*} is a literal star, not a wildcard.
        var literalStar = Identity("""{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:star${*}-*"}}""");
        Assert.True(Allows(literalStar, Request(resource: "arn:aws:secretsmanager:us-east-1:123456789012:secret:star*-AbCdEf")));
        Assert.False(Allows(literalStar, Request(resource: "arn:aws:secretsmanager:us-east-1:123456789012:secret:starx-AbCdEf")));
        // Version 2008-10-17 (or none) takes ${...} literally.
        var legacy = Identity($$$"""{"Statement":{"Effect":"Allow","Action":"*","Resource":"{{{Template}}}"}}""");
        Assert.False(Allows(legacy, Request(resource: aliceHome, context: Key("aws:username", "alice"))));
        Assert.True(Allows(legacy, Request(resource: "arn:aws:secretsmanager:us-east-1:123456789012:secret:home/${aws:username}/x",
            context: Key("aws:username", "alice"))));
    }

    [Fact]
    public void Policy_variables_resolve_in_string_conditions_with_defaults()
    {
        var owner = AllowWhen("""{"StringEquals":{"secretsmanager:ResourceTag/owner":"${aws:username}"}}""");
        Assert.True(Allows(owner, With(Key("aws:username", "alice"), Key("secretsmanager:ResourceTag/owner", "alice"))));
        Assert.False(Allows(owner, With(Key("aws:username", "bob"), Key("secretsmanager:ResourceTag/owner", "alice"))));
        var principalArn = AllowWhen("""{"ArnLike":{"aws:SourceArn":"${aws:PrincipalArn}"}}""");
        Assert.True(Allows(principalArn, With(Key("aws:SourceArn", Alice))));
        var withDefault = AllowWhen("""{"StringEquals":{"secretsmanager:ResourceTag/team":"${aws:PrincipalTag/team, 'none'}"}}""");
        Assert.True(Allows(withDefault, With(Key("secretsmanager:ResourceTag/team", "none"))));
        Assert.True(Allows(withDefault, With(Key("aws:PrincipalTag/team", "red"), Key("secretsmanager:ResourceTag/team", "red"))));
        Assert.False(Allows(withDefault, With(Key("aws:PrincipalTag/team", "red"), Key("secretsmanager:ResourceTag/team", "none"))));
    }

    [Fact]
    public void Context_keys_match_case_insensitively_whatever_dictionary_the_caller_built()
    {
        var policy = AllowWhen("""{"StringEquals":{"AWS:USERNAME":"alice"}}""");
        var ordinal = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal) { ["aws:username"] = ["alice"] };
        Assert.True(Allows(policy, new AccessRequest(Alice, Account, GetSecretValue, SecretArn, ordinal)));
        Assert.True(Allows(policy, With(Key("Aws:UserName", "alice"))));
        Assert.False(Allows(policy, With(Key("aws:username", "Alice"))));
    }

    [Fact]
    public void The_principal_arn_and_account_are_always_available_as_condition_keys()
    {
        var policy = AllowWhen($$$"""{"StringEquals":{"aws:PrincipalAccount":"{{{Account}}}"},"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::*:user/alice"}}""");
        Assert.True(Allows(policy, Request()));
        Assert.False(Allows(policy, Request(principal: Bob)));
        Assert.False(Allows(policy, Request(principal: "arn:aws:iam::210987654321:user/alice")));
    }
}

public sealed class PolicyEvaluationCostTests
{
    [Fact]
    public void Evaluating_a_typical_policy_set_allocates_nothing()
    {
        var identity = Identity("""
            {"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Action":["secretsmanager:Describe*","secretsmanager:GetSecretValue"],
               "Resource":"arn:aws:secretsmanager:*:123456789012:secret:prod/*",
               "Condition":{"StringEquals":{"secretsmanager:ResourceTag/team":["payments","ops"]},"Bool":{"aws:SecureTransport":"true"},
                            "ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/*"},"DateLessThan":{"aws:CurrentTime":"2100-01-01"}}},
              {"Effect":"Deny","NotAction":"secretsmanager:*","Resource":"*"},
              {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEqualsIfExists":{"aws:RequestedRegion":"us-east-1"}}}]}
            """);
        var resource = ResourcePolicy($$$"""
            {"Version":"2012-10-17","Statement":[
              {"Effect":"Deny","Principal":"*","Action":"secretsmanager:DeleteSecret","Resource":"*"},
              {"Effect":"Allow","Principal":{"AWS":["{{{Bob}}}","{{{Account}}}"]},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}
            """);
        var request = With(Key("secretsmanager:ResourceTag/team", "ops"), Key("aws:SecureTransport", "true"), Key("aws:PrincipalArn", Alice),
            Key("aws:CurrentTime", "2025-06-01T12:00:00Z"), Key("aws:RequestedRegion", "us-east-1"));
        PolicyDocument[] identities = [identity];
        Assert.Equal(PolicyDecision.Allow, PolicyEvaluator.Evaluate(identities, resource, request));

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            PolicyEvaluator.Evaluate(identities, resource, request);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}

public sealed class PolicyKindGuardTests
{
    [Fact]
    public void A_policy_cannot_be_evaluated_as_the_other_kind()
    {
        var identity = Identity("""{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}""");
        var resource = ResourcePolicy("""{"Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}}""");
        // An identity policy has no principal to check: used as a resource policy it would admit everyone.
        Assert.Throws<ArgumentException>(() => PolicyEvaluator.Evaluate([], identity, Request(principal: Bob)));
        Assert.Throws<ArgumentException>(() => PolicyEvaluator.Evaluate([resource], null, Request()));
    }
}
