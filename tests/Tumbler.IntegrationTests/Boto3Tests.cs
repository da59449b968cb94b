using System.Text.Json;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests;

/// <summary>
/// Debian's boto3 (/usr/bin/python3), unmodified, against a running <c>tumbler serve</c>. Each test runs one
/// scenario of python/boto3_scenarios.py, which prints what boto3 returned; the assertions are here.
/// </summary>
[Trait("Category", "Integration")]
public sealed class Boto3Tests(TumblerServerFixture fixture) : IClassFixture<TumblerServerFixture>
{
    private readonly Boto3Runner _boto3 = new(fixture.Server.Endpoint, fixture.Server.AccessKeyId, fixture.Server.SecretAccessKey);

    [Fact]
    public async Task Full_lifecycle_with_binary_round_trip_and_tz_aware_datetimes()
    {
        var r = await _boto3.Scenario("lifecycle");

        var create = r.GetProperty("create");
        var name = create.Str("Name");
        CliAssert.ArnOf(create.Str("ARN"), name);
        var v1 = create.Str("VersionId");

        var get = r.GetProperty("get_string");
        Assert.Equal("first-value", get.Str("SecretString"));
        Assert.False(get.GetProperty("has_binary").GetBoolean());
        Assert.Equal(v1, get.Str("VersionId"));
        Assert.Equal(["AWSCURRENT"], get.Strings("VersionStages"));
        AssertDateTime(get.GetProperty("CreatedDate"));

        var bin = r.GetProperty("get_binary");
        Assert.Equal("bytes", bin.Str("python_type"));
        Assert.Equal(bin.Str("expected_hex"), bin.Str("hex"));
        Assert.True(bin.GetProperty("equal").GetBoolean());
        Assert.False(bin.GetProperty("has_string").GetBoolean());
        Assert.Equal(r.GetProperty("put_binary").Str("VersionId"), bin.Str("VersionId"));
        Assert.Equal(["AWSCURRENT"], r.GetProperty("put_binary").Strings("VersionStages"));
        Assert.Equal("first-value", r.GetProperty("get_previous").Str("SecretString"));
        Assert.Equal(v1, r.GetProperty("get_previous").Str("VersionId"));

        Assert.Equal(["ARN", "Name"], r.GetProperty("update_description_keys").EnumerateArray().Select(x => x.GetString()!).ToArray());

        var d = r.GetProperty("describe");
        Assert.Equal("changed description", d.Str("Description"));
        Assert.Equal("[{\"Key\":\"env\",\"Value\":\"prod\"}]", JsonSerializer.Serialize(d.GetProperty("Tags")));
        Assert.Equal(2, d.GetProperty("VersionIdsToStages").EnumerateObject().Count());
        AssertDateTime(d.GetProperty("CreatedDate"));
        AssertDateTime(d.GetProperty("LastChangedDate"));
        var accessed = d.GetProperty("LastAccessedDate");
        Assert.True(accessed.ValueKind == JsonValueKind.Object && accessed.GetProperty("tzaware").GetBoolean(), accessed.GetRawText());
        Assert.True(accessed.GetProperty("epoch").GetDouble() % 86400 == 0, "LastAccessedDate is a date (midnight UTC): " + accessed.Str("iso"));
        Assert.False(d.GetProperty("has_DeletedDate").GetBoolean());
        Assert.Equal([name], r.Strings("list_names"));

        var del = r.GetProperty("delete");
        Assert.Equal(create.Str("ARN"), del.Str("ARN"));
        AssertDateTime(del.GetProperty("DeletionDate"), DateTimeOffset.UtcNow.AddDays(7));
        AssertError(r.GetProperty("get_while_scheduled"), "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked for deletion.");
        Assert.True(r.GetProperty("describe_scheduled_has_DeletedDate").GetBoolean());
        Assert.Equal(create.Str("ARN"), r.GetProperty("restore").Str("ARN"));
        Assert.True(r.GetProperty("get_after_restore_equal").GetBoolean());
        AssertDateTime(r.GetProperty("force_delete").GetProperty("DeletionDate"));
        AssertError(r.GetProperty("get_after_force_delete"), "ResourceNotFoundException", "Secrets Manager can't find the specified secret.");

        Assert.True(r.GetProperty("datetimes_seen").GetInt32() >= 8, r.GetRawText());
        Assert.Equal(0, r.GetProperty("naive_datetimes").GetArrayLength());
    }

