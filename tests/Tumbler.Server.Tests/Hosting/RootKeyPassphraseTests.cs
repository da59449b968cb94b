using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Tumbler.Client;
using Tumbler.Server.Hosting;
using Tumbler.Storage.Sqlite;

namespace Tumbler.Server.Tests.Hosting;

/// <summary>The root key derived from a passphrase (PBKDF2-HMAC-SHA256, salt in the store) instead of DATA_DIR/root.key.</summary>
public sealed class RootKeyPassphraseTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tumbler-passphrase-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    private string DataDir => Path.Combine(_directory, "data");

    private async Task<TumblerServer> StartAsync(string passphrase)
    {
        var file = Path.Combine(_directory, "passphrase");
        await File.WriteAllTextAsync(file, passphrase + "\n");
        return await TumblerServer.StartAsync(new ServerOptions { DataDirectory = DataDir, Listen = ["127.0.0.1:0"], RootKeyPassphraseFile = file },
            TextWriter.Null, default);
    }

    private static async Task<string> CallAsync(TumblerServer server, string operation, string body)
    {
        using var http = new HttpClient();
        var bytes = Encoding.UTF8.GetBytes(body);
        using var request = new HttpRequestMessage(HttpMethod.Post, server.Endpoint) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-amz-json-1.1");
        request.Headers.TryAddWithoutValidation("X-Amz-Target", "secretsmanager." + operation);
        SigV4Signer.Sign(request, bytes, server.Root.AccessKeyId, server.Root.SecretAccessKey, "us-east-1", DateTimeOffset.UtcNow);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return text;
    }

    [Fact]
    public async Task A_store_made_with_a_passphrase_reopens_with_it_only_and_no_root_key_file_is_written()
    {
        const string passphrase = "correct horse battery staple";
        await using (var server = await StartAsync(passphrase))
        {
            await CallAsync(server, "CreateSecret", $$"""{"Name": "pp/db", "SecretString": "pp-value", "ClientRequestToken": "{{Guid.NewGuid()}}"}""");
        }
        Assert.False(File.Exists(Path.Combine(DataDir, ServerOptions.RootKeyFile)));
        await using (var store = new SqliteSecretStore(Path.Combine(DataDir, ServerOptions.DatabaseFile)))
        {
            Assert.Equal(16, Convert.FromBase64String((await store.GetSettingAsync("root_key_salt", default))!).Length);
        }

        await using (var server = await StartAsync(passphrase))
        {
            var read = JsonDocument.Parse(await CallAsync(server, "GetSecretValue", """{"SecretId": "pp/db"}""")).RootElement;
            Assert.Equal("pp-value", read.GetProperty("SecretString").GetString());
        }

        var wrong = await Assert.ThrowsAsync<StartupException>(() => StartAsync("not the passphrase at all"));
        Assert.Contains("root key", wrong.Message, StringComparison.Ordinal);
        var tooShort = await Assert.ThrowsAsync<StartupException>(() => StartAsync("short"));
        Assert.Contains("at least 12 characters", tooShort.Message, StringComparison.Ordinal);
    }
}
