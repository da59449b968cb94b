using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Tumbler.Bench.Http;

/// <summary>
/// The ceiling: Kestrel on loopback, HTTP/1.1 like `tumbler serve`, answering POST / with the exact bytes
/// (status, content type, body) tumbler answered for the same X-Amz-Target, recorded before the run. It
/// reads the request body and does nothing else: no signature check, no store, no audit.
/// </summary>
internal static class BareServer
{
    public const string Mode = "bare";
    public const string ContentTypeSuffix = ".content-type";

    public static async Task<int> RunAsync(int port, string responsesDir)
    {
        var responses = Directory.GetFiles(responsesDir, "*.body").ToDictionary(
            path => Path.GetFileNameWithoutExtension(path),
            path => (Body: File.ReadAllBytes(path), ContentType: File.ReadAllText(Path.ChangeExtension(path, ContentTypeSuffix))),
            StringComparer.Ordinal);
        // As tumbler serve does: no file watching (the default watches the working directory, here the temporary directory
        // that holds tumbler's data directory, and would wake on every one of tumbler's writes).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "bare",
            ContentRootPath = AppContext.BaseDirectory,
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
        });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        app.MapGet("/health/ready", () => Results.Text("ok"));
        app.MapPost("/", async http =>
        {
            await http.Request.Body.CopyToAsync(Stream.Null);
            var target = http.Request.Headers["X-Amz-Target"].ToString();
            var operation = target[(target.IndexOf('.', StringComparison.Ordinal) + 1)..];
            if (!responses.TryGetValue(operation, out var response))
            {
                http.Response.StatusCode = 404;
                return;
            }
            http.Response.ContentType = response.ContentType;
            http.Response.ContentLength = response.Body.Length;
            http.Response.Headers["x-amzn-RequestId"] = Guid.NewGuid().ToString();
            await http.Response.Body.WriteAsync(response.Body);
        });
        await app.RunAsync();
        return 0;
    }
}
