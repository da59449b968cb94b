using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using Tumbler.Core.Access;
using Tumbler.Core.Secrets;

namespace Tumbler.Server.Auth;

/// <summary>A key the server accepts. Session credentials (ASIA...) also carry the SHA-256 of their session token and an expiry.</summary>
public sealed record AccessKeyCredential(string AccessKeyId, string SecretAccessKey, Principal Principal,
    string? SessionTokenSha256 = null, DateTimeOffset? Expiration = null);

public interface ICredentialLookup
{
    ValueTask<AccessKeyCredential?> FindAsync(string accessKeyId, CancellationToken ct);
}

public sealed record SigV4Options
{
    /// <summary>Regions this server serves; the credential scope must name one of them.</summary>
    public required IReadOnlySet<string> Regions { get; init; }

    public required string AccountId { get; init; }

    /// <summary>Dev mode: any access key is accepted and the HMAC is not checked, but the request must
    /// still be well formed, correctly scoped and within the clock-skew window.</summary>
    public bool AcceptAnyCredentials { get; init; }

    public TimeSpan MaxClockSkew { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Services a request may be signed for; the first is the one error messages name.</summary>
    public IReadOnlyList<string> Services { get; init; } = ["secretsmanager"];
}

/// <summary>Who signed, for which region and service (a signature for one service is not accepted by another's operations).</summary>
public sealed record AuthenticatedCaller(string AccessKeyId, string Region, Principal Principal, string? SessionToken, string Service);

/// <summary>
/// Verifies AWS Signature Version 4 header authentication (spec §1.6). Every failure is a
/// <see cref="ServiceException"/> carrying the AWS error code; messages never echo the signature,
/// the Authorization header or any secret.
/// </summary>
public sealed class SigV4Verifier(ICredentialLookup credentials, TimeProvider time, SigV4Options options)
{
    private const string Algorithm = "AWS4-HMAC-SHA256";
    private const string Terminator = "aws4_request";
    private const string AmzDateFormat = "yyyyMMdd'T'HHmmss'Z'";
    private const int MaxCachedSigningKeys = 10_000;

    private const string SignatureMismatch =
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
        + "Access Key and signing method. Consult the service documentation for details.";

    private static readonly string[] PresignParameters = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"];
    private static readonly SearchValues<char> HexDigits = SearchValues.Create("0123456789abcdefABCDEF");
    private static readonly SearchValues<char> Unreserved =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~");
    private static readonly SearchValues<char> UnreservedOrSlash =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~/");

    // Keyed by the secret itself (not the key id) so a rotated secret never hits a stale key.
    private readonly ConcurrentDictionary<(string Secret, string Date, string Region, string Service), byte[]> _signingKeys = new();

    /// <summary>
    /// Authenticates one request. <paramref name="path"/> is the request path as sent on the wire (still
    /// percent-encoded, e.g. the raw request target); it is encoded once more for the canonical URI, as
    /// SigV4 does for every service but S3. <paramref name="queryString"/> may carry a leading '?'.
    /// </summary>
    public async ValueTask<AuthenticatedCaller> VerifyAsync(string method, string path, string queryString,
        IHeaderDictionary headers, ReadOnlyMemory<byte> body, CancellationToken ct)
    {
        RejectQueryAuthentication(queryString);
        var auth = ParseAuthorization(headers);
        var (amzDate, requestTime, usesAmzDateHeader) = ReadRequestTime(headers);
        ValidateScope(auth, amzDate);
        ValidateSignedHeaders(auth, headers, usesAmzDateHeader);
        ValidateClockSkew(amzDate, requestTime);
        string payloadHash = HashPayload(headers, body.Span);

        var token = headers["X-Amz-Security-Token"];
        string? sessionToken = StringValues.IsNullOrEmpty(token) ? null : token.ToString();

        if (options.AcceptAnyCredentials)
        {
            return new AuthenticatedCaller(auth.AccessKeyId, auth.Region, Principal.Root(options.AccountId, auth.AccessKeyId), sessionToken, auth.ScopeService);
        }

        var credential = await credentials.FindAsync(auth.AccessKeyId, ct)
            ?? throw new ServiceException(ErrorCodes.UnrecognizedClient, "The security token included in the request is invalid.");

        // A session credential is only valid with its own session token (X-Amz-Security-Token), and only until it expires;
        // a long-term key with any session token is no pair the server issued (spec §1.6.1), as on AWS.
        if (credential.SessionTokenSha256 is not { } tokenHash
                ? sessionToken is not null
                : sessionToken is null || !CryptographicOperations.FixedTimeEquals(
                    Encoding.ASCII.GetBytes(SessionCredentialService.TokenSha256(sessionToken)), Encoding.ASCII.GetBytes(tokenHash)))
        {
            throw new ServiceException(ErrorCodes.UnrecognizedClient, "The security token included in the request is invalid.");
        }

        if (!SignatureMatches(auth, amzDate, credential.SecretAccessKey, method, path, queryString, headers, payloadHash))
        {
            throw Invalid(SignatureMismatch);
        }

        if (credential.Expiration is { } expiration && time.GetUtcNow() >= expiration)
        {
            throw new ServiceException(ErrorCodes.ExpiredToken, "The security token included in the request is expired");
        }

        return new AuthenticatedCaller(auth.AccessKeyId, auth.Region, credential.Principal, sessionToken, auth.ScopeService);
    }

