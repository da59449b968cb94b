using System.Diagnostics;
using System.Text.Json.Nodes;
using MySqlConnector;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;

namespace Tumbler.Bench.Rotation;

/// <summary>
/// Benchmark 1: one rotation of a single-user MariaDB secret, end to end, one at a time: RotateSecret,
/// then one engine pass runs createSecret, setSecret, testSecret and finishSecret, then the new
/// AWSCURRENT is read and logs in (and the old password no longer does, checked outside the timing).
/// </summary>
/// <remarks>
/// Two cases per TLS setting: a <b>fresh</b> secret (its first rotation: a new user and a secret with
/// one version each time) and a <b>steady-state</b> secret (one secret rotated over and over, the clock
/// an hour further each time, so it carries the 100 unlabelled versions AWS keeps before pruning; every
/// operation on it loads them all). The steady-state secret's first rotations warm the process up (JIT
/// tiering takes seconds on 2 cores) and are not measured.
/// </remarks>
internal static class SingleRotationBench
{
    public const string FunctionArn = "arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSMariaDBRotationSingleUser";

    public static readonly string[] Phases =
    [
        "RotateSecret call", "engine: find due + claim + load secret", RotationStep.CreateSecret, RotationStep.SetSecret,
        RotationStep.TestSecret, RotationStep.FinishSecret, "engine: record each step + finish", "engine pass",
        "verify: GetSecretValue + login", "total",
        "store: durable writes, RotateSecret + engine pass (count)", "store: time in those writes", "store: reads (count)", "store: time in reads",
    ];

    /// <summary>The measurements of one case: per phase, the milliseconds of each rotation; per step, the Secrets Manager share.</summary>
    public sealed record Result(string Label, Dictionary<string, List<double>> Phases, Dictionary<string, List<double>> SecretsManagerMs, string Cpu);

    /// <param name="ssl">The secret's <c>ssl</c> member: null = absent (TLS when offered, as the test server does), false = plain.</param>
    public static async Task<IReadOnlyList<Result>> RunAsync(MariaDb db, string label, bool? ssl, int warmup, int rotations, CancellationToken ct)
    {
        await using var host = await BenchHost.CreateAsync(ct);
        var loginMode = ssl == false ? MySqlSslMode.None : MySqlSslMode.Preferred;

        // Steady state: warm up on one secret until it carries 100 unlabelled versions, then measure it.
        var steady = await CreateSecretsAsync(db, host, ssl, 1, ct);
        var marks = new List<(string Mark, long At)>();
        var engine = host.NewEngine(maxConcurrency: 4, stepBoundary: mark => marks.Add((mark, Stopwatch.GetTimestamp())));
        var warm = NewResult($"{label}, warm-up");
        for (var i = 0; i < Math.Max(warmup, 105); i++)
        {
            await RotateAsync(host, engine, marks, steady[0], loginMode, warm, ct);
        }
        var versions = (await host.Store.FindSecretAsync("us-east-1", Core.Storage.SecretLookup.ByArn(steady[0].Arn), ct))!.Versions.Count;

        var steadyResult = NewResult($"{label}, steady state ({versions} versions)");
        var cpuStart = CpuSnapshot.Take();
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < rotations; i++)
        {
            await RotateAsync(host, engine, marks, steady[0], loginMode, steadyResult, ct);
        }
        steadyResult = steadyResult with { Cpu = CpuSnapshot.Describe(cpuStart, CpuSnapshot.Take(), Stopwatch.GetElapsedTime(start)) };

