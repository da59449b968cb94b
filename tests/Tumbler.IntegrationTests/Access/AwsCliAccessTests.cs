using System.Text.Json.Nodes;
using Tumbler.IntegrationTests.Support;
using static Tumbler.IntegrationTests.Access.TumblerProcess;

namespace Tumbler.IntegrationTests.Access;

/// <summary>
/// One server with two users made by <c>tumbler iam</c>: a reader allowed to read and list the secrets
/// under its own prefix, and an outsider allowed nothing. Both sit as profiles in one shared-credentials file.
/// </summary>
public sealed class AccessServerFixture : IAsyncLifetime
{
    private TempDirectory? _temp;
    private TumblerServer? _server;

    public TumblerServer Server => _server ?? throw new InvalidOperationException("server not started");
    /// <summary>The reader may Get/Describe/BatchGet secrets named <see cref="ReaderPrefix"/>* and call ListSecrets.</summary>
    public string ReaderPrefix { get; } = Unique("team") + "/";
    public IamUserKey Reader { get; private set; } = null!;
    public IamUserKey Outsider { get; private set; } = null!;
    public string CredentialsFile { get; private set; } = "";

    public AwsCli Root => AwsCli.For(Server);
    public AwsCli AsReader => AwsCli.WithProfile(Server.Endpoint, CredentialsFile, "reader");
    public AwsCli AsOutsider => AwsCli.WithProfile(Server.Endpoint, CredentialsFile, "outsider");

    public async Task InitializeAsync()
    {
        _temp = new TempDirectory();
        _server = await TumblerServer.StartAsync();
        var readerPolicy = Policy(
            new JsonObject { ["Effect"] = "Allow", ["Action"] = "secretsmanager:ListSecrets", ["Resource"] = "*" },
            new JsonObject
            {
                ["Effect"] = "Allow",
                ["Action"] = new JsonArray("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:BatchGetSecretValue"),
                ["Resource"] = SecretArnPattern(ReaderPrefix + "*"),
            });
        var users = await Task.WhenAll(
            CreateUserAsync(Server, Unique("reader"), readerPolicy),
            CreateUserAsync(Server, Unique("outsider"), null));
        (Reader, Outsider) = (users[0], users[1]);
        CredentialsFile = WriteCredentialsFile(Path.Combine(_temp.Path, "credentials"),
            ("reader", Reader.AccessKeyId, Reader.SecretAccessKey), ("outsider", Outsider.AccessKeyId, Outsider.SecretAccessKey));
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        _temp?.Dispose();
    }
}

/// <summary>
/// Debian's aws CLI v2 against a server with users: what each profile may read and list, how a denial
/// looks (exit 254, the AWS message naming the user and action, never the value), and the resource-policy
/// commands (put with --block-public-policy, get, validate, delete).
/// </summary>
[Trait("Category", "Integration")]
public sealed class AwsCliAccessTests(AccessServerFixture fixture) : IClassFixture<AccessServerFixture>
{
    private async Task<(string Name, string Arn, string Value)> CreateSecretAsync(string name)
    {
        var value = "value-" + Guid.NewGuid().ToString("N");
        var created = (await fixture.Root.SecretsManager("create-secret", "--name", name, "--secret-string", value)).Ok().Json;
        return (name, created.Str("ARN"), value);
    }

    [Fact]
    public async Task One_profile_reads_and_lists_its_secrets_the_other_is_denied_by_name_and_action_without_the_value()
    {
        var created = await Task.WhenAll(CreateSecretAsync(fixture.ReaderPrefix + "db"), CreateSecretAsync(Unique("elsewhere") + "/db"));
        var (mine, other) = (created[0], created[1]);

        // Independent calls, run side by side (each is a separate aws process).
        var readTask = fixture.AsReader.SecretsManager("get-secret-value", "--secret-id", mine.Name);
        var deniedTask = fixture.AsOutsider.SecretsManager("get-secret-value", "--secret-id", mine.Name);
        var outOfScopeTask = fixture.AsReader.SecretsManager("get-secret-value", "--secret-id", other.Arn);
        var listTask = fixture.AsReader.SecretsManager("list-secrets");
        var outsiderListTask = fixture.AsOutsider.SecretsManager("list-secrets");
        await Task.WhenAll(readTask, deniedTask, outOfScopeTask, listTask, outsiderListTask);

        var read = (await readTask).Ok().Json;
        Assert.Equal(mine.Value, read.Str("SecretString"));
        Assert.Equal(mine.Arn, read.Str("ARN"));

        var message = AssertAwsError(await deniedTask, "AccessDeniedException", "GetSecretValue", mine.Value);
        Assert.Equal(NotAuthorized(fixture.Outsider.Arn, "secretsmanager:GetSecretValue", mine.Name), message);

        // The reader's policy stops at its prefix.
        Assert.Equal(NotAuthorized(fixture.Reader.Arn, "secretsmanager:GetSecretValue", other.Arn),
            AssertAwsError(await outOfScopeTask, "AccessDeniedException", "GetSecretValue", other.Value));

        // list-secrets shows the reader only what it may describe; the outsider may not list at all.
        var listed = (await listTask).Ok().Json.GetProperty("SecretList").EnumerateArray().Select(s => s.Str("Name")).ToList();
        Assert.Contains(mine.Name, listed);
        Assert.DoesNotContain(other.Name, listed);
        Assert.All(listed, name => Assert.StartsWith(fixture.ReaderPrefix, name, StringComparison.Ordinal));
        Assert.Equal(NotAuthorized(fixture.Outsider.Arn, "secretsmanager:ListSecrets", "*"),
            AssertAwsError(await outsiderListTask, "AccessDeniedException", "ListSecrets"));
    }

