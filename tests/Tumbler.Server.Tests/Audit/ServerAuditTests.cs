using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tumbler.Server.Audit;
using Tumbler.Server.Hosting;
using Tumbler.Server.Tests.Support;

namespace Tumbler.Server.Tests.Audit;

/// <summary>The audit log as the running server writes it: one record per request, denials included, no values, fail closed.</summary>
public sealed class ServerAuditTests
{
    private static List<JsonElement> Records(ServerFixture fixture) =>
        [.. File.ReadAllLines(AuditFormat.LogPath(fixture.DataDirectory)).Select(line => JsonDocument.Parse(line).RootElement.Clone())];

    [Fact]
    public async Task Every_request_allowed_or_denied_is_recorded_without_its_value_and_the_chain_verifies()
    {
        var fixture = new ServerFixture();
        await fixture.InitializeAsync();
        try
        {
            var created = await fixture.CallAsync("CreateSecret", new { Name = "audit/db", SecretString = "audit-s3cret-value", ClientRequestToken = Guid.NewGuid().ToString() });
            await fixture.CallAsync("GetSecretValue", new { SecretId = "audit/db", VersionStage = "AWSCURRENT" });
            using (await fixture.SendAsync("GetSecretValue", """{"SecretId": "audit/db"}""", secretAccessKey: "wrong"))
            {
            }
            await fixture.AdminAsync("CreateUser", new { UserName = "audited" });
            var key = (await fixture.AdminAsync("CreateAccessKey", new { UserName = "audited" })).GetProperty("AccessKey");
            using (await fixture.SendAsAsync("secretsmanager.GetSecretValue", """{"SecretId": "audit/db"}""",
                key.GetProperty("AccessKeyId").GetString()!, key.GetProperty("SecretAccessKey").GetString()!))
            {
            }

            var records = Records(fixture);
            var operations = records.Select(r => (r.GetProperty("operation").GetString(), r.GetProperty("outcome").GetString())).ToList();
            Assert.Equal([("CreateSecret", "Success"), ("GetSecretValue", "Success"), ("GetSecretValue", "Denied"), ("CreateUser", "Success"),
                ("CreateAccessKey", "Success"), ("GetSecretValue", "Denied")], operations);
            var read = records[1];
            Assert.Equal(created.GetProperty("ARN").GetString(), read.GetProperty("secretArn").GetString());
            Assert.Equal(created.GetProperty("VersionId").GetString(), read.GetProperty("versionId").GetString());
            Assert.Equal("AWSCURRENT", read.GetProperty("versionStage").GetString());
            Assert.Equal("127.0.0.1", read.GetProperty("sourceIp").GetString());
            Assert.Equal($"arn:aws:iam::123456789012:root", read.GetProperty("principalArn").GetString());
            Assert.Equal("InvalidSignatureException", records[2].GetProperty("errorCode").GetString());
            var denied = records[5];
            Assert.Equal(("AccessDeniedException", "arn:aws:iam::123456789012:user/audited", key.GetProperty("AccessKeyId").GetString()),
                (denied.GetProperty("errorCode").GetString(), denied.GetProperty("principalArn").GetString(), denied.GetProperty("accessKeyId").GetString()));

            var text = await File.ReadAllTextAsync(AuditFormat.LogPath(fixture.DataDirectory));
            Assert.DoesNotContain("audit-s3cret-value", text, StringComparison.Ordinal);
            Assert.DoesNotContain(key.GetProperty("SecretAccessKey").GetString()!, text, StringComparison.Ordinal);
            Assert.DoesNotContain(fixture.Server.Root.SecretAccessKey, text, StringComparison.Ordinal);
            Assert.True(AuditVerifier.Verify(fixture.DataDirectory).Intact);
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Fact]
    public async Task Unauthenticated_requests_are_recorded_within_a_budget_per_address_and_the_rest_are_counted_in_the_next_record()
    {
        var fixture = new ServerFixture();
        await fixture.InitializeAsync();
        try
        {
            // A flood with a wrong key: every request is refused as usual, but only the budget gets a record each.
            const int Flood = 200;
            var started = DateTimeOffset.UtcNow;
            await Parallel.ForEachAsync(Enumerable.Range(0, Flood), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (_, _) =>
            {
                using var refused = await fixture.SendAsync("GetSecretValue", """{"SecretId": "flood"}""", secretAccessKey: "wrong");
                Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            });
            var seconds = (DateTimeOffset.UtcNow - started).TotalSeconds;
            var recorded = Records(fixture).Count;
            Assert.InRange(recorded, UnauthenticatedAuditLimit.Burst, UnauthenticatedAuditLimit.Burst + (int)Math.Ceiling(seconds * UnauthenticatedAuditLimit.PerSecond) + 1);

            // The next record from the address, once the bucket has refilled, says how many went unrecorded: none is lost from the count.
            var sent = Flood;
            List<JsonElement> records;
            do
            {
                await Task.Delay(TimeSpan.FromSeconds(1.0 / UnauthenticatedAuditLimit.PerSecond));
                using (await fixture.SendAsync("GetSecretValue", """{"SecretId": "flood"}""", secretAccessKey: "wrong"))
                {
                }
                sent++;
                records = Records(fixture);
            }
            while (!records[^1].TryGetProperty("detail", out _) && sent < Flood + 50);
            var unrecorded = records.Sum(r => r.TryGetProperty("detail", out var detail)
                ? long.Parse(detail.GetString()!.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) : 0);
            Assert.Equal(sent, records.Count + unrecorded);
            Assert.All(records, r => Assert.Equal(("InvalidSignatureException", "127.0.0.1"), (r.GetProperty("errorCode").GetString(), r.GetProperty("sourceIp").GetString())));
            Assert.EndsWith("requests from this address were refused without a record each (beyond 20 at once or 5 per second per address, or 20 per second in all)",
                records[^1].GetProperty("detail").GetString(), StringComparison.Ordinal);

            // An authenticated caller is recorded every time, whatever the address did before.
            for (var i = 0; i < 3; i++)
            {
                await fixture.CallAsync("ListSecrets", new { });
            }
            Assert.Equal(3, Records(fixture).Count(r => r.GetProperty("operation").GetString() == "ListSecrets"));
            Assert.True(AuditVerifier.Verify(fixture.DataDirectory).Intact);
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_removed_audit_directory_is_said_at_start_and_in_the_new_chains_first_record()
    {
        using var temp = new TempDataDirectory();
        var options = new ServerOptions { DataDirectory = temp.Path, Listen = ["127.0.0.1:0"] };
        var first = new StringWriter();
        await using (await TumblerServer.StartAsync(options, first, default))
        {
        }
        Assert.DoesNotContain("WARNING", first.ToString(), StringComparison.Ordinal); // a new data directory starts its chain quietly
        await using (await TumblerServer.StartAsync(options, TextWriter.Null, default))
        {
        }

        Directory.Delete(Path.Combine(temp.Path, AuditFormat.DirectoryName), recursive: true);
        var again = new StringWriter();
        await using (await TumblerServer.StartAsync(options, again, default))
        {
        }
        Assert.Contains("WARNING: audit: ", again.ToString(), StringComparison.Ordinal);
        Assert.Contains("that log was removed", again.ToString(), StringComparison.Ordinal);
        var record = Assert.Single(File.ReadAllLines(AuditFormat.LogPath(temp.Path)).Select(line => JsonDocument.Parse(line).RootElement));
        Assert.Equal(("StartAuditLog", 1), (record.GetProperty("operation").GetString(), record.GetProperty("seq").GetInt32()));
        Assert.Contains("that log was removed", record.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task When_the_audit_log_cannot_be_written_requests_are_refused_and_nothing_is_done()
    {
        var fixture = new ServerFixture();
        await fixture.InitializeAsync();
        try
        {
            await fixture.CallAsync("CreateSecret", new { Name = "audit/closed", SecretString = "closed-value", ClientRequestToken = Guid.NewGuid().ToString() });
            // Root can't be stopped by permissions: replace the audit directory with a file.
            var auditDirectory = Path.Combine(fixture.DataDirectory, AuditFormat.DirectoryName);
            Directory.Delete(auditDirectory, recursive: true);
            await File.WriteAllTextAsync(auditDirectory, "not a directory");

            using var read = await fixture.SendAsync("GetSecretValue", """{"SecretId": "audit/closed"}""");
            var body = await read.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.InternalServerError, read.StatusCode);
            Assert.Contains("InternalServiceError", body, StringComparison.Ordinal);
            Assert.Contains("audit log", body, StringComparison.Ordinal);
            Assert.DoesNotContain("closed-value", body, StringComparison.Ordinal);

            using var write = await fixture.SendAsync("CreateSecret", JsonSerializer.Serialize(new { Name = "audit/unrecorded", SecretString = "x", ClientRequestToken = Guid.NewGuid().ToString() }));
            Assert.Equal(HttpStatusCode.InternalServerError, write.StatusCode);
            File.Delete(auditDirectory);
            Assert.Null(await fixture.Server.Services.GetService<Tumbler.Core.Storage.ISecretStore>()!
                .FindSecretAsync("us-east-1", Tumbler.Core.Storage.SecretLookup.ByName("audit/unrecorded"), CancellationToken.None));
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }
}
