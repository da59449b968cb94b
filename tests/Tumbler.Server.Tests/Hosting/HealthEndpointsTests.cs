using System.Net;
using System.Text.Json;
using Tumbler.Server.Audit;
using Tumbler.Server.Tests.Support;

namespace Tumbler.Server.Tests.Hosting;

/// <summary>The probes a load balancer uses: no credentials needed, nothing revealed, ready tells the truth.</summary>
public sealed class HealthEndpointsTests
{
    [Fact]
    public async Task Live_and_ready_answer_without_credentials_and_ready_turns_503_when_the_audit_log_breaks()
    {
        var fixture = new ServerFixture();
        await fixture.InitializeAsync();
        try
        {
            using var live = await fixture.Http.GetAsync(new Uri(fixture.Server.Endpoint, "/health/live"));
            Assert.Equal((HttpStatusCode.OK, "ok"), (live.StatusCode, await live.Content.ReadAsStringAsync()));
            using var ready = await fixture.Http.GetAsync(new Uri(fixture.Server.Endpoint, "/health/ready"));
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.Equal("ready", JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());

            var auditDirectory = Path.Combine(fixture.DataDirectory, AuditFormat.DirectoryName);
            Directory.Delete(auditDirectory, recursive: true);
            await File.WriteAllTextAsync(auditDirectory, "not a directory");
            using (await fixture.SendAsync("ListSecrets", "{}"))
            {
                // The failed audit write is what marks the log unhealthy.
            }
            using var notReady = await fixture.Http.GetAsync(new Uri(fixture.Server.Endpoint, "/health/ready"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
            var problems = JsonDocument.Parse(await notReady.Content.ReadAsStringAsync()).RootElement.GetProperty("problems");
            Assert.Contains("audit", problems[0].GetString(), StringComparison.Ordinal);
            File.Delete(auditDirectory);
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Fact]
    public async Task Ready_turns_503_when_the_audit_directory_is_moved_away_before_any_request_meets_it()
    {
        var fixture = new ServerFixture();
        await fixture.InitializeAsync();
        try
        {
            var auditDirectory = Path.Combine(fixture.DataDirectory, AuditFormat.DirectoryName);
            Directory.Move(auditDirectory, auditDirectory + ".moved");
            // No request in between: the probe itself notices, so the load balancer drops this node first.
            using var notReady = await fixture.Http.GetAsync(new Uri(fixture.Server.Endpoint, "/health/ready"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
            Assert.Contains("audit", JsonDocument.Parse(await notReady.Content.ReadAsStringAsync()).RootElement.GetProperty("problems")[0].GetString(),
                StringComparison.Ordinal);
            Directory.Move(auditDirectory + ".moved", auditDirectory);
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }
}
