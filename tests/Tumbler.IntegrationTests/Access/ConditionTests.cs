using System.Text.Json.Nodes;
using Tumbler.IntegrationTests.Support;
using static Tumbler.IntegrationTests.Access.TumblerProcess;

namespace Tumbler.IntegrationTests.Access;

/// <summary>
/// Policy conditions on the facts of a real connection: aws:SecureTransport (an HTTPS server with its
/// self-signed certificate pinned by --ca-bundle, and a plain HTTP one) and aws:SourceIp (the aws CLI
/// connects from 127.0.0.1).
/// </summary>
[Trait("Category", "Integration")]
public sealed class ConditionTests
{
    private static JsonObject SecureOnly() => new() { ["Bool"] = new JsonObject { ["aws:SecureTransport"] = "true" } };

    private static JsonObject FromNetwork(string cidr) => new() { ["IpAddress"] = new JsonObject { ["aws:SourceIp"] = cidr } };

    [Fact]
    public async Task A_policy_requiring_secure_transport_is_denied_over_http_and_allowed_over_https()
    {
        var servers = await Task.WhenAll(
            TumblerServer.StartAsync(new TumblerServerOptions { ExtraArgs = ["--tls-self-signed"] }),
            TumblerServer.StartAsync());
        await using var tls = servers[0];
        await using var plain = servers[1];
        var https = $"https://127.0.0.1:{tls.Port}";
        var certificate = Path.Combine(tls.DataDir, "tls", "cert.pem");
        var name = Unique("transport") + "/db";
        var value = "v-" + Guid.NewGuid().ToString("N");
        var policy = Allow(["secretsmanager:GetSecretValue"], "*", SecureOnly());

        // The same user, secret and policy on each server; over HTTPS also `tumbler iam --ca-bundle`.
        var secureSide = Task.Run(async () =>
        {
            var root = AwsCli.WithProfile(https, WriteCredentialsFile(Path.Combine(tls.DataDir, "root-profile"), ("root", tls.AccessKeyId, tls.SecretAccessKey)),
                "root", certificate);
            (await root.SecretsManager("create-secret", "--name", name, "--secret-string", value)).Ok();
            return await CreateUserAsync(tls, "app", policy, https, certificate);
        });
        var plainSide = Task.Run(async () =>
        {
            (await AwsCli.For(plain).SecretsManager("create-secret", "--name", name, "--secret-string", value)).Ok();
            return await CreateUserAsync(plain, "app", policy);
        });
        var (overTls, overHttp) = (await secureSide, await plainSide);

        var httpRead = await new AwsCli(plain.Endpoint, overHttp.AccessKeyId, overHttp.SecretAccessKey).SecretsManager("get-secret-value", "--secret-id", name);
        var message = AssertAwsError(httpRead, "AccessDeniedException", "GetSecretValue", value);
        Assert.StartsWith($"User: {overHttp.Arn} is not authorized to perform: secretsmanager:GetSecretValue on resource: ", message, StringComparison.Ordinal);

        var credentials = WriteCredentialsFile(Path.Combine(tls.DataDir, "app-profile"), ("app", overTls.AccessKeyId, overTls.SecretAccessKey));
        var httpsRead = await AwsCli.WithProfile(https, credentials, "app", certificate).SecretsManager("get-secret-value", "--secret-id", name);
        Assert.Equal(value, httpsRead.Ok().Json.Str("SecretString"));
    }

    [Fact]
    public async Task A_policy_limited_to_the_loopback_network_works_from_the_aws_cli_and_one_limited_to_10_0_0_0_8_is_denied()
    {
        await using var server = await TumblerServer.StartAsync();
        var name = Unique("ip") + "/db";
        var value = "v-" + Guid.NewGuid().ToString("N");
        (await AwsCli.For(server).SecretsManager("create-secret", "--name", name, "--secret-string", value)).Ok();
        var users = await Task.WhenAll(
            CreateUserAsync(server, Unique("local"), Allow(["secretsmanager:GetSecretValue"], "*", FromNetwork("127.0.0.0/8"))),
            CreateUserAsync(server, Unique("office"), Allow(["secretsmanager:GetSecretValue"], "*", FromNetwork("10.0.0.0/8"))));
        var (local, office) = (users[0], users[1]);

        var allowed = await new AwsCli(server.Endpoint, local.AccessKeyId, local.SecretAccessKey).SecretsManager("get-secret-value", "--secret-id", name);
        Assert.Equal(value, allowed.Ok().Json.Str("SecretString"));

        var denied = await new AwsCli(server.Endpoint, office.AccessKeyId, office.SecretAccessKey).SecretsManager("get-secret-value", "--secret-id", name);
        Assert.StartsWith($"User: {office.Arn} is not authorized to perform: secretsmanager:GetSecretValue",
            AssertAwsError(denied, "AccessDeniedException", "GetSecretValue", value), StringComparison.Ordinal);

        // Replacing the policy takes effect at once: the office user, now allowed from loopback, reads.
        (await IamAsRootAsync(server, "put-user-policy", "--user-name", office.UserName, "--policy-name", "main", "--policy-document",
            Allow(["secretsmanager:GetSecretValue"], "*", FromNetwork("127.0.0.1/32")))).Ok();
        Assert.Equal(value, (await new AwsCli(server.Endpoint, office.AccessKeyId, office.SecretAccessKey)
            .SecretsManager("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
    }
}
