using System.Text.RegularExpressions;
using Tumbler.IntegrationTests.Support;
using static Tumbler.IntegrationTests.Access.TumblerProcess;

namespace Tumbler.IntegrationTests.Keys;

/// <summary><c>tumbler keys</c> as a process against <c>tumbler serve</c>: the aws kms shapes it prints and its errors.</summary>
[Trait("Category", "Integration")]
public sealed partial class KeysCommandTests(TumblerServerFixture fixture) : IClassFixture<TumblerServerFixture>
{
    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$")]
    private static partial Regex CliDatePattern();

    private Task<CliResult> Keys(params string[] args) =>
        RunAsync(ProcessRunner.BaseEnvironment(fixture.Server.AccessKeyId, fixture.Server.SecretAccessKey),
            ["keys", .. args, "--endpoint-url", fixture.Server.Endpoint]);

    [Fact]
    public async Task Create_alias_disable_enable_and_schedule_deletion_print_the_aws_kms_shapes()
    {
        var created = (await Keys("create", "--description", "cli key")).Ok().Json.GetProperty("KeyMetadata");
        var keyId = created.Str("KeyId");
        Assert.Equal($"arn:aws:kms:us-east-1:{Account}:key/{keyId}", created.Str("Arn"));
        Assert.Equal("Enabled", created.Str("KeyState"));
        Assert.Matches(CliDatePattern(), created.Str("CreationDate"));

        var alias = $"alias/cli-{Guid.NewGuid():N}";
        var aliased = await Keys("create-alias", "--alias-name", alias, "--target-key-id", keyId);
        Assert.Equal("", aliased.Ok().Stdout.Trim());
        (await Keys("disable", "--key-id", alias)).Ok();
        var disabled = (await Keys("describe", "--key-id", $"arn:aws:kms:us-east-1:{Account}:{alias}")).Ok().Json.GetProperty("KeyMetadata");
        Assert.Equal(("Disabled", keyId), (disabled.Str("KeyState"), disabled.Str("KeyId")));
        (await Keys("enable", "--key-id", keyId)).Ok();

        var scheduled = (await Keys("schedule-deletion", "--key-id", keyId, "--pending-window-in-days", "7")).Ok().Json;
        Assert.Equal("PendingDeletion", scheduled.Str("KeyState"));
        Assert.Matches(CliDatePattern(), scheduled.Str("DeletionDate"));
        (await Keys("cancel-deletion", "--key-id", keyId)).Ok();

        var listed = (await Keys("list")).Ok().Json.GetProperty("Keys").EnumerateArray().Select(k => k.Str("KeyId")).ToList();
        Assert.Contains(keyId, listed);

        var refused = await Keys("disable", "--key-id", "alias/aws/secretsmanager");
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("An error occurred (UnsupportedOperationException) when calling the DisableKey operation:", refused.Stderr.Trim(), StringComparison.Ordinal);
    }
}