    [Fact]
    public async Task Paginator_over_list_secrets_finds_every_secret_once()
    {
        var r = await _boto3.Scenario("paginate");
        var created = r.Strings("created");
        Assert.Equal(25, created.Length);

        var pages = r.GetProperty("pages").EnumerateArray().Select(p => p.EnumerateArray().Select(x => x.GetString()!).ToArray()).ToArray();
        Assert.True(pages.Length >= 3, $"25 secrets in pages of 10 need at least 3 pages, got {pages.Length}");
        Assert.All(pages, p => Assert.True(p.Length <= 10, $"a page holds at most MaxResults=10, got {p.Length}"));
        var listed = pages.SelectMany(p => p).ToArray();
        Assert.Equal(listed.Length, listed.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(created.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        Assert.Equal(created, listed); // created in this order, listed in creation order by default

        Assert.Equal(10, r.GetProperty("first_page_len").GetInt32());
        Assert.True(r.GetProperty("first_page_has_next_token").GetBoolean());

        var all = r.Strings("unfiltered_names");
        Assert.Equal(all.Length, all.Distinct(StringComparer.Ordinal).Count());
        Assert.All(created, n => Assert.Contains(n, all));
        Assert.True(r.GetProperty("unfiltered_pages").GetInt32() >= 3);

        var bad = r.GetProperty("bad_next_token");
        Assert.True(bad.GetProperty("raised").GetBoolean(), bad.GetRawText());
        Assert.Equal("InvalidNextTokenException", bad.Str("code"));
        Assert.True(bad.GetProperty("caught_by_class").GetBoolean());
        Assert.Equal(400, bad.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task Client_exceptions_are_caught_by_their_modeled_class()
    {
        var r = await _boto3.Scenario("exceptions");
        AssertError(r.GetProperty("not_found"), "ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
        AssertError(r.GetProperty("exists"), "ResourceExistsException", $"The operation failed because the secret {r.Str("exists_name")} already exists.");
        AssertError(r.GetProperty("remove_from_missing"), "InvalidParameterException",
            $"The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently attached to version {r.Str("current_version")}, so you must explicitly reference that version in RemoveFromVersionId.");
        AssertError(r.GetProperty("version_not_found"), "ResourceNotFoundException",
            $"Secrets Manager can't find the specified secret value for VersionId: {r.Str("missing_version_id")}");
        AssertError(r.GetProperty("stage_not_found"), "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret value for staging label: NOSUCHLABEL");
        AssertError(r.GetProperty("stage_version_mismatch"), "InvalidRequestException",
            "You provided a VersionStage that is not associated to the provided VersionId.");
        AssertError(r.GetProperty("token_reuse"), "ResourceExistsException",
            $"You can't use ClientRequestToken {r.Str("token_reuse_token")} because that value is already in use for a version of secret {r.Str("token_reuse_arn")}.");
        AssertError(r.GetProperty("both_values"), "InvalidParameterException", null);
        AssertError(r.GetProperty("invalid_name"), "ValidationException",
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!", modeled: false);

        var maxOk = r.GetProperty("max_size_ok");
        Assert.False(maxOk.GetProperty("raised").GetBoolean(), "a 65,536-byte binary is within the limit: " + maxOk.GetRawText());
        Assert.True(r.GetProperty("max_size_roundtrip").GetBoolean());
        foreach (var tooBig in new[] { "too_big_binary", "too_big_string" })
        {
            var e = r.GetProperty(tooBig);
            Assert.True(e.GetProperty("raised").GetBoolean(), $"{tooBig}: 65,537 bytes must be refused: {e.GetRawText()}");
            Assert.Contains(e.Str("code"), new[] { "ValidationException", "InvalidParameterException" });
            Assert.Equal(400, e.GetProperty("status").GetInt32());
        }

        AssertError(r.GetProperty("bad_window"), "InvalidParameterException", null);
        AssertError(r.GetProperty("force_and_window"), "InvalidParameterException", null);
        const string marked = "You can't perform this operation on the secret because it was marked for deletion.";
        AssertError(r.GetProperty("scheduled_get"), "InvalidRequestException", marked);
        AssertError(r.GetProperty("scheduled_put"), "InvalidRequestException", null);
        AssertError(r.GetProperty("scheduled_tag"), "InvalidRequestException", marked);
        AssertError(r.GetProperty("scheduled_create"), "InvalidRequestException",
            "You can't create this secret because a secret with this name is already scheduled for deletion.");
    }

    [Fact]
    public async Task Rotation_template_steps_work_unchanged()
    {
        var r = await _boto3.Scenario("rotation_pending");
        var token = r.Str("token");

        // createSecret: GetSecretValue(VersionId=token, VersionStage=AWSPENDING) before the put must be
        // ResourceNotFoundException, or the template would skip generating the new password.
        AssertError(r.GetProperty("pending_before_put"), "ResourceNotFoundException", null);
        Assert.Equal(32, r.GetProperty("password_len").GetInt32());
        Assert.False(r.GetProperty("password_has_excluded").GetBoolean());
        Assert.Equal(token, r.GetProperty("put").Str("VersionId"));
        Assert.Equal(["AWSPENDING"], r.GetProperty("put").Strings("VersionStages"));

        var pending = r.GetProperty("pending_after_put");
        Assert.Equal(token, pending.Str("VersionId"));
        Assert.True(pending.GetProperty("password_matches").GetBoolean());
        Assert.Equal(["AWSPENDING"], pending.Strings("VersionStages"));
        Assert.Equal(token, r.GetProperty("put_replay").Str("VersionId"));
        Assert.Equal(["AWSPENDING"], r.GetProperty("put_replay").Strings("VersionStages"));

        Assert.Equal(["AWSPENDING"], r.GetProperty("token_in_describe").EnumerateArray().Select(x => x.GetString()!).ToArray());
        Assert.Equal(1, r.GetProperty("current_candidates").GetArrayLength());

        // finishSecret moved AWSCURRENT: the old version is AWSPREVIOUS, the new one current (and still pending).
        var after = r.GetProperty("stages_after_finish");
        Assert.Equal(["AWSPREVIOUS"], after.Strings("old"));
        Assert.Equal(["AWSCURRENT", "AWSPENDING"], after.Strings("new"));
        Assert.True(r.GetProperty("current_is_new").GetBoolean());
        Assert.Equal(2, r.GetProperty("versions_listed").GetInt32());
    }

    [Fact]
    public async Task Staging_label_moves_reproduce_the_recorded_AWS_sequences()
    {
        var r = await _boto3.Scenario("labels");

        AssertRows(r, "sample_stages",
            "v1=[AWSCURRENT] | deprecated=",
            "v1=[AWSCURRENT] v2=[SAMPLESTAGE0,SAMPLESTAGE1] | deprecated=",
            "v1=[AWSCURRENT] v3=[SAMPLESTAGE0,SAMPLESTAGE1] | deprecated=v2",
            "v1=[AWSCURRENT] v3=[SAMPLESTAGE0,SAMPLESTAGE1] v4=[AWSPENDING] | deprecated=v2",
            "current=value1",
            "v1=[AWSPREVIOUS] v3=[SAMPLESTAGE0,SAMPLESTAGE1] v4=[AWSPENDING] v5=[AWSCURRENT] | deprecated=v2",
            "current=value5");
        AssertRows(r, "partial_overlap", "v1=[AWSCURRENT] v2=[three] v3=[four,one,two] | deprecated=");
        AssertRows(r, "superset", "v1=[AWSCURRENT] v3=[four,one,three,two] | deprecated=v2");
        AssertRows(r, "manual_rotation_then_put",
            "v1=[AWSPREVIOUS] v2=[AWSCURRENT,AWSPENDING] | deprecated=",
            "v2=[AWSPREVIOUS] v3=[AWSCURRENT] | deprecated=v1");
        AssertRows(r, "two_rotations", "v2=[AWSPREVIOUS] v3=[AWSCURRENT,AWSPENDING] | deprecated=v1");
        AssertRows(r, "custom",
            "v1=[AWSPREVIOUS] v2=[AWSCURRENT,AWSPENDING,AWSSOMETHING,PUT1] | deprecated=",
            "v1=[AWSPREVIOUS] v2=[AWSCURRENT,AWSSOMETHING,PUT1] v3=[AWSPENDING,PUT2] | deprecated=",
            "v2=[AWSPREVIOUS,AWSSOMETHING,PUT1] v3=[AWSCURRENT,AWSPENDING,PUT2] | deprecated=v1");
        AssertRows(r, "remove_custom", "v1=[AWSPREVIOUS] v2=[AWSCURRENT] | deprecated=");
    }

    [Fact]
    public async Task LastAccessedDate_is_midnight_utc_of_the_read_and_tz_aware()
    {
        var r = await _boto3.Scenario("last_accessed");
        Assert.False(r.GetProperty("present_before_read").GetBoolean(), "LastAccessedDate must be omitted before the first read");
        var allowed = r.GetProperty("allowed_epochs").EnumerateArray().Select(e => e.GetDouble()).ToArray();

        foreach (var key in new[] { "first", "second", "version", "list" })
        {
            var t = r.GetProperty(key);
            Assert.True(t.ValueKind == JsonValueKind.Object && t.Str("type") == "datetime", $"{key}: LastAccessedDate missing: {t.GetRawText()}");
            Assert.True(t.GetProperty("tzaware").GetBoolean(), $"{key}: naive datetime {t.Str("iso")}");
            var epoch = t.GetProperty("epoch").GetDouble();
            Assert.True(allowed.Contains(epoch), $"{key}: LastAccessedDate {t.Str("iso")} ({epoch}) is not midnight UTC of the read day ({string.Join(", ", allowed)})");
        }
        Assert.Equal(r.GetProperty("first").Str("iso"), r.GetProperty("second").Str("iso"));
    }

    [Fact]
    public async Task Client_request_token_replays_do_not_create_versions()
    {
        var r = await _boto3.Scenario("idempotency");
        var token = r.Str("token");
        var first = r.GetProperty("create_first");
        Assert.Equal(token, first.Str("VersionId"));
        Assert.Equal(first.GetRawText(), r.GetProperty("create_replay").GetRawText());
        Assert.Equal(token, r.GetProperty("update_same_token").Str("VersionId"));
        Assert.Equal(token, r.GetProperty("put_same_token").Str("VersionId"));
        Assert.Equal(["AWSCURRENT"], r.GetProperty("put_same_token").Strings("VersionStages"));
        Assert.False(r.GetProperty("update_description_only").Has("VersionId"), r.GetProperty("update_description_only").GetRawText());
        Assert.Equal(1, r.GetProperty("versions").GetInt32());
        AssertError(r.GetProperty("create_other_value"), "ResourceExistsException",
            $"You can't use ClientRequestToken {token} because that value is already in use for a version of secret {first.Str("ARN")}.");
    }

    private static void AssertRows(JsonElement r, string key, params string[] expected)
    {
        var actual = r.Strings(key);
        Assert.True(expected.SequenceEqual(actual),
            $"{key}:\nexpected:\n  {string.Join("\n  ", expected)}\nactual:\n  {string.Join("\n  ", actual)}");
    }

    /// <summary>One error as boto3 reported it; modeled = must be caught by client.exceptions.&lt;Code&gt;.</summary>
    private static void AssertError(JsonElement e, string code, string? message, bool modeled = true)
    {
        Assert.True(e.GetProperty("raised").GetBoolean(), $"expected {code}, but the call succeeded: {e.GetRawText()}");
        Assert.True(code == e.Str("code"), $"expected {code}: {e.GetRawText()}");
        Assert.Equal(400, e.GetProperty("status").GetInt32());
        if (modeled)
        {
            Assert.True(e.GetProperty("caught_by_class").GetBoolean(), $"not caught by client.exceptions.{code}: {e.GetRawText()}");
            Assert.Equal(code, e.Str("class"));
        }
        if (message is not null)
        {
            Assert.Equal(message, e.Str("message"));
        }
    }

    /// <summary>A datetime boto3 returned: tz-aware, and near <paramref name="expected"/> (default now).</summary>
    private static DateTimeOffset AssertDateTime(JsonElement t, DateTimeOffset? expected = null)
    {
        Assert.True(t.ValueKind == JsonValueKind.Object && t.Str("type") == "datetime", $"not a datetime: {t.GetRawText()}");
        Assert.True(t.GetProperty("tzaware").GetBoolean(), $"naive datetime: {t.Str("iso")}");
        var value = DateTimeOffset.FromUnixTimeMilliseconds((long)(t.GetProperty("epoch").GetDouble() * 1000));
        CliAssert.Near(expected ?? DateTimeOffset.UtcNow, value, TimeSpan.FromMinutes(10));
        return value;
    }
}
