using System.Diagnostics;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests.Faults;

/// <summary>
/// A small filesystem of its own for a data directory, so a test can fill it or turn it read-only under a
/// running server. Needs root and mount(8) (a Debian VM as root has both; an unprivileged container does not).
/// As root, chmod would not stop a single write, so the fault has to come from the filesystem itself.
/// </summary>
public sealed class ScratchFilesystem : IDisposable
{
    private readonly TempDirectory _temp;
    private readonly string? _image;
    private string? _filler;

    /// <summary>The mount point.</summary>
    public string Path { get; }

    private ScratchFilesystem(TempDirectory temp, string? image)
    {
        _temp = temp;
        _image = image;
        Path = System.IO.Path.Combine(temp.Path, "mnt");
        Directory.CreateDirectory(Path);
    }

    /// <summary>A tmpfs of <paramref name="megabytes"/> MiB: writes past it fail with ENOSPC.</summary>
    public static ScratchFilesystem Tmpfs(int megabytes)
    {
        var fs = new ScratchFilesystem(new TempDirectory(), null);
        fs.MustRun("mount", "-t", "tmpfs", "-o", $"size={megabytes}m,mode=0700", "tmpfs", fs.Path);
        return fs;
    }

    /// <summary>
    /// An ext4 image on a loop device, without a journal and mounted errors=remount-ro: <see cref="TurnReadOnly"/>
    /// makes the kernel flip it read-only under open files, as it does after a disk error.
    /// </summary>
    public static ScratchFilesystem Ext4(int megabytes)
    {
        var temp = new TempDirectory();
        var image = System.IO.Path.Combine(temp.Path, "disk.img");
        var fs = new ScratchFilesystem(temp, image);
        using (var file = File.Create(image))
        {
            file.SetLength(megabytes * 1024L * 1024L);
        }
        fs.MustRun("mkfs.ext4", "-q", "-F", "-O", "^has_journal", image);
        fs.Mount();
        return fs;
    }

    private void Mount() => MustRun("mount", "-o", "loop,errors=remount-ro", _image!, Path);

    /// <summary>Fills every free byte with a filler file (the next write that needs a new block fails with ENOSPC).</summary>
    public void Fill()
    {
        _filler = System.IO.Path.Combine(Path, "filler");
        var chunk = new byte[64 * 1024];
        using var stream = new FileStream(_filler, FileMode.Create, FileAccess.Write, FileShare.None, 0);
        try
        {
            while (true)
            {
                stream.Write(chunk);
            }
        }
        catch (IOException)
        {
            // full
        }
        // Fill the last partial chunk too, a byte at a time is too slow: halve until nothing fits.
        for (var size = chunk.Length / 2; size > 0; size /= 2)
        {
            try
            {
                stream.Write(chunk, 0, size);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Deletes the filler: the space is free again.</summary>
    public void FreeSpace()
    {
        if (_filler is not null)
        {
            File.Delete(_filler);
            _filler = null;
        }
    }

    /// <summary>Raises an ext4 error (sysfs trigger_fs_error): with errors=remount-ro the kernel makes the filesystem read-only.</summary>
    public void TurnReadOnly()
    {
        var device = System.IO.Path.GetFileName(MustRun("findmnt", "-no", "SOURCE", Path).Trim());
        File.WriteAllText($"/sys/fs/ext4/{device}/trigger_fs_error", "1");
        Assert.False(CanCreateFile(), "the filesystem should be read-only after the ext4 error");
    }

    /// <summary>
    /// <c>mount -o remount,rw</c>, as an operator would. True when the filesystem takes writes again; false when
    /// the kernel keeps it read-only until it is unmounted (newer kernels mark an ext4 that had an error
    /// emergency_ro, which no remount clears).
    /// </summary>
    public bool TryRemountWritable()
    {
        _ = Run("mount", "--options-mode", "ignore", "-o", "remount,rw", Path);
        return CanCreateFile();
    }

    /// <summary><c>mount -o remount,ro</c>: a read-only filesystem from now on, as a snapshot or a read-only mount is.</summary>
    public void RemountReadOnly()
    {
        MustRun("mount", "-o", "remount,ro", Path);
        Assert.False(CanCreateFile(), "the filesystem should be read-only after the remount");
    }

    /// <summary>Unmount and mount the image again (every file on it must be closed).</summary>
    public void Remount()
    {
        MustRun("umount", Path);
        Mount();
    }

    private bool CanCreateFile()
    {
        var probe = System.IO.Path.Combine(Path, "probe");
        try
        {
            File.WriteAllText(probe, "x");
            File.Delete(probe);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        // Lazy: a killed server's files may still be closing.
        _ = Run("umount", "-l", Path);
        _temp.Dispose();
    }

    private static readonly Lazy<string?> Unavailable = new(Probe);

    /// <summary>Why scratch filesystems cannot be made here (not root, no mount), or null when they can.</summary>
    public static string? UnavailableReason => Unavailable.Value;

    /// <summary>Cheap checks only (this runs at test discovery): a mount that still fails later fails its test loudly.</summary>
    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "scratch filesystems need Linux";
        }
        if (Environment.UserName != "root")
        {
            return "scratch filesystems need root (mount)";
        }
        if (Executable("mount") is null || Executable("mkfs.ext4") is null || !File.Exists("/dev/loop-control"))
        {
            return "scratch filesystems need mount(8), mkfs.ext4 and loop devices";
        }
        var filesystems = File.ReadAllText("/proc/filesystems");
        return filesystems.Contains("\ttmpfs", StringComparison.Ordinal) && filesystems.Contains("\text4", StringComparison.Ordinal)
            ? null
            : "scratch filesystems need tmpfs and ext4 in the kernel";
    }

    private static string? Executable(string name) =>
        new[] { "/usr/sbin", "/usr/bin", "/sbin", "/bin" }.Select(d => System.IO.Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private string MustRun(string command, params string[] args)
    {
        var (exit, output) = Run(command, args);
        return exit == 0 ? output : throw new InvalidOperationException($"{command} {string.Join(' ', args)} failed ({exit}): {output}");
    }

    private static (int Exit, string Output) Run(string command, params string[] args)
    {
        var psi = new ProcessStartInfo(Executable(command) ?? command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        psi.Environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
        psi.Environment["LC_ALL"] = "C";
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr);
    }
}

/// <summary>A fact that runs only where <see cref="ScratchFilesystem"/> can mount (root with mount(8)), else is skipped saying why.</summary>
public sealed class RequiresScratchFilesystemFactAttribute : FactAttribute
{
    public RequiresScratchFilesystemFactAttribute()
    {
        if (ScratchFilesystem.UnavailableReason is { } reason)
        {
            Skip = reason;
        }
    }
}
