using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;

namespace Tumbler.Storage.Sqlite;

/// <summary>A file of the data directory carried inside a backup (relative path with '/', such as <c>audit/head</c>).</summary>
public sealed record BackupFile(string Name, byte[] Content);

/// <summary>What a backup holds.</summary>
public sealed record BackupSummary(long Secrets, long Versions, long Bytes, int SchemaVersion, IReadOnlyList<string> Files);

/// <summary>A backup that cannot be made or a file that cannot be restored; the message is one line for the operator.</summary>
public sealed class BackupException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Backup and restore of the embedded store.
/// <para>
/// A backup is one SQLite database file: a consistent snapshot of <c>tumbler.db</c> taken with SQLite's
/// online backup API (one read transaction over the live WAL database, so a running server keeps
/// writing and the copy holds exactly the transactions committed when it began), switched to a
/// rollback journal so the file stands alone, plus the table <see cref="FilesTable"/> holding other
/// files of the data directory the caller chose (the audit log). The values in it are sealed as in the
/// store (data keys under KMS-like keys under the root key); the root key itself and the root
/// credentials are never put in it.
/// </para>
/// <para>
/// Written to a temporary name (mode 0600) in the target's directory, fsynced, renamed, and the
/// directory fsynced, so the target is either absent, the old file (with overwrite) or the complete new one.
/// </para>
/// </summary>
public static partial class SqliteBackup
{
    /// <summary>Table added to the backup copy (never to a live store) holding the extra files.</summary>
    public const string FilesTable = "tumbler_backup_files";

    private const UnixFileMode FileMode0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode DirectoryMode0700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private static readonly byte[] SqliteMagic = "SQLite format 3\0"u8.ToArray();

