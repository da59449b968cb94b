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
/// The one signed transport of the client side: SigV4-signed POSTs to an AWS JSON 1.1 endpoint
/// (Tumbler's Secrets Manager API or its admin APIs). With a CA bundle, the server's certificate must
/// chain to it (the aws CLI's --ca-bundle). Errors become <see cref="TumblerApiException"/> (the server
/// said no) or <see cref="TumblerClientException"/> (it could not be asked).
/// </summary>
public sealed class JsonApiClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly AwsCredentials _credentials;

    /// <param name="handler">For tests and custom pipelines; by default a pooled socket handler (trusting <paramref name="caBundlePath"/> when given).</param>
    public JsonApiClient(Uri endpoint, AwsCredentials credentials, string region, string? caBundlePath = null, HttpMessageHandler? handler = null)
    {
        if (!endpoint.IsAbsoluteUri || (endpoint.Scheme != "http" && endpoint.Scheme != "https"))
        {
            throw new TumblerClientException($"The endpoint must be an http:// or https:// URL, got '{endpoint}'.");
        }
        Endpoint = endpoint;
        Region = region;
        _credentials = credentials;
        var ownsHandler = handler is null;
        if (handler is null)
        {
            var sockets = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
            if (caBundlePath is not null)
            {
                var trusted = new X509Certificate2Collection();
                trusted.ImportFromPemFile(caBundlePath);
                // As the aws CLI with --ca-bundle: no revocation check (a private CA's certificates rarely name a CRL or OCSP responder).
                sockets.SslOptions.CertificateChainPolicy = new X509ChainPolicy
                {
                    TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck,
                };
                sockets.SslOptions.CertificateChainPolicy.CustomTrustStore.AddRange(trusted);
            }
            handler = sockets;
        }
        _http = new HttpClient(handler, disposeHandler: ownsHandler) { Timeout = TimeSpan.FromSeconds(60) };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd($"tumbler-client/{typeof(JsonApiClient).Assembly.GetName().Version?.ToString(3) ?? "0"}");
    }

    public Uri Endpoint { get; }
    public string Region { get; }

    /// <summary>Sends <paramref name="body"/> to <paramref name="target"/> (e.g. "secretsmanager.GetSecretValue") signed for <paramref name="service"/>; returns the JSON answer.</summary>
    public async Task<JsonElement> CallAsync(string target, string service, byte[] body, CancellationToken ct = default)
    {
        var answer = await SendAsync(target, service, body, ct);
        try
        {
            return answer.Length == 0 ? default : JsonDocument.Parse(answer).RootElement.Clone();
        }
        catch (JsonException)
        {
            throw new TumblerApiException("SerializationException", "The server answered something that is not JSON.", 200);
        }
    }

    /// <summary>As <see cref="CallAsync"/>, returning the answer's bytes for a typed reader.</summary>
    public async Task<byte[]> SendAsync(string target, string service, byte[] body, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Endpoint) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-amz-json-1.1");
        request.Headers.TryAddWithoutValidation("X-Amz-Target", target);
        SigV4Signer.Sign(request, body, _credentials.AccessKeyId, _credentials.SecretAccessKey, Region, DateTimeOffset.UtcNow, service, _credentials.SessionToken);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct);
        }
        catch (HttpRequestException e)
        {
            throw new TumblerClientException($"Could not reach {Endpoint}: {e.InnerException?.Message ?? e.Message}", e);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            var operation = target[(target.IndexOf('.') + 1)..];
            throw new TumblerClientException($"{Endpoint} did not answer {operation} within {_http.Timeout.TotalSeconds:0} s.", new TimeoutException(e.Message, e));
        }
        using (response)
        {
            var answer = await response.Content.ReadAsByteArrayAsync(ct);
            return response.IsSuccessStatusCode ? answer : throw Error(answer, (int)response.StatusCode);
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>The AWS error as botocore reads it: code from <c>__type</c> (after any '#', before any ':'), message from <c>message</c> or <c>Message</c>.</summary>
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
}
