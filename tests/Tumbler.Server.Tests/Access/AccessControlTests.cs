using System.Net;
using System.Text.Json;
using Tumbler.Server.Tests.Support;

namespace Tumbler.Server.Tests.Access;

/// <summary>
/// Who may do what, over real signed HTTP on Kestrel: users and keys made through the admin API,
/// identity and resource policies, network conditions, and what a denied caller gets to see.
/// </summary>
public sealed class AccessControlTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Account = "123456789012";

    private sealed record User(string Name, string AccessKeyId, string SecretAccessKey)
    {
        public string Arn => $"arn:aws:iam::{Account}:user/{Name}";
    }

    private async Task<User> NewUserAsync(string name, params string[] policies)
    {
        await fixture.AdminAsync("CreateUser", new { UserName = name });
        var key = (await fixture.AdminAsync("CreateAccessKey", new { UserName = name })).GetProperty("AccessKey");
        Assert.Equal("Active", key.GetProperty("Status").GetString());
        for (var i = 0; i < policies.Length; i++)
        {
            await fixture.AdminAsync("PutUserPolicy", new { UserName = name, PolicyName = $"p{i}", PolicyDocument = policies[i] });
        }
        return new User(name, key.GetProperty("AccessKeyId").GetString()!, key.GetProperty("SecretAccessKey").GetString()!);
    }

    private async Task<string> CreateSecretAsync(string name, string value, string? tagsJson = null)
    {
        var created = await fixture.CallAsync("CreateSecret", JsonSerializer.Deserialize<JsonElement>(
            $$"""{"Name": "{{name}}", "SecretString": "{{value}}", "ClientRequestToken": "{{Guid.NewGuid()}}"{{(tagsJson is null ? "" : ", \"Tags\": " + tagsJson)}}}"""));
        return created.GetProperty("ARN").GetString()!;
    }

    private async Task<(HttpStatusCode Status, string? Type, string Body)> CallAs(User user, string operation, string body, string service = "secretsmanager",
        string prefix = "secretsmanager.")
    {
        using var response = await fixture.SendAsAsync(prefix + operation, body, user.AccessKeyId, user.SecretAccessKey, service);
        var text = await response.Content.ReadAsStringAsync();
        var type = response.IsSuccessStatusCode ? null : JsonDocument.Parse(text).RootElement.GetProperty("__type").GetString();
        return (response.StatusCode, type, text);
    }

    /// <summary>An error answer's message (AccessDeniedException's member is "message", as on AWS).</summary>
    private static string? MessageOf(string body)
    {
        var root = JsonDocument.Parse(body).RootElement;
        return (root.TryGetProperty("Message", out var message) ? message : root.GetProperty("message")).GetString();
    }

    private static string Allow(string action, string resource, string condition = "") =>
        $$"""{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "{{action}}", "Resource": "{{resource}}"{{(condition.Length > 0 ? ", \"Condition\": " + condition : "")}}}]}""";

    private static string DenyWhen(string action, string condition) =>
        $$"""{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "{{action}}", "Resource": "*", "Condition": {{condition}}}]}""";

    private static string Deny(string action, string resource) =>
        $$"""{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "{{action}}", "Resource": "{{resource}}"}]}""";

    [Fact]
    public async Task A_user_without_policies_is_denied_everything_and_learns_nothing()
    {
        await CreateSecretAsync("ac/none/db", "s3cr3t-none");
        var nobody = await NewUserAsync("ac-nobody");

        var read = await CallAs(nobody, "GetSecretValue", """{"SecretId": "ac/none/db"}""");
        Assert.Equal((HttpStatusCode.BadRequest, "AccessDeniedException"), (read.Status, read.Type));
        string Denial(string secretId) =>
            $"User: {nobody.Arn} is not authorized to perform: secretsmanager:GetSecretValue on resource: {secretId} "
            + "because no identity-based policy allows the secretsmanager:GetSecretValue action";
        Assert.Equal(Denial("ac/none/db"), MessageOf(read.Body));
        Assert.DoesNotContain("s3cr3t-none", read.Body, StringComparison.Ordinal);

        // A missing secret answers the same denial, not ResourceNotFound, and the denial of one that exists does not
        // name its ARN (its random suffix): existence does not leak, by name, full ARN or partial ARN.
        var missing = await CallAs(nobody, "GetSecretValue", """{"SecretId": "ac/none/missing"}""");
        Assert.Equal("AccessDeniedException", missing.Type);
        Assert.Equal(Denial("ac/none/missing"), MessageOf(missing.Body));
        var partialArn = $"arn:aws:secretsmanager:us-east-1:{Account}:secret:ac/none/db";
        var byPartialArn = await CallAs(nobody, "DescribeSecret", $$"""{"SecretId": "{{partialArn}}"}""");
        Assert.Equal("AccessDeniedException", byPartialArn.Type);
        Assert.Contains($"on resource: {partialArn} because", byPartialArn.Body, StringComparison.Ordinal);

        var list = await CallAs(nobody, "ListSecrets", "{}");
        Assert.Equal("AccessDeniedException", list.Type);
        var create = await CallAs(nobody, "CreateSecret", $$"""{"Name": "ac/none/new", "SecretString": "x", "ClientRequestToken": "{{Guid.NewGuid()}}"}""");
        Assert.Equal("AccessDeniedException", create.Type);
        var admin = await CallAs(nobody, "CreateUser", """{"UserName": "ac-sneaky"}""", "iam", "TumblerIAM.");
        Assert.Equal("AccessDeniedException", admin.Type);
        Assert.Contains("iam:CreateUser", admin.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Identity_policies_allow_by_action_and_resource_wildcards()
    {
        await CreateSecretAsync("ac/prod/db", "prod-value");
        await CreateSecretAsync("ac/dev/db", "dev-value");
        var reader = await NewUserAsync("ac-reader", Allow("secretsmanager:Get*", $"arn:aws:secretsmanager:us-east-1:{Account}:secret:ac/prod/*"));

        var allowed = await CallAs(reader, "GetSecretValue", """{"SecretId": "ac/prod/db"}""");
        Assert.Equal(HttpStatusCode.OK, allowed.Status);
        Assert.Equal("prod-value", JsonDocument.Parse(allowed.Body).RootElement.GetProperty("SecretString").GetString());

        var otherSecret = await CallAs(reader, "GetSecretValue", """{"SecretId": "ac/dev/db"}""");
        Assert.Equal("AccessDeniedException", otherSecret.Type);
        Assert.DoesNotContain("dev-value", otherSecret.Body, StringComparison.Ordinal);

        var otherAction = await CallAs(reader, "PutSecretValue", $$"""{"SecretId": "ac/prod/db", "SecretString": "x", "ClientRequestToken": "{{Guid.NewGuid()}}"}""");
        Assert.Equal("AccessDeniedException", otherAction.Type);
        // Allowed, and the secret is missing: now the caller may learn that.
        var missing = await CallAs(reader, "GetSecretValue", """{"SecretId": "ac/prod/missing"}""");
        Assert.Equal("ResourceNotFoundException", missing.Type);
    }

    [Fact]
    public async Task A_value_can_name_as_its_superuser_secret_only_one_the_caller_may_read()
    {
        // The alternating-users rotators log in with the masterarn secret under Tumbler's authority: naming one you
        // cannot read would let rotation change any login it reaches and hand you the new password.
        var master = await CreateSecretAsync("ac-master/db", "{\\\"username\\\": \\\"admin\\\", \\\"password\\\": \\\"admin-pass\\\"}");
        var ownMaster = await CreateSecretAsync("ac-team/master", "{}");
        var team = await NewUserAsync("ac-team", Allow("secretsmanager:*", $"arn:aws:secretsmanager:us-east-1:{Account}:secret:ac-team/*"));
        string Value(string masterArn) =>
            JsonSerializer.Serialize(JsonSerializer.Serialize(new { engine = "mysql", host = "db", username = "victim", password = "x", masterarn = masterArn }));

        var created = await CallAs(team, "CreateSecret", $$"""{"Name": "ac-team/app", "SecretString": {{Value(master)}}, "ClientRequestToken": "{{Guid.NewGuid()}}"}""");
        Assert.Equal("AccessDeniedException", created.Type);
        Assert.Contains($"secretsmanager:GetSecretValue on resource: {master}", MessageOf(created.Body), StringComparison.Ordinal);
        // Escaping the member name does not hide it.
        var escaped = Value(master).Replace("masterarn", "master\\u0061rn", StringComparison.Ordinal);
        Assert.Equal("AccessDeniedException", (await CallAs(team, "CreateSecret", $$"""{"Name": "ac-team/app", "SecretString": {{escaped}}, "ClientRequestToken": "{{Guid.NewGuid()}}"}""")).Type);

        Assert.Equal(HttpStatusCode.OK, (await CallAs(team, "CreateSecret", $$"""{"Name": "ac-team/app", "SecretString": {{Value(ownMaster)}}, "ClientRequestToken": "{{Guid.NewGuid()}}"}""")).Status);
        var put = await CallAs(team, "PutSecretValue", $$"""{"SecretId": "ac-team/app", "SecretString": {{Value(master)}}, "ClientRequestToken": "{{Guid.NewGuid()}}"}""");
        Assert.Equal("AccessDeniedException", put.Type);
        var update = await CallAs(team, "UpdateSecret", $$"""{"SecretId": "ac-team/app", "SecretString": {{Value(master)}}, "ClientRequestToken": "{{Guid.NewGuid()}}"}""");
        Assert.Equal("AccessDeniedException", update.Type);
        Assert.Equal(HttpStatusCode.OK, (await CallAs(team, "PutSecretValue", $$"""{"SecretId": "ac-team/app", "SecretString": {{Value(ownMaster)}}, "ClientRequestToken": "{{Guid.NewGuid()}}"}""")).Status);
        var current = JsonDocument.Parse((await CallAs(team, "GetSecretValue", """{"SecretId": "ac-team/app"}""")).Body).RootElement.GetProperty("SecretString").GetString();
        Assert.Contains(ownMaster, current, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_explicit_deny_beats_any_allow_and_the_message_says_which_policy_denied()
    {
        var arn = await CreateSecretAsync("ac/deny/db", "deny-value");
        var user = await NewUserAsync("ac-denied", Allow("secretsmanager:*", "*"), Deny("secretsmanager:GetSecretValue", arn));

        var read = await CallAs(user, "GetSecretValue", """{"SecretId": "ac/deny/db"}""");
        Assert.Equal("AccessDeniedException", read.Type);
        Assert.Contains("with an explicit deny in an identity-based policy", read.Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await CallAs(user, "DescribeSecret", """{"SecretId": "ac/deny/db"}""")).Status);

        var other = await CreateSecretAsync("ac/deny/other", "other-value");
        await fixture.CallAsync("PutResourcePolicy", new { SecretId = other, ResourcePolicy = $$"""{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": "{{user.Arn}}"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}""" });
        var byResource = await CallAs(user, "GetSecretValue", """{"SecretId": "ac/deny/other"}""");
        Assert.Equal("AccessDeniedException", byResource.Type);
        Assert.Contains("with an explicit deny in a resource-based policy", byResource.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_resource_policy_alone_can_grant_a_named_user_and_no_one_else()
    {
        var arn = await CreateSecretAsync("ac/shared/db", "shared-value");
        var friend = await NewUserAsync("ac-friend");
        var stranger = await NewUserAsync("ac-stranger");
        var policy = $$"""{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "{{friend.Arn}}"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}""";
        await fixture.CallAsync("PutResourcePolicy", new { SecretId = arn, ResourcePolicy = policy, BlockPublicPolicy = true });
        Assert.Equal(policy, (await fixture.CallAsync("GetResourcePolicy", new { SecretId = arn })).GetProperty("ResourcePolicy").GetString());

        Assert.Equal(HttpStatusCode.OK, (await CallAs(friend, "GetSecretValue", """{"SecretId": "ac/shared/db"}""")).Status);
        Assert.Equal("AccessDeniedException", (await CallAs(stranger, "GetSecretValue", """{"SecretId": "ac/shared/db"}""")).Type);

        await fixture.CallAsync("DeleteResourcePolicy", new { SecretId = arn });
        Assert.False((await fixture.CallAsync("GetResourcePolicy", new { SecretId = arn })).TryGetProperty("ResourcePolicy", out _));
        Assert.Equal("AccessDeniedException", (await CallAs(friend, "GetSecretValue", """{"SecretId": "ac/shared/db"}""")).Type);
    }

    [Fact]
    public async Task Resource_policies_are_checked_before_they_are_stored()
    {
        var arn = await CreateSecretAsync("ac/policy/db", "v");
        using var malformed = await fixture.SendAsync("PutResourcePolicy", JsonSerializer.Serialize(new { SecretId = arn, ResourcePolicy = """{"Statement": [{"Effect": "Maybe"}]}""" }));
        Assert.Contains("MalformedPolicyDocumentException", await malformed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        const string Public = """{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}""";
        using var blocked = await fixture.SendAsync("PutResourcePolicy", JsonSerializer.Serialize(new { SecretId = arn, ResourcePolicy = Public, BlockPublicPolicy = true }));
        Assert.Contains("PublicPolicyException", await blocked.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False((await fixture.CallAsync("GetResourcePolicy", new { SecretId = arn })).TryGetProperty("ResourcePolicy", out _));

        var validation = await fixture.CallAsync("ValidateResourcePolicy", new { ResourcePolicy = Public });
        Assert.False(validation.GetProperty("PolicyValidationPassed").GetBoolean());
        Assert.Equal("BROAD_ACCESS_CHECKING", validation.GetProperty("ValidationErrors")[0].GetProperty("CheckName").GetString());
        var valid = await fixture.CallAsync("ValidateResourcePolicy", new { SecretId = arn, ResourcePolicy = Allow("secretsmanager:GetSecretValue", "*").Replace("\"Effect\"", $"\"Principal\": {{\"AWS\": \"arn:aws:iam::{Account}:user/x\"}}, \"Effect\"", StringComparison.Ordinal) });
        Assert.True(valid.GetProperty("PolicyValidationPassed").GetBoolean());
        Assert.Equal(0, valid.GetProperty("ValidationErrors").GetArrayLength());
    }

    [Fact]
    public async Task Source_ip_and_secure_transport_conditions_see_the_real_connection()
    {
        await CreateSecretAsync("ac/net/db", "net-value");
        var resource = $"arn:aws:secretsmanager:us-east-1:{Account}:secret:ac/net/*";
        var loopback = await NewUserAsync("ac-loopback", Allow("secretsmanager:GetSecretValue", resource, """{"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}"""));
        var office = await NewUserAsync("ac-office", Allow("secretsmanager:GetSecretValue", resource, """{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"""));
        var tlsOnly = await NewUserAsync("ac-tls-only", Allow("secretsmanager:GetSecretValue", resource, """{"Bool": {"aws:SecureTransport": "true"}}"""));

        Assert.Equal(HttpStatusCode.OK, (await CallAs(loopback, "GetSecretValue", """{"SecretId": "ac/net/db"}""")).Status);
        Assert.Equal("AccessDeniedException", (await CallAs(office, "GetSecretValue", """{"SecretId": "ac/net/db"}""")).Type);
        // This fixture serves plain HTTP: a TLS-only grant does not apply.
        Assert.Equal("AccessDeniedException", (await CallAs(tlsOnly, "GetSecretValue", """{"SecretId": "ac/net/db"}""")).Type);

        // A forged X-Forwarded-For is not believed without a trusted proxy.
        var body = System.Text.Encoding.UTF8.GetBytes("""{"SecretId": "ac/net/db"}""");
        using var forged = new HttpRequestMessage(HttpMethod.Post, fixture.Server.Endpoint) { Content = new ByteArrayContent(body) };
        forged.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-amz-json-1.1");
        forged.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager.GetSecretValue");
        forged.Headers.TryAddWithoutValidation("X-Forwarded-For", "10.1.2.3");
        Tumbler.Client.SigV4Signer.Sign(forged, body, office.AccessKeyId, office.SecretAccessKey, "us-east-1", DateTimeOffset.UtcNow);
        using var response = await fixture.Http.SendAsync(forged);
        Assert.Contains("AccessDeniedException", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tag_conditions_select_secrets_and_lists_show_only_what_the_caller_may_describe()
    {
        await CreateSecretAsync("ac/tags/blue", "blue-value", """[{"Key": "team", "Value": "blue"}]""");
        await CreateSecretAsync("ac/tags/red", "red-value", """[{"Key": "team", "Value": "red"}]""");
        var blue = await NewUserAsync("ac-blue",
            Allow("secretsmanager:*", "*", """{"StringEquals": {"secretsmanager:ResourceTag/team": "blue"}}"""),
            Allow("secretsmanager:ListSecrets", "*"),
            Allow("secretsmanager:BatchGetSecretValue", "*"));

        Assert.Equal(HttpStatusCode.OK, (await CallAs(blue, "GetSecretValue", """{"SecretId": "ac/tags/blue"}""")).Status);
        Assert.Equal("AccessDeniedException", (await CallAs(blue, "GetSecretValue", """{"SecretId": "ac/tags/red"}""")).Type);

        var list = await CallAs(blue, "ListSecrets", """{"Filters": [{"Key": "name", "Values": ["ac/tags/"]}]}""");
        var names = JsonDocument.Parse(list.Body).RootElement.GetProperty("SecretList").EnumerateArray().Select(s => s.GetProperty("Name").GetString()).ToList();
        Assert.Equal(["ac/tags/blue"], names);

        var batch = await CallAs(blue, "BatchGetSecretValue", """{"SecretIdList": ["ac/tags/blue", "ac/tags/red"]}""");
        var answer = JsonDocument.Parse(batch.Body).RootElement;
        Assert.Equal("blue-value", answer.GetProperty("SecretValues")[0].GetProperty("SecretString").GetString());
        Assert.Equal(("ac/tags/red", "AccessDeniedException"),
            (answer.GetProperty("Errors")[0].GetProperty("SecretId").GetString(), answer.GetProperty("Errors")[0].GetProperty("ErrorCode").GetString()));
        Assert.DoesNotContain("red-value", batch.Body, StringComparison.Ordinal);

        // Filters list like ListSecrets: only what the caller may describe.
        var filtered = await CallAs(blue, "BatchGetSecretValue", """{"Filters": [{"Key": "name", "Values": ["ac/tags/"]}]}""");
        var filteredAnswer = JsonDocument.Parse(filtered.Body).RootElement;
        Assert.Equal(["ac/tags/blue"], filteredAnswer.GetProperty("SecretValues").EnumerateArray().Select(v => v.GetProperty("Name").GetString()));
        Assert.Empty(filteredAnswer.GetProperty("Errors").EnumerateArray());
        Assert.DoesNotContain("ac/tags/red", filtered.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tag_key_differing_only_in_case_cannot_slip_past_a_deny_on_the_tag()
    {
        // Tag conditions match key names case-insensitively, so "team" beside "Team" would hide one of them.
        await CreateSecretAsync("ac/case/locked", "locked-value", """[{"Key": "Team", "Value": "locked"}]""");
        var tagger = await NewUserAsync("ac-case",
            Allow("secretsmanager:*", "*"),
            DenyWhen("secretsmanager:GetSecretValue", """{"StringEquals": {"aws:ResourceTag/Team": "locked"}}"""),
            DenyWhen("secretsmanager:CreateSecret", """{"StringEquals": {"aws:RequestTag/Team": "admins"}}"""));
        Assert.Equal("AccessDeniedException", (await CallAs(tagger, "GetSecretValue", """{"SecretId": "ac/case/locked"}""")).Type);

        var tagged = await CallAs(tagger, "TagResource", """{"SecretId": "ac/case/locked", "Tags": [{"Key": "team", "Value": "open"}]}""");
        Assert.Equal("InvalidParameterException", tagged.Type);
        Assert.StartsWith("The tag keys 'Team' and 'team' differ only in case", MessageOf(tagged.Body), StringComparison.Ordinal);
        Assert.Equal("AccessDeniedException", (await CallAs(tagger, "GetSecretValue", """{"SecretId": "ac/case/locked"}""")).Type);
        var described = await fixture.CallAsync("DescribeSecret", new { SecretId = "ac/case/locked" });
        Assert.Equal(["Team"], described.GetProperty("Tags").EnumerateArray().Select(t => t.GetProperty("Key").GetString()));

        var tags = """[{"Key": "Team", "Value": "admins"}, {"Key": "team", "Value": "x"}]""";
        var created = await CallAs(tagger, "CreateSecret", $$"""{"Name": "ac/case/new", "SecretString": "v", "ClientRequestToken": "{{Guid.NewGuid()}}", "Tags": {{tags}}}""");
        Assert.Equal("InvalidParameterException", created.Type);
        using var missing = await fixture.SendAsync("DescribeSecret", """{"SecretId": "ac/case/new"}""");
        Assert.Contains("ResourceNotFoundException", await missing.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Batch_reads_by_filter_need_ListSecrets_and_tell_a_caller_without_it_nothing()
    {
        await CreateSecretAsync("ac/nolist/mine", "mine-value");
        await CreateSecretAsync("ac/nolist/other", "other-value");
        var reader = await NewUserAsync("ac-nolist",
            Allow("secretsmanager:GetSecretValue", $"arn:aws:secretsmanager:us-east-1:{Account}:secret:ac/nolist/mine-*"),
            Allow("secretsmanager:BatchGetSecretValue", "*"));

        var byId = await CallAs(reader, "BatchGetSecretValue", """{"SecretIdList": ["ac/nolist/mine"]}""");
        Assert.Equal(HttpStatusCode.OK, byId.Status);
        var filtered = await CallAs(reader, "BatchGetSecretValue", """{"Filters": [{"Key": "name", "Values": ["ac/nolist/"]}]}""");
        Assert.Equal("AccessDeniedException", filtered.Type);
        Assert.Contains("secretsmanager:ListSecrets", filtered.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("ac/nolist/other", filtered.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Another_users_access_key_is_no_such_entity_to_a_caller_and_its_owner_is_not_named()
    {
        var bob = await NewUserAsync("ac-key-owner");
        var alice = await NewUserAsync("ac-key-self", Allow("iam:UpdateAccessKey", $"arn:aws:iam::{Account}:user/ac-key-self"));
        const string MadeUp = "AKIAAAAAAAAAAAAAAAAA";
        Task<(HttpStatusCode Status, string? Type, string Body)> Update(string body) => CallAs(alice, "UpdateAccessKey", body, "iam", "TumblerIAM.");

        // Without UserName the key must be the caller's own, as in IAM: bob's key and a made-up one get the same answer.
        var bobs = await Update($$"""{"AccessKeyId": "{{bob.AccessKeyId}}", "Status": "Inactive"}""");
        var madeUp = await Update($$"""{"AccessKeyId": "{{MadeUp}}", "Status": "Inactive"}""");
        Assert.Equal(("NoSuchEntity", "NoSuchEntity"), (bobs.Type, madeUp.Type));
        Assert.DoesNotContain("ac-key-owner", bobs.Body, StringComparison.Ordinal);
        // Naming bob, alice is denied before any key is looked up: again the same answer for both keys.
        var named = await Update($$"""{"UserName": "ac-key-owner", "AccessKeyId": "{{bob.AccessKeyId}}", "Status": "Inactive"}""");
        var namedMadeUp = await Update($$"""{"UserName": "ac-key-owner", "AccessKeyId": "{{MadeUp}}", "Status": "Inactive"}""");
        Assert.Equal(("AccessDeniedException", "AccessDeniedException"), (named.Type, namedMadeUp.Type));
        Assert.Equal(MessageOf(named.Body), MessageOf(namedMadeUp.Body));
        Assert.Equal("Active", (await fixture.AdminAsync("ListAccessKeys", new { UserName = "ac-key-owner" }))
            .GetProperty("AccessKeyMetadata")[0].GetProperty("Status").GetString());

        // Her own key, without UserName: allowed by her policy.
        Assert.Equal(HttpStatusCode.OK, (await Update($$"""{"AccessKeyId": "{{alice.AccessKeyId}}", "Status": "Inactive"}""")).Status);
        Assert.Equal("Inactive", (await fixture.AdminAsync("ListAccessKeys", new { UserName = "ac-key-self" }))
            .GetProperty("AccessKeyMetadata")[0].GetProperty("Status").GetString());
    }

    [Fact]
    public async Task Disabled_and_deleted_keys_are_refused_at_once_and_the_other_key_keeps_working()
    {
        await CreateSecretAsync("ac/keys/db", "keys-value");
        var user = await NewUserAsync("ac-keys", Allow("secretsmanager:GetSecretValue", "*"));
        var second = (await fixture.AdminAsync("CreateAccessKey", new { UserName = "ac-keys" })).GetProperty("AccessKey");
        var secondUser = user with { AccessKeyId = second.GetProperty("AccessKeyId").GetString()!, SecretAccessKey = second.GetProperty("SecretAccessKey").GetString()! };
        using (var third = await fixture.SendAsAsync("TumblerIAM.CreateAccessKey", """{"UserName": "ac-keys"}""", fixture.Server.Root.AccessKeyId, fixture.Server.Root.SecretAccessKey, "iam"))
        {
            Assert.Contains("LimitExceeded", await third.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        const string Read = """{"SecretId": "ac/keys/db"}""";
        Assert.Equal(HttpStatusCode.OK, (await CallAs(user, "GetSecretValue", Read)).Status);

        await fixture.AdminAsync("UpdateAccessKey", new { UserName = "ac-keys", AccessKeyId = user.AccessKeyId, Status = "Inactive" });
        Assert.Equal("UnrecognizedClientException", (await CallAs(user, "GetSecretValue", Read)).Type);
        Assert.Equal(HttpStatusCode.OK, (await CallAs(secondUser, "GetSecretValue", Read)).Status);
        await fixture.AdminAsync("UpdateAccessKey", new { AccessKeyId = user.AccessKeyId, Status = "Active" });
        Assert.Equal(HttpStatusCode.OK, (await CallAs(user, "GetSecretValue", Read)).Status);

        await fixture.AdminAsync("DeleteAccessKey", new { UserName = "ac-keys", AccessKeyId = user.AccessKeyId });
        Assert.Equal("UnrecognizedClientException", (await CallAs(user, "GetSecretValue", Read)).Type);
        var keys = await fixture.AdminAsync("ListAccessKeys", new { UserName = "ac-keys" });
        Assert.Equal([secondUser.AccessKeyId], keys.GetProperty("AccessKeyMetadata").EnumerateArray().Select(k => k.GetProperty("AccessKeyId").GetString()));
        Assert.DoesNotContain("SecretAccessKey", keys.GetRawText(), StringComparison.Ordinal);

        // A policy removed takes effect on the next request too.
        await fixture.AdminAsync("DeleteUserPolicy", new { UserName = "ac-keys", PolicyName = "p0" });
        Assert.Equal("AccessDeniedException", (await CallAs(secondUser, "GetSecretValue", Read)).Type);
    }

    [Fact]
    public async Task Admin_rights_come_from_iam_actions_and_admin_calls_need_an_iam_signature()
    {
        var admin = await NewUserAsync("ac-admin", Allow("iam:*", "*"));
        var created = await CallAs(admin, "CreateUser", """{"UserName": "ac-made-by-admin"}""", "iam", "TumblerIAM.");
        Assert.Equal(HttpStatusCode.OK, created.Status);
        Assert.Equal($"arn:aws:iam::{Account}:user/ac-made-by-admin", JsonDocument.Parse(created.Body).RootElement.GetProperty("User").GetProperty("Arn").GetString());
        // iam:* grants nothing on secrets.
        Assert.Equal("AccessDeniedException", (await CallAs(admin, "ListSecrets", "{}")).Type);
        // A Secrets Manager signature does not open the admin API.
        var wrongService = await CallAs(admin, "ListUsers", "{}", "secretsmanager", "TumblerIAM.");
        Assert.Equal("InvalidSignatureException", wrongService.Type);

        using var duplicate = await fixture.SendAsAsync("TumblerIAM.CreateUser", """{"UserName": "ac-made-by-admin"}""", fixture.Server.Root.AccessKeyId, fixture.Server.Root.SecretAccessKey, "iam");
        Assert.Contains("EntityAlreadyExists", await duplicate.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var badName = await fixture.SendAsAsync("TumblerIAM.CreateUser", """{"UserName": "no spaces"}""", fixture.Server.Root.AccessKeyId, fixture.Server.Root.SecretAccessKey, "iam");
        Assert.Contains("ValidationError", await badName.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var badPolicy = await fixture.SendAsAsync("TumblerIAM.PutUserPolicy",
            """{"UserName": "ac-made-by-admin", "PolicyName": "p", "PolicyDocument": "{\"Statement\": []}"}""", fixture.Server.Root.AccessKeyId, fixture.Server.Root.SecretAccessKey, "iam");
        Assert.Contains("MalformedPolicyDocument", await badPolicy.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var busy = await fixture.SendAsAsync("TumblerIAM.DeleteUser", """{"UserName": "ac-admin"}""", fixture.Server.Root.AccessKeyId, fixture.Server.Root.SecretAccessKey, "iam");
        Assert.Contains("DeleteConflict", await busy.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await fixture.AdminAsync("DeleteUser", new { UserName = "ac-made-by-admin" });
        var users = await fixture.AdminAsync("ListUsers", new { });
        Assert.DoesNotContain("ac-made-by-admin", users.GetRawText(), StringComparison.Ordinal);
    }

    public enum Forgery { Unsigned, WrongSecretKey, UnknownKey, Expired, TamperedBody, TamperedSignedHeader, DeletedKey }

    [Theory]
    [InlineData(Forgery.Unsigned, "MissingAuthenticationTokenException")]
    [InlineData(Forgery.WrongSecretKey, "InvalidSignatureException")]
    [InlineData(Forgery.UnknownKey, "UnrecognizedClientException")]
    [InlineData(Forgery.Expired, "InvalidSignatureException")]
    [InlineData(Forgery.TamperedBody, "InvalidSignatureException")]
    [InlineData(Forgery.TamperedSignedHeader, "InvalidSignatureException")]
    [InlineData(Forgery.DeletedKey, "UnrecognizedClientException")]
    public async Task Requests_that_do_not_prove_a_live_key_are_refused_with_the_AWS_code_and_reveal_nothing(Forgery forgery, string expectedCode)
    {
        await CreateSecretAsync($"ac/forged/{forgery}", "forged-s3cret");
        var user = await NewUserAsync($"ac-forger-{forgery}", Allow("secretsmanager:*", "*"));
        if (forgery == Forgery.DeletedKey)
        {
            await fixture.AdminAsync("DeleteAccessKey", new { UserName = user.Name, AccessKeyId = user.AccessKeyId });
        }
        var body = System.Text.Encoding.UTF8.GetBytes($$"""{"SecretId": "ac/forged/{{forgery}}"}""");
        using var request = new HttpRequestMessage(HttpMethod.Post, fixture.Server.Endpoint) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-amz-json-1.1");
        request.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager.GetSecretValue");
        if (forgery != Forgery.Unsigned)
        {
            var (id, secret) = forgery switch
            {
                Forgery.WrongSecretKey => (user.AccessKeyId, "not-the-secret-key"),
                Forgery.UnknownKey => ("AKIAUNKNOWNKEY000000", user.SecretAccessKey),
                _ => (user.AccessKeyId, user.SecretAccessKey),
            };
            Tumbler.Client.SigV4Signer.Sign(request, body, id, secret, "us-east-1", forgery == Forgery.Expired ? DateTimeOffset.UtcNow.AddMinutes(-16) : DateTimeOffset.UtcNow);
        }
        if (forgery == Forgery.TamperedBody)
        {
            request.Content = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes("""{"SecretId": "ac/forged/other"}"""));
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-amz-json-1.1");
        }
        if (forgery == Forgery.TamperedSignedHeader)
        {
            request.Headers.Remove("X-Amz-Target");
            request.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager.DescribeSecret");
        }
        using var response = await fixture.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(expectedCode, JsonDocument.Parse(text).RootElement.GetProperty("__type").GetString());
        Assert.DoesNotContain("forged-s3cret", text, StringComparison.Ordinal);
        Assert.DoesNotContain(user.SecretAccessKey, text, StringComparison.Ordinal);
    }
}