    /// <summary>
    /// Snapshots the store at <paramref name="databasePath"/> into <paramref name="destination"/>. After the
    /// snapshot is taken, <paramref name="filesAfterSnapshot"/> supplies the extra files to carry (read then,
    /// so that they are at least as new as the snapshot).
    /// </summary>
    public static async Task<BackupSummary> BackupAsync(string databasePath, string destination, bool overwrite,
        Func<IReadOnlyList<BackupFile>>? filesAfterSnapshot, CancellationToken ct)
    {
        if (!File.Exists(databasePath))
        {
            throw new BackupException($"There is no Tumbler store at {databasePath}.");
        }
        if (!overwrite && (File.Exists(destination) || Directory.Exists(destination)))
        {
            throw new BackupException($"{destination} exists; give --force to replace it.");
        }
        var full = Path.GetFullPath(destination);
        var directory = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(directory))
        {
            throw new BackupException($"The directory {directory} does not exist.");
        }
        var temp = Path.Combine(directory, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            CreatePrivateFile(temp);
            IReadOnlyList<BackupFile> files;
            await using (var source = OpenSource(databasePath))
            await using (var copy = Open(temp, SqliteOpenMode.ReadWrite))
            {
                await SnapshotAsync(source, copy, ct);
                CheckIsStore(copy, databasePath);
                files = filesAfterSnapshot?.Invoke() ?? [];
                Execute(copy, "PRAGMA journal_mode=DELETE");
                using (var transaction = copy.BeginTransaction())
                {
                    Execute(copy, $"CREATE TABLE {FilesTable} (name TEXT PRIMARY KEY, content BLOB NOT NULL)");
                    foreach (var file in files)
                    {
                        using var insert = copy.CreateCommand();
                        insert.CommandText = $"INSERT INTO {FilesTable} (name, content) VALUES ($name, $content)";
                        insert.Parameters.AddWithValue("$name", file.Name);
                        insert.Parameters.AddWithValue("$content", file.Content);
                        insert.ExecuteNonQuery();
                    }
                    transaction.Commit();
                }
            }
            FlushToDisk(temp);
            var summary = Summarize(temp, [.. files.Select(f => f.Name)]);
            File.Move(temp, full, overwrite);
            FlushDirectory(directory);
            return summary;
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
        {
            throw new BackupException(File.Exists(destination) && !overwrite && e is IOException
                ? $"{destination} exists; give --force to replace it."
                : $"Cannot back up {databasePath} to {destination}: {e.Message}", e);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>
    /// Checks that <paramref name="backupPath"/> is a Tumbler store this build can read (a SQLite database
    /// that passes integrity_check, schema version 1..<see cref="SqliteSecretStore.SchemaVersion"/>, a root
    /// key check value) and returns what it holds and the root key check value. Throws <see cref="BackupException"/>.
    /// </summary>
    public static (BackupSummary Summary, string RootKeyCheck) Inspect(string backupPath)
    {
        if (!File.Exists(backupPath))
        {
            throw new BackupException($"{backupPath} does not exist.");
        }
        try
        {
            var header = new byte[SqliteMagic.Length];
            using (var stream = File.OpenRead(backupPath))
            {
                if (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) != header.Length || !header.AsSpan().SequenceEqual(SqliteMagic))
                {
                    throw new BackupException($"{backupPath} is not a Tumbler backup (not a SQLite database).");
                }
            }
            string check;
            using (var connection = Open(backupPath, SqliteOpenMode.ReadOnly))
            {
                var integrity = Scalar(connection, "PRAGMA integrity_check") as string;
                if (integrity != "ok")
                {
                    // One row, or one row of several lines; the operator gets the first problem and a count.
                    var problems = (integrity ?? "no answer").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    var more = problems.Length > 1 ? $" and {problems.Length - 1} more problems" : "";
                    throw new BackupException($"{backupPath} is damaged (SQLite integrity_check: {problems[0]}{more}).");
                }
                check = CheckIsStore(connection, backupPath);
            }
            return (Summarize(backupPath, FileNames(backupPath)), check);
        }
        catch (SqliteException e)
        {
            throw new BackupException($"{backupPath} is not a readable Tumbler backup: {e.Message}", e);
        }
    }

    /// <summary>
    /// Restores a backup into <paramref name="dataDirectory"/>, which must be missing or empty: the store as
    /// <paramref name="databaseFileName"/> (mode 0600, directory 0700) and the carried files beside it
    /// (directories 0700, files 0600). Call <see cref="Inspect"/> first. Nothing is left behind on failure
    /// but the (then empty) directory.
    /// </summary>
    public static async Task<BackupSummary> RestoreAsync(string backupPath, string dataDirectory, string databaseFileName, CancellationToken ct)
    {
        PrepareEmptyDirectory(dataDirectory);
        var target = Path.Combine(dataDirectory, databaseFileName);
        var temp = Path.Combine(dataDirectory, $".{databaseFileName}.restore-{Guid.NewGuid():N}");
        var written = new List<string>();
        try
        {
            CreatePrivateFile(temp);
            var files = new List<BackupFile>();
            await using (var source = Open(backupPath, SqliteOpenMode.ReadOnly))
            await using (var copy = Open(temp, SqliteOpenMode.ReadWrite))
            {
                await SnapshotAsync(source, copy, ct);
                // A copy of a live store's file would be in WAL mode: leave one file; the server turns WAL on at start.
                Execute(copy, "PRAGMA journal_mode=DELETE");
                if (TableExists(copy, FilesTable))
                {
                    using (var select = copy.CreateCommand())
                    {
                        select.CommandText = $"SELECT name, content FROM {FilesTable} ORDER BY name";
                        using var reader = select.ExecuteReader();
                        while (reader.Read())
                        {
                            files.Add(new BackupFile(reader.GetString(0), (byte[])reader.GetValue(1)));
                        }
                    }
                    Execute(copy, $"DROP TABLE {FilesTable}");
                    Execute(copy, "VACUUM");
                }
            }
            FlushToDisk(temp);
            foreach (var file in files)
            {
                written.Add(WriteCarriedFile(dataDirectory, file));
            }
            File.Move(temp, target);
            written.Add(target);
            FlushDirectory(dataDirectory);
            return Summarize(target, [.. files.Select(f => f.Name)]);
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
        {
            foreach (var path in written)
            {
                File.Delete(path);
            }
            foreach (var sub in Directory.Exists(dataDirectory) ? Directory.GetDirectories(dataDirectory) : [])
            {
                Directory.Delete(sub, recursive: true);
            }
            throw new BackupException($"Cannot restore {backupPath} into {dataDirectory}: {e.Message}", e);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Creates the directory (0700) when missing; refuses one that holds anything.</summary>
    private static void PrepareEmptyDirectory(string dataDirectory)
    {
        if (File.Exists(dataDirectory))
        {
            throw new BackupException($"{dataDirectory} is a file, not a data directory.");
        }
        if (Directory.Exists(dataDirectory))
        {
            if (Directory.EnumerateFileSystemEntries(dataDirectory).Any())
            {
                throw new BackupException($"{dataDirectory} is not empty; restore only into a new or empty data directory.");
            }
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(dataDirectory, DirectoryMode0700);
            }
            return;
        }
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(dataDirectory);
        }
        else
        {
            Directory.CreateDirectory(dataDirectory, DirectoryMode0700);
        }
    }

    private static string WriteCarriedFile(string dataDirectory, BackupFile file)
    {
        if (!SafeName().IsMatch(file.Name) || file.Name.Split('/').Any(part => part is "." or ".."))
        {
            throw new IOException($"the backup names a file outside the data directory ({file.Name})");
        }
        var path = Path.Combine([dataDirectory, .. file.Name.Split('/')]);
        var parent = Path.GetDirectoryName(path)!;
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(parent);
        }
        else
        {
            Directory.CreateDirectory(parent, DirectoryMode0700);
        }
        CreatePrivateFile(path);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            stream.Write(file.Content);
            stream.Flush(flushToDisk: true);
        }
        FlushDirectory(parent);
        return path;
    }