    [Fact]
    public async Task A_resource_policy_put_with_block_public_policy_grants_the_other_user_until_deleted_and_a_public_one_is_refused()
    {
        var shared = await CreateSecretAsync(Unique("shared") + "/api");
        var grant = new JsonObject
        {
            ["Version"] = "2012-10-17",
            ["Statement"] = new JsonArray(new JsonObject
            {
                ["Effect"] = "Allow",
                ["Principal"] = new JsonObject { ["AWS"] = fixture.Outsider.Arn },
                ["Action"] = "secretsmanager:GetSecretValue",
                ["Resource"] = "*",
            }),
        }.ToJsonString();
        var publicPolicy = grant.Replace($"\"{fixture.Outsider.Arn}\"", "\"*\"", StringComparison.Ordinal);
        Assert.NotEqual(grant, publicPolicy);

        // Before: denied. Validation passes the grant and names the problem of the policy open to everyone.
        var beforeTask = fixture.AsOutsider.SecretsManager("get-secret-value", "--secret-id", shared.Name);
        var validatedTask = fixture.Root.SecretsManager("validate-resource-policy", "--secret-id", shared.Name, "--resource-policy", grant);
        var invalidTask = fixture.Root.SecretsManager("validate-resource-policy", "--secret-id", shared.Name, "--resource-policy", publicPolicy);
        await Task.WhenAll(beforeTask, validatedTask, invalidTask);
        AssertAwsError(await beforeTask, "AccessDeniedException", "GetSecretValue", shared.Value);
        var validated = (await validatedTask).Ok().Json;
        Assert.True(validated.GetProperty("PolicyValidationPassed").GetBoolean(), validated.ToString());
        Assert.Equal(0, validated.GetProperty("ValidationErrors").GetArrayLength());
        var invalid = (await invalidTask).Ok().Json;
        Assert.False(invalid.GetProperty("PolicyValidationPassed").GetBoolean(), invalid.ToString());
        Assert.NotEqual(0, invalid.GetProperty("ValidationErrors").GetArrayLength());

        var put = (await fixture.Root.SecretsManager("put-resource-policy", "--secret-id", shared.Name, "--resource-policy", grant,
            "--block-public-policy")).Ok().Json;
        Assert.Equal(shared.Arn, put.Str("ARN"));
        Assert.Equal(shared.Name, put.Str("Name"));

        // Now the outsider reads; the public policy is refused with --block-public-policy.
        var grantedTask = fixture.AsOutsider.SecretsManager("get-secret-value", "--secret-id", shared.Name);
        var refusedTask = fixture.Root.SecretsManager("put-resource-policy", "--secret-id", shared.Name, "--resource-policy", publicPolicy,
            "--block-public-policy");
        await Task.WhenAll(grantedTask, refusedTask);
        Assert.Equal(shared.Value, (await grantedTask).Ok().Json.Str("SecretString"));
        AssertAwsError(await refusedTask, "PublicPolicyException", "PutResourcePolicy", shared.Value);

        // get-resource-policy shows the grant as it was put (the refused one changed nothing).
        var got = (await fixture.Root.SecretsManager("get-resource-policy", "--secret-id", shared.Name)).Ok().Json;
        Assert.Equal(shared.Arn, got.Str("ARN"));
        Assert.Equal(shared.Name, got.Str("Name"));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(grant), JsonNode.Parse(got.Str("ResourcePolicy"))), got.ToString());

        var deleted = (await fixture.Root.SecretsManager("delete-resource-policy", "--secret-id", shared.Name)).Ok().Json;
        Assert.Equal(shared.Arn, deleted.Str("ARN"));
        var noneTask = fixture.Root.SecretsManager("get-resource-policy", "--secret-id", shared.Name);
        var afterTask = fixture.AsOutsider.SecretsManager("get-secret-value", "--secret-id", shared.Name);
        await Task.WhenAll(noneTask, afterTask);
        var none = (await noneTask).Ok().Json;
        Assert.False(none.TryGetProperty("ResourcePolicy", out _), none.ToString());
        Assert.Equal(NotAuthorized(fixture.Outsider.Arn, "secretsmanager:GetSecretValue", shared.Name),
            AssertAwsError(await afterTask, "AccessDeniedException", "GetSecretValue", shared.Value));
    }

    [Fact]
    public async Task An_explicit_deny_in_the_resource_policy_overrides_the_readers_own_allow()
    {
        var guarded = await CreateSecretAsync(fixture.ReaderPrefix + Unique("guarded"));
        var deny = new JsonObject
        {
            ["Version"] = "2012-10-17",
            ["Statement"] = new JsonArray(new JsonObject
            {
                ["Effect"] = "Deny",
                ["Principal"] = new JsonObject { ["AWS"] = fixture.Reader.Arn },
                ["Action"] = "secretsmanager:GetSecretValue",
                ["Resource"] = "*",
            }),
        }.ToJsonString();
        (await fixture.Root.SecretsManager("put-resource-policy", "--secret-id", guarded.Name, "--resource-policy", deny, "--block-public-policy")).Ok();

        var denied = await fixture.AsReader.SecretsManager("get-secret-value", "--secret-id", guarded.Name);
        Assert.Equal(NotAuthorized(fixture.Reader.Arn, "secretsmanager:GetSecretValue", guarded.Name, "with an explicit deny in a resource-based policy"),
            AssertAwsError(denied, "AccessDeniedException", "GetSecretValue", guarded.Value));
        // Only GetSecretValue is denied: describing still works.
        Assert.Equal(guarded.Arn, (await fixture.AsReader.SecretsManager("describe-secret", "--secret-id", guarded.Name)).Ok().Json.Str("ARN"));
    }
}
