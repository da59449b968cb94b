using System.Text.Json;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests.Client;

/// <summary>
/// <c>tumbler get|put|create|describe|list|delete|restore|rotate|versions|tag|configure</c> as processes against a
/// real <c>tumbler serve</c>: values byte for byte, human and JSON output, one-line errors, where settings come from.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ClientCommandTests(TumblerServerFixture fixture) : IClassFixture<TumblerServerFixture>
{
    private const string MySqlSingleUser = "arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSMySQLRotationSingleUser";

    private readonly TumblerCli _cli = TumblerCli.For(fixture.Server);

    [Fact]
    public async Task Put_from_stdin_and_get_round_trip_the_value_exactly_and_key_picks_one_member()
    {
        var name = TumblerCli.Unique("client") + "/app/db";
        const string first = "{\"username\":\"app\",\"password\":\"p@ss wörd \\\"q\\\"\",\"port\":5432}";
        (await _cli.RunWithInput(first, "create", "--name", name, "--value-file", "-", "--tags", "team=web", "env=prod")).Ok();

        Assert.Equal(first, (await _cli.Run("get", name)).Ok().Stdout);
        Assert.Equal("p@ss wörd \"q\"", (await _cli.Run("get", "--secret-id", name, "--key", "password")).Ok().Stdout);
        Assert.Equal("5432", (await _cli.Run("get", name, "--key", "port")).Ok().Stdout);
        TumblerCli.OneLineError(await _cli.Run("get", name, "--key", "nope"), $"tumbler: secret {name} has no key 'nope'");

        // Standard input is taken byte for byte, trailing newline included.
        var put = (await _cli.RunWithInput("second value\n", "put", name, "--value-file", "-")).Ok();
        Assert.StartsWith("Stored version ", put.Stdout, StringComparison.Ordinal);
        Assert.Equal("second value\n", (await _cli.Run("get", name)).Ok().Stdout);
        Assert.Equal(first, (await _cli.Run("get", name, "--version-stage", "AWSPREVIOUS")).Ok().Stdout);

        using var temp = new TempDirectory();
        var file = Path.Combine(temp.Path, "v");
        await File.WriteAllTextAsync(file, "third");
        (await _cli.Run("put", name, "--value-file", file)).Ok();
        var json = (await _cli.Run("get", name, "--output", "json")).Ok().Json;
        Assert.Equal("third", json.Str("SecretString"));
        Assert.Equal(["AWSCURRENT"], json.Strings("VersionStages"));
        var previousId = (await _cli.Run("versions", name, "--output", "json")).Ok().Json.GetProperty("Versions").EnumerateArray()
            .Single(v => v.Strings("VersionStages").Contains("AWSPREVIOUS")).Str("VersionId");
        Assert.Equal("second value\n", (await _cli.Run("get", name, "--version-id", previousId)).Ok().Stdout);

        TumblerCli.OneLineError(await _cli.Run("put", name), "tumbler: no value");
    }

    [Fact]
    public async Task Json_output_is_the_api_answer_and_parses()
    {
        var name = TumblerCli.Unique("client-json");
        var created = (await _cli.Run("create", "--name", name, "--description", "for scripts", "--value", "v1", "--output", "json")).Ok().Json;
        CliAssert.ArnOf(created.Str("ARN"), name);

        var described = (await _cli.Run("describe", name, "--output", "json")).Ok().Json;
        Assert.Equal("for scripts", described.Str("Description"));
        Assert.Equal(["AWSCURRENT"], described.GetProperty("VersionIdsToStages").GetProperty(created.Str("VersionId")).EnumerateArray().Select(s => s.GetString()!).ToArray());

        var listed = (await _cli.Run("list", "--name-prefix", name, "--output", "json")).Ok().Json;
        Assert.Equal(name, Assert.Single(listed.GetProperty("SecretList").EnumerateArray()).Str("Name"));

        var tagged = (await _cli.Run("tag", name, "--tags", "a=1", "b=2", "--output", "json")).Ok().Json;
        Assert.Equal(2, tagged.GetProperty("Tags").GetArrayLength());
        var untagged = (await _cli.Run("tag", name, "--remove", "a", "--output", "json")).Ok().Json;
        Assert.Equal("[{\"Key\":\"b\",\"Value\":\"2\"}]", JsonSerializer.Serialize(untagged.GetProperty("Tags")));
    }

    [Fact]
    public async Task Human_describe_shows_rotation_fields_and_version_stages_and_rotate_wait_reports_the_failure()
    {
        var name = TumblerCli.Unique("client-rot");
        // A database that refuses connections: the rotation fails at setSecret, and the server says so.
        (await _cli.Run("create", "--name", name, "--value", "{\"engine\":\"mysql\",\"host\":\"127.0.0.1\",\"port\":1,\"username\":\"u\",\"password\":\"p\"}")).Ok();
        var human = (await _cli.Run("describe", name)).Ok().Stdout;
        Assert.Contains("not configured", human, StringComparison.Ordinal);

        var rotate = await _cli.Run("rotate", name, "--rotation-lambda-arn", MySqlSingleUser, "--days", "30", "--wait", "--wait-timeout", "30");
        TumblerCli.OneLineError(rotate, $"tumbler: rotation of {name} failed: Retrying");
        Assert.Contains("setSecret", rotate.Stderr, StringComparison.Ordinal);

        human = (await _cli.Run("describe", name)).Ok().Stdout;
        foreach (var expected in new[] { "Rotation", "enabled", MySqlSingleUser, "every 30 days", "Last rotated", "never", "Next rotation", "In progress", "Retrying", "AWSCURRENT", "AWSPENDING" })
        {
            Assert.Contains(expected, human, StringComparison.Ordinal);
        }
        var versions = (await _cli.Run("versions", name)).Ok().Stdout;
        Assert.Contains("AWSPENDING", versions, StringComparison.Ordinal);
        Assert.Contains("AWSCURRENT", versions, StringComparison.Ordinal);

        var list = (await _cli.Run("list", "--name-prefix", name)).Ok().Stdout;
        Assert.Contains("every 30 days", list, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delete_and_restore_and_errors_are_one_line_with_a_non_zero_exit_code()
    {
        var name = TumblerCli.Unique("client-del");
        (await _cli.Run("create", "--name", name, "--value", "x")).Ok();
        var deleted = (await _cli.Run("delete", name, "--recovery-window-days", "7")).Ok().Stdout;
        Assert.Contains("scheduled for deletion", deleted, StringComparison.Ordinal);
        Assert.Contains("(in 7 days)", deleted, StringComparison.Ordinal);
        TumblerCli.OneLineError(await _cli.Run("get", name), "An error occurred (InvalidRequestException) when calling the GetSecretValue operation: ");
        Assert.Contains("Restored", (await _cli.Run("restore", name)).Ok().Stdout, StringComparison.Ordinal);
        Assert.Equal("x", (await _cli.Run("get", name)).Ok().Stdout);
        Assert.Contains("Deleted", (await _cli.Run("delete", name, "--force")).Ok().Stdout, StringComparison.Ordinal);

        TumblerCli.OneLineError(await _cli.Run("describe", name),
            "An error occurred (ResourceNotFoundException) when calling the DescribeSecret operation: Secrets Manager can't find the specified secret.");
        TumblerCli.OneLineError(await _cli.Run("get", name, "--endpoint-url", "http://127.0.0.1:1"), "tumbler: Could not reach http://127.0.0.1:1/");
        TumblerCli.OneLineError(await _cli.With(e => { e.Remove("AWS_ACCESS_KEY_ID"); e.Remove("AWS_SECRET_ACCESS_KEY"); }).Run("get", name), "tumbler: No credentials");
        TumblerCli.OneLineError(await _cli.With(e => e["AWS_SECRET_ACCESS_KEY"] = "wrong").Run("get", name), "An error occurred (");
        // A usage error too: one line, and nothing on standard output that `PW=$(tumbler get ...)` could take for the value.
        TumblerCli.OneLineError(await _cli.Run("get", name, "--bogus"), "tumbler: Unrecognized command or argument '--bogus'.");
    }

    [Fact]
    public async Task Configure_writes_a_private_profile_that_later_calls_use_without_flags()
    {
        using var home = new TempDirectory();
        var server = fixture.Server;
        var name = TumblerCli.Unique("client-conf");
        (await _cli.Run("create", "--name", name, "--value", "configured")).Ok();
        var bare = _cli.With(e =>
        {
            e["HOME"] = home.Path;
            e.Remove("AWS_ACCESS_KEY_ID");
            e.Remove("AWS_SECRET_ACCESS_KEY");
            e.Remove("AWS_ENDPOINT_URL");
            e.Remove("AWS_DEFAULT_REGION");
        });

        (await bare.RunWithInput(server.SecretAccessKey + "\n", "configure", "--endpoint-url", server.Endpoint, "--region", "us-east-1",
            "--access-key-id", server.AccessKeyId, "--secret-access-key", "-")).Ok();
        var config = Path.Combine(home.Path, ".tumbler", "config");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(config));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(config)!));
        var text = await File.ReadAllTextAsync(config);
        Assert.Contains("[default]", text, StringComparison.Ordinal);
        Assert.Contains($"aws_secret_access_key = {server.SecretAccessKey}\n", text, StringComparison.Ordinal);

        Assert.Equal("configured", (await bare.Run("get", name)).Ok().Stdout);

        // A named profile, selected with --profile or TUMBLER_PROFILE.
        (await bare.Run("configure", "--profile", "other", "--endpoint-url", "http://127.0.0.1:1")).Ok();
        TumblerCli.OneLineError(await bare.Run("get", name, "--profile", "other"), "tumbler: No credentials");
        (await bare.RunWithInput(server.SecretAccessKey, "configure", "--profile", "other", "--access-key-id", server.AccessKeyId, "--secret-access-key", "-")).Ok();
        TumblerCli.OneLineError(await bare.With(e => e["TUMBLER_PROFILE"] = "other").Run("get", name), "tumbler: Could not reach http://127.0.0.1:1/");
        Assert.Equal("configured", (await bare.Run("get", name)).Ok().Stdout);

        // With no section for it in ~/.tumbler/config, TUMBLER_PROFILE names the ~/.aws profile: never the default's keys.
        var awsCredentials = Path.Combine(home.Path, "aws-credentials");
        await File.WriteAllTextAsync(awsCredentials, $"[default]\naws_access_key_id = {server.AccessKeyId}\naws_secret_access_key = {server.SecretAccessKey}\n"
            + "[limited]\naws_access_key_id = AKIAUNKNOWN000000000\naws_secret_access_key = not-this-servers\n");
        var awsFilesOnly = bare.With(e =>
        {
            e["AWS_SHARED_CREDENTIALS_FILE"] = awsCredentials;
            e["TUMBLER_CONFIG_FILE"] = Path.Combine(home.Path, "no-tumbler-config");
            e["AWS_ENDPOINT_URL"] = server.Endpoint.ToString();
        });
        Assert.Equal("configured", (await awsFilesOnly.Run("get", name)).Ok().Stdout);
        TumblerCli.OneLineError(await awsFilesOnly.With(e => e["TUMBLER_PROFILE"] = "limited").Run("get", name), "An error occurred (UnrecognizedClientException)");
        TumblerCli.OneLineError(await awsFilesOnly.With(e => e["TUMBLER_PROFILE"] = "typo").Run("get", name), "tumbler: No credentials");
    }

    [Fact]
    public async Task Flags_beat_the_environment_which_beats_the_config_which_beats_aws_files()
    {
        using var home = new TempDirectory();
        var server = fixture.Server;
        var name = TumblerCli.Unique("client-prec");
        (await _cli.Run("create", "--name", name, "--value", "found")).Ok();
        const string Dead = "http://127.0.0.1:1";
        var configDir = Directory.CreateDirectory(Path.Combine(home.Path, ".tumbler")).FullName;
        await File.WriteAllTextAsync(Path.Combine(configDir, "config"),
            $"[default]\nendpoint_url = {Dead}\nregion = us-east-1\naws_access_key_id = {server.AccessKeyId}\naws_secret_access_key = {server.SecretAccessKey}\n");
        var awsCredentials = Path.Combine(home.Path, "aws-credentials");
        await File.WriteAllTextAsync(awsCredentials, "[default]\naws_access_key_id = AKIAWRONGWRONGWRONG1\naws_secret_access_key = wrong\n");
        var cli = _cli.With(e =>
        {
            e["HOME"] = home.Path;
            e["AWS_SHARED_CREDENTIALS_FILE"] = awsCredentials;
            e.Remove("AWS_ACCESS_KEY_ID");
            e.Remove("AWS_SECRET_ACCESS_KEY");
            e.Remove("AWS_ENDPOINT_URL");
        });

        // Endpoint: config alone -> the dead one; environment over config; flag over environment.
        TumblerCli.OneLineError(await cli.Run("get", name), $"tumbler: Could not reach {Dead}/");
        Assert.Equal("found", (await cli.With(e => e["AWS_ENDPOINT_URL"] = server.Endpoint).Run("get", name)).Ok().Stdout);
        Assert.Equal("found", (await cli.With(e => e["AWS_ENDPOINT_URL"] = Dead).Run("get", name, "--endpoint-url", server.Endpoint)).Ok().Stdout);

        // Credentials: the config's (right) keys beat ~/.aws's wrong ones; environment keys beat the config's.
        var live = cli.With(e => e["AWS_ENDPOINT_URL"] = server.Endpoint);
        Assert.Equal("found", (await live.Run("get", name)).Ok().Stdout);
        TumblerCli.OneLineError(await live.With(e => { e["AWS_ACCESS_KEY_ID"] = "AKIAWRONGWRONGWRONG2"; e["AWS_SECRET_ACCESS_KEY"] = "wrong"; }).Run("get", name), "An error occurred (");

        // ~/.aws is the last resort: with no config file its keys are used.
        File.Delete(Path.Combine(configDir, "config"));
        await File.WriteAllTextAsync(awsCredentials, $"[default]\naws_access_key_id = {server.AccessKeyId}\naws_secret_access_key = {server.SecretAccessKey}\n");
        Assert.Equal("found", (await live.Run("get", name)).Ok().Stdout);
    }
}