    [GeneratedRegex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")]
    private static partial Regex SafeName();

    /// <summary>The whole database in one backup step: one read transaction, so one consistent state. Retries while the source is busy.</summary>
    private static async Task SnapshotAsync(SqliteConnection source, SqliteConnection destination, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                source.BackupDatabase(destination);
                return;
            }
            catch (SqliteException e) when (e.SqliteErrorCode is 5 or 6 && attempt < 50) // SQLITE_BUSY, SQLITE_LOCKED
            {
                await Task.Delay(100, ct);
            }
        }
    }

    /// <summary>Throws unless the database looks like a Tumbler store this build reads; returns its root key check value.</summary>
    private static string CheckIsStore(SqliteConnection connection, string what)
    {
        var version = Convert.ToInt64(Scalar(connection, "PRAGMA user_version"), System.Globalization.CultureInfo.InvariantCulture);
        if (version > SqliteSecretStore.SchemaVersion)
        {
            throw new BackupException($"{what} has store schema version {version}, newer than this Tumbler understands ({SqliteSecretStore.SchemaVersion}); use a newer tumbler.");
        }
        if (version < 1 || !TableExists(connection, "settings") || !TableExists(connection, "secrets") || !TableExists(connection, "versions"))
        {
            throw new BackupException($"{what} is not a Tumbler store (no Tumbler schema).");
        }
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM settings WHERE name = $name";
        command.Parameters.AddWithValue("$name", Tumbler.Core.Crypto.KeyRing.RootKeyCheckSetting);
        return command.ExecuteScalar() as string
            ?? throw new BackupException($"{what} is not a usable Tumbler store: it has no root key check value (the server never started on it).");
    }

    private static IReadOnlyList<string> FileNames(string path)
    {
        using var connection = Open(path, SqliteOpenMode.ReadOnly);
        if (!TableExists(connection, FilesTable))
        {
            return [];
        }
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT name FROM {FilesTable} ORDER BY name";
        using var reader = command.ExecuteReader();
        var names = new List<string>();
        while (reader.Read())
        {
            names.Add(reader.GetString(0));
        }
        return names;
    }

    private static BackupSummary Summarize(string path, IReadOnlyList<string> files)
    {
        using var connection = Open(path, SqliteOpenMode.ReadOnly);
        var secrets = Convert.ToInt64(Scalar(connection, "SELECT COUNT(*) FROM secrets"), System.Globalization.CultureInfo.InvariantCulture);
        var versions = Convert.ToInt64(Scalar(connection, "SELECT COUNT(*) FROM versions"), System.Globalization.CultureInfo.InvariantCulture);
        var schema = Convert.ToInt32(Scalar(connection, "PRAGMA user_version"), System.Globalization.CultureInfo.InvariantCulture);
        connection.Close();
        return new BackupSummary(secrets, versions, new FileInfo(path).Length, schema, files);
    }

    private static bool TableExists(SqliteConnection connection, string table)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $name";
        command.Parameters.AddWithValue("$name", table);
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>
    /// The store, read-only. A store a server stopped cleanly has no -wal file, and on read-only media (a snapshot, a
    /// read-only mount) SQLite cannot create the -shm file a WAL database is opened with: such a store is opened as
    /// immutable, which is safe because without a -wal file no server has it open.
    /// </summary>
    private static SqliteConnection OpenSource(string path)
    {
        var connection = Open(path, SqliteOpenMode.ReadOnly);
        try
        {
            Scalar(connection, "SELECT COUNT(*) FROM sqlite_master"); // SQLite opens the WAL index at the first read
            return connection;
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 14 /* SQLITE_CANTOPEN */ && !File.Exists(path + "-wal"))
        {
            connection.Dispose();
            return Open(new Uri(Path.GetFullPath(path)).AbsoluteUri + "?immutable=1", SqliteOpenMode.ReadOnly);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static SqliteConnection Open(string path, SqliteOpenMode mode)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = mode,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString());
        connection.Open();
        return connection;
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Creates an empty file readable by its owner only (so SQLite's copy never exists with a wider mode).</summary>
    private static void CreatePrivateFile(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode0600;
        }
        new FileStream(path, options).Dispose();
    }

    private static void FlushToDisk(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>fsync of a directory, so a rename or a new entry in it survives a power loss (no-op on Windows).</summary>
    private static void FlushDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var fd = NativeMethods.open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            throw new IOException($"cannot open {directory} to sync it (errno {Marshal.GetLastPInvokeError()})");
        }
        try
        {
            if (NativeMethods.fsync(fd) != 0)
            {
                throw new IOException($"cannot sync {directory} (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = NativeMethods.close(fd);
        }
    }

    private static class NativeMethods
    {
        [DllImport("libc", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        internal static extern int close(int fd);
    }
}
