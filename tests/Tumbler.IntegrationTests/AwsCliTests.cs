using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests;

/// <summary>
/// Debian's aws CLI v2 (/usr/bin/aws), unmodified, against a running <c>tumbler serve</c>: what the CLI
/// prints must be what it prints against AWS (spec §1–§3).
/// </summary>
/// <remarks>Split in two classes (each with its own server) so that the two run in parallel.</remarks>
public abstract class AwsCliTestBase(TumblerServerFixture fixture)
{
    protected const string NotFound = "Secrets Manager can't find the specified secret.";
    protected const string MarkedForDeletion = "You can't perform this operation on the secret because it was marked for deletion.";
    protected const string InvalidName = "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!";

    private readonly AwsCli _aws = fixture.Cli;

    /// <summary>aws --endpoint-url ... --output json secretsmanager ARGS</summary>
    protected Task<CliResult> Sm(params string[] args) => _aws.SecretsManager(args);

    protected static string Unique(string hint) => $"{hint}-{Guid.NewGuid().ToString("N")[..10]}";
}

/// <summary>Create, read, put, labels, update, list, tags and versions through the aws CLI.</summary>
[Trait("Category", "Integration")]
public sealed class AwsCliTests(TumblerServerFixture fixture) : AwsCliTestBase(fixture), IClassFixture<TumblerServerFixture>
{
    [Fact]
    public async Task Create_get_and_describe_a_string_secret()
    {
        var name = Unique("cli/app/db");
        const string value = "{\"engine\":\"mysql\",\"username\":\"app\",\"password\":\"pä$$wörd ✓ 'quoted' \\\"x\\\"\"}";

        var created = (await Sm("create-secret", "--name", name, "--description", "Primary DB", "--secret-string", value)).Ok().Json;
        var arn = created.Str("ARN");
        CliAssert.ArnOf(arn, name);
        Assert.Equal(name, created.Str("Name"));
        var versionId = created.Str("VersionId");
        Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", versionId);

        // Never read yet: no LastAccessedDate, and none of the optional members.
        var fresh = (await Sm("describe-secret", "--secret-id", name)).Ok().Json;
        Assert.False(fresh.Has("LastAccessedDate"), fresh.GetRawText());
        foreach (var absent in new[] { "DeletedDate", "Tags", "KmsKeyId", "RotationEnabled", "RotationLambdaARN", "RotationRules", "LastRotatedDate", "NextRotationDate", "OwningService", "PrimaryRegion", "ReplicationStatus" })
        {
            Assert.False(fresh.Has(absent), $"{absent} should be omitted: {fresh.GetRawText()}");
        }

        var got = (await Sm("get-secret-value", "--secret-id", name)).Ok().Json;
        Assert.Equal(arn, got.Str("ARN"));
        Assert.Equal(name, got.Str("Name"));
        Assert.Equal(versionId, got.Str("VersionId"));
        Assert.Equal(value, got.Str("SecretString"));
        Assert.False(got.Has("SecretBinary"));
        Assert.Equal(["AWSCURRENT"], got.Strings("VersionStages"));
        CliAssert.Recent(got.Time("CreatedDate"));

        // The same secret by full ARN and by partial ARN (ARN without the -XXXXXX suffix).
        Assert.Equal(value, (await Sm("get-secret-value", "--secret-id", arn)).Ok().Json.Str("SecretString"));
        Assert.Equal(value, (await Sm("get-secret-value", "--secret-id", arn[..^7])).Ok().Json.Str("SecretString"));

        var described = (await Sm("describe-secret", "--secret-id", arn)).Ok().Json;
        Assert.Equal(arn, described.Str("ARN"));
        Assert.Equal(name, described.Str("Name"));
        Assert.Equal("Primary DB", described.Str("Description"));
        CliAssert.Recent(described.Time("CreatedDate"));
        CliAssert.Recent(described.Time("LastChangedDate"));
        CliAssert.MidnightUtcToday(described.Time("LastAccessedDate"));
        var stages = described.GetProperty("VersionIdsToStages");
        Assert.Equal([versionId], stages.EnumerateObject().Select(p => p.Name).ToArray());
        Assert.Equal(["AWSCURRENT"], stages.Strings(versionId));
    }

