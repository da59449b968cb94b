using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests.Client;

/// <summary>
/// The built <c>tumbler</c> executable (<c>dotnet tumbler.dll</c>) as a client process with a clean environment:
/// by default the server's root keys and AWS_ENDPOINT_URL in the environment, no config files.
/// </summary>
public sealed class TumblerCli
{
    public Dictionary<string, string> Environment { get; }

    public TumblerCli(Dictionary<string, string> environment) => Environment = environment;

    public static TumblerCli For(TumblerServer server)
    {
        var env = ProcessRunner.BaseEnvironment(server.AccessKeyId, server.SecretAccessKey);
        env["AWS_ENDPOINT_URL"] = server.Endpoint;
        return new TumblerCli(env);
    }

    /// <summary>A copy whose environment <paramref name="change"/> may edit.</summary>
    public TumblerCli With(Action<Dictionary<string, string>> change)
    {
        var env = new Dictionary<string, string>(Environment);
        change(env);
        return new TumblerCli(env);
    }

    public Task<CliResult> Run(params string[] args) => RunWithInput(null, args);

    /// <summary>Runs <c>tumbler ARGS</c> with <paramref name="stdin"/> (null: empty) and waits for it.</summary>
    public async Task<CliResult> RunWithInput(string? stdin, params string[] args)
    {
        using var process = new Process { StartInfo = StartInfo(args) };
        process.Start();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"tumbler {string.Join(' ', args)} did not finish:\n{await stdout}\n{await stderr}");
        }
        return new CliResult("tumbler " + string.Join(' ', args), process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Starts <c>tumbler ARGS</c> in the background with stdout and stderr redirected (for exec --watch).</summary>
    public Process Start(params string[] args)
    {
        var process = new Process { StartInfo = StartInfo(args) };
        process.Start();
        process.StandardInput.Close();
        return process;
    }

    private ProcessStartInfo StartInfo(string[] args)
    {
        var psi = new ProcessStartInfo(TumblerServer.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = new UTF8Encoding(false),
            WorkingDirectory = Path.GetTempPath(),
        };
        psi.ArgumentList.Add(TumblerServer.TumblerDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment.Clear();
        foreach (var (k, v) in Environment)
        {
            psi.Environment[k] = v;
        }
        return psi;
    }

    public static string Unique(string hint) => $"{hint}-{Guid.NewGuid().ToString("N")[..10]}";

    /// <summary>Asserts a failure reported as exactly one line on stderr, starting with <paramref name="start"/>.</summary>
    public static void OneLineError(CliResult result, string start)
    {
        Assert.True(result.ExitCode != 0, $"expected a failure:\n{result}");
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr:\n{result}");
        Assert.True(lines[0].StartsWith(start, StringComparison.Ordinal), $"expected stderr to start with '{start}':\n{result}");
        Assert.Equal("", result.Stdout);
    }

    /// <summary>kill(2): sends <paramref name="sig"/> to <paramref name="pid"/>; 0 on success.</summary>
    public static int Kill(int pid, int sig) => SysKill(pid, sig);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SysKill(int pid, int sig);
}
