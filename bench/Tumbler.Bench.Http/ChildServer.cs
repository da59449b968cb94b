using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Tumbler.Bench.Http;

/// <summary>
/// A server in its own process on a loopback port: `tumbler serve` or this program's bare Kestrel mode.
/// The load client never shares a process with the server it measures.
/// </summary>
internal sealed class ChildServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    public Uri Endpoint { get; }
    public int ProcessId => _process.Id;
    /// <summary>From Process.Start until GET /health/ready (or the bare server's /) answered 200.</summary>
    public TimeSpan StartupTime { get; private set; }

    private ChildServer(Process process, Uri endpoint)
    {
        _process = process;
        Endpoint = endpoint;
    }

    public string Output { get { lock (_output) { return _output.ToString(); } } }

    /// <summary>
    /// Starts <c>tumbler serve</c> on DATA_DIR with the given root credentials (SQLite store, file audit: the defaults), and
    /// any further TUMBLER_* settings (TUMBLER_STORE and TUMBLER_ROOT_KEY for a node of a shared PostgreSQL store).
    /// </summary>
    public static Task<ChildServer> StartTumblerAsync(string tumblerDll, string dataDir, string accessKeyId, string secretAccessKey,
        IReadOnlyDictionary<string, string>? settings = null) =>
        StartAsync(port => [tumblerDll, "serve", "--data-dir", dataDir, "--listen", $"127.0.0.1:{port}"],
            new Dictionary<string, string>(settings ?? new Dictionary<string, string>())
            {
                ["TUMBLER_ROOT_ACCESS_KEY_ID"] = accessKeyId,
                ["TUMBLER_ROOT_SECRET_ACCESS_KEY"] = secretAccessKey,
            }, "/health/ready");

    /// <summary>Starts this program in bare mode: Kestrel answering POST / with the recorded bytes of each X-Amz-Target.</summary>
    public static Task<ChildServer> StartBareAsync(string responsesDir) =>
        StartAsync(port => [typeof(ChildServer).Assembly.Location, BareServer.Mode, port.ToString(CultureInfo.InvariantCulture), responsesDir],
            new Dictionary<string, string>(), "/health/ready");

    private static async Task<ChildServer> StartAsync(Func<int, string[]> args, Dictionary<string, string> environment, string readyPath)
    {
        var port = FreeLoopbackPort();
        var psi = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var arg in args(port))
        {
            psi.ArgumentList.Add(arg);
        }
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("TUMBLER_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }
        foreach (var (key, value) in environment)
        {
            psi.Environment[key] = value;
        }
        var endpoint = new Uri($"http://127.0.0.1:{port}/");
        var clock = Stopwatch.StartNew();
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + DotnetHost);
        var server = new ChildServer(process, endpoint);
        process.StandardInput.Close();
        _ = server.PumpAsync(process.StandardOutput);
        _ = server.PumpAsync(process.StandardError);
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = TimeSpan.FromSeconds(60);
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"server exited with {process.ExitCode}:\n{server.Output}");
            }
            try
            {
                using var response = await probe.GetAsync(new Uri(endpoint, readyPath));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    server.StartupTime = clock.Elapsed;
                    return server;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (TaskCanceledException)
            {
                // busy starting
            }
            if (clock.Elapsed > deadline)
            {
                await server.DisposeAsync();
                throw new TimeoutException($"server not ready after {deadline.TotalSeconds} s:\n{server.Output}");
            }
            await Task.Delay(5);
        }
    }

    /// <summary>Peak resident set size (VmHWM) in MiB.</summary>
    public double PeakRssMiB() => StatusKiB("VmHWM:") / 1024.0;

    /// <summary>Current resident set size (VmRSS) in MiB.</summary>
    public double RssMiB() => StatusKiB("VmRSS:") / 1024.0;

    private long StatusKiB(string field)
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }

    /// <summary>User + system CPU time the server process has used so far.</summary>
    public TimeSpan CpuTime()
    {
        // /proc/PID/stat: fields 14 and 15 (utime, stime) in clock ticks, counted after the ")" that ends the command name.
        var stat = File.ReadAllText($"/proc/{_process.Id}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / (double)ClockTicksPerSecond);
    }

    private static readonly long ClockTicksPerSecond = sysconf(2) is var hz and > 0 ? hz : 100; // _SC_CLK_TCK

    [DllImport("libc")]
    private static extern long sysconf(int name);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SysKill(int pid, int sig);

    /// <summary>SIGTERM and wait: the server shuts down cleanly (its store and audit log closed).</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            _ = SysKill(_process.Id, 15);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
    }

    private async Task PumpAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } fromSdk && File.Exists(fromSdk) ? fromSdk
        : Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self
        : "dotnet";
}
