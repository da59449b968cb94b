using System.Diagnostics;
using Tumbler.Core.Crypto;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Bench.Http;

/// <summary>
/// Fills a data directory that `tumbler serve` has created (and stopped) with secrets, in-process and
/// in large transactions: through the API each secret and each version would be its own fsynced
/// transaction, hours for 100,000 × 5. The rows are what the server writes itself (same ARN form,
/// envelope encryption under the default key, labels AWSCURRENT / AWSPREVIOUS / none).
/// </summary>
internal static class Seeder
{
    public const string Region = "us-east-1";
    public const string AccountId = "123456789012";
    private const int SecretsPerTransaction = 2_000;

    public static string NameOf(int index) => $"bench/secret-{index:D6}";

    /// <summary>A JSON SecretString of exactly <paramref name="bytes"/> ASCII bytes.</summary>
    public static string ValueOf(int index, int version, int bytes)
    {
        var head = $"{{\"username\":\"user{index}\",\"version\":{version},\"password\":\"";
        const string tail = "\"}";
        var fill = Math.Max(0, bytes - head.Length - tail.Length);
        return head + new string((char)('a' + (index + version) % 26), fill) + tail;
    }

    public static async Task<TimeSpan> SeedAsync(string dataDir, int secrets, int versionsPerSecret, int valueBytes)
    {
        await using var store = new SqliteSecretStore(Path.Combine(dataDir, "tumbler.db"));
        return await SeedAsync(store, RootKeyFile.Read(Path.Combine(dataDir, "root.key")), secrets, versionsPerSecret, valueBytes);
    }

    /// <summary>The same into any store a server has created (the PostgreSQL one included), given its root key.</summary>
    public static async Task<TimeSpan> SeedAsync(ISecretStore store, byte[] rootKey, int secrets, int versionsPerSecret, int valueBytes)
    {
        var clock = Stopwatch.StartNew();
        await store.InitializeAsync(CancellationToken.None);
        var keys = await KeyRing.OpenAsync(store, rootKey, Region, AccountId, TimeProvider.System, CancellationToken.None);
        var keyId = keys.DefaultKeyId;
        // Creation dates spread over the past so that versions are ordered and none is younger than the last.
        var start = DateTimeOffset.UtcNow.AddDays(-30);
        for (var first = 0; first < secrets; first += SecretsPerTransaction)
        {
            var last = Math.Min(secrets, first + SecretsPerTransaction);
            await store.WriteAsync(async writer =>
            {
                for (var i = first; i < last; i++)
                {
                    var created = start.AddMilliseconds(i);
                    var secret = new SecretEntity
                    {
                        Region = Region,
                        Name = NameOf(i),
                        Arn = SecretArn.Create(Region, AccountId, NameOf(i)),
                        Description = $"benchmark secret {i}",
                        CreatedDate = created,
                        LastChangedDate = created,
                    };
                    await writer.InsertSecretAsync(secret);
                    for (var v = 0; v < versionsPerSecret; v++)
                    {
                        var labels = v == versionsPerSecret - 1 ? new List<string> { StagingLabels.Current }
                            : v == versionsPerSecret - 2 ? [StagingLabels.Previous]
                            : [];
                        var version = new VersionEntity
                        {
                            VersionId = Guid.NewGuid().ToString(),
                            CreatedDate = created.AddSeconds(v),
                            KeyId = keyId,
                            HasValue = true,
                            Labels = labels,
                        };
                        var value = keys.Encrypt(keyId, new SecretPlaintext(ValueOf(i, v, valueBytes), null), secret.Arn, version.VersionId);
                        await writer.InsertVersionAsync(secret.Key, version, value);
                    }
                }
                return 0;
            }, CancellationToken.None);
        }
        return clock.Elapsed;
    }
}
