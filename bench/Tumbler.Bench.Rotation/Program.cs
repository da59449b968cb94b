using System.Globalization;
using System.Runtime.InteropServices;
using Tumbler.Bench.Rotation;

// Rotation benchmarks against the MariaDB of scripts/start-mariadb.sh. See bench/README.md.
//   dotnet run -c Release --project bench/Tumbler.Bench.Rotation [-- options]
//   --only single|micro|scheduler   run one benchmark (default: all three)
//   --rotations N                   benchmark 1: measured rotations per variant (default 50)
//   --warmup N                      benchmark 1: rotations of the steady-state secret before measuring (default and least 105)
//   --micro N                       building blocks: samples of each (default 50)
//   --secrets N                     benchmark 2: secrets to rotate (default 1000)
//   --concurrency A,B,...           benchmark 2: MaxConcurrency values, one round each (default 4,16)
//   --repeat N                      benchmark 2: rounds per MaxConcurrency value, interleaved (default 1)
//   --wait-quiet CORES              benchmark 2: before each round, wait until other processes use fewer cores than this
//   --plain                         benchmark 2: secrets with "ssl": false (default: no ssl member, so TLS)

var only = (string?)null;
var rotations = 50;
var warmup = 105;
var micro = 50;
var secrets = 1000;
IReadOnlyList<int> concurrencies = [4, 16];
var plain = false;
var repeat = 1;
double? quiet = null;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    int Number() => int.Parse(Next(), NumberStyles.None, CultureInfo.InvariantCulture);
    switch (args[i])
    {
        case "--only": only = Next(); break;
        case "--rotations": rotations = Number(); break;
        case "--warmup": warmup = Number(); break;
        case "--micro": micro = Number(); break;
        case "--secrets": secrets = Number(); break;
        case "--plain": plain = true; break;
        case "--repeat": repeat = Number(); break;
        case "--wait-quiet": quiet = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--concurrency":
            concurrencies = [.. Next().Split(',').Select(c => int.Parse(c, NumberStyles.None, CultureInfo.InvariantCulture))];
            break;
        default:
            Console.Error.WriteLine($"Unknown option {args[i]}; see the comment at the top of Program.cs.");
            return 2;
    }
}
if (only is not (null or "single" or "micro" or "scheduler"))
{
    Console.Error.WriteLine("--only takes single, micro or scheduler");
    return 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
var ct = cancel.Token;

var cpu = File.Exists("/proc/cpuinfo")
    ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
    : null;
var debian = File.Exists("/etc/debian_version") ? "Debian " + File.ReadAllText("/etc/debian_version").Trim() : RuntimeInformation.OSDescription;
Console.WriteLine($"## Rotation benchmarks, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
Console.WriteLine();
var memory = File.Exists("/proc/meminfo") ? File.ReadLines("/proc/meminfo").First().Split(':', 2)[1].Trim() : "?";
Console.WriteLine($"- machine: {Environment.ProcessorCount} cores ({cpu ?? RuntimeInformation.ProcessArchitecture.ToString()}), {memory} RAM, {debian}, " +
    $"kernel {Environment.OSVersion.Version}");
Console.WriteLine($"- runtime: {RuntimeInformation.FrameworkDescription}, {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")} GC");
Console.WriteLine($"- load average (1 min) at start: {Stats.LoadAverage()}");
Console.WriteLine($"- database: MariaDB {await MariaDb.VersionAsync(ct)} on {MariaDb.Host}:{MariaDb.Port} (same machine); store: SQLite in {Path.GetTempPath()}");

await using var db = new MariaDb();
if (only is null or "single")
{
    var results = new List<SingleRotationBench.Result>();
    results.AddRange(await SingleRotationBench.RunAsync(db, "TLS", ssl: null, warmup, rotations, ct));
    results.AddRange(await SingleRotationBench.RunAsync(db, "no TLS", ssl: false, warmup, rotations, ct));
    SingleRotationBench.Print(results, rotations);
}
if (only is null or "micro")
{
    await MicroBench.RunAsync(db, micro, ct);
}
if (only is null or "scheduler")
{
    await SchedulerBench.RunAsync(db, secrets, concurrencies, repeat, plain, quiet, ct);
}
return 0;
