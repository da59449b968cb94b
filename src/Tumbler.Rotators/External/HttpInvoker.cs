using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Tumbler.Core.Rotation;

namespace Tumbler.Rotators.External;

/// <summary>
/// Runs one step of an HTTP function: POSTs the event JSON; any 2xx answer is success. Every request
/// carries <c>X-Tumbler-Signature: t=UNIX_SECONDS,v1=HEX</c>, where HEX is the lower-case hex
/// HMAC-SHA256, keyed with the function's shared secret (its UTF-8 bytes), of
/// <c>UNIX_SECONDS + "." + BODY</c> (the exact body bytes). The endpoint should recompute it, compare in
/// constant time and refuse a timestamp more than five minutes away from its clock.
/// </summary>
public static class HttpInvoker
{
    public const string SignatureHeader = "X-Tumbler-Signature";
    public const string FunctionHeader = "X-Tumbler-Function";

    private static readonly HttpClient Http = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        UseCookies = false,
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>The signature header value for a body sent at <paramref name="time"/>.</summary>
    public static string Sign(string sharedSecret, DateTimeOffset time, ReadOnlySpan<byte> body)
    {
        var timestamp = time.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var signed = new byte[timestamp.Length + 1 + body.Length];
        Encoding.ASCII.GetBytes(timestamp, signed);
        signed[timestamp.Length] = (byte)'.';
        body.CopyTo(signed.AsSpan(timestamp.Length + 1));
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(sharedSecret), signed);
        return $"t={timestamp},v1={Convert.ToHexStringLower(mac)}";
    }

    internal static async Task RunAsync(string functionName, Uri url, string sharedSecret, byte[] eventJson, TimeSpan timeout, int outputCap, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(eventJson) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.TryAddWithoutValidation(SignatureHeader, Sign(sharedSecret, DateTimeOffset.UtcNow, eventJson));
        request.Headers.TryAddWithoutValidation(FunctionHeader, functionName);
        try
        {
            using var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
            if (response.IsSuccessStatusCode)
            {
                return;
            }
            var body = await ReadCappedAsync(response, outputCap, deadline.Token);
            throw new RotationStepException($"Function {functionName} answered HTTP {(int)response.StatusCode}{(body.Length > 0 ? "; body: " + body : "")}");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new RotationStepException($"Function {functionName} did not answer within {timeout.TotalSeconds:0.###} seconds");
        }
        catch (HttpRequestException e)
        {
            throw new RotationStepException($"Function {functionName} could not be reached at {url.GetLeftPart(UriPartial.Authority)}: {e.Message}");
        }
    }

    private static async Task<string> ReadCappedAsync(HttpResponseMessage response, int cap, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[cap];
        var length = 0;
        int read;
        while (length < cap && (read = await stream.ReadAsync(buffer.AsMemory(length), ct)) > 0)
        {
            length += read;
        }
        var text = Encoding.UTF8.GetString(buffer, 0, length);
        return new string([.. text.Select(c => char.IsControl(c) && c is not '\n' and not '\t' ? '?' : c)]).TrimEnd();
    }
}
