using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Tumbler.Server.Tests.Support;

namespace Tumbler.Server.Tests.Faults;

/// <summary>
/// Many clients writing one secret at once: what each was told is what the store holds afterwards, idempotent
/// repeats create nothing, and the staging labels obey their invariants whatever the interleaving.
/// </summary>
public sealed class ConcurrencyTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const int Clients = 32;
    private const int SharedTokens = 8;

    private sealed record Attempt(int Client, string Token, string Value, HttpStatusCode Status, string? ErrorType);

    private static async Task<(HttpStatusCode Status, string? ErrorType, JsonElement Body)> ResultOf(Task<HttpResponseMessage> call)
    {
        using var response = await call;
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
        var type = response.IsSuccessStatusCode ? null : body.GetProperty("__type").GetString();
        return (response.StatusCode, type, body);
    }

    private Task<HttpResponseMessage> Put(string token, string value) =>
        fixture.SendAsync("PutSecretValue", JsonSerializer.Serialize(new { SecretId = Name, ClientRequestToken = token, SecretString = value }));

    private const string Name = "faults/concurrent";

    [Fact]
    public async Task Thirty_two_clients_writing_one_secret_leave_every_acknowledged_version_and_consistent_labels()
    {
        var initialToken = Guid.NewGuid().ToString();
        await fixture.CallAsync("CreateSecret", new { Name, SecretString = "initial", ClientRequestToken = initialToken });

        var shared = Enumerable.Range(0, SharedTokens).Select(_ => Guid.NewGuid().ToString()).ToArray();
        var attempts = new ConcurrentBag<Attempt>();
        var stageMoves = new ConcurrentBag<(HttpStatusCode Status, string? ErrorType)>();
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task Client(int client)
        {
            await start.Task;
            async Task Record(string token, string value)
            {
                var (status, type, _) = await ResultOf(Put(token, value));
                attempts.Add(new Attempt(client, token, value, status, type));
            }

            // Two versions of its own, each sent twice (a client retrying after a lost answer).
            for (var i = 0; i < 2; i++)
            {
                var token = $"{Guid.NewGuid()}";
                var value = $"client {client} value {i}";
                await Record(token, value);
                await Record(token, value);
            }
            // One of the shared tokens: half the clients send its canonical value, a quarter a different one.
            var sharedToken = shared[client % SharedTokens];
            await Record(sharedToken, client % 4 == 3 ? $"conflicting value from {client}" : $"shared value {client % SharedTokens}");

            // Move AWSCURRENT to one of its own acknowledged versions, racing the others.
            var mine = attempts.Where(a => a.Client == client && a.Status == HttpStatusCode.OK).Select(a => a.Token).FirstOrDefault();
            if (mine is null)
            {
                return;
            }
            var (_, _, described) = await ResultOf(fixture.SendAsync("DescribeSecret", JsonSerializer.Serialize(new { SecretId = Name })));
            var current = described.GetProperty("VersionIdsToStages").EnumerateObject()
                .Single(p => p.Value.EnumerateArray().Any(l => l.GetString() == "AWSCURRENT")).Name;
            var (moveStatus, moveType, _) = await ResultOf(fixture.SendAsync("UpdateSecretVersionStage", JsonSerializer.Serialize(new
            {
                SecretId = Name, VersionStage = "AWSCURRENT", MoveToVersionId = mine, RemoveFromVersionId = current,
            })));
            stageMoves.Add((moveStatus, moveType));
        }

        var clients = Enumerable.Range(0, Clients).Select(c => Task.Run(() => Client(c))).ToArray();
        start.SetResult();
        var all = Task.WhenAll(clients);
        Assert.Same(all, await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(60))));
        await all;

        // Every refusal is one a user is entitled to: a token reused with another value, or a stale RemoveFromVersionId.
        Assert.All(attempts, a => Assert.True(a.Status == HttpStatusCode.OK
            || (a.Status == HttpStatusCode.BadRequest && a.ErrorType == "ResourceExistsException"), $"put {a.Token}: {a.Status} {a.ErrorType}"));
        Assert.All(stageMoves, m => Assert.True(m.Status == HttpStatusCode.OK
            || (m.Status == HttpStatusCode.BadRequest && m.ErrorType == "InvalidParameterException"), $"move: {m.Status} {m.ErrorType}"));
        Assert.Contains(stageMoves, m => m.Status == HttpStatusCode.OK);

        // For each token, every acknowledged write carried the same value; refused ones carried another.
        var expected = new Dictionary<string, string> { [initialToken] = "initial" };
        foreach (var byToken in attempts.GroupBy(a => a.Token))
        {
            var acknowledged = byToken.Where(a => a.Status == HttpStatusCode.OK).Select(a => a.Value).Distinct().ToList();
            var value = Assert.Single(acknowledged);
            expected[byToken.Key] = value;
            Assert.All(byToken.Where(a => a.Status != HttpStatusCode.OK), a => Assert.NotEqual(value, a.Value));
        }
        // Own tokens: both sends acknowledged (the repeat is idempotent). Canonical shared sends: never refused unless a conflicting one won.
        Assert.All(attempts.Where(a => !shared.Contains(a.Token)), a => Assert.Equal(HttpStatusCode.OK, a.Status));
        Assert.Equal(1 + 2 * Clients + SharedTokens, expected.Count);

        // The store holds exactly the acknowledged versions: repeats created nothing, refusals left nothing behind.
        var versions = new Dictionary<string, string[]>();
        string? next = null;
        do
        {
            var page = await fixture.CallAsync("ListSecretVersionIds", new { SecretId = Name, IncludeDeprecated = true, MaxResults = 100, NextToken = next });
            foreach (var v in page.GetProperty("Versions").EnumerateArray())
            {
                versions.Add(v.GetProperty("VersionId").GetString()!,
                    v.TryGetProperty("VersionStages", out var stages) ? [.. stages.EnumerateArray().Select(s => s.GetString()!)] : []);
            }
            next = page.TryGetProperty("NextToken", out var token) ? token.GetString() : null;
        }
        while (next is not null);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), versions.Keys.Order(StringComparer.Ordinal));

        // Label invariants.
        Assert.Single(versions, v => v.Value.Contains("AWSCURRENT"));
        Assert.InRange(versions.Count(v => v.Value.Contains("AWSPREVIOUS")), 0, 1);
        Assert.All(versions.Values, stages => Assert.Equal(stages.Length, stages.Distinct().Count()));
        var describe = await fixture.CallAsync("DescribeSecret", new { SecretId = Name });
        var toStages = describe.GetProperty("VersionIdsToStages").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(s => s.GetString()!).Order(StringComparer.Ordinal).ToArray());
        var labelled = versions.Where(v => v.Value.Length > 0).ToDictionary(v => v.Key, v => v.Value.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(labelled.Keys.Order(StringComparer.Ordinal), toStages.Keys.Order(StringComparer.Ordinal));
        Assert.All(labelled, v => Assert.Equal(v.Value, toStages[v.Key]));

        // Every version decrypts to what its acknowledged writer sent; the current one is what an unqualified read returns.
        foreach (var (token, value) in expected)
        {
            var read = await fixture.CallAsync("GetSecretValue", new { SecretId = Name, VersionId = token });
            Assert.Equal(value, read.GetProperty("SecretString").GetString());
        }
        var current = versions.Single(v => v.Value.Contains("AWSCURRENT")).Key;
        var latest = await fixture.CallAsync("GetSecretValue", new { SecretId = Name });
        Assert.Equal((current, expected[current]), (latest.GetProperty("VersionId").GetString(), latest.GetProperty("SecretString").GetString()));
    }
}
