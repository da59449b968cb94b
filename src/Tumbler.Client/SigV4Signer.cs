using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Tumbler.Client;

/// <summary>
/// Client-side AWS Signature Version 4 signer for the tumbler CLI, Tumbler.Client users and the tests.
/// Deliberately a plain string-based implementation, independent of the server's verifier, and pinned
/// to AWS's published aws-sig-v4-test-suite vectors in SigV4VerifierTests.
/// </summary>
public static class SigV4Signer
{
    public const string AmzDateFormat = "yyyyMMdd'T'HHmmss'Z'";

    /// <summary>
    /// Signs <paramref name="request"/> the way botocore does for Secrets Manager: sets X-Amz-Date,
    /// X-Amz-Security-Token (when given) and Authorization, signing host, x-amz-date, x-amz-target,
    /// content-type and x-amz-security-token (each when present). <paramref name="body"/> must be the
    /// exact bytes the request content will send.
    /// </summary>
    public static void Sign(HttpRequestMessage request, byte[] body, string accessKeyId, string secretAccessKey,
        string region, DateTimeOffset now, string service = "secretsmanager", string? sessionToken = null)
    {
        var uri = request.RequestUri is { IsAbsoluteUri: true } absolute
            ? absolute
            : throw new ArgumentException("The request needs an absolute RequestUri.", nameof(request));
        string amzDate = now.UtcDateTime.ToString(AmzDateFormat, CultureInfo.InvariantCulture);

        request.Headers.Remove("Authorization");
        request.Headers.Remove("X-Amz-Date");
        request.Headers.Remove("X-Amz-Security-Token");
        request.Headers.TryAddWithoutValidation("X-Amz-Date", amzDate);
        if (sessionToken is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Amz-Security-Token", sessionToken);
        }

        // HttpClient sends Uri.Authority as Host (port included only when it is not the default).
        var signed = new List<KeyValuePair<string, string>>
        {
            new("host", request.Headers.Host ?? uri.Authority),
            new("x-amz-date", amzDate),
        };
        if (request.Headers.TryGetValues("X-Amz-Target", out var target))
        {
            signed.Add(new("x-amz-target", string.Join(',', target)));
        }

        if (request.Content?.Headers.ContentType is { } contentType)
        {
            signed.Add(new("content-type", contentType.ToString()));
        }

        if (sessionToken is not null)
        {
            signed.Add(new("x-amz-security-token", sessionToken));
        }

        string authorization = CreateAuthorization(request.Method.Method, uri.AbsolutePath, uri.Query, signed, body,
            accessKeyId, secretAccessKey, region, amzDate, service);
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
    }

    /// <summary>
    /// Computes the Authorization header value over exactly <paramref name="signedHeaders"/> (a repeated
    /// name means a repeated header). <paramref name="path"/> is the path as sent on the wire;
    /// <paramref name="amzDate"/> is the request time in <see cref="AmzDateFormat"/>.
    /// </summary>
    public static string CreateAuthorization(string method, string path, string query,
        IEnumerable<KeyValuePair<string, string>> signedHeaders, byte[] body, string accessKeyId,
        string secretAccessKey, string region, string amzDate, string service = "secretsmanager")
    {
        var headers = signedHeaders
            .GroupBy(h => h.Key.ToLowerInvariant())
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToList();
        string canonicalHeaders = string.Concat(headers.Select(g => $"{g.Key}:{string.Join(',', g.Select(h => Collapse(h.Value)))}\n"));
        string signedHeaderNames = string.Join(';', headers.Select(g => g.Key));

        string canonicalRequest = string.Join('\n',
            method,
            path.Length == 0 ? "/" : Encode(path, keepSlash: true),
            CanonicalQuery(query),
            canonicalHeaders,
            signedHeaderNames,
            Hex(SHA256.HashData(body)));

        string scope = $"{amzDate[..8]}/{region}/{service}/aws4_request";
        string stringToSign = string.Join('\n',
            "AWS4-HMAC-SHA256", amzDate, scope, Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest))));

        byte[] key = Encoding.UTF8.GetBytes("AWS4" + secretAccessKey);
        foreach (string part in new[] { amzDate[..8], region, service, "aws4_request" })
        {
            key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(part));
        }

        string signature = Hex(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
        return $"AWS4-HMAC-SHA256 Credential={accessKeyId}/{scope}, SignedHeaders={signedHeaderNames}, Signature={signature}";
    }

    private static string Collapse(string value) =>
        string.Join(' ', value.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    private static string CanonicalQuery(string query)
    {
        var pairs = query.TrimStart('?')
            .Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair => pair.Split('=', 2))
            .Select(parts => (
                Name: Encode(Uri.UnescapeDataString(parts[0]), keepSlash: false),
                Value: Encode(parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : "", keepSlash: false)))
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .ThenBy(p => p.Value, StringComparer.Ordinal);
        return string.Join('&', pairs.Select(p => $"{p.Name}={p.Value}"));
    }

    private static string Encode(string value, bool keepSlash)
    {
        var encoded = new StringBuilder();
        foreach (byte b in Encoding.UTF8.GetBytes(value))
        {
            char c = (char)b;
            bool unreserved = char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~' || (keepSlash && c == '/');
            encoded.Append(unreserved ? c.ToString() : $"%{b:X2}");
        }

        return encoded.ToString();
    }

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);
}
