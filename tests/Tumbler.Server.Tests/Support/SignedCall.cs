using System.Net.Http.Headers;
using System.Text;
using Tumbler.Client;
using Tumbler.Server.Auth;
using Tumbler.Server.Hosting;

namespace Tumbler.Server.Tests.Support;

/// <summary>Signed AWS JSON 1.1 calls to any endpoint over any <see cref="HttpClient"/> (for servers the tests start themselves).</summary>
public static class SignedCall
{
    public static async Task<HttpResponseMessage> SendAsync(HttpClient http, Uri endpoint, AccessKeyCredential credential, string operation, string body = "{}",
        string? secretAccessKey = null)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-amz-json-1.1");
        request.Headers.TryAddWithoutValidation("X-Amz-Target", $"secretsmanager.{operation}");
        SigV4Signer.Sign(request, bytes, credential.AccessKeyId, secretAccessKey ?? credential.SecretAccessKey, "us-east-1", DateTimeOffset.UtcNow);
        return await http.SendAsync(request);
    }

    public static Task<HttpResponseMessage> SendAsync(HttpClient http, TumblerServer server, string operation, string body = "{}", Uri? endpoint = null) =>
        SendAsync(http, endpoint ?? server.Endpoint, server.Root, operation, body);
}

/// <summary>A temporary data directory deleted on dispose.</summary>
public sealed class TempDataDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("tumbler-transport-tests-").FullName;

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
