using System.Text;
using Microsoft.Data.Sqlite;
using Tumbler.Core.Secrets;
using Tumbler.Core.Tests.Support;

namespace Tumbler.Core.Tests.Secrets;

public sealed class SecretsServiceTests
{
    private static readonly CallContext Caller = ServiceHarness.Caller;

    [Fact]
    public async Task Create_replayed_with_the_same_token_and_value_returns_the_same_answer_and_otherwise_conflicts()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var token = ServiceHarness.Token();
        var request = new CreateSecretRequest { Name = "idem", SecretString = "s3cret", ClientRequestToken = token };
        var first = await h.Service.CreateSecretAsync(request, Caller, default);
        var replay = await h.Service.CreateSecretAsync(request, Caller, default);
        Assert.Equal(first, replay);

        var otherValue = await Assert.ThrowsAsync<ServiceException>(() => h.Service.CreateSecretAsync(request with { SecretString = "other" }, Caller, default));
        Assert.Equal(("ResourceExistsException", $"You can't use ClientRequestToken {token} because that value is already in use for a version of secret {first.ARN}."),
            (otherValue.ErrorCode, otherValue.Message));
        var otherToken = await Assert.ThrowsAsync<ServiceException>(() => h.Service.CreateSecretAsync(request with { ClientRequestToken = ServiceHarness.Token() }, Caller, default));
        Assert.Equal("The operation failed because the secret idem already exists.", otherToken.Message);
    }

    [Fact]
    public async Task Put_with_a_used_token_changes_nothing_for_the_same_value_and_conflicts_for_another()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var arn = (await h.CreateAsync("put-idem", "v1")).ARN;
        var token = ServiceHarness.Token();
        await h.PutAsync("put-idem", "v2", token: token);
        var repeat = await h.PutAsync("put-idem", "v2", token: token);
        Assert.Equal(["AWSCURRENT"], repeat.VersionStages);
        Assert.Equal(2, (await h.LabelsAsync("put-idem")).Count);

        var conflict = await Assert.ThrowsAsync<ServiceException>(() => h.PutAsync("put-idem", "v3", token: token));
        Assert.Equal("ResourceExistsException", conflict.ErrorCode);
        Assert.Equal($"You can't use ClientRequestToken {token} because that value is already in use for a version of secret {arn}.", conflict.Message);
    }

    [Fact]
    public async Task Update_without_a_value_ignores_the_token_and_creates_no_version()
    {
        await using var h = await ServiceHarness.CreateAsync();
        await h.CreateAsync("update-me", "v1");
        var updated = await h.Service.UpdateSecretAsync(new UpdateSecretRequest
        {
            SecretId = "update-me", Description = "d", ClientRequestToken = ServiceHarness.Token(),
        }, Caller, default);
        Assert.Null(updated.VersionId);
        Assert.Single(await h.LabelsAsync("update-me"));
        var described = await h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = "update-me" }, Caller, default);
        Assert.Equal("d", described.Description);

        h.Clock.Advance(TimeSpan.FromMilliseconds(5));
        var withValue = await h.Service.UpdateSecretAsync(new UpdateSecretRequest
        {
            SecretId = "update-me", SecretString = "v2", ClientRequestToken = ServiceHarness.Token(),
        }, Caller, default);
        Assert.NotNull(withValue.VersionId);
        var after = await h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = "update-me" }, Caller, default);
        Assert.True(after.LastChangedDate.Value > described.LastChangedDate.Value);
        Assert.Equal(["AWSCURRENT"], after.VersionIdsToStages![withValue.VersionId!]);
    }

    [Fact]
    public async Task Deprecated_versions_are_pruned_only_when_old_enough_and_refused_above_the_limit_until_then()
    {
        await using var h = await ServiceHarness.CreateAsync(new SecretsOptions { MaxDeprecatedVersions = 2, MinAgeBeforePruning = TimeSpan.FromHours(1) });
        await h.CreateAsync("busy", "v0");
        for (var i = 1; i <= 3; i++)
        {
            await h.PutAsync("busy", $"v{i}"); // leaves v0, v1 deprecated after v3
        }
        var refused = await Assert.ThrowsAsync<ServiceException>(() => h.PutAsync("busy", "v4"));
        Assert.Equal("LimitExceededException", refused.ErrorCode);

        h.Clock.Advance(TimeSpan.FromHours(2));
        await h.PutAsync("busy", "v4");
        var versions = await h.Service.ListSecretVersionIdsAsync(new ListSecretVersionIdsRequest { SecretId = "busy", IncludeDeprecated = true }, Caller, default);
        Assert.Equal(4, versions.Versions.Count); // v0 pruned: two deprecated, AWSPREVIOUS, AWSCURRENT
        Assert.Equal(2, versions.Versions.Count(v => v.VersionStages is null));

        // Read by id, a deprecated version has no VersionStages member either (not an empty list).
        var deprecated = versions.Versions.First(v => v.VersionStages is null).VersionId;
        var read = await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "busy", VersionId = deprecated }, Caller, default);
        Assert.Null(read.VersionStages);
    }

    [Fact]
    public async Task A_secret_scheduled_for_deletion_can_be_described_and_restored_but_not_read_and_is_purged_after_its_window()
    {
        await using var h = await ServiceHarness.CreateAsync();
        await h.CreateAsync("doomed", "v1");
        var deleted = await h.Service.DeleteSecretAsync(new DeleteSecretRequest { SecretId = "doomed", RecoveryWindowInDays = 7 }, Caller, default);
        Assert.Equal(h.Clock.Now.AddDays(7), deleted.DeletionDate);

        var read = await Assert.ThrowsAsync<ServiceException>(() => h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "doomed" }, Caller, default));
        Assert.Equal(("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion."), (read.ErrorCode, read.Message));
        var recreate = await Assert.ThrowsAsync<ServiceException>(() => h.CreateAsync("doomed", "x"));
        Assert.Equal("You can't create this secret because a secret with this name is already scheduled for deletion.", recreate.Message);
        Assert.NotNull((await h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = "doomed" }, Caller, default)).DeletedDate);
        Assert.Empty((await h.Service.ListSecretsAsync(new ListSecretsRequest(), Caller, default)).SecretList);
        Assert.Single((await h.Service.ListSecretsAsync(new ListSecretsRequest { IncludePlannedDeletion = true }, Caller, default)).SecretList);

        await h.Service.RestoreSecretAsync(new SecretIdRequest { SecretId = "doomed" }, Caller, default);
        Assert.Equal("v1", (await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "doomed" }, Caller, default)).SecretString);

        await h.Service.DeleteSecretAsync(new DeleteSecretRequest { SecretId = "doomed", RecoveryWindowInDays = 7 }, Caller, default);
        h.Clock.Advance(TimeSpan.FromDays(6));
        Assert.Empty(await h.Service.PurgeExpiredDeletionsAsync(default));
        h.Clock.Advance(TimeSpan.FromDays(1));
        Assert.Single(await h.Service.PurgeExpiredDeletionsAsync(default));
        var gone = await Assert.ThrowsAsync<ServiceException>(() => h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = "doomed" }, Caller, default));
        Assert.Equal(("ResourceNotFoundException", "Secrets Manager can't find the specified secret."), (gone.ErrorCode, gone.Message));
    }

    [Fact]
    public async Task Forced_deletion_frees_the_name_and_a_new_secret_gets_a_new_arn()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var first = await h.CreateAsync("again", "v1");
        await h.Service.DeleteSecretAsync(new DeleteSecretRequest { SecretId = "again", ForceDeleteWithoutRecovery = true }, Caller, default);
        var second = await h.CreateAsync("again", "v2");
        Assert.NotEqual(first.ARN, second.ARN);

        var missing = await h.Service.DeleteSecretAsync(new DeleteSecretRequest { SecretId = "never-was", ForceDeleteWithoutRecovery = true }, Caller, default);
        Assert.Equal("never-was", missing.Name);
        Assert.StartsWith("arn:aws:secretsmanager:us-east-1:123456789012:secret:never-was-", missing.ARN);

        var both = await Assert.ThrowsAsync<ServiceException>(() => h.Service.DeleteSecretAsync(
            new DeleteSecretRequest { SecretId = "again", ForceDeleteWithoutRecovery = true, RecoveryWindowInDays = 7 }, Caller, default));
        Assert.Equal("InvalidParameterException", both.ErrorCode);
    }

    [Fact]
    public async Task Secrets_are_found_by_name_full_arn_and_partial_arn_except_when_the_name_looks_suffixed()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var plain = await h.CreateAsync("prod/app/db", "v1");
        Assert.Matches(@"^arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app/db-[A-Za-z0-9]{6}$", plain.ARN);
        foreach (var id in new[] { "prod/app/db", plain.ARN, plain.ARN[..^7] })
        {
            Assert.Equal("v1", (await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = id }, Caller, default)).SecretString);
        }
        var suffixed = await h.CreateAsync("name-a1b2c3", "v2");
        var partial = await Assert.ThrowsAsync<ServiceException>(() =>
            h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = suffixed.ARN[..^7] }, Caller, default));
        Assert.Equal("ResourceNotFoundException", partial.ErrorCode);

        var otherRegion = await Assert.ThrowsAsync<ServiceException>(() => h.Service.GetSecretValueAsync(
            new GetSecretValueRequest { SecretId = "prod/app/db" }, Caller with { Region = "eu-west-1" }, default));
        Assert.Equal("ResourceNotFoundException", otherRegion.ErrorCode);
    }

    [Fact]
    public async Task Value_selection_errors_use_the_AWS_messages_and_reads_record_the_day_of_access()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var created = await h.CreateAsync("reads", "v1");
        var noLabel = await Assert.ThrowsAsync<ServiceException>(() => h.Service.GetSecretValueAsync(
            new GetSecretValueRequest { SecretId = "reads", VersionStage = "AWSPENDING" }, Caller, default));
        Assert.Equal("Secrets Manager can't find the specified secret value for staging label: AWSPENDING", noLabel.Message);
        var unknownVersion = new string('a', 32);
        var noVersion = await Assert.ThrowsAsync<ServiceException>(() => h.Service.GetSecretValueAsync(
            new GetSecretValueRequest { SecretId = "reads", VersionId = unknownVersion }, Caller, default));
        Assert.Equal($"Secrets Manager can't find the specified secret value for VersionId: {unknownVersion}", noVersion.Message);
        var mismatch = await Assert.ThrowsAsync<ServiceException>(() => h.Service.GetSecretValueAsync(
            new GetSecretValueRequest { SecretId = "reads", VersionId = created.VersionId, VersionStage = "AWSPREVIOUS" }, Caller, default));
        Assert.Equal(("InvalidRequestException", "You provided a VersionStage that is not associated to the provided VersionId."), (mismatch.ErrorCode, mismatch.Message));

        Assert.Null((await h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = "reads" }, Caller, default)).LastAccessedDate);
        await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "reads" }, Caller, default);
        var described = await h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = "reads" }, Caller, default);
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 0, 0, 0, TimeSpan.Zero), described.LastAccessedDate);
    }

    [Fact]
    public async Task Names_and_lengths_are_validated_with_the_AWS_messages_before_existence()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var badName = await Assert.ThrowsAsync<ServiceException>(() => h.CreateAsync("Inv Name", "v"));
        Assert.Equal(("ValidationException", SecretArn.InvalidNameMessage), (badName.ErrorCode, badName.Message));
        var badId = await Assert.ThrowsAsync<ServiceException>(() => h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = " Inv*Name? " }, Caller, default));
        Assert.Equal("ValidationException", badId.ErrorCode);
        // A SecretId of name characters longer than any name (512) is valid input (up to 2048): no such secret.
        var longerThanAnyName = await Assert.ThrowsAsync<ServiceException>(() =>
            h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = new string('a', 2048) }, Caller, default));
        Assert.Equal("ResourceNotFoundException", longerThanAnyName.ErrorCode);
        Assert.Equal("ValidationException", (await Assert.ThrowsAsync<ServiceException>(() => h.CreateAsync(new string('a', 513), "v"))).ErrorCode);

        var tooLong = Assert.Throws<ServiceException>(() => h.Service.GetRandomPassword(new GetRandomPasswordRequest { PasswordLength = 5555 }, Caller));
        Assert.Equal("1 validation error detected: Value '5555' at 'passwordLength' failed to satisfy constraint: Member must have value less than or equal to 4096", tooLong.Message);

        var huge = new string('x', 65537);
        var oversized = await Assert.ThrowsAsync<ServiceException>(() => h.CreateAsync("big", huge));
        Assert.Equal("ValidationException", oversized.ErrorCode);
        Assert.DoesNotContain("xxxx", oversized.Message, StringComparison.Ordinal); // secret values are never echoed
        var multiByte = new string('é', 40000); // 80,000 UTF-8 bytes
        Assert.Equal("ValidationException", (await Assert.ThrowsAsync<ServiceException>(() => h.CreateAsync("big", multiByte))).ErrorCode);
        await h.CreateAsync("big", new string('x', 65536));

        // Patterns and list sizes too (spec §2.1, §2.4); a rotation token is sensitive, so never echoed.
        var badToken = await Assert.ThrowsAsync<ServiceException>(() => h.Service.PutSecretValueAsync(new PutSecretValueRequest
        {
            SecretId = "big", SecretString = "v", ClientRequestToken = Guid.NewGuid().ToString(), RotationToken = "has space " + new string('t', 40),
        }, Caller, default));
        Assert.Equal("ValidationException", badToken.ErrorCode);
        Assert.Contains("'rotationToken' failed to satisfy constraint: Member must satisfy regular expression pattern", badToken.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("has space", badToken.Message, StringComparison.Ordinal);
        var noRegions = await Assert.ThrowsAsync<ServiceException>(() => h.Service.CreateSecretAsync(new CreateSecretRequest
        {
            Name = "no-regions", SecretString = "v", ClientRequestToken = Guid.NewGuid().ToString(), AddReplicaRegions = [],
        }, Caller, default));
        Assert.Equal("1 validation error detected: Value '[0 items]' at 'addReplicaRegions' failed to satisfy constraint: Member must have length greater than or equal to 1",
            noRegions.Message);
    }

    [Fact]
    public async Task List_pages_are_stable_while_secrets_are_added_and_sort_by_name_descending()
    {
        await using var h = await ServiceHarness.CreateAsync();
        for (var i = 0; i < 5; i++)
        {
            await h.CreateAsync($"s{i}", "v");
            h.Clock.Advance(TimeSpan.FromSeconds(1));
        }
        var page1 = await h.Service.ListSecretsAsync(new ListSecretsRequest { MaxResults = 2 }, Caller, default);
        Assert.Equal(["s0", "s1"], page1.SecretList.Select(s => s.Name));
        await h.CreateAsync("s5", "v");
        var names = page1.SecretList.Select(s => s.Name).ToList();
        var token = page1.NextToken;
        while (token is not null)
        {
            var page = await h.Service.ListSecretsAsync(new ListSecretsRequest { MaxResults = 2, NextToken = token }, Caller, default);
            names.AddRange(page.SecretList.Select(s => s.Name));
            token = page.NextToken;
        }
        Assert.Equal(["s0", "s1", "s2", "s3", "s4", "s5"], names);

        var byName = await h.Service.ListSecretsAsync(new ListSecretsRequest { SortBy = "name", SortOrder = "desc", MaxResults = 3 }, Caller, default);
        Assert.Equal(["s5", "s4", "s3"], byName.SecretList.Select(s => s.Name));
        var badToken = await Assert.ThrowsAsync<ServiceException>(() => h.Service.ListSecretsAsync(new ListSecretsRequest { NextToken = "not-a-token" }, Caller, default));
        Assert.Equal(("InvalidNextTokenException", "The NextToken value is not valid for this request."), (badToken.ErrorCode, badToken.Message));
        // Positions are read as they are written (20 digits), the same for ListSecrets and BatchGetSecretValue.
        foreach (var forged in new[] { "created-date\nasc\n12\n1", "created-date\nasc\n-0000000000000000001\n1", "created-date\nasc\n00000000000000000001\n+1" })
        {
            var refused = await Assert.ThrowsAsync<ServiceException>(() => h.Service.ListSecretsAsync(
                new ListSecretsRequest { NextToken = Convert.ToBase64String(Encoding.UTF8.GetBytes(forged)) }, Caller, default));
            Assert.Equal("InvalidNextTokenException", refused.ErrorCode);
        }
    }

    [Fact]
    public async Task List_pages_walk_every_order_with_ties_and_a_filter_that_hides_most_secrets()
    {
        // The store pages in SQL (ListSecretsPageAsync): each order, both directions, ties on the date broken by
        // creation order, must give the same sequence page by page as sorted in one go.
        await using var h = await ServiceHarness.CreateAsync();
        var created = new List<(string Name, DateTimeOffset Created, DateTimeOffset Changed, DateTimeOffset? Accessed)>();
        var names = Enumerable.Range(0, 23).Select(i => $"p{(i * 7) % 23:D2}").ToList(); // created out of name order
        for (var i = 0; i < names.Count; i++)
        {
            await h.CreateAsync(names[i], "v");
            created.Add((names[i], h.Clock.Now, h.Clock.Now, null));
            if (i % 3 == 2)
            {
                h.Clock.Advance(TimeSpan.FromSeconds(1)); // groups of three share a creation date
            }
        }
        for (var i = 0; i < names.Count; i += 4)
        {
            h.Clock.Advance(TimeSpan.FromDays(1));
            await h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = names[i] }, Caller, default);
            await h.Service.UpdateSecretAsync(new UpdateSecretRequest { SecretId = names[i], Description = "changed" }, Caller, default);
            var day = new DateTimeOffset(h.Clock.Now.UtcDateTime.Date, TimeSpan.Zero);
            created[i] = created[i] with { Changed = h.Clock.Now, Accessed = day };
        }
        var orders = new Dictionary<string, Func<(string Name, DateTimeOffset Created, DateTimeOffset Changed, DateTimeOffset? Accessed), long>>
        {
            ["created-date"] = s => s.Created.UtcTicks,
            ["last-changed-date"] = s => s.Changed.UtcTicks,
            ["last-accessed-date"] = s => (s.Accessed ?? DateTimeOffset.MinValue).UtcTicks,
        };
        foreach (var sortOrder in new[] { "asc", "desc" })
        {
            foreach (var (sortBy, key) in orders)
            {
                // Row keys follow creation order, so the index in `created` breaks ties.
                var ascending = created.Select((s, index) => (s.Name, Key: key(s), index)).OrderBy(e => e.Key).ThenBy(e => e.index).Select(e => e.Name).ToList();
                Assert.Equal(sortOrder == "asc" ? ascending : ascending.AsEnumerable().Reverse().ToList(), await ListAllAsync(sortBy, sortOrder, null));
            }
            var byName = created.Select(s => s.Name).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(sortOrder == "asc" ? byName : byName.AsEnumerable().Reverse().ToList(), await ListAllAsync("name", sortOrder, null));
        }
        // A filter that matches 2 of 23: pages of one still find both, across the store's read-ahead batches.
        Assert.Equal(["p05", "p15"], await ListAllAsync("name", "asc", [new Filter { Key = "name", Values = ["p05", "p15"] }]));

        async Task<List<string>> ListAllAsync(string sortBy, string sortOrder, List<Filter>? filters)
        {
            var listed = new List<string>();
            string? token = null;
            do
            {
                var page = await h.Service.ListSecretsAsync(new ListSecretsRequest
                {
                    SortBy = sortBy, SortOrder = sortOrder, MaxResults = filters is null ? 4 : 1, NextToken = token, Filters = filters,
                }, Caller, default);
                Assert.True(page.SecretList.Count <= 4);
                listed.AddRange(page.SecretList.Select(s => s.Name));
                token = page.NextToken;
            }
            while (token is not null);
            return listed;
        }
    }

    [Fact]
    public async Task Tags_are_merged_in_order_and_an_emptied_list_differs_from_never_tagged()
    {
        await using var h = await ServiceHarness.CreateAsync();
        await h.CreateAsync("tagged", "v");
        Assert.Null((await h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = "tagged" }, Caller, default)).Tags);
        await h.Service.TagResourceAsync(new TagResourceRequest { SecretId = "tagged", Tags = [new() { Key = "b", Value = "1" }, new() { Key = "a", Value = "2" }] }, Caller, default);
        await h.Service.TagResourceAsync(new TagResourceRequest { SecretId = "tagged", Tags = [new() { Key = "b", Value = "3" }] }, Caller, default);
        var nullTag = await Assert.ThrowsAsync<ServiceException>(() =>
            h.Service.TagResourceAsync(new TagResourceRequest { SecretId = "tagged", Tags = [null!] }, Caller, default));
        Assert.Equal("1 validation error detected: Value null at 'tags.1.member' failed to satisfy constraint: Member must not be null", nullTag.Message);
        var tags = (await h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = "tagged" }, Caller, default)).Tags!;
        Assert.Equal([("b", "3"), ("a", "2")], tags.Select(t => (t.Key!, t.Value!)));
        await h.Service.UntagResourceAsync(new UntagResourceRequest { SecretId = "tagged", TagKeys = ["a", "b", "missing"] }, Caller, default);
        Assert.Empty((await h.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = "tagged" }, Caller, default)).Tags!);
    }

    [Fact]
    public async Task The_database_holds_no_value_in_clear_and_a_value_moved_to_another_version_does_not_decrypt()
    {
        await using var h = await ServiceHarness.CreateAsync();
        const string marker = "plaintext-marker-4f2b9c";
        var first = await h.CreateAsync("sealed", $"{{\"password\":\"{marker}\"}}");
        var second = await h.PutAsync("sealed", Convert.ToBase64String(Encoding.UTF8.GetBytes(marker)));
        await h.Store.DisposeAsync();

        foreach (var file in Directory.GetFiles(h.Directory))
        {
            var bytes = await File.ReadAllBytesAsync(file);
            Assert.Equal(-1, bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(marker)));
            Assert.Equal(-1, bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(Convert.ToBase64String(Encoding.UTF8.GetBytes(marker)))));
        }

        // Copy the first version's ciphertext over the second's: associated data must make it unreadable.
        await using (var connection = new SqliteConnection($"Data Source={h.DatabasePath};Pooling=False"))
        {
            await connection.OpenAsync();
            var command = connection.CreateCommand();
            command.CommandText = "UPDATE versions SET value = (SELECT value FROM versions WHERE version_id = $from) WHERE version_id = $to";
            command.Parameters.AddWithValue("$from", first.VersionId);
            command.Parameters.AddWithValue("$to", second.VersionId);
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }
        var error = await Assert.ThrowsAsync<ServiceException>(() => h.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "sealed" }, Caller, default));
        Assert.Equal("DecryptionFailure", error.ErrorCode);
        Assert.DoesNotContain(marker, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Batch_get_reports_per_secret_failures_beside_the_values_and_pages_filtered_results()
    {
        await using var h = await ServiceHarness.CreateAsync();
        await h.CreateAsync("batch/a", "A");
        await h.CreateAsync("batch/b", "B");
        await h.CreateAsync("batch/empty");
        await h.CreateAsync("other", "O");
        var byId = await h.Service.BatchGetSecretValueAsync(new BatchGetSecretValueRequest { SecretIdList = ["batch/a", "missing", "batch/empty"] }, Caller, default);
        Assert.Equal(["A"], byId.SecretValues.Select(v => v.SecretString));
        Assert.Equal([("missing", "ResourceNotFoundException"), ("batch/empty", "ResourceNotFoundException")], byId.Errors.Select(e => (e.SecretId!, e.ErrorCode!)));

        var page = await h.Service.BatchGetSecretValueAsync(new BatchGetSecretValueRequest
        {
            Filters = [new Filter { Key = "name", Values = ["batch/"] }], MaxResults = 2,
        }, Caller, default);
        Assert.Equal(["A", "B"], page.SecretValues.Select(v => v.SecretString));
        Assert.NotNull(page.NextToken);
        var rest = await h.Service.BatchGetSecretValueAsync(new BatchGetSecretValueRequest
        {
            Filters = [new Filter { Key = "name", Values = ["batch/"] }], MaxResults = 2, NextToken = page.NextToken,
        }, Caller, default);
        Assert.Empty(rest.SecretValues);
        Assert.Contains(":secret:batch/empty-", Assert.Single(rest.Errors).SecretId!, StringComparison.Ordinal);
        Assert.Null(rest.NextToken);
        foreach (var forged in new[] { "created-date\nasc\nzzz\n1", "created-date\nasc\n12\n1", "name\nasc\nbatch/a\n1" })
        {
            var refused = await Assert.ThrowsAsync<ServiceException>(() => h.Service.BatchGetSecretValueAsync(new BatchGetSecretValueRequest
            {
                Filters = [new Filter { Key = "name", Values = ["batch/"] }], NextToken = Convert.ToBase64String(Encoding.UTF8.GetBytes(forged)),
            }, Caller, default));
            Assert.Equal("InvalidNextTokenException", refused.ErrorCode);
        }

        var both = await Assert.ThrowsAsync<ServiceException>(() => h.Service.BatchGetSecretValueAsync(new BatchGetSecretValueRequest
        {
            SecretIdList = ["batch/a"], Filters = [new Filter { Key = "name", Values = ["b"] }],
        }, Caller, default));
        Assert.Equal("InvalidParameterException", both.ErrorCode);
    }

    [Fact]
    public async Task Version_pages_continue_after_the_last_version_even_when_it_was_pruned_meanwhile()
    {
        await using var h = await ServiceHarness.CreateAsync(new SecretsOptions { MaxDeprecatedVersions = 1, MinAgeBeforePruning = TimeSpan.Zero });
        await h.CreateAsync("paged", "v0");
        h.Clock.Advance(TimeSpan.FromSeconds(1));
        await h.PutAsync("paged", "v1");
        h.Clock.Advance(TimeSpan.FromSeconds(1));
        await h.PutAsync("paged", "v2"); // v0 deprecated
        var first = await h.Service.ListSecretVersionIdsAsync(new ListSecretVersionIdsRequest { SecretId = "paged", MaxResults = 1, IncludeDeprecated = true }, Caller, default);
        h.Clock.Advance(TimeSpan.FromSeconds(1));
        await h.PutAsync("paged", "v3"); // v1 deprecated, v0 pruned
        var rest = await h.Service.ListSecretVersionIdsAsync(new ListSecretVersionIdsRequest
        {
            SecretId = "paged", MaxResults = 10, IncludeDeprecated = true, NextToken = first.NextToken,
        }, Caller, default);
        Assert.Single(first.Versions);
        Assert.Single(rest.Versions); // v1: older than the first page's v2; v0 is gone
        Assert.Null(rest.NextToken);
    }

    [Fact]
    public async Task A_null_id_in_a_batch_is_a_validation_error_not_a_server_fault()
    {
        await using var h = await ServiceHarness.CreateAsync();
        var error = await Assert.ThrowsAsync<ServiceException>(() =>
            h.Service.BatchGetSecretValueAsync(new BatchGetSecretValueRequest { SecretIdList = [null!] }, Caller, default));
        Assert.Equal("ValidationException", error.ErrorCode);
    }
}
