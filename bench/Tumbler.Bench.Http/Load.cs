using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Tumbler.Client;

namespace Tumbler.Bench.Http;

/// <summary>One Secrets Manager call ready to send: its body, and its signature when signed ahead.</summary>
internal sealed record PreparedCall(string Operation, byte[] Body, string? AmzDate = null, string? Authorization = null);

/// <summary>What one cell (server × operation × connections) measured.</summary>
internal sealed record CellResult(long Requests, long Errors, TimeSpan Elapsed, double P50Ms, double P99Ms, TimeSpan? ServerCpu, string LoadAverage, string? FirstError)
{
    public double RequestsPerSecond => Requests / Elapsed.TotalSeconds;
    /// <summary>Server CPU per successful request, in microseconds (null for a server whose CPU is not read).</summary>
    public double? ServerCpuMicros => ServerCpu is { } cpu && Requests > 0 ? cpu.TotalMicroseconds / Requests : null;
}

/// <summary>
/// Closed-loop load: N workers over one HttpClient limited to N HTTP/1.1 connections, each sending its
/// next request as soon as the previous answer is read. Latency is send-to-last-byte of each request.
/// </summary>
internal sealed class LoadClient(string accessKeyId, string secretAccessKey)
{
    private static readonly MediaTypeHeaderValue AmzJson = new("application/x-amz-json-1.1");

    /// <summary>Signs the call now (valid 15 minutes) so the loop only copies headers.</summary>
    public PreparedCall Presign(Uri endpoint, PreparedCall call)
    {
        using var request = Build(endpoint, call);
        SigV4Signer.Sign(request, call.Body, accessKeyId, secretAccessKey, Seeder.Region, DateTimeOffset.UtcNow);
        return call with
        {
            AmzDate = request.Headers.GetValues("X-Amz-Date").Single(),
            Authorization = request.Headers.GetValues("Authorization").Single(),
        };
    }

    private HttpRequestMessage Build(Uri endpoint, PreparedCall call)
    {
        var content = new ByteArrayContent(call.Body);
        content.Headers.ContentType = AmzJson;
        var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = content, Version = HttpVersion.Version11 };
        request.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager." + call.Operation);
        if (call.Authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Amz-Date", call.AmzDate);
            request.Headers.TryAddWithoutValidation("Authorization", call.Authorization);
        }
        else
        {
            SigV4Signer.Sign(request, call.Body, accessKeyId, secretAccessKey, Seeder.Region, DateTimeOffset.UtcNow);
        }
        return request;
    }

    /// <summary>Sends one call and returns the status and body (for recording the bare server's answers and checking setup).</summary>
    public async Task<(HttpStatusCode Status, byte[] Body, string ContentType)> SendOnceAsync(Uri endpoint, PreparedCall call)
    {
        using var client = new HttpClient();
        using var request = Build(endpoint, call);
        using var response = await client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsByteArrayAsync(), response.Content.Headers.ContentType?.ToString() ?? "");
    }

    /// <summary>Sends each call once, 8 at a time, and fails unless every one answers 200.</summary>
    public async Task PrimeAsync(Uri endpoint, IReadOnlyList<PreparedCall> calls)
    {
        using var client = new HttpClient();
        await Parallel.ForEachAsync(calls, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (call, ct) =>
        {
            using var request = Build(endpoint, call);
            using var response = await client.SendAsync(request, ct);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new InvalidOperationException($"{call.Operation} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
            }
        });
    }

    /// <summary>
    /// Runs <paramref name="connections"/> workers for <paramref name="warmup"/> (not counted: opens the
    /// connections, settles tiered JIT) and then <paramref name="duration"/>. <paramref name="next"/> gives
    /// each worker its next call (it may sign it per request).
    /// </summary>
    public Task<CellResult> RunAsync(Uri endpoint, Func<PreparedCall> next, int connections, TimeSpan warmup, TimeSpan duration, ChildServer? measuredServer) =>
        RunAsync([endpoint], next, connections, warmup, duration, measuredServer);

    /// <summary>As above, the workers spread evenly over <paramref name="endpoints"/> (nodes sharing one store).</summary>
    public async Task<CellResult> RunAsync(IReadOnlyList<Uri> endpoints, Func<PreparedCall> next, int connections, TimeSpan warmup, TimeSpan duration,
        ChildServer? measuredServer)
    {
        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        var total = Stopwatch.StartNew();
        var measureFrom = warmup;
        var stopAt = warmup + duration;
        var measuring = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        TimeSpan? cpuAtStart = null;
        var cpuTimer = Task.Run(async () =>
        {
            await Task.Delay(measureFrom);
            cpuAtStart = measuredServer?.CpuTime();
            measuring.TrySetResult();
        });
        string? firstError = null;
        var workers = Enumerable.Range(0, connections).Select(worker => Task.Run(async () =>
        {
            var endpoint = endpoints[worker % endpoints.Count];
            var latencies = new List<long>(capacity: 4096);
            long errors = 0;
            while (true)
            {
                var started = total.Elapsed;
                if (started >= stopAt)
                {
                    break;
                }
                using var request = Build(endpoint, next());
                var t0 = Stopwatch.GetTimestamp();
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead);
                var elapsed = Stopwatch.GetTimestamp() - t0;
                if (started < measureFrom)
                {
                    continue;
                }
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    latencies.Add(elapsed);
                }
                else
                {
                    errors++;
                    var text = $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}";
                    Interlocked.CompareExchange(ref firstError, text, null);
                }
            }
            return (latencies, errors);
        })).ToList();
        var results = await Task.WhenAll(workers);
        await cpuTimer;
        var cpu = measuredServer is not null && cpuAtStart is { } c0 ? measuredServer.CpuTime() - c0 : (TimeSpan?)null;
        var elapsedMeasured = total.Elapsed - measureFrom; // workers finish their last request after stopAt
        var all = results.SelectMany(r => r.latencies).ToArray();
        Array.Sort(all);
        return new CellResult(all.Length, results.Sum(r => r.errors), elapsedMeasured,
            Percentile(all, 0.50), Percentile(all, 0.99), cpu, LoadAverage(), firstError);
    }

    private static double Percentile(long[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)] * 1000.0 / Stopwatch.Frequency;

    /// <summary>The 1-minute load average (others' builds share this machine).</summary>
    public static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

    public static string Json(params (string Key, object Value)[] members)
    {
        var text = new StringBuilder("{");
        foreach (var (key, value) in members)
        {
            if (text.Length > 1)
            {
                text.Append(',');
            }
            text.Append(CultureInfo.InvariantCulture, $"\"{key}\":");
            text.Append(value is string s ? System.Text.Json.JsonSerializer.Serialize(s) : Convert.ToString(value, CultureInfo.InvariantCulture));
        }
        return text.Append('}').ToString();
    }
}
