using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Tumbler.Client.Model;

namespace Tumbler.Client;

/// <summary>
/// A typed Secrets Manager client for Tumbler (or AWS): SigV4-signed AWS JSON 1.1 calls, System.Text.Json
/// source-generated serialization. Thread-safe; keep one per application (it pools connections).
/// Errors the server answers are <see cref="TumblerApiException"/> (ErrorCode = the AWS code, e.g.
/// ResourceNotFoundException); an unreachable server or a timeout is <see cref="TumblerClientException"/>.
/// </summary>
public sealed class SecretsManagerClient : ISecretsManager, IDisposable
{
    public const string DefaultEndpoint = "http://127.0.0.1:8787";

    private readonly JsonApiClient _api;

    public SecretsManagerClient(Uri endpoint, AwsCredentials credentials, string region, string? caBundlePath = null, HttpMessageHandler? handler = null) =>
        _api = new JsonApiClient(endpoint, credentials, region, caBundlePath, handler);

    public Uri Endpoint => _api.Endpoint;
    public string Region => _api.Region;

    /// <summary>
    /// Configured as the AWS SDKs are: endpoint from AWS_ENDPOINT_URL_SECRETS_MANAGER, then AWS_ENDPOINT_URL,
    /// then http://127.0.0.1:8787; credentials and region as the aws CLI finds them (<see cref="AwsProfile"/>;
    /// region us-east-1 when none is set); CA bundle from AWS_CA_BUNDLE.
    /// </summary>
    public static SecretsManagerClient FromEnvironment(string? profile = null, HttpMessageHandler? handler = null)
    {
        var endpoint = Env("AWS_ENDPOINT_URL_SECRETS_MANAGER") ?? Env("AWS_ENDPOINT_URL") ?? DefaultEndpoint;
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri))
        {
            throw new TumblerClientException($"The endpoint must be an http:// or https:// URL, got '{endpoint}'.");
        }
        return new SecretsManagerClient(uri, AwsProfile.ResolveCredentials(profile), AwsProfile.ResolveRegion(profile) ?? "us-east-1",
            Env("AWS_CA_BUNDLE"), handler);
    }

    public Task<GetSecretValueResponse> GetSecretValueAsync(GetSecretValueRequest request, CancellationToken cancellationToken = default) =>
        CallAsync("GetSecretValue", request, WireJson.Default.GetSecretValueRequest, WireJson.Default.GetSecretValueResponse, cancellationToken);

    public Task<DescribeSecretResponse> DescribeSecretAsync(DescribeSecretRequest request, CancellationToken cancellationToken = default) =>
        CallAsync("DescribeSecret", request, WireJson.Default.DescribeSecretRequest, WireJson.Default.DescribeSecretResponse, cancellationToken);

    public Task<ListSecretsResponse> ListSecretsAsync(ListSecretsRequest request, CancellationToken cancellationToken = default) =>
        CallAsync("ListSecrets", request, WireJson.Default.ListSecretsRequest, WireJson.Default.ListSecretsResponse, cancellationToken);

    public Task<PutSecretValueResponse> PutSecretValueAsync(PutSecretValueRequest request, CancellationToken cancellationToken = default)
    {
        // The SDKs fill in the idempotency token; the server needs one to name the version.
        request.ClientRequestToken ??= Guid.NewGuid().ToString();
        return CallAsync("PutSecretValue", request, WireJson.Default.PutSecretValueRequest, WireJson.Default.PutSecretValueResponse, cancellationToken);
    }

    public Task<CreateSecretResponse> CreateSecretAsync(CreateSecretRequest request, CancellationToken cancellationToken = default)
    {
        if (request.SecretString is not null || request.SecretBinary is not null)
        {
            request.ClientRequestToken ??= Guid.NewGuid().ToString();
        }
        return CallAsync("CreateSecret", request, WireJson.Default.CreateSecretRequest, WireJson.Default.CreateSecretResponse, cancellationToken);
    }

    public Task<BatchGetSecretValueResponse> BatchGetSecretValueAsync(BatchGetSecretValueRequest request, CancellationToken cancellationToken = default) =>
        CallAsync("BatchGetSecretValue", request, WireJson.Default.BatchGetSecretValueRequest, WireJson.Default.BatchGetSecretValueResponse, cancellationToken);

    public void Dispose() => _api.Dispose();

    private async Task<TResponse> CallAsync<TRequest, TResponse>(string operation, TRequest request,
        JsonTypeInfo<TRequest> requestInfo, JsonTypeInfo<TResponse> responseInfo, CancellationToken ct)
        where TResponse : new()
    {
        ArgumentNullException.ThrowIfNull(request);
        var answer = await _api.SendAsync("secretsmanager." + operation, "secretsmanager", JsonSerializer.SerializeToUtf8Bytes(request, requestInfo), ct);
        try
        {
            return answer.Length == 0 ? new TResponse() : JsonSerializer.Deserialize(answer, responseInfo) ?? new TResponse();
        }
        catch (JsonException e)
        {
            throw new TumblerApiException("SerializationException", $"The {operation} answer is not what was expected: {e.Message}", 200);
        }
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;
}
