using System.Data.Common;
using Tumbler.Core.Storage;
using Tumbler.Storage.Sql;

namespace Tumbler.Storage.Tests;

/// <summary>
/// Every behaviour of the store contract (ISecretStore, IIdentityStore, IFunctionStore), run against each
/// backend by a subclass below, so SQLite and PostgreSQL cannot drift. Each test gets a new, empty database.
/// </summary>
public abstract class StoreConformanceTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 29, 0, 0, 0, TimeSpan.Zero);
    private readonly List<SqlSecretStore> _opened = [];
    private IStoreBackend _backend = null!;

    protected SqlSecretStore Store { get; private set; } = null!;

    protected abstract Task<IStoreBackend> CreateBackendAsync();

    public async Task InitializeAsync()
    {
        _backend = await CreateBackendAsync();
        Store = await OpenAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var store in _opened)
        {
            await store.DisposeAsync();
        }
        await _backend.DisposeAsync();
    }

    /// <summary>Another store object on the same database: a second process or node.</summary>
    private async Task<SqlSecretStore> OpenAsync()
    {
        var store = _backend.Open();
        _opened.Add(store);
        await store.InitializeAsync(default);
        return store;
    }

    private static SecretEntity NewSecret(string name, string region = "us-east-1", DateTimeOffset? created = null) => new()
    {
        Region = region,
        Name = name,
        Arn = $"arn:aws:secretsmanager:{region}:123456789012:secret:{name}-AbCdEf",
        CreatedDate = created ?? T0,
        LastChangedDate = created ?? T0,
    };

    private static VersionEntity NewVersion(string id, DateTimeOffset created, params string[] labels) => new()
    {
        VersionId = id, Labels = [.. labels], CreatedDate = created, KeyId = "key-1", HasValue = true,
    };

    private Task<SecretEntity> InsertAsync(SecretEntity secret, params (VersionEntity Version, byte[]? Value)[] versions) =>
        Store.WriteAsync(async writer =>
        {
            await writer.InsertSecretAsync(secret);
            foreach (var (version, value) in versions)
            {
                await writer.InsertVersionAsync(secret.Key, version, value);
            }
            return secret;
        }, default);

    private Task<SecretEntity?> FindAsync(string name, string region = "us-east-1") => Store.FindSecretAsync(region, SecretLookup.ByName(name), default);

    private static KmsKeyEntity NewKey(string id, params string[] aliases) =>
        new(id, $"arn:aws:kms:us-east-1:123456789012:key/{id}", "test key", true, T0, [new KeyMaterialEntity(1, T0, [1, 2, 3, (byte)id.Length])], aliases);

    // --- schema ------------------------------------------------------------------------------------

    [Fact]
    public async Task A_new_store_is_empty_and_initializing_again_changes_nothing()
    {
        Assert.False(await Store.HasDataAsync(default));
        await Store.SetSettingAsync("s", "v", default);
        await Store.InitializeAsync(default);
        Assert.Equal("v", await Store.GetSettingAsync("s", default));
        Assert.False(await Store.HasDataAsync(default));
    }

    [Fact]
    public async Task A_schema_newer_than_this_binary_is_refused_by_name()
    {
        await _backend.SetSchemaVersionAsync(999);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => _backend.Open().InitializeAsync(default));
        Assert.Contains("newer than this Tumbler understands", error.Message);
    }

    [Fact]
    public async Task Settings_are_created_read_and_replaced_and_initialized_once()
    {
        Assert.Null(await Store.GetSettingAsync("missing", default));
        await Store.SetSettingAsync("name", "one", default);
        await Store.SetSettingAsync("name", "two", default);
        Assert.Equal("two", await Store.GetSettingAsync("name", default));

        var other = await OpenAsync();
        var stored = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() =>
            (i % 2 == 0 ? Store : other).InitializeSettingAsync("first", $"node-{i}", default))));
        Assert.Single(stored.Distinct());
        Assert.Equal(stored[0], await Store.GetSettingAsync("first", default));
    }

    // --- secrets and versions ----------------------------------------------------------------------

    [Fact]
    public async Task A_secret_is_found_by_name_or_arn_in_its_region_only()
    {
        var secret = await InsertAsync(NewSecret("db/app"), (NewVersion("v1", T0, "AWSCURRENT"), [9, 9]));
        Assert.True(secret.Key > 0);
        var byName = await FindAsync("db/app");
        var byArn = await Store.FindSecretAsync("us-east-1", SecretLookup.ByArn(secret.Arn), default);
        Assert.Equal(secret.Key, byName!.Key);
        Assert.Equal(secret.Key, byArn!.Key);
        Assert.Null(await FindAsync("db/app", "eu-west-1"));
        Assert.Null(await Store.FindSecretAsync("eu-west-1", SecretLookup.ByArn(secret.Arn), default));
        Assert.Null(await FindAsync("DB/APP"));
        Assert.True(await Store.HasDataAsync(default));
    }

    [Fact]
    public async Task Names_are_unique_per_region_and_a_duplicate_rolls_back_its_transaction()
    {
        await InsertAsync(NewSecret("same"));
        await InsertAsync(NewSecret("same", "eu-west-1"));
        await Assert.ThrowsAnyAsync<DbException>(() => Store.WriteAsync(async writer =>
        {
            await writer.InsertSecretAsync(NewSecret("other"));
            await writer.InsertSecretAsync(NewSecret("same"));
            return true;
        }, default));
        Assert.Null(await FindAsync("other"));
    }

    [Fact]
    public async Task Writes_queued_together_commit_together_and_one_that_fails_is_rolled_back_alone()
    {
        // The first write holds the transaction until the others have queued behind it, so they form one batch.
        var release = new TaskCompletionSource();
        var first = Store.WriteAsync(async writer =>
        {
            await writer.InsertSecretAsync(NewSecret("first"));
            await release.Task;
            return true;
        }, default);
        var batch = Enumerable.Range(0, 12).Select(i => Store.WriteAsync(async writer =>
        {
            await writer.InsertSecretAsync(NewSecret($"batch-{i}"));
            if (i % 3 == 1)
            {
                throw new InvalidOperationException($"work {i} fails after its insert");
            }
            if (i % 3 == 2)
            {
                await writer.InsertSecretAsync(NewSecret("first")); // a duplicate name: the database refuses it
            }
            return i;
        }, default)).ToList();
        release.SetResult();
        Assert.True(await first);

        for (var i = 0; i < batch.Count; i++)
        {
            switch (i % 3)
            {
                case 0:
                    Assert.Equal(i, await batch[i]);
                    Assert.NotNull(await FindAsync($"batch-{i}"));
                    break;
                case 1:
                    Assert.Equal($"work {i} fails after its insert", (await Assert.ThrowsAsync<InvalidOperationException>(() => batch[i])).Message);
                    Assert.Null(await FindAsync($"batch-{i}"));
                    break;
                default:
                    await Assert.ThrowsAnyAsync<DbException>(() => batch[i]);
                    Assert.Null(await FindAsync($"batch-{i}"));
                    break;
            }
        }
        Assert.NotNull(await FindAsync("first"));
    }

    [Fact]
    public async Task Every_secret_column_round_trips_and_tags_tell_never_tagged_from_emptied()
    {
        var secret = await InsertAsync(NewSecret("full"));
        Assert.Null((await FindAsync("full"))!.Tags);
        secret.Description = "désc ✓";
        secret.KmsKeyId = "alias/custom";
        secret.Type = "binary";
        secret.LastChangedDate = T0.AddMinutes(1);
        secret.LastAccessedDate = T0.AddDays(1);
        secret.DeletionDate = T0.AddDays(30);
        secret.Tags = [new SecretTag("team", "a"), new SecretTag("Env", "")];
        secret.RotationEnabled = false;
        secret.RotationLambdaArn = "arn:aws:lambda:us-east-1:123456789012:function:f";
        secret.RotationRulesJson = """{"AutomaticallyAfterDays":7}""";
        secret.LastRotatedDate = T0.AddHours(2);
        secret.NextRotationStart = T0.AddDays(7);
        secret.NextRotationDate = T0.AddDays(7).AddHours(4);
        secret.ResourcePolicy = """{"Version":"2012-10-17","Statement":[]}""";
        await Store.WriteAsync(async w => { await w.UpdateSecretAsync(secret); return true; }, default);

        var read = await Store.FindSecretAsync("us-east-1", SecretLookup.ByArn(secret.Arn), default);
        Assert.Equal("désc ✓", read!.Description);
        Assert.Equal("alias/custom", read.KmsKeyId);
        Assert.Equal("binary", read.Type);
        Assert.Equal(secret.LastChangedDate, read.LastChangedDate);
        Assert.Equal(secret.LastAccessedDate, read.LastAccessedDate);
        Assert.Equal(secret.DeletionDate, read.DeletionDate);
        Assert.Equal(secret.Tags, read.Tags);
        Assert.False(read.RotationEnabled);
        Assert.Equal(secret.RotationLambdaArn, read.RotationLambdaArn);
        Assert.Equal(secret.RotationRulesJson, read.RotationRulesJson);
        Assert.Equal(secret.LastRotatedDate, read.LastRotatedDate);
        Assert.Equal(secret.NextRotationStart, read.NextRotationStart);
        Assert.Equal(secret.NextRotationDate, read.NextRotationDate);
        Assert.Equal(secret.ResourcePolicy, read.ResourcePolicy);

        read.Tags = [];
        await Store.WriteAsync(async w => { await w.UpdateSecretAsync(read); return true; }, default);
        Assert.Empty((await FindAsync("full"))!.Tags!);
    }

    [Fact]
    public async Task Versions_keep_their_labels_order_value_and_placeholder_state()
    {
        var secret = await InsertAsync(NewSecret("versions"),
            (NewVersion("v1", T0, "AWSPREVIOUS"), [1]),
            (NewVersion("v2", T0.AddSeconds(1), "AWSCURRENT", "custom"), [2]),
            (new VersionEntity { VersionId = "v3", Labels = ["AWSPENDING"], CreatedDate = T0.AddSeconds(2) }, null));
        var read = (await FindAsync("versions"))!;
        Assert.Equal(["v1", "v2", "v3"], read.Versions.Select(v => v.VersionId));
        Assert.Equal(["AWSCURRENT", "custom"], read.Versions[1].Labels);
        Assert.True(read.Versions[1].HasValue);
        Assert.False(read.Versions[2].HasValue);
        Assert.Null(read.Versions[2].KeyId);
        Assert.Equal(new byte[] { 2 }, await Store.ReadValueAsync(secret.Key, "v2", default));
        Assert.Null(await Store.ReadValueAsync(secret.Key, "v3", default));
        Assert.Null(await Store.ReadValueAsync(secret.Key, "nope", default));

        await Store.WriteAsync(async w =>
        {
            var v2 = read.Versions[1];
            v2.Labels.Remove("custom");
            await w.UpdateVersionAsync(secret.Key, v2, encryptedValue: null); // labels only: the value stays
            var v3 = read.Versions[2];
            v3.KeyId = "key-2";
            v3.HasValue = true;
            await w.UpdateVersionAsync(secret.Key, v3, [3, 3]);
            await w.DeleteVersionAsync(secret.Key, "v1");
            Assert.Equal(new byte[] { 3, 3 }, await w.ReadValueAsync(secret.Key, "v3")); // the transaction reads its own writes
            return true;
        }, default);
        read = (await FindAsync("versions"))!;
        Assert.Equal(["v2", "v3"], read.Versions.Select(v => v.VersionId));
        Assert.Equal(["AWSCURRENT"], read.Versions[0].Labels);
        Assert.Equal(new byte[] { 2 }, await Store.ReadValueAsync(secret.Key, "v2", default));
        Assert.True(read.Versions[1].HasValue);
        Assert.Equal("key-2", read.Versions[1].KeyId);
    }

    [Fact]
    public async Task A_write_that_throws_leaves_nothing_behind()
    {
        await Assert.ThrowsAsync<InvalidTimeZoneException>(() => Store.WriteAsync<bool>(async w =>
        {
            await w.InsertSecretAsync(NewSecret("ghost"));
            throw new InvalidTimeZoneException();
        }, default));
        Assert.Null(await FindAsync("ghost"));
        // The write lock was released: the next write runs.
        await InsertAsync(NewSecret("after"));
        Assert.NotNull(await FindAsync("after"));
    }

    [Fact]
    public async Task Listing_is_per_region_oldest_first_with_versions_and_hides_scheduled_deletions_unless_asked()
    {
        await InsertAsync(NewSecret("b", created: T0.AddSeconds(1)), (NewVersion("b1", T0, "AWSCURRENT"), [1]));
        await InsertAsync(NewSecret("a", created: T0.AddSeconds(2)), (NewVersion("a1", T0, "AWSCURRENT"), [1]), (NewVersion("a2", T0.AddSeconds(1)), [2]));
        var deleted = NewSecret("c", created: T0);
        deleted.DeletionDate = T0.AddDays(7);
        await InsertAsync(deleted);
        await InsertAsync(NewSecret("elsewhere", "eu-west-1"));

        var live = await Store.ListSecretsAsync("us-east-1", includeScheduledForDeletion: false, default);
        Assert.Equal(["b", "a"], live.Select(s => s.Name));
        Assert.Equal(["a1", "a2"], live[1].Versions.Select(v => v.VersionId));
        var all = await Store.ListSecretsAsync("us-east-1", includeScheduledForDeletion: true, default);
        Assert.Equal(["c", "b", "a"], all.Select(s => s.Name));
    }

    [Fact]
    public async Task A_listing_page_continues_after_a_position_in_each_order_and_direction()
    {
        // Creation dates tie in pairs, so the row key must break ties in the listing's direction.
        var names = new[] { "d", "B", "a", "c", "E" };
        for (var i = 0; i < names.Length; i++)
        {
            await InsertAsync(NewSecret(names[i], created: T0.AddSeconds(i / 2)), (NewVersion(names[i] + "1", T0, "AWSPREVIOUS"), [1]),
                (NewVersion(names[i] + "2", T0.AddSeconds(1), "AWSCURRENT"), [2]));
        }
        var deleted = NewSecret("gone", created: T0);
        deleted.DeletionDate = T0.AddDays(7);
        await InsertAsync(deleted);
        await InsertAsync(NewSecret("elsewhere", "eu-west-1"));
        var accessed = (await FindAsync("a"))!;
        await Store.SetLastAccessedAsync(accessed.Key, "a2", T0.AddDays(1), default);

        Assert.Equal(["d", "B", "a", "c", "E"], await WalkAsync(SecretSortKey.CreatedDate, descending: false));
        Assert.Equal(["E", "c", "a", "B", "d"], await WalkAsync(SecretSortKey.CreatedDate, descending: true));
        Assert.Equal(["B", "E", "a", "c", "d"], await WalkAsync(SecretSortKey.Name, descending: false)); // byte order: capitals first
        Assert.Equal(["d", "c", "a", "E", "B"], await WalkAsync(SecretSortKey.Name, descending: true));
        Assert.Equal(["d", "B", "c", "E", "a"], await WalkAsync(SecretSortKey.LastAccessedDate, descending: false)); // never read comes first
        Assert.Equal(["d", "B", "a", "c", "E"], await WalkAsync(SecretSortKey.LastChangedDate, descending: false));

        var first = await Store.ListSecretsPageAsync("us-east-1", includeScheduledForDeletion: true, SecretSortKey.Name, false, null, 10, default);
        Assert.Equal(["B", "E", "a", "c", "d", "gone"], first.Select(s => s.Name));
        Assert.Equal(["d1", "d2"], first[4].Versions.Select(v => v.VersionId));
        Assert.Equal(["AWSCURRENT"], first[4].Versions[1].Labels);

        // Pages of two, each continuing after the last secret of the one before.
        async Task<List<string>> WalkAsync(SecretSortKey sortBy, bool descending)
        {
            var listed = new List<string>();
            SecretListPosition? after = null;
            while (true)
            {
                var page = await Store.ListSecretsPageAsync("us-east-1", includeScheduledForDeletion: false, sortBy, descending, after, 2, default);
                listed.AddRange(page.Select(s => s.Name));
                if (page.Count < 2)
                {
                    return listed;
                }
                after = SecretListPosition.Of(page[^1], sortBy);
            }
        }
    }

    [Fact]
    public async Task Last_accessed_is_recorded_on_the_secret_and_the_version()
    {
        var secret = await InsertAsync(NewSecret("read"), (NewVersion("v1", T0, "AWSCURRENT"), [1]));
        await Store.SetLastAccessedAsync(secret.Key, "v1", T0.AddDays(3), default);
        var read = (await FindAsync("read"))!;
        Assert.Equal(T0.AddDays(3), read.LastAccessedDate);
        Assert.Equal(T0.AddDays(3), read.Versions[0].LastAccessedDate);
    }

    [Fact]
    public async Task Purging_removes_due_deletions_with_their_versions_and_rotation_and_names_them()
    {
        var due = NewSecret("due");
        due.DeletionDate = T0.AddDays(7);
        await InsertAsync(due, (NewVersion("v1", T0, "AWSCURRENT"), [1]));
        await Store.WriteAsync(async w => { await w.SaveRotationAsync(NewJob(due.Key, due.Arn, T0)); return true; }, default);
        var later = NewSecret("later");
        later.DeletionDate = T0.AddDays(8);
        await InsertAsync(later);

        Assert.Equal([due.Arn], await Store.PurgeDeletedAsync(T0.AddDays(7), default));
        Assert.Null(await FindAsync("due"));
        Assert.Null(await Store.ReadValueAsync(due.Key, "v1", default));
        Assert.Null(await Store.FindRotationAsync(due.Key, default));
        Assert.NotNull(await FindAsync("later"));
        Assert.Empty(await Store.PurgeDeletedAsync(T0.AddDays(7), default));
    }

    [Fact]
    public async Task Deleting_a_secret_removes_its_versions()
    {
        var secret = await InsertAsync(NewSecret("gone"), (NewVersion("v1", T0, "AWSCURRENT"), [1]));
        await Store.WriteAsync(async w => { await w.DeleteSecretAsync(secret.Key); return true; }, default);
        Assert.Null(await FindAsync("gone"));
        Assert.Null(await Store.ReadValueAsync(secret.Key, "v1", default));
    }

    // --- concurrency -------------------------------------------------------------------------------

    [Fact]
    public async Task Concurrent_read_modify_write_transactions_from_two_processes_lose_no_update()
    {
        var other = await OpenAsync();
        var secret = await InsertAsync(NewSecret("counter"));
        secret.Description = "0";
        await Store.WriteAsync(async w => { await w.UpdateSecretAsync(secret); return true; }, default);

        async Task IncrementAsync(SqlSecretStore store) => await store.WriteAsync(async w =>
        {
            var current = (await w.FindSecretAsync("us-east-1", SecretLookup.ByName("counter")))!;
            await Task.Yield(); // give the other writer every chance to interleave
            current.Description = (int.Parse(current.Description!) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            await w.UpdateSecretAsync(current);
            return true;
        }, default);

        await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() => IncrementAsync(i % 2 == 0 ? Store : other))));
        Assert.Equal("40", (await FindAsync("counter"))!.Description);
    }

    // --- rotation jobs and leases ------------------------------------------------------------------

    private static RotationJob NewJob(long key, string arn, DateTimeOffset next) => new()
    {
        SecretKey = key, SecretArn = arn, Region = "us-east-1", Token = Guid.NewGuid().ToString(), RotationToken = "rt",
        RotateImmediately = true, StartedDate = T0, NextAttemptDate = next,
    };

    [Fact]
    public async Task A_rotation_job_is_saved_replaced_found_and_deleted()
    {
        var secret = await InsertAsync(NewSecret("rotating"));
        var job = NewJob(secret.Key, secret.Arn, T0);
        await Store.WriteAsync(async w => { await w.SaveRotationAsync(job); return true; }, default);
        job.StepsDone = 2;
        job.Attempts = 3;
        job.LastError = "setSecret failed";
        job.NextAttemptDate = T0.AddMinutes(5);
        await Store.WriteAsync(async w => { await w.SaveRotationAsync(job); return true; }, default);

        var read = (await Store.FindRotationAsync(secret.Key, default))!;
        Assert.Equal((job.Token, 2, 3, "setSecret failed", T0.AddMinutes(5), true), (read.Token, read.StepsDone, read.Attempts, read.LastError, read.NextAttemptDate, read.RotateImmediately));
        Assert.Null(read.LeaseOwner);
        await Store.WriteAsync(async w => { await w.DeleteRotationAsync(secret.Key); return true; }, default);
        Assert.Null(await Store.FindRotationAsync(secret.Key, default));
    }

    [Fact]
    public async Task Claims_take_due_unleased_jobs_and_an_expired_lease_passes_to_another_owner()
    {
        var due = await InsertAsync(NewSecret("due"));
        var notYet = await InsertAsync(NewSecret("not-yet"));
        await Store.WriteAsync(async w =>
        {
            await w.SaveRotationAsync(NewJob(due.Key, due.Arn, T0));
            await w.SaveRotationAsync(NewJob(notYet.Key, notYet.Arn, T0.AddHours(1)));
            return true;
        }, default);

        var claimed = await Store.ClaimRotationsAsync(T0, "node-a", T0.AddMinutes(1), 10, default);
        Assert.Equal([due.Key], claimed.Select(j => j.SecretKey));
        Assert.Equal("node-a", claimed[0].LeaseOwner);
        Assert.Empty(await Store.ClaimRotationsAsync(T0.AddSeconds(30), "node-b", T0.AddMinutes(2), 10, default));
        Assert.True(await Store.RenewLeaseAsync(due.Key, "node-a", T0.AddMinutes(2), default));
        Assert.False(await Store.RenewLeaseAsync(due.Key, "node-b", T0.AddMinutes(3), default));

        var takenOver = await Store.ClaimRotationsAsync(T0.AddMinutes(2).AddSeconds(1), "node-b", T0.AddMinutes(4), 10, default);
        Assert.Equal([due.Key], takenOver.Select(j => j.SecretKey));
        Assert.False(await Store.RenewLeaseAsync(due.Key, "node-a", T0.AddMinutes(5), default));
        Assert.Equal("node-b", (await Store.FindRotationAsync(due.Key, default))!.LeaseOwner);
    }

    [Fact]
    public async Task Released_leases_let_the_next_claim_take_a_job_at_once_and_the_old_owner_cannot_renew()
    {
        var leased = await InsertAsync(NewSecret("leased"));
        await Store.WriteAsync(async w =>
        {
            await w.SaveRotationAsync(NewJob(leased.Key, leased.Arn, T0));
            return true;
        }, default);
        Assert.Single(await Store.ClaimRotationsAsync(T0, "stopped-run", T0.AddMinutes(1), 10, default));
        Assert.Empty(await Store.ClaimRotationsAsync(T0.AddSeconds(1), "next-run", T0.AddMinutes(2), 10, default));

        Assert.Equal(1, await Store.ReleaseRotationLeasesAsync(default));
        Assert.Equal(0, await Store.ReleaseRotationLeasesAsync(default));
        // The owner stays, the mark of an attempt that was interrupted.
        Assert.Equal("stopped-run", (await Store.FindRotationAsync(leased.Key, default))!.LeaseOwner);

        var claimed = await Store.ClaimRotationsAsync(T0.AddSeconds(1), "next-run", T0.AddMinutes(2), 10, default);
        Assert.Equal([leased.Key], claimed.Select(j => j.SecretKey));
        Assert.False(await Store.RenewLeaseAsync(leased.Key, "stopped-run", T0.AddMinutes(3), default));
    }

    [Fact]
    public async Task Nodes_claiming_at_once_never_claim_the_same_job_twice()
    {
        var other = await OpenAsync();
        await Store.WriteAsync(async w =>
        {
            for (var i = 0; i < 30; i++)
            {
                var secret = NewSecret($"s{i}");
                await w.InsertSecretAsync(secret);
                await w.SaveRotationAsync(NewJob(secret.Key, secret.Arn, T0));
            }
            return true;
        }, default);
        var claims = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => Task.Run(() =>
            (i % 2 == 0 ? Store : other).ClaimRotationsAsync(T0, $"node-{i}", T0.AddMinutes(1), 4, default))));
        var keys = claims.SelectMany(c => c.Select(j => j.SecretKey)).ToList();
        Assert.Equal(30, keys.Count);
        Assert.Equal(30, keys.Distinct().Count());
    }

    [Fact]
    public async Task Due_rotations_are_enabled_undeleted_jobless_secrets_soonest_first()
    {
        async Task<SecretEntity> Scheduled(string name, DateTimeOffset start, bool enabled = true, bool deleted = false)
        {
            var secret = NewSecret(name);
            secret.RotationEnabled = enabled;
            secret.NextRotationStart = start;
            secret.NextRotationDate = start.AddHours(2);
            secret.DeletionDate = deleted ? T0.AddDays(9) : null;
            return await InsertAsync(secret);
        }
        await Scheduled("late", T0.AddHours(-1));
        await Scheduled("early", T0.AddHours(-2));
        await Scheduled("future", T0.AddHours(1));
        await Scheduled("disabled", T0.AddHours(-3), enabled: false);
        await Scheduled("deleted", T0.AddHours(-3), deleted: true);
        var busy = await Scheduled("busy", T0.AddHours(-3));
        await Store.WriteAsync(async w => { await w.SaveRotationAsync(NewJob(busy.Key, busy.Arn, T0)); return true; }, default);

        Assert.Equal(["early", "late"], (await Store.FindDueRotationsAsync(T0, 10, default)).Select(d => d.Arn.Split(':')[6][..^7]));
        Assert.Single(await Store.FindDueRotationsAsync(T0, 1, default));
        var statuses = await Store.ListRotationStatusAsync(default);
        Assert.Equal(["busy", "early", "future", "late"], statuses.Select(s => s.Arn.Split(':')[6][..^7]).Order(StringComparer.Ordinal));
        Assert.True(statuses.Single(s => s.Arn == busy.Arn).InProgress);
        Assert.False(statuses.Single(s => s.Arn.Contains(":early-", StringComparison.Ordinal)).InProgress);
    }

    // --- KMS-like keys -----------------------------------------------------------------------------

    [Fact]
    public async Task Keys_are_inserted_only_under_the_current_root_key_checks_and_with_free_aliases()
    {
        await Store.SetSettingAsync("root_key_check", "check-1", default);
        Assert.True(await Store.InsertKeyAsync(NewKey("k1", "alias/one", "alias/uno"), "check-1", null, default));
        Assert.False(await Store.InsertKeyAsync(NewKey("k2"), "check-0", null, default)); // the root key moved on
        Assert.False(await Store.InsertKeyAsync(NewKey("k2"), "check-1", "next", default)); // no rotation is prepared
        Assert.False(await Store.InsertKeyAsync(NewKey("k3", "alias/new", "alias/uno"), "check-1", null, default)); // an alias is taken
        Assert.True(await Store.HasDataAsync(default));
        Assert.True(await Store.InsertAliasAsync("alias/two", "k1", default));
        Assert.False(await Store.InsertAliasAsync("alias/one", "k1", default));

        var key = Assert.Single(await Store.ListKeysAsync(default));
        Assert.Equal(["alias/one", "alias/two", "alias/uno"], key.Aliases.Order(StringComparer.Ordinal));
        var material = Assert.Single(key.Materials);
        Assert.Equal((1, T0), (material.Version, material.CreatedDate));
        Assert.Equal(new byte[] { 1, 2, 3, 2 }, material.Wrapped);
        Assert.Null(material.WrappedNext);
        Assert.True(key.Enabled);
        Assert.Null(key.DeletionDate);
    }

    [Fact]
    public async Task Material_versions_are_added_once_each_and_listed_in_order()
    {
        await Store.SetSettingAsync("root_key_check", "c", default);
        await Store.InsertKeyAsync(NewKey("k"), "c", null, default);
        Assert.True(await Store.InsertKeyMaterialAsync("k", new KeyMaterialEntity(2, T0.AddDays(1), [2]), "c", null, default));
        Assert.False(await Store.InsertKeyMaterialAsync("k", new KeyMaterialEntity(2, T0.AddDays(2), [9]), "c", null, default)); // another node rotated it
        Assert.False(await Store.InsertKeyMaterialAsync("k", new KeyMaterialEntity(3, T0.AddDays(2), [3]), "old", null, default));
        Assert.Equal([1, 2], (await Store.ListKeysAsync(default)).Single().Materials.Select(m => m.Version));
        Assert.Equal(new byte[] { 2 }, (await Store.ListKeysAsync(default)).Single().Materials[1].Wrapped);
    }

    [Fact]
    public async Task Aliases_are_repointed_and_deleted()
    {
        await Store.SetSettingAsync("root_key_check", "c", default);
        await Store.InsertKeyAsync(NewKey("a", "alias/x"), "c", null, default);
        await Store.InsertKeyAsync(NewKey("b"), "c", null, default);
        Assert.True(await Store.UpdateAliasAsync("alias/x", "b", default));
        Assert.False(await Store.UpdateAliasAsync("alias/missing", "b", default));
        Assert.Equal(["alias/x"], (await Store.ListKeysAsync(default)).Single(k => k.KeyId == "b").Aliases);
        Assert.True(await Store.DeleteAliasAsync("alias/x", default));
        Assert.False(await Store.DeleteAliasAsync("alias/x", default));
        Assert.All(await Store.ListKeysAsync(default), k => Assert.Empty(k.Aliases));
    }

    [Fact]
    public async Task Key_state_changes_and_only_unused_keys_past_their_deletion_date_are_purged()
    {
        await Store.SetSettingAsync("root_key_check", "c", default);
        await Store.InsertKeyAsync(NewKey("used", "alias/used"), "c", null, default);
        await Store.InsertKeyAsync(NewKey("unused", "alias/unused"), "c", null, default);
        await Store.InsertKeyMaterialAsync("unused", new KeyMaterialEntity(2, T0, [2]), "c", null, default);
        var secret = NewSecret("s");
        await InsertAsync(secret, (new VersionEntity { VersionId = "v", Labels = ["AWSCURRENT"], CreatedDate = T0, KeyId = "used", HasValue = true }, [1]));
        Assert.Equal(1, await Store.CountVersionsUsingKeyAsync("used", default));
        Assert.Equal(0, await Store.CountVersionsUsingKeyAsync("unused", default));

        Assert.True(await Store.UpdateKeyStateAsync("used", false, T0.AddDays(7), default));
        Assert.True(await Store.UpdateKeyStateAsync("unused", false, T0.AddDays(7), default));
        Assert.False(await Store.UpdateKeyStateAsync("missing", false, null, default));
        var disabled = (await Store.ListKeysAsync(default)).Single(k => k.KeyId == "used");
        Assert.False(disabled.Enabled);
        Assert.Equal(T0.AddDays(7), disabled.DeletionDate);

        Assert.Empty(await Store.PurgeKeysAsync(T0.AddDays(6), default));
        Assert.Equal(["unused"], await Store.PurgeKeysAsync(T0.AddDays(7), default));
        Assert.Equal(["used"], (await Store.ListKeysAsync(default)).Select(k => k.KeyId));
        Assert.True(await Store.InsertAliasAsync("alias/unused", "used", default)); // the purged key's alias went with it
        Assert.True(await Store.InsertKeyAsync(NewKey("unused"), "c", null, default)); // and its materials
    }

    [Fact]
    public async Task A_root_key_rotation_is_prepared_then_switched_or_abandoned_atomically()
    {
        await Store.SetSettingAsync("root_key_check", "old", default);
        await Store.InsertKeyAsync(NewKey("k1"), "old", null, default);
        await Store.InsertKeyAsync(NewKey("k2"), "old", null, default);
        await Store.InsertKeyMaterialAsync("k2", new KeyMaterialEntity(2, T0, [2]), "old", null, default);
        var wrappedNext = new Dictionary<(string KeyId, int Version), byte[]> { [("k1", 1)] = [7], [("k2", 1)] = [8], [("k2", 2)] = [9] };
        await Store.PrepareRootKeyRotationAsync(wrappedNext, "new", default);
        Assert.Equal("old", await Store.GetSettingAsync("root_key_check", default));
        Assert.Equal("new", await Store.GetSettingAsync("root_key_check_next", default));
        Assert.False(await Store.CompleteRootKeyRotationAsync("other", default));

        await Store.AbandonRootKeyRotationAsync(default);
        Assert.Null(await Store.GetSettingAsync("root_key_check_next", default));
        Assert.All((await Store.ListKeysAsync(default)).SelectMany(k => k.Materials), m => Assert.Null(m.WrappedNext));
        Assert.False(await Store.CompleteRootKeyRotationAsync("new", default));

        // Prepared in two passes (a running server added material between them), then switched.
        await Store.PrepareRootKeyRotationAsync(new Dictionary<(string KeyId, int Version), byte[]> { [("k1", 1)] = [7], [("k2", 1)] = [8] }, "new", default);
        Assert.True(await Store.InsertKeyAsync(NewKey("k3") with { Materials = [new KeyMaterialEntity(1, T0, [3], [30])] }, "old", "new", default));
        await Store.PrepareRootKeyRotationAsync(new Dictionary<(string KeyId, int Version), byte[]> { [("k2", 2)] = [9] }, "new", default);
        Assert.True(await Store.CompleteRootKeyRotationAsync("new", default));
        Assert.Equal("new", await Store.GetSettingAsync("root_key_check", default));
        Assert.Null(await Store.GetSettingAsync("root_key_check_next", default));
        Assert.Equal([[7], [8], [9], [30]], (await Store.ListKeysAsync(default)).OrderBy(k => k.KeyId, StringComparer.Ordinal)
            .SelectMany(k => k.Materials.Select(m => m.Wrapped)));
        Assert.All((await Store.ListKeysAsync(default)).SelectMany(k => k.Materials), m => Assert.Null(m.WrappedNext));
    }

    [Fact]
    public async Task A_root_key_switch_changes_nothing_while_a_material_has_no_new_wrapping()
    {
        await Store.SetSettingAsync("root_key_check", "old", default);
        await Store.InsertKeyAsync(NewKey("k1"), "old", null, default);
        await Store.PrepareRootKeyRotationAsync(new Dictionary<(string KeyId, int Version), byte[]> { [("k1", 1)] = [7] }, "new", default);
        // A server that could not wrap twice is refused rather than leaving material the new root key cannot open.
        Assert.False(await Store.InsertKeyAsync(NewKey("k2"), "old", null, default));
        await Store.InsertKeyMaterialAsync("k1", new KeyMaterialEntity(2, T0, [2]), "old", "new", default); // wrapped once only, by mistake
        Assert.False(await Store.CompleteRootKeyRotationAsync("new", default));
        Assert.Equal("old", await Store.GetSettingAsync("root_key_check", default));
        Assert.Equal(new byte[] { 1, 2, 3, 2 }, (await Store.ListKeysAsync(default)).Single().Materials[0].Wrapped);
    }

    [Fact]
    public async Task The_configuration_generation_moves_with_every_change_other_nodes_cache()
    {
        var other = await OpenAsync();
        var seen = await other.GetConfigurationGenerationAsync(default);
        async Task MovesAsync(Func<Task> change)
        {
            await change();
            var now = await other.GetConfigurationGenerationAsync(default);
            Assert.True(now > seen, "the generation did not move");
            seen = now;
        }
        await Store.SetSettingAsync("root_key_check", "c", default);
        await MovesAsync(() => Store.InsertKeyAsync(NewKey("k1"), "c", null, default));
        await MovesAsync(() => Store.InsertKeyMaterialAsync("k1", new KeyMaterialEntity(2, T0, [2]), "c", null, default));
        await MovesAsync(() => Store.UpdateKeyStateAsync("k1", false, null, default));
        await MovesAsync(() => Store.InsertAliasAsync("alias/x", "k1", default));
        await MovesAsync(() => Store.UpdateAliasAsync("alias/x", "k1", default));
        await MovesAsync(() => Store.DeleteAliasAsync("alias/x", default));
        await MovesAsync(() => Store.InsertUserAsync(new UserEntity("u", "AIDAU", "arn:aws:iam::123456789012:user/u", T0), default));
        await MovesAsync(() => Store.InsertAccessKeyAsync(new AccessKeyEntity("AKIAU", "u", [1], true, T0), 2, default));
        await MovesAsync(() => Store.SetAccessKeyActiveAsync("u", "AKIAU", false, default));
        await MovesAsync(() => Store.PutUserPolicyAsync(new UserPolicyEntity("u", "p", "{}"), default));
        await MovesAsync(() => Store.DeleteUserPolicyAsync("u", "p", default));
        await MovesAsync(() => Store.DeleteAccessKeyAsync("u", "AKIAU", default));
        await MovesAsync(() => Store.DeleteUserAsync("u", default));
        await MovesAsync(() => Store.InsertFunctionAsync(new FunctionEntity("f", "command", "true", null, null, null, 5, 1, [], null, T0, T0), default));
    }

    // --- identity ----------------------------------------------------------------------------------

    [Fact]
    public async Task Users_access_keys_and_policies_follow_the_iam_rules()
    {
        var alice = new UserEntity("alice", "AIDAALICE", "arn:aws:iam::123456789012:user/alice", T0);
        Assert.True(await Store.InsertUserAsync(alice, default));
        Assert.False(await Store.InsertUserAsync(alice with { UserId = "AIDAOTHER" }, default));
        Assert.True(await Store.InsertUserAsync(new UserEntity("Bob", "AIDABOB", "arn:aws:iam::123456789012:user/Bob", T0), default));
        Assert.Equal(["Bob", "alice"], (await Store.ListUsersAsync(default)).Select(u => u.UserName)); // byte order, as IAM lists
        Assert.Equal(alice, await Store.FindUserAsync("alice", default));
        Assert.Null(await Store.FindUserAsync("ALICE", default));

        var key1 = new AccessKeyEntity("AKIA1", "alice", [1], true, T0);
        Assert.Equal(AccessKeyInsertion.Inserted, await Store.InsertAccessKeyAsync(key1, 2, default));
        Assert.Equal(AccessKeyInsertion.Inserted, await Store.InsertAccessKeyAsync(key1 with { AccessKeyId = "AKIA2", CreatedDate = T0.AddSeconds(1) }, 2, default));
        Assert.Equal(AccessKeyInsertion.LimitExceeded, await Store.InsertAccessKeyAsync(key1 with { AccessKeyId = "AKIA3" }, 2, default));
        Assert.Equal(AccessKeyInsertion.NoSuchUser, await Store.InsertAccessKeyAsync(key1 with { AccessKeyId = "AKIA4", UserName = "nobody" }, 2, default));
        Assert.True(await Store.SetAccessKeyActiveAsync("alice", "AKIA1", false, default));
        Assert.False(await Store.SetAccessKeyActiveAsync("Bob", "AKIA1", false, default));
        Assert.False((await Store.FindAccessKeyAsync("AKIA1", default))!.Active);
        Assert.Equal(["AKIA1", "AKIA2"], (await Store.ListAccessKeysAsync("alice", default)).Select(k => k.AccessKeyId));

        Assert.True(await Store.PutUserPolicyAsync(new UserPolicyEntity("alice", "b-policy", "{}"), default));
        Assert.True(await Store.PutUserPolicyAsync(new UserPolicyEntity("alice", "B-policy", "{}"), default));
        Assert.True(await Store.PutUserPolicyAsync(new UserPolicyEntity("alice", "b-policy", "{\"v\":2}"), default));
        Assert.False(await Store.PutUserPolicyAsync(new UserPolicyEntity("nobody", "p", "{}"), default));
        var policies = await Store.ListUserPoliciesAsync("alice", default);
        Assert.Equal(["B-policy", "b-policy"], policies.Select(p => p.PolicyName));
        Assert.Equal("{\"v\":2}", policies[1].Document);

        Assert.Equal(UserDeletion.HasAccessKeysOrPolicies, await Store.DeleteUserAsync("alice", default));
        Assert.True(await Store.DeleteAccessKeyAsync("alice", "AKIA1", default));
        Assert.True(await Store.DeleteAccessKeyAsync("alice", "AKIA2", default));
        Assert.False(await Store.DeleteAccessKeyAsync("alice", "AKIA2", default));
        Assert.True(await Store.DeleteUserPolicyAsync("alice", "b-policy", default));
        Assert.True(await Store.DeleteUserPolicyAsync("alice", "B-policy", default));
        Assert.False(await Store.DeleteUserPolicyAsync("alice", "B-policy", default));
        Assert.Equal(UserDeletion.Deleted, await Store.DeleteUserAsync("alice", default));
        Assert.Equal(UserDeletion.NotFound, await Store.DeleteUserAsync("alice", default));
    }

    // --- functions and session credentials ---------------------------------------------------------

    [Fact]
    public async Task Functions_are_inserted_updated_listed_and_deleted()
    {
        var function = new FunctionEntity("rotate-api", "command", "/usr/bin/python3 x.py", null, "/srv", null, 30, 2, ["A", "B"], [5, 5], T0, T0);
        Assert.True(await Store.InsertFunctionAsync(function, default));
        Assert.False(await Store.InsertFunctionAsync(function, default));
        Assert.True(await Store.InsertFunctionAsync(function with { Name = "Http", Kind = "http", Command = null, Url = "https://h/", SealedConfig = null, EnvironmentNames = [] }, default));
        var updated = function with { TimeoutSeconds = 60, EnvironmentNames = ["C"], LastModified = T0.AddHours(1) };
        Assert.True(await Store.UpdateFunctionAsync(updated, default));
        Assert.False(await Store.UpdateFunctionAsync(updated with { Name = "missing" }, default));

        var read = (await Store.FindFunctionAsync("rotate-api", default))!;
        Assert.Equal((60, 2, "/srv", T0.AddHours(1)), (read.TimeoutSeconds, read.MaxConcurrency, read.WorkingDirectory, read.LastModified));
        Assert.Equal(["C"], read.EnvironmentNames);
        Assert.Equal(new byte[] { 5, 5 }, read.SealedConfig);
        Assert.Null((await Store.FindFunctionAsync("Http", default))!.SealedConfig);
        Assert.Equal(["Http", "rotate-api"], (await Store.ListFunctionsAsync(default)).Select(f => f.Name));
        Assert.True(await Store.DeleteFunctionAsync("Http", default));
        Assert.False(await Store.DeleteFunctionAsync("Http", default));
    }

    [Fact]
    public async Task Session_credentials_are_found_until_deleted_and_expired_ones_are_purged_on_insert()
    {
        var old = new SessionCredentialEntity("ASIAOLD", [1], "sha-old", "arn:s", "f", "v", T0.AddMinutes(-1), T0.AddMinutes(-16));
        await Store.InsertSessionAsync(old, T0.AddHours(-1), default);
        var fresh = old with { AccessKeyId = "ASIANEW", SessionTokenSha256 = "sha-new", Expiration = T0.AddMinutes(15), CreatedDate = T0 };
        await Store.InsertSessionAsync(fresh, T0, default);
        Assert.Null(await Store.FindSessionAsync("ASIAOLD", default));
        var read = (await Store.FindSessionAsync("ASIANEW", default))!;
        Assert.Equal((fresh.SessionTokenSha256, fresh.Expiration, fresh.CreatedDate), (read.SessionTokenSha256, read.Expiration, read.CreatedDate));
        Assert.Equal(new byte[] { 1 }, read.WrappedSecret);
        await Store.DeleteSessionAsync("ASIANEW", default);
        Assert.Null(await Store.FindSessionAsync("ASIANEW", default));
    }
}

public sealed class SqliteStoreConformanceTests : StoreConformanceTests
{
    protected override Task<IStoreBackend> CreateBackendAsync() => Task.FromResult<IStoreBackend>(new SqliteBackend());
}

public sealed class PostgresStoreConformanceTests : StoreConformanceTests
{
    protected override async Task<IStoreBackend> CreateBackendAsync() => await PostgresBackend.CreateAsync();
}
