using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Tumbler.IntegrationTests.Support;

/// <summary>How to start a <c>tumbler serve</c> process.</summary>
public sealed record TumblerServerOptions
{
    /// <summary>Data directory to use; null = a fresh one under a temp directory the server deletes on dispose.</summary>
    public string? DataDir { get; init; }

    /// <summary>
    /// Root credentials passed via TUMBLER_ROOT_ACCESS_KEY_ID / TUMBLER_ROOT_SECRET_ACCESS_KEY. When
    /// <see cref="UseEnvironmentCredentials"/> is true and these are null, a random pair is generated.
    /// </summary>
    public string? AccessKeyId { get; init; }
    public string? SecretAccessKey { get; init; }

    /// <summary>False: do not set the TUMBLER_ROOT_* variables (the server then writes DIR/credentials).</summary>
    public bool UseEnvironmentCredentials { get; init; } = true;

    /// <summary>Host part of --listen; the port is always a free loopback-probed port.</summary>
    public string ListenHost { get; init; } = "127.0.0.1";

    /// <summary>False: no --listen flag (a configuration file or TUMBLER_LISTEN says where, on <see cref="Port"/>).</summary>
    public bool PassListen { get; init; } = true;

    /// <summary>The port the server is expected on; null = a free one chosen by the harness.</summary>
    public int? Port { get; init; }

    /// <summary>Extra arguments after <c>serve --data-dir D --listen H:P</c>.</summary>
    public IReadOnlyList<string> ExtraArgs { get; init; } = [];

    /// <summary>
    /// Extra environment variables for the server process, set after the developer's TUMBLER_* variables
    /// were removed (so tests may set TUMBLER_* settings explicitly). The root credentials still win.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>What a <c>tumbler serve</c> run that was expected to exit by itself did.</summary>
public sealed record ServeOutcome(bool BecameReady, int? ExitCode, string StandardOutput, string StandardError)
{
    public override string ToString() =>
        $"ready={BecameReady} exit={ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}\n--- stdout ---\n{StandardOutput}\n--- stderr ---\n{StandardError}";
}

/// <summary>
/// A <c>tumbler serve</c> process on a free loopback port, started from the tumbler.dll that was built
/// with the same configuration as this test assembly. Dispose kills it (if still running) and deletes the
/// temp directory it created.
/// </summary>
public sealed class TumblerServer : IAsyncDisposable
{
    public const string ReadyMarker = "Tumbler is ready";
    public const int Sigint = 2;
    public const int Sigterm = 15;
    private const string EnvExecutable = "/usr/bin/env";

    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TempDirectory? _ownedTemp;
    private readonly Task _stdoutDone;
    private readonly Task _stderrDone;

    public string Endpoint { get; }
    public int Port { get; }
    public string DataDir { get; }
    public string AccessKeyId { get; private set; }
    public string SecretAccessKey { get; private set; }
    public int ProcessId => _process.Id;

    public string StandardOutput { get { lock (_stdout) { return _stdout.ToString(); } } }
    public string StandardError { get { lock (_stderr) { return _stderr.ToString(); } } }
    public bool HasExited => _process.HasExited;

    private TumblerServer(TumblerServerOptions options, TempDirectory? ownedTemp, string dataDir, int port)
    {
        _ownedTemp = ownedTemp;
        DataDir = dataDir;
        Port = port;
        var hostForUrl = options.ListenHost is "0.0.0.0" or "::" ? "127.0.0.1" : options.ListenHost;
        Endpoint = $"http://{hostForUrl}:{port}";
        AccessKeyId = options.AccessKeyId ?? "";
        SecretAccessKey = options.SecretAccessKey ?? "";

        // Through `env --default-signal`: a test run started in the background by a non-interactive shell
        // (nohup, `cmd &` in a script, some CI runners) inherits SIGINT ignored, and so would the server.
        var viaEnv = File.Exists(EnvExecutable);
        var psi = new ProcessStartInfo(viaEnv ? EnvExecutable : DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = ownedTemp?.Path ?? Path.GetTempPath(),
        };
        if (viaEnv)
        {
            psi.ArgumentList.Add("--default-signal");
            psi.ArgumentList.Add(DotnetHost);
        }
        psi.ArgumentList.Add(TumblerDll);
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add("--data-dir");
        psi.ArgumentList.Add(dataDir);
        if (options.PassListen)
        {
            psi.ArgumentList.Add("--listen");
            psi.ArgumentList.Add(options.ListenHost.Contains(':', StringComparison.Ordinal) ? $"[{options.ListenHost}]:{port}" : $"{options.ListenHost}:{port}");
        }
        foreach (var arg in options.ExtraArgs)
        {
            psi.ArgumentList.Add(arg);
        }
        // Nothing from the developer's environment may steer the server: drop every TUMBLER_* and the
        // ASP.NET Core URL overrides, then set the root credentials this test wants.
        foreach (var key in psi.Environment.Keys.ToList())
        {
            if (key.StartsWith("TUMBLER_", StringComparison.Ordinal) || key is "ASPNETCORE_URLS" or "DOTNET_URLS" or "ASPNETCORE_HTTP_PORTS" or "ASPNETCORE_HTTPS_PORTS")
            {
                psi.Environment.Remove(key);
            }
        }
        foreach (var (key, value) in options.Environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }
        if (options.UseEnvironmentCredentials)
        {
            psi.Environment["TUMBLER_ROOT_ACCESS_KEY_ID"] = AccessKeyId;
            psi.Environment["TUMBLER_ROOT_SECRET_ACCESS_KEY"] = SecretAccessKey;
        }

        _process = new Process { StartInfo = psi };
        _process.Start();
        _process.StandardInput.Close();
        _stdoutDone = PumpAsync(_process.StandardOutput, _stdout, detectReady: true);
        _stderrDone = PumpAsync(_process.StandardError, _stderr, detectReady: false);
    }

