using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Tumbler.IntegrationTests.Support;
using static Tumbler.IntegrationTests.Access.TumblerProcess;

namespace Tumbler.IntegrationTests.Access;

/// <summary>
/// <c>tumbler iam</c> as a process against <c>tumbler serve</c>: what it prints (the <c>aws iam</c> shapes),
/// how its errors look, where it takes credentials from, and that what it changes is felt at once by the
/// aws CLI (an inactive or deleted key is refused on the next request).
/// </summary>
[Trait("Category", "Integration")]
public sealed partial class IamCommandTests(TumblerServerFixture fixture) : IClassFixture<TumblerServerFixture>, IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private TumblerServer Server => fixture.Server;

    private Task<CliResult> Root(params string[] args) => IamAsRootAsync(Server, args);

    [GeneratedRegex(@"^AKIA[A-Z2-7]{16}$")]
    private static partial Regex AccessKeyIdPattern();

    [GeneratedRegex(@"^[A-Za-z0-9+/]{40}$")]
    private static partial Regex SecretPattern();

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")]
    private static partial Regex IamDatePattern();

    [Fact]
    public async Task Create_access_key_prints_exactly_what_aws_iam_create_access_key_prints()
    {
        var user = Unique("shape");
        (await Root("create-user", "--user-name", user)).Ok();
        var created = (await Root("create-access-key", "--user-name", user)).Ok();

        var key = created.Json.GetProperty("AccessKey");
        Assert.Equal(["AccessKey"], created.Json.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["UserName", "AccessKeyId", "Status", "SecretAccessKey", "CreateDate"], key.EnumerateObject().Select(p => p.Name));
        Assert.Equal(user, key.Str("UserName"));
        Assert.Matches(AccessKeyIdPattern(), key.Str("AccessKeyId"));
        Assert.Equal("Active", key.Str("Status"));
        Assert.Matches(SecretPattern(), key.Str("SecretAccessKey"));
        Assert.Matches(IamDatePattern(), key.Str("CreateDate"));
        var createDate = DateTimeOffset.Parse(key.Str("CreateDate"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(createDate, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1));

        // Byte for byte the aws CLI's rendering (json.dumps, indent 4, no \u escapes): a secret with '+' or '/'
        // must be copyable from the terminal as it is.
        var expected = $$"""
            {
                "AccessKey": {
                    "UserName": "{{user}}",
                    "AccessKeyId": "{{key.Str("AccessKeyId")}}",
                    "Status": "Active",
                    "SecretAccessKey": "{{key.Str("SecretAccessKey")}}",
                    "CreateDate": "{{key.Str("CreateDate")}}"
                }
            }

            """;
        Assert.Equal(expected, created.Stdout);
        Assert.Equal("", created.Stderr);

        // The key is shown once: list-access-keys has it without the secret.
        var listed = (await Root("list-access-keys", "--user-name", user)).Ok();
        var metadata = Assert.Single(listed.Json.GetProperty("AccessKeyMetadata").EnumerateArray());
        Assert.Equal(["UserName", "AccessKeyId", "Status", "CreateDate"], metadata.EnumerateObject().Select(p => p.Name));
        Assert.Equal(key.Str("AccessKeyId"), metadata.Str("AccessKeyId"));
        AssertNotIn(listed, key.Str("SecretAccessKey"));
    }

    [Fact]
    public async Task A_policy_from_a_file_takes_effect_and_an_inactive_or_deleted_key_is_refused_at_once()
    {
        var secretName = Unique("iamapp") + "/db";
        var secretValue = "v-" + Guid.NewGuid().ToString("N");
        var secretArn = (await fixture.Cli.SecretsManager("create-secret", "--name", secretName, "--secret-string", secretValue)).Ok().Json.Str("ARN");

        var user = Unique("app");
        (await Root("create-user", "--user-name", user)).Ok();
        var key = (await Root("create-access-key", "--user-name", user)).Ok().Json.GetProperty("AccessKey");
        var (id, secret) = (key.Str("AccessKeyId"), key.Str("SecretAccessKey"));
        var cli = new AwsCli(Server.Endpoint, id, secret);

        // Before any policy: denied.
        AssertAwsError(await cli.SecretsManager("get-secret-value", "--secret-id", secretName), "AccessDeniedException", "GetSecretValue", secretValue);

        var policyFile = Path.Combine(_temp.Path, "read-policy.json");
        var policy = Allow(["secretsmanager:GetSecretValue"], secretArn);
        await File.WriteAllTextAsync(policyFile, policy);
        var put = (await Root("put-user-policy", "--user-name", user, "--policy-name", "read", "--policy-document", "file://" + policyFile)).Ok();
        Assert.Equal("", put.Stdout);
        Assert.Equal(["read"], (await Root("list-user-policies", "--user-name", user)).Ok().Json.Strings("PolicyNames"));
        // get-user-policy prints the document as a JSON object, as aws iam does (botocore decodes IAM policy documents).
        var stored = (await Root("get-user-policy", "--user-name", user, "--policy-name", "read")).Ok().Json;
        Assert.Equal(user, stored.Str("UserName"));
        Assert.Equal("read", stored.Str("PolicyName"));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(policy), JsonNode.Parse(stored.GetProperty("PolicyDocument").GetRawText())), stored.ToString());

        Assert.Equal(secretValue, (await cli.SecretsManager("get-secret-value", "--secret-id", secretName)).Ok().Json.Str("SecretString"));

        // Inactive: the very next request with the key is refused as an unknown key; Active brings it back.
        Assert.Equal("", (await Root("update-access-key", "--user-name", user, "--access-key-id", id, "--status", "Inactive")).Ok().Stdout);
        Assert.Equal("The security token included in the request is invalid.",
            AssertAwsError(await cli.SecretsManager("get-secret-value", "--secret-id", secretName), "UnrecognizedClientException", "GetSecretValue", secretValue));
        Assert.Equal("Inactive", Assert.Single((await Root("list-access-keys", "--user-name", user)).Ok().Json.GetProperty("AccessKeyMetadata").EnumerateArray()).Str("Status"));
        // --user-name may be left out, as with aws iam.
        (await Root("update-access-key", "--access-key-id", id, "--status", "Active")).Ok();
        Assert.Equal(secretValue, (await cli.SecretsManager("get-secret-value", "--secret-id", secretName)).Ok().Json.Str("SecretString"));

        // Deleted: refused, and gone from the list.
        Assert.Equal("", (await Root("delete-access-key", "--user-name", user, "--access-key-id", id)).Ok().Stdout);
        AssertAwsError(await cli.SecretsManager("get-secret-value", "--secret-id", secretName), "UnrecognizedClientException", "GetSecretValue", secretValue);
        Assert.Equal(0, (await Root("list-access-keys", "--user-name", user)).Ok().Json.GetProperty("AccessKeyMetadata").GetArrayLength());

        (await Root("delete-user-policy", "--user-name", user, "--policy-name", "read")).Ok();
        (await Root("delete-user", "--user-name", user)).Ok();
        Assert.Equal($"An error occurred (NoSuchEntity) when calling the GetUser operation: The user with name {user} cannot be found.",
            AssertOneLineError(await Root("get-user", "--user-name", user)));
    }

    [Fact]
    public async Task Errors_are_one_aws_style_line_on_stderr_with_exit_code_1()
    {
        var user = Unique("err");
        var missing = await Task.WhenAll(
            Root("get-user", "--user-name", user),
            Root("delete-access-key", "--access-key-id", "AKIAAAAAAAAAAAAAAAAA"),
            Root("put-user-policy", "--user-name", user, "--policy-name", "p", "--policy-document", Allow(["secretsmanager:ListSecrets"], "*")));
        Assert.Equal($"An error occurred (NoSuchEntity) when calling the GetUser operation: The user with name {user} cannot be found.",
            AssertOneLineError(missing[0]));
        Assert.Equal("An error occurred (NoSuchEntity) when calling the DeleteAccessKey operation: The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found.",
            AssertOneLineError(missing[1]));
        Assert.Equal($"An error occurred (NoSuchEntity) when calling the PutUserPolicy operation: The user with name {user} cannot be found.",
            AssertOneLineError(missing[2]));

        (await Root("create-user", "--user-name", user)).Ok();
        var refused = await Task.WhenAll(
            Root("create-user", "--user-name", user),
            Root("put-user-policy", "--user-name", user, "--policy-name", "p", "--policy-document", "{\"Statement\": 5}"),
            Root("put-user-policy", "--user-name", user, "--policy-name", "p", "--policy-document", "file:///nonexistent/policy.json"),
            Root("create-access-key", "--user-name", user),
            Root("create-access-key", "--user-name", user));
        Assert.Equal($"An error occurred (EntityAlreadyExists) when calling the CreateUser operation: User with name {user} already exists.",
            AssertOneLineError(refused[0]));
        Assert.StartsWith("An error occurred (MalformedPolicyDocument) when calling the PutUserPolicy operation: ",
            AssertOneLineError(refused[1]), StringComparison.Ordinal);
        Assert.Equal("tumbler: Cannot read /nonexistent/policy.json: no such file.", AssertOneLineError(refused[2]));
        refused[3].Ok();
        refused[4].Ok();

        var third = Root("create-access-key", "--user-name", user);
        var delete = Root("delete-user", "--user-name", user);
        Assert.Equal("An error occurred (LimitExceeded) when calling the CreateAccessKey operation: Cannot exceed quota for AccessKeysPerUser: 2",
            AssertOneLineError(await third));
        Assert.Equal("An error occurred (DeleteConflict) when calling the DeleteUser operation: Cannot delete entity, must delete access keys and policies first.",
            AssertOneLineError(await delete));
    }

    [Fact]
    public async Task Credentials_come_from_the_aws_environment_variables_or_from_a_named_profile()
    {
        var credentials = WriteCredentialsFile(Path.Combine(_temp.Path, "credentials"),
            ("default", "AKIAZZZZZZZZZZZZZZZZ", "not-a-real-secret-not-a-real-secret-0000"),
            ("admin", Server.AccessKeyId, Server.SecretAccessKey));
        var environment = ProcessRunner.BaseEnvironment(null, null);
        environment["AWS_SHARED_CREDENTIALS_FILE"] = credentials;

        var user = Unique("cred");
        var viaProfile = (await RunAsync(environment, "iam", "create-user", "--user-name", user, "--profile", "admin", "--endpoint-url", Server.Endpoint)).Ok();
        Assert.Equal(UserArn(user), viaProfile.Json.GetProperty("User").Str("Arn"));

        // Without --profile the [default] profile signs, and the server does not know that key.
        Assert.Equal("An error occurred (UnrecognizedClientException) when calling the GetUser operation: The security token included in the request is invalid.",
            AssertOneLineError(await RunAsync(environment, "iam", "get-user", "--user-name", user, "--endpoint-url", Server.Endpoint)));

        // AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (what Root() uses) win over the file.
        environment["AWS_ACCESS_KEY_ID"] = Server.AccessKeyId;
        environment["AWS_SECRET_ACCESS_KEY"] = Server.SecretAccessKey;
        var viaEnvironment = (await RunAsync(environment, "iam", "get-user", "--user-name", user, "--endpoint-url", Server.Endpoint)).Ok();
        Assert.Equal(UserArn(user), viaEnvironment.Json.GetProperty("User").Str("Arn"));
    }

    [Fact]
    public async Task Only_a_user_whose_policy_allows_iam_actions_may_manage_users()
    {
        var pair = await Task.WhenAll(
            CreateUserAsync(Server, Unique("plain"), Allow(["secretsmanager:*"], "*")),
            CreateUserAsync(Server, Unique("admin"), Allow(["iam:*"], "*")));
        var (plain, admin) = (pair[0], pair[1]);
        var target = Unique("made");

        var denied = await IamAsync(Server.Endpoint, plain.AccessKeyId, plain.SecretAccessKey, null, "create-user", "--user-name", target);
        Assert.Equal("An error occurred (AccessDeniedException) when calling the CreateUser operation: "
            + NotAuthorized(plain.Arn, "iam:CreateUser", UserArn(target)), AssertOneLineError(denied));
        AssertOneLineError(await Root("get-user", "--user-name", target)); // nothing was made

        var made = (await IamAsync(Server.Endpoint, admin.AccessKeyId, admin.SecretAccessKey, null, "create-user", "--user-name", target)).Ok();
        Assert.Equal(UserArn(target), made.Json.GetProperty("User").Str("Arn"));
        var key = (await IamAsync(Server.Endpoint, admin.AccessKeyId, admin.SecretAccessKey, null, "create-access-key", "--user-name", target)).Ok();
        Assert.Equal(target, key.Json.GetProperty("AccessKey").Str("UserName"));
        var users = (await IamAsync(Server.Endpoint, admin.AccessKeyId, admin.SecretAccessKey, null, "list-users")).Ok().Json.GetProperty("Users")
            .EnumerateArray().Select(u => u.Str("UserName")).ToList();
        Assert.Contains(target, users);
        Assert.Contains(plain.UserName, users);
    }
}
