using Tumbler.IntegrationTests.Support;
using static Tumbler.IntegrationTests.Access.TumblerProcess;

namespace Tumbler.IntegrationTests.Keys;

/// <summary>The `tumbler` commands the root key rotation tests run as processes.</summary>
internal static class KeysProcess
{
    /// <summary><c>tumbler ARGS --endpoint-url E</c> as the server's root.</summary>
    public static Task<CliResult> Cli(TumblerServer server, params string[] args) =>
        RunAsync(ProcessRunner.BaseEnvironment(server.AccessKeyId, server.SecretAccessKey), [.. args, "--endpoint-url", server.Endpoint]);

    /// <summary><c>tumbler keys rotate-root</c> on a data directory, killed at <paramref name="fault"/> when given.</summary>
    public static Task<CliResult> RotateRoot(string dataDir, string newKeyFile, string? fault) =>
        RunAsync(fault is null ? ProcessRunner.BaseEnvironment(null, null)
            : new Dictionary<string, string>(ProcessRunner.BaseEnvironment(null, null)) { ["TUMBLER_FAULT_INJECTION"] = fault },
            "keys", "rotate-root", "--data-dir", dataDir, "--new-root-key-file", newKeyFile);
}
