using System.CommandLine;
using System.CommandLine.Parsing;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.Client;

namespace Tumbler.Cli;

/// <summary>
/// <c>tumbler exec --secret prod/app/db [--prefix P_ | --env NAME] [--secret ...] -- COMMAND ARGS</c>: runs COMMAND
/// with the secrets in its environment, and exits with its exit code.
/// <para>
/// Naming: a secret whose value is a JSON object gives one variable per top-level key, PREFIX + KEY with the key
/// upper-cased and every character other than an ASCII letter or digit turned into '_'. The default PREFIX is the
/// last segment of the secret's name, treated the same way, plus '_' (prod/app/db -> DB_, so key username ->
/// DB_USERNAME); <c>--prefix</c> after a <c>--secret</c> sets that secret's prefix as given ('' for none). Any
/// other value (text that is not a JSON object; binary as base64) goes whole into one variable: <c>--env NAME</c>,
/// else the prefix without its trailing '_' (DB). <c>--env</c> on a JSON secret puts the whole JSON in NAME
/// instead of the keys, unless <c>--prefix</c> is given too. Two secrets giving the same variable are refused.
/// </para>
/// <para>
/// .NET has no supported exec(2) that replaces the running process, so tumbler stays as the parent: the child gets
/// tumbler's standard input, output and error and environment plus the secrets; SIGTERM and SIGHUP are forwarded
/// to it, and SIGINT and SIGQUIT too unless tumbler runs in a terminal's foreground (the terminal already sent
/// them to the child). Values go only into the child's environment: never into a file, argv, or tumbler's own
/// environment.
/// </para>
/// <para>
/// <c>--watch</c> polls DescribeSecret (which carries no value) every <c>--watch-interval</c>; when a secret's
/// AWSCURRENT (or --version-stage) version changes, it fetches the values again and restarts the child (SIGTERM,
/// then SIGKILL after 10 s) with the new environment, or with <c>--signal HUP</c> only sends that signal: a
/// running process's environment cannot be changed, so such an app must read the new value itself (from Secrets
/// Manager). A child that exits by itself ends tumbler exec with its exit code.
/// </para>
/// </summary>
internal static class ExecCommand
{
    /// <summary>As a shell does when the command cannot be run.</summary>
    public const int CannotRunExitCode = 127;

    private static readonly TimeSpan RestartGrace = TimeSpan.FromSeconds(10);

    private static readonly Dictionary<string, int> Signals = new(StringComparer.OrdinalIgnoreCase)
    {
        ["HUP"] = 1, ["INT"] = 2, ["QUIT"] = 3, ["USR1"] = 10, ["USR2"] = 12, ["TERM"] = 15, ["WINCH"] = 28,
    };

    private sealed class Spec(string secretId)
    {
        public string SecretId { get; } = secretId;
        public string? Prefix { get; set; }
        public string? Env { get; set; }
    }

    public static Command Create()
    {
        var command = new Command("exec", "Run a command with secrets in its environment (JSON keys become PREFIX_KEY variables); its exit code is passed through. " +
            "Example: tumbler exec --secret prod/app/db -- ./app   (gives DB_USERNAME, DB_PASSWORD, ...)");
        var connection = new ConnectionOptions();
        connection.AddTo(command);
        var secret = new Option<string[]>("--secret") { Description = "A secret (name or ARN) to put in the environment; repeat for several.", Required = true };
        var prefix = new Option<string[]>("--prefix") { Description = "Variable prefix for the --secret before it (default: its name's last segment upper-cased, plus '_': prod/app/db -> DB_)." };
        var env = new Option<string[]>("--env") { Description = "Put the --secret before it whole into this variable (for a value that is not a JSON object, the default is the prefix without '_')." };
        var stage = new Option<string?>("--version-stage") { Description = "Use the versions with this label (default AWSCURRENT)." };
        var watch = new Option<bool>("--watch") { Description = "Watch the secrets and restart the command (or signal it, --signal) when one changes." };
        var interval = new Option<string>("--watch-interval") { Description = "How often --watch asks: 60s, 5m, 500ms...", DefaultValueFactory = _ => "60s" };
        var signal = new Option<string?>("--signal") { Description = "With --watch, send this signal (HUP, USR1...) instead of restarting; the command must read the new value itself." };
        var child = new Argument<string[]>("command") { Arity = ArgumentArity.OneOrMore, Description = "The command and its arguments, after --." };
        foreach (var option in new Option[] { secret, prefix, env, stage, watch, interval, signal })
        {
            command.Options.Add(option);
        }
        command.Arguments.Add(child);

        command.SetAction(async (parse, ct) =>
        {
            var exitCode = await ClientRunner.RunAsync(connection, parse, async api =>
            {
                var specs = Specs(parse);
                var versionStage = parse.GetValue(stage);
                var every = parse.GetValue(watch) ? Interval(parse.GetValue(interval)!) : TimeSpan.Zero;
                int? notify = parse.GetValue(signal) is { } name ? SignalNumber(name) : null;
                if (notify is not null && every == TimeSpan.Zero)
                {
                    throw new TumblerClientException("--signal works with --watch: without it nothing tells the command its secrets changed.");
                }
                if (parse.GetResult(interval) is { Implicit: false } && every == TimeSpan.Zero)
                {
                    throw new TumblerClientException("--watch-interval works with --watch: without it the secrets are read once.");
                }
                var argv = parse.GetValue(child)!;

                var (environment, versions) = await FetchAsync(api, specs, versionStage);
                Supervisor supervisor;
                try
                {
                    supervisor = new Supervisor(() => Start(argv, environment));
                }
                catch (Win32Exception e)
                {
                    await Console.Error.WriteLineAsync($"tumbler: cannot run {argv[0]}: {e.Message}");
                    return CannotRunExitCode;
                }
                using var _ = supervisor;
                if (every == TimeSpan.Zero)
                {
                    return await supervisor.WaitAsync();
                }
                return await supervisor.WatchAsync(every, async () =>
                {
                    var changed = await ChangedAsync(api, specs, versions, versionStage);
                    if (changed is null)
                    {
                        return null;
                    }
                    (environment, versions) = await FetchAsync(api, specs, versionStage);
                    return (changed, environment);
                }, argv, notify);
            }, ct);
            return exitCode;
        });
        return command;
    }

