using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tumbler.Core.Audit;
using Tumbler.Core.Crypto;
using Tumbler.Core.Storage;

namespace Tumbler.Server.Hosting;

/// <summary>
/// Unauthenticated probes for load balancers and orchestrators. They say only whether the server can
/// serve, never anything about secrets: live = the process answers; ready = the store answers, the
/// keys are usable (all of them: none left unreadable by a root key rotated elsewhere) and the audit log can be written.
/// </summary>
public static class HealthEndpoints
{
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(2);

    public static void MapHealth(this IEndpointRouteBuilder routes, ISecretStore store, KeyRing keys, IAuditLog audit)
    {
        routes.MapGet("/health/live", () => Results.Text("ok"));
        routes.MapGet("/health/ready", async (HttpContext http) =>
        {
            var failures = new List<string>();
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
                timeout.CancelAfter(CheckTimeout);
                await store.GetSettingAsync("root_key_check", timeout.Token);
            }
            catch (Exception e) when (e is not OperationCanceledException || !http.RequestAborted.IsCancellationRequested)
            {
                failures.Add("store: not answering");
            }
            if (!keys.IsUsable)
            {
                failures.Add("keys: the default key is not available");
            }
            if (keys.UnreadableKeys.Count > 0)
            {
                // Out of the load balancer rather than answering DecryptionFailure for what the other nodes can read.
                failures.Add($"keys: {keys.UnreadableKeys.Count} KMS-like key(s) have material this node's root key cannot unwrap; restart it with the current root key");
            }
            if (!audit.CheckHealth())
            {
                failures.Add("audit: the audit log cannot be written");
            }
            http.Response.StatusCode = failures.Count == 0 ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync(JsonSerializer.Serialize(
                new HealthReport(failures.Count == 0 ? "ready" : "not ready", failures), HealthJson.Default.HealthReport), http.RequestAborted);
        });
    }
}

internal sealed record HealthReport(string Status, IReadOnlyList<string> Problems);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(HealthReport))]
internal sealed partial class HealthJson : System.Text.Json.Serialization.JsonSerializerContext;
