using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Npgsql;
using Tumbler.Bench.Http;
using Tumbler.Client;
using Tumbler.Storage.Postgres;

// Usage (from the repository root; see bench/README.md):
//   dotnet run -c Release --project bench/Tumbler.Bench.Http [-- --only http|scale --seconds 5 ...]
if (args.Length >= 3 && args[0] == BareServer.Mode)
{
    return await BareServer.RunAsync(int.Parse(args[1], CultureInfo.InvariantCulture), args[2]);
}

var options = Options.Parse(args);
var tumblerDll = options.TumblerDll ?? Options.DefaultTumblerDll();
var work = Directory.CreateTempSubdirectory("tumbler-bench-http-");
var accessKeyId = "AKIA" + Convert.ToHexString(RandomNumberGenerator.GetBytes(8));
var secretAccessKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(30));
var load = new LoadClient(accessKeyId, secretAccessKey);
var report = new StringBuilder();
// The distinct calls of the last CallsOf, per operation: read once before a cell (see CellAsync).
var primers = new Dictionary<string, PreparedCall[]>();
Console.Error.WriteLine($"tumbler: {tumblerDll}; work directory {work.FullName}");
try
{
    report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"Tumbler.Bench.Http, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, .NET {Environment.Version}, ")
        + string.Create(CultureInfo.InvariantCulture, $"{options.Seconds} s per cell after {options.Warmup} s warm-up ({options.ServerWarmup} s per operation when a server starts), load average at start {LoadClient.LoadAverage()}"));
    report.AppendLine();
    if (options.Only is null or "http")
    {
        await HttpBenchAsync();
    }
    if (options.Only is null or "scale")
    {
        await ScaleBenchAsync();
    }
    if (options.Only is null or "stores")
    {
        await StoresBenchAsync();
    }
    Console.WriteLine(report.ToString());
    return 0;
}
finally
{
    if (!options.Keep)
    {
        work.Delete(recursive: true);
    }
}

async Task<string> NewDataDirAsync(string name, int secrets, int versions)
{
    var dataDir = Path.Combine(work.FullName, name);
    // The server makes the store, the root key and the default key on its first start.
    await using (var init = await ChildServer.StartTumblerAsync(tumblerDll, dataDir, accessKeyId, secretAccessKey))
    {
        await init.StopAsync();
    }
    var seeded = await Seeder.SeedAsync(dataDir, secrets, versions, options.ValueBytes);
    Console.Error.WriteLine($"seeded {secrets:N0} secrets × {versions} versions in {seeded.TotalSeconds:F1} s");
    return dataDir;
}

// Calls of each operation. GetSecretValue and DescribeSecret go to a fixed random set of secrets (signed
// ahead); PutSecretValue writes a new 1 KiB value with a new ClientRequestToken to the next secret in turn
// (signed per request, as its body changes), so no secret nears the 100-versions-a-day quota.
Func<PreparedCall> CallsOf(string operation, Uri endpoint, int secrets)
{
    var random = new Random(42);
    switch (operation)
    {
        case "GetSecretValue" or "DescribeSecret":
            var pool = Enumerable.Range(0, Math.Min(secrets, options.Targets))
                .Select(_ => Sign(new PreparedCall(operation, Encoding.UTF8.GetBytes(LoadClient.Json(("SecretId", Seeder.NameOf(random.Next(secrets))))))))
                .ToArray();
            primers[operation] = pool;
            return () => pool[Random.Shared.Next(pool.Length)];
        case "ListSecrets":
            var list = Sign(new PreparedCall(operation, Encoding.UTF8.GetBytes(LoadClient.Json(("MaxResults", 100))))) ;
            return () => list;
        case "PutSecretValue":
            var turn = 0;
            return () =>
            {
                var i = Interlocked.Increment(ref turn) % secrets;
                var body = LoadClient.Json(("SecretId", Seeder.NameOf(i)), ("SecretString", Seeder.ValueOf(i, turn, options.ValueBytes)),
                    ("ClientRequestToken", Guid.NewGuid().ToString()));
                return new PreparedCall(operation, Encoding.UTF8.GetBytes(body));
            };
        default:
            throw new ArgumentException($"unknown operation {operation}");
    }

    PreparedCall Sign(PreparedCall call) => options.SignEach ? call : load.Presign(endpoint, call);
}

