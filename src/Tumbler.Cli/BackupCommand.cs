using System.CommandLine;
using System.Globalization;
using Tumbler.Core.Crypto;
using Tumbler.Server.Audit;
using Tumbler.Server.Hosting;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Cli;

/// <summary>
/// <c>tumbler backup</c> and <c>tumbler restore</c> for the embedded SQLite store (see <see cref="SqliteBackup"/>).
/// The backup never holds the root key nor the root credentials: the root key travels separately.
/// </summary>
internal static class BackupCommand
{
    public static Command CreateBackup()
    {
        var dataDir = new Option<string>("--data-dir")
        {
            Description = "Data directory to back up (a server may be running on it).",
            DefaultValueFactory = _ => new ServerOptions().DataDirectory,
        };
        var to = new Option<string>("--to") { Description = "Backup file to write (mode 0600).", HelpName = "FILE", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace FILE if it exists." };
        var noAudit = new Option<bool>("--no-audit") { Description = "Leave the audit log (DATA_DIR/audit) out of the backup." };
        var command = new Command("backup",
            "Write a consistent snapshot of the store (and its audit log) to one file, online. Values stay encrypted as in the store; "
            + "the root key and the root credentials are NOT in it: keep the root key apart.")
        { dataDir, to, force, noAudit };
        command.SetAction(async (parse, ct) =>
        {
            var directory = parse.GetValue(dataDir)!;
            var destination = parse.GetValue(to)!;
            var withAudit = !parse.GetValue(noAudit);
            try
            {
                var summary = await SqliteBackup.BackupAsync(Path.Combine(directory, ServerOptions.DatabaseFile), destination, parse.GetValue(force),
                    withAudit ? () => [.. AuditSnapshot.Take(directory).Select(f => new BackupFile(f.Name, f.Content))] : null, ct);
                var audit = withAudit && summary.Files.Count > 0 ? "with its audit log" : "without audit log";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Backed up {directory} to {destination}: {summary.Secrets} secrets, {summary.Versions} versions, {audit}, {summary.Bytes} bytes (no root key, no root credentials)."));
                return 0;
            }
            catch (Exception e) when (e is BackupException or InvalidDataException or IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"tumbler: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    public static Command CreateRestore()
    {
        var from = new Option<string>("--from") { Description = "Backup file made by tumbler backup.", HelpName = "FILE", Required = true };
        var dataDir = new Option<string>("--data-dir")
        {
            Description = "New data directory to restore into: missing or empty (a non-empty one is refused).",
            Required = true,
        };
        var rootKeyFile = new Option<string>("--root-key-file")
        {
            Description = "Root key file (base64, as DATA_DIR/root.key) to check against the backup and copy to DATA_DIR/root.key (mode 0600).",
            HelpName = "FILE",
        };
        var command = new Command("restore",
            "Restore a backup into a new data directory. The server then needs the store's root key: DATA_DIR/root.key or TUMBLER_ROOT_KEY.")
        { from, dataDir, rootKeyFile };
        command.SetAction(async (parse, ct) =>
        {
            var backup = parse.GetValue(from)!;
            var directory = parse.GetValue(dataDir)!;
            var keyFile = parse.GetValue(rootKeyFile);
            try
            {
                if (Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any())
                {
                    throw new BackupException($"{directory} is not empty; restore only into a new or empty data directory.");
                }
                var (_, check) = SqliteBackup.Inspect(backup);
                byte[]? rootKey = null;
                if (keyFile is not null)
                {
                    rootKey = RootKeyFile.Read(keyFile);
                    if (!KeyRing.IsRootKeyFor(check, rootKey))
                    {
                        throw new BackupException($"The root key in {keyFile} is not the one this backup's store was created with; nothing restored.");
                    }
                }
                var summary = await SqliteBackup.RestoreAsync(backup, directory, ServerOptions.DatabaseFile, ct);
                var keyPath = Path.Combine(directory, ServerOptions.RootKeyFile);
                if (rootKey is not null)
                {
                    WriteRootKey(keyPath, rootKey);
                }
                var audit = summary.Files.Count > 0 ? "with its audit log" : "without audit log";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Restored {backup} into {directory}: {summary.Secrets} secrets, {summary.Versions} versions, {audit}."));
                Console.WriteLine(rootKey is not null
                    ? $"Root key copied to {Path.GetFullPath(keyPath)} (mode 0600) and checked against the store."
                    : $"Next: put the store's root key in {Path.GetFullPath(keyPath)} (mode 0600) or in {RootKeyFile.EnvironmentVariable}; "
                        + "the server refuses to start with any other key.");
                Console.WriteLine("Root credentials are not in a backup: the server makes a new credentials file on first start "
                    + "(or takes TUMBLER_ROOT_ACCESS_KEY_ID/TUMBLER_ROOT_SECRET_ACCESS_KEY); IAM users and their access keys are restored.");
                return 0;
            }
            catch (Exception e) when (e is BackupException or InvalidDataException or IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"tumbler: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    private static void WriteRootKey(string path, byte[] key)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using var stream = new FileStream(path, options);
        stream.Write(System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(key) + "\n"));
        stream.Flush(flushToDisk: true);
    }
}
