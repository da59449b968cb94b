using System.Diagnostics;
using System.Globalization;

namespace Tumbler.Bench.Rotation;

internal static class Stats
{
    public static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>Nearest-rank percentile (p in 0..100) of the values.</summary>
    public static double Percentile(IReadOnlyCollection<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }
        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    public static double Median(IReadOnlyCollection<double> values) => Percentile(values, 50);

    /// <summary>The 1-minute load average, to tell a quiet machine from a busy one.</summary>
    public static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";

    public static string F(double value, int decimals = 1) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}

/// <summary>CPU time of this process and of the local mariadbd, to see which side the 2 cores are spent on.</summary>
internal readonly record struct CpuSnapshot(TimeSpan Bench, TimeSpan? Database, TimeSpan? Machine)
{
    public static CpuSnapshot Take() => new(Process.GetCurrentProcess().TotalProcessorTime, DatabaseCpu(), MachineCpu());

    /// <summary>Cores busy on average: this process, mariadbd, and everything else on the machine.</summary>
    public static string Describe(CpuSnapshot from, CpuSnapshot to, TimeSpan wall)
    {
        double Cores(TimeSpan busy) => busy.TotalSeconds / wall.TotalSeconds;
        var bench = to.Bench - from.Bench;
        var text = $"bench {Stats.F(Cores(bench), 2)}";
        if (from.Database is { } a && to.Database is { } b)
        {
            text += $", mariadbd {Stats.F(Cores(b - a), 2)}";
            if (from.Machine is { } m0 && to.Machine is { } m1)
            {
                text += $", other processes {Stats.F(Math.Max(0, Cores(m1 - m0 - bench - (b - a))), 2)}";
            }
        }
        return text;
    }

    /// <summary>
    /// Waits (at most <paramref name="maxWait"/>) until the processes other than this one and mariadbd
    /// kept fewer than <paramref name="cores"/> cores busy over 3 seconds: on a shared machine, a round
    /// started during someone else's build measures the build.
    /// </summary>
    public static async Task WaitForQuietAsync(double cores, TimeSpan maxWait, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + maxWait;
        while (true)
        {
            var from = Take();
            await Task.Delay(TimeSpan.FromSeconds(3), ct);
            var to = Take();
            if (from.Machine is not { } m0 || to.Machine is not { } m1 || from.Database is not { } d0 || to.Database is not { } d1)
            {
                return;
            }
            var others = (m1 - m0 - (to.Bench - from.Bench) - (d1 - d0)).TotalSeconds / 3;
            if (others < cores)
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                Console.WriteLine($"  (other processes still keep {Stats.F(others, 2)} cores busy; going ahead)");
                return;
            }
        }
    }

    // The first line of /proc/stat: busy = user + nice + system + irq + softirq, in ticks of 1/100 s.
    private static TimeSpan? MachineCpu()
    {
        try
        {
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
            var busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6];
            return TimeSpan.FromSeconds(busy / 100.0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    // utime + stime (fields 14 and 15 of /proc/PID/stat) in clock ticks of 1/100 s.
    private static TimeSpan? DatabaseCpu()
    {
        try
        {
            if (MariaDb.ServerPid is not { } pid)
            {
                return null;
            }
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / 100.0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}
