using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using Tumbler.Client;
using Tumbler.Core.Access;
using Tumbler.Core.Secrets;
using Tumbler.Server.Auth;
using Tumbler.Server.Tests.Support;

namespace Tumbler.Server.Tests.Auth;

public sealed class SigV4VerifierTests
{
    private const string AccessKeyId = "AKIATUMBLERTEST00001";
    private const string SecretKey = "tumblerTestSecret/K7MDENG+bPxRfiCYEXAMPLE";
    private const string PrincipalArn = "arn:aws:iam::123456789012:user/alice";
    private static readonly Principal Alice = Principal.User(PrincipalArn, "123456789012", AccessKeyId, []);
    private const string AccountId = "123456789012";
    private const string Endpoint = "https://secretsmanager.us-east-1.amazonaws.com/";
    private const string SignatureMismatch =
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
        + "Access Key and signing method. Consult the service documentation for details.";

    // The instant of the field report quoted in spec §1.6.3, so the skew messages can be compared verbatim.
    private static readonly DateTimeOffset Now = new(2025, 11, 6, 13, 26, 8, TimeSpan.Zero);
    private static readonly byte[] Body = Encoding.UTF8.GetBytes("{\"SecretId\": \"MyTestSecret\"}");

    // ---- AWS aws-sig-v4-test-suite vectors (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html):
    // credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1, service "service",
    // time 20150830T123600Z. The Authorization values are copied from the suite's .authz files and were
    // re-derived independently with a throwaway python3 hmac/hashlib script.

    private const string SuiteKeyId = "AKIDEXAMPLE";
    private const string SuiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    private const string SuiteDate = "20150830T123600Z";
    private const string SuiteHost = "example.amazonaws.com";
    private const string SuiteToken =
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/"
        + "qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38x"
        + "Vqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
    private static readonly DateTimeOffset SuiteNow = new(2015, 8, 30, 12, 36, 0, TimeSpan.Zero);

    private sealed record AwsVector(string Method, string Path, string Query, (string Name, string Value)[] Headers,
        string Body, string Signature);

    private static (string, string)[] SuiteHeaders(params (string, string)[] extra) =>
        [("Host", SuiteHost), ("X-Amz-Date", SuiteDate), .. extra];

