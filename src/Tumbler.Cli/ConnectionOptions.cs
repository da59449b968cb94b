using System.CommandLine;
using System.Text.Json;
using Tumbler.Client;

namespace Tumbler.Cli;

/// <summary>
/// The options every command that talks to a server shares, named as the aws CLI names them, with the
/// same environment fallbacks (AWS_ENDPOINT_URL, AWS_REGION/AWS_DEFAULT_REGION, AWS_PROFILE, AWS_CA_BUNDLE).
/// </summary>
internal sealed class ConnectionOptions
{
    public const string DefaultEndpoint = "http://127.0.0.1:8787";

    public Option<string?> EndpointUrl { get; } = new("--endpoint-url")
    {
        Description = $"The Tumbler server (default: AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL, the profile's endpoint_url, else {DefaultEndpoint}).",
        Recursive = true,
    };
    public Option<string?> Region { get; } = new("--region") { Description = "Region to sign for (default: as the aws CLI finds it).", Recursive = true };
    public Option<string?> Profile { get; } = new("--profile")
    {
        Description = "Profile to use: a section of ~/.tumbler/config, else of ~/.aws/credentials (default: TUMBLER_PROFILE, AWS_PROFILE, else default).",
        Recursive = true,
    };
    public Option<string?> CaBundle { get; } = new("--ca-bundle")
    {
        Description = "PEM file of the certificate authority (or self-signed certificate) to trust for HTTPS (default: AWS_CA_BUNDLE, else the profile's ca_bundle).",
        Recursive = true,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(EndpointUrl);
        command.Options.Add(Region);
        command.Options.Add(Profile);
        command.Options.Add(CaBundle);
    }

    /// <summary>
    /// A client for the resolved endpoint, region, credentials and CA bundle: flags, then the environment,
    /// then the profile in ~/.tumbler/config, then ~/.aws (see <see cref="ConnectionResolver"/>).
    /// </summary>
    public JsonApiClient Connect(ParseResult parse)
    {
        var c = ConnectionResolver.Resolve(parse.GetValue(EndpointUrl), parse.GetValue(Region), parse.GetValue(Profile), parse.GetValue(CaBundle));
        return new JsonApiClient(c.Endpoint, c.Credentials, c.Region, c.CaBundle);
    }

    /// <summary>
    /// Runs one call and prints its answer as the aws CLI does (indented JSON, nothing for an empty answer);
    /// an error is one line on standard error and exit code 1.
    /// </summary>
    public async Task<int> RunAsync(ParseResult parse, string operation, Func<JsonApiClient, Task<JsonElement>> call)
    {
        try
        {
            using var client = Connect(parse);
            var answer = await call(client);
            if (answer.ValueKind == JsonValueKind.Object && answer.EnumerateObject().Any())
            {
                Console.WriteLine(JsonSerializer.Serialize(answer, IndentedJson));
            }
            return 0;
        }
        catch (TumblerApiException e)
        {
            await Console.Error.WriteLineAsync($"An error occurred ({e.ErrorCode}) when calling the {operation} operation: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is TumblerClientException or IOException or System.Security.Cryptography.CryptographicException)
        {
            await Console.Error.WriteLineAsync($"tumbler: {e.Message}");
            return 1;
        }
    }

    // Printed for a terminal, as the aws CLI prints: '+' and non-ASCII as themselves, not \uXXXX.
    internal static readonly JsonSerializerOptions IndentedJson = new()
    {
        WriteIndented = true,
        IndentSize = 4,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
