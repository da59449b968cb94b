using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Tumbler.Client;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests.Faults;

/// <summary>
/// <c>tumbler serve</c> killed with SIGKILL, again and again, while clients write: after every restart on the
/// same data directory each acknowledged write is there with its value, an unacknowledged one is wholly there
/// or wholly absent, and the staging labels of every secret obey their invariants.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CrashConsistencyTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Rounds = 5;
    private const int Secrets = 4;
    private const int ClientsPerSecret = 4;
    private const int PutsPerClientPerRound = 4; // 5 rounds x 4 clients x 4 = 80 versions a secret at most, under the 100 kept
    private const string CustomLabel = "STAGED";

    private enum Outcome { Acknowledged, Refused, Unknown }

    /// <summary>One PutSecretValue sent: its token is the version id it creates.</summary>
    private sealed record Put(string SecretId, string Token, string Value)
    {
        public volatile int State = (int)Outcome.Unknown;

        /// <summary>False when it was sent after the kill (to a server already gone): not a write the kill cut.</summary>
        public bool SentBeforeKill { get; init; } = true;
    }

    [Fact]
    public async Task Every_acknowledged_write_survives_repeated_kill_9_and_labels_stay_consistent()
    {
        using var temp = new TempDirectory();
        var options = new TumblerServerOptions
        {
            DataDir = Path.Combine(temp.Path, "data"),
            AccessKeyId = TumblerServer.NewAccessKeyId(),
            SecretAccessKey = TumblerServer.NewSecretAccessKey(),
        };
        var run = Guid.NewGuid().ToString("N")[..8];
        var names = Enumerable.Range(0, Secrets).Select(i => $"crash/{run}/s{i}").ToArray();
        var puts = new ConcurrentDictionary<string, Put>(StringComparer.Ordinal); // by token
        var killedWith = new List<int>();
        var inFlightAtKills = 0;

        await using (var first = await TumblerServer.StartAsync(options))
        {
            using var client = first.ApiClient();
            foreach (var name in names)
            {
                var put = new Put(name, Guid.NewGuid().ToString(), $"{name} initial");
                await client.SecretsManagerAsync("CreateSecret", new { Name = name, SecretString = put.Value, ClientRequestToken = put.Token });
                put.State = (int)Outcome.Acknowledged;
                puts[put.Token] = put;
            }
            first.Kill();
        }

        for (var round = 1; round <= Rounds; round++)
        {
            await using var server = await TumblerServer.StartAsync(options);
            using var client = server.ApiClient();
            await VerifyAsync(client, names, puts, $"after restart {round}");

            // A client that lost its answer sends the same request again: the version is there once, with that value.
            foreach (var lost in puts.Values.Where(p => p.State == (int)Outcome.Unknown).ToList())
            {
                var again = await client.SecretsManagerAsync("PutSecretValue", new { lost.SecretId, ClientRequestToken = lost.Token, SecretString = lost.Value });
                Assert.Equal(lost.Token, again.GetProperty("VersionId").GetString());
                lost.State = (int)Outcome.Acknowledged;
            }

            // Writers on every secret; the kill comes at a random count of acknowledged writes, so some are in flight.
            var acknowledgedThisRound = 0;
            var killAt = Random.Shared.Next(10, Secrets * ClientsPerSecret * PutsPerClientPerRound * 2 / 3);
            using var stop = new CancellationTokenSource();
            var killed = 0;
            var putsOut = new StrongBox<int>();
            var writers = Enumerable.Range(0, Secrets * ClientsPerSecret).Select(w => Task.Run(() => WriteAsync(
                server, names[w % Secrets], w, puts, () => Interlocked.Increment(ref acknowledgedThisRound), () => Volatile.Read(ref killed) == 1,
                putsOut, stop.Token))).ToArray();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (Volatile.Read(ref acknowledgedThisRound) < killAt && !writers.All(t => t.IsCompleted) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(5);
            }
            // A write takes about a millisecond: aim the kill at a moment when several puts are out.
            var aim = DateTime.UtcNow.AddSeconds(2);
            while (Volatile.Read(ref putsOut.Value) < Secrets * ClientsPerSecret / 2 && !writers.All(t => t.IsCompleted) && DateTime.UtcNow < aim)
            {
                Thread.SpinWait(100);
            }
            // The kill comes while every writer has a request out (a write takes about a millisecond now, so stopping the
            // writers first would let theirs finish); then no new requests are sent.
            killedWith.Add(Volatile.Read(ref acknowledgedThisRound));
            Volatile.Write(ref killed, 1);
            server.Kill();
            await stop.CancelAsync();
            await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(killedWith[^1] > 0, $"round {round}: no write was acknowledged before the kill\n{server.StandardError}");
            inFlightAtKills += puts.Values.Count(p => p.State == (int)Outcome.Unknown && p.SentBeforeKill);
        }

        await using (var last = await TumblerServer.StartAsync(options))
        {
            using var client = last.ApiClient();
            await VerifyAsync(client, names, puts, "after the last restart");
        }
        output.WriteLine($"acknowledged per round before the kill: {string.Join(", ", killedWith)}; puts in flight at the kills: {inFlightAtKills}; "
            + $"versions written: {puts.Count}");
        // The kills must have hit writes in flight, or the test proved nothing about them.
        Assert.True(inFlightAtKills > 0, $"no write was in flight at any kill (acknowledged per round before it: {string.Join(", ", killedWith)})");
    }

    /// <summary>
    /// One client on one secret: new versions with their own ClientRequestToken, and now and then a label move
    /// (the custom label, or AWSCURRENT back to an older version), until told to stop or its puts are done. A request
    /// already sent is never cancelled by the client: it is the kill that cuts it.
    /// </summary>
    private static async Task WriteAsync(TumblerServer server, string secretId, int writer, ConcurrentDictionary<string, Put> puts, Func<int> acknowledged, Func<bool> killed,
        StrongBox<int> putsOut, CancellationToken stopSending)
    {
        using var client = server.ApiClient();
        var random = new Random(writer * 7919 + Environment.TickCount);
        for (var done = 0; done < PutsPerClientPerRound && !stopSending.IsCancellationRequested;)
        {
            try
            {
                var dice = random.Next(10);
                if (dice < 6)
                {
                    var put = new Put(secretId, Guid.NewGuid().ToString(), $"{secretId} w{writer} {Guid.NewGuid():N}") { SentBeforeKill = !killed() };
                    puts[put.Token] = put;
                    done++;
                    Interlocked.Increment(ref putsOut.Value);
                    try
                    {
                        await client.SecretsManagerAsync("PutSecretValue", new { SecretId = secretId, ClientRequestToken = put.Token, SecretString = put.Value }, CancellationToken.None);
                        put.State = (int)Outcome.Acknowledged;
                        acknowledged();
                    }
                    catch (TumblerApiException e) when (e.StatusCode < 500)
                    {
                        put.State = (int)Outcome.Refused;
                        throw;
                    }
                    finally
                    {
                        Interlocked.Decrement(ref putsOut.Value);
                    }
                }
                else
                {
                    // Move a label to a version this run knows is acknowledged; RemoveFromVersionId as last seen (may be stale: refused).
                    var label = dice < 8 ? CustomLabel : "AWSCURRENT";
                    var candidates = puts.Values.Where(p => p.SecretId == secretId && p.State == (int)Outcome.Acknowledged).ToList();
                    var target = candidates[random.Next(candidates.Count)].Token;
                    var describe = await client.SecretsManagerAsync("DescribeSecret", new { SecretId = secretId }, CancellationToken.None);
                    var holder = describe.GetProperty("VersionIdsToStages").EnumerateObject()
                        .Where(p => p.Value.EnumerateArray().Any(l => l.GetString() == label)).Select(p => p.Name).FirstOrDefault();
                    await client.SecretsManagerAsync("UpdateSecretVersionStage",
                        new { SecretId = secretId, VersionStage = label, MoveToVersionId = target, RemoveFromVersionId = holder }, CancellationToken.None);
                }
            }
            catch (TumblerApiException e) when (e.StatusCode == 400 && e.ErrorCode is "InvalidParameterException")
            {
                // a stale RemoveFromVersionId: another client moved the label first
            }
            catch (Exception e) when (e is TumblerClientException or OperationCanceledException
                || (e is TumblerApiException api && api.StatusCode >= 500))
            {
                // the server was killed under this request, or is going away: its outcome is unknown
            }
        }
    }

    private static async Task VerifyAsync(JsonApiClient client, string[] names, ConcurrentDictionary<string, Put> puts, string when)
    {
        foreach (var name in names)
        {
            var versions = await client.VersionsAsync(name);
            ApiCalls.AssertLabelInvariants(name, versions);

            // Every acknowledged version is there; a refused one is not.
            foreach (var put in puts.Values.Where(p => p.SecretId == name))
            {
                switch ((Outcome)put.State)
                {
                    case Outcome.Acknowledged:
                        Assert.True(versions.ContainsKey(put.Token), $"{when}: acknowledged version {put.Token} of {name} is missing");
                        break;
                    case Outcome.Refused:
                        Assert.False(versions.ContainsKey(put.Token), $"{when}: refused version {put.Token} of {name} exists");
                        break;
                }
            }
            // Every version that exists was sent by this test and reads back as sent: none without its value.
            foreach (var versionId in versions.Keys)
            {
                Assert.True(puts.TryGetValue(versionId, out var put) && put.SecretId == name, $"{when}: {name} holds version {versionId} nobody wrote");
                var read = await client.SecretsManagerAsync("GetSecretValue", new { SecretId = name, VersionId = versionId });
                Assert.Equal(put.Value, read.GetProperty("SecretString").GetString());
            }
            var current = await client.SecretsManagerAsync("GetSecretValue", new { SecretId = name });
            Assert.Contains("AWSCURRENT", versions[current.GetProperty("VersionId").GetString()!]);
        }
    }
}
