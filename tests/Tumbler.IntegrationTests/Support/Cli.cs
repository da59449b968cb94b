using System.Diagnostics;
using System.Text.Json;

namespace Tumbler.IntegrationTests.Support;

/// <summary>What a client process did: exit code, output, and its stdout parsed as JSON on demand.</summary>
public sealed class CliResult(string command, int exitCode, string stdout, string stderr)
{
    public string Command { get; } = command;
    public int ExitCode { get; } = exitCode;
    public string Stdout { get; } = stdout;
    public string Stderr { get; } = stderr;

    private JsonElement? _json;

    /// <summary>stdout parsed as JSON (throws with the whole output when it is not JSON).</summary>
    public JsonElement Json
    {
        get
        {
            if (_json is null)
            {
                try
                {
                    using var doc = JsonDocument.Parse(Stdout);
                    _json = doc.RootElement.Clone();
                }
                catch (JsonException e)
                {
                    throw new InvalidOperationException($"stdout of `{Command}` is not JSON ({e.Message}):\n{this}", e);
                }
            }
            return _json.Value;
        }
    }

    /// <summary>Asserts exit code 0 and returns this, so calls chain: <c>(await cli.Run(...)).Ok().Json</c>.</summary>
    public CliResult Ok()
    {
        Assert.True(ExitCode == 0, $"expected success from `{Command}`:\n{this}");
        return this;
    }

    public override string ToString() => $"$ {Command}\nexit code: {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>Starts a child process with exactly the given environment and collects what it prints.</summary>
public static class ProcessRunner
{
    public static async Task<CliResult> RunAsync(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string> environment, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment.Clear();
        foreach (var (k, v) in environment)
        {
            psi.Environment[k] = v;
        }
        var display = fileName + " " + string.Join(' ', psi.ArgumentList.Select(Quote));

        using var process = new Process { StartInfo = psi };
        process.Start();
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{display}` did not finish in time.\nstdout so far:\n{await stdout.ConfigureAwait(false)}\nstderr:\n{await stderr.ConfigureAwait(false)}");
        }
        return new CliResult(display, process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    private static string Quote(string a) =>
        a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./:=,@+".Contains(c, StringComparison.Ordinal)) ? a : "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>A private HOME for client processes, so nothing from ~/.aws or ~/.config leaks in.</summary>
    internal static readonly Lazy<string> ClientHome = new(() =>
    {
        var home = Path.Combine(Path.GetTempPath(), "tumbler-itest-client-home");
        Directory.CreateDirectory(home);
        return home;
    });

    /// <summary>The clean base environment every client process gets.</summary>
    public static Dictionary<string, string> BaseEnvironment(string? accessKeyId, string? secretAccessKey, string region = "us-east-1")
    {
        var missing = Path.Combine(ClientHome.Value, "does-not-exist");
        var env = new Dictionary<string, string>
        {
            ["PATH"] = "/usr/bin:/bin",
            ["HOME"] = ClientHome.Value,
            ["LANG"] = "C.UTF-8",
            ["LC_ALL"] = "C.UTF-8",
            ["TZ"] = "UTC",
            ["AWS_DEFAULT_REGION"] = region,
            ["AWS_CONFIG_FILE"] = Path.Combine(missing, "config"),
            ["AWS_SHARED_CREDENTIALS_FILE"] = Path.Combine(missing, "credentials"),
            ["AWS_PAGER"] = "",
            ["AWS_EC2_METADATA_DISABLED"] = "true",
            ["PYTHONDONTWRITEBYTECODE"] = "1",
            ["PYTHONNOUSERSITE"] = "1",
            ["PYTHONIOENCODING"] = "utf-8",
        };
        if (accessKeyId is not null)
        {
            env["AWS_ACCESS_KEY_ID"] = accessKeyId;
        }
        if (secretAccessKey is not null)
        {
            env["AWS_SECRET_ACCESS_KEY"] = secretAccessKey;
        }
        return env;
    }
}

/// <summary>
/// Debian's aws CLI v2 (<c>/usr/bin/aws</c>, not whatever is first on PATH) pointed at a Tumbler endpoint
/// with a clean environment: only the given credentials, region us-east-1, no config files, no pager.
/// </summary>
public sealed class AwsCli
{
    public const string Executable = "/usr/bin/aws";

    private readonly string _endpoint;
    private readonly Dictionary<string, string> _environment;

    public AwsCli(string endpoint, string accessKeyId, string secretAccessKey, string region = "us-east-1")
    {
        _endpoint = endpoint;
        _environment = ProcessRunner.BaseEnvironment(accessKeyId, secretAccessKey, region);
    }

    private AwsCli(string endpoint, Dictionary<string, string> environment)
    {
        _endpoint = endpoint;
        _environment = environment;
    }

    public static AwsCli For(TumblerServer server) => new(server.Endpoint, server.AccessKeyId, server.SecretAccessKey);

    /// <summary>A CLI whose only credentials are the [default] profile of the given shared-credentials file.</summary>
    public static AwsCli WithCredentialsFile(string endpoint, string credentialsFile)
    {
        var env = ProcessRunner.BaseEnvironment(null, null);
        env["AWS_SHARED_CREDENTIALS_FILE"] = credentialsFile;
        return new AwsCli(endpoint, env);
    }

    /// <summary>
    /// A CLI whose only credentials are profile <paramref name="profile"/> of the given shared-credentials
    /// file (selected with AWS_PROFILE), trusting <paramref name="caBundle"/> for HTTPS when given (AWS_CA_BUNDLE).
    /// </summary>
    public static AwsCli WithProfile(string endpoint, string credentialsFile, string profile, string? caBundle = null)
    {
        var env = ProcessRunner.BaseEnvironment(null, null);
        env["AWS_SHARED_CREDENTIALS_FILE"] = credentialsFile;
        env["AWS_PROFILE"] = profile;
        if (caBundle is not null)
        {
            env["AWS_CA_BUNDLE"] = caBundle;
        }
        return new AwsCli(endpoint, env);
    }

    /// <summary>Runs <c>aws --endpoint-url E --output json secretsmanager ARGS</c>.</summary>
    public Task<CliResult> SecretsManager(params string[] args) =>
        ProcessRunner.RunAsync(Executable, ["--endpoint-url", _endpoint, "--output", "json", "secretsmanager", .. args], _environment);
}

/// <summary>Debian's python3 (<c>/usr/bin/python3</c>, which has python3-boto3) with a clean environment.</summary>
public sealed class Boto3Runner(string endpoint, string accessKeyId, string secretAccessKey, string region = "us-east-1")
{
    public const string Executable = "/usr/bin/python3";

    public static string ScriptPath => Path.Combine(AppContext.BaseDirectory, "python", "boto3_scenarios.py");

    /// <summary>Runs <c>python3 boto3_scenarios.py SCENARIO ENDPOINT</c>.</summary>
    public Task<CliResult> Run(string scenario) =>
        ProcessRunner.RunAsync(Executable, [ScriptPath, scenario, endpoint],
            ProcessRunner.BaseEnvironment(accessKeyId, secretAccessKey, region), TimeSpan.FromMinutes(3));

    /// <summary>Runs a scenario, asserts it succeeded and returns its JSON result.</summary>
    public async Task<JsonElement> Scenario(string scenario)
    {
        var result = await Run(scenario).ConfigureAwait(false);
        return result.Ok().Json;
    }
}