    private static readonly Dictionary<string, AwsVector> AwsVectors = new()
    {
        ["get-vanilla"] = new("GET", "/", "", SuiteHeaders(), "",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ["get-vanilla-query-order-key"] = new("GET", "/", "?Param1=value2&Param1=Value1", SuiteHeaders(), "",
            "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
        ["get-vanilla-utf8-query"] = new("GET", "/", "?\u1234=bar", SuiteHeaders(), "",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        ["get-utf8"] = new("GET", "/\u1234", "", SuiteHeaders(), "",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
        ["get-unreserved"] = new("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "",
            SuiteHeaders(), "", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
        ["get-header-key-duplicate"] = new("GET", "/", "",
            SuiteHeaders(("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")), "",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
        ["get-header-value-order"] = new("GET", "/", "",
            SuiteHeaders(("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")),
            "", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
        ["get-header-value-trim"] = new("GET", "/", "",
            SuiteHeaders(("My-Header1", " value1 "), ("My-Header2", "\t\"a   b   c\"  ")), "",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        ["post-header-value-case"] = new("POST", "/", "", SuiteHeaders(("My-Header1", "VALUE1")), "",
            "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
        ["post-x-www-form-urlencoded"] = new("POST", "/", "",
            SuiteHeaders(("Content-Type", "application/x-www-form-urlencoded")), "Param1=value1",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
        ["post-sts-header-before"] = new("POST", "/", "", SuiteHeaders(("X-Amz-Security-Token", SuiteToken)), "",
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    };

    private static string SuiteAuthorization(AwsVector vector)
    {
        string signedHeaders = string.Join(';', vector.Headers.Select(h => h.Name.ToLowerInvariant()).Distinct().Order(StringComparer.Ordinal));
        return $"AWS4-HMAC-SHA256 Credential={SuiteKeyId}/20150830/us-east-1/service/aws4_request, "
            + $"SignedHeaders={signedHeaders}, Signature={vector.Signature}";
    }

    [Theory]
    [InlineData("get-vanilla")]
    [InlineData("get-vanilla-query-order-key")]
    [InlineData("get-vanilla-utf8-query")]
    [InlineData("get-utf8")]
    [InlineData("get-unreserved")]
    [InlineData("get-header-key-duplicate")]
    [InlineData("get-header-value-order")]
    [InlineData("get-header-value-trim")]
    [InlineData("post-header-value-case")]
    [InlineData("post-x-www-form-urlencoded")]
    [InlineData("post-sts-header-before")]
    public void Signer_reproduces_aws_test_suite_vector(string name)
    {
        var vector = AwsVectors[name];
        var signedHeaders = vector.Headers.Select(h => new KeyValuePair<string, string>(h.Name, h.Value));

        string authorization = SigV4Signer.CreateAuthorization(vector.Method, vector.Path, vector.Query, signedHeaders,
            Encoding.UTF8.GetBytes(vector.Body), SuiteKeyId, SuiteSecret, "us-east-1", SuiteDate, "service");

        Assert.Equal(SuiteAuthorization(vector), authorization);
    }

    [Theory]
    [InlineData("get-vanilla")]
    [InlineData("get-vanilla-query-order-key")]
    [InlineData("get-vanilla-utf8-query")]
    [InlineData("get-utf8")]
    [InlineData("get-unreserved")]
    [InlineData("get-header-key-duplicate")]
    [InlineData("get-header-value-order")]
    [InlineData("get-header-value-trim")]
    [InlineData("post-header-value-case")]
    [InlineData("post-x-www-form-urlencoded")]
    [InlineData("post-sts-header-before")]
    public async Task Verifier_accepts_aws_test_suite_vector(string name)
    {
        var vector = AwsVectors[name];
        var headers = new HeaderDictionary();
        foreach (var group in vector.Headers.GroupBy(h => h.Name))
        {
            headers[group.Key] = new StringValues(group.Select(h => h.Value).ToArray());
        }

        headers["Authorization"] = SuiteAuthorization(vector);
        var verifier = new SigV4Verifier(
            new InMemoryCredentials(new AccessKeyCredential(SuiteKeyId, SuiteSecret, Alice,
                name == "post-sts-header-before" ? SessionCredentialService.TokenSha256(SuiteToken) : null)),
            new FixedTimeProvider(SuiteNow),
            new SigV4Options { Regions = new HashSet<string> { "us-east-1" }, AccountId = AccountId, Services = ["service"] });

        var caller = await verifier.VerifyAsync(vector.Method, vector.Path, vector.Query, headers,
            Encoding.UTF8.GetBytes(vector.Body), CancellationToken.None);

        Assert.Equal(SuiteKeyId, caller.AccessKeyId);
        Assert.Equal(name == "post-sts-header-before" ? SuiteToken : null, caller.SessionToken);
    }

    [Fact]
    public void Sign_reproduces_aws_get_vanilla()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "https://example.amazonaws.com/");

        SigV4Signer.Sign(request, [], SuiteKeyId, SuiteSecret, "us-east-1", SuiteNow, "service");

        Assert.Equal(SuiteAuthorization(AwsVectors["get-vanilla"]), Header(request, "Authorization"));
        Assert.Equal(SuiteDate, Header(request, "X-Amz-Date"));
    }

    [Fact]
    public void Sign_reproduces_aws_post_x_www_form_urlencoded()
    {
        byte[] body = Encoding.UTF8.GetBytes("Param1=value1");
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://example.amazonaws.com/")
        {
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");

        SigV4Signer.Sign(request, body, SuiteKeyId, SuiteSecret, "us-east-1", SuiteNow, "service");

        Assert.Equal(SuiteAuthorization(AwsVectors["post-x-www-form-urlencoded"]), Header(request, "Authorization"));
    }

    [Fact]
    public void Sign_reproduces_aws_post_sts_header_before()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://example.amazonaws.com/");

        SigV4Signer.Sign(request, [], SuiteKeyId, SuiteSecret, "us-east-1", SuiteNow, "service", SuiteToken);

        Assert.Equal(SuiteAuthorization(AwsVectors["post-sts-header-before"]), Header(request, "Authorization"));
        Assert.Equal(SuiteToken, Header(request, "X-Amz-Security-Token"));
    }

    [Fact]
    public void Sign_signs_the_botocore_header_set()
    {
        // Expected value computed with a throwaway python3 hmac/hashlib SigV4 implementation over the boto3
        // GetSecretValue capture in spec §1.1 (host with port, session token, X-Amz-Target, Content-Type).
        byte[] body = Encoding.UTF8.GetBytes("{\"SecretId\": \"MyTest\"}");
        using var request = BotocoreRequest(body, "http://127.0.0.1:18080/");

        SigV4Signer.Sign(request, body, SuiteKeyId, SuiteSecret, "us-east-1",
            new DateTimeOffset(2026, 11, 28, 19, 33, 51, TimeSpan.Zero), sessionToken: "SESSIONTOKEN");

        Assert.Equal(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/us-east-1/secretsmanager/aws4_request, "
            + "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "
            + "Signature=29e458d094b2eb2823cf91a2562563880060eff5485637c70615fff22d2cb8fd",
            Header(request, "Authorization"));
    }

    // ---- Accepted requests

    [Fact]
    public async Task Botocore_style_request_passes()
    {
        using var request = SignedBotocoreRequest(Body);

        var caller = await Verify(CreateVerifier(), request, Body);

        Assert.Equal(new AuthenticatedCaller(AccessKeyId, "us-east-1", Alice, null, "secretsmanager"), caller);
    }

    [Fact]
    public async Task Session_token_is_returned()
    {
        const string sessionKeyId = "ASIASESSION000000000";
        using var request = SignedBotocoreRequest(Body, accessKeyId: sessionKeyId, sessionToken: "FQoGZXIvYXdzEXAMPLETOKEN");

        var caller = await Verify(CreateVerifier(new AccessKeyCredential(sessionKeyId, SecretKey, Alice,
            SessionCredentialService.TokenSha256("FQoGZXIvYXdzEXAMPLETOKEN"))), request, Body);

        Assert.Contains("x-amz-security-token", Header(request, "Authorization"), StringComparison.Ordinal);
        Assert.Equal("FQoGZXIvYXdzEXAMPLETOKEN", caller.SessionToken);
    }

    [Fact]
    public async Task A_long_term_key_sent_with_a_session_token_is_unrecognized()
    {
        // A well-signed request: the secret key is right, the token is one the server never issued for this key.
        using var request = SignedBotocoreRequest(Body, sessionToken: "FQoGZXIvYXdzEXAMPLETOKEN");

        var ex = await Fails(Verify(CreateVerifier(), request, Body), ErrorCodes.UnrecognizedClient);

        Assert.Equal("The security token included in the request is invalid.", ex.Message);
    }

    [Fact]
    public async Task Js_v3_style_request_passes()
    {
        byte[] body = Encoding.UTF8.GetBytes("{\"SecretId\":\"MyTestSecret\"}");
        string amzDate = AmzDate(Now);
        var signed = new List<KeyValuePair<string, string>>
        {
            new("amz-sdk-invocation-id", "8b4e1b7c-3c6a-4f1e-9d55-2f0d6c1f6a11"),
            new("amz-sdk-request", "attempt=1; max=3"),
            new("content-length", body.Length.ToString(CultureInfo.InvariantCulture)),
            new("content-type", "application/x-amz-json-1.1"),
            new("host", "secretsmanager.us-east-1.amazonaws.com"),
            new("x-amz-content-sha256", Convert.ToHexStringLower(SHA256.HashData(body))),
            new("x-amz-date", amzDate),
            new("x-amz-security-token", "SESSIONTOKEN"),
            new("x-amz-target", "secretsmanager.GetSecretValue"),
            new("x-amz-user-agent", "aws-sdk-js/3.1163.0"),
        };
        var headers = new HeaderDictionary();
        foreach (var (name, value) in signed)
        {
            headers[name] = value;
        }

        headers["user-agent"] = "aws-sdk-js/3.1163.0 ua/2.1 os/linux lang/js md/nodejs#20.20.2";
        const string sessionKeyId = "ASIAJSV3SESSION00000";
        headers["authorization"] = SigV4Signer.CreateAuthorization("POST", "/", "", signed, body, sessionKeyId, SecretKey,
            "us-east-1", amzDate);

        var verifier = CreateVerifier(new AccessKeyCredential(sessionKeyId, SecretKey, Alice, SessionCredentialService.TokenSha256("SESSIONTOKEN")));
        var caller = await verifier.VerifyAsync("POST", "/", "", headers, body, CancellationToken.None);

        Assert.Equal(new AuthenticatedCaller(sessionKeyId, "us-east-1", Alice, "SESSIONTOKEN", "secretsmanager"), caller);
    }

    [Fact]
    public async Task Host_with_port_is_used_verbatim()
    {
        using var request = SignedBotocoreRequest(Body, url: "http://localhost:4566/");
        var verifier = CreateVerifier();
        Assert.Equal("localhost:4566", ToHeaders(request)["Host"].ToString());

        await Verify(verifier, request, Body);

        var withoutPort = ToHeaders(request);
        withoutPort["Host"] = "localhost";
        var ex = await Fails(verifier.VerifyAsync("POST", "/", "", withoutPort, Body, CancellationToken.None),
            ErrorCodes.InvalidSignature);
        Assert.Equal(SignatureMismatch, ex.Message);
    }

    [Fact]
    public async Task Any_served_region_is_accepted_and_reported()
    {
        using var request = SignedBotocoreRequest(Body, region: "eu-west-1");

        var caller = await Verify(CreateVerifier(regions: ["us-east-1", "eu-west-1"]), request, Body);

        Assert.Equal("eu-west-1", caller.Region);
    }

    [Fact]
    public async Task Date_header_is_used_when_x_amz_date_is_absent()
    {
        string host = "secretsmanager.us-east-1.amazonaws.com";
        var signed = new List<KeyValuePair<string, string>> { new("date", Now.ToString("r", CultureInfo.InvariantCulture)), new("host", host) };
        var headers = new HeaderDictionary { ["Host"] = host, ["Date"] = Now.ToString("r", CultureInfo.InvariantCulture) };
        headers["Authorization"] = SigV4Signer.CreateAuthorization("POST", "/", "", signed, Body, AccessKeyId, SecretKey,
            "us-east-1", AmzDate(Now));

        var caller = await CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None);

        Assert.Equal(AccessKeyId, caller.AccessKeyId);
    }

    [Theory]
    [InlineData(-5)]
    [InlineData(5)]
    public async Task Skew_at_the_limit_is_accepted(int minutes)
    {
        using var request = SignedBotocoreRequest(Body, now: Now.AddMinutes(minutes));

        await Verify(CreateVerifier(), request, Body);
    }

    [Fact]
    public async Task Signing_keys_are_cached_per_secret()
    {
        var verifier = CreateVerifier(new AccessKeyCredential("AKIASECOND000000000", "second/secret", Principal.User("arn:aws:iam::123456789012:user/bob", AccountId, "AKIASECOND000000000", [])));
        using var first = SignedBotocoreRequest(Body);
        using var second = SignedBotocoreRequest(Body, accessKeyId: "AKIASECOND000000000", secretKey: "second/secret");
        using var crossed = SignedBotocoreRequest(Body, accessKeyId: "AKIASECOND000000000");

        Assert.Equal(PrincipalArn, (await Verify(verifier, first, Body)).Principal.Arn);
        Assert.Equal("arn:aws:iam::123456789012:user/bob", (await Verify(verifier, second, Body)).Principal.Arn);
        Assert.Equal(PrincipalArn, (await Verify(verifier, first, Body)).Principal.Arn);
        await Fails(Verify(verifier, crossed, Body), ErrorCodes.InvalidSignature);
    }

    // ---- Signature failures

    [Fact]
    public async Task Tampered_body_fails()
    {
        using var request = SignedBotocoreRequest(Body);
        byte[] tampered = Encoding.UTF8.GetBytes("{\"SecretId\": \"OtherSecret\"}");

        var ex = await Fails(Verify(CreateVerifier(), request, tampered), ErrorCodes.InvalidSignature);

        Assert.Equal(SignatureMismatch, ex.Message);
    }

    [Fact]
    public async Task Tampered_signed_header_fails()
    {
        using var request = SignedBotocoreRequest(Body);
        var headers = ToHeaders(request);
        headers["X-Amz-Target"] = "secretsmanager.DeleteSecret";

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.InvalidSignature);

        Assert.Equal(SignatureMismatch, ex.Message);
    }

    [Fact]
    public async Task Wrong_secret_fails()
    {
        using var request = SignedBotocoreRequest(Body, secretKey: "not-the-secret");

        var ex = await Fails(Verify(CreateVerifier(), request, Body), ErrorCodes.InvalidSignature);

        Assert.Equal(SignatureMismatch, ex.Message);
    }

    [Fact]
    public async Task Unknown_access_key_is_unrecognized()
    {
        using var request = SignedBotocoreRequest(Body, accessKeyId: "AKIAUNKNOWN000000000");

        var ex = await Fails(Verify(CreateVerifier(), request, Body), ErrorCodes.UnrecognizedClient);

        Assert.Equal("The security token included in the request is invalid.", ex.Message);
    }

    // ---- Missing or malformed authentication

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    public async Task Missing_authorization_is_missing_authentication_token(string? authorization)
    {
        using var request = SignedBotocoreRequest(Body);
        var headers = ToHeaders(request);
        headers.Remove("Authorization");
        if (authorization is not null)
        {
            headers["Authorization"] = authorization;
        }

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.MissingAuthenticationToken);

        Assert.Equal("Missing Authentication Token", ex.Message);
    }

    [Fact]
    public async Task Presigned_query_authentication_is_rejected()
    {
        var headers = new HeaderDictionary { ["Host"] = "secretsmanager.us-east-1.amazonaws.com" };
        string query = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIATUMBLERTEST00001%2F20251106%2Fus-east-1%2Fsecretsmanager%2Faws4_request"
            + $"&X-Amz-Date=20251106T132608Z&X-Amz-SignedHeaders=host&X-Amz-Signature={FakeSignature}";

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", query, headers, Body, CancellationToken.None),
            ErrorCodes.IncompleteSignature);

        Assert.Contains("presigned", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(FakeSignature, ex.Message, StringComparison.Ordinal);
    }

    private const string FakeSignature = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private const string GoodCredential = "Credential=AKIATUMBLERTEST00001/20251106/us-east-1/secretsmanager/aws4_request";
    private const string GoodSignedHeaders = "SignedHeaders=content-type;host;x-amz-date;x-amz-target";

    [Theory]
    [InlineData($"AWS4-HMAC-SHA512 {GoodCredential}, {GoodSignedHeaders}, Signature={FakeSignature}", "only AWS4-HMAC-SHA256 is accepted")]
    [InlineData("Bearer eyJhbGciOiJIUzI1NiJ9", "only AWS4-HMAC-SHA256 is accepted")]
    [InlineData($"AWS4-HMAC-SHA256 {GoodSignedHeaders}, Signature={FakeSignature}", "Authorization header requires 'Credential' parameter.")]
    [InlineData($"AWS4-HMAC-SHA256 {GoodCredential}, Signature={FakeSignature}", "Authorization header requires 'SignedHeaders' parameter.")]
    [InlineData($"AWS4-HMAC-SHA256 {GoodCredential}, {GoodSignedHeaders}", "Authorization header requires 'Signature' parameter.")]
    [InlineData("AWS4-HMAC-SHA256",
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. "
        + "Authorization header requires 'SignedHeaders' parameter.")]
    [InlineData($"AWS4-HMAC-SHA256 {GoodCredential}, {GoodSignedHeaders}, Signature={FakeSignature}, {GoodCredential}", "more than one 'Credential'")]
    [InlineData($"AWS4-HMAC-SHA256 {GoodCredential}, {GoodSignedHeaders}, {FakeSignature}", "key=value")]
    [InlineData($"AWS4-HMAC-SHA256 Credential=AKIATUMBLERTEST00001/20251106/us-east-1/secretsmanager, {GoodSignedHeaders}, Signature={FakeSignature}", "exactly 5")]
    [InlineData($"AWS4-HMAC-SHA256 Credential=AKIATUMBLERTEST00001/20251106/us-east-1/secretsmanager/aws4_request/x, {GoodSignedHeaders}, Signature={FakeSignature}", "exactly 5")]
    [InlineData($"AWS4-HMAC-SHA256 Credential=/20251106/us-east-1/secretsmanager/aws4_request, {GoodSignedHeaders}, Signature={FakeSignature}", "exactly 5")]
    [InlineData($"AWS4-HMAC-SHA256 Credential=AKIATUMBLERTEST00001/20251106/us-east-1/secretsmanager/aws5_request, {GoodSignedHeaders}, Signature={FakeSignature}", "valid terminator")]
    [InlineData($"AWS4-HMAC-SHA256 {GoodCredential}, SignedHeaders=host;;x-amz-date, Signature={FakeSignature}", "semicolon-separated")]
    [InlineData($"AWS4-HMAC-SHA256 {GoodCredential}, {GoodSignedHeaders}, Signature={FakeSignature}0", "64 hexadecimal")]
    [InlineData($"AWS4-HMAC-SHA256 {GoodCredential}, {GoodSignedHeaders}, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", "64 hexadecimal")]
    public async Task Malformed_authorization_is_incomplete(string authorization, string expectedMessage)
    {
        using var request = SignedBotocoreRequest(Body);
        var headers = ToHeaders(request);
        headers["Authorization"] = authorization;

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.IncompleteSignature);

        Assert.Contains(expectedMessage, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(FakeSignature, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("eyJhbGciOiJIUzI1NiJ9", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_authorization_headers_are_incomplete()
    {
        using var request = SignedBotocoreRequest(Body);
        var headers = ToHeaders(request);
        headers["Authorization"] = new StringValues([headers["Authorization"].ToString(), headers["Authorization"].ToString()]);

        await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.IncompleteSignature);
    }

    [Fact]
    public async Task Missing_date_is_incomplete()
    {
        using var request = SignedBotocoreRequest(Body);
        var headers = ToHeaders(request);
        headers.Remove("X-Amz-Date");

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.IncompleteSignature);

        Assert.Equal("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.", ex.Message);
    }

    [Theory]
    [InlineData("2025-11-06T13:26:08Z")]
    [InlineData("20251106T132608")]
    [InlineData("20251106T1326080Z")]
    [InlineData("Thu, 06 Nov 2025 13:26:08 GMT")]
    public async Task Malformed_x_amz_date_is_incomplete(string amzDate)
    {
        using var request = SignedBotocoreRequest(Body);
        var headers = ToHeaders(request);
        headers["X-Amz-Date"] = amzDate;

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.IncompleteSignature);

        Assert.StartsWith("X-Amz-Date must be", ex.Message, StringComparison.Ordinal);
    }

    // ---- Scope, signed headers, skew, payload hash

    [Fact]
    public async Task Wrong_region_is_invalid()
    {
        using var request = SignedBotocoreRequest(Body, region: "eu-west-1");

        var ex = await Fails(Verify(CreateVerifier(), request, Body), ErrorCodes.InvalidSignature);

        Assert.Equal("Credential should be scoped to a valid region. This server serves: us-east-1.", ex.Message);
    }

    [Fact]
    public async Task Wrong_region_message_lists_served_regions_sorted()
    {
        using var request = SignedBotocoreRequest(Body, region: "ap-south-1");

        var ex = await Fails(Verify(CreateVerifier(regions: ["us-west-2", "eu-central-1", "us-east-1"]), request, Body),
            ErrorCodes.InvalidSignature);

        Assert.Equal("Credential should be scoped to a valid region. This server serves: eu-central-1, us-east-1, us-west-2.",
            ex.Message);
    }

    [Fact]
    public async Task Wrong_service_is_invalid()
    {
        using var request = SignedBotocoreRequest(Body, service: "kms");

        var ex = await Fails(Verify(CreateVerifier(), request, Body), ErrorCodes.InvalidSignature);

        Assert.Equal("Credential should be scoped to correct service: 'secretsmanager'.", ex.Message);
    }

    [Fact]
    public async Task Scope_date_must_match_x_amz_date()
    {
        using var request = SignedBotocoreRequest(Body);
        var headers = ToHeaders(request);
        headers["X-Amz-Date"] = "20251107T000001Z";

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.InvalidSignature);

        Assert.Equal("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            + "'20251106' != '20251107'.", ex.Message);
    }

    [Fact]
    public async Task Signed_headers_without_host_are_invalid()
    {
        string amzDate = AmzDate(Now);
        var signed = new List<KeyValuePair<string, string>>
        {
            new("content-type", "application/x-amz-json-1.1"),
            new("x-amz-date", amzDate),
            new("x-amz-target", "secretsmanager.GetSecretValue"),
        };
        var headers = new HeaderDictionary { ["Host"] = "secretsmanager.us-east-1.amazonaws.com" };
        foreach (var (name, value) in signed)
        {
            headers[name] = value;
        }

        headers["Authorization"] = SigV4Signer.CreateAuthorization("POST", "/", "", signed, Body, AccessKeyId, SecretKey,
            "us-east-1", amzDate);

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.InvalidSignature);

        Assert.Equal("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.", ex.Message);
    }

    [Fact]
    public async Task Signed_headers_without_x_amz_date_are_invalid()
    {
        string host = "secretsmanager.us-east-1.amazonaws.com";
        var signed = new List<KeyValuePair<string, string>> { new("host", host) };
        var headers = new HeaderDictionary { ["Host"] = host, ["X-Amz-Date"] = AmzDate(Now) };
        headers["Authorization"] = SigV4Signer.CreateAuthorization("POST", "/", "", signed, Body, AccessKeyId, SecretKey,
            "us-east-1", AmzDate(Now));

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.InvalidSignature);

        Assert.Equal("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.", ex.Message);
    }

    [Fact]
    public async Task Signed_header_absent_from_request_is_invalid()
    {
        using var request = SignedBotocoreRequest(Body);
        var headers = ToHeaders(request);
        headers.Remove("X-Amz-Target");

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.InvalidSignature);

        Assert.Equal("Signed header 'x-amz-target' is not present in the request.", ex.Message);
    }

    [Fact]
    public async Task Request_older_than_the_skew_window_is_expired()
    {
        using var request = SignedBotocoreRequest(Body, now: new DateTimeOffset(2025, 11, 5, 22, 8, 58, TimeSpan.Zero));

        var ex = await Fails(Verify(CreateVerifier(), request, Body), ErrorCodes.InvalidSignature);

        Assert.Equal("Signature expired: 20251105T220858Z is now earlier than 20251106T132108Z (20251106T132608Z - 5 min.)",
            ex.Message);
    }

    [Fact]
    public async Task Request_beyond_the_skew_window_is_not_yet_current()
    {
        using var request = SignedBotocoreRequest(Body, now: Now.AddMinutes(6));

        var ex = await Fails(Verify(CreateVerifier(), request, Body), ErrorCodes.InvalidSignature);

        Assert.Equal("Signature not yet current: 20251106T133208Z is still later than 20251106T133108Z (20251106T132608Z + 5 min.)",
            ex.Message);
    }

    [Theory]
    [InlineData("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [InlineData("UNSIGNED-PAYLOAD")]
    public async Task Content_sha256_mismatch_is_invalid(string declaredHash)
    {
        using var request = SignedBotocoreRequest(Body);
        var headers = ToHeaders(request);
        headers["x-amz-content-sha256"] = declaredHash;

        var ex = await Fails(CreateVerifier().VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.InvalidSignature);

        Assert.Equal("The provided 'x-amz-content-sha256' header does not match what was computed.", ex.Message);
    }

    // ---- AcceptAnyCredentials (dev mode)

    [Fact]
    public async Task Accept_any_mode_accepts_unknown_key_without_checking_the_hmac()
    {
        using var request = SignedBotocoreRequest(Body, accessKeyId: "AKIADEVANYTHING00000", secretKey: "whatever");
        var verifier = CreateVerifier(acceptAny: true);

        var caller = await Verify(verifier, request, Body);

        Assert.Equal(new AuthenticatedCaller("AKIADEVANYTHING00000", "us-east-1", Principal.Root(AccountId, "AKIADEVANYTHING00000"), null, "secretsmanager"), caller);
    }

    [Fact]
    public async Task Accept_any_mode_still_rejects_a_wrong_region()
    {
        using var request = SignedBotocoreRequest(Body, accessKeyId: "AKIADEVANYTHING00000", region: "eu-west-1");

        var ex = await Fails(Verify(CreateVerifier(acceptAny: true), request, Body), ErrorCodes.InvalidSignature);

        Assert.Equal("Credential should be scoped to a valid region. This server serves: us-east-1.", ex.Message);
    }

    [Fact]
    public async Task Accept_any_mode_still_rejects_clock_skew()
    {
        using var request = SignedBotocoreRequest(Body, accessKeyId: "AKIADEVANYTHING00000", now: Now.AddHours(-1));

        var ex = await Fails(Verify(CreateVerifier(acceptAny: true), request, Body), ErrorCodes.InvalidSignature);

        Assert.StartsWith("Signature expired: ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Accept_any_mode_still_rejects_a_malformed_authorization()
    {
        using var request = SignedBotocoreRequest(Body);
        var headers = ToHeaders(request);
        headers["Authorization"] = $"AWS4-HMAC-SHA256 {GoodCredential}, {GoodSignedHeaders}";

        await Fails(CreateVerifier(acceptAny: true).VerifyAsync("POST", "/", "", headers, Body, CancellationToken.None),
            ErrorCodes.IncompleteSignature);
    }

    // ---- Helpers

    private static SigV4Verifier CreateVerifier(AccessKeyCredential? extraKey = null, bool acceptAny = false, string[]? regions = null)
    {
        var keys = new List<AccessKeyCredential> { new(AccessKeyId, SecretKey, Alice) };
        if (extraKey is not null)
        {
            keys.Add(extraKey);
        }

        return new SigV4Verifier(new InMemoryCredentials([.. keys]), new FixedTimeProvider(Now), new SigV4Options
        {
            Regions = new HashSet<string>(regions ?? ["us-east-1"]),
            AccountId = AccountId,
            AcceptAnyCredentials = acceptAny,
        });
    }

    private static HttpRequestMessage BotocoreRequest(byte[] body, string url = Endpoint)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-amz-json-1.1");
        request.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager.GetSecretValue");
        request.Headers.TryAddWithoutValidation("User-Agent", "Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1");
        request.Headers.TryAddWithoutValidation("amz-sdk-invocation-id", "3f1c2a4e-9b7d-4e21-8a0f-6d5c4b3a2918");
        request.Headers.TryAddWithoutValidation("amz-sdk-request", "attempt=1");
        return request;
    }

    private static HttpRequestMessage SignedBotocoreRequest(byte[] body, string url = Endpoint, string accessKeyId = AccessKeyId,
        string secretKey = SecretKey, string region = "us-east-1", string service = "secretsmanager",
        DateTimeOffset? now = null, string? sessionToken = null)
    {
        var request = BotocoreRequest(body, url);
        SigV4Signer.Sign(request, body, accessKeyId, secretKey, region, now ?? Now, service, sessionToken);
        return request;
    }

    private static ValueTask<AuthenticatedCaller> Verify(SigV4Verifier verifier, HttpRequestMessage request, byte[] body) =>
        verifier.VerifyAsync(request.Method.Method, request.RequestUri!.AbsolutePath, request.RequestUri.Query,
            ToHeaders(request), body, CancellationToken.None);

    // What Kestrel would hand the verifier for this request.
    private static HeaderDictionary ToHeaders(HttpRequestMessage request)
    {
        var headers = new HeaderDictionary { ["Host"] = request.Headers.Host ?? request.RequestUri!.Authority };
        var all = request.Content is null ? request.Headers : request.Headers.Concat(request.Content.Headers);
        foreach (var (name, values) in all)
        {
            headers[name] = new StringValues(values.ToArray());
        }

        return headers;
    }

    private static string Header(HttpRequestMessage request, string name) => string.Join(',', request.Headers.GetValues(name));

    private static string AmzDate(DateTimeOffset time) => time.UtcDateTime.ToString(SigV4Signer.AmzDateFormat, CultureInfo.InvariantCulture);

    private static async Task<ServiceException> Fails(ValueTask<AuthenticatedCaller> verification, string errorCode)
    {
        var ex = await Assert.ThrowsAsync<ServiceException>(async () => await verification);
        Assert.Equal(errorCode, ex.ErrorCode);
        return ex;
    }
}

file sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}

file sealed class InMemoryCredentials(params AccessKeyCredential[] keys) : ICredentialLookup
{
    public ValueTask<AccessKeyCredential?> FindAsync(string accessKeyId, CancellationToken ct) =>
        ValueTask.FromResult(keys.FirstOrDefault(k => k.AccessKeyId == accessKeyId));
}