    [Fact]
    public async Task Put_string_then_binary_from_a_file_and_read_every_version_back()
    {
        var name = Unique("cli/put");
        var v1 = (await Sm("create-secret", "--name", name, "--secret-string", "first")).Ok().Json.Str("VersionId");

        var put2 = (await Sm("put-secret-value", "--secret-id", name, "--secret-string", "second")).Ok().Json;
        var v2 = put2.Str("VersionId");
        Assert.NotEqual(v1, v2);
        Assert.Equal(["AWSCURRENT"], put2.Strings("VersionStages"));
        CliAssert.ArnOf(put2.Str("ARN"), name);
        Assert.Equal(name, put2.Str("Name"));

        Assert.Equal("second", (await Sm("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
        var previous = (await Sm("get-secret-value", "--secret-id", name, "--version-stage", "AWSPREVIOUS")).Ok().Json;
        Assert.Equal("first", previous.Str("SecretString"));
        Assert.Equal(v1, previous.Str("VersionId"));
        Assert.Equal(["AWSPREVIOUS"], previous.Strings("VersionStages"));

        using var temp = new TempDirectory();
        byte[] bytes = [0x00, 0xFF, 0x10, 0x80, 0x7F, 0x0A, 0x0D, 0x00, .. "binary\u0001"u8.ToArray(), 0xFE];
        var file = Path.Combine(temp.Path, "secret.bin");
        await File.WriteAllBytesAsync(file, bytes);
        var put3 = (await Sm("put-secret-value", "--secret-id", name, "--secret-binary", "fileb://" + file)).Ok().Json;
        var v3 = put3.Str("VersionId");

        var current = (await Sm("get-secret-value", "--secret-id", name)).Ok().Json;
        Assert.Equal(v3, current.Str("VersionId"));
        Assert.False(current.Has("SecretString"), current.GetRawText());
        Assert.Equal(Convert.ToBase64String(bytes), current.Str("SecretBinary"));
        Assert.Equal(bytes, Convert.FromBase64String(current.Str("SecretBinary")));
        Assert.Equal(["AWSCURRENT"], current.Strings("VersionStages"));

        var byId = (await Sm("get-secret-value", "--secret-id", name, "--version-id", v2)).Ok().Json;
        Assert.Equal("second", byId.Str("SecretString"));
        Assert.Equal(["AWSPREVIOUS"], byId.Strings("VersionStages"));

        // v1 lost its last label but is still readable by id until pruned.
        Assert.Equal("first", (await Sm("get-secret-value", "--secret-id", name, "--version-id", v1)).Ok().Json.Str("SecretString"));
    }

    [Fact]
    public async Task Update_secret_version_stage_moves_current_previous_and_custom_labels()
    {
        var name = Unique("cli/stages");
        var v1 = (await Sm("create-secret", "--name", name, "--secret-string", "one")).Ok().Json.Str("VersionId");
        var put = (await Sm("put-secret-value", "--secret-id", name, "--secret-string", "two", "--version-stages", "AWSPENDING")).Ok().Json;
        var v2 = put.Str("VersionId");
        Assert.Equal(["AWSPENDING"], put.Strings("VersionStages"));
        Assert.Equal("one", (await Sm("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
        Assert.Equal("two", (await Sm("get-secret-value", "--secret-id", name, "--version-stage", "AWSPENDING")).Ok().Json.Str("SecretString"));

        // Moving AWSCURRENT without naming where it is now is refused with AWS's exact text.
        var refused = await Sm("update-secret-version-stage", "--secret-id", name, "--version-stage", "AWSCURRENT", "--move-to-version-id", v2);
        CliAssert.AwsError(refused, "InvalidParameterException", "UpdateSecretVersionStage",
            $"The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently attached to version {v1}, so you must explicitly reference that version in RemoveFromVersionId.");

        var moved = (await Sm("update-secret-version-stage", "--secret-id", name, "--version-stage", "AWSCURRENT",
            "--move-to-version-id", v2, "--remove-from-version-id", v1)).Ok().Json;
        CliAssert.ArnOf(moved.Str("ARN"), name);
        Assert.Equal(name, moved.Str("Name"));
        Assert.False(moved.Has("VersionId"));

        var stages = (await Sm("describe-secret", "--secret-id", name)).Ok().Json.GetProperty("VersionIdsToStages");
        Assert.Equal(["AWSPREVIOUS"], stages.Strings(v1));
        Assert.Equal(["AWSCURRENT", "AWSPENDING"], stages.Strings(v2).Order(StringComparer.Ordinal));
        Assert.Equal("two", (await Sm("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));

        // A custom label that is attached nowhere needs no RemoveFromVersionId; removing it detaches it.
        (await Sm("update-secret-version-stage", "--secret-id", name, "--version-stage", "BLUE", "--move-to-version-id", v1)).Ok();
        var blue = (await Sm("get-secret-value", "--secret-id", name, "--version-stage", "BLUE")).Ok().Json;
        Assert.Equal("one", blue.Str("SecretString"));
        Assert.Equal(["AWSPREVIOUS", "BLUE"], blue.Strings("VersionStages").Order(StringComparer.Ordinal));

        (await Sm("update-secret-version-stage", "--secret-id", name, "--version-stage", "BLUE", "--remove-from-version-id", v1)).Ok();
        CliAssert.AwsError(await Sm("get-secret-value", "--secret-id", name, "--version-stage", "BLUE"),
            "ResourceNotFoundException", "GetSecretValue", "Secrets Manager can't find the specified secret value for staging label: BLUE");
        Assert.Equal(["AWSPREVIOUS"], (await Sm("describe-secret", "--secret-id", name)).Ok().Json.GetProperty("VersionIdsToStages").Strings(v1));
    }

    [Fact]
    public async Task Update_secret_with_description_only_creates_no_version_and_with_a_value_does()
    {
        var name = Unique("cli/update");
        var v1 = (await Sm("create-secret", "--name", name, "--description", "old", "--secret-string", "v1")).Ok().Json.Str("VersionId");
        var changed0 = (await Sm("describe-secret", "--secret-id", name)).Ok().Json.Time("LastChangedDate");

        // The CLI sends a ClientRequestToken with this call too; no version may come of it.
        var meta = (await Sm("update-secret", "--secret-id", name, "--description", "new")).Ok().Json;
        CliAssert.ArnOf(meta.Str("ARN"), name);
        Assert.False(meta.Has("VersionId"), meta.GetRawText());
        var described = (await Sm("describe-secret", "--secret-id", name)).Ok().Json;
        Assert.Equal("new", described.Str("Description"));
        Assert.Equal([v1], described.GetProperty("VersionIdsToStages").EnumerateObject().Select(p => p.Name).ToArray());

        var withValue = (await Sm("update-secret", "--secret-id", name, "--secret-string", "v2")).Ok().Json;
        var v2 = withValue.Str("VersionId");
        Assert.NotEqual(v1, v2);
        var got = (await Sm("get-secret-value", "--secret-id", name)).Ok().Json;
        Assert.Equal("v2", got.Str("SecretString"));
        Assert.Equal(v2, got.Str("VersionId"));
        var after = (await Sm("describe-secret", "--secret-id", name)).Ok().Json;
        Assert.Equal(["AWSPREVIOUS"], after.GetProperty("VersionIdsToStages").Strings(v1));
        Assert.True(after.Time("LastChangedDate") > changed0, $"LastChangedDate must increase: {changed0:O} -> {after.Time("LastChangedDate"):O}");
    }

    [Fact]
    public async Task A_secret_created_without_value_has_no_version_until_the_first_put()
    {
        var name = Unique("cli/empty");
        var created = (await Sm("create-secret", "--name", name, "--description", "")).Ok().Json;
        CliAssert.ArnOf(created.Str("ARN"), name);
        Assert.False(created.Has("VersionId"), created.GetRawText());

        CliAssert.AwsError(await Sm("get-secret-value", "--secret-id", name), "ResourceNotFoundException", "GetSecretValue",
            "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT");
        var described = (await Sm("describe-secret", "--secret-id", name)).Ok().Json;
        Assert.False(described.Has("VersionIdsToStages"), described.GetRawText());
        Assert.False(described.Has("Description"), "an empty description is omitted: " + described.GetRawText());

        var put = (await Sm("put-secret-value", "--secret-id", name, "--secret-string", "now")).Ok().Json;
        Assert.Equal(["AWSCURRENT"], put.Strings("VersionStages"));
        Assert.Equal("now", (await Sm("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
    }

    [Fact]
    public async Task List_secrets_with_filters_sort_order_and_planned_deletion()
    {
        var p = "lst" + Guid.NewGuid().ToString("N")[..8];
        string a = $"{p}/alpha/one", b = $"{p}/alpha/two", c = $"{p}/beta/three";
        (await Sm("create-secret", "--name", a, "--secret-string", "1", "--description", "Primary database credentials",
            "--tags", $"Key=env{p},Value=prod{p}", $"Key=team{p},Value=core")).Ok();
        (await Sm("create-secret", "--name", b, "--secret-string", "2", "--description", "Secondary cache",
            "--tags", $"Key=env{p},Value=dev{p}")).Ok();
        (await Sm("create-secret", "--name", c, "--secret-string", "3",
            "--tags", $"Key=owner{p},Value=alice{p}")).Ok();

        async Task<string[]> Names(params string[] args)
        {
            var json = (await Sm(["list-secrets", .. args])).Ok().Json;
            return json.GetProperty("SecretList").EnumerateArray().Select(e => e.Str("Name"))
                .Where(n => n.StartsWith(p, StringComparison.Ordinal)).ToArray();
        }
        string inP = $"Key=name,Values={p}/";

        Assert.Equal([a, b, c], await Names("--filters", inP));
        Assert.Equal([a, b], await Names("--filters", $"Key=name,Values={p}/alpha"));
        Assert.Equal([a, c], await Names("--filters", $"Key=name,Values={p}/alpha/one,{p}/beta"));
        Assert.Equal([c], await Names("--filters", inP, $"Key=name,Values=!{p}/alpha"));
        Assert.Empty(await Names("--filters", $"Key=name,Values={p}/ALPHA"));

        // description: word prefixes, case-insensitive
        Assert.Equal([a], await Names("--filters", inP, "Key=description,Values=primary"));
        Assert.Equal([a], await Names("--filters", inP, "Key=description,Values=data"));
        Assert.Equal([b], await Names("--filters", inP, "Key=description,Values=cach"));
        Assert.Equal([a], await Names("--filters", $"[{{\"Key\":\"name\",\"Values\":[\"{p}/\"]}},{{\"Key\":\"description\",\"Values\":[\"primary data\"]}}]"));
        Assert.Empty(await Names("--filters", inP, "Key=description,Values=imary"));

        // tag-key / tag-value: prefix, case-sensitive
        Assert.Equal([a, b], await Names("--filters", $"Key=tag-key,Values=env{p}"));
        Assert.Equal([c], await Names("--filters", $"Key=tag-key,Values=owner{p}"));
        Assert.Equal([a], await Names("--filters", $"Key=tag-value,Values=prod{p}"));
        Assert.Equal([c], await Names("--filters", $"Key=tag-value,Values=alice{p}"));
        Assert.Equal([b], await Names("--filters", inP, $"Key=tag-value,Values=dev{p}"));

        // all: words of name, description, tag keys and values
        Assert.Equal([c], await Names("--filters", inP, $"Key=all,Values=alice{p}"));
        Assert.Equal([b], await Names("--filters", inP, "Key=all,Values=secondary"));
        Assert.Equal([c], await Names("--filters", inP, "Key=all,Values=beta"));

        Assert.Equal([c, b, a], await Names("--filters", inP, "--sort-order", "desc"));
        Assert.Equal([a, b, c], await Names("--filters", inP, "--sort-order", "asc"));

        var entry = (await Sm("list-secrets", "--filters", $"Key=name,Values={a}")).Ok().Json.GetProperty("SecretList").EnumerateArray().Single();
        CliAssert.ArnOf(entry.Str("ARN"), a);
        Assert.Equal("Primary database credentials", entry.Str("Description"));
        Assert.True(entry.Has("SecretVersionsToStages"), entry.GetRawText());
        Assert.False(entry.Has("VersionIdsToStages"), "ListSecrets calls the map SecretVersionsToStages: " + entry.GetRawText());
        Assert.Single(entry.GetProperty("SecretVersionsToStages").EnumerateObject());
        CliAssert.Recent(entry.Time("CreatedDate"));
        CliAssert.Recent(entry.Time("LastChangedDate"));
        Assert.Equal(2, entry.GetProperty("Tags").GetArrayLength());

        CliAssert.AwsError(await Sm("list-secrets", "--filters", "Key=colour,Values=blue"), "ValidationException", "ListSecrets", null);

        (await Sm("delete-secret", "--secret-id", c, "--recovery-window-in-days", "7")).Ok();
        Assert.Equal([a, b], await Names("--filters", inP));
        Assert.Equal([a, b, c], await Names("--filters", inP, "--include-planned-deletion"));
        var deleted = (await Sm("list-secrets", "--include-planned-deletion", "--filters", $"Key=name,Values={c}")).Ok().Json
            .GetProperty("SecretList").EnumerateArray().Single();
        Assert.True(deleted.Has("DeletedDate"), deleted.GetRawText());
        deleted.Time("DeletedDate");
    }

    [Fact]
    public async Task Tags_are_added_overwritten_removed_and_become_an_empty_list()
    {
        var never = Unique("cli/untagged");
        (await Sm("create-secret", "--name", never, "--secret-string", "x")).Ok();
        Assert.False((await Sm("describe-secret", "--secret-id", never)).Ok().Json.Has("Tags"));

        var name = Unique("cli/tags");
        (await Sm("create-secret", "--name", name, "--secret-string", "x", "--tags", "Key=env,Value=prod", "Key=team,Value=core")).Ok();
        Assert.Equal(["env=prod", "team=core"], await Tags(name));

        var tagged = (await Sm("tag-resource", "--secret-id", name, "--tags", "Key=team,Value=platform", "Key=tier,Value=1")).Ok();
        Assert.Equal("", tagged.Stdout.Trim());
        Assert.Equal(["env=prod", "team=platform", "tier=1"], (await Tags(name)).Order(StringComparer.Ordinal));

        var untagged = (await Sm("untag-resource", "--secret-id", name, "--tag-keys", "env", "team", "not-there")).Ok();
        Assert.Equal("", untagged.Stdout.Trim());
        Assert.Equal(["tier=1"], await Tags(name));

        (await Sm("untag-resource", "--secret-id", name, "--tag-keys", "tier")).Ok();
        var described = (await Sm("describe-secret", "--secret-id", name)).Ok().Json;
        Assert.True(described.Has("Tags"), "after the last tag is removed Tags is [] (present): " + described.GetRawText());
        Assert.Equal(0, described.GetProperty("Tags").GetArrayLength());

        CliAssert.AwsError(await Sm("tag-resource", "--secret-id", Unique("cli/missing"), "--tags", "Key=a,Value=b"),
            "ResourceNotFoundException", "TagResource", NotFound);
    }

    private async Task<string[]> Tags(string secret)
    {
        var json = (await Sm("describe-secret", "--secret-id", secret)).Ok().Json;
        return json.GetProperty("Tags").EnumerateArray().Select(t => $"{t.Str("Key")}={t.Str("Value")}").ToArray();
    }

    [Fact]
    public async Task List_secret_version_ids_hides_deprecated_versions_unless_asked()
    {
        var name = Unique("cli/versions");
        var v1 = (await Sm("create-secret", "--name", name, "--secret-string", "1")).Ok().Json.Str("VersionId");
        var v2 = (await Sm("put-secret-value", "--secret-id", name, "--secret-string", "2")).Ok().Json.Str("VersionId");
        var v3 = (await Sm("put-secret-value", "--secret-id", name, "--secret-string", "3")).Ok().Json.Str("VersionId");

        var listed = (await Sm("list-secret-version-ids", "--secret-id", name)).Ok().Json;
        CliAssert.ArnOf(listed.Str("ARN"), name);
        Assert.Equal(name, listed.Str("Name"));
        var versions = listed.GetProperty("Versions").EnumerateArray().ToDictionary(v => v.Str("VersionId"));
        Assert.Equal(new[] { v2, v3 }.Order(StringComparer.Ordinal), versions.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["AWSCURRENT"], versions[v3].Strings("VersionStages"));
        Assert.Equal(["AWSPREVIOUS"], versions[v2].Strings("VersionStages"));
        foreach (var v in versions.Values)
        {
            CliAssert.Recent(v.Time("CreatedDate"));
            Assert.Equal(["DefaultEncryptionKey"], v.Strings("KmsKeyIds"));
        }

        var all = (await Sm("list-secret-version-ids", "--secret-id", name, "--include-deprecated")).Ok().Json
            .GetProperty("Versions").EnumerateArray().ToDictionary(v => v.Str("VersionId"));
        Assert.Equal(new[] { v1, v2, v3 }.Order(StringComparer.Ordinal), all.Keys.Order(StringComparer.Ordinal));
        Assert.False(all[v1].Has("VersionStages"), "a deprecated version has no VersionStages member: " + all[v1].GetRawText());

        CliAssert.AwsError(await Sm("list-secret-version-ids", "--secret-id", Unique("cli/missing")), "ResourceNotFoundException", "ListSecretVersionIds", NotFound);
    }

}

/// <summary>Deletion, restore, idempotency, random passwords and error codes/texts through the aws CLI.</summary>
[Trait("Category", "Integration")]
public sealed class AwsCliDeletionAndErrorTests(TumblerServerFixture fixture) : AwsCliTestBase(fixture), IClassFixture<TumblerServerFixture>
{
    [Fact]
    public async Task Delete_with_a_recovery_window_blocks_use_until_restore()
    {
        var name = Unique("cli/delete");
        var arn = (await Sm("create-secret", "--name", name, "--secret-string", "keep me")).Ok().Json.Str("ARN");

        var deleted = (await Sm("delete-secret", "--secret-id", name, "--recovery-window-in-days", "7")).Ok().Json;
        Assert.Equal(arn, deleted.Str("ARN"));
        Assert.Equal(name, deleted.Str("Name"));
        CliAssert.Near(DateTimeOffset.UtcNow.AddDays(7), deleted.Time("DeletionDate"));

        var described = (await Sm("describe-secret", "--secret-id", name)).Ok().Json;
        Assert.True(described.Has("DeletedDate"), described.GetRawText());
        described.Time("DeletedDate");

        CliAssert.AwsError(await Sm("get-secret-value", "--secret-id", name), "InvalidRequestException", "GetSecretValue", MarkedForDeletion);
        CliAssert.AwsError(await Sm("put-secret-value", "--secret-id", name, "--secret-string", "x"), "InvalidRequestException", "PutSecretValue", null);
        CliAssert.AwsError(await Sm("update-secret", "--secret-id", name, "--description", "x"), "InvalidRequestException", "UpdateSecret", null);
        CliAssert.AwsError(await Sm("tag-resource", "--secret-id", name, "--tags", "Key=a,Value=b"), "InvalidRequestException", "TagResource", MarkedForDeletion);
        CliAssert.AwsError(await Sm("untag-resource", "--secret-id", name, "--tag-keys", "a"), "InvalidRequestException", "UntagResource", MarkedForDeletion);
        CliAssert.AwsError(await Sm("create-secret", "--name", name, "--secret-string", "again"), "InvalidRequestException", "CreateSecret",
            "You can't create this secret because a secret with this name is already scheduled for deletion.");
        CliAssert.AwsError(await Sm("delete-secret", "--secret-id", name), "InvalidRequestException", "DeleteSecret", null);

        var restored = (await Sm("restore-secret", "--secret-id", name)).Ok().Json;
        Assert.Equal(arn, restored.Str("ARN"));
        Assert.Equal(name, restored.Str("Name"));
        Assert.False((await Sm("describe-secret", "--secret-id", name)).Ok().Json.Has("DeletedDate"));
        Assert.Equal("keep me", (await Sm("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
    }

    [Fact]
    public async Task Delete_defaults_to_thirty_days_and_validates_the_window()
    {
        var name = Unique("cli/delete30");
        (await Sm("create-secret", "--name", name, "--secret-string", "x")).Ok();

        CliAssert.AwsError(await Sm("delete-secret", "--secret-id", name, "--recovery-window-in-days", "6"), "InvalidParameterException", "DeleteSecret", null);
        CliAssert.AwsError(await Sm("delete-secret", "--secret-id", name, "--recovery-window-in-days", "31"), "InvalidParameterException", "DeleteSecret", null);
        CliAssert.AwsError(await Sm("delete-secret", "--secret-id", name, "--recovery-window-in-days", "7", "--force-delete-without-recovery"),
            "InvalidParameterException", "DeleteSecret", null);
        Assert.Equal("x", (await Sm("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));

        var deleted = (await Sm("delete-secret", "--secret-id", name)).Ok().Json;
        CliAssert.Near(DateTimeOffset.UtcNow.AddDays(30), deleted.Time("DeletionDate"));
    }

    [Fact]
    public async Task Force_delete_removes_at_once_and_the_name_can_be_reused_with_a_new_arn()
    {
        var name = Unique("cli/force");
        var arn = (await Sm("create-secret", "--name", name, "--secret-string", "gone soon")).Ok().Json.Str("ARN");

        var deleted = (await Sm("delete-secret", "--secret-id", name, "--force-delete-without-recovery")).Ok().Json;
        Assert.Equal(arn, deleted.Str("ARN"));
        Assert.Equal(name, deleted.Str("Name"));
        CliAssert.Near(DateTimeOffset.UtcNow, deleted.Time("DeletionDate"));

        CliAssert.AwsError(await Sm("get-secret-value", "--secret-id", name), "ResourceNotFoundException", "GetSecretValue", NotFound);
        CliAssert.AwsError(await Sm("describe-secret", "--secret-id", name), "ResourceNotFoundException", "DescribeSecret", NotFound);
        Assert.Empty((await Sm("list-secrets", "--include-planned-deletion", "--filters", $"Key=name,Values={name}")).Ok().Json.GetProperty("SecretList").EnumerateArray());

        var again = (await Sm("create-secret", "--name", name, "--secret-string", "new life")).Ok().Json.Str("ARN");
        CliAssert.ArnOf(again, name);
        Assert.NotEqual(arn, again);
        CliAssert.AwsError(await Sm("get-secret-value", "--secret-id", arn), "ResourceNotFoundException", "GetSecretValue", NotFound);

        // Force-deleting a secret that is already scheduled for deletion also works.
        (await Sm("delete-secret", "--secret-id", name, "--recovery-window-in-days", "7")).Ok();
        (await Sm("delete-secret", "--secret-id", name, "--force-delete-without-recovery")).Ok();
        CliAssert.AwsError(await Sm("describe-secret", "--secret-id", name), "ResourceNotFoundException", "DescribeSecret", NotFound);
    }

    [Fact]
    public async Task Force_delete_of_a_secret_that_does_not_exist_succeeds()
    {
        var name = Unique("cli/never-existed");
        var deleted = (await Sm("delete-secret", "--secret-id", name, "--force-delete-without-recovery")).Ok().Json;
        Assert.Equal(name, deleted.Str("Name"));
        Assert.StartsWith($"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}", deleted.Str("ARN"), StringComparison.Ordinal);
        deleted.Time("DeletionDate");
        // and without force it is an error
        CliAssert.AwsError(await Sm("delete-secret", "--secret-id", name), "ResourceNotFoundException", "DeleteSecret", NotFound);
    }

    [Fact]
    public async Task Get_random_password_honours_length_and_character_classes()
    {
        const string punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
        var first = (await Sm("get-random-password")).Ok().Json.Str("RandomPassword");
        Assert.Equal(32, first.Length);
        Assert.All(first, ch => Assert.True(char.IsAsciiLetterOrDigit(ch) || punctuation.Contains(ch, StringComparison.Ordinal), $"unexpected '{ch}' in {first}"));
        Assert.Contains(first, char.IsAsciiLetterLower);
        Assert.Contains(first, char.IsAsciiLetterUpper);
        Assert.Contains(first, char.IsAsciiDigit);
        Assert.Contains(first, ch => punctuation.Contains(ch, StringComparison.Ordinal));
        var second = (await Sm("get-random-password")).Ok().Json.Str("RandomPassword");
        Assert.NotEqual(first, second);

        var alnum = (await Sm("get-random-password", "--password-length", "100", "--exclude-punctuation", "--exclude-characters", "abcXYZ019")).Ok().Json.Str("RandomPassword");
        Assert.Equal(100, alnum.Length);
        Assert.All(alnum, ch => Assert.True(char.IsAsciiLetterOrDigit(ch) && !"abcXYZ019".Contains(ch, StringComparison.Ordinal), $"unexpected '{ch}' in {alnum}"));

        var lower = (await Sm("get-random-password", "--password-length", "20", "--exclude-numbers", "--exclude-punctuation", "--exclude-uppercase")).Ok().Json.Str("RandomPassword");
        Assert.Equal(20, lower.Length);
        Assert.All(lower, ch => Assert.True(char.IsAsciiLetterLower(ch), $"unexpected '{ch}' in {lower}"));

        var tooLong = await Sm("get-random-password", "--password-length", "4097");
        var code = CliAssert.AwsErrorCode(tooLong, "GetRandomPassword");
        Assert.Contains(code, new[] { "ValidationException", "InvalidParameterException" });
    }

    [Fact]
    public async Task Create_with_the_same_client_request_token_is_idempotent()
    {
        var name = Unique("cli/idempotent");
        var token = Guid.NewGuid().ToString();
        var first = (await Sm("create-secret", "--name", name, "--client-request-token", token, "--secret-string", "v")).Ok().Json;
        Assert.Equal(token, first.Str("VersionId"));
        var replay = (await Sm("create-secret", "--name", name, "--client-request-token", token, "--secret-string", "v")).Ok().Json;
        Assert.Equal(first.Str("ARN"), replay.Str("ARN"));
        Assert.Equal(name, replay.Str("Name"));
        Assert.Equal(token, replay.Str("VersionId"));

        CliAssert.AwsError(await Sm("create-secret", "--name", name, "--client-request-token", token, "--secret-string", "other"),
            "ResourceExistsException", "CreateSecret",
            $"You can't use ClientRequestToken {token} because that value is already in use for a version of secret {first.Str("ARN")}.");
        CliAssert.AwsError(await Sm("create-secret", "--name", name, "--secret-string", "v"),
            "ResourceExistsException", "CreateSecret", $"The operation failed because the secret {name} already exists.");

        var put = (await Sm("put-secret-value", "--secret-id", name, "--client-request-token", token, "--secret-string", "v")).Ok().Json;
        Assert.Equal(token, put.Str("VersionId"));
        Assert.Equal(["AWSCURRENT"], put.Strings("VersionStages"));

        var versions = (await Sm("list-secret-version-ids", "--secret-id", name, "--include-deprecated")).Ok().Json.GetProperty("Versions");
        Assert.Equal(1, versions.GetArrayLength());
    }

    [Theory]
    [InlineData("GetSecretValue", "get-secret-value")]
    [InlineData("DescribeSecret", "describe-secret")]
    [InlineData("PutSecretValue", "put-secret-value", "--secret-string", "x")]
    [InlineData("UpdateSecret", "update-secret", "--description", "x")]
    [InlineData("ListSecretVersionIds", "list-secret-version-ids")]
    [InlineData("DeleteSecret", "delete-secret")]
    [InlineData("RestoreSecret", "restore-secret")]
    [InlineData("UntagResource", "untag-resource", "--tag-keys", "a")]
    [InlineData("UpdateSecretVersionStage", "update-secret-version-stage", "--version-stage", "X", "--move-to-version-id", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")]
    public async Task Unknown_secret_is_ResourceNotFoundException(string operation, string command, params string[] extra)
    {
        var result = await Sm([command, "--secret-id", Unique("cli/nope"), .. extra]);
        CliAssert.AwsError(result, "ResourceNotFoundException", operation, NotFound);
    }

    [Theory]
    [InlineData("create-secret", "CreateSecret", "--name", "Inv Name", "--secret-string", "x")]
    [InlineData("create-secret", "CreateSecret", "--name", " Inv*Name? ", "--secret-string", "x")]
    [InlineData("get-secret-value", "GetSecretValue", "--secret-id", "Inv*Name?")]
    [InlineData("describe-secret", "DescribeSecret", "--secret-id", "Inv Name")]
    [InlineData("delete-secret", "DeleteSecret", "--secret-id", "Inv Name", "--force-delete-without-recovery")]
    public async Task Invalid_name_is_ValidationException_with_the_AWS_text(string command, string operation, params string[] args)
    {
        CliAssert.AwsError(await Sm([command, .. args]), "ValidationException", operation, InvalidName);
    }

    [Fact]
    public async Task Value_errors_have_the_AWS_codes_and_texts()
    {
        var name = Unique("cli/errors");
        var v1 = (await Sm("create-secret", "--name", name, "--secret-string", "x")).Ok().Json.Str("VersionId");

        var unknownVersion = Guid.NewGuid().ToString();
        CliAssert.AwsError(await Sm("get-secret-value", "--secret-id", name, "--version-id", unknownVersion), "ResourceNotFoundException", "GetSecretValue",
            $"Secrets Manager can't find the specified secret value for VersionId: {unknownVersion}");
        CliAssert.AwsError(await Sm("get-secret-value", "--secret-id", name, "--version-stage", "NOPE"), "ResourceNotFoundException", "GetSecretValue",
            "Secrets Manager can't find the specified secret value for staging label: NOPE");
        CliAssert.AwsError(await Sm("get-secret-value", "--secret-id", name, "--version-id", v1, "--version-stage", "AWSPREVIOUS"), "InvalidRequestException", "GetSecretValue",
            "You provided a VersionStage that is not associated to the provided VersionId.");

        using var temp = new TempDirectory();
        var file = Path.Combine(temp.Path, "b.bin");
        await File.WriteAllBytesAsync(file, [1, 2, 3]);
        var both = await Sm("create-secret", "--name", Unique("cli/both"), "--secret-string", "s", "--secret-binary", "fileb://" + file);
        Assert.Equal("InvalidParameterException", CliAssert.AwsErrorCode(both, "CreateSecret"));

        // 65,536 is the limit, inclusive.
        (await Sm("put-secret-value", "--secret-id", name, "--secret-string", new string('a', 65536))).Ok();
        var tooBig = await Sm("put-secret-value", "--secret-id", name, "--secret-string", new string('a', 65537));
        Assert.Contains(CliAssert.AwsErrorCode(tooBig, "PutSecretValue"), new[] { "ValidationException", "InvalidParameterException" });
        Assert.Equal(65536, (await Sm("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString").Length);
    }
}

/// <summary>Assertions about what the aws CLI printed.</summary>
public static class CliAssert
{
    private static readonly Regex ErrorLine = new(@"^An error occurred \((?<code>[^)]*)\) when calling the (?<op>\w+) operation(?: \([^)]*\))?: (?<msg>.*)$", RegexOptions.Multiline);

    /// <summary>
    /// The CLI exited 254 (service error) and printed
    /// <c>An error occurred (CODE) when calling the OP operation: MESSAGE</c>; message null = any text.
    /// </summary>
    public static void AwsError(CliResult result, string code, string operation, string? message)
    {
        var actualCode = AwsErrorCode(result, operation);
        Assert.True(code == actualCode, $"expected {code}, got {actualCode}:\n{result}");
        if (message is not null)
        {
            var match = ErrorLine.Match(result.Stderr);
            Assert.True(message == match.Groups["msg"].Value.TrimEnd('\r'), $"expected message:\n  {message}\nactual:\n  {match.Groups["msg"].Value}\n{result}");
        }
    }

    /// <summary>Asserts the CLI reported a service error for <paramref name="operation"/> and returns its code.</summary>
    public static string AwsErrorCode(CliResult result, string operation)
    {
        Assert.True(result.ExitCode == 254, $"expected the CLI's service-error exit code 254:\n{result}");
        var match = ErrorLine.Match(result.Stderr);
        Assert.True(match.Success, $"no 'An error occurred (...)' line on stderr:\n{result}");
        Assert.Equal(operation, match.Groups["op"].Value);
        Assert.True(match.Groups["code"].Value != "InternalServiceError", $"server fault instead of a client error:\n{result}");
        return match.Groups["code"].Value;
    }

    /// <summary>arn:aws:secretsmanager:us-east-1:123456789012:secret:NAME-XXXXXX</summary>
    public static void ArnOf(string arn, string name, string region = "us-east-1", string account = "123456789012")
    {
        Assert.Matches($"^arn:aws:secretsmanager:{Regex.Escape(region)}:{Regex.Escape(account)}:secret:{Regex.Escape(name)}-[A-Za-z0-9]{{6}}$", arn);
    }

    public static void Recent(DateTimeOffset t) => Near(DateTimeOffset.UtcNow, t, TimeSpan.FromMinutes(10));

    public static void Near(DateTimeOffset expected, DateTimeOffset actual, TimeSpan? tolerance = null)
    {
        var tol = tolerance ?? TimeSpan.FromMinutes(5);
        Assert.True((actual - expected).Duration() <= tol, $"expected about {expected:O} (±{tol}), got {actual:O}");
    }

    /// <summary>LastAccessedDate has date granularity: today (or, right after midnight, yesterday) 00:00 UTC.</summary>
    public static void MidnightUtcToday(DateTimeOffset t)
    {
        var today = new DateTimeOffset(DateTimeOffset.UtcNow.UtcDateTime.Date, TimeSpan.Zero);
        Assert.True(t == today || t == today.AddDays(-1), $"expected {today:O} (midnight UTC), got {t:O}");
    }
}

/// <summary>Terse accessors for the CLI's JSON output.</summary>
public static class JsonExtensions
{
    public static bool Has(this JsonElement e, string name) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out _);

    public static string Str(this JsonElement e, string name)
    {
        Assert.True(e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String, $"expected string member {name} in {e.GetRawText()}");
        return v.GetString()!;
    }

    public static string[] Strings(this JsonElement e, string name)
    {
        Assert.True(e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array, $"expected array member {name} in {e.GetRawText()}");
        return v.EnumerateArray().Select(x => x.GetString()!).ToArray();
    }

    /// <summary>A timestamp as the CLI prints it (ISO-8601 with offset): present and parseable.</summary>
    public static DateTimeOffset Time(this JsonElement e, string name)
    {
        var text = e.Str(name);
        Assert.True(DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out var t), $"{name} = '{text}' is not an ISO-8601 timestamp");
        return t;
    }
}
