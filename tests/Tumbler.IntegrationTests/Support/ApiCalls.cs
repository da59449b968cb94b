using System.Text.Json;
using Tumbler.Client;

namespace Tumbler.IntegrationTests.Support;

/// <summary>Raw signed Secrets Manager calls against a <c>tumbler serve</c> process, as root.</summary>
public static class ApiCalls
{
    /// <summary>A signed JSON client for the server's endpoint with its root credentials.</summary>
    public static JsonApiClient ApiClient(this TumblerServer server) =>
        new(new Uri(server.Endpoint), new AwsCredentials(server.AccessKeyId, server.SecretAccessKey), "us-east-1");

    /// <summary>Calls secretsmanager.<paramref name="operation"/>; an error answer throws <see cref="TumblerApiException"/>.</summary>
    public static Task<JsonElement> SecretsManagerAsync(this JsonApiClient client, string operation, object request, CancellationToken ct = default) =>
        client.CallAsync("secretsmanager." + operation, "secretsmanager", JsonSerializer.SerializeToUtf8Bytes(request), ct);

    /// <summary>Every version of a secret (deprecated ones included) with its staging labels, all pages.</summary>
    public static async Task<Dictionary<string, string[]>> VersionsAsync(this JsonApiClient client, string secretId, CancellationToken ct = default)
    {
        var versions = new Dictionary<string, string[]>(StringComparer.Ordinal);
        string? next = null;
        do
        {
            var page = await client.SecretsManagerAsync("ListSecretVersionIds",
                new { SecretId = secretId, IncludeDeprecated = true, MaxResults = 100, NextToken = next }, ct).ConfigureAwait(false);
            foreach (var v in page.GetProperty("Versions").EnumerateArray())
            {
                versions.Add(v.GetProperty("VersionId").GetString()!,
                    v.TryGetProperty("VersionStages", out var stages) ? [.. stages.EnumerateArray().Select(s => s.GetString()!)] : []);
            }
            next = page.TryGetProperty("NextToken", out var token) ? token.GetString() : null;
        }
        while (next is not null);
        return versions;
    }

    /// <summary>
    /// The staging-label invariants every secret satisfies at every moment: exactly one AWSCURRENT, at most one
    /// AWSPREVIOUS, and every label on exactly one version (never twice on one, never on two).
    /// </summary>
    public static void AssertLabelInvariants(string secretId, IReadOnlyDictionary<string, string[]> versions)
    {
        var holders = versions.SelectMany(v => v.Value.Select(label => (Label: label, Version: v.Key)))
            .GroupBy(h => h.Label, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(h => h.Version).ToList(), StringComparer.Ordinal);
        var shown = string.Join("; ", versions.Select(v => $"{v.Key}: [{string.Join(',', v.Value)}]"));
        Assert.True(holders.TryGetValue("AWSCURRENT", out var current) && current.Count == 1, $"{secretId} must have exactly one AWSCURRENT: {shown}");
        Assert.All(holders, h => Assert.True(h.Value.Count == 1, $"{secretId}: label {h.Key} is on {h.Value.Count} versions: {shown}"));
    }
}
