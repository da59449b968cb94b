using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
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

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly AwsCredentials _credentials;

    /// <param name="endpoint">The server, e.g. http://127.0.0.1:8787.</param>
    /// <param name="credentials">The access key pair to sign with.</param>
    /// <param name="region">The region to sign for (a Tumbler region is a namespace).</param>
    /// <param name="caBundlePath">PEM file of the CA (or self-signed certificate) to trust for HTTPS, as the aws CLI's --ca-bundle.</param>
    /// <param name="handler">The HTTP handler to send through (for proxies, counting, tests); the client does not dispose it.</param>
    public SecretsManagerClient(Uri endpoint, AwsCredentials credentials, string region, string? caBundlePath = null, HttpMessageHandler? handler = null)
    {
        if (!endpoint.IsAbsoluteUri || (endpoint.Scheme != "http" && endpoint.Scheme != "https"))
        {
            throw new TumblerClientException($"The endpoint must be an http:// or https:// URL, got '{endpoint}'.");
        }
        Endpoint = endpoint;
        Region = region;
        _credentials = credentials;
        if (handler is null)
        {
            var sockets = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
            if (caBundlePath is not null)
            {
                var trusted = new X509Certificate2Collection();
                trusted.ImportFromPemFile(caBundlePath);
                sockets.SslOptions.CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust };
                sockets.SslOptions.CertificateChainPolicy.CustomTrustStore.AddRange(trusted);
            }
            handler = sockets;
            _ownsHttp = true;
        }
        _http = new HttpClient(handler, disposeHandler: _ownsHttp) { Timeout = TimeSpan.FromSeconds(60) };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd($"tumbler-client/{typeof(SecretsManagerClient).Assembly.GetName().Version?.ToString(3) ?? "0"}");
    }

    public Uri Endpoint { get; }
    public string Region { get; }

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

    public void Dispose() => _http.Dispose();

    private async Task<TResponse> CallAsync<TRequest, TResponse>(string operation, TRequest request,
        JsonTypeInfo<TRequest> requestInfo, JsonTypeInfo<TResponse> responseInfo, CancellationToken ct)
        where TResponse : new()
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = JsonSerializer.SerializeToUtf8Bytes(request, requestInfo);
        using var message = new HttpRequestMessage(HttpMethod.Post, Endpoint) { Content = new ByteArrayContent(body) };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-amz-json-1.1");
        message.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager." + operation);
        SigV4Signer.Sign(message, body, _credentials.AccessKeyId, _credentials.SecretAccessKey, Region, DateTimeOffset.UtcNow,
            "secretsmanager", _credentials.SessionToken);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, ct);
        }
        catch (HttpRequestException e)
        {
            throw new TumblerClientException($"Could not reach {Endpoint}: {e.InnerException?.Message ?? e.Message}", e);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new TumblerClientException($"{Endpoint} did not answer {operation} within {_http.Timeout.TotalSeconds:0} s.", new TimeoutException(e.Message, e));
        }
        using (response)
        {
            var bytes = await response.Content.ReadAsByteArrayAsync(ct);
            if (response.IsSuccessStatusCode)
            {
                try
                {
                    return bytes.Length == 0 ? new TResponse() : JsonSerializer.Deserialize(bytes, responseInfo) ?? new TResponse();
                }
                catch (JsonException e)
                {
                    throw new TumblerApiException("SerializationException", $"The {operation} answer is not what was expected: {e.Message}", (int)response.StatusCode);
                }
            }
            throw Error(bytes, (int)response.StatusCode);
        }
    }

    private static TumblerApiException Error(byte[] body, int status)
    {
        string code = "", message = "";
        try
        {
            using var json = JsonDocument.Parse(body);
            if (json.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (var member in json.RootElement.EnumerateObject())
                {
                    if (member.Value.ValueKind != JsonValueKind.String)
                    {
                        continue;
                    }
                    if (member.NameEquals("__type"))
                    {
                        code = member.Value.GetString()!;
                    }
                    else if (member.Name.Equals("message", StringComparison.OrdinalIgnoreCase))
                    {
                        message = member.Value.GetString()!;
                    }
                }
            }
        }
        catch (JsonException)
        {
            message = "The server answered something that is not JSON.";
        }
        code = code[(code.IndexOf('#') + 1)..].Split(':')[0];
        return new TumblerApiException(code.Length > 0 ? code : status.ToString(System.Globalization.CultureInfo.InvariantCulture), message, status);
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;
}