        // Fresh: the first rotation of each of `rotations` new secrets (users and secrets made beforehand).
        var fresh = await CreateSecretsAsync(db, host, ssl, rotations, ct);
        var freshResult = NewResult($"{label}, first rotation of a fresh secret");
        cpuStart = CpuSnapshot.Take();
        start = Stopwatch.GetTimestamp();
        foreach (var secret in fresh)
        {
            await RotateAsync(host, engine, marks, secret, loginMode, freshResult, ct);
        }
        freshResult = freshResult with { Cpu = CpuSnapshot.Describe(cpuStart, CpuSnapshot.Take(), Stopwatch.GetElapsedTime(start)) };
        return [freshResult, steadyResult];
    }

    private sealed class TestSecret(string arn, string user, string password)
    {
        public string Arn { get; } = arn;
        public string User { get; } = user;
        public string Password { get; set; } = password;
    }

    private static Result NewResult(string label) =>
        new(label, Phases.ToDictionary(p => p, _ => new List<double>()), RotationStep.All.ToDictionary(s => s, _ => new List<double>()), "");

    private static async Task<List<TestSecret>> CreateSecretsAsync(MariaDb db, BenchHost host, bool? ssl, int count, CancellationToken ct)
    {
        var secrets = new List<TestSecret>();
        foreach (var (user, password) in await db.CreateUsersAsync(count, ct))
        {
            var value = new JsonObject { ["engine"] = "mariadb", ["host"] = MariaDb.Host, ["port"] = MariaDb.Port, ["username"] = user, ["password"] = password };
            if (ssl is { } flag)
            {
                value["ssl"] = flag;
            }
            var arn = (await host.Service.CreateSecretAsync(new CreateSecretRequest
            {
                Name = $"bench/single/{user}", SecretString = value.ToJsonString(), ClientRequestToken = Guid.NewGuid().ToString(),
            }, BenchHost.Caller, ct)).ARN;
            secrets.Add(new TestSecret(arn, user, password));
        }
        return secrets;
    }

    private static async Task RotateAsync(BenchHost host, RotationEngine engine, List<(string Mark, long At)> marks, TestSecret secret,
        MySqlSslMode loginMode, Result result, CancellationToken ct)
    {
        // An hour between rotations: AWS allows only 100 unlabelled versions younger than 24 hours.
        host.Clock.Advance(TimeSpan.FromHours(1));
        marks.Clear();
        host.Functions.Drain();
        var previousPassword = secret.Password;

        var store0 = host.Store.Counters;
        var t0 = Stopwatch.GetTimestamp();
        await host.Service.RotateSecretAsync(new RotateSecretRequest
        {
            SecretId = secret.Arn, ClientRequestToken = Guid.NewGuid().ToString(), RotationLambdaARN = FunctionArn,
        }, BenchHost.Caller, ct);
        var t1 = Stopwatch.GetTimestamp();
        var ran = await engine.RunOnceAsync(ct);
        var t2 = Stopwatch.GetTimestamp();
        var store = host.Store.Counters - store0;
        var current = await host.Service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = secret.Arn }, BenchHost.Caller, ct);
        secret.Password = JsonNode.Parse(current.SecretString!)!["password"]!.GetValue<string>();
        var loggedIn = await MariaDb.CanLoginAsync(secret.User, secret.Password, loginMode, ct);
        var t3 = Stopwatch.GetTimestamp();

        var described = await host.Service.DescribeSecretAsync(new SecretIdRequest { SecretId = secret.Arn }, BenchHost.Caller, ct);
        if (ran != 1 || described.TumblerRotationStatus is not null)
        {
            throw new InvalidOperationException($"A rotation of {secret.Arn} did not complete in one pass (ran {ran}): " +
                $"{described.TumblerRotationStatus?.State} {described.TumblerRotationStatus?.LastError}");
        }
        if (!loggedIn || secret.Password == previousPassword || await MariaDb.CanLoginAsync(secret.User, previousPassword, loginMode, ct))
        {
            throw new InvalidOperationException($"After a rotation of {secret.Arn} the new AWSCURRENT does not log in, or the old password still does.");
        }

        long At(string mark) => marks.Single(m => m.Mark == mark).At;
        var steps = RotationStep.All.ToDictionary(s => s, s => At($"{s}:after") - At($"{s}:before"));
        var phases = result.Phases;
        phases["RotateSecret call"].Add(Stats.Ms(t1 - t0));
        phases["engine: find due + claim + load secret"].Add(Stats.Ms(At("createSecret:before") - t1));
        foreach (var step in RotationStep.All)
        {
            phases[step].Add(Stats.Ms(steps[step]));
        }
        phases["engine: record each step + finish"].Add(Stats.Ms(t2 - At("createSecret:before") - steps.Values.Sum()));
        phases["engine pass"].Add(Stats.Ms(t2 - t1));
        phases["verify: GetSecretValue + login"].Add(Stats.Ms(t3 - t2));
        phases["total"].Add(Stats.Ms(t3 - t0));
        phases["store: durable writes, RotateSecret + engine pass (count)"].Add(store.Writes);
        phases["store: time in those writes"].Add(Stats.Ms(store.WriteTicks));
        phases["store: reads (count)"].Add(store.Reads);
        phases["store: time in reads"].Add(Stats.Ms(store.ReadTicks));
        foreach (var sample in host.Functions.Drain())
        {
            result.SecretsManagerMs[sample.Step].Add(Stats.Ms(sample.SecretsManagerTicks));
        }
    }

    /// <summary>One table: a row per phase, a column per case, "median (p95)" in ms; the Secrets Manager share of each step below.</summary>
    public static void Print(IReadOnlyList<Result> results, int rotations)
    {
        Console.WriteLine();
        Console.WriteLine($"### Benchmark 1: one single-user MariaDB rotation, end to end ({rotations} rotations per case; ms, median (p95))");
        Console.WriteLine();
        Console.WriteLine($"| phase | {string.Join(" | ", results.Select(r => r.Label))} |");
        Console.WriteLine($"|---|{string.Concat(results.Select(_ => "---:|"))}");
        foreach (var phase in Phases)
        {
            Console.WriteLine($"| {phase} | {string.Join(" | ", results.Select(r => Cell(r.Phases[phase])))} |");
        }
        foreach (var step in RotationStep.All)
        {
            Console.WriteLine($"| ... of {step}: Secrets Manager calls | {string.Join(" | ", results.Select(r => Cell(r.SecretsManagerMs[step])))} |");
        }
        Console.WriteLine($"| CPU (cores busy) | {string.Join(" | ", results.Select(r => r.Cpu))} |");
    }

    private static string Cell(List<double> ms) => $"{Stats.F(Stats.Median(ms), 1)} ({Stats.F(Stats.Percentile(ms, 95), 1)})";
}
