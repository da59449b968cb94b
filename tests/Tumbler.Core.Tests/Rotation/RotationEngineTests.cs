using Microsoft.Extensions.Logging.Abstractions;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;
using Tumbler.Core.Tests.Support;

namespace Tumbler.Core.Tests.Rotation;

/// <summary>The engine's rules (order, persistence, retry, resume, schedule) with the generic template function.</summary>
public sealed class RotationEngineTests
{
    private static readonly CallContext Caller = ServiceHarness.Caller;
    private static readonly RotationOptions Options = new() { LeaseDuration = TimeSpan.FromSeconds(30), RetryBase = TimeSpan.FromSeconds(10) };

    private static async Task<(ServiceHarness H, TemplateRotationFunction Function, RotationEngine Engine)> SetUpAsync()
    {
        var function = new TemplateRotationFunction();
        var registry = new SingleFunctionRegistry(function);
        var h = await ServiceHarness.CreateAsync(functions: registry);
        return (h, function, NewEngine(h, registry));
    }

    private static RotationEngine NewEngine(ServiceHarness h, IRotationFunctionRegistry registry, RotationOptions? options = null) =>
        new(h.Service, h.Store, registry, h.Clock, options ?? Options, NullLogger<RotationEngine>.Instance);

    private static Task<RotationResponse> RotateAsync(ServiceHarness h, string id, string? token = null, RotationRulesType? rules = null, bool? immediately = null) =>
        h.Service.RotateSecretAsync(new RotateSecretRequest
        {
            SecretId = id, ClientRequestToken = token ?? ServiceHarness.Token(), RotationLambdaARN = TemplateRotationFunction.Arn,
            RotationRules = rules, RotateImmediately = immediately,
        }, Caller, default);