    private readonly record struct ParsedAuthorization(
        string AccessKeyId, string Scope, string ScopeDate, string Region, string ScopeService, string SignedHeaders,
        string[] SignedHeaderNames, string Signature);

    // Neither SDK presigns calls to this service (spec §1.6.1). Rejecting presigned URLs with an explicit
    // IncompleteSignature tells the caller why, instead of a bare "Missing Authentication Token".
    private static void RejectQueryAuthentication(string queryString)
    {
        var query = queryString.AsSpan().TrimStart('?');
        foreach (var range in query.Split('&'))
        {
            var pair = query[range];
            int equals = pair.IndexOf('=');
            var name = equals < 0 ? pair : pair[..equals];
            foreach (string presign in PresignParameters)
            {
                if (name.Equals(presign, StringComparison.OrdinalIgnoreCase))
                {
                    throw Incomplete("Query-string (presigned URL) authentication is not supported; "
                        + "sign the request with an Authorization header.");
                }
            }
        }
    }

    private static ParsedAuthorization ParseAuthorization(IHeaderDictionary headers)
    {
        var values = headers.Authorization;
        if (values.Count > 1)
        {
            throw Incomplete("The request must carry exactly one Authorization header.");
        }

        string header = values.ToString().Trim();
        if (header.Length == 0)
        {
            throw new ServiceException(ErrorCodes.MissingAuthenticationToken, "Missing Authentication Token");
        }

        int space = header.IndexOf(' ', StringComparison.Ordinal);
        var algorithm = space < 0 ? header.AsSpan() : header.AsSpan(0, space);
        if (!algorithm.SequenceEqual(Algorithm))
        {
            throw Incomplete($"Unsupported Authorization algorithm: only {Algorithm} is accepted.");
        }

        string? credential = null, signedHeaders = null, signature = null;
        var components = space < 0 ? ReadOnlySpan<char>.Empty : header.AsSpan(space + 1);
        foreach (var range in components.Split(','))
        {
            var component = components[range].Trim();
            if (component.IsEmpty)
            {
                continue;
            }

            int equals = component.IndexOf('=');
            if (equals < 0)
            {
                throw Incomplete("Each Authorization header component must have the form key=value.");
            }

            var key = component[..equals].Trim();
            string value = component[(equals + 1)..].Trim().ToString();
            if (key.SequenceEqual("Credential"))
            {
                credential = credential is null ? value : throw Duplicate("Credential");
            }
            else if (key.SequenceEqual("SignedHeaders"))
            {
                signedHeaders = signedHeaders is null ? value : throw Duplicate("SignedHeaders");
            }
            else if (key.SequenceEqual("Signature"))
            {
                signature = signature is null ? value : throw Duplicate("Signature");
            }
        }

        if (credential is null || signedHeaders is null || signature is null)
        {
            var missing = new List<string>(3);
            if (credential is null) missing.Add("Authorization header requires 'Credential' parameter.");
            if (signature is null) missing.Add("Authorization header requires 'Signature' parameter.");
            if (signedHeaders is null) missing.Add("Authorization header requires 'SignedHeaders' parameter.");
            throw Incomplete(string.Join(' ', missing));
        }

        string[] scope = credential.Split('/');
        if (scope.Length != 5 || Array.Exists(scope, part => part.Length == 0))
        {
            throw Incomplete("Credential must have exactly 5 non-empty slash-delimited elements: "
                + "<access key id>/<yyyyMMdd>/<region>/<service>/aws4_request.");
        }

        if (scope[4] != Terminator)
        {
            throw Incomplete($"Credential should be scoped with a valid terminator: '{Terminator}'.");
        }

        // Names are matched and canonicalised in lower case; ToLowerInvariant returns the same instance for
        // the usual, already lower-case names.
        string[] names = signedHeaders.Split(';');
        for (int i = 0; i < names.Length; i++)
        {
            if (names[i].Length == 0)
            {
                throw Incomplete("SignedHeaders must be a non-empty, semicolon-separated list of header names.");
            }

            names[i] = names[i].ToLowerInvariant();
        }

        if (signature.Length != 64 || signature.AsSpan().ContainsAnyExcept(HexDigits))
        {
            throw Incomplete("Signature must be 64 hexadecimal characters.");
        }

        return new ParsedAuthorization(scope[0], credential[(scope[0].Length + 1)..], scope[1], scope[2], scope[3],
            signedHeaders, names, signature);
    }

