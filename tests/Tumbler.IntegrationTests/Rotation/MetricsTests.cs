using System.Globalization;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests.Rotation;

/// <summary>What a Prometheus scrape of `tumbler serve --metrics` shows after real traffic and a real rotation.</summary>
[Trait("Category", "Integration")]
public sealed class MetricsTests
{
    /// <summary>The value of one sample line, e.g. <c>tumbler_requests_total{operation="GetSecretValue",outcome="Success"}</c>.</summary>
    private static double? Sample(string scrape, string series) =>
        scrape.Split('\n').Where(line => line.StartsWith(series + " ", StringComparison.Ordinal))
            .Select(line => (double?)double.Parse(line[(series.Length + 1)..].Split(' ')[0], CultureInfo.InvariantCulture)).FirstOrDefault();

    [Fact]
    public async Task Requests_rotations_and_the_time_since_each_secret_last_rotated_are_scraped()
    {
        var (user, initial) = await RotationProcessTests.CreateDatabaseUserAsync();
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions
        {
            Environment = RotationProcessTests.FastRotation,
            ExtraArgs = ["--metrics"],
        });
        var cli = AwsCli.For(server);
        var secretId = $"metrics/{user}";
        var arn = (await cli.SecretsManager("create-secret", "--name", secretId,
            "--secret-string", RotationProcessTests.SecretJson(user, initial, MariaDb.Port))).Ok().Json.GetProperty("ARN").GetString()!;
        (await cli.SecretsManager("get-secret-value", "--secret-id", secretId)).Ok();
        Assert.NotEqual(0, (await cli.SecretsManager("get-secret-value", "--secret-id", "metrics/missing")).ExitCode);
        (await cli.SecretsManager("rotate-secret", "--secret-id", secretId, "--rotation-lambda-arn", RotationProcessTests.SingleUserArn,
            "--rotation-rules", "AutomaticallyAfterDays=30")).Ok();
        await RotationProcessTests.WaitForRotationAsync(cli, secretId, TimeSpan.FromSeconds(60));

        using var http = new HttpClient();
        var scrape = await http.GetStringAsync($"{server.Endpoint}/metrics");

        Assert.Equal(1, Sample(scrape, """tumbler_requests_total{operation="GetSecretValue",outcome="Success"}"""));
        Assert.Equal(1, Sample(scrape, """tumbler_requests_total{operation="GetSecretValue",outcome="Failed"}"""));
        Assert.Equal(2, Sample(scrape, """tumbler_request_duration_seconds_count{operation="GetSecretValue"}"""));
        Assert.True(Sample(scrape, """tumbler_store_operation_duration_seconds_count{operation="FindSecretAsync"}""") >= 2);
        Assert.True(Sample(scrape, """tumbler_store_operation_duration_seconds_count{operation="write_transaction"}""") >= 1);
        foreach (var step in new[] { "createSecret", "setSecret", "testSecret", "finishSecret" })
        {
            Assert.Equal(1, Sample(scrape, $$"""tumbler_rotation_steps_total{function="SecretsManagerRDSMariaDBRotationSingleUser",step="{{step}}",result="success"}"""));
        }
        Assert.Equal(1, Sample(scrape, """tumbler_rotation_attempts_total{function="SecretsManagerRDSMariaDBRotationSingleUser",result="success"}"""));
        var sinceRotation = Sample(scrape, $$"""tumbler_secret_seconds_since_last_rotation{secret="{{arn}}"}""");
        Assert.NotNull(sinceRotation);
        Assert.InRange(sinceRotation.Value, 0, 120);
        Assert.Equal(0, Sample(scrape, "tumbler_rotations_in_progress"));
        Assert.DoesNotContain(initial, scrape, StringComparison.Ordinal);

        // Without --metrics there is nothing to scrape.
        await using var quiet = await TumblerServer.StartAsync(new TumblerServerOptions());
        using var none = await http.GetAsync($"{quiet.Endpoint}/metrics");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, none.StatusCode);
    }
}
