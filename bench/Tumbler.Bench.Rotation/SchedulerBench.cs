using System.Diagnostics;
using System.Text.Json.Nodes;
using MySqlConnector;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;

namespace Tumbler.Bench.Rotation;

/// <summary>
/// Benchmark 2: the scheduler's throughput. N MariaDB users and single-user secrets with
/// AutomaticallyAfterDays=1 (configured by RotateSecret with RotateImmediately=false, whose test-only
/// rotations run first); then for each concurrency and each way of driving the engine the clock jumps
/// 2 days so all N are due, and the engine runs until nothing is due or running. After each round every
/// secret's new AWSCURRENT must log in.
/// </summary>
/// <remarks>
/// Two ways of driving the engine: <b>pool</b>, what the server's RotationScheduler does (a free slot is
/// filled through <see cref="RotationEngine.StartDueAsync"/> as soon as a rotation ends), and
/// <b>passes</b>, <see cref="RotationEngine.RunOnceAsync"/> back to back (each pass claims MaxConcurrency
/// rotations and waits for all of them before claiming more).
/// </remarks>
internal static class SchedulerBench
{
    /// <param name="plain">Give the secrets <c>"ssl": false</c> (plain connections) instead of no <c>ssl</c> (TLS, as the server offers it).</param>
    /// <param name="repeat">Rounds per concurrency (interleaved: 4, 16, 4, 16...), to see through a busy machine.</param>
    /// <param name="quiet">When set, each round waits (up to 10 minutes) until other processes use fewer cores than this.</param>
    public static async Task RunAsync(MariaDb db, int count, IReadOnlyList<int> concurrencies, int repeat, bool plain, double? quiet, CancellationToken ct)
    {
        await using var host = await BenchHost.CreateAsync(ct);
        Console.WriteLine();
        Console.WriteLine($"### Benchmark 2: the scheduler rotating {count} due secrets ({(plain ? "\"ssl\": false, plain connections" : "ssl absent: TLS")})");
        Console.WriteLine();

        var sw = Stopwatch.StartNew();
        var users = await db.CreateUsersAsync(count, ct);
        Console.WriteLine($"- setup: {count} MariaDB users created in {Stats.F(sw.Elapsed.TotalSeconds, 2)} s");

        sw.Restart();
        var secrets = new List<(string Arn, string User)>(count);
        foreach (var (user, password) in users)
        {
            var value = new JsonObject { ["engine"] = "mariadb", ["host"] = MariaDb.Host, ["port"] = MariaDb.Port, ["username"] = user, ["password"] = password };
            if (plain)
            {
                value["ssl"] = false;
            }
            var created = await host.Service.CreateSecretAsync(new CreateSecretRequest
            {
                Name = $"bench/scheduled/{user}", SecretString = value.ToJsonString(), ClientRequestToken = Guid.NewGuid().ToString(),
            }, BenchHost.Caller, ct);
            secrets.Add((created.ARN, user));
        }
        Console.WriteLine($"- setup: {count} CreateSecret calls in {Stats.F(sw.Elapsed.TotalSeconds, 2)} s " +
            $"({Stats.F(count / sw.Elapsed.TotalSeconds, 0)}/s, one at a time)");

        sw.Restart();
        foreach (var (arn, _) in secrets)
        {
            await host.Service.RotateSecretAsync(new RotateSecretRequest
            {
                SecretId = arn, ClientRequestToken = Guid.NewGuid().ToString(), RotationLambdaARN = SingleRotationBench.FunctionArn,
                RotationRules = new RotationRulesType { AutomaticallyAfterDays = 1 }, RotateImmediately = false,
            }, BenchHost.Caller, ct);
        }
        Console.WriteLine($"- setup: {count} RotateSecret calls (AutomaticallyAfterDays=1, RotateImmediately=false) in {Stats.F(sw.Elapsed.TotalSeconds, 2)} s " +
            $"({Stats.F(count / sw.Elapsed.TotalSeconds, 0)}/s, one at a time)");

        sw.Restart();
        var testEngine = host.NewEngine(concurrencies[0]);
        var tested = 0;
        int ran;
        while ((ran = await testEngine.RunOnceAsync(ct)) > 0)
        {
            tested += ran;
        }
        var testSeconds = sw.Elapsed.TotalSeconds;
        host.Functions.Drain();
        var stillRunning = (await StateAsync(host, ct)).Count(s => s.Running);
        if (tested != count || stillRunning != 0)
        {
            throw new InvalidOperationException($"The test-only rotations did not all finish: ran {tested}, {stillRunning} still have a job.");
        }
        Console.WriteLine($"- setup: the {count} test-only rotations (testSecret only) ran in {Stats.F(testSeconds, 2)} s at MaxConcurrency {concurrencies[0]} " +
            $"({Stats.F(count / testSeconds, 1)}/s)");

        // The first scheduled rotation of a secret makes its AWSPREVIOUS; from the second on, setSecret also
        // reads AWSPREVIOUS (and so records its last access: one more durable write). One unmeasured round
        // first, so every measured round sees secrets in that steady state.
        var priming = await RoundAsync(host, secrets, concurrencies.Max(), pool: true, plain, ct);
        Console.WriteLine($"- setup: a first scheduled round, not in the table (secrets get their AWSPREVIOUS): {priming.Split('|')[6].Trim().Trim('*')} rotations/s " +
            $"(pool, MaxConcurrency {concurrencies.Max()})");

        var rows = new List<string>();
        for (var round = 0; round < repeat; round++)
        {
            foreach (var concurrency in concurrencies)
            {
                foreach (var pool in new[] { true, false })
                {
                    if (quiet is { } limit)
                    {
                        await CpuSnapshot.WaitForQuietAsync(limit, TimeSpan.FromMinutes(10), ct);
                    }
                    rows.Add(await RoundAsync(host, secrets, concurrency, pool, plain, ct));
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine("| MaxConcurrency | driven by | rotated | failed | wall time (s) | rotations/s | claims | job time median / p95 (ms) | slot use | " +
            "createSecret / setSecret / testSecret / finishSecret median (ms) | store writes: per rotation; per second; mean latency incl. waiting | " +
            "store reads: per rotation; mean latency | cores busy |");
        Console.WriteLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|");
        foreach (var row in rows)
        {
            Console.WriteLine(row);
        }
    }

    private static async Task<string> RoundAsync(BenchHost host, List<(string Arn, string User)> secrets, int concurrency, bool pool, bool plain,
        CancellationToken ct)
    {
        var before = (await StateAsync(host, ct)).ToDictionary(s => s.Arn, s => s.CurrentVersion);
        host.Clock.Advance(TimeSpan.FromDays(2));
        var engine = host.NewEngine(concurrency);
        host.Functions.Drain();

        var cpuStart = CpuSnapshot.Take();
        var store0 = host.Store.Counters;
        var start = Stopwatch.GetTimestamp();
        var claims = 0;
        if (pool)
        {
            // The server's RotationScheduler while there is work: fill every free slot, wait for one to free up.
            var running = new List<Task>();
            while (true)
            {
                running.RemoveAll(task => task.IsCompleted);
                var started = await engine.StartDueAsync(concurrency - running.Count, ct);
                claims += started.Count > 0 ? 1 : 0;
                running.AddRange(started);
                if (running.Count == 0)
                {
                    break;
                }
                await Task.WhenAny(running);
            }
        }
        else
        {
            while (await engine.RunOnceAsync(ct) > 0)
            {
                claims++;
            }
        }
        var wall = Stopwatch.GetElapsedTime(start);
        var store = host.Store.Counters - store0;
        var cpu = CpuSnapshot.Describe(cpuStart, CpuSnapshot.Take(), wall);
        var samples = host.Functions.Drain();

        var after = await StateAsync(host, ct);
        var rotated = after.Count(s => s.LastRotated == host.Clock.Now && s.CurrentVersion != before[s.Arn] && !s.Running);
        var failed = after.Count(s => s.Running);

        // Every secret's new AWSCURRENT must log in (8 logins at a time).
        var loginFailures = 0;
        await Parallel.ForEachAsync(secrets, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (secret, token) =>
        {
            var current = await host.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = secret.Arn }, BenchHost.Caller, token);
            var password = JsonNode.Parse(current.SecretString!)!["password"]!.GetValue<string>();
            if (!await MariaDb.CanLoginAsync(secret.User, password, plain ? MySqlSslMode.None : MySqlSslMode.Preferred, token))
            {
                Interlocked.Increment(ref loginFailures);
            }
        });
        if (loginFailures > 0 || rotated != secrets.Count)
        {
            Console.WriteLine($"!! MaxConcurrency {concurrency}, {Mode(pool)}: {rotated} of {secrets.Count} rotated, {failed} with a job left, " +
                $"{loginFailures} AWSCURRENT values do not log in");
        }
        else
        {
            Console.WriteLine($"- MaxConcurrency {concurrency}, {Mode(pool)}: all {secrets.Count} rotated; every new AWSCURRENT logs in (checked all {secrets.Count})");
        }

        // One job = createSecret start to finishSecret end (the engine's bookkeeping between steps included).
        var jobs = samples.GroupBy(s => s.SecretId)
            .Select(g => Stats.Ms(g.Max(s => s.Start + s.Ticks) - g.Min(s => s.Start)))
            .ToList();
        var slotUse = jobs.Sum() / (wall.TotalMilliseconds * concurrency);
        var steps = string.Join(" / ", RotationStep.All.Select(step =>
            Stats.F(Stats.Median(samples.Where(s => s.Step == step).Select(s => Stats.Ms(s.Ticks)).ToList()), 1)));
        var writes = $"{Stats.F((double)store.Writes / Math.Max(1, rotated), 1)}; {Stats.F(store.Writes / wall.TotalSeconds, 0)}/s; " +
            $"{Stats.F(Stats.Ms(store.WriteTicks) / Math.Max(1, store.Writes), 2)} ms";
        var reads = $"{Stats.F((double)store.Reads / Math.Max(1, rotated), 1)}; {Stats.F(Stats.Ms(store.ReadTicks) / Math.Max(1, store.Reads), 2)} ms";
        return $"| {concurrency} | {Mode(pool)} | {rotated} | {failed} | {Stats.F(wall.TotalSeconds, 2)} | **{Stats.F(rotated / wall.TotalSeconds, 1)}** | {claims} | " +
            $"{Stats.F(Stats.Median(jobs), 1)} / {Stats.F(Stats.Percentile(jobs, 95), 1)} | {Stats.F(slotUse * 100, 0)}% | {steps} | {writes} | {reads} | {cpu} |";
    }

    private static string Mode(bool pool) => pool ? "pool" : "passes";

    private sealed record SecretState(string Arn, DateTimeOffset? LastRotated, string? CurrentVersion, bool Running);

    private static async Task<List<SecretState>> StateAsync(BenchHost host, CancellationToken ct)
    {
        var state = new List<SecretState>();
        foreach (var secret in await host.Store.ListSecretsAsync("us-east-1", includeScheduledForDeletion: false, ct))
        {
            var job = await host.Store.FindRotationAsync(secret.Key, ct);
            state.Add(new SecretState(secret.Arn, secret.LastRotatedDate,
                secret.Versions.Find(v => v.Labels.Contains("AWSCURRENT"))?.VersionId, job is not null));
        }
        return state;
    }
}