    private static (string AmzDate, DateTimeOffset Time, bool UsesAmzDateHeader) ReadRequestTime(IHeaderDictionary headers)
    {
        var amzDate = headers["X-Amz-Date"];
        if (!StringValues.IsNullOrEmpty(amzDate))
        {
            string value = amzDate.ToString();
            return TryParseAmzDate(value, out var time)
                ? (value, time, true)
                : throw Incomplete("X-Amz-Date must be a UTC timestamp in the format yyyyMMdd'T'HHmmss'Z'.");
        }

        // SigV4 allows the Date header as the timestamp when X-Amz-Date is absent, in either the SigV4
        // basic format or RFC 1123; the string to sign always uses the basic format.
        var date = headers.Date;
        if (!StringValues.IsNullOrEmpty(date))
        {
            string value = date.ToString();
            if (TryParseAmzDate(value, out var time)
                || DateTimeOffset.TryParseExact(value, "r", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out time))
            {
                return (FormatAmzDate(time), time, false);
            }

            throw Incomplete("Date must be a UTC timestamp in the format yyyyMMdd'T'HHmmss'Z' or RFC 1123.");
        }

        throw Incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
    }

    private void ValidateScope(ParsedAuthorization auth, string amzDate)
    {
        if (!amzDate.AsSpan(0, 8).SequenceEqual(auth.ScopeDate))
        {
            throw Invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                + $"'{auth.ScopeDate}' != '{amzDate[..8]}'.");
        }

        if (!options.Services.Contains(auth.ScopeService))
        {
            throw Invalid($"Credential should be scoped to correct service: '{options.Services[0]}'.");
        }

        if (!options.Regions.Contains(auth.Region))
        {
            throw Invalid("Credential should be scoped to a valid region. This server serves: "
                + $"{string.Join(", ", options.Regions.Order(StringComparer.Ordinal))}.");
        }
    }

    private static void ValidateSignedHeaders(ParsedAuthorization auth, IHeaderDictionary headers, bool usesAmzDateHeader)
    {
        if (Array.IndexOf(auth.SignedHeaderNames, "host") < 0)
        {
            throw Invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
        }

        if (usesAmzDateHeader && Array.IndexOf(auth.SignedHeaderNames, "x-amz-date") < 0)
        {
            throw Invalid("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
        }

        // The operation travels in X-Amz-Target: unsigned, a captured request could be replayed as another operation.
        if (headers.ContainsKey("X-Amz-Target") && Array.IndexOf(auth.SignedHeaderNames, "x-amz-target") < 0)
        {
            throw Invalid("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.");
        }

        foreach (string name in auth.SignedHeaderNames)
        {
            if (!headers.ContainsKey(name))
            {
                throw Invalid($"Signed header '{name}' is not present in the request.");
            }
        }
    }

    private void ValidateClockSkew(string amzDate, DateTimeOffset requestTime)
    {
        var now = time.GetUtcNow();
        var skew = options.MaxClockSkew;
        string window = skew.TotalMinutes.ToString("0.##", CultureInfo.InvariantCulture);
        if (requestTime < now - skew)
        {
            throw Invalid($"Signature expired: {amzDate} is now earlier than {FormatAmzDate(now - skew)} "
                + $"({FormatAmzDate(now)} - {window} min.)");
        }

        if (requestTime > now + skew)
        {
            throw Invalid($"Signature not yet current: {amzDate} is still later than {FormatAmzDate(now + skew)} "
                + $"({FormatAmzDate(now)} + {window} min.)");
        }
    }

    // The payload hash is always computed from the bytes received, never taken from the header; a
    // declared hash (JS v3 sends one) must match it exactly, so UNSIGNED-PAYLOAD is rejected too.
    private static string HashPayload(IHeaderDictionary headers, ReadOnlySpan<byte> body)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(body, hash);
        string hex = Convert.ToHexStringLower(hash);

        var declared = headers["x-amz-content-sha256"];
        if (declared.Count > 0 && !string.Equals(declared.ToString(), hex, StringComparison.Ordinal))
        {
            throw Invalid("The provided 'x-amz-content-sha256' header does not match what was computed.");
        }

        return hex;
    }

