using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Tumbler.Client;

/// <summary>An error the server answered, in the AWS shape (<c>__type</c> and message).</summary>
public sealed class TumblerApiException(string errorCode, string message, int statusCode) : Exception(message)
{
    public string ErrorCode { get; } = errorCode;
    public int StatusCode { get; } = statusCode;
}

/// <summary>A problem on the client's side: no credentials, no endpoint, an unreachable server.</summary>
public sealed class TumblerClientException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Calls an AWS JSON 1.1 endpoint (Tumbler's Secrets Manager API or its admin API) with SigV4-signed
/// POSTs. With a CA bundle, the server's certificate must chain to it (the aws CLI's --ca-bundle).
/// </summary>
public sealed class JsonApiClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _endpoint;
    private readonly AwsCredentials _credentials;
    private readonly string _region;

    public JsonApiClient(Uri endpoint, AwsCredentials credentials, string region, string? caBundlePath = null)
    {
        _endpoint = endpoint;
        _credentials = credentials;
        _region = region;
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        if (caBundlePath is not null)
        {
            var trusted = new X509Certificate2Collection();
            trusted.ImportFromPemFile(caBundlePath);
            handler.SslOptions.CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust };
            handler.SslOptions.CertificateChainPolicy.CustomTrustStore.AddRange(trusted);
        }
        _http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd($"tumbler-client/{typeof(JsonApiClient).Assembly.GetName().Version?.ToString(3) ?? "0"}");
    }

    /// <summary>Sends <paramref name="body"/> to <paramref name="target"/> (e.g. "secretsmanager.GetSecretValue") signed for <paramref name="service"/>; returns the JSON answer.</summary>
    public async Task<JsonElement> CallAsync(string target, string service, byte[] body, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-amz-json-1.1");
        request.Headers.TryAddWithoutValidation("X-Amz-Target", target);
        SigV4Signer.Sign(request, body, _credentials.AccessKeyId, _credentials.SecretAccessKey, _region, DateTimeOffset.UtcNow, service, _credentials.SessionToken);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct);
        }
        catch (HttpRequestException e)
        {
            throw new TumblerClientException($"Could not reach {_endpoint}: {e.InnerException?.Message ?? e.Message}", e);
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            JsonElement json;
            try
            {
                json = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
            }
            catch (JsonException)
            {
                throw new TumblerApiException(((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "The server answered something that is not JSON.", (int)response.StatusCode);
            }
            if (response.IsSuccessStatusCode)
            {
                return json;
            }
            throw new TumblerApiException(ErrorCode(json, response), Message(json), (int)response.StatusCode);
        }
    }

    public void Dispose() => _http.Dispose();

    private static string ErrorCode(JsonElement json, HttpResponseMessage response)
    {
        var code = json.ValueKind == JsonValueKind.Object && json.TryGetProperty("__type", out var type) ? type.GetString() ?? "" : "";
        code = code[(code.IndexOf('#') + 1)..];
        return code.Length > 0 ? code.Split(':')[0] : ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static string Message(JsonElement json)
    {
        if (json.ValueKind != JsonValueKind.Object)
        {
            return "";
        }
        return json.TryGetProperty("message", out var lower) ? lower.GetString() ?? ""
            : json.TryGetProperty("Message", out var upper) ? upper.GetString() ?? "" : "";
    }
}
