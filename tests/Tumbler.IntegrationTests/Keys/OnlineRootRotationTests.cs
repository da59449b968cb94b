using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Tumbler.Client;
using Tumbler.Client.Model;
using Tumbler.IntegrationTests.Support;
using static Tumbler.IntegrationTests.Access.TumblerProcess;
using static Tumbler.IntegrationTests.Keys.KeysProcess;

namespace Tumbler.IntegrationTests.Keys;

/// <summary>
/// <c>tumbler keys rotate-root</c> run against the data directory of a <c>tumbler serve</c> child process that keeps
/// serving reads, writes, key creation and key material rotation throughout: the rotation is killed (SIGKILL) after
/// its preparation and after its switch, rerun to completion, and the server restarted on the new root key.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OnlineRootRotationTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>Read/write traffic and key administration against a running server, every failure kept.</summary>
    private sealed class Traffic(TumblerServer server, string appKeyId) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly SecretsManagerClient _secrets = new(new Uri(server.Endpoint), new AwsCredentials(server.AccessKeyId, server.SecretAccessKey), "us-east-1");
        private readonly JsonApiClient _kms = new(new Uri(server.Endpoint), new AwsCredentials(server.AccessKeyId, server.SecretAccessKey), "us-east-1");
        private readonly List<Task> _loops = [];
        public ConcurrentQueue<string> Failures { get; } = new();
        /// <summary>Secrets made under keys created during the run, with their value: all must read after a restart.</summary>
        public ConcurrentDictionary<string, string> Written { get; } = new();
        private int _writes;
        private int _keys;
        public int Writes => Volatile.Read(ref _writes);
        public int KeysCreated => Volatile.Read(ref _keys);

        public void Start()
        {
            _loops.Add(Task.Run(ReadWriteLoop));
            _loops.Add(Task.Run(KeyLoop));
        }

        /// <summary>Writes a new value and reads it back, over and over: every read must see the last write.</summary>
        private async Task ReadWriteLoop()
        {
            for (var i = 0; !_stop.IsCancellationRequested; i++)
            {
                try
                {
                    // A new secret every 50 writes: AWS's limit of 100 unlabelled versions a day applies to each.
                    var (name, value) = ($"online/rw-{i / 50}", $"rw-{i}");
                    if (i % 50 == 0)
                    {
                        await _secrets.CreateSecretAsync(new CreateSecretRequest { Name = name, SecretString = value, KmsKeyId = "alias/online" });
                    }
                    else
                    {
                        await _secrets.PutSecretValueAsync(new PutSecretValueRequest { SecretId = name, SecretString = value });
                    }
                    var read = await _secrets.GetSecretValueAsync(new GetSecretValueRequest { SecretId = name });
                    if (read.SecretString != value)
                    {
                        Failures.Enqueue($"read {read.SecretString} after writing {value}");
                    }
                    Written[name] = value;
                    Interlocked.Increment(ref _writes);
                }
                catch (Exception e)
                {
                    Failures.Enqueue($"read/write {i}: {e.Message}");
                }
            }
        }

        /// <summary>Creates a key, rotates the app key's material, and stores a secret under each, over and over.</summary>
        private async Task KeyLoop()
        {
            for (var i = 0; !_stop.IsCancellationRequested; i++)
            {
                try
                {
                    var created = await _kms.CallAsync("TumblerKMS.CreateKey", "kms", Encoding.UTF8.GetBytes("""{"Description": "during rotation"}"""));
                    var keyId = created.GetProperty("KeyMetadata").GetProperty("KeyId").GetString()!;
                    await _secrets.CreateSecretAsync(new CreateSecretRequest { Name = $"online/new-key-{i}", SecretString = $"nk-{i}", KmsKeyId = keyId });
                    Written[$"online/new-key-{i}"] = $"nk-{i}";
                    await _kms.CallAsync("TumblerKMS.RotateKeyOnDemand", "kms", Encoding.UTF8.GetBytes($$"""{"KeyId": "{{appKeyId}}"}"""));
                    await _secrets.CreateSecretAsync(new CreateSecretRequest { Name = $"online/app-{i}", SecretString = $"app-{i}", KmsKeyId = appKeyId });
                    Written[$"online/app-{i}"] = $"app-{i}";
                    Interlocked.Increment(ref _keys);
                }
                catch (Exception e)
                {
                    Failures.Enqueue($"keys {i}: {e.Message}");
                }
            }
        }

        /// <summary>Waits until both loops have done a few more rounds (so traffic spans the step just taken).</summary>
        public async Task ProgressAsync()
        {
            var (writes, keys) = (Writes, KeysCreated);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while ((Writes < writes + 5 || KeysCreated < keys + 2) && DateTime.UtcNow < deadline && Failures.IsEmpty)
            {
                await Task.Delay(50);
            }
            Assert.True(Failures.IsEmpty, string.Join("\n", Failures));
            Assert.True(Writes >= writes + 5 && KeysCreated >= keys + 2, $"traffic stalled: {Writes} writes, {KeysCreated} keys");
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_loops);
            _secrets.Dispose();
            _kms.Dispose();
            _stop.Dispose();
        }
    }

    [Fact]
    public async Task A_running_server_keeps_reading_writing_and_creating_keys_through_a_killed_and_resumed_rotation()
    {
        var dataDir = Path.Combine(_temp.Path, "data");
        var rootKeyFile = Path.Combine(dataDir, "root.key");
        var newKeyFile = Path.Combine(_temp.Path, "new.key");
        var newKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        await File.WriteAllTextAsync(newKeyFile, newKey + "\n");
        IReadOnlyDictionary<string, string> written;

        await using (var server = await TumblerServer.StartAsync(new TumblerServerOptions { DataDir = dataDir }))
        {
            var appKeyId = (await Cli(server, "keys", "create", "--description", "app")).Ok().Json.GetProperty("KeyMetadata").GetProperty("KeyId").GetString()!;
            (await Cli(server, "keys", "create-alias", "--alias-name", "alias/online", "--target-key-id", appKeyId)).Ok();
            (await Cli(server, "create", "--name", "online/db", "--value", "first", "--kms-key-id", "alias/online")).Ok();
            var oldKey = await File.ReadAllTextAsync(rootKeyFile);

            var traffic = new Traffic(server, appKeyId);
            await using (traffic)
            {
                traffic.Start();
                await traffic.ProgressAsync();

                // Killed between its preparation and the switch: the old key still rules, the server goes on (wrapping new keys under both).
                var crashed = await RotateRoot(dataDir, newKeyFile, "rotate-root:after-prepare");
                Assert.Contains("killing the process at rotate-root:after-prepare", crashed.Stderr, StringComparison.Ordinal);
                Assert.Equal(oldKey, await File.ReadAllTextAsync(rootKeyFile));
                await traffic.ProgressAsync();

                // Killed right after the switch, before root.key was replaced: the server finds the new key in root.key.next.
                crashed = await RotateRoot(dataDir, newKeyFile, "rotate-root:after-switch");
                Assert.Contains("killing the process at rotate-root:after-switch", crashed.Stderr, StringComparison.Ordinal);
                Assert.Equal(oldKey, await File.ReadAllTextAsync(rootKeyFile));
                await traffic.ProgressAsync();

                // The rerun finishes: root.key now holds the new key.
                var resumed = (await RotateRoot(dataDir, newKeyFile, null)).Ok();
                Assert.Contains("already encrypted under the new root key", resumed.Stdout, StringComparison.Ordinal);
                Assert.Equal(newKey, (await File.ReadAllTextAsync(rootKeyFile)).Trim());
                Assert.False(File.Exists(Path.Combine(dataDir, "root.key.next")));
                await traffic.ProgressAsync();

                // And a clean rotation under load, to a third key.
                var thirdKeyFile = Path.Combine(_temp.Path, "third.key");
                var thirdKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
                await File.WriteAllTextAsync(thirdKeyFile, thirdKey + "\n");
                (await RotateRoot(dataDir, thirdKeyFile, null)).Ok();
                Assert.Equal(thirdKey, (await File.ReadAllTextAsync(rootKeyFile)).Trim());
                await traffic.ProgressAsync();
                newKey = thirdKey;
            }
            written = new Dictionary<string, string>(traffic.Written); // once the loops have stopped
            Assert.True(traffic.Failures.IsEmpty, string.Join("\n", traffic.Failures));
            Assert.False(server.HasExited);
            await server.StopAsync();
        }

        // Restarted on the new root.key: every secret written during the rotations reads, under every key made meanwhile.
        Assert.Equal(newKey, (await File.ReadAllTextAsync(rootKeyFile)).Trim());
        await using var restarted = await TumblerServer.StartAsync(new TumblerServerOptions { DataDir = dataDir });
        using var client = new SecretsManagerClient(new Uri(restarted.Endpoint), new AwsCredentials(restarted.AccessKeyId, restarted.SecretAccessKey), "us-east-1");
        Assert.True(written.Count > 10, $"only {written.Count} secrets written");
        foreach (var (name, value) in written)
        {
            Assert.Equal(value, (await client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = name })).SecretString);
        }
        (await Cli(restarted, "keys", "create")).Ok();
        await restarted.StopAsync();
    }
}
