using System.Diagnostics;
using System.Globalization;
using Tumbler.Agent;
using Tumbler.Client;
using Tumbler.Client.Model;
using Tumbler.Server.Hosting;

// GetSecretValue of one secret, straight to a Tumbler server (signed, decrypted, audited) vs through the
// agent's cache, in one process on loopback. See bench/README.md.
//   dotnet run -c Release --project bench/Tumbler.Bench.Agent [-- --seconds 10 --concurrency 8]
var seconds = 10;
var concurrency = 8;
for (var i = 0; i < args.Length; i++)
{
    int Number() => int.Parse(args[++i], NumberStyles.None, CultureInfo.InvariantCulture);
    switch (args[i])
    {
        case "--seconds": seconds = Number(); break;
        case "--concurrency": concurrency = Number(); break;
        default: throw new ArgumentException($"unknown option {args[i]}");
    }
}

var dataDir = Directory.CreateTempSubdirectory("tumbler-bench-agent-").FullName;
try
{
    await using var server = await TumblerServer.StartAsync(new ServerOptions { DataDirectory = dataDir, Listen = ["127.0.0.1:0"] }, TextWriter.Null, default);
    using var client = new SecretsManagerClient(server.Endpoint, new AwsCredentials(server.Root.AccessKeyId, server.Root.SecretAccessKey), "us-east-1");
    await client.CreateSecretAsync(new CreateSecretRequest
    {
        Name = "prod/app/db",
        SecretString = """{"engine":"mysql","host":"127.0.0.1","username":"app","password":"0123456789abcdef0123456789abcdef"}""",
    });
    await using var agent = await AgentHost.StartAsync(new AgentOptions { Port = 0, Token = "bench-token" }, client);
    using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency });
    var agentUri = new Uri(agent.Endpoint, "/secretsmanager/get?secretId=prod%2Fapp%2Fdb");

    async Task Direct() => await client.GetSecretValueAsync(new GetSecretValueRequest { SecretId = "prod/app/db" });
    async Task ViaAgent()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, agentUri);
        request.Headers.Add("X-Aws-Parameters-Secrets-Token", "bench-token");
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        await response.Content.ReadAsByteArrayAsync();
    }

    Console.WriteLine($"{Environment.ProcessorCount} cores, {RuntimeInformationText()}, {concurrency} concurrent callers, {seconds} s per case after 2 s warm-up");
    Console.WriteLine("| path | requests/s | p50 ms | p99 ms | requests |");
    Console.WriteLine("|---|---:|---:|---:|---:|");
    foreach (var (name, call) in new (string, Func<Task>)[] { ("straight to the server", Direct), ("through the agent (cache hit)", ViaAgent) })
    {
        await RunAsync(call, concurrency, TimeSpan.FromSeconds(2));
        var (count, latencies, wall) = await RunAsync(call, concurrency, TimeSpan.FromSeconds(seconds));
        latencies.Sort();
        double P(double p) => latencies[Math.Clamp((int)Math.Ceiling(p / 100 * latencies.Count) - 1, 0, latencies.Count - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {count / wall.TotalSeconds:F0} | {P(50):F3} | {P(99):F3} | {count} |"));
    }
}
finally
{
    Directory.Delete(dataDir, recursive: true);
}

static async Task<(int Count, List<double> LatenciesMs, TimeSpan Wall)> RunAsync(Func<Task> call, int concurrency, TimeSpan duration)
{
    var until = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    var started = Stopwatch.GetTimestamp();
    var perWorker = await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
    {
        var latencies = new List<double>();
        while (Stopwatch.GetTimestamp() < until)
        {
            var t0 = Stopwatch.GetTimestamp();
            await call();
            latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        return latencies;
    })));
    var wall = Stopwatch.GetElapsedTime(started);
    var all = perWorker.SelectMany(l => l).ToList();
    return (all.Count, all, wall);
}

static string RuntimeInformationText() => System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription;