    /// <summary>The --secret/--prefix/--env options in command-line order: --prefix and --env belong to the --secret before them.</summary>
    private static List<Spec> Specs(ParseResult parse)
    {
        var specs = new List<Spec>();
        var tokens = parse.Tokens;
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token.Type == TokenType.DoubleDash)
            {
                break;
            }
            if (token.Type != TokenType.Option || token.Value is not ("--secret" or "--prefix" or "--env") || i + 1 >= tokens.Count)
            {
                continue;
            }
            var value = tokens[++i].Value;
            if (token.Value == "--secret")
            {
                specs.Add(new Spec(value));
                continue;
            }
            var owner = specs.LastOrDefault() ?? throw new TumblerClientException($"{token.Value} belongs after the --secret it names variables for.");
            if ((token.Value == "--prefix" ? owner.Prefix : owner.Env) is { } earlier)
            {
                throw new TumblerClientException($"{token.Value} is given twice for --secret {owner.SecretId} ('{earlier}' and '{value}'); give it once.");
            }
            if (token.Value == "--prefix")
            {
                if (value.Length > 0 && !SecretValues.IsValidEnvName(value))
                {
                    throw new TumblerClientException($"--prefix '{value}' is not a variable name start (letters, digits, '_'; not a digit first).");
                }
                owner.Prefix = value;
            }
            else
            {
                if (!SecretValues.IsValidEnvName(value))
                {
                    throw new TumblerClientException($"--env '{value}' is not a variable name (letters, digits, '_'; not a digit first).");
                }
                owner.Env = value;
            }
        }
        return specs;
    }

    /// <summary>Fetches every secret and builds the variables; returns them and the version id each came from.</summary>
    private static async Task<(Dictionary<string, string> Environment, List<string> Versions)> FetchAsync(SecretsApi api, List<Spec> specs, string? stage)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        // Where each variable came from: the --secret (by position) and the key of its JSON object, if any.
        var origin = new Dictionary<string, (int Spec, string Secret, string? Key)>(StringComparer.Ordinal);
        var versions = new List<string>();
        for (var specIndex = 0; specIndex < specs.Count; specIndex++)
        {
            var spec = specs[specIndex];
            var body = new JsonObject { ["SecretId"] = spec.SecretId };
            if (stage is not null)
            {
                body["VersionStage"] = stage;
            }
            JsonElement answer;
            try
            {
                answer = await api.CallAsync("GetSecretValue", body);
            }
            catch (TumblerApiException e)
            {
                // Say which of several secrets failed: the server's message does not name it.
                throw new TumblerApiException(e.ErrorCode, $"{e.Message.TrimEnd('.')} (--secret {spec.SecretId}).", e.StatusCode);
            }
            versions.Add(HumanOutput.Str(answer, "VersionId") ?? "");
            var name = HumanOutput.Str(answer, "Name") ?? spec.SecretId;
            var prefix = spec.Prefix ?? SecretValues.DefaultPrefix(name);

            void Set(string variable, string value, string? key = null)
            {
                if (value.Contains('\0', StringComparison.Ordinal))
                {
                    throw new TumblerClientException($"{variable} from secret {name} would hold a NUL character, which an environment cannot.");
                }
                if (origin.TryGetValue(variable, out var other))
                {
                    throw new TumblerClientException(other.Spec == specIndex
                        ? $"keys '{other.Key}' and '{key}' of secret {name} both give {variable}; rename one of them, or take the whole value with --env NAME."
                        : $"secrets {other.Secret} and {name} both give {variable}; set a --prefix for one of them.");
                }
                origin[variable] = (specIndex, name, key);
                environment[variable] = value;
            }

            var obj = SecretValues.AsObject(answer);
            if (obj is { } json && (spec.Env is null || spec.Prefix is not null))
            {
                foreach (var property in json.EnumerateObject())
                {
                    Set(prefix + SecretValues.EnvName(property.Name), SecretValues.Text(property.Value), property.Name);
                }
            }
            if (obj is null || spec.Env is not null)
            {
                var variable = spec.Env ?? prefix.TrimEnd('_');
                if (!SecretValues.IsValidEnvName(variable))
                {
                    throw new TumblerClientException($"secret {name} is not a JSON object; name its variable with --env NAME.");
                }
                // A SecretBinary stays base64, as the API carries it: an environment cannot hold arbitrary bytes.
                var whole = HumanOutput.Str(answer, "SecretString") ?? HumanOutput.Str(answer, "SecretBinary") ?? "";
                Set(variable, whole);
            }
        }
        return (environment, versions);
    }

    /// <summary>The name of the first secret whose watched version moved, or null. DescribeSecret carries no value.</summary>
    private static async Task<string?> ChangedAsync(SecretsApi api, List<Spec> specs, List<string> versions, string? stage)
    {
        var label = stage ?? "AWSCURRENT";
        for (var i = 0; i < specs.Count; i++)
        {
            var d = await api.CallAsync("DescribeSecret", new JsonObject { ["SecretId"] = specs[i].SecretId });
            string? now = null;
            if (d.TryGetProperty("VersionIdsToStages", out var map) && map.ValueKind == JsonValueKind.Object)
            {
                now = map.EnumerateObject().FirstOrDefault(v => v.Value.EnumerateArray().Any(s => s.GetString() == label)).Name;
            }
            if (now is not null && now != versions[i])
            {
                return HumanOutput.Str(d, "Name") ?? specs[i].SecretId;
            }
        }
        return null;
    }

    private static Process Start(string[] argv, Dictionary<string, string> environment)
    {
        var psi = new ProcessStartInfo(argv[0]) { UseShellExecute = false };
        foreach (var arg in argv.Skip(1))
        {
            psi.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in environment)
        {
            psi.Environment[key] = value;
        }
        return Process.Start(psi) ?? throw new Win32Exception("the process did not start");
    }

    public static TimeSpan Interval(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        (string number, double scale) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 0.001)
            : t.EndsWith('s') ? (t[..^1], 1)
            : t.EndsWith('m') ? (t[..^1], 60)
            : t.EndsWith('h') ? (t[..^1], 3600)
            : (t, 1);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n * scale < 0.1)
        {
            throw new TumblerClientException($"--watch-interval '{text}' is not a duration of at least 100ms (e.g. 60s, 5m).");
        }
        return TimeSpan.FromSeconds(n * scale);
    }

    private static int SignalNumber(string name)
    {
        var key = name.StartsWith("SIG", StringComparison.OrdinalIgnoreCase) ? name[3..] : name;
        if (Signals.TryGetValue(key, out var number))
        {
            return number;
        }
        if (int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out number) && number is > 0 and < 65)
        {
            return number;
        }
        throw new TumblerClientException($"--signal '{name}' is not a signal ({string.Join(", ", Signals.Keys)} or a number).");
    }

    /// <summary>Owns the running child: forwards signals to it, restarts it, reports its exit code.</summary>
    private sealed class Supervisor : IDisposable
    {
        private const int SigHup = 1, SigInt = 2, SigQuit = 3, SigTerm = 15;
        // Not in PosixSignal, so registered by number: what applications take for "reopen logs" or "reload".
        private static readonly int SigUsr1 = OperatingSystem.IsMacOS() ? 30 : 10, SigUsr2 = OperatingSystem.IsMacOS() ? 31 : 12;

        private readonly List<PosixSignalRegistration> _registrations = [];
        private readonly Lock _starting = new();
        private readonly List<int> _arrivedWhileStarting = [];
        private volatile Process _child = null!;
        private volatile bool _stopping;

        /// <summary>
        /// Handles the signals first, then starts the child: a signal sent as soon as the program says it runs must not
        /// find tumbler still with the default action (for SIGUSR1: dying, and leaving the program behind).
        /// </summary>
        public Supervisor(Func<Process> start)
        {
            foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP, PosixSignal.SIGQUIT, (PosixSignal)SigUsr1, (PosixSignal)SigUsr2 })
            {
                _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal));
            }
            Process child;
            try
            {
                child = start();
            }
            catch
            {
                Dispose();
                throw;
            }
            // A signal that came while the child was being started (it may already have said it runs) is passed on now.
            int[] arrived;
            lock (_starting)
            {
                _child = child;
                arrived = [.. _arrivedWhileStarting];
            }
            foreach (var number in arrived)
            {
                Native.Kill(child.Id, number);
            }
        }

        private void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true; // tumbler lives on until its child has exited
            var number = context.Signal switch
            {
                PosixSignal.SIGHUP => SigHup,
                PosixSignal.SIGINT => SigInt,
                PosixSignal.SIGQUIT => SigQuit,
                PosixSignal.SIGTERM => SigTerm,
                var raw => (int)raw, // USR1, USR2
            };
            if (number is SigInt or SigQuit or SigTerm)
            {
                _stopping = true;
            }
            if (number is SigInt or SigQuit && InTerminalForeground())
            {
                return; // Ctrl-C / Ctrl-\ reached the child from the terminal already; a second one could kill it harder
            }
            Process? child;
            lock (_starting)
            {
                child = _child;
                if (child is null)
                {
                    _arrivedWhileStarting.Add(number); // sent once the child is started
                    return;
                }
            }
            Native.Kill(child.Id, number);
        }

        public async Task<int> WaitAsync()
        {
            await _child.WaitForExitAsync();
            return _child.ExitCode;
        }

        /// <summary>Every <paramref name="interval"/> asks <paramref name="check"/>; on a change restarts or signals the child.</summary>
        public async Task<int> WatchAsync(TimeSpan interval, Func<Task<(string Secret, Dictionary<string, string> Environment)?>> check, string[] argv, int? notify)
        {
            string? lastError = null;
            while (true)
            {
                var exited = _child.WaitForExitAsync();
                if (await Task.WhenAny(exited, Task.Delay(interval)) == exited)
                {
                    return _child.ExitCode;
                }
                if (_stopping)
                {
                    continue;
                }
                (string Secret, Dictionary<string, string> Environment)? change;
                try
                {
                    change = await check();
                    if (lastError is not null)
                    {
                        await Console.Error.WriteLineAsync("tumbler: watching again.");
                        lastError = null;
                    }
                }
                catch (Exception e) when (e is TumblerApiException or TumblerClientException or IOException)
                {
                    var message = e is TumblerApiException api ? $"{api.ErrorCode}: {ClientRunner.OneLine(api.Message)}" : ClientRunner.OneLine(e.Message);
                    if (message != lastError)
                    {
                        await Console.Error.WriteLineAsync($"tumbler: watch: {message} (the command keeps running; retrying every {interval.TotalSeconds:0.#} s)");
                        lastError = message;
                    }
                    continue;
                }
                if (change is not { } c)
                {
                    continue;
                }
                if (notify is { } signal)
                {
                    await Console.Error.WriteLineAsync($"tumbler: {c.Secret} changed; sending signal {signal} to the command.");
                    Native.Kill(_child.Id, signal);
                    continue;
                }
                await Console.Error.WriteLineAsync($"tumbler: {c.Secret} changed; restarting the command.");
                var old = _child;
                Native.Kill(old.Id, SigTerm);
                using (var grace = new CancellationTokenSource(RestartGrace))
                {
                    try
                    {
                        await old.WaitForExitAsync(grace.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        old.Kill();
                        await old.WaitForExitAsync();
                    }
                }
                if (_stopping)
                {
                    return old.ExitCode;
                }
                try
                {
                    _child = Start(argv, c.Environment);
                }
                catch (Win32Exception e)
                {
                    await Console.Error.WriteLineAsync($"tumbler: cannot run {argv[0]}: {e.Message}");
                    return CannotRunExitCode;
                }
                old.Dispose();
            }
        }

        private static bool InTerminalForeground()
        {
            var group = Native.GetProcessGroup();
            for (var fd = 0; fd <= 2; fd++)
            {
                var foreground = Native.TerminalForegroundGroup(fd);
                if (foreground >= 0)
                {
                    return foreground == group;
                }
            }
            return false;
        }

        public void Dispose()
        {
            foreach (var registration in _registrations)
            {
                registration.Dispose();
            }
            _child?.Dispose(); // null when the start failed
        }
    }

    private static class Native
    {
        public static void Kill(int pid, int signal) => _ = kill(pid, signal);

        public static int GetProcessGroup() => getpgrp();

        public static int TerminalForegroundGroup(int fd) => tcgetpgrp(fd);

        [DllImport("libc", SetLastError = true)]
        private static extern int kill(int pid, int sig);

        [DllImport("libc")]
        private static extern int getpgrp();

        [DllImport("libc", SetLastError = true)]
        private static extern int tcgetpgrp(int fd);
    }
}
