using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tumbler.Client;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests.Backup;

/// <summary>
/// <c>tumbler backup</c> and <c>tumbler restore</c> as processes against a running <c>tumbler serve</c>:
/// a backup under concurrent signed writes restores every write acknowledged before it began, with valid
/// labels and decryptable values; the file holds no plaintext and no root key; bad inputs are refused.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class BackupRestoreTests
{
    private const int Writers = 4;
    private const int PutsPerSecret = 40; // well under the 100 recent unlabelled versions a secret may hold

    private sealed record Ack(long At, string Name, string VersionId, string Value);

    private static Task<CliResult> Tumbler(params string[] args) =>
        ProcessRunner.RunAsync(TumblerServer.DotnetHost, [TumblerServer.TumblerDll, .. args], ProcessRunner.BaseEnvironment(null, null));

    private static string NewRootKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    private static TumblerServerOptions WithRootKey(string dataDir, string rootKey) =>
        new() { DataDir = dataDir, Environment = new Dictionary<string, string> { ["TUMBLER_ROOT_KEY"] = rootKey } };

    private static JsonApiClient Client(TumblerServer server) => server.ApiClient();

    private static Task<JsonElement> Call(JsonApiClient client, string operation, object request, CancellationToken ct = default) =>
        client.SecretsManagerAsync(operation, request, ct);

    [Fact]
    public async Task A_backup_under_write_load_restores_every_acknowledged_write_with_valid_labels()
    {
        using var temp = new TempDirectory();
        var rootKey = NewRootKey();
        var run = Guid.NewGuid().ToString("N")[..8];
        var backupFile = Path.Combine(temp.Path, "store.bak");
        var acks = new ConcurrentBag<Ack>();
        var written = new ConcurrentBag<string>();
        long backupBegan;
        CliResult backup;

        await using (var server = await TumblerServer.StartAsync(WithRootKey(Path.Combine(temp.Path, "live"), rootKey)))
        {
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() => WriteAsync(server, run, w, acks, written, stop.Token))).ToArray();
            var warmUp = Stopwatch.StartNew();
            while (acks.Count < 200 && warmUp.Elapsed < TimeSpan.FromSeconds(10) && !writers.Any(t => t.IsCompleted))
            {
                await Task.Delay(50);
            }
            if (writers.FirstOrDefault(t => t.IsFaulted) is { } failed)
            {
                await failed;
            }
            Assert.True(acks.Count > 20, $"the writers should be writing by now ({acks.Count} acknowledged)\n{server.StandardError}");
            backupBegan = Stopwatch.GetTimestamp();
            backup = await Tumbler("backup", "--data-dir", server.DataDir, "--to", backupFile);
            var backupEnded = Stopwatch.GetTimestamp();
            var acksAtBackupEnd = acks.Count;
            await Task.Delay(500);
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            Assert.True(backup.ExitCode == 0, backup.ToString());
            Assert.True(acks.Any(a => a.At > backupBegan && a.At < backupEnded), "writes must be acknowledged while the backup runs");
            Assert.True(acks.Count > acksAtBackupEnd, "writes must go on after the backup");
            Assert.Matches(@"^Backed up .+: \d+ secrets, \d+ versions, with its audit log, \d+ bytes", backup.Stdout.Trim());

            // Encrypted as the store is: no value, no root key, no root credential in the file.
            var bytes = await File.ReadAllBytesAsync(backupFile);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(backupFile));
            Assert.DoesNotContain(Directory.GetFiles(temp.Path), f => Path.GetFileName(f).Contains(".tmp-", StringComparison.Ordinal));
            foreach (var value in written)
            {
                Assert.True(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(value)) < 0, $"the backup holds the value {value} in clear");
            }
            Assert.True(bytes.AsSpan().IndexOf(Convert.FromBase64String(rootKey)) < 0, "the backup holds the root key");
            Assert.True(bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(rootKey)) < 0, "the backup holds the root key (base64)");
            Assert.True(bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(server.SecretAccessKey)) < 0, "the backup holds the root secret access key");
        }

        var restoredDir = Path.Combine(temp.Path, "restored");
        var restore = await Tumbler("restore", "--from", backupFile, "--data-dir", restoredDir);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Contains("TUMBLER_ROOT_KEY", restore.Stdout, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(restoredDir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(restoredDir, "tumbler.db")));
        Assert.False(File.Exists(Path.Combine(restoredDir, "root.key")));
        var audit = await Tumbler("audit", "verify", "--data-dir", restoredDir);
        Assert.True(audit.ExitCode == 0, audit.ToString());

        // Another root key is refused; the store's own key (from the environment) opens it.
        var wrongKey = await TumblerServer.RunExpectingExitAsync(WithRootKey(restoredDir, NewRootKey()));
        Assert.True(wrongKey.ExitCode == 1 && !wrongKey.BecameReady, wrongKey.ToString());
        Assert.Contains("not this store's current root key", wrongKey.StandardError, StringComparison.Ordinal);

        await using var restored = await TumblerServer.StartAsync(WithRootKey(restoredDir, rootKey));
        using var client = Client(restored);
        var expected = acks.Where(a => a.At < backupBegan).ToList();
        Assert.NotEmpty(expected);
        var byName = new Dictionary<string, Dictionary<string, string[]>>(StringComparer.Ordinal);
        foreach (var name in acks.Select(a => a.Name).Distinct())
        {
            try
            {
                var list = await Call(client, "ListSecretVersionIds", new { SecretId = name, IncludeDeprecated = true, MaxResults = 100 });
                byName[name] = list.GetProperty("Versions").EnumerateArray().ToDictionary(
                    v => v.GetProperty("VersionId").GetString()!,
                    v => v.TryGetProperty("VersionStages", out var s) ? s.EnumerateArray().Select(x => x.GetString()!).ToArray() : [],
                    StringComparer.Ordinal);
            }
            catch (TumblerApiException e) when (e.ErrorCode == "ResourceNotFoundException")
            {
                // created after the backup began
            }
        }
        foreach (var ack in expected)
        {
            Assert.True(byName.TryGetValue(ack.Name, out var versions) && versions.ContainsKey(ack.VersionId),
                $"{ack.Name} version {ack.VersionId}, acknowledged before the backup began, is missing after the restore");
            var value = await Call(client, "GetSecretValue", new { SecretId = ack.Name, VersionId = ack.VersionId });
            Assert.Equal(ack.Value, value.GetProperty("SecretString").GetString());
        }
        foreach (var (name, versions) in byName)
        {
            Assert.Equal(1, versions.Values.Count(s => s.Contains("AWSCURRENT")));
            Assert.True(versions.Values.Count(s => s.Contains("AWSPREVIOUS")) <= 1, $"{name} has more than one AWSPREVIOUS");
            Assert.True(versions.Values.Count(s => s.Contains("PINNED")) <= 1, $"{name} has more than one PINNED");
            var current = await Call(client, "GetSecretValue", new { SecretId = name });
            Assert.StartsWith($"bk-{run}-", current.GetProperty("SecretString").GetString(), StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// One writer: a new secret every <see cref="PutsPerSecret"/> writes, PutSecretValue in between, and
    /// label moves (a custom label to the newest version; every seventh write AWSCURRENT back to the one before).
    /// </summary>
    private static async Task WriteAsync(TumblerServer server, string run, int writer, ConcurrentBag<Ack> acks, ConcurrentBag<string> written, CancellationToken stop)
    {
        using var client = Client(server);
        string? name = null, previous = null, latest = null, pinned = null;
        for (var n = 0; !stop.IsCancellationRequested; n++)
        {
            var value = $"bk-{run}-w{writer}-{n}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(6))}";
            written.Add(value);
            try
            {
                if (n % PutsPerSecret == 0)
                {
                    name = $"backup/{run}/w{writer}/s{n / PutsPerSecret}";
                    var created = await Call(client, "CreateSecret", new { Name = name, SecretString = value, ClientRequestToken = Guid.NewGuid() }, CancellationToken.None);
                    (previous, latest, pinned) = (null, created.GetProperty("VersionId").GetString(), null);
                }
                else
                {
                    var put = await Call(client, "PutSecretValue", new { SecretId = name, SecretString = value, ClientRequestToken = Guid.NewGuid() }, CancellationToken.None);
                    (previous, latest) = (latest, put.GetProperty("VersionId").GetString());
                }
                acks.Add(new Ack(Stopwatch.GetTimestamp(), name!, latest!, value));
                if (n % 5 == 4)
                {
                    await Call(client, "UpdateSecretVersionStage", new { SecretId = name, VersionStage = "PINNED", MoveToVersionId = latest, RemoveFromVersionId = pinned }, CancellationToken.None);
                    pinned = latest;
                }
                if (n % 7 == 6 && previous is not null)
                {
                    await Call(client, "UpdateSecretVersionStage",
                        new { SecretId = name, VersionStage = "AWSCURRENT", MoveToVersionId = previous, RemoveFromVersionId = latest }, CancellationToken.None);
                }
            }
            catch (TumblerApiException e)
            {
                throw new InvalidOperationException($"writer {writer}, write {n} on {name}: {e.ErrorCode}: {e.Message}", e);
            }
        }
    }

    [Faults.RequiresScratchFilesystemFact]
    public async Task A_stopped_store_on_read_only_media_is_backed_up_and_restores()
    {
        using var disk = Faults.ScratchFilesystem.Tmpfs(64);
        using var temp = new TempDirectory();
        var rootKey = NewRootKey();
        var dataDir = Path.Combine(disk.Path, "data");
        await using (var server = await TumblerServer.StartAsync(WithRootKey(dataDir, rootKey)))
        {
            using var client = Client(server);
            await Call(client, "CreateSecret", new { Name = "snapshot/one", SecretString = "from-read-only-media", ClientRequestToken = Guid.NewGuid() });
            Assert.Equal(0, await server.StopAsync());
        }
        Assert.False(File.Exists(Path.Combine(dataDir, "tumbler.db-wal")), "a server stopped cleanly leaves no -wal file");
        disk.RemountReadOnly();

        var backupFile = Path.Combine(temp.Path, "snapshot.bak");
        var backup = await Tumbler("backup", "--data-dir", dataDir, "--to", backupFile);
        Assert.True(backup.ExitCode == 0, backup.ToString());
        var restoredDir = Path.Combine(temp.Path, "restored");
        var keyFile = Path.Combine(temp.Path, "root.key");
        await File.WriteAllTextAsync(keyFile, rootKey + "\n");
        var restore = await Tumbler("restore", "--from", backupFile, "--data-dir", restoredDir, "--root-key-file", keyFile);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        await using var restored = await TumblerServer.StartAsync(new TumblerServerOptions { DataDir = restoredDir });
        using var restoredClient = Client(restored);
        Assert.Equal("from-read-only-media", (await Call(restoredClient, "GetSecretValue", new { SecretId = "snapshot/one" })).GetProperty("SecretString").GetString());
    }

    [Fact]
    public async Task Backup_and_restore_refuse_what_they_must_with_one_line()
    {
        using var temp = new TempDirectory();
        var rootKey = NewRootKey();
        var backupFile = Path.Combine(temp.Path, "store.bak");
        await using (var server = await TumblerServer.StartAsync(WithRootKey(Path.Combine(temp.Path, "live"), rootKey)))
        {
            using var client = Client(server);
            await Call(client, "CreateSecret", new { Name = "refusals/one", SecretString = "v", ClientRequestToken = Guid.NewGuid() });
            Assert.True((await Tumbler("backup", "--data-dir", server.DataDir, "--to", backupFile)).ExitCode == 0);
            var before = await File.ReadAllBytesAsync(backupFile);
            var again = await Tumbler("backup", "--data-dir", server.DataDir, "--to", backupFile);
            AssertRefused(again, "exists; give --force");
            Assert.Equal(before, await File.ReadAllBytesAsync(backupFile));
            var forced = await Tumbler("backup", "--data-dir", server.DataDir, "--to", backupFile, "--force");
            Assert.True(forced.ExitCode == 0, forced.ToString());

            // Into the data directory, even with --force: it would replace the live store or the only root key.
            var kept = Path.Combine(server.DataDir, "root.key.copy");
            await File.WriteAllTextAsync(kept, "mine");
            foreach (var inside in new[] { Path.Combine(server.DataDir, "tumbler.db"), kept, Path.Combine(server.DataDir, "audit", "x.bak"),
                Path.Combine(server.DataDir, "..", Path.GetFileName(server.DataDir), "credentials") })
            {
                AssertRefused(await Tumbler("backup", "--data-dir", server.DataDir, "--to", inside, "--force"), "is inside the data directory");
            }
            Assert.Equal("mine", await File.ReadAllTextAsync(kept));
            Assert.False(File.Exists(Path.Combine(server.DataDir, "audit", "x.bak")));
            await Call(client, "GetSecretValue", new { SecretId = "refusals/one" });
        }
        AssertRefused(await Tumbler("backup", "--data-dir", Path.Combine(temp.Path, "nothing"), "--to", Path.Combine(temp.Path, "x.bak")), "no Tumbler store");

        // A non-empty data directory.
        var occupied = Path.Combine(temp.Path, "occupied");
        Directory.CreateDirectory(occupied);
        await File.WriteAllTextAsync(Path.Combine(occupied, "keep.txt"), "mine");
        AssertRefused(await Tumbler("restore", "--from", backupFile, "--data-dir", occupied), "is not empty");
        Assert.Equal(["keep.txt"], Directory.GetFileSystemEntries(occupied).Select(Path.GetFileName));

        // A secret named too: which restore was meant is not clear.
        var unclear = Path.Combine(temp.Path, "unclear");
        AssertRefused(await Tumbler("restore", "prod/app/db", "--from", backupFile, "--data-dir", unclear), "names no secret");
        // A forgotten --from: the backup's options must not turn into RestoreSecret on the default endpoint.
        AssertRefused(await Tumbler("restore", "prod/app/db", "--data-dir", unclear), "name it with --from");
        AssertRefused(await Tumbler("restore", "--root-key-file", backupFile), "name it with --from");
        Assert.False(Directory.Exists(unclear));

        // Not a backup at all, a truncated one, a damaged one.
        var text = Path.Combine(temp.Path, "notes.txt");
        await File.WriteAllTextAsync(text, "hello, not a database\n");
        AssertRefused(await Tumbler("restore", "--from", text, "--data-dir", Path.Combine(temp.Path, "r1")), "not a Tumbler backup");
        var good = await File.ReadAllBytesAsync(backupFile);
        var truncated = Path.Combine(temp.Path, "truncated.bak");
        await File.WriteAllBytesAsync(truncated, good[..(good.Length / 3)]);
        AssertRefused(await Tumbler("restore", "--from", truncated, "--data-dir", Path.Combine(temp.Path, "r2")), truncated);
        var damaged = Path.Combine(temp.Path, "damaged.bak");
        var bytes = (byte[])good.Clone();
        const int pageSize = 4096;
        for (var page = 1; page < bytes.Length / pageSize; page++)
        {
            bytes.AsSpan(page * pageSize, 12).Fill(0xA5); // every b-tree page header after the first
        }
        await File.WriteAllBytesAsync(damaged, bytes);
        AssertRefused(await Tumbler("restore", "--from", damaged, "--data-dir", Path.Combine(temp.Path, "r3")), damaged);
        // A SQLite database that is not a Tumbler store.
        var other = Path.Combine(temp.Path, "other.db");
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={other};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE t (x); INSERT INTO t VALUES (1);";
            command.ExecuteNonQuery();
        }
        AssertRefused(await Tumbler("restore", "--from", other, "--data-dir", Path.Combine(temp.Path, "r4")), "not a Tumbler store");
        foreach (var dir in new[] { "r1", "r2", "r3", "r4" })
        {
            Assert.False(Directory.Exists(Path.Combine(temp.Path, dir)), $"a refused restore created {dir}");
        }

        // --root-key-file: a wrong key restores nothing; the right one is copied in (0600) and the server starts on it.
        var wrongKeyFile = Path.Combine(temp.Path, "wrong.key");
        await File.WriteAllTextAsync(wrongKeyFile, NewRootKey() + "\n");
        var target = Path.Combine(temp.Path, "restored");
        AssertRefused(await Tumbler("restore", "--from", backupFile, "--data-dir", target, "--root-key-file", wrongKeyFile), "is not the root key of this backup's store");
        Assert.False(Directory.Exists(target));
        var keyFile = Path.Combine(temp.Path, "right.key");
        await File.WriteAllTextAsync(keyFile, rootKey + "\n");
        var restore = await Tumbler("restore", "--from", backupFile, "--data-dir", target, "--root-key-file", keyFile);
        Assert.True(restore.ExitCode == 0, restore.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(target, "root.key")));
        await using var restored = await TumblerServer.StartAsync(new TumblerServerOptions { DataDir = target });
        using var restoredClient = Client(restored);
        Assert.Equal("v", (await Call(restoredClient, "GetSecretValue", new { SecretId = "refusals/one" })).GetProperty("SecretString").GetString());
    }

    private static void AssertRefused(CliResult result, string expected)
    {
        Assert.True(result.ExitCode == 1, result.ToString());
        var lines = result.Stderr.Trim().Split('\n');
        Assert.True(lines.Length == 1 && lines[0].StartsWith("tumbler: ", StringComparison.Ordinal), result.ToString());
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
    }
}
