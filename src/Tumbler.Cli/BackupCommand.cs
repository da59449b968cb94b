using System.CommandLine;
using System.Globalization;
using Tumbler.Core.Crypto;
using Tumbler.Server.Audit;
using Tumbler.Server.Hosting;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Cli;

/// <summary>
/// <c>tumbler backup</c> and <c>tumbler restore --from</c> for the embedded SQLite store (see <see cref="SqliteBackup"/>).
/// The backup never holds the root key nor the root credentials: the root key travels separately.
/// </summary>
internal static class BackupCommand
{
    public static Command CreateBackup()
    {
        var dataDir = new Option<string>("--data-dir")
        {
            Description = "Data directory to back up (a server may be running on it).",
            DefaultValueFactory = _ => ServeSettings.ResolveDataDir(null).Path,
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
                // A backup inside the data directory is lost with it, and with --force it could replace the store or the root key.
                if (Path.GetFullPath(destination).StartsWith(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)) + Path.DirectorySeparatorChar,
                    StringComparison.Ordinal))
                {
                    throw new BackupException($"{destination} is inside the data directory {directory}; write the backup somewhere else.");
                }
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

    /// <summary>
    /// The data-directory half of <c>tumbler restore</c>: <c>tumbler restore --from FILE --data-dir DIR</c> restores
    /// a backup into a new data directory, while <c>tumbler restore SECRET</c> (SecretsCommands) cancels a secret's
    /// deletion. One verb, as both are "restore what I name".
    /// </summary>
    internal sealed class DataRestore
    {
        private readonly Option<string?> _from = new("--from") { Description = "Restore this backup file (made by tumbler backup) instead of a secret.", HelpName = "FILE" };
        private readonly Option<string?> _dataDir = new("--data-dir")
        {
            Description = "With --from: the new data directory to restore into, missing or empty (a non-empty one is refused).",
        };
        private readonly Option<string?> _rootKeyFile = new("--root-key-file")
        {
            Description = "With --from: root key file (base64, as DATA_DIR/root.key) to check against the backup and copy to DATA_DIR/root.key (mode 0600).",
            HelpName = "FILE",
        };

        public DataRestore(Command command)
        {
            command.Options.Add(_from);
            command.Options.Add(_dataDir);
            command.Options.Add(_rootKeyFile);
        }

        /// <summary>True when --from, or one of the options that only go with it, was given.</summary>
        public bool Requested(ParseResult parse) =>
            parse.GetValue(_from) is not null || parse.GetValue(_dataDir) is not null || parse.GetValue(_rootKeyFile) is not null;

        /// <param name="secretGiven">A SECRET was named too: refused, as it is not clear which restore was meant.</param>
        public async Task<int> RunAsync(ParseResult parse, bool secretGiven, CancellationToken ct)
        {
            var backup = parse.GetValue(_from);
            var directory = parse.GetValue(_dataDir);
            var keyFile = parse.GetValue(_rootKeyFile);
            try
            {
                if (backup is null)
                {
                    // Without it, a forgotten --from would cancel a secret's deletion on the default endpoint instead.
                    throw new BackupException("--data-dir and --root-key-file restore a backup: name it with --from FILE.");
                }
                if (secretGiven)
                {
                    throw new BackupException("--from restores a backup into a new data directory and names no secret; to cancel a secret's deletion, leave out --from.");
                }
                if (directory is null)
                {
                    throw new BackupException("--from needs --data-dir: the new data directory to restore into.");
                }
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
                        throw new BackupException($"The root key in {keyFile} is not the root key of this backup's store (its current one when the backup was made); nothing restored.");
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
        }
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
