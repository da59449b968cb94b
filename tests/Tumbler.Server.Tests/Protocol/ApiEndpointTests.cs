using System.Net;
using System.Text;
using System.Text.Json;
using Tumbler.Client;
using Tumbler.Server.Tests.Support;

namespace Tumbler.Server.Tests.Protocol;

/// <summary>The wire protocol as a raw HTTP client sees it (spec §1): what SDKs rely on beyond the values.</summary>
public sealed class ApiEndpointTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static async Task<(HttpStatusCode Status, string Type, string Message, HttpResponseMessage Response)> ErrorOf(Task<HttpResponseMessage> call)
    {
        var response = await call;
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var message = body.TryGetProperty("Message", out var upper) ? upper.GetString()! : body.GetProperty("message").GetString()!;
        return (response.StatusCode, body.GetProperty("__type").GetString()!, message, response);
    }

    [Fact]
    public async Task A_listing_answered_from_rendered_entries_follows_every_kind_of_write()
    {
        // ListSecrets answers repeat pages from entries rendered once per cached secret: each write must show.
        var prefix = "listed-" + Guid.NewGuid().ToString("N")[..8];
        var name = prefix + "/app";
        await fixture.CallAsync("CreateSecret", new { Name = name, SecretString = "v1", ClientRequestToken = Guid.NewGuid().ToString() });
        async Task<JsonElement> ListedAsync()
        {
            var page = await fixture.CallAsync("ListSecrets", new { Filters = new[] { new { Key = "name", Values = new[] { prefix } } } });
            return Assert.Single(page.GetProperty("SecretList").EnumerateArray());
        }
        Assert.False((await ListedAsync()).TryGetProperty("Description", out _));
        Assert.False((await ListedAsync()).TryGetProperty("Tags", out _)); // the same page again, from the cache

        await fixture.CallAsync("UpdateSecret", new { SecretId = name, Description = "changed" });
        Assert.Equal("changed", (await ListedAsync()).GetProperty("Description").GetString());
        await fixture.CallAsync("TagResource", new { SecretId = name, Tags = new[] { new { Key = "team", Value = "payments" } } });
        Assert.Equal("payments", (await ListedAsync()).GetProperty("Tags")[0].GetProperty("Value").GetString());
        var v2 = Guid.NewGuid().ToString();
        await fixture.CallAsync("PutSecretValue", new { SecretId = name, SecretString = "v2", ClientRequestToken = v2 });
        var stages = (await ListedAsync()).GetProperty("SecretVersionsToStages");
        Assert.Equal("AWSCURRENT", stages.GetProperty(v2)[0].GetString());
        Assert.Equal(2, stages.EnumerateObject().Count());
        await fixture.CallAsync("DeleteSecret", new { SecretId = name, RecoveryWindowInDays = 7 });
        Assert.Empty((await fixture.CallAsync("ListSecrets", new { Filters = new[] { new { Key = "name", Values = new[] { prefix } } } }))
            .GetProperty("SecretList").EnumerateArray());
    }

    [Fact]
    public async Task Success_answers_carry_the_json_content_type_a_request_id_a_date_and_numeric_timestamps()
    {
        await fixture.CallAsync("CreateSecret", new { Name = "wire/ok", SecretString = "v", ClientRequestToken = Guid.NewGuid().ToString() });
        using var response = await fixture.SendAsync("DescribeSecret", """{"SecretId": "wire/ok"}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-amz-json-1.1", response.Content.Headers.ContentType!.MediaType);
        Assert.False(string.IsNullOrEmpty(response.Headers.GetValues("x-amzn-RequestId").Single()));
        Assert.NotNull(response.Headers.Date);
        // Whole bodies with their length, as AWS answers, not chunked.
        Assert.Null(response.Headers.TransferEncodingChunked);
        var length = response.Content.Headers.ContentLength;
        Assert.Equal(length, (await response.Content.ReadAsByteArrayAsync()).Length);
        using var error = await fixture.SendAsync("DescribeSecret", """{"SecretId": "wire/missing"}""");
        Assert.Equal(HttpStatusCode.BadRequest, error.StatusCode);
        Assert.Null(error.Headers.TransferEncodingChunked);
        Assert.Equal(error.Content.Headers.ContentLength, (await error.Content.ReadAsByteArrayAsync()).Length);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(JsonValueKind.Number, body.GetProperty("CreatedDate").ValueKind);
        Assert.InRange(body.GetProperty("CreatedDate").GetDouble(), DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeSeconds());
        // Members without a value are omitted, never null.
        Assert.False(body.TryGetProperty("Description", out _));
        Assert.False(body.TryGetProperty("Tags", out _));
        Assert.False(body.TryGetProperty("DeletedDate", out _));
        Assert.DoesNotContain("null", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Binary_values_travel_as_standard_base64_and_null_members_read_as_absent()
    {
        var bytes = new byte[] { 0, 255, 1, 254, 0x66, 0x6f, 0x6f };
        await fixture.CallAsync("CreateSecret", new { Name = "wire/binary", SecretBinary = Convert.ToBase64String(bytes), ClientRequestToken = Guid.NewGuid().ToString(), Description = (string?)null });
        var value = await fixture.CallAsync("GetSecretValue", new { SecretId = "wire/binary", VersionId = (string?)null });
        Assert.Equal(bytes, Convert.FromBase64String(value.GetProperty("SecretBinary").GetString()!));
        Assert.False(value.TryGetProperty("SecretString", out _));
    }

    [Theory]
    [InlineData("{\"SecretId\": ", "SerializationException")]
    [InlineData("{\"SecretId\": 42}", "SerializationException")]
    [InlineData("[\"SecretId\"]", "SerializationException")]
    [InlineData("{\"SecretId\": \"x\", \"VersionId\": true}", "SerializationException")]
    public async Task Malformed_or_mistyped_json_is_a_400_in_the_AWS_shape(string body, string expectedType)
    {
        var (status, type, _, _) = await ErrorOf(fixture.SendAsync("GetSecretValue", body));
        Assert.Equal((HttpStatusCode.BadRequest, expectedType), (status, type));
    }

    [Fact]
    public async Task A_json_error_names_its_position_counted_from_one_and_not_the_text()
    {
        var (_, _, message, _) = await ErrorOf(fixture.SendAsync("GetSecretValue", "{\n  \"SecretId\": \"x\",\n  \"VersionId\": true}"));
        Assert.Equal("The request body is not valid JSON for this operation (at $.VersionId, line 3, byte 20).", message);
    }

    [Fact]
    public async Task Invalid_utf8_bad_base64_and_deep_nesting_are_400s_and_the_server_keeps_serving()
    {
        byte[] invalidUtf8 = [.. "{\"SecretId\": \""u8, 0xC3, 0x28, .. "\"}"u8];
        Assert.Equal(HttpStatusCode.BadRequest, (await ErrorOf(fixture.SendAsync("GetSecretValue", invalidUtf8))).Status);
        var badBase64 = await ErrorOf(fixture.SendAsync("CreateSecret", $"{{\"Name\": \"b64\", \"SecretBinary\": \"***\", \"ClientRequestToken\": \"{Guid.NewGuid()}\"}}"));
        Assert.Equal((HttpStatusCode.BadRequest, "SerializationException"), (badBase64.Status, badBase64.Type));
        var deep = new string('[', 5000) + new string(']', 5000);
        Assert.Equal(HttpStatusCode.BadRequest, (await ErrorOf(fixture.SendAsync("ListSecrets", $"{{\"Filters\": {deep}}}"))).Status);

        using var healthy = await fixture.SendAsync("ListSecrets", "{}");
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_refused_without_being_read_whole()
    {
        var huge = Encoding.UTF8.GetBytes("{\"Name\": \"big\", \"SecretString\": \"" + new string('x', 2 * 1024 * 1024) + "\"}");
        var (status, type, message, _) = await ErrorOf(fixture.SendAsync("CreateSecret", huge));
        Assert.Equal((HttpStatusCode.BadRequest, "ValidationException"), (status, type));
        Assert.DoesNotContain("xxx", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_and_replication_operations_answer_clear_errors()
    {
        var unknown = await ErrorOf(fixture.SendAsync("FlyToTheMoon", "{}"));
        Assert.Equal((HttpStatusCode.BadRequest, "UnknownOperationException"), (unknown.Status, unknown.Type));
        var later = await ErrorOf(fixture.SendAsync("ReplicateSecretToRegions", "{\"SecretId\": \"x\", \"AddReplicaRegions\": [{\"Region\": \"eu-west-1\"}]}"));
        Assert.Equal((HttpStatusCode.BadRequest, "InvalidRequestException"), (later.Status, later.Type));
        Assert.Contains("ReplicateSecretToRegions", later.Message, StringComparison.Ordinal);

        // Another method or path: the same shape, and a request id to quote, as every answer has.
        foreach (var (method, path) in new[] { (HttpMethod.Get, "/"), (HttpMethod.Post, "/other"), (HttpMethod.Put, "/") })
        {
            var elsewhere = await ErrorOf(fixture.Http.SendAsync(new HttpRequestMessage(method, new Uri(fixture.Server.Endpoint, path))));
            Assert.Equal((HttpStatusCode.NotFound, "UnknownOperationException"), (elsewhere.Status, elsewhere.Type));
            Assert.False(string.IsNullOrEmpty(elsewhere.Response.Headers.GetValues("x-amzn-RequestId").Single()), $"{method} {path}");
        }
    }

    [Fact]
    public async Task Requests_without_a_valid_signature_are_denied_and_nothing_is_done()
    {
        using (var unsigned = new HttpRequestMessage(HttpMethod.Post, fixture.Server.Endpoint) { Content = new StringContent("{\"Name\": \"sneaky\", \"SecretString\": \"v\"}") })
        {
            unsigned.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager.CreateSecret");
            var missing = await ErrorOf(fixture.Http.SendAsync(unsigned));
            Assert.Equal((HttpStatusCode.BadRequest, "MissingAuthenticationTokenException"), (missing.Status, missing.Type));
        }
        var wrongKey = await ErrorOf(fixture.SendAsync("CreateSecret", $"{{\"Name\": \"sneaky\", \"SecretString\": \"v\", \"ClientRequestToken\": \"{Guid.NewGuid()}\"}}", secretAccessKey: "wrong"));
        Assert.Equal((HttpStatusCode.BadRequest, "InvalidSignatureException"), (wrongKey.Status, wrongKey.Type));
        var stale = await ErrorOf(fixture.SendAsync("ListSecrets", "{}", at: DateTimeOffset.UtcNow.AddMinutes(-6)));
        Assert.Equal("InvalidSignatureException", stale.Type);
        Assert.StartsWith("Signature expired:", stale.Message, StringComparison.Ordinal);
        var otherRegion = await ErrorOf(fixture.SendAsync("ListSecrets", "{}", region: "eu-west-1"));
        Assert.Equal("InvalidSignatureException", otherRegion.Type);

        var lookup = await ErrorOf(fixture.SendAsync("DescribeSecret", "{\"SecretId\": \"sneaky\"}"));
        Assert.Equal("ResourceNotFoundException", lookup.Type);
    }

    [Fact]
    public async Task Raw_callers_without_a_ClientRequestToken_get_the_AWS_error_before_any_lookup()
    {
        var create = await ErrorOf(fixture.SendAsync("CreateSecret", "{\"Name\": \"no-token\", \"SecretString\": \"v\"}"));
        Assert.Equal(("InvalidRequestException", "You must provide a ClientRequestToken value. We recommend a UUID-type value."), (create.Type, create.Message));
        var put = await ErrorOf(fixture.SendAsync("PutSecretValue", "{\"SecretId\": \"does-not-exist\", \"SecretString\": \"v\"}"));
        Assert.Equal("InvalidRequestException", put.Type);
        // Modeled errors use "Message", framework errors "message" (spec §1.3).
        Assert.Contains("\"Message\"", await put.Response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_operation_header_outside_the_signature_is_refused()
    {
        var body = Encoding.UTF8.GetBytes("{\"SecretId\": \"anything\", \"ForceDeleteWithoutRecovery\": true}");
        using var request = new HttpRequestMessage(HttpMethod.Post, fixture.Server.Endpoint) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-amz-json-1.1");
        SigV4Signer.Sign(request, body, fixture.Server.Root.AccessKeyId, fixture.Server.Root.SecretAccessKey, "us-east-1", DateTimeOffset.UtcNow);
        request.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager.DeleteSecret"); // added after signing
        var (status, type, _, _) = await ErrorOf(fixture.Http.SendAsync(request));
        Assert.Equal((HttpStatusCode.BadRequest, "InvalidSignatureException"), (status, type));
    }
}
