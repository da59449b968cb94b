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

    [Fact]
    public async Task Rotate_and_alias_list_update_delete_through_the_cli()
    {
        var first = (await Keys("create")).Ok().Json.GetProperty("KeyMetadata").Str("KeyId");
        var second = (await Keys("create")).Ok().Json.GetProperty("KeyMetadata").Str("KeyId");
        var alias = $"alias/cli-move-{Guid.NewGuid():N}";
        (await Keys("create-alias", "--alias-name", alias, "--target-key-id", first)).Ok();

        var rotated = (await Keys("rotate", "--key-id", alias)).Ok().Json;
        Assert.Equal((first, 2), (rotated.Str("KeyId"), rotated.GetProperty("KeyMaterialCount").GetInt32()));
        var described = (await Keys("describe", "--key-id", first)).Ok().Json.GetProperty("KeyMetadata");
        Assert.Equal(2, described.GetProperty("KeyMaterialCount").GetInt32());
        Assert.Matches(CliDatePattern(), described.Str("LastRotationDate"));

        var ofFirst = (await Keys("alias", "list", "--key-id", first)).Ok().Json.GetProperty("Aliases");
        Assert.Equal(alias, Assert.Single(ofFirst.EnumerateArray()).Str("AliasName"));
        Assert.Equal("", (await Keys("alias", "update", "--alias-name", alias, "--target-key-id", second)).Ok().Stdout.Trim());
        var all = (await Keys("alias", "list")).Ok().Json.GetProperty("Aliases").EnumerateArray().ToDictionary(a => a.Str("AliasName"), a => a.Str("TargetKeyId"));
        Assert.Equal(second, all[alias]);
        Assert.Contains("alias/aws/secretsmanager", all.Keys);
        (await Keys("alias", "delete", "--alias-name", alias)).Ok();
        Assert.Empty((await Keys("alias", "list", "--key-id", second)).Ok().Json.GetProperty("Aliases").EnumerateArray());

        var refused = await Keys("alias", "delete", "--alias-name", "alias/aws/secretsmanager");
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("An error occurred (UnsupportedOperationException) when calling the DeleteAlias operation: alias/aws/secretsmanager is the default alias",
            refused.Stderr.Trim(), StringComparison.Ordinal);
    }
}
