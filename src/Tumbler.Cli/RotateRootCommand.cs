using System.CommandLine;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Tumbler.Core.Crypto;
using Tumbler.Server.Hosting;
using Tumbler.Storage.Postgres;
using Tumbler.Storage.Sql;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Cli;

/// <summary>
/// <c>tumbler keys rotate-root --data-dir DIR --new-root-key-file FILE</c>: re-wraps every KMS-like key material under a
/// new root key, directly on the store, online: a server running on DIR keeps serving throughout. Crash-safe (see
/// <see cref="KeyRing.RotateRootKeyAsync"/>): interrupted before the switch, the store opens with either key; after it,
/// with the new key only. When the current key is DATA_DIR/root.key, the new key is first written to
/// DATA_DIR/root.key.next (where a running server finds it to wrap keys it creates meanwhile under both keys, and
/// the new one after the switch), then renamed over root.key once the store has switched. Running the command again
/// with the same new key finishes an interrupted run.
/// </summary>
internal static class RotateRootCommand
{
    /// <summary>TUMBLER_FAULT_INJECTION=rotate-root:after-prepare|after-switch kills the process there (SIGKILL): for crash tests only.</summary>
    private const string FaultVariable = "TUMBLER_FAULT_INJECTION";

    public static Command Create()
    {
        var dataDir = new Option<string>("--data-dir")
        {
            Description = "Data directory of the store (a server running on it keeps serving).",
            DefaultValueFactory = _ => ServeSettings.ResolveDataDir(null).Path,
        };
        var newKeyFile = new Option<string>("--new-root-key-file")
        {
            Description = "File holding the new root key (32 random bytes, base64), e.g. made with: head -c 32 /dev/urandom | base64 > new.key",
            HelpName = "FILE",
            Required = true,
        };
        var store = new Option<string?>("--store")
        {
            Description = "The PostgreSQL store the nodes share (as tumbler serve --store; default: TUMBLER_STORE); the embedded store in DATA_DIR when not given.",
            HelpName = "STORE",
        };
        var currentKeyFile = new Option<string?>("--root-key-file")
        {
            Description = $"File holding the current root key (default: {RootKeyFile.EnvironmentVariable}, else derived from {RootKeyFile.PassphraseVariable}, else DATA_DIR/{ServerOptions.RootKeyFile}).",
            HelpName = "FILE",
        };
        var command = new Command("rotate-root",
            "Re-wrap every KMS-like key under a new root key, online (a running server keeps serving), crash-safe; replaces DATA_DIR/root.key when that held the current key.")
        { dataDir, store, newKeyFile, currentKeyFile };
        command.SetAction(async (parse, ct) =>
        {
            var directory = parse.GetValue(dataDir)!;
            try
            {
                return await RunAsync(directory, parse.GetValue(store) ?? Environment.GetEnvironmentVariable("TUMBLER_STORE"),
                    parse.GetValue(newKeyFile)!, parse.GetValue(currentKeyFile), ct);
            }
            catch (Exception e) when (e is RootKeyMismatchException or InvalidDataException or IOException or UnauthorizedAccessException
                or InvalidOperationException or SqliteException or Npgsql.NpgsqlException or FormatException)
            {
                await Console.Error.WriteLineAsync($"tumbler: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    private static async Task<int> RunAsync(string directory, string? sharedStore, string newKeyPath, string? currentKeyPath, CancellationToken ct)
    {
        var shared = new ServerOptions { Store = sharedStore }.UsesSharedStore;
        var database = Path.Combine(directory, ServerOptions.DatabaseFile);
        if (!shared && !File.Exists(database))
        {
            throw new IOException($"No store at {Path.GetFullPath(database)}.");
        }
        var newKey = RootKeyFile.Read(newKeyPath);
        var dataDirKeyPath = Path.Combine(directory, ServerOptions.RootKeyFile);
        var fromEnvironment = Environment.GetEnvironmentVariable(RootKeyFile.EnvironmentVariable);
        var passphrase = Environment.GetEnvironmentVariable(RootKeyFile.PassphraseVariable);

        await using SqlSecretStore store = shared ? new PostgresSecretStore(sharedStore!) : new SqliteSecretStore(database);
        await store.InitializeAsync(ct);
        var salt = await store.GetSettingAsync(RootKeyFile.SaltSetting, ct);
        var (currentKey, source) = currentKeyPath is not null ? (RootKeyFile.Read(currentKeyPath), currentKeyPath)
            : !string.IsNullOrWhiteSpace(fromEnvironment) ? (RootKeyFile.Parse(fromEnvironment, RootKeyFile.EnvironmentVariable), RootKeyFile.EnvironmentVariable)
            : !string.IsNullOrEmpty(passphrase) && salt is not null
                ? (RootKeyFile.FromPassphrase(passphrase, Convert.FromBase64String(salt)), RootKeyFile.PassphraseVariable)
            : (RootKeyFile.Read(dataDirKeyPath), dataDirKeyPath);
        var check = await store.GetSettingAsync(KeyRing.RootKeyCheckSetting, ct)
            ?? throw new InvalidOperationException("The store has no root key check value: start the server on it once first.");
        var fromDataDir = source == dataDirKeyPath;
        var nextKeyPath = Path.Combine(directory, ServerOptions.NextRootKeyFile);
        if (KeyRing.IsRootKeyFor(check, newKey))
        {
            Console.WriteLine("The store is already encrypted under the new root key.");
        }
        else
        {
            if (fromDataDir)
            {
                // On disk before the store can need it: a server running on this directory reads it from there.
                WriteKeyFile(nextKeyPath, newKey);
            }
            var fault = Environment.GetEnvironmentVariable(FaultVariable);
            var count = await KeyRing.RotateRootKeyAsync(store, currentKey, newKey, point =>
            {
                if (fault == "rotate-root:" + point)
                {
                    Console.Error.WriteLine($"{FaultVariable}: killing the process at {fault}");
                    System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL: no cleanup, as a crash
                }
            }, ct);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Re-wrapped {count} KMS-like keys under the new root key."));
        }
        if (fromDataDir && !RootKeyFile.Read(dataDirKeyPath).AsSpan().SequenceEqual(newKey))
        {
            if (!File.Exists(nextKeyPath) || !RootKeyFile.Read(nextKeyPath).AsSpan().SequenceEqual(newKey))
            {
                WriteKeyFile(nextKeyPath, newKey);
            }
            // One rename: root.key holds the old key or the new one, never a partial file.
            File.Move(nextKeyPath, dataDirKeyPath, overwrite: true);
            Console.WriteLine($"Replaced {Path.GetFullPath(dataDirKeyPath)} with the new root key.");
        }
        if (shared)
        {
            Console.WriteLine("Give every other node sharing the store the new root key before it next starts; until then it keeps serving, but cannot create keys.");
        }
        if (!fromDataDir)
        {
            Console.WriteLine($"Give the server the new root key before it next starts (the store no longer opens with the key from {source}); a running server keeps serving meanwhile.");
        }
        return 0;
    }

    /// <summary>Writes the key beside the file (mode 0600, flushed to disk), then renames it over the file.</summary>
    private static void WriteKeyFile(string path, byte[] key)
    {
        var temporary = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var stream = new FileStream(temporary, options))
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(key) + "\n"));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