    /// <summary>Starts a server and waits for its ready line; throws (with its output) if it does not get there.</summary>
    public static async Task<TumblerServer> StartAsync(TumblerServerOptions? options = null)
    {
        options ??= new TumblerServerOptions();
        for (var attempt = 1; ; attempt++)
        {
            var server = Launch(options);
            var outcome = await server.WaitForReadyOrExitAsync(options.ReadyTimeout).ConfigureAwait(false);
            if (outcome.BecameReady)
            {
                if (!options.UseEnvironmentCredentials)
                {
                    server.LoadCredentialsFile();
                }
                return server;
            }
            await server.DisposeAsync().ConfigureAwait(false);
            var portClash = outcome.StandardError.Contains("address already in use", StringComparison.OrdinalIgnoreCase);
            if (!portClash || attempt >= 3)
            {
                throw new InvalidOperationException($"tumbler serve did not become ready: {outcome}");
            }
        }
    }

    /// <summary>
    /// Runs <c>tumbler serve</c> when it is expected to refuse to start: waits until it exits (or becomes
    /// ready, which is then reported and the process killed), and returns what it printed.
    /// </summary>
    public static async Task<ServeOutcome> RunExpectingExitAsync(TumblerServerOptions options)
    {
        await using var server = Launch(options);
        return await server.WaitForReadyOrExitAsync(options.ReadyTimeout).ConfigureAwait(false);
    }

    private static TumblerServer Launch(TumblerServerOptions options)
    {
        TempDirectory? owned = null;
        var dataDir = options.DataDir;
        if (dataDir is null)
        {
            owned = new TempDirectory();
            dataDir = Path.Combine(owned.Path, "data");
        }
        if (options.UseEnvironmentCredentials)
        {
            options = options with
            {
                AccessKeyId = options.AccessKeyId ?? NewAccessKeyId(),
                SecretAccessKey = options.SecretAccessKey ?? NewSecretAccessKey(),
            };
        }
        try
        {
            return new TumblerServer(options, owned, dataDir, options.Port ?? FreeLoopbackPort());
        }
        catch
        {
            owned?.Dispose();
            throw;
        }
    }

    private async Task<ServeOutcome> WaitForReadyOrExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var exited = _process.WaitForExitAsync(cts.Token);
        var timeoutTask = Task.Delay(Timeout.Infinite, cts.Token);
        var first = await Task.WhenAny(_ready.Task, exited, timeoutTask).ConfigureAwait(false);
        bool ready = first == _ready.Task;
        if (first == exited && exited.IsCompletedSuccessfully)
        {
            await DrainAsync().ConfigureAwait(false);
            // The ready line may have been printed just before an exit.
            ready = _ready.Task.IsCompleted;
        }
        if (!ready && !_process.HasExited)
        {
            Kill();
            await DrainAsync().ConfigureAwait(false);
            return new ServeOutcome(false, null, StandardOutput, StandardError + $"\n[test harness: no ready line and no exit within {timeout.TotalSeconds}s; killed]");
        }
        return new ServeOutcome(ready, _process.HasExited ? _process.ExitCode : null, StandardOutput, StandardError);
    }

