using Tumbler.Core.Secrets;
using Tumbler.Core.Tests.Support;

namespace Tumbler.Core.Tests.Secrets;

/// <summary>The recorded label sequences of spec §3.3, replayed through the service on a real store.</summary>
public sealed class StagingLabelsTests
{
    [Fact]
    public async Task Custom_stages_move_between_versions_and_leave_AWSCURRENT_alone()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var v1 = (await h.CreateAsync("labels", "v1")).VersionId!;
        var v2 = (await h.PutAsync("labels", "v2", ["SAMPLESTAGE1", "SAMPLESTAGE0"])).VersionId;
        Assert.Equal(["AWSCURRENT"], (await h.LabelsAsync("labels"))[v1]);
        Assert.Equal(["SAMPLESTAGE0", "SAMPLESTAGE1"], (await h.LabelsAsync("labels"))[v2]);

        var v3 = (await h.PutAsync("labels", "v3", ["SAMPLESTAGE1", "SAMPLESTAGE0"])).VersionId;
        var labels = await h.LabelsAsync("labels");
        Assert.False(labels.ContainsKey(v2)); // deprecated
        Assert.Equal(["SAMPLESTAGE0", "SAMPLESTAGE1"], labels[v3]);

        var v4 = (await h.PutAsync("labels", "v4", ["AWSPENDING"])).VersionId;
        var current = await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "labels" }, ServiceHarness.Caller, default);
        Assert.Equal("v1", current.SecretString);

        var v5 = (await h.PutAsync("labels", "v5")).VersionId;
        labels = await h.LabelsAsync("labels");
        Assert.Equal(["AWSCURRENT"], labels[v5]);
        Assert.Equal(["AWSPREVIOUS"], labels[v1]);
        Assert.Equal(["AWSPENDING"], labels[v4]);
    }

    [Fact]
    public async Task Partly_overlapping_stage_lists_leave_the_rest_where_they_were()
    {
        await using var h = await ServiceHarness.CreateAsync();
        await h.CreateAsync("overlap", "v1");
        var first = (await h.PutAsync("overlap", "a", ["one", "two", "three"])).VersionId;
        var second = (await h.PutAsync("overlap", "b", ["one", "two", "four"])).VersionId;
        var labels = await h.LabelsAsync("overlap");
        Assert.Equal(["three"], labels[first]);
        Assert.Equal(["four", "one", "two"], labels[second]);
    }

    [Fact]
    public async Task Moving_AWSCURRENT_gives_the_old_version_AWSPREVIOUS_and_a_later_put_drops_AWSPENDING()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var v1 = (await h.CreateAsync("rotate-by-hand", "v1")).VersionId!;
        var v2 = (await h.PutAsync("rotate-by-hand", "v2", ["AWSPENDING"])).VersionId;
        await h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = "rotate-by-hand", VersionStage = "AWSCURRENT", MoveToVersionId = v2, RemoveFromVersionId = v1,
        }, ServiceHarness.Caller, default);
        var labels = await h.LabelsAsync("rotate-by-hand");
        Assert.Equal(["AWSPREVIOUS"], labels[v1]);
        Assert.Equal(["AWSCURRENT", "AWSPENDING"], labels[v2]);

        var v3 = (await h.PutAsync("rotate-by-hand", "v3")).VersionId;
        labels = await h.LabelsAsync("rotate-by-hand");
        Assert.Equal(["AWSPREVIOUS"], labels[v2]);
        Assert.Equal(["AWSCURRENT"], labels[v3]);
        Assert.False(labels.ContainsKey(v1));
    }

    [Fact]
    public async Task Custom_labels_follow_their_versions_through_two_rotations()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var v1 = (await h.CreateAsync("custom", "v1")).VersionId!;
        var v2 = (await h.PutAsync("custom", "v2", ["AWSPENDING", "AWSSOMETHING", "PUT1"])).VersionId;
        await MoveCurrentAsync(h, "custom", v1, v2);
        var v3 = (await h.PutAsync("custom", "v3", ["AWSPENDING", "PUT2"])).VersionId;
        var labels = await h.LabelsAsync("custom");
        Assert.Equal(["AWSCURRENT", "AWSSOMETHING", "PUT1"], labels[v2]);
        Assert.Equal(["AWSPENDING", "PUT2"], labels[v3]);

        await MoveCurrentAsync(h, "custom", v2, v3);
        labels = await h.LabelsAsync("custom");
        Assert.Equal(["AWSPREVIOUS", "AWSSOMETHING", "PUT1"], labels[v2]);
        Assert.Equal(["AWSCURRENT", "AWSPENDING", "PUT2"], labels[v3]);
        Assert.False(labels.ContainsKey(v1));
    }

    [Fact]
    public async Task Moving_AWSCURRENT_without_naming_its_holder_is_refused_with_the_AWS_message()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var v1 = (await h.CreateAsync("strict", "v1")).VersionId!;
        var v2 = (await h.PutAsync("strict", "v2", ["OTHER"])).VersionId;
        var error = await Assert.ThrowsAsync<ServiceException>(() => h.Service.UpdateSecretVersionStageAsync(
            new UpdateSecretVersionStageRequest { SecretId = "strict", VersionStage = "AWSCURRENT", MoveToVersionId = v2 },
            ServiceHarness.Caller, default));
        Assert.Equal("InvalidParameterException", error.ErrorCode);
        Assert.Equal($"The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently attached to version {v1}, so you must explicitly reference that version in RemoveFromVersionId.", error.Message);

        var removeCurrent = await Assert.ThrowsAsync<ServiceException>(() => h.Service.UpdateSecretVersionStageAsync(
            new UpdateSecretVersionStageRequest { SecretId = "strict", VersionStage = "AWSCURRENT", RemoveFromVersionId = v1 },
            ServiceHarness.Caller, default));
        Assert.Equal("InvalidParameterException", removeCurrent.ErrorCode);
        Assert.Equal(["AWSCURRENT"], (await h.LabelsAsync("strict"))[v1]);
    }

    [Fact]
    public async Task A_secret_holds_at_most_twenty_labels_across_its_versions_yet_the_labels_AWS_manages_always_move()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var v1 = (await h.CreateAsync("many", "v1")).VersionId!;
        var v2 = (await h.PutAsync("many", "v2", [.. Enumerable.Range(0, 19).Select(i => $"L{i}")])).VersionId;

        var full = await Assert.ThrowsAsync<ServiceException>(() => h.PutAsync("many", "v3", ["X"]));
        Assert.Equal("LimitExceededException", full.ErrorCode);
        Assert.Equal("A secret can have at most 20 staging labels across its versions; many has 20. Remove one first.", full.Message);
        var refusedMove = await Assert.ThrowsAsync<ServiceException>(() => h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = "many", VersionStage = "Y", MoveToVersionId = v1,
        }, ServiceHarness.Caller, default));
        Assert.Equal("LimitExceededException", refusedMove.ErrorCode);
        var unchanged = await h.LabelsAsync("many");
        Assert.Equal((2, 20), (unchanged.Count, unchanged.Values.Sum(l => l.Count)));

        await h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = "many", VersionStage = "L0", RemoveFromVersionId = v2,
        }, ServiceHarness.Caller, default);
        var v3 = (await h.PutAsync("many", "v3", ["X"])).VersionId;
        await h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = "many", VersionStage = "L1", MoveToVersionId = v3, RemoveFromVersionId = v2,
        }, ServiceHarness.Caller, default);
        Assert.Equal(["L1", "X"], (await h.LabelsAsync("many"))[v3]);

        // At the quota, a new current value still goes in (AWSCURRENT moves, AWSPREVIOUS follows it), and so does a pending one.
        var v4 = (await h.PutAsync("many", "v4")).VersionId;
        var v5 = (await h.PutAsync("many", "v5", ["AWSPENDING"])).VersionId;
        var labels = await h.LabelsAsync("many");
        Assert.Equal(["AWSCURRENT"], labels[v4]);
        Assert.Equal(["AWSPREVIOUS"], labels[v1]);
        Assert.Equal(["AWSPENDING"], labels[v5]);
        Assert.Equal("LimitExceededException", (await Assert.ThrowsAsync<ServiceException>(() => h.PutAsync("many", "v6", ["Z"]))).ErrorCode);
    }

    private static Task MoveCurrentAsync(ServiceHarness h, string id, string from, string to) =>
        h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = id, VersionStage = "AWSCURRENT", MoveToVersionId = to, RemoveFromVersionId = from,
        }, ServiceHarness.Caller, default);
}
