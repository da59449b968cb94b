using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text.Json;
using Tumbler.Client.Tests.Support;

namespace Tumbler.Client.Tests;

/// <summary>The built `tumbler agent` run as a process, configured only by options and the environment.</summary>
public sealed class AgentProcessTests : IAsyncLifetime
{
    private readonly LiveServer _server = new();

    public Task InitializeAsync() => _server.InitializeAsync();
    public Task DisposeAsync() => _server.DisposeAsync();

    [Fact]
    public async Task Tumbler_agent_serves_with_the_token_from_a_file_and_refuses_without_it()
    {
        await _server.CreateAsync("app/db", "p1");
        var tokenFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(tokenFile, "file-token\n");
        var port = FreePort();
        using var agent = Start(["agent", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--endpoint-url", _server.Endpoint.ToString()],
            new() { ["AWS_TOKEN"] = "file://" + tokenFile });
        try
        {
            var line = await agent.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.StartsWith("Tumbler agent listening on http://127.0.0.1:" + port, line);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            Assert.Equal("healthy", await http.GetStringAsync("/ping"));
            using (var refused = await http.GetAsync("/secretsmanager/get?secretId=app/db"))
            {
                Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            }
            using var request = new HttpRequestMessage(HttpMethod.Get, "/secretsmanager/get?secretId=app/db");
            request.Headers.Add("X-Aws-Parameters-Secrets-Token", "file-token");
            using var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("p1", JsonDocument.Parse(body).RootElement.GetProperty("SecretString").GetString());
        }
        finally
        {
            agent.Kill();
            await agent.WaitForExitAsync();
            File.Delete(tokenFile);
        }
    }

    [Fact]
    public async Task Tumbler_agent_will_not_start_without_a_token()
    {
        using var agent = Start(["agent", "--port", FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture), "--endpoint-url", _server.Endpoint.ToString()], []);
        await agent.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, agent.ExitCode);
        Assert.Contains("AWS_TOKEN", await agent.StandardError.ReadToEndAsync());
    }

    private Process Start(string[] args, Dictionary<string, string> environment)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(TumblerDll());
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        foreach (var name in new[] { "AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_PROFILE" })
        {
            psi.Environment.Remove(name);
        }
        psi.Environment["AWS_ACCESS_KEY_ID"] = _server.Root.AccessKeyId;
        psi.Environment["AWS_SECRET_ACCESS_KEY"] = _server.Root.SecretAccessKey;
        psi.Environment["AWS_REGION"] = "us-east-1";
        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }
        return Process.Start(psi)!;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>src/Tumbler.Cli/bin/CONFIGURATION/TFM/tumbler.dll, built with this test assembly (the project reference).</summary>
    private static string TumblerDll()
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = output.Name;
        var configuration = output.Parent!.Name;
        var root = output;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Tumbler.slnx")))
        {
            root = root.Parent;
        }
        Assert.NotNull(root);
        var dll = Path.Combine(root.FullName, "src", "Tumbler.Cli", "bin", configuration, tfm, "tumbler.dll");
        Assert.True(File.Exists(dll), $"{dll} not built ({typeof(AgentProcessTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration})");
        return dll;
    }
}
