using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Http;
using Tumbler.Client;
using Tumbler.Core.Access;
using Tumbler.Core.Crypto;
using Tumbler.Core.Secrets;
using Tumbler.Server.Auth;
using Tumbler.Server.Protocol;
using Tumbler.Core.Storage;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Bench.Micro;

/// <summary>
/// The pieces every GetSecretValue pays for, each alone: the real classes the server uses, set up once
/// (a SQLite store in a temp directory, WAL and synchronous FULL as the server has it), then called in a loop.
/// </summary>
[MemoryDiagnoser]
public class HotPathBenchmarks
{
    private const string Region = "us-east-1";
    private const string Account = "123456789012";
    private const string Arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench/secret-000042-AbCdEf";
    private static readonly DateTimeOffset Now = new(2026, 11, 29, 12, 0, 0, TimeSpan.Zero);

    private SigV4Verifier _verifier = null!;
    private HeaderDictionary _headers = null!;
    private byte[] _requestBody = null!;
    private string _directory = null!;
    private SqliteSecretStore _store = null!;
    private KeyRing _keys = null!;
    private byte[] _blob = null!;
    private readonly string _versionId = Guid.NewGuid().ToString();
    private GetSecretValueResponse _response = null!;
    private ListSecretsResponse _listPage = null!;
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private PolicyDocument[] _identityPolicies = null!;
    private PolicyDocument _resourcePolicy = null!;
    private AccessRequest _accessRequest = null!;
    private AccessControl _access = null!;
    private CallContext _call = null!;
    private readonly Demand _describe = Demand.SecretsManager("DescribeSecret");
    private SecretEntity _taggedSecret = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        // SigV4: a request signed the way botocore signs it (the client's signer), verified against one root credential.
        const string accessKeyId = "AKIAIOSFODNN7EXAMPLE";
        const string secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        var credential = new AccessKeyCredential(accessKeyId, secretAccessKey, Principal.Root(Account, accessKeyId));
        _verifier = new SigV4Verifier(new FixedCredential(credential), new FixedTime(Now),
            new SigV4Options { Regions = new HashSet<string> { Region }, AccountId = Account });
        _requestBody = Encoding.UTF8.GetBytes("""{"SecretId":"bench/secret-000042"}""");
        var amzDate = Now.UtcDateTime.ToString(SigV4Signer.AmzDateFormat, CultureInfo.InvariantCulture);
        var signed = new Dictionary<string, string>
        {
            ["host"] = "127.0.0.1:8443",
            ["x-amz-date"] = amzDate,
            ["x-amz-target"] = "secretsmanager.GetSecretValue",
            ["content-type"] = "application/x-amz-json-1.1",
        };
        _headers = new HeaderDictionary();
        foreach (var (name, text) in signed)
        {
            _headers[name] = text;
        }
        _headers["Content-Length"] = _requestBody.Length.ToString(CultureInfo.InvariantCulture);
        _headers["Authorization"] = SigV4Signer.CreateAuthorization("POST", "/", "", signed, _requestBody, accessKeyId, secretAccessKey, Region, amzDate);
        await VerifySignatureAsync(); // fails setup if the request does not verify

        // Envelope: a 1 KiB value encrypted under the default key, as the store holds it.
        _directory = Directory.CreateTempSubdirectory("tumbler-bench-micro-").FullName;
        _store = new SqliteSecretStore(Path.Combine(_directory, "tumbler.db"));
        await _store.InitializeAsync(CancellationToken.None);
        _keys = await KeyRing.OpenAsync(_store, System.Security.Cryptography.RandomNumberGenerator.GetBytes(32), Region, Account, TimeProvider.System, CancellationToken.None);
        var value = "{\"username\":\"app\",\"password\":\"" + new string('x', 990) + "\"}";
        _blob = _keys.Encrypt(_keys.DefaultKeyId, new SecretPlaintext(value, null), Arn, _versionId);

        // Store: the secret with that value, among 1,000 others, for the two reads GetSecretValue makes.
        await _store.WriteAsync(async writer =>
        {
            for (var i = 0; i <= 1000; i++)
            {
                var secret = new SecretEntity
                {
                    Region = Region, Name = $"bench/secret-{i:D6}", Arn = i == 42 ? Arn : SecretArn.Create(Region, Account, $"bench/secret-{i:D6}"),
                    CreatedDate = Now, LastChangedDate = Now,
                };
                await writer.InsertSecretAsync(secret);
                var version = new VersionEntity { VersionId = i == 42 ? _versionId : Guid.NewGuid().ToString(), CreatedDate = Now, KeyId = _keys.DefaultKeyId, HasValue = true, Labels = ["AWSCURRENT"] };
                await writer.InsertVersionAsync(secret.Key, version, i == 42 ? _blob : _keys.Encrypt(_keys.DefaultKeyId, new SecretPlaintext(value, null), secret.Arn, version.VersionId));
            }
            return 0;
        }, CancellationToken.None);
        if (await ReadFromStoreAsync() != _blob.Length)
        {
            throw new InvalidOperationException("the benchmark secret should be in the store");
        }

