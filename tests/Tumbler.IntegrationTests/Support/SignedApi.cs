using System.Text.Json;
using Tumbler.Client;

namespace Tumbler.IntegrationTests.Support;

/// <summary>
/// Secrets Manager calls from the test process through the client library's signed transport: for loops and
/// polls, where a process per call (aws CLI) would cost more than what is being tested.
/// </summary>
public static class SignedApi
{
    public static JsonApiClient RootClient(TumblerServer server) =>
        new(new Uri(server.Endpoint), new AwsCredentials(server.AccessKeyId, server.SecretAccessKey), "us-east-1");

    public static Task<JsonElement> CallAsync(JsonApiClient client, string operation, object request, CancellationToken ct = default) =>
        client.CallAsync("secretsmanager." + operation, "secretsmanager", JsonSerializer.SerializeToUtf8Bytes(request), ct);
}
