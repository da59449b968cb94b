using System.Security.Cryptography;
using Tumbler.IntegrationTests.Support;
using static Tumbler.IntegrationTests.Access.TumblerProcess;
using static Tumbler.IntegrationTests.Keys.KeysProcess;

namespace Tumbler.IntegrationTests.Keys;

/// <summary>
/// <c>tumbler keys rotate-root</c> as a process on a stopped server's data directory, killed with SIGKILL
/// (TUMBLER_FAULT_INJECTION) before and after the switch, resumed, and the server restarted on the result.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RotateRootCommandTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static async Task AssertServesSecretAsync(string dataDir)
    {
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { DataDir = dataDir });
        Assert.Equal("rr-s3cret", (await Cli(server, "get", "rr/db")).Ok().Stdout.TrimEnd('\n'));
        (await Cli(server, "keys", "create")).Ok();
        await server.StopAsync();
    }

    [Fact]
    public async Task Killed_before_and_after_the_switch_the_store_stays_readable_and_a_rerun_finishes()
    {
        var dataDir = Path.Combine(_temp.Path, "data");
        await using (var server = await TumblerServer.StartAsync(new TumblerServerOptions { DataDir = dataDir }))
        {
            var keyId = (await Cli(server, "keys", "create", "--description", "rr")).Ok().Json.GetProperty("KeyMetadata").GetProperty("KeyId").GetString()!;
            (await Cli(server, "keys", "create-alias", "--alias-name", "alias/rr", "--target-key-id", keyId)).Ok();
            (await Cli(server, "create", "--name", "rr/db", "--value", "rr-s3cret", "--kms-key-id", "alias/rr")).Ok();
            await server.StopAsync();
        }
        var rootKeyFile = Path.Combine(dataDir, "root.key");
        var oldKey = await File.ReadAllTextAsync(rootKeyFile);
        var newKeyFile = Path.Combine(_temp.Path, "new.key");
        var newKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        await File.WriteAllTextAsync(newKeyFile, newKey + "\n");

        // Killed after the new wrappings were written, before the switch: the old key still serves (and the rotation is forgotten).
        var crashed = await RotateRoot(dataDir, newKeyFile, "rotate-root:after-prepare");
        Assert.NotEqual(0, crashed.ExitCode);
        Assert.Contains("killing the process at rotate-root:after-prepare", crashed.Stderr, StringComparison.Ordinal);
        Assert.Equal(oldKey, await File.ReadAllTextAsync(rootKeyFile));
        await AssertServesSecretAsync(dataDir);

        // Killed right after the switch, before root.key was replaced: the old key is refused, clearly.
        crashed = await RotateRoot(dataDir, newKeyFile, "rotate-root:after-switch");
        Assert.NotEqual(0, crashed.ExitCode);
        Assert.Equal(oldKey, await File.ReadAllTextAsync(rootKeyFile));
        var refused = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions { DataDir = dataDir });
        Assert.False(refused.BecameReady, refused.ToString());
        Assert.Contains("root key", refused.StandardError + refused.StandardOutput, StringComparison.Ordinal);

        // Run again: it sees the store already switched and installs the new key in root.key.
        var resumed = await RotateRoot(dataDir, newKeyFile, null);
        resumed.Ok();
        Assert.Contains("already encrypted under the new root key", resumed.Stdout, StringComparison.Ordinal);
        Assert.Equal(newKey, (await File.ReadAllTextAsync(rootKeyFile)).Trim());
        await AssertServesSecretAsync(dataDir);

        // A clean rotation to yet another key, end to end.
        var thirdKeyFile = Path.Combine(_temp.Path, "third.key");
        var thirdKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        await File.WriteAllTextAsync(thirdKeyFile, thirdKey + "\n");
        var clean = (await RotateRoot(dataDir, thirdKeyFile, null)).Ok();
        Assert.Contains("Re-wrapped 4 KMS-like keys", clean.Stdout, StringComparison.Ordinal);
        Assert.Equal(thirdKey, (await File.ReadAllTextAsync(rootKeyFile)).Trim());
        await AssertServesSecretAsync(dataDir);
    }
}