    /// <summary>Sends a signal (SIGTERM by default), waits for the exit and returns the exit code.</summary>
    public async Task<int> StopAsync(int signal = Sigterm, TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            if (SysKill(_process.Id, signal) != 0)
            {
                throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
            }
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Kill();
                throw new TimeoutException($"tumbler serve did not exit within {(timeout ?? TimeSpan.FromSeconds(20)).TotalSeconds}s of signal {signal}.\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}");
            }
        }
        await DrainAsync().ConfigureAwait(false);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL, no clean shutdown.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        await DrainAsync().ConfigureAwait(false);
        _process.Dispose();
        _ownedTemp?.Dispose();
    }

    private async Task DrainAsync()
    {
        try
        {
            await Task.WhenAll(_stdoutDone, _stderrDone).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // a grandchild holding the pipe open: the output so far is all we get
        }
    }

    private async Task PumpAsync(StreamReader reader, StringBuilder sink, bool detectReady)
    {
        while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            lock (sink)
            {
                sink.AppendLine(line);
            }
            if (detectReady && line.Contains(ReadyMarker, StringComparison.Ordinal))
            {
                _ready.TrySetResult();
            }
        }
    }

    /// <summary>Reads [default] aws_access_key_id / aws_secret_access_key from DIR/credentials.</summary>
    public void LoadCredentialsFile()
    {
        var (id, secret) = ReadCredentialsFile(Path.Combine(DataDir, "credentials"));
        AccessKeyId = id;
        SecretAccessKey = secret;
    }

    public static (string AccessKeyId, string SecretAccessKey) ReadCredentialsFile(string path)
    {
        string? section = null, id = null, secret = null;
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }
            if (line.StartsWith('[') && line.EndsWith(']'))
            {
                section = line[1..^1].Trim();
                continue;
            }
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (section != "default" || eq < 0)
            {
                continue;
            }
            var key = line[..eq].Trim();
            var value = line[(eq + 1)..].Trim();
            if (key == "aws_access_key_id")
            {
                id = value;
            }
            else if (key == "aws_secret_access_key")
            {
                secret = value;
            }
        }
        if (id is null || secret is null)
        {
            throw new InvalidDataException($"{path} has no [default] aws_access_key_id/aws_secret_access_key:\n{File.ReadAllText(path)}");
        }
        return (id, secret);
    }

    public static string NewAccessKeyId() => "AKIA" + RandomString("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16);

    public static string NewSecretAccessKey() =>
        RandomString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40);

    private static string RandomString(string alphabet, int length) =>
        string.Create(length, alphabet, static (span, a) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = a[RandomNumberGenerator.GetInt32(a.Length)];
            }
        });

    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SysKill(int pid, int sig);

    // ---- locating the build output -------------------------------------------------------------

    private static readonly Lazy<(string Root, string Configuration, string Tfm)> Layout = new(FindLayout);

    /// <summary>The directory holding Tumbler.slnx.</summary>
    public static string RepoRoot => Layout.Value.Root;

    /// <summary>Debug or Release: whatever this test assembly was built with.</summary>
    public static string Configuration => Layout.Value.Configuration;

    public static string TumblerDll
    {
        get
        {
            var (root, configuration, tfm) = Layout.Value;
            var dll = Path.Combine(root, "src", "Tumbler.Cli", "bin", configuration, tfm, "tumbler.dll");
            if (!File.Exists(dll))
            {
                throw new FileNotFoundException($"tumbler.dll not found at {dll}; build src/Tumbler.Cli with -c {configuration} first.", dll);
            }
            return dll;
        }
    }

    /// <summary>The dotnet host running the tests (set by the SDK), else the one on PATH.</summary>
    public static string DotnetHost
    {
        get
        {
            var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk))
            {
                return fromSdk;
            }
            var self = Environment.ProcessPath;
            if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet")
            {
                return self;
            }
            return "dotnet";
        }
    }

    private static (string, string, string) FindLayout()
    {
        // .../tests/Tumbler.IntegrationTests/bin/<Configuration>/<tfm>/
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = baseDir.Name;
        var configuration = baseDir.Parent?.Name ?? "Debug";
        for (var dir = baseDir; dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Tumbler.slnx")))
            {
                return (dir.FullName, configuration, tfm);
            }
        }
        throw new InvalidOperationException($"Tumbler.slnx not found above {AppContext.BaseDirectory}");
    }
}

/// <summary>A fresh directory under the system temp directory, deleted (recursively) on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; }

    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "tumbler-itest-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (IOException)
        {
            // best effort; a file still held open by a dying process
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>One server (fresh data dir, random root credentials) shared by the tests of a class.</summary>
public sealed class TumblerServerFixture : IAsyncLifetime
{
    private TumblerServer? _server;

    public TumblerServer Server => _server ?? throw new InvalidOperationException("server not started");

    public AwsCli Cli => AwsCli.For(Server);

    public async Task InitializeAsync() => _server = await TumblerServer.StartAsync().ConfigureAwait(false);

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }
    }
}
