using Tumbler.Client.Model;
using Tumbler.Client.Tests.Support;

namespace Tumbler.Client.Tests;

[Collection(ProcessEnvironment.Collection)]
public sealed class SecretsManagerClientTests : IAsyncLifetime
{
    private readonly LiveServer _server = new();

    public Task InitializeAsync() => _server.InitializeAsync();
    public Task DisposeAsync() => _server.DisposeAsync();

    [Fact]
    public async Task Create_get_put_describe_list_and_batch_get_round_trip_with_the_sdk_shapes()
    {
        using var concrete = _server.NewClient();
        ISecretsManager client = concrete;
        var created = await client.CreateSecretAsync(new CreateSecretRequest
        {
            Name = "prod/app/db",
            Description = "the app's database",
            SecretString = """{"username":"app","password":"p1"}""",
            Tags = [new Tag { Key = "team", Value = "core" }],
        });
        Assert.StartsWith("arn:aws:secretsmanager:us-east-1:", created.ARN);
        Assert.Equal("prod/app/db", created.Name);
        Assert.False(string.IsNullOrEmpty(created.VersionId));

        var got = await client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "prod/app/db" });
        Assert.Equal(created.ARN, got.ARN);
        Assert.Equal(created.VersionId, got.VersionId);
        Assert.Equal("""{"username":"app","password":"p1"}""", got.SecretString);
        Assert.Null(got.SecretBinary);
        Assert.Equal(["AWSCURRENT"], got.VersionStages);
        Assert.InRange(got.CreatedDate!.Value, DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddMinutes(1));
        Assert.Equal(DateTimeKind.Utc, got.CreatedDate.Value.Kind);

        var bytes = new byte[] { 0, 1, 2, 250, 255 };
        var put = await client.PutSecretValueAsync(new PutSecretValueRequest { SecretId = created.ARN, SecretBinary = new MemoryStream(bytes) });
        Assert.Equal(["AWSCURRENT"], put.VersionStages);
        var binary = await client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "prod/app/db" });
        Assert.Equal(bytes, binary.SecretBinary!.ToArray());
        Assert.Null(binary.SecretString);
        var previous = await client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "prod/app/db", VersionStage = "AWSPREVIOUS" });
        Assert.Equal(created.VersionId, previous.VersionId);

        var described = await client.DescribeSecretAsync(new DescribeSecretRequest { SecretId = "prod/app/db" });
        Assert.Equal("the app's database", described.Description);
        Assert.Equal(["AWSCURRENT"], described.VersionIdsToStages[put.VersionId!]);
        Assert.Equal(["AWSPREVIOUS"], described.VersionIdsToStages[created.VersionId!]);
        Assert.Equal("core", Assert.Single(described.Tags).Value);
        Assert.NotNull(described.CreatedDate);

        await _server.CreateAsync("prod/other", "x");
        var listed = await client.ListSecretsAsync(new ListSecretsRequest { Filters = [new Filter { Key = "name", Values = ["prod/app"] }] });
        var entry = Assert.Single(listed.SecretList);
        Assert.Equal("prod/app/db", entry.Name);
        Assert.Equal(2, entry.SecretVersionsToStages.Count);

        var batch = await client.BatchGetSecretValueAsync(new BatchGetSecretValueRequest { SecretIdList = ["prod/other", "prod/app/db", "nope"] });
        Assert.Equal(["prod/app/db", "prod/other"], batch.SecretValues.Select(v => v.Name).Order());
        Assert.Equal("x", batch.SecretValues.Single(v => v.Name == "prod/other").SecretString);
        Assert.Equal(bytes, batch.SecretValues.Single(v => v.Name == "prod/app/db").SecretBinary!.ToArray());
        var error = Assert.Single(batch.Errors);
        Assert.Equal(("nope", "ResourceNotFoundException"), (error.SecretId, error.ErrorCode));
    }

    [Fact]
    public async Task Server_errors_carry_the_aws_code_and_an_unreachable_server_is_a_client_exception()
    {
        using var client = _server.NewClient();
        var error = await Assert.ThrowsAsync<TumblerApiException>(() => client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "missing" }));
        Assert.Equal("ResourceNotFoundException", error.ErrorCode);
        Assert.Equal(400, error.StatusCode);

        using var wrongKey = new SecretsManagerClient(_server.Endpoint, new AwsCredentials(_server.Root.AccessKeyId, "wrong"), "us-east-1");
        var denied = await Assert.ThrowsAsync<TumblerApiException>(() => wrongKey.ListSecretsAsync(new ListSecretsRequest()));
        Assert.Equal("InvalidSignatureException", denied.ErrorCode);

        await _server.StopAsync();
        await Assert.ThrowsAsync<TumblerClientException>(() => client.ListSecretsAsync(new ListSecretsRequest()));
    }

    [Fact]
    public async Task FromEnvironment_reads_the_endpoint_credentials_and_region_as_the_sdks_do()
    {
        var saved = new[] { "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_SESSION_TOKEN" }
            .ToDictionary(n => n, Environment.GetEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL", "http://127.0.0.1:1");
            Environment.SetEnvironmentVariable("AWS_ENDPOINT_URL_SECRETS_MANAGER", _server.Endpoint.ToString());
            Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", _server.Root.AccessKeyId);
            Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", _server.Root.SecretAccessKey);
            Environment.SetEnvironmentVariable("AWS_SESSION_TOKEN", null);
            Environment.SetEnvironmentVariable("AWS_REGION", "us-east-1");
            using var client = SecretsManagerClient.FromEnvironment();
            Assert.Equal(_server.Endpoint, client.Endpoint);
            await client.CreateSecretAsync(new CreateSecretRequest { Name = "env", SecretString = "v" });
            Assert.Equal("v", (await client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "env" })).SecretString);
        }
        finally
        {
            foreach (var (name, value) in saved)
            {
                Environment.SetEnvironmentVariable(name, value);
            }
        }
    }
}
