using System.Diagnostics;
using System.Text;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests.Client;

/// <summary>
/// <c>tumbler exec</c>: the child's environment (JSON keys as PREFIX_KEY, whole values), its exit code passed
/// through, values kept out of argv and files, and --watch restarting the child when the secret changes.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ExecCommandTests(TumblerServerFixture fixture) : IClassFixture<TumblerServerFixture>
{
    private const string Sh = "/bin/sh";
    private readonly TumblerCli _cli = TumblerCli.For(fixture.Server);

    private static string NewPassword() => "pw-" + Guid.NewGuid().ToString("N");

    [Fact]
    public async Task The_child_sees_json_keys_as_prefixed_variables_and_its_exit_code_is_passed_through()
    {
        var db = TumblerCli.Unique("exec") + "/app/db";
        var token = TumblerCli.Unique("exec") + "/api-token";
        var password = NewPassword();
        (await _cli.RunWithInput($"{{\"username\":\"app\",\"password\":\"{password}\",\"db-name\":\"main\",\"port\":5432}}", "create", "--name", db, "--value-file", "-")).Ok();
        (await _cli.Run("create", "--name", token, "--value", "tok 1")).Ok();

        var run = await _cli.Run("exec", "--secret", db, "--secret", token, "--", Sh, "-c",
            "echo \"u=$DB_USERNAME p=$DB_PASSWORD n=$DB_DB_NAME port=$DB_PORT t=$API_TOKEN\"; exit 7");
        Assert.True(run.ExitCode == 7, run.ToString());
        Assert.Equal($"u=app p={password} n=main port=5432 t=tok 1\n", run.Stdout);

        // --prefix and --env belong to the --secret before them.
        var named = (await _cli.Run("exec", "--secret", db, "--prefix", "PG_", "--secret", token, "--env", "TOKEN", "--", Sh, "-c",
            "echo \"$PG_USERNAME $TOKEN ${DB_USERNAME:-unset} ${API_TOKEN:-unset}\"")).Ok();
        Assert.Equal("app tok 1 unset unset\n", named.Stdout);

        Assert.Equal(0, (await _cli.Run("exec", "--secret", db, "--", Sh, "-c", "exit 0")).ExitCode);
        TumblerCli.OneLineError(await _cli.Run("exec", "--secret", db, "--secret", db, "--", "true"), $"tumbler: secrets {db} and {db} both give DB_");
        var clash = TumblerCli.Unique("exec-clash") + "/cfg";
        (await _cli.Run("create", "--name", clash, "--value", """{"a-b": "1", "a_b": "2"}""")).Ok();
        TumblerCli.OneLineError(await _cli.Run("exec", "--secret", clash, "--", "true"), $"tumbler: keys 'a-b' and 'a_b' of secret {clash} both give CFG_A_B; rename one");
        TumblerCli.OneLineError(await _cli.Run("exec", "--secret", token, "--env", "A", "--env", "B", "--", "true"),
            $"tumbler: --env is given twice for --secret {token} ('A' and 'B'); give it once.");
        TumblerCli.OneLineError(await _cli.Run("exec", "--secret", db, "--signal", "HUP", "--", "true"), "tumbler: --signal works with --watch");
        TumblerCli.OneLineError(await _cli.Run("exec", "--secret", db, "--watch-interval", "5s", "--", "true"), "tumbler: --watch-interval works with --watch");
        var missingSecret = TumblerCli.Unique("exec-missing");
        var notFound = await _cli.Run("exec", "--secret", db, "--secret", missingSecret, "--", "true");
        TumblerCli.OneLineError(notFound, "An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation");
        Assert.Contains($"(--secret {missingSecret})", notFound.Stderr, StringComparison.Ordinal);
        var missing = await _cli.Run("exec", "--secret", db, "--", "/nonexistent/program");
        Assert.True(missing.ExitCode == 127, missing.ToString());
    }

    [Fact]
    public async Task The_value_is_in_neither_argv_nor_any_file()
    {
        var db = TumblerCli.Unique("exec-leak") + "/db";
        var password = NewPassword();
        (await _cli.RunWithInput($"{{\"password\":\"{password}\"}}", "create", "--name", db, "--value-file", "-")).Ok();

        // tumbler exec with a HOME and TMPDIR of its own, so every file it might write is under them.
        using var home = new TempDirectory();
        using var tmp = new TempDirectory();
        var cli = _cli.With(e => { e["HOME"] = home.Path; e["TMPDIR"] = tmp.Path; });

        // The child prints tumbler's command line ($PPID), its own, and proves it has the value by its length.
        var run = (await cli.Run("exec", "--secret", db, "--", Sh, "-c",
            "tr '\\0' ' ' < /proc/$PPID/cmdline; echo; tr '\\0' ' ' < /proc/$$/cmdline; echo; printf %s \"$DB_PASSWORD\" | wc -c")).Ok();
        var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 3, run.ToString());
        Assert.Contains("tumbler.dll exec --secret", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain(password, run.Stdout, StringComparison.Ordinal);
        Assert.Equal(password.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), lines[2].Trim());

        // Nor in any file: tumbler's HOME and TMPDIR, and the server's data directory (database, WAL, audit log).
        var needle = Encoding.UTF8.GetBytes(password);
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        var files = new[] { home.Path, tmp.Path, fixture.Server.DataDir }.SelectMany(root => Directory.EnumerateFiles(root, "*", options)).ToList();
        Assert.Contains(files, f => f.EndsWith(".db", StringComparison.Ordinal) || f.Contains("audit", StringComparison.Ordinal));
        foreach (var file in files)
        {
            var content = await File.ReadAllBytesAsync(file);
            Assert.True(content.AsSpan().IndexOf(needle) < 0, $"the value was written to {file}");
        }
    }

    [Fact]
    public async Task Watch_restarts_the_child_with_the_new_value_and_forwards_sigterm()
    {
        var name = TumblerCli.Unique("exec-watch") + "/api-token";
        (await _cli.Run("create", "--name", name, "--value", "one")).Ok();

        using var exec = _cli.Start("exec", "--watch", "--watch-interval", "300ms", "--secret", name, "--", Sh, "-c", "echo \"v=$API_TOKEN\"; exec sleep 60");
        var output = new OutputLines(exec);
        var stderr = exec.StandardError.ReadToEndAsync();
        try
        {
            await output.WaitForAsync("v=one");
            (await _cli.Run("put", name, "--value", "two")).Ok();
            await output.WaitForAsync("v=two");

            Assert.Equal(0, TumblerCli.Kill(exec.Id, 15));
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await exec.WaitForExitAsync(cts.Token);
            // sleep died of the forwarded SIGTERM; its 128+15 is tumbler's exit code.
            Assert.True(exec.ExitCode == 143, $"exit {exec.ExitCode}\n{await stderr}");
            Assert.Contains("changed; restarting the command", await stderr, StringComparison.Ordinal);
            await output.Pump;
            Assert.Equal(["v=one", "v=two"], output.Lines);
        }
        finally
        {
            if (!exec.HasExited)
            {
                exec.Kill(entireProcessTree: true);
            }
        }
    }

    [Fact]
    public async Task Usr1_reaches_the_child_and_its_exit_code_is_tumblers()
    {
        var name = TumblerCli.Unique("exec-usr1") + "/api-token";
        (await _cli.Run("create", "--name", name, "--value", "one")).Ok();
        using var exec = _cli.Start("exec", "--secret", name, "--", Sh, "-c",
            "trap 'echo got-usr1; exit 5' USR1; echo ready; while :; do sleep 0.1; done");
        var output = new OutputLines(exec);
        try
        {
            await output.WaitForAsync("ready");
            Assert.Equal(0, TumblerCli.Kill(exec.Id, 10)); // SIGUSR1: unforwarded, it killed tumbler and left the child running
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await exec.WaitForExitAsync(cts.Token);
            Assert.Equal(5, exec.ExitCode);
            await output.Pump.WaitAsync(TimeSpan.FromSeconds(15)); // an orphaned child would hold the pipe open
            Assert.Equal(["ready", "got-usr1"], output.Lines);
        }
        finally
        {
            if (!exec.HasExited)
            {
                exec.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>What a process writes to standard output, line by line as it comes.</summary>
    private sealed class OutputLines
    {
        private readonly List<string> _lines = [];
        private readonly SemaphoreSlim _seen = new(0);
        private readonly Process _process;

        public OutputLines(Process process)
        {
            _process = process;
            Pump = Task.Run(async () =>
            {
                while (await process.StandardOutput.ReadLineAsync() is { } line)
                {
                    lock (_lines)
                    {
                        _lines.Add(line);
                    }
                    _seen.Release();
                }
            });
        }

        /// <summary>Ends when standard output is closed.</summary>
        public Task Pump { get; }

        public List<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public async Task WaitForAsync(string wanted)
        {
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (!Lines.Contains(wanted))
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || _process.HasExited)
                {
                    Assert.Fail($"no line '{wanted}' from tumbler exec (exited: {_process.HasExited}); lines so far: {string.Join(" | ", Lines)}");
                }
                await _seen.WaitAsync(left);
            }
        }
    }
}