// Before the first cell: every operation for a few seconds, unmeasured, so that tiered JIT has compiled the
// hot paths of both servers (otherwise the first cells pay for it).
async Task WarmUpAsync(ChildServer server, IEnumerable<string> operations, int secrets)
{
    foreach (var operation in operations)
    {
        var next = CallsOf(operation, server.Endpoint, secrets);
        primers.Remove(operation);
        await load.RunAsync(server.Endpoint, next, 8, TimeSpan.Zero, TimeSpan.FromSeconds(options.ServerWarmup), null);
    }
}

async Task<CellResult> CellAsync(ChildServer server, string operation, int connections, int secrets, bool measureCpu)
{
    var next = CallsOf(operation, server.Endpoint, secrets);
    if (primers.Remove(operation, out var distinct))
    {
        // The first read of a secret in a day records its last-access date (a durable write); read each target
        // once first, so the cell measures the steady state of reads and not a burst of those writes.
        await load.PrimeAsync(server.Endpoint, distinct);
    }
    var result = await load.RunAsync(server.Endpoint, next, connections, TimeSpan.FromSeconds(options.Warmup), TimeSpan.FromSeconds(options.Seconds),
        measureCpu ? server : null);
    Console.Error.WriteLine($"  {operation} × {connections}: {result.RequestsPerSecond:F0} req/s, p50 {result.P50Ms:F2} ms, p99 {result.P99Ms:F2} ms, "
        + $"{result.Errors} errors, load {result.LoadAverage}{(result.FirstError is { } e ? ", first error " + e : "")}");
    return result;
}

// An IAM user whose inline policy allows Secrets Manager from loopback only (an application's usual setup:
// an identity policy with a source-network condition), so every request is decided by policy, as root's is not.
async Task<LoadClient> UserLoadClientAsync(Uri endpoint)
{
    using var admin = new JsonApiClient(endpoint, new AwsCredentials(accessKeyId, secretAccessKey), Seeder.Region);
    await admin.CallAsync("TumblerIAM.CreateUser", "iam", Encoding.UTF8.GetBytes("""{"UserName":"bench"}"""));
    var policy = """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}""";
    await admin.CallAsync("TumblerIAM.PutUserPolicy", "iam",
        JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["UserName"] = "bench", ["PolicyName"] = "app", ["PolicyDocument"] = policy }));
    var key = (await admin.CallAsync("TumblerIAM.CreateAccessKey", "iam", Encoding.UTF8.GetBytes("""{"UserName":"bench"}"""))).GetProperty("AccessKey");
    return new LoadClient(key.GetProperty("AccessKeyId").GetString()!, key.GetProperty("SecretAccessKey").GetString()!);
}

