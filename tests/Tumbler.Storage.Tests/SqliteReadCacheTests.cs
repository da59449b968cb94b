using System.Reflection;
using Tumbler.Core.Storage;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Storage.Tests;

/// <summary>
/// The embedded store caches what reads find (SecretReadCache): a read that begins after a write returned must see
/// that write, however busy the readers filling the cache are, and what a caller does to an entity it was handed
/// must not reach the next caller.
/// </summary>
public sealed class SqliteReadCacheTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 29, 0, 0, 0, TimeSpan.Zero);
    private readonly SqliteBackend _backend = new();
    private SqliteSecretStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = (SqliteSecretStore)_backend.Open();
        await _store.InitializeAsync(default);
    }

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await _backend.DisposeAsync();
    }

    private async Task<SecretEntity> InsertAsync(string name)
    {
        var secret = new SecretEntity
        {
            Region = "us-east-1", Name = name, Arn = $"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf",
            CreatedDate = T0, LastChangedDate = T0, Description = "d0", Tags = [new SecretTag("team", "a")],
        };
        return await _store.WriteAsync(async writer =>
        {
            await writer.InsertSecretAsync(secret);
            await writer.InsertVersionAsync(secret.Key, Version("v0", T0, "AWSCURRENT"), [0]);
            return secret;
        }, default);
    }

    private static VersionEntity Version(string id, DateTimeOffset created, params string[] labels) =>
        new() { VersionId = id, Labels = [.. labels], CreatedDate = created, KeyId = "key-1", HasValue = true };

    private Task<SecretEntity?> FindAsync(string name) => _store.FindSecretAsync("us-east-1", SecretLookup.ByName(name), default);

    [Fact]
    public async Task A_read_begun_after_a_write_returned_sees_it_while_other_readers_keep_filling_the_cache()
    {
        var inserted = await InsertAsync("busy");
        using var stop = new CancellationTokenSource();
        using var started = new CountdownEvent(2);
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            // Each reader's view only moves forward: a stale entry put back after a write would show an older generation.
            // (The row and the versions are two statements outside a transaction, so they may be one write apart.)
            var seen = 0;
            var seenVersions = 1;
            var reads = 0;
            while (!stop.IsCancellationRequested)
            {
                var secret = await FindAsync("busy");
                var generation = int.Parse(secret!.Description![1..]);
                Assert.True(generation >= seen, $"a reader saw d{generation} after d{seen}");
                Assert.True(secret.Versions.Count >= seenVersions, $"a reader saw {secret.Versions.Count} versions after {seenVersions}");
                seen = generation;
                seenVersions = secret.Versions.Count;
                var newest = secret.Versions[^1];
                Assert.Equal(new[] { (byte)(seenVersions - 1) }, await _store.ReadValueAsync(secret.Key, newest.VersionId, default));
                if (++reads == 1)
                {
                    started.Signal();
                }
                // The store's reads complete synchronously: without this the readers would keep thread-pool threads from everyone else.
                await Task.Yield();
            }
            return reads;
        })).ToList();

        Assert.True(started.Wait(TimeSpan.FromSeconds(30)), "the readers did not start");
        for (var i = 1; i <= 200; i++)
        {
            var generation = i;
            await _store.WriteAsync(async writer =>
            {
                var secret = (await writer.FindSecretAsync("us-east-1", SecretLookup.ByName("busy")))!;
                secret.Description = $"d{generation}";
                await writer.UpdateSecretAsync(secret);
                await writer.InsertVersionAsync(secret.Key, Version($"v{generation}", T0.AddSeconds(generation)), [(byte)generation]);
                return true;
            }, default);
            var after = await FindAsync("busy");
            Assert.Equal($"d{generation}", after!.Description);
            Assert.Equal($"v{generation}", after.Versions[^1].VersionId);
            Assert.Equal(new[] { (byte)generation }, await _store.ReadValueAsync(inserted.Key, $"v{generation}", default));
        }
        await stop.CancelAsync();
        await Task.WhenAll(readers);
    }

    [Fact]
    public async Task What_a_caller_changes_in_a_secret_or_a_value_it_read_does_not_reach_the_next_reader()
    {
        var inserted = await InsertAsync("mine");
        var first = (await FindAsync("mine"))!;
        first.Description = "changed";
        first.Tags!.Clear();
        first.Versions[0].Labels.Clear();
        first.Versions.Clear();
        var blob = (await _store.ReadValueAsync(inserted.Key, "v0", default))!;
        blob[0] = 42;

        var second = (await FindAsync("mine"))!;
        Assert.Equal("d0", second.Description);
        Assert.Equal([new SecretTag("team", "a")], second.Tags);
        Assert.Equal(["AWSCURRENT"], Assert.Single(second.Versions).Labels);
        Assert.Equal(new byte[] { 0 }, await _store.ReadValueAsync(inserted.Key, "v0", default));
    }

    [Fact]
    public async Task A_deleted_secret_is_not_served_from_the_cache()
    {
        var inserted = await InsertAsync("gone");
        Assert.NotNull(await FindAsync("gone"));
        Assert.NotNull(await _store.ReadValueAsync(inserted.Key, "v0", default));
        await _store.WriteAsync(async writer => { await writer.DeleteSecretAsync(inserted.Key); return true; }, default);
        Assert.Null(await FindAsync("gone"));
        Assert.Null(await _store.ReadValueAsync(inserted.Key, "v0", default));
    }

    [Fact]
    public async Task A_rotation_saved_after_a_read_found_none_is_seen_and_its_end_too()
    {
        var inserted = await InsertAsync("rotating");
        Assert.Null(await _store.FindRotationAsync(inserted.Key, default));
        Assert.Null(await _store.FindRotationAsync(inserted.Key, default));
        var job = new RotationJob
        {
            SecretKey = inserted.Key, SecretArn = inserted.Arn, Region = "us-east-1", Token = "t", RotationToken = "r",
            RotateImmediately = true, StartedDate = T0, NextAttemptDate = T0,
        };
        await _store.WriteAsync(async writer => { await writer.SaveRotationAsync(job); return true; }, default);
        Assert.Equal("t", (await _store.FindRotationAsync(inserted.Key, default))?.Token);
        await _store.WriteAsync(async writer => { await writer.DeleteRotationAsync(inserted.Key); return true; }, default);
        Assert.Null(await _store.FindRotationAsync(inserted.Key, default));
    }

    [Fact]
    public async Task A_listing_page_read_before_shows_a_secret_added_or_changed_since()
    {
        await InsertAsync("a");
        Task<IReadOnlyList<SecretEntity>> ListAsync() =>
            _store.ListSecretsPageAsync("us-east-1", includeScheduledForDeletion: false, SecretSortKey.Name, descending: false, after: null, limit: 10, default);
        Assert.Equal(["a"], (await ListAsync()).Select(s => s.Name));

        var b = await InsertAsync("b");
        Assert.Equal(["a", "b"], (await ListAsync()).Select(s => s.Name));
        b.Description = "new";
        await _store.WriteAsync(async writer => { await writer.UpdateSecretAsync(b); return true; }, default);
        Assert.Equal("new", (await ListAsync())[1].Description);
    }

    [Fact]
    public void Copy_copies_every_property_of_a_secret_and_its_versions()
    {
        // A property added later and forgotten in Copy would make cached reads lose it: every one is set here to a
        // value that differs from its default, and must come through.
        var secret = Populated<SecretEntity>();
        var copy = secret.Copy();
        foreach (var property in typeof(SecretEntity).GetProperties().Where(p => p.CanWrite))
        {
            var original = property.GetValue(secret);
            var copied = property.GetValue(copy);
            Assert.NotNull(copied);
            if (original is System.Collections.IList list)
            {
                Assert.NotSame(original, copied);
                Assert.Equal(list.Count, ((System.Collections.IList)copied).Count);
            }
            else
            {
                Assert.Equal(original, copied);
            }
        }
        var version = secret.Versions[0];
        var versionCopy = copy.Versions[0];
        Assert.NotSame(version, versionCopy);
        foreach (var property in typeof(VersionEntity).GetProperties().Where(p => p.CanWrite && p.Name != nameof(VersionEntity.Labels)))
        {
            Assert.Equal(property.GetValue(version), property.GetValue(versionCopy));
        }
        Assert.Equal(version.Labels, versionCopy.Labels);
        Assert.NotSame(version.Labels, versionCopy.Labels);
    }

    private static T Populated<T>()
    {
        // Reflection, not `new T()`: the entities have required members.
        var item = Activator.CreateInstance<T>();
        foreach (var property in typeof(T).GetProperties().Where(p => p.CanWrite))
        {
            property.SetValue(item, Sample(property));
        }
        return item;
    }

    private static object Sample(PropertyInfo property)
    {
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        return type switch
        {
            _ when type == typeof(string) => property.Name + "-value",
            _ when type == typeof(long) => 7L,
            _ when type == typeof(bool) => true,
            _ when type == typeof(DateTimeOffset) => T0.AddMinutes(property.Name.Length),
            _ when type == typeof(List<SecretTag>) => new List<SecretTag> { new("k", "v") },
            _ when type == typeof(List<string>) => new List<string> { "AWSCURRENT" },
            _ when type == typeof(List<VersionEntity>) => new List<VersionEntity> { Populated<VersionEntity>() },
            _ => throw new InvalidOperationException($"No sample for {property.Name} ({type}): add one."),
        };
    }
}