    private static Task<DescribeSecretResponse> DescribeAsync(ServiceHarness h, string id) =>
        h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = id }, Caller, default);

    [Fact]
    public async Task RotateSecret_stores_a_valueless_AWSPENDING_placeholder_before_any_step_runs()
    {
        var (h, _, _) = await SetUpAsync();
        await using var _h = h;
        var v1 = (await h.CreateAsync("app", "old")).VersionId!;
        var token = (await RotateAsync(h, "app")).VersionId!;

        var described = await DescribeAsync(h, "app");
        Assert.True(described.RotationEnabled);
        Assert.Equal(TemplateRotationFunction.Arn, described.RotationLambdaARN);
        Assert.Equal(["AWSPENDING"], described.VersionIdsToStages![token]);
        Assert.Equal(["AWSCURRENT"], described.VersionIdsToStages[v1]);
        Assert.Equal("InProgress", described.TumblerRotationStatus!.State);
        var pending = await Assert.ThrowsAsync<ServiceException>(() => h.Service.GetSecretValueAsync(
            new GetSecretValueRequest { SecretId = "app", VersionId = token, VersionStage = "AWSPENDING" }, Caller, default));
        Assert.Equal("ResourceNotFoundException", pending.ErrorCode);
    }

    [Fact]
    public async Task The_four_steps_run_in_order_and_leave_the_new_version_current_without_AWSPENDING()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        var v1 = (await h.CreateAsync("app", "old")).VersionId!;
        var token = (await RotateAsync(h, "app", rules: new RotationRulesType { AutomaticallyAfterDays = 30 })).VersionId!;

        Assert.Equal(1, await engine.RunOnceAsync(default));
        Assert.Equal(RotationStep.All, function.Calls.Select(c => c.Step));
        Assert.All(function.Calls, c => Assert.Equal(token, c.Token));
        var described = await DescribeAsync(h, "app");
        Assert.Equal(["AWSCURRENT"], described.VersionIdsToStages![token]);
        Assert.Equal(["AWSPREVIOUS"], described.VersionIdsToStages[v1]);
        Assert.Equal(h.Clock.Now, described.LastRotatedDate);
        Assert.NotNull(described.NextRotationDate);
        Assert.InRange<DateTimeOffset>(described.NextRotationDate!.Value, h.Clock.Now.AddDays(29), h.Clock.Now.AddDays(31));
        Assert.Null(described.TumblerRotationStatus);
        Assert.Equal(30, described.RotationRules!.AutomaticallyAfterDays);
        Assert.NotEqual("old", (await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "app" }, Caller, default)).SecretString);
    }

    [Fact]
    public async Task DescribeSecret_and_ListSecrets_add_the_days_a_schedule_expression_means_and_RotateSecret_keeps_only_what_was_given()
    {
        var (h, _, engine) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        await RotateAsync(h, "app", rules: new RotationRulesType { ScheduleExpression = "rate(10 hours)", Duration = "2h" });
        Assert.Equal(1, await engine.RunOnceAsync(default));

        // AWS answers {"AutomaticallyAfterDays": 1, "ScheduleExpression": "rate(10 hours)"} for such a secret.
        var expected = new RotationRulesType { AutomaticallyAfterDays = 1, Duration = "2h", ScheduleExpression = "rate(10 hours)" };
        Assert.Equal(expected, (await DescribeAsync(h, "app")).RotationRules);
        var listed = await h.Service.ListSecretsAsync(new ListSecretsRequest(), Caller, default);
        Assert.Equal(expected, Assert.Single(listed.SecretList).RotationRules);

        // The schedule is still the expression alone: rotating again with the rules as given is accepted.
        await RotateAsync(h, "app", rules: new RotationRulesType { ScheduleExpression = "rate(10 days)" });
        Assert.Equal(new RotationRulesType { AutomaticallyAfterDays = 10, ScheduleExpression = "rate(10 days)" }, (await DescribeAsync(h, "app")).RotationRules);
    }

    [Fact]
    public async Task A_failed_step_is_visible_retried_after_backoff_and_never_regenerates_the_pending_password()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        var token = (await RotateAsync(h, "app")).VersionId!;
        function.Failing.Add(RotationStep.SetSecret);

        await engine.RunOnceAsync(default);
        var status = (await DescribeAsync(h, "app")).TumblerRotationStatus!;
        Assert.Equal(("Retrying", "setSecret", 1), (status.State, status.NextStep, status.Attempts));
        Assert.Equal("setSecret: setSecret failed on purpose", status.LastError);
        var pending = (await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "app", VersionStage = "AWSPENDING" }, Caller, default)).SecretString;

        function.Failing.Clear();
        Assert.Equal(0, await engine.RunOnceAsync(default)); // backoff not over yet
        h.Clock.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(1, await engine.RunOnceAsync(default));
        Assert.Equal(1, function.Calls.Count(c => c.Step == RotationStep.CreateSecret)); // resumed at setSecret
        var current = await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "app" }, Caller, default);
        Assert.Equal((token, pending), (current.VersionId, current.SecretString));
    }

    [Fact]
    public async Task A_rotation_left_by_a_dead_node_is_resumed_by_another_once_its_lease_expires()
    {
        var (h, function, _) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        await RotateAsync(h, "app");
        using var crash = new CancellationTokenSource();
        var dying = NewEngine(h, new SingleFunctionRegistry(function), Options with
        {
            StepBoundary = point =>
            {
                if (point == "testSecret:before")
                {
                    crash.Cancel(); // the node dies here: its lease stays behind
                    crash.Token.ThrowIfCancellationRequested();
                }
            },
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => dying.RunOnceAsync(crash.Token));

        var survivor = NewEngine(h, new SingleFunctionRegistry(function));
        Assert.Equal(0, await survivor.RunOnceAsync(default)); // still leased by the dead node
        h.Clock.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(1, await survivor.RunOnceAsync(default));
        Assert.Equal([RotationStep.CreateSecret, RotationStep.SetSecret, RotationStep.TestSecret, RotationStep.FinishSecret],
            function.Calls.Select(c => c.Step));
        Assert.Null((await DescribeAsync(h, "app")).TumblerRotationStatus);
    }

    [Fact]
    public async Task A_second_RotateSecret_during_a_rotation_is_refused_unless_it_repeats_the_token()
    {
        var (h, _, _) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        var token = ServiceHarness.Token();
        await RotateAsync(h, "app", token);
        Assert.Equal(token, (await RotateAsync(h, "app", token)).VersionId);
        var refused = await Assert.ThrowsAsync<ServiceException>(() => RotateAsync(h, "app"));
        Assert.Equal(("InvalidRequestException", "A previous rotation isn't complete. That rotation will be reattempted."), (refused.ErrorCode, refused.Message));
    }

    [Fact]
    public async Task An_unknown_or_missing_rotation_function_is_refused_and_nothing_is_stored()
    {
        var (h, _, _) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        var missing = await Assert.ThrowsAsync<ServiceException>(() => h.Service.RotateSecretAsync(
            new RotateSecretRequest { SecretId = "app", ClientRequestToken = ServiceHarness.Token() }, Caller, default));
        Assert.Equal(("InvalidRequestException", "No Lambda rotation function ARN is associated with this secret."), (missing.ErrorCode, missing.Message));
        var unknown = await Assert.ThrowsAsync<ServiceException>(() => h.Service.RotateSecretAsync(new RotateSecretRequest
        {
            SecretId = "app", ClientRequestToken = ServiceHarness.Token(), RotationLambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:Nope",
        }, Caller, default));
        Assert.Equal("AccessDeniedException", unknown.ErrorCode);
        var described = await DescribeAsync(h, "app");
        Assert.Null(described.RotationEnabled);
        Assert.Null(described.RotationLambdaARN);
        Assert.Single(described.VersionIdsToStages!);
        var noToken = await Assert.ThrowsAsync<ServiceException>(() => h.Service.RotateSecretAsync(
            new RotateSecretRequest { SecretId = "app", RotationLambdaARN = TemplateRotationFunction.Arn }, Caller, default));
        Assert.Equal("InvalidParameterException", noToken.ErrorCode);
    }

    [Fact]
    public async Task RotateImmediately_false_only_tests_a_copy_of_the_current_value_and_removes_it()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        var v1 = (await h.CreateAsync("app", "old")).VersionId!;
        string? seen = null;
        function.Extra = async (e, client) => seen = (await client.GetSecretValueAsync(
            new GetSecretValueRequest { SecretId = e.SecretId, VersionId = e.ClientRequestToken, VersionStage = "AWSPENDING" }, default)).SecretString;
        var token = (await RotateAsync(h, "app", rules: new RotationRulesType { AutomaticallyAfterDays = 7 }, immediately: false)).VersionId!;

        await engine.RunOnceAsync(default);
        Assert.Equal([(RotationStep.TestSecret, token)], function.Calls);
        Assert.Equal("old", seen);
        var described = await DescribeAsync(h, "app");
        Assert.Equal([v1], described.VersionIdsToStages!.Keys);
        Assert.True(described.RotationEnabled);
        Assert.NotNull(described.NextRotationDate);
        Assert.Null(described.LastRotatedDate);
    }

    [Fact]
    public async Task A_failing_rotation_test_gives_up_after_its_attempts_removes_its_copy_and_leaves_the_secret_free_to_rotate()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        var v1 = (await h.CreateAsync("app", "old")).VersionId!;
        function.Failing.Add(RotationStep.TestSecret);
        var token = (await RotateAsync(h, "app", rules: new RotationRulesType { AutomaticallyAfterDays = 7 }, immediately: false)).VersionId!;

        for (var attempt = 1; attempt < Options.TestAttempts; attempt++)
        {
            Assert.Equal(1, await engine.RunOnceAsync(default));
            var status = (await DescribeAsync(h, "app")).TumblerRotationStatus!;
            Assert.Equal(("Retrying", attempt, token), (status.State, status.Attempts, status.VersionId));
            h.Clock.Advance(TimeSpan.FromHours(2));
        }
        Assert.Equal(1, await engine.RunOnceAsync(default));

        Assert.Equal(Options.TestAttempts, function.Calls.Count(c => c == (RotationStep.TestSecret, token)));
        var described = await DescribeAsync(h, "app");
        Assert.Null(described.TumblerRotationStatus);
        Assert.Equal([v1], described.VersionIdsToStages!.Keys);
        Assert.True(described.RotationEnabled);
        h.Clock.Advance(TimeSpan.FromHours(2));
        Assert.Equal(0, await engine.RunOnceAsync(default));

        function.Failing.Clear();
        var rotated = (await RotateAsync(h, "app")).VersionId!;
        await engine.RunOnceAsync(default);
        Assert.Equal(rotated, (await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "app" }, Caller, default)).VersionId);
    }

    [Fact]
    public async Task A_scheduled_rotation_starts_when_due_and_CancelRotateSecret_stops_the_schedule()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        await RotateAsync(h, "app", rules: new RotationRulesType { AutomaticallyAfterDays = 1 });
        await engine.RunOnceAsync(default);
        function.Calls.Clear();

        Assert.Equal(0, await engine.RunOnceAsync(default));
        h.Clock.Advance(TimeSpan.FromDays(2));
        Assert.Equal(1, await engine.RunOnceAsync(default));
        Assert.Equal(RotationStep.All, function.Calls.Select(c => c.Step));

        var cancelled = await h.Service.CancelRotateSecretAsync(new SecretIdRequest { SecretId = "app" }, Caller, default);
        var described = await DescribeAsync(h, "app");
        Assert.False(described.RotationEnabled);
        Assert.Null(described.NextRotationDate);
        Assert.Equal(TemplateRotationFunction.Arn, described.RotationLambdaARN);
        Assert.Null(cancelled.VersionId);
        h.Clock.Advance(TimeSpan.FromDays(3));
        Assert.Equal(0, await engine.RunOnceAsync(default));
    }

    [Fact]
    public async Task CancelRotateSecret_is_refused_while_setSecret_runs_and_after_an_interrupted_one_but_not_after_a_failed_one()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        var token = (await RotateAsync(h, "app")).VersionId!;
        ServiceException? duringSetSecret = null;
        function.Extra = async (e, _) =>
        {
            if (e.Step == RotationStep.SetSecret)
            {
                duringSetSecret = await Assert.ThrowsAsync<ServiceException>(() =>
                    h.Service.CancelRotateSecretAsync(new SecretIdRequest { SecretId = "app" }, Caller, default));
            }
        };
        function.Failing.Add(RotationStep.TestSecret);
        await engine.RunOnceAsync(default);
        Assert.NotNull(duringSetSecret);
        Assert.Contains($"has run setSecret (or is running it): the database may already use the password of the pending version {token}",
            duringSetSecret.Message, StringComparison.Ordinal);

        // A server that died in setSecret leaves the lease's owner behind (its start expires the lease but keeps the owner).
        var second = await NewInterruptedRotationAsync(h, "app2");
        Assert.Equal(ErrorCodes.InvalidRequest, (await Assert.ThrowsAsync<ServiceException>(() =>
            h.Service.CancelRotateSecretAsync(new SecretIdRequest { SecretId = "app2" }, Caller, default))).ErrorCode);
        Assert.Equal(1, await h.Store.ReleaseRotationLeasesAsync(default));
        Assert.Equal(ErrorCodes.InvalidRequest, (await Assert.ThrowsAsync<ServiceException>(() =>
            h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
            {
                SecretId = "app2", VersionStage = "AWSPENDING", RemoveFromVersionId = second,
            }, Caller, default))).ErrorCode);

        // A setSecret that failed gives the lease back: the rotation may be cancelled, as on AWS.
        function.Extra = null;
        function.Failing.Clear();
        function.Failing.Add(RotationStep.SetSecret);
        h.Clock.Advance(TimeSpan.FromMinutes(5));
        await engine.RunOnceAsync(default);
        Assert.Equal("setSecret", (await DescribeAsync(h, "app2")).TumblerRotationStatus!.NextStep);
        Assert.Equal(second, (await h.Service.CancelRotateSecretAsync(new SecretIdRequest { SecretId = "app2" }, Caller, default)).VersionId);
    }

    /// <summary>A rotation whose createSecret completed and whose setSecret attempt was claimed by a node that then died.</summary>
    private static async Task<string> NewInterruptedRotationAsync(ServiceHarness h, string id)
    {
        await h.CreateAsync(id, "old");
        var token = (await RotateAsync(h, id)).VersionId!;
        var claimed = Assert.Single(await h.Store.ClaimRotationsAsync(h.Clock.GetUtcNow(), "dead-node", h.Clock.GetUtcNow().AddMinutes(1), 10, default),
            j => j.Token == token);
        claimed.StepsDone = 1;
        Assert.True(await h.Service.RecordStepDoneAsync(claimed, default));
        return token;
    }

    [Fact]
    public async Task CancelRotateSecret_is_refused_past_setSecret_where_the_pending_password_may_be_the_only_one_that_works()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        var token = (await RotateAsync(h, "app")).VersionId!;
        function.Failing.Add(RotationStep.TestSecret); // setSecret done: a single-user database now takes the pending password
        await engine.RunOnceAsync(default);
        Assert.Equal("testSecret", (await DescribeAsync(h, "app")).TumblerRotationStatus!.NextStep);

        var refused = await Assert.ThrowsAsync<ServiceException>(() => h.Service.CancelRotateSecretAsync(new SecretIdRequest { SecretId = "app" }, Caller, default));
        Assert.Equal(ErrorCodes.InvalidRequest, refused.ErrorCode);
        Assert.Contains($"has run setSecret (or is running it): the database may already use the password of the pending version {token}", refused.Message, StringComparison.Ordinal);
        var described = await DescribeAsync(h, "app");
        Assert.True(described.RotationEnabled);
        Assert.Equal(["AWSPENDING"], described.VersionIdsToStages![token]);
        // Nor may AWSPENDING leave that version by hand, which would strand the rotation the same way.
        var unlabel = await Assert.ThrowsAsync<ServiceException>(() => h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = "app", VersionStage = "AWSPENDING", RemoveFromVersionId = token,
        }, Caller, default));
        Assert.Contains("so moving AWSPENDING off it could lock applications out", unlabel.Message, StringComparison.Ordinal);
        var moved = await Assert.ThrowsAsync<ServiceException>(() => h.PutAsync("app", "other", stages: ["AWSPENDING"]));
        Assert.Equal(ErrorCodes.InvalidRequest, moved.ErrorCode);
        Assert.Equal(["AWSPENDING"], (await DescribeAsync(h, "app")).VersionIdsToStages![token]);

        // The way out the message gives: the pending version made current ends the rotation.
        var current = described.VersionIdsToStages.Single(p => p.Value.Contains("AWSCURRENT")).Key;
        await h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = "app", VersionStage = "AWSCURRENT", MoveToVersionId = token, RemoveFromVersionId = current,
        }, Caller, default);
        function.Failing.Clear();
        h.Clock.Advance(TimeSpan.FromMinutes(5));
        await engine.RunOnceAsync(default);
        Assert.Null((await DescribeAsync(h, "app")).TumblerRotationStatus);
        Assert.Equal(token, (await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "app" }, Caller, default)).VersionId);

        // Before setSecret (a rotation failing on its value, say) cancelling is still allowed, as on AWS.
        var second = (await RotateAsync(h, "app")).VersionId!;
        function.Failing.Add(RotationStep.SetSecret);
        await engine.RunOnceAsync(default);
        Assert.Equal(second, (await h.Service.CancelRotateSecretAsync(new SecretIdRequest { SecretId = "app" }, Caller, default)).VersionId);
    }

    [Fact]
    public async Task A_rotation_function_cannot_touch_other_secrets()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        await h.CreateAsync("someone-else", "theirs");
        ServiceException? denied = null;
        function.Extra = async (_, client) =>
        {
            try
            {
                await client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "someone-else" }, default);
            }
            catch (ServiceException e)
            {
                denied = e;
            }
        };
        await RotateAsync(h, "app");
        await engine.RunOnceAsync(default);
        Assert.Equal("AccessDeniedException", denied?.ErrorCode);
    }

    [Fact]
    public async Task Removing_AWSPENDING_from_a_stuck_rotation_lets_a_new_one_start_and_AWSCURRENT_never_lands_on_an_empty_version()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        var v1 = (await h.CreateAsync("app", "old")).VersionId!;
        function.Failing.Add(RotationStep.CreateSecret);
        var stuck = (await RotateAsync(h, "app")).VersionId!;
        await engine.RunOnceAsync(default);

        var empty = await Assert.ThrowsAsync<ServiceException>(() => h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = "app", VersionStage = "AWSCURRENT", MoveToVersionId = stuck, RemoveFromVersionId = v1,
        }, Caller, default));
        Assert.Equal("InvalidRequestException", empty.ErrorCode);

        // What AWS tells users to do with a stuck rotation: remove the label, then rotate again.
        await h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = "app", VersionStage = "AWSPENDING", RemoveFromVersionId = stuck,
        }, Caller, default);
        function.Failing.Clear();
        var fresh = (await RotateAsync(h, "app")).VersionId!;
        await engine.RunOnceAsync(default);
        Assert.Equal(fresh, (await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "app" }, Caller, default)).VersionId);
    }

    [Fact]
    public async Task A_finishSecret_that_does_not_move_AWSCURRENT_fails_and_is_run_again()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        var token = (await RotateAsync(h, "app")).VersionId!;
        // First attempt: a finishSecret that returns without moving the label.
        var lazy = new LazyFinish(function);
        var lazyEngine = NewEngine(h, new SingleFunctionRegistry(lazy));
        await lazyEngine.RunOnceAsync(default);
        Assert.Contains("is not AWSCURRENT", (await DescribeAsync(h, "app")).TumblerRotationStatus!.LastError, StringComparison.Ordinal);

        h.Clock.Advance(TimeSpan.FromMinutes(1));
        lazy.Lazy = false;
        await lazyEngine.RunOnceAsync(default);
        Assert.Equal(token, (await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "app" }, Caller, default)).VersionId);
    }

    [Fact]
    public async Task A_scheduled_rotation_reattempts_a_pending_version_nobody_drives()
    {
        var (h, function, engine) = await SetUpAsync();
        await using var _h = h;
        await h.CreateAsync("app", "old");
        await RotateAsync(h, "app", rules: new RotationRulesType { AutomaticallyAfterDays = 1 });
        await engine.RunOnceAsync(default);
        var orphan = (await h.PutAsync("app", "half-done", ["AWSPENDING"])).VersionId;

        h.Clock.Advance(TimeSpan.FromDays(2));
        Assert.Equal(1, await engine.RunOnceAsync(default));
        var current = await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "app" }, Caller, default);
        Assert.Equal((orphan, "half-done"), (current.VersionId, current.SecretString));
    }

    [Fact]
    public async Task A_test_only_rotation_keeps_its_copy_when_someone_gave_it_AWSCURRENT()
    {
        var (h, _, engine) = await SetUpAsync();
        await using var _h = h;
        var v1 = (await h.CreateAsync("app", "old")).VersionId!;
        var copy = (await RotateAsync(h, "app", immediately: false)).VersionId!;
        await h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = "app", VersionStage = "AWSCURRENT", MoveToVersionId = copy, RemoveFromVersionId = v1,
        }, Caller, default);
        await engine.RunOnceAsync(default);
        var labels = await h.LabelsAsync("app");
        Assert.Equal(["AWSCURRENT"], labels[copy]);
        Assert.Equal("old", (await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "app" }, Caller, default)).SecretString);
    }

    /// <summary>A function whose finishSecret returns without moving AWSCURRENT while Lazy is set.</summary>
    private sealed class LazyFinish(TemplateRotationFunction inner) : IRotationFunction
    {
        public bool Lazy { get; set; } = true;

        public Task InvokeAsync(RotationEvent rotationEvent, ISecretsManagerClient secrets, CancellationToken ct) =>
            Lazy && rotationEvent.Step == RotationStep.FinishSecret ? Task.CompletedTask : inner.InvokeAsync(rotationEvent, secrets, ct);
    }

    [Fact]
    public async Task The_version_quota_refuses_a_rotation_up_front_and_never_blocks_a_label_move()
    {
        var function = new TemplateRotationFunction();
        var registry = new SingleFunctionRegistry(function);
        await using var h = await ServiceHarness.CreateAsync(new SecretsOptions { MaxDeprecatedVersions = 1, MinAgeBeforePruning = TimeSpan.FromHours(1) }, registry);
        var engine = NewEngine(h, registry);
        await h.CreateAsync("app", "v0");
        await RotateAsync(h, "app");
        await engine.RunOnceAsync(default);
        await RotateAsync(h, "app");
        await engine.RunOnceAsync(default); // v0 is now deprecated: the quota is full

        var refused = await Assert.ThrowsAsync<ServiceException>(() => RotateAsync(h, "app"));
        Assert.Equal("LimitExceededException", refused.ErrorCode);
        Assert.Null((await DescribeAsync(h, "app")).TumblerRotationStatus);

        // A label move that deprecates one more version still succeeds.
        await h.PutAsync("app", "x", ["X"]);
        var labels = await h.LabelsAsync("app");
        var withX = labels.Single(p => p.Value.Contains("X")).Key;
        await h.Service.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest { SecretId = "app", VersionStage = "X", RemoveFromVersionId = withX }, Caller, default);
        Assert.False((await h.LabelsAsync("app")).ContainsKey(withX));
    }
}