async Task HttpBenchAsync()
{
    var dataDir = await NewDataDirAsync("http", options.Secrets, 1);
    await using var tumbler = await ChildServer.StartTumblerAsync(tumblerDll, dataDir, accessKeyId, secretAccessKey);
    if (options.Caller == "user")
    {
        load = await UserLoadClientAsync(tumbler.Endpoint);
    }
    // Record tumbler's answer to each operation: the bare server sends exactly these bytes.
    var responses = Directory.CreateDirectory(Path.Combine(work.FullName, "responses")).FullName;
    foreach (var operation in options.Operations)
    {
        var (status, body, contentType) = await load.SendOnceAsync(tumbler.Endpoint, CallsOf(operation, tumbler.Endpoint, options.Secrets)());
        if (status != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"{operation} answered {(int)status}: {Encoding.UTF8.GetString(body)}");
        }
        await File.WriteAllBytesAsync(Path.Combine(responses, operation + ".body"), body);
        await File.WriteAllTextAsync(Path.Combine(responses, operation + BareServer.ContentTypeSuffix), contentType);
        Console.Error.WriteLine($"{operation}: response {body.Length} bytes");
    }
    await using var bare = await ChildServer.StartBareAsync(responses);
    await WarmUpAsync(tumbler, options.Operations, options.Secrets);
    await WarmUpAsync(bare, options.Operations, options.Secrets);

    report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"HTTP/1.1 on loopback, {options.Secrets:N0} secrets of {options.ValueBytes} B, ")
        + (options.Caller == "user" ? "as an IAM user allowed by an identity policy with an aws:SourceIp condition, " : "as root, ")
        + (options.SignEach ? "every request signed when sent" : "GetSecretValue/DescribeSecret/ListSecrets signed ahead, PutSecretValue signed per request") + ":");
    report.AppendLine();
    report.AppendLine("| operation | conns | tumbler req/s | p50 ms | p99 ms | bare req/s | p50 ms | p99 ms | ratio | tumbler CPU µs/req | load avg | errors |");
    report.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    var verdicts = new List<string>();
    foreach (var operation in options.Operations)
    {
        foreach (var connections in options.Connections)
        {
            // Back to back, so both see the same machine.
            var t = await CellAsync(tumbler, operation, connections, options.Secrets, measureCpu: true);
            var b = await CellAsync(bare, operation, connections, options.Secrets, measureCpu: false);
            var ratio = t.RequestsPerSecond / b.RequestsPerSecond;
            report.AppendLine(CultureInfo.InvariantCulture,
                $"| {operation} | {connections} | {t.RequestsPerSecond:F0} | {t.P50Ms:F2} | {t.P99Ms:F2} | {b.RequestsPerSecond:F0} | {b.P50Ms:F2} | {b.P99Ms:F2} | {ratio:F2} | {t.ServerCpuMicros:F0} | {t.LoadAverage} / {b.LoadAverage} | {t.Errors + b.Errors} |");
            if (connections == 64)
            {
                verdicts.Add($"{operation}: ratio at 64 connections {ratio:F2} (target ≥ 0.5: {(ratio >= 0.5 ? "met" : "MISSED")})");
            }
            if (connections == 8)
            {
                verdicts.Add($"{operation}: p99 at 8 connections {t.P99Ms:F2} ms (target < 5 ms: {(t.P99Ms < 5 ? "met" : "MISSED")})");
            }
        }
    }
    report.AppendLine();
    foreach (var verdict in verdicts)
    {
        report.AppendLine("- " + verdict);
    }
    report.AppendLine();
    load = new LoadClient(accessKeyId, secretAccessKey); // the other tables' servers know root only
}

