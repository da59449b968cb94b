using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.Client;

namespace Tumbler.Cli;

/// <summary>Secrets Manager calls for the client commands; remembers the operation in flight for the error line.</summary>
internal sealed class SecretsApi(JsonApiClient client, CancellationToken ct)
{
    public string Operation { get; private set; } = "";

    public Task<JsonElement> CallAsync(string operation, JsonObject body)
    {
        Operation = operation;
        return client.CallAsync("secretsmanager." + operation, "secretsmanager", JsonSerializer.SerializeToUtf8Bytes(body), ct);
    }
}

/// <summary>Runs a client command: connects, reports errors as one line on standard error with exit code 1.</summary>
internal static class ClientRunner
{
    public static async Task<int> RunAsync(ConnectionOptions connection, ParseResult parse, Func<SecretsApi, Task<int>> body, CancellationToken ct)
    {
        SecretsApi? api = null;
        try
        {
            using var client = connection.Connect(parse);
            api = new SecretsApi(client, ct);
            return await body(api);
        }
        catch (TumblerApiException e)
        {
            await Console.Error.WriteLineAsync($"An error occurred ({e.ErrorCode}) when calling the {api?.Operation} operation: {OneLine(e.Message)}");
            return 1;
        }
        catch (Exception e) when (e is TumblerClientException or IOException or CryptographicException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"tumbler: {OneLine(e.Message)}");
            return 1;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return 130;
        }
    }

    public static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();

    public static void PrintJson(JsonElement json) => Console.WriteLine(JsonSerializer.Serialize(json, ConnectionOptions.IndentedJson));

    public static void PrintJson(JsonNode json) => Console.WriteLine(json.ToJsonString(ConnectionOptions.IndentedJson));
}
