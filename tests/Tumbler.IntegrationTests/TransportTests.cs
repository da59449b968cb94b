using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests;

/// <summary>
/// <c>tumbler serve</c> over HTTPS as Debian's aws CLI meets it: the self-signed certificate pinned with
/// --ca-bundle works, an unpinned client fails on the certificate (no insecure fallback), plain HTTP gets
/// nothing; and the transport options' one-line refusals.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class TransportTests
{
    private static string Unique(string hint) => $"{hint}-{Guid.NewGuid().ToString("N")[..10]}";

    /// <summary>aws [--ca-bundle FILE] --endpoint-url URL --output json secretsmanager ARGS, one attempt (no retries).</summary>
    private static Task<CliResult> Aws(TumblerServer server, string endpoint, string? caBundle, params string[] args)
    {
        var environment = ProcessRunner.BaseEnvironment(server.AccessKeyId, server.SecretAccessKey);
        environment["AWS_MAX_ATTEMPTS"] = "1";
        environment["AWS_RETRY_MODE"] = "standard";
        string[] bundle = caBundle is null ? [] : ["--ca-bundle", caBundle];
        return ProcessRunner.RunAsync(AwsCli.Executable,
            [.. bundle, "--cli-connect-timeout", "10", "--endpoint-url", endpoint, "--output", "json", "secretsmanager", .. args], environment);
    }

    [Fact]
    public async Task The_aws_cli_works_over_https_with_the_self_signed_certificate_pinned_and_fails_without_it()
    {
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { ExtraArgs = ["--tls-self-signed"] });
        var https = $"https://127.0.0.1:{server.Port}";
        var certificate = Path.Combine(server.DataDir, "tls", "cert.pem");
        Assert.Contains(https, server.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(certificate, server.StandardOutput, StringComparison.Ordinal);
        Assert.Matches("SHA-256 fingerprint ([0-9A-F]{2}:){31}[0-9A-F]{2}", server.StandardOutput);

        var name = Unique("tls/app");
        (await Aws(server, https, certificate, "create-secret", "--name", name, "--secret-string", "pinned")).Ok();
        Assert.Equal("pinned", (await Aws(server, https, certificate, "get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));

        var unpinned = await Aws(server, https, null, "get-secret-value", "--secret-id", name);
        Assert.NotEqual(0, unpinned.ExitCode);
        Assert.Contains("CERTIFICATE_VERIFY_FAILED", unpinned.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("pinned", unpinned.Stdout, StringComparison.Ordinal);

        var plain = await Aws(server, $"http://127.0.0.1:{server.Port}", null, "get-secret-value", "--secret-id", name);
        Assert.NotEqual(0, plain.ExitCode);
        Assert.DoesNotContain("pinned", plain.Stdout, StringComparison.Ordinal);

        Assert.Equal(0, await server.StopAsync());
    }

    [Theory]
    [InlineData("--rate-limit", "fast")]
    [InlineData("--rate-limit", "0")]
    [InlineData("--rate-burst", "-3")]
    [InlineData("--trusted-proxy", "everyone")]
    [InlineData("--tls-cert", "/nonexistent/cert.pem")]
    public async Task A_bad_transport_option_is_refused_in_one_line_naming_it(string option, string value)
    {
        string[] extra = option switch
        {
            "--rate-burst" => ["--rate-limit", "5", option, value],
            "--tls-cert" => [option, value, "--tls-key", "/nonexistent/key.pem"],
            _ => [option, value],
        };
        var outcome = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions { ExtraArgs = extra });
        Assert.False(outcome.BecameReady, outcome.ToString());
        Assert.Equal(1, outcome.ExitCode);
        var line = Assert.Single(outcome.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"tumbler: {option}", line, StringComparison.Ordinal);
    }
}