async Task ScaleBenchAsync()
{
    report.AppendLine(CultureInfo.InvariantCulture, $"Scale: {options.ScaleVersions} versions per secret, {options.ValueBytes} B values, {options.ScaleConnections} connections:");
    report.AppendLine();
    report.AppendLine("| secrets | seed s | tumbler.db MiB | startup s, median (all) | RSS after start MiB | GetSecretValue req/s | p50 ms | p99 ms | ListSecrets req/s | p50 ms | p99 ms | peak RSS MiB | load avg |");
    report.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    var rows = new List<(int Secrets, double Startup, CellResult Get, CellResult List, double PeakRss)>();
    foreach (var secrets in options.ScaleSizes)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var dataDir = await NewDataDirAsync($"scale-{secrets}", secrets, options.ScaleVersions);
        var seedSeconds = clock.Elapsed.TotalSeconds;
        var dbMiB = new FileInfo(Path.Combine(dataDir, "tumbler.db")).Length / 1048576.0;
        // Startup: process start to /health/ready answering, over a few starts (the first after seeding may find a cold cache).
        var startups = new List<double>();
        for (var i = 1; i < options.Starts; i++)
        {
            await using var once = await ChildServer.StartTumblerAsync(tumblerDll, dataDir, accessKeyId, secretAccessKey);
            startups.Add(once.StartupTime.TotalSeconds);
        }
        await using var tumbler = await ChildServer.StartTumblerAsync(tumblerDll, dataDir, accessKeyId, secretAccessKey);
        startups.Add(tumbler.StartupTime.TotalSeconds);
        startups.Sort();
        var startup = startups[startups.Count / 2];
        var startupText = string.Join(" ", startups.Select(t => t.ToString("F2", CultureInfo.InvariantCulture)));
        var rssAfterStart = tumbler.RssMiB();
        await WarmUpAsync(tumbler, ["GetSecretValue", "ListSecrets"], secrets);
        var get = await CellAsync(tumbler, "GetSecretValue", options.ScaleConnections, secrets, measureCpu: true);
        var list = await CellAsync(tumbler, "ListSecrets", options.ScaleConnections, secrets, measureCpu: true);
        var peak = tumbler.PeakRssMiB();
        report.AppendLine(CultureInfo.InvariantCulture,
            $"| {secrets:N0} | {seedSeconds:F0} | {dbMiB:F0} | {startup:F2} ({startupText}) | {rssAfterStart:F0} | {get.RequestsPerSecond:F0} | {get.P50Ms:F2} | {get.P99Ms:F2} | {list.RequestsPerSecond:F0} | {list.P50Ms:F2} | {list.P99Ms:F2} | {peak:F0} | {get.LoadAverage} / {list.LoadAverage} |");
        rows.Add((secrets, startup, get, list, peak));
        await tumbler.StopAsync();
        if (!options.Keep)
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
    report.AppendLine();
    var small = rows[0];
    foreach (var large in rows.Skip(1))
    {
        // How many times slower the large store is (above 1: slower), by throughput and by p99.
        var getSlower = small.Get.RequestsPerSecond / large.Get.RequestsPerSecond;
        var listSlower = small.List.RequestsPerSecond / large.List.RequestsPerSecond;
        var worst = new[] { getSlower, listSlower, large.Get.P99Ms / small.Get.P99Ms, large.List.P99Ms / small.List.P99Ms }.Max();
        report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"- {large.Secrets:N0} vs {small.Secrets:N0} secrets, times slower (throughput, p99): ")
            + string.Create(CultureInfo.InvariantCulture, $"GetSecretValue {getSlower:F2}, {large.Get.P99Ms / small.Get.P99Ms:F2}; ListSecrets {listSlower:F2}, {large.List.P99Ms / small.List.P99Ms:F2} ")
            + string.Create(CultureInfo.InvariantCulture, $"(target within 2×: {(worst <= 2 ? "met" : "MISSED")})"));
        report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"- {large.Secrets:N0} secrets: peak RSS {large.PeakRss:F0} MiB (target < 300 MB: {(large.PeakRss * 1.048576 < 300 ? "met" : "MISSED")}), ")
            + string.Create(CultureInfo.InvariantCulture, $"median startup {large.Startup:F2} s (target < 2 s: {(large.Startup < 2 ? "met" : "MISSED")})"));
    }
    report.AppendLine();
}

