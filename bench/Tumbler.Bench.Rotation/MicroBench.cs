using System.Diagnostics;
using MySqlConnector;

namespace Tumbler.Bench.Rotation;

/// <summary>
/// The building blocks of a rotation, timed alone: one durable write to the SQLite store, and the
/// MariaDB logins a single-user rotation makes (with and without TLS, succeeding and failing).
/// </summary>
internal static class MicroBench
{
    public static async Task RunAsync(MariaDb db, int count, CancellationToken ct)
    {
        await using var host = await BenchHost.CreateAsync(ct);
        var (user, password) = (await db.CreateUsersAsync(1, ct))[0];
        var created = await host.Service.CreateSecretAsync(new Core.Secrets.CreateSecretRequest
        {
            Name = "bench/micro", SecretString = "{}", ClientRequestToken = Guid.NewGuid().ToString(),
        }, BenchHost.Caller, ct);
        var secret = (await host.Store.FindSecretAsync("us-east-1", Core.Storage.SecretLookup.ByArn(created.ARN), ct))!;
        var version = created.VersionId!;
        var rows = new List<(string What, List<double> Ms)>
        {
            ("SQLite store: one durable write (SetSetting, autocommit, synchronous=FULL)", await TimeAsync(count, i =>
                host.Store.SetSettingAsync("bench", i.ToString(System.Globalization.CultureInfo.InvariantCulture), ct))),
            ("SQLite store: SetLastAccessed (two UPDATEs, each its own autocommit)", await TimeAsync(count, i =>
                host.Store.SetLastAccessedAsync(secret.Key, version, new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddDays(i), ct))),
            ("SQLite store: a write transaction that changes nothing (as DropIfAbandoned usually is)", await TimeAsync(count, _ =>
                host.Store.WriteAsync(writer => writer.FindSecretAsync("us-east-1", Core.Storage.SecretLookup.ByArn(secret.Arn)), ct))),
            ("SQLite store: FindSecret (read, 1 version)", await TimeAsync(count, async _ =>
                await host.Store.FindSecretAsync("us-east-1", Core.Storage.SecretLookup.ByArn(secret.Arn), ct))),
            ("MariaDB login with TLS (ssl absent: TLS when offered)", await TimeAsync(count, _ => LoginAsync(user, password, MySqlSslMode.Preferred, true, ct))),
            ("MariaDB login without TLS (ssl false)", await TimeAsync(count, _ => LoginAsync(user, password, MySqlSslMode.None, true, ct))),
            ("MariaDB refused login with TLS", await TimeAsync(count, _ => LoginAsync(user, "wrong", MySqlSslMode.Preferred, false, ct))),
            ("MariaDB refused login without TLS", await TimeAsync(count, _ => LoginAsync(user, "wrong", MySqlSslMode.None, false, ct))),
        };

        Console.WriteLine();
        Console.WriteLine($"### Building blocks ({count} each, one at a time)");
        Console.WriteLine();
        Console.WriteLine("| operation (ms) | median | p95 |");
        Console.WriteLine("|---|---:|---:|");
        foreach (var (what, ms) in rows)
        {
            Console.WriteLine($"| {what} | {Stats.F(Stats.Median(ms), 2)} | {Stats.F(Stats.Percentile(ms, 95), 2)} |");
        }
    }

    private static async Task LoginAsync(string user, string password, MySqlSslMode mode, bool expected, CancellationToken ct)
    {
        if (await MariaDb.CanLoginAsync(user, password, mode, ct) != expected)
        {
            throw new InvalidOperationException($"Login of {user} ({mode}) did not {(expected ? "succeed" : "fail")} as expected.");
        }
    }

    private static async Task<List<double>> TimeAsync(int count, Func<int, Task> operation)
    {
        for (var i = 0; i < 3; i++)
        {
            await operation(i);
        }
        var ms = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await operation(i);
            ms.Add(Stats.Ms(Stopwatch.GetTimestamp() - start));
        }
        return ms;
    }
}