    private bool SignatureMatches(ParsedAuthorization auth, string amzDate, string secretAccessKey, string method,
        string path, string queryString, IHeaderDictionary headers, string payloadHash)
    {
        Span<byte> canonicalRequestHash = stackalloc byte[SHA256.HashSizeInBytes];
        Span<char> canonicalRequestHex = stackalloc char[SHA256.HashSizeInBytes * 2];
        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        Span<byte> provided = stackalloc byte[HMACSHA256.HashSizeInBytes];

        var buffer = new Utf8Buffer(1024);
        try
        {
            WriteCanonicalRequest(ref buffer, auth, method, path, queryString, headers, payloadHash);
            SHA256.HashData(buffer.Written, canonicalRequestHash);
            Convert.TryToHexStringLower(canonicalRequestHash, canonicalRequestHex, out _);

            buffer.Clear();
            buffer.Append(Algorithm);
            buffer.Append('\n');
            buffer.Append(amzDate);
            buffer.Append('\n');
            buffer.Append(auth.Scope);
            buffer.Append('\n');
            buffer.Append(canonicalRequestHex);

            HMACSHA256.HashData(GetSigningKey(secretAccessKey, auth.ScopeDate, auth.Region, auth.ScopeService), buffer.Written, expected);
        }
        finally
        {
            buffer.Dispose();
        }

        Convert.FromHexString(auth.Signature, provided, out _, out _);
        return CryptographicOperations.FixedTimeEquals(expected, provided);
    }

    private static void WriteCanonicalRequest(ref Utf8Buffer buffer, ParsedAuthorization auth, string method, string path,
        string queryString, IHeaderDictionary headers, string payloadHash)
    {
        buffer.Append(method);
        buffer.Append('\n');
        buffer.Append(CanonicalUri(path));
        buffer.Append('\n');
        buffer.Append(CanonicalQueryString(queryString));
        buffer.Append('\n');
        foreach (string name in auth.SignedHeaderNames)
        {
            buffer.Append(name);
            buffer.Append(':');
            AppendCanonicalHeaderValue(ref buffer, headers[name]);
            buffer.Append('\n');
        }

        buffer.Append('\n');
        buffer.Append(auth.SignedHeaders);
        buffer.Append('\n');
        buffer.Append(payloadHash);
    }

    // Each value trimmed with inner whitespace runs collapsed to one space; repeated headers joined by ','.
    private static void AppendCanonicalHeaderValue(ref Utf8Buffer buffer, StringValues values)
    {
        for (int i = 0; i < values.Count; i++)
        {
            if (i > 0)
            {
                buffer.Append(',');
            }

            var rest = values[i].AsSpan().Trim();
            while (!rest.IsEmpty)
            {
                int gap = IndexOfWhiteSpace(rest);
                if (gap < 0)
                {
                    buffer.Append(rest);
                    break;
                }

                buffer.Append(rest[..gap]);
                buffer.Append(' ');
                rest = rest[gap..].TrimStart();
            }
        }
    }

