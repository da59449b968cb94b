using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tumbler.Client;

namespace Tumbler.Agent;

/// <summary>
/// A local HTTP endpoint with the AWS Secrets Manager Agent's interface (spec 6.1), serving secrets from a
/// <see cref="SecretCache"/> over a Secrets Manager client: <c>GET /secretsmanager/get?secretId=..</c>,
/// <c>GET /v1/&lt;secretId&gt;</c>, <c>GET /ping</c>. Only on 127.0.0.1; every request but /ping must carry
/// the token; requests with X-Forwarded-For are refused.
/// </summary>
public sealed class AgentHost : IAsyncDisposable
{
    private static readonly string[] QueryParameters = ["secretId", "versionId", "versionStage", "refreshNow"];
    private readonly WebApplication _app;
    private readonly AgentOptions _options;
    private readonly byte[] _token;

    private AgentHost(WebApplication app, AgentOptions options, SecretCache cache, byte[] token)
    {
        _app = app;
        _options = options;
        Cache = cache;
        _token = token;
    }

    public Uri Endpoint { get; private set; } = null!;
    public SecretCache Cache { get; }

    /// <summary>Starts serving; the client is not disposed by the agent.</summary>
    public static async Task<AgentHost> StartAsync(AgentOptions options, ISecretsManager client, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var token = Encoding.UTF8.GetBytes(options.ResolveToken());
        var cache = new SecretCache(client, new SecretCacheOptions
        {
            Ttl = TimeSpan.FromSeconds(options.TtlSeconds),
            MaxSize = options.CacheSize,
            MaxStaleness = options.IgnoreTransientErrors ? options.MaxStaleness : TimeSpan.Zero,
            TimeProvider = options.TimeProvider,
        });
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "Tumbler.Agent", Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxConcurrentConnections = options.MaxConnections;
            kestrel.Listen(IPAddress.Loopback, options.Port);
        });
        var app = builder.Build();
        var host = new AgentHost(app, options, cache, token);
        app.Run(host.HandleAsync);
        try
        {
            await app.StartAsync(ct);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new TumblerClientException($"Cannot listen on 127.0.0.1:{options.Port}: {e.Message}");
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        host.Endpoint = new Uri(address);
        return host;
    }

    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Cache.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        if (!HttpMethods.IsGet(request.Method))
        {
            await Text(response, 405, "Not allowed");
            return;
        }
        var path = request.Path.Value ?? "";
        if (path == "/ping")
        {
            await Text(response, 200, "healthy");
            return;
        }
        if (request.Headers.ContainsKey("X-Forwarded-For"))
        {
            await Text(response, 400, "Forwarded");
            return;
        }
        if (!HasToken(request))
        {
            await Text(response, 403, "Bad Token");
            return;
        }
        string? secretId;
        if (path == "/secretsmanager/get")
        {
            secretId = request.Query["secretId"].ToString();
        }
        else if (path.StartsWith(_options.PathPrefix, StringComparison.Ordinal) && path.Length > _options.PathPrefix.Length)
        {
            // A secret name may contain '/', as itself or as %2F: PathString unescapes everything but %2F.
            secretId = path[_options.PathPrefix.Length..].Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
            if (request.Query.ContainsKey("secretId"))
            {
                await Text(response, 400, "unknown parameter: secretId");
                return;
            }
        }
        else
        {
            await Text(response, 404, "Not found");
            return;
        }
        if (request.Query.Keys.FirstOrDefault(k => !QueryParameters.Contains(k, StringComparer.Ordinal)) is { } unknown)
        {
            await Text(response, 400, $"unknown parameter: {unknown}");
            return;
        }
        if (string.IsNullOrEmpty(secretId))
        {
            await Text(response, 400, "missing parameter secretId");
            return;
        }
        var refreshNow = false;
        if (request.Query.TryGetValue("refreshNow", out var refresh))
        {
            switch (refresh.ToString().ToLowerInvariant())
            {
                case "true" or "1": refreshNow = true; break;
                case "false" or "0": break;
                default:
                    await Text(response, 400, "invalid refreshNow value");
                    return;
            }
        }
        var versionId = request.Query["versionId"].ToString() is { Length: > 0 } id ? id : null;
        var versionStage = request.Query["versionStage"].ToString() is { Length: > 0 } stage ? stage : null;
        try
        {
            var value = await Cache.GetSecretValueAsync(secretId, versionId, versionStage, refreshNow, context.RequestAborted);
            response.StatusCode = 200;
            response.ContentType = "application/json";
            await response.Body.WriteAsync(Serialize(value), context.RequestAborted);
        }
        catch (TumblerApiException e)
        {
            await Error(response, e.StatusCode, e.ErrorCode, e.Message);
        }
        catch (TumblerClientException e) when (e.InnerException is TimeoutException)
        {
            await Error(response, 504, "TimeoutError", e.Message);
        }
        catch (TumblerClientException e)
        {
            await Error(response, 502, "ConnectionError", e.Message);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
        catch (Exception)
        {
            await Error(response, 500, "InternalFailure", null);
        }
    }

    private bool HasToken(HttpRequest request)
    {
        foreach (var header in _options.SsrfHeaders)
        {
            if (request.Headers.TryGetValue(header, out var values) && values.Count == 1
                && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(values.ToString()), _token))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>GetSecretValue's JSON, with CreatedDate as a string of epoch seconds with milliseconds, as the AWS agent writes it.</summary>
    internal static byte[] Serialize(SecretValue value)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("ARN", value.Arn);
            json.WriteString("Name", value.Name);
            json.WriteString("VersionId", value.VersionId);
            if (value.SecretString is not null)
            {
                json.WriteString("SecretString", value.SecretString);
            }
            if (value.SecretBinary is { } bytes)
            {
                json.WriteBase64String("SecretBinary", bytes.Span);
            }
            json.WriteStartArray("VersionStages");
            foreach (var stage in value.VersionStages)
            {
                json.WriteStringValue(stage);
            }
            json.WriteEndArray();
            if (value.CreatedDate is { } created)
            {
                var seconds = (decimal)(created.ToUniversalTime() - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerSecond;
                json.WriteString("CreatedDate", decimal.Round(seconds, 3).ToString("0.000", CultureInfo.InvariantCulture));
            }
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static Task Text(HttpResponse response, int status, string text)
    {
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        return response.WriteAsync(text);
    }

    private static async Task Error(HttpResponse response, int status, string code, string? message)
    {
        if (response.HasStarted)
        {
            return;
        }
        response.StatusCode = status;
        response.ContentType = "application/json";
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("__type", code);
            if (message is not null)
            {
                json.WriteString("message", message);
            }
            json.WriteEndObject();
        }
        await response.Body.WriteAsync(buffer.ToArray());
    }
}
