using Tumbler.Client;
using Tumbler.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Tumbler.IntegrationTests.Faults;

/// <summary>
/// The data directory's filesystem fills up, or turns read-only, under a running <c>tumbler serve</c>: while the
/// fault lasts every request is answered (a success that is then kept, or an AWS-shaped error; never a hang,
/// a dropped connection or a dead server), nothing acknowledged is lost, and once the fault clears writes
/// succeed again without a restart. The audit log lives in the data directory and fails closed: a request
/// whose record cannot be written is refused, reads included.
/// </summary>
[Trait("Category", "Integration")]
public sealed class StorageFaultTests(ITestOutputHelper output)
{
    private const int Secrets = 3;
    private const int FaultRequests = 30; // half puts, half reads
    private static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(15);

    [RequiresScratchFilesystemFact]
    public async Task A_server_started_on_a_read_only_data_directory_says_so_and_does_not_blame_another_server()
    {
        using var disk = ScratchFilesystem.Tmpfs(64);
        var options = new TumblerServerOptions { DataDir = Path.Combine(disk.Path, "data") };
        await using (var server = await TumblerServer.StartAsync(options))
        {
            Assert.Equal(0, await server.StopAsync());
        }
        disk.RemountReadOnly();

        var outcome = await TumblerServer.RunExpectingExitAsync(options);
        Assert.True(outcome.ExitCode == 1 && !outcome.BecameReady, outcome.ToString());
        Assert.Contains("the server needs a writable data directory", outcome.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("another tumbler serve", outcome.StandardError, StringComparison.Ordinal);
    }

    [RequiresScratchFilesystemFact]
    public async Task A_full_disk_refuses_every_request_while_the_audit_log_cannot_grow_and_recovers_when_space_is_freed()
    {
        using var disk = ScratchFilesystem.Tmpfs(64);
        var (recoveredInPlace, readsServed) = await RunFaultAsync(disk, disk.Fill, () => { disk.FreeSpace(); return true; }, audited: true);
        Assert.True(recoveredInPlace);
        Assert.Equal(0, readsServed); // fail closed: a read that cannot be audited is not served
    }

    [RequiresScratchFilesystemFact]
    public async Task Without_an_audit_log_a_full_disk_refuses_writes_serves_reads_and_recovers_when_space_is_freed()
    {
        using var disk = ScratchFilesystem.Tmpfs(64);
        var (recoveredInPlace, readsServed) = await RunFaultAsync(disk, disk.Fill, () => { disk.FreeSpace(); return true; }, audited: false);
        Assert.True(recoveredInPlace);
        Assert.Equal(FaultRequests / 2, readsServed);
    }

    [RequiresScratchFilesystemFact]
    public async Task A_data_directory_turned_read_only_refuses_requests_keeps_what_was_acknowledged_and_recovers_after_remount()
    {
        using var disk = ScratchFilesystem.Ext4(64);
        var (_, readsServed) = await RunFaultAsync(disk, disk.TurnReadOnly, disk.TryRemountWritable, audited: true);
        Assert.Equal(0, readsServed);
    }

    [RequiresScratchFilesystemFact]
    public async Task Without_an_audit_log_a_read_only_data_directory_refuses_writes_and_recovers_after_remount()
    {
        using var disk = ScratchFilesystem.Ext4(64);
        var (_, readsServed) = await RunFaultAsync(disk, disk.TurnReadOnly, disk.TryRemountWritable, audited: false);
        Assert.Equal(FaultRequests / 2, readsServed); // SQLite reads through its open files
    }

    private sealed record Version(string SecretId, string VersionId, string Value);

    /// <summary>
    /// Writes, then <paramref name="fault"/> under the running server, then requests during the fault, then
    /// <paramref name="clear"/>: when it returns true the same server must take writes again; when false (the
    /// filesystem cannot be repaired under open files) the server is stopped, the filesystem remounted and the
    /// server restarted. <paramref name="audited"/> false runs the server with <c>--audit none</c>, so the store
    /// itself meets the fault. Returns whether the recovery happened in place, and how many reads were served during the fault.
    /// </summary>
    private async Task<(bool RecoveredInPlace, int ReadsServed)> RunFaultAsync(ScratchFilesystem disk, Action fault, Func<bool> clear, bool audited)
    {
        var options = new TumblerServerOptions
        {
            ExtraArgs = audited ? [] : ["--audit", "none"],
            DataDir = Path.Combine(disk.Path, "data"),
            AccessKeyId = TumblerServer.NewAccessKeyId(),
            SecretAccessKey = TumblerServer.NewSecretAccessKey(),
        };
        var names = Enumerable.Range(0, Secrets).Select(i => $"faults/{Guid.NewGuid():N}/s{i}").ToArray();
        var acknowledged = new List<Version>();
        var server = await TumblerServer.StartAsync(options);
        try
        {
            using (var client = server.ApiClient())
            {
                foreach (var name in names)
                {
                    var created = await client.SecretsManagerAsync("CreateSecret", new { Name = name, SecretString = $"{name} v0", ClientRequestToken = Guid.NewGuid() });
                    acknowledged.Add(new Version(name, created.GetProperty("VersionId").GetString()!, $"{name} v0"));
                    acknowledged.Add(await PutAsync(client, name, 1));
                }

                fault();

                // During the fault: puts and reads, each answered in time, in the AWS shape, never by a dead server.
                var refusedWrites = 0;
                var readsServed = 0;
                var errors = new SortedDictionary<string, int>(StringComparer.Ordinal); // "status code: first message" -> count
                for (var i = 0; i < FaultRequests; i++)
                {
                    var name = names[i % Secrets];
                    try
                    {
                        if (i % 2 == 0)
                        {
                            acknowledged.Add(await PutAsync(client, name, 100 + i));
                        }
                        else
                        {
                            var known = acknowledged.Where(v => v.SecretId == name).ToList();
                            var version = known[i % known.Count];
                            var read = await client.SecretsManagerAsync("GetSecretValue", new { SecretId = name, version.VersionId }, Deadline());
                            Assert.Equal(version.Value, read.GetProperty("SecretString").GetString());
                            readsServed++;
                        }
                    }
                    catch (TumblerApiException e)
                    {
                        AssertAwsShapedFault(e);
                        var key = errors.Keys.FirstOrDefault(k => k.StartsWith($"{e.StatusCode} {e.ErrorCode}:", StringComparison.Ordinal)) ?? $"{e.StatusCode} {e.ErrorCode}: {e.Message}";
                        errors[key] = errors.GetValueOrDefault(key) + 1;
                        refusedWrites += i % 2 == 0 ? 1 : 0;
                    }
                    Assert.False(server.HasExited, $"the server died during the fault:\n{server.StandardError}");
                }
                Assert.True(refusedWrites > 0, "the fault should have refused writes");
                output.WriteLine($"during the fault: {refusedWrites} of {FaultRequests / 2} writes refused, {readsServed} of {FaultRequests / 2} reads served; answers: {string.Join(" | ", errors.Select(e => $"{e.Value}x {e.Key}"))}");

                if (clear())
                {
                    var refusedAfterClearing = await AssertWritesResumeAsync(client, names, acknowledged);
                    output.WriteLine($"after the fault cleared: {refusedAfterClearing} write(s) refused before writes resumed");
                    await VerifyAsync(client, names, acknowledged);
                    await server.StopAsync();
                    await RestartAndVerifyAsync(options, names, acknowledged, recoveredInPlace: true);
                    return (true, readsServed);
                }
                output.WriteLine("this kernel keeps an ext4 that had an error read-only until it is unmounted: recovery is unmount, mount and restart");
                server.Kill();
                disk.Remount();
                await RestartAndVerifyAsync(options, names, acknowledged, recoveredInPlace: false);
                return (false, readsServed);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    /// <summary>After a restart on the same data directory: everything acknowledged is there, and writes work.</summary>
    private static async Task RestartAndVerifyAsync(TumblerServerOptions options, string[] names, List<Version> acknowledged, bool recoveredInPlace)
    {
        await using var restarted = await TumblerServer.StartAsync(options);
        using var client = restarted.ApiClient();
        await VerifyAsync(client, names, acknowledged);
        if (!recoveredInPlace)
        {
            await AssertWritesResumeAsync(client, names, acknowledged);
        }
    }

    /// <summary>
    /// Writes are taken again within a few seconds (the first request after the fault may still be refused while
    /// the audit log proves it can write again), and then every one of a run of writes is.
    /// </summary>
    private static async Task<int> AssertWritesResumeAsync(JsonApiClient client, string[] names, List<Version> acknowledged)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        var refused = 0;
        while (true)
        {
            try
            {
                acknowledged.Add(await PutAsync(client, names[0], 1000));
                break;
            }
            catch (TumblerApiException e) when (DateTime.UtcNow < deadline)
            {
                AssertAwsShapedFault(e);
                refused++;
                await Task.Delay(200);
            }
        }
        for (var i = 0; i < 2 * Secrets; i++)
        {
            acknowledged.Add(await PutAsync(client, names[i % Secrets], 2000 + i));
        }
        return refused;
    }

    private static async Task<Version> PutAsync(JsonApiClient client, string name, int n)
    {
        var value = $"{name} v{n} {Guid.NewGuid():N}";
        var put = await client.SecretsManagerAsync("PutSecretValue", new { SecretId = name, SecretString = value, ClientRequestToken = Guid.NewGuid() }, Deadline());
        return new Version(name, put.GetProperty("VersionId").GetString()!, value);
    }

    /// <summary>A request still unanswered after this is a hang: the call throws and the test fails.</summary>
    private static CancellationToken Deadline() => new CancellationTokenSource(AnswerWithin).Token;

    /// <summary>A storage fault is the server's problem: a 5xx InternalServiceError with a message, or a clear 4xx, in the AWS shape.</summary>
    private static void AssertAwsShapedFault(TumblerApiException e)
    {
        Assert.True(e.StatusCode is >= 400 and < 600, $"{e.StatusCode} {e.ErrorCode}: {e.Message}");
        Assert.False(string.IsNullOrWhiteSpace(e.Message), $"{e.StatusCode} {e.ErrorCode} has no message");
        if (e.StatusCode >= 500)
        {
            Assert.Equal("InternalServiceError", e.ErrorCode);
        }
        else
        {
            Assert.NotEqual(e.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture), e.ErrorCode); // a real __type, not just a status
        }
    }

    private static async Task VerifyAsync(JsonApiClient client, string[] names, List<Version> acknowledged)
    {
        foreach (var name in names)
        {
            var versions = await client.VersionsAsync(name);
            ApiCalls.AssertLabelInvariants(name, versions);
            foreach (var version in acknowledged.Where(v => v.SecretId == name))
            {
                Assert.True(versions.ContainsKey(version.VersionId), $"acknowledged version {version.VersionId} of {name} is missing");
                var read = await client.SecretsManagerAsync("GetSecretValue", new { SecretId = name, version.VersionId });
                Assert.Equal(version.Value, read.GetProperty("SecretString").GetString());
            }
            foreach (var versionId in versions.Keys)
            {
                // An unacknowledged write may be there (committed, then its audit record failed): then whole, with its value.
                var read = await client.SecretsManagerAsync("GetSecretValue", new { SecretId = name, VersionId = versionId });
                Assert.StartsWith(name, read.GetProperty("SecretString").GetString(), StringComparison.Ordinal);
            }
        }
    }
}