    private static int IndexOfWhiteSpace(ReadOnlySpan<char> text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsWhiteSpace(text[i]))
            {
                return i;
            }
        }

        return -1;
    }

    private static string CanonicalUri(string path) => path.Length == 0 ? "/" : UriEncode(path, keepSlash: true);

    // Parameters decoded, re-encoded with the SigV4 rules and sorted by name, then value. This service
    // never uses a query string, so this is off the hot path.
    private static string CanonicalQueryString(string queryString)
    {
        var query = queryString.AsSpan().TrimStart('?');
        if (query.IsEmpty)
        {
            return "";
        }

        var parameters = new List<(string Name, string Value)>();
        foreach (var range in query.Split('&'))
        {
            var pair = query[range];
            if (pair.IsEmpty)
            {
                continue;
            }

            int equals = pair.IndexOf('=');
            var name = equals < 0 ? pair : pair[..equals];
            var value = equals < 0 ? ReadOnlySpan<char>.Empty : pair[(equals + 1)..];
            parameters.Add((UriEncode(Uri.UnescapeDataString(name), keepSlash: false),
                UriEncode(Uri.UnescapeDataString(value), keepSlash: false)));
        }

        parameters.Sort((a, b) =>
        {
            int byName = string.CompareOrdinal(a.Name, b.Name);
            return byName != 0 ? byName : string.CompareOrdinal(a.Value, b.Value);
        });
        return string.Join('&', parameters.Select(p => $"{p.Name}={p.Value}"));
    }

    // SigV4 URI encoding: unreserved characters (A-Z a-z 0-9 - _ . ~) verbatim, every other UTF-8 byte as %XX.
    private static string UriEncode(string value, bool keepSlash)
    {
        var verbatim = keepSlash ? UnreservedOrSlash : Unreserved;
        if (!value.AsSpan().ContainsAnyExcept(verbatim))
        {
            return value;
        }

        var encoded = new StringBuilder(value.Length * 3);
        foreach (byte b in Encoding.UTF8.GetBytes(value))
        {
            if (verbatim.Contains((char)b))
            {
                encoded.Append((char)b);
            }
            else
            {
                encoded.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return encoded.ToString();
    }

    private byte[] GetSigningKey(string secretAccessKey, string date, string region, string service)
    {
        var cacheKey = (secretAccessKey, date, region, service);
        if (_signingKeys.TryGetValue(cacheKey, out byte[]? signingKey))
        {
            return signingKey;
        }

        signingKey = DeriveSigningKey(secretAccessKey, date, region, service);
        // Keys change daily, so the cache only grows by (keys x regions) per day; a rare full clear is
        // simpler than LRU bookkeeping on the hot path.
        if (_signingKeys.Count >= MaxCachedSigningKeys)
        {
            _signingKeys.Clear();
        }

        _signingKeys[cacheKey] = signingKey;
        return signingKey;
    }

    private static byte[] DeriveSigningKey(string secretAccessKey, string date, string region, string service)
    {
        byte[] secret = new byte[4 + Encoding.UTF8.GetByteCount(secretAccessKey)];
        "AWS4"u8.CopyTo(secret);
        Encoding.UTF8.GetBytes(secretAccessKey, secret.AsSpan(4));

        Span<byte> a = stackalloc byte[HMACSHA256.HashSizeInBytes];
        Span<byte> b = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(secret, Encoding.UTF8.GetBytes(date), a);
        HMACSHA256.HashData(a, Encoding.UTF8.GetBytes(region), b);
        HMACSHA256.HashData(b, Encoding.UTF8.GetBytes(service), a);
        HMACSHA256.HashData(a, Encoding.UTF8.GetBytes(Terminator), b);

        CryptographicOperations.ZeroMemory(secret);
        CryptographicOperations.ZeroMemory(a);
        return b.ToArray();
    }

    private static bool TryParseAmzDate(string value, out DateTimeOffset time)
    {
        time = default;
        return value.Length == "yyyyMMddTHHmmssZ".Length
            && DateTimeOffset.TryParseExact(value, AmzDateFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out time);
    }

    private static string FormatAmzDate(DateTimeOffset time) =>
        time.UtcDateTime.ToString(AmzDateFormat, CultureInfo.InvariantCulture);

    private static ServiceException Incomplete(string message) => new(ErrorCodes.IncompleteSignature, message);

    private static ServiceException Invalid(string message) => new(ErrorCodes.InvalidSignature, message);

    private static ServiceException Duplicate(string parameter) =>
        Incomplete($"Authorization header contains more than one '{parameter}' parameter.");

    /// <summary>A growable UTF-8 buffer rented from the shared pool, so building the canonical request and
    /// the string to sign allocates nothing per request.</summary>
    private ref struct Utf8Buffer(int initialCapacity)
    {
        private byte[] _bytes = ArrayPool<byte>.Shared.Rent(initialCapacity);
        private int _length;

        public readonly ReadOnlySpan<byte> Written => _bytes.AsSpan(0, _length);

        public void Clear() => _length = 0;

        public void Append(char ascii)
        {
            Reserve(1);
            _bytes[_length++] = (byte)ascii;
        }

        public void Append(scoped ReadOnlySpan<char> text)
        {
            Reserve(Encoding.UTF8.GetMaxByteCount(text.Length));
            _length += Encoding.UTF8.GetBytes(text, _bytes.AsSpan(_length));
        }

        public readonly void Dispose() => ArrayPool<byte>.Shared.Return(_bytes);

        private void Reserve(int count)
        {
            if (_length + count <= _bytes.Length)
            {
                return;
            }

            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(_bytes.Length * 2, _length + count));
            Written.CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_bytes);
            _bytes = larger;
        }
    }
}