// GetSecretValue against the embedded SQLite store, one node on a PostgreSQL store, and two nodes sharing that store
// with the connections split between them, in one run on one machine.
async Task StoresBenchAsync()
{
    var admin = new NpgsqlConnectionStringBuilder(PostgresSecretStore.ConnectionStringFrom(options.Postgres)) { Database = "postgres", Pooling = false };
    var database = "tumbler_bench_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
    try
    {
        await AdminAsync($"CREATE DATABASE {database}");
    }
    catch (NpgsqlException e)
    {
        report.AppendLine($"Stores: skipped, PostgreSQL not reachable at {admin.Host}:{admin.Port} ({e.Message}); give --postgres URL.");
        report.AppendLine();
        return;
    }
    // From the given URL, not from the admin string above: the nodes pool their connections as they do by default.
    var store = new NpgsqlConnectionStringBuilder(PostgresSecretStore.ConnectionStringFrom(options.Postgres)) { Database = database }.ConnectionString;
    var rootKey = RandomNumberGenerator.GetBytes(32);
    var shared = new Dictionary<string, string> { ["TUMBLER_STORE"] = store, ["TUMBLER_ROOT_KEY"] = Convert.ToBase64String(rootKey) };
    const string operation = "GetSecretValue";
    // Signed when sent, in all three setups alike: a request signed ahead names one node's host:port.
    var random = new Random(42);
    var pool = Enumerable.Range(0, Math.Min(options.StoreSecrets, options.Targets))
        .Select(_ => new PreparedCall(operation, Encoding.UTF8.GetBytes(LoadClient.Json(("SecretId", Seeder.NameOf(random.Next(options.StoreSecrets)))))))
        .ToArray();
    var rows = new List<(string Setup, int Connections, CellResult Result)>();
    async Task MeasureAsync(string setup, IReadOnlyList<ChildServer> nodes)
    {
        var endpoints = nodes.Select(n => n.Endpoint).ToList();
        foreach (var node in nodes)
        {
            await load.PrimeAsync(node.Endpoint, pool); // first reads of the day record last-access dates: not the steady state
            // Longer than the HTTP table's warm-up: at PostgreSQL's rate, tiered JIT is still compiling the read path
            // after 2 s (a quarter of the node's CPU went to the JIT in a profile of that cell).
            await load.RunAsync(node.Endpoint, () => pool[Random.Shared.Next(pool.Length)], 8, TimeSpan.Zero, TimeSpan.FromSeconds(options.StoreWarmup), null);
        }
        foreach (var connections in options.StoreConnections)
        {
            var result = await load.RunAsync(endpoints, () => pool[Random.Shared.Next(pool.Length)], connections,
                TimeSpan.FromSeconds(options.Warmup), TimeSpan.FromSeconds(options.Seconds), nodes.Count == 1 ? nodes[0] : null);
            Console.Error.WriteLine($"  {setup} × {connections}: {result.RequestsPerSecond:F0} req/s, p50 {result.P50Ms:F2} ms, p99 {result.P99Ms:F2} ms, {result.Errors} errors");
            rows.Add((setup, connections, result));
        }
    }
    try
    {
        var sqliteDir = await NewDataDirAsync("stores-sqlite", options.StoreSecrets, 1);
        await using (var sqlite = await ChildServer.StartTumblerAsync(tumblerDll, sqliteDir, accessKeyId, secretAccessKey))
        {
            await MeasureAsync("SQLite, 1 node", [sqlite]);
        }

        // The first start makes the schema and the default key; the seed goes straight into the database, as for SQLite.
        await using (var init = await ChildServer.StartTumblerAsync(tumblerDll, Path.Combine(work.FullName, "stores-pg-a"), accessKeyId, secretAccessKey, shared))
        {
            await init.StopAsync();
        }
        await using (var seedStore = new PostgresSecretStore(store))
        {
            var seeded = await Seeder.SeedAsync(seedStore, rootKey, options.StoreSecrets, 1, options.ValueBytes);
            Console.Error.WriteLine($"seeded {options.StoreSecrets:N0} secrets into PostgreSQL in {seeded.TotalSeconds:F1} s");
        }
        await using var nodeA = await ChildServer.StartTumblerAsync(tumblerDll, Path.Combine(work.FullName, "stores-pg-a"), accessKeyId, secretAccessKey, shared);
        await MeasureAsync("PostgreSQL, 1 node", [nodeA]);
        await using var nodeB = await ChildServer.StartTumblerAsync(tumblerDll, Path.Combine(work.FullName, "stores-pg-b"), accessKeyId, secretAccessKey, shared);
        await MeasureAsync("PostgreSQL, 2 nodes", [nodeA, nodeB]);
    }
    finally
    {
        await AdminAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
    }

    report.AppendLine(CultureInfo.InvariantCulture, $"Stores: {operation} of {options.StoreSecrets:N0} secrets of {options.ValueBytes} B; PostgreSQL {admin.Host}:{admin.Port} on this machine:");
    report.AppendLine();
    report.AppendLine("| store | conns | req/s | p50 ms | p99 ms | server CPU µs/req | load avg | errors |");
    report.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
    foreach (var (setup, connections, r) in rows)
    {
        report.AppendLine(CultureInfo.InvariantCulture,
            $"| {setup} | {connections} | {r.RequestsPerSecond:F0} | {r.P50Ms:F2} | {r.P99Ms:F2} | {(r.ServerCpuMicros is { } cpu ? cpu.ToString("F0", CultureInfo.InvariantCulture) : "")} | {r.LoadAverage} | {r.Errors} |");
    }
    report.AppendLine();

    async Task AdminAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(admin.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}

internal sealed record Options
{
    public string? Only { get; init; }
    public double Seconds { get; init; } = 5;
    public double Warmup { get; init; } = 1;
    public int[] Connections { get; init; } = [1, 8, 64];
    public string[] Operations { get; init; } = ["GetSecretValue", "DescribeSecret", "ListSecrets", "PutSecretValue"];
    public int Secrets { get; init; } = 10_000;
    public int Targets { get; init; } = 1_000;
    public int ValueBytes { get; init; } = 1024;
    public int[] ScaleSizes { get; init; } = [1_000, 100_000];
    public int ScaleVersions { get; init; } = 5;
    public int ScaleConnections { get; init; } = 8;
    public int Starts { get; init; } = 3;
    public double ServerWarmup { get; init; } = 5;
    public bool SignEach { get; init; }
    /// <summary>HTTP table: who signs the requests, "root" or "user" (an IAM user with a policy).</summary>
    public string Caller { get; init; } = "root";
    public bool Keep { get; init; }
    public string? TumblerDll { get; init; }
    /// <summary>A PostgreSQL server the stores benchmark may create a database on (default: the test server of scripts/start-postgres.sh).</summary>
    public string Postgres { get; init; } = Environment.GetEnvironmentVariable("TUMBLER_BENCH_POSTGRES") is { Length: > 0 } url ? url
        : "postgres://tumbler_admin:admin-pass@127.0.0.1:15432/postgres";
    public int StoreSecrets { get; init; } = 1_000;
    public int[] StoreConnections { get; init; } = [8, 64];
    public double StoreWarmup { get; init; } = 15;

    public static Options Parse(string[] args)
    {
        var options = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int[] Ints() => [.. Value().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))];
            options = args[i] switch
            {
                "--only" => options with { Only = Value() is var only && only is "http" or "scale" or "stores" ? only : throw new ArgumentException("--only http|scale|stores") },
                "--postgres" => options with { Postgres = Value() },
                "--store-secrets" => options with { StoreSecrets = Ints()[0] },
                "--store-connections" => options with { StoreConnections = Ints() },
                "--store-warmup" => options with { StoreWarmup = double.Parse(Value(), CultureInfo.InvariantCulture) },
                "--seconds" => options with { Seconds = double.Parse(Value(), CultureInfo.InvariantCulture) },
                "--warmup" => options with { Warmup = double.Parse(Value(), CultureInfo.InvariantCulture) },
                "--connections" => options with { Connections = Ints() },
                "--operations" => options with { Operations = Value().Split(',') },
                "--secrets" => options with { Secrets = Ints()[0] },
                "--targets" => options with { Targets = Ints()[0] },
                "--value-bytes" => options with { ValueBytes = Ints()[0] },
                "--scale-sizes" => options with { ScaleSizes = Ints() },
                "--scale-versions" => options with { ScaleVersions = Ints()[0] },
                "--scale-connections" => options with { ScaleConnections = Ints()[0] },
                "--server-warmup" => options with { ServerWarmup = double.Parse(Value(), CultureInfo.InvariantCulture) },
                "--starts" => options with { Starts = Math.Max(1, Ints()[0]) },
                "--sign-each" => options with { SignEach = true },
                "--caller" => options with { Caller = Value() is var caller && caller is "root" or "user" ? caller : throw new ArgumentException("--caller root|user") },
                "--keep" => options with { Keep = true },
                "--tumbler-dll" => options with { TumblerDll = Value() },
                _ => throw new ArgumentException($"unknown option {args[i]} (see bench/README.md)"),
            };
        }
        return options;
    }

    /// <summary>The tumbler.dll built with this program's configuration (the project reference builds it first).</summary>
    public static string DefaultTumblerDll()
    {
        // bench/Tumbler.Bench.Http/bin/<Configuration>/<tfm>/
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = baseDir.Name;
        var configuration = baseDir.Parent!.Name;
        for (var dir = baseDir; dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Tumbler.slnx")))
            {
                return Path.Combine(dir.FullName, "src", "Tumbler.Cli", "bin", configuration, tfm, "tumbler.dll");
            }
        }
        throw new InvalidOperationException("Tumbler.slnx not found above " + AppContext.BaseDirectory + "; pass --tumbler-dll");
    }
}