        // JSON: the GetSecretValue response the endpoint writes.
        _response = new GetSecretValueResponse
        {
            ARN = Arn,
            Name = "bench/secret-000042",
            VersionId = _versionId,
            SecretString = value,
            VersionStages = ["AWSCURRENT"],
            CreatedDate = Now,
        };
        _listPage = new ListSecretsResponse
        {
            SecretList = [.. Enumerable.Range(0, 100).Select(i => new SecretListEntry
            {
                ARN = Arn.Replace("000042", i.ToString("D6", CultureInfo.InvariantCulture), StringComparison.Ordinal),
                Name = $"bench/secret-{i:D6}",
                Description = $"benchmark secret {i}",
                LastChangedDate = Now,
                LastAccessedDate = new DateTimeOffset(Now.UtcDateTime.Date, TimeSpan.Zero),
                CreatedDate = Now,
                SecretVersionsToStages = new Dictionary<string, IReadOnlyList<string>> { [Guid.NewGuid().ToString()] = ["AWSCURRENT"] },
            })],
            NextToken = "Y3JlYXRlZC1kYXRlCmFzYwowMDAwMDAwMDAwMDAwMDAwMDAwMAo5OQ==",
        };

        // Policy: an IAM user's identity policy with conditions, and a resource policy, for GetSecretValue.
        _identityPolicies = [PolicyDocument.Parse("""
            {"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Action":["secretsmanager:Describe*","secretsmanager:GetSecretValue"],
               "Resource":"arn:aws:secretsmanager:*:123456789012:secret:bench/*",
               "Condition":{"StringEquals":{"secretsmanager:ResourceTag/team":["payments","ops"]},"Bool":{"aws:SecureTransport":"true"},
                            "ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/*"}}},
              {"Effect":"Deny","NotAction":"secretsmanager:*","Resource":"*"},
              {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEqualsIfExists":{"aws:RequestedRegion":"us-east-1"}}}]}
            """, PolicyKind.Identity)];
        _resourcePolicy = PolicyDocument.Parse("""
            {"Version":"2012-10-17","Statement":[
              {"Effect":"Deny","Principal":"*","Action":"secretsmanager:DeleteSecret","Resource":"*"},
              {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}
            """, PolicyKind.Resource);
        var context = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase)
        {
            ["secretsmanager:ResourceTag/team"] = ["ops"],
            ["aws:SecureTransport"] = ["true"],
            ["aws:PrincipalArn"] = ["arn:aws:iam::123456789012:user/alice"],
            ["aws:RequestedRegion"] = ["us-east-1"],
        };
        _accessRequest = new AccessRequest("arn:aws:iam::123456789012:user/alice", Account, "secretsmanager:GetSecretValue", Arn, context);
        if (EvaluatePolicy() != PolicyDecision.Allow)
        {
            throw new InvalidOperationException("the benchmark policy should allow the request");
        }
        _access = new AccessControl(new FixedTime(Now));
        _call = new CallContext(Region, Principal.User("arn:aws:iam::123456789012:user/alice", Account, "AKIAEXAMPLEUSER00001", _identityPolicies),
            new RequestOrigin("10.1.2.3", SecureTransport: true, UserAgent: "aws-cli/2.15.0"));
        _taggedSecret = new SecretEntity
        {
            Region = Region, Name = "bench/secret-000042", Arn = Arn, CreatedDate = Now, LastChangedDate = Now, Tags = [new SecretTag("team", "ops")],
        };
        if (!CheckAccess())
        {
            throw new InvalidOperationException("the benchmark policy should allow the IAM user to describe the secret");
        }
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Description = "SigV4 verification (GetSecretValue request)")]
    public async Task<string> VerifySignatureAsync() =>
        (await _verifier.VerifyAsync("POST", "/", "", _headers, _requestBody, CancellationToken.None)).AccessKeyId;

    [Benchmark(Description = "Envelope decrypt (1 KiB value, data key read before)")]
    public string? DecryptValue() => _keys.Decrypt(_blob, Arn, _versionId).Text;

    [Benchmark(Description = "SQLite: FindSecret + ReadValue (GetSecretValue's reads, read before)")]
    public async Task<int> ReadFromStoreAsync()
    {
        var secret = await _store.FindSecretAsync(Region, SecretLookup.ByName("bench/secret-000042"), CancellationToken.None);
        var blob = await _store.ReadValueAsync(secret!.Key, secret.Versions[0].VersionId, CancellationToken.None);
        return blob!.Length;
    }

    [Benchmark(Description = "JSON: GetSecretValue response (1 KiB value)")]
    public int SerializeResponse() => Serialize(_response, WireJsonContext.Default.GetSecretValueResponse);

    [Benchmark(Description = "JSON: ListSecrets page of 100 (as the HTTP benchmark's)")]
    public int SerializeListPage() => Serialize(_listPage, WireJsonContext.Default.ListSecretsResponse);

    private int Serialize<T>(T answer, JsonTypeInfo<T> typeInfo)
    {
        _buffer.ResetWrittenCount();
        using var writer = new Utf8JsonWriter(_buffer);
        JsonSerializer.Serialize(writer, answer, typeInfo);
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "JSON: the same page from entries rendered before (as ListSecrets answers a cached page)")]
    public int WriteRenderedListPage()
    {
        _buffer.ResetWrittenCount();
        using var writer = new Utf8JsonWriter(_buffer);
        ListSecretsJson.Write(writer, _listPage);
        writer.Flush();
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "Policy evaluation (identity + resource policy)")]
    public PolicyDecision EvaluatePolicy() => PolicyEvaluator.Evaluate(_identityPolicies, _resourcePolicy, _accessRequest);

    [Benchmark(Description = "Access check of an IAM user through AccessControl, condition keys included (ListSecrets makes one per secret)")]
    public bool CheckAccess() => _access.IsAllowed(_call, _describe, Arn, _taggedSecret);

    private sealed class FixedCredential(AccessKeyCredential credential) : ICredentialLookup
    {
        public ValueTask<AccessKeyCredential?> FindAsync(string accessKeyId, CancellationToken ct) =>
            ValueTask.FromResult(accessKeyId == credential.AccessKeyId ? credential : null);
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
