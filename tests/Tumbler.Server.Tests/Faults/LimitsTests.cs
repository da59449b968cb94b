using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Tumbler.Server.Tests.Support;
using Tumbler.Server.Transport;

namespace Tumbler.Server.Tests.Faults;

/// <summary>
/// Clients that hold connections or memory hostage meet Kestrel's limits as Tumbler sets them
/// (<see cref="TransportSetup.ApplyLimits"/>): over raw TCP, as a hostile client would talk.
/// </summary>
public sealed class LimitsTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private async Task<TcpClient> ConnectAsync()
    {
        var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, fixture.Server.Endpoint.Port);
        return client;
    }

    /// <summary>Reads until the server closes or a whole response (head and Content-Length body) arrived; null on timeout.</summary>
    private static async Task<string?> ReadResponseAsync(NetworkStream stream, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var received = new MemoryStream();
        var buffer = new byte[8192];
        try
        {
            while (true)
            {
                var read = await stream.ReadAsync(buffer, cts.Token);
                if (read == 0)
                {
                    break;
                }
                received.Write(buffer, 0, read);
                var text = Encoding.UTF8.GetString(received.ToArray());
                var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (end >= 0)
                {
                    var head = text[..end];
                    if (head.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase))
                    {
                        if (text.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal))
                        {
                            break;
                        }
                        continue;
                    }
                    var length = head.Split("\r\n").Select(l => l.Split(':', 2)).Where(p => p.Length == 2 && p[0].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                        .Select(p => int.Parse(p[1].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
                    if (Encoding.UTF8.GetByteCount(text) - Encoding.UTF8.GetByteCount(text[..(end + 4)]) >= length)
                    {
                        break;
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        catch (IOException)
        {
            // Reset by the server: what was received is the answer.
        }
        return Encoding.UTF8.GetString(received.ToArray());
    }

    private static int StatusOf(string response) => int.Parse(response.Split(' ', 3)[1], System.Globalization.CultureInfo.InvariantCulture);

    private static JsonElement BodyOf(string response)
    {
        var end = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var body = response[(end + 4)..];
        if (response[..end].Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            var decoded = new StringBuilder();
            while (true)
            {
                var line = body.IndexOf("\r\n", StringComparison.Ordinal);
                var size = Convert.ToInt32(body[..line], 16);
                if (size == 0)
                {
                    break;
                }
                decoded.Append(body, line + 2, size);
                body = body[(line + 2 + size + 2)..];
            }
            body = decoded.ToString();
        }
        return JsonDocument.Parse(body).RootElement;
    }

    private static string Head(int port, IEnumerable<string> extraHeaders, string framing) =>
        $"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: secretsmanager.ListSecrets\r\n"
        + string.Concat(extraHeaders.Select(h => h + "\r\n")) + framing + "\r\n\r\n";

    [Fact]
    public async Task Too_many_headers_are_refused_with_431()
    {
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        var headers = Enumerable.Range(0, TransportSetup.MaxRequestHeaderCount + 1).Select(i => $"X-Filler-{i}: {i}");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(Head(fixture.Server.Endpoint.Port, headers, "Content-Length: 2") + "{}"));
        var response = await ReadResponseAsync(stream, TimeSpan.FromSeconds(10));
        Assert.NotNull(response);
        Assert.Equal(431, StatusOf(response));
    }

    [Fact]
    public async Task A_huge_header_is_refused_with_431()
    {
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        var header = "X-Huge: " + new string('h', TransportSetup.MaxRequestHeadersTotalSize);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(Head(fixture.Server.Endpoint.Port, [header], "Content-Length: 2") + "{}"));
        var response = await ReadResponseAsync(stream, TimeSpan.FromSeconds(10));
        Assert.NotNull(response);
        Assert.Equal(431, StatusOf(response));
    }

    [Fact]
    public async Task Headers_within_the_limits_still_reach_the_API()
    {
        // Just under both caps: the request is read and answered by the endpoint (unsigned, so refused in the AWS shape).
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        var headers = Enumerable.Range(0, TransportSetup.MaxRequestHeaderCount - 10).Select(i => $"X-Filler-{i}: {new string('f', 100)}");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(Head(fixture.Server.Endpoint.Port, headers, "Content-Length: 2") + "{}"));
        var response = await ReadResponseAsync(stream, TimeSpan.FromSeconds(10));
        Assert.NotNull(response);
        Assert.Equal((400, "MissingAuthenticationTokenException"), (StatusOf(response), BodyOf(response).GetProperty("__type").GetString()));
    }

    [Fact]
    public async Task A_client_sending_its_headers_byte_by_byte_is_disconnected_after_the_headers_timeout()
    {
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        var head = Encoding.ASCII.GetBytes(Head(fixture.Server.Endpoint.Port, Enumerable.Range(0, 50).Select(i => $"X-Slow-{i}: {i}"), "Content-Length: 2"));
        var started = Stopwatch.StartNew();
        var disconnected = false;
        try
        {
            // One byte every 250 ms: the whole head would take well over a minute.
            for (var i = 0; i < head.Length && started.Elapsed < TransportSetup.RequestHeadersTimeout * 3; i++)
            {
                await stream.WriteAsync(head.AsMemory(i, 1));
                await Task.Delay(250);
                if (client.Client.Poll(0, SelectMode.SelectRead))
                {
                    // Readable on a connection we never completed a request on: the server answered (408) or closed it.
                    disconnected = true;
                    break;
                }
            }
        }
        catch (IOException)
        {
            disconnected = true;
        }
        Assert.True(disconnected, $"still connected after {started.Elapsed}");
        Assert.InRange(started.Elapsed, TransportSetup.RequestHeadersTimeout - TimeSpan.FromSeconds(1), TransportSetup.RequestHeadersTimeout + TimeSpan.FromSeconds(8));
        var rest = await ReadResponseAsync(stream, TimeSpan.FromSeconds(5));
        Assert.True(rest is null || rest.Length == 0 || StatusOf(rest) == 408, rest);
    }

    [Fact]
    public async Task A_body_announced_over_one_MiB_is_refused_before_any_of_it_is_sent()
    {
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        // 100 MiB announced, not one byte sent: the answer can only come from the announcement.
        await stream.WriteAsync(Encoding.ASCII.GetBytes(Head(fixture.Server.Endpoint.Port, [], $"Content-Length: {100 * 1024 * 1024}")));
        var response = await ReadResponseAsync(stream, TimeSpan.FromSeconds(10));
        Assert.NotNull(response);
        Assert.Equal((400, "ValidationException"), (StatusOf(response), BodyOf(response).GetProperty("__type").GetString()));
    }

    [Fact]
    public async Task A_chunked_body_over_one_MiB_is_refused_once_the_limit_is_crossed()
    {
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(Head(fixture.Server.Endpoint.Port, [], "Transfer-Encoding: chunked")));
        var chunk = Encoding.ASCII.GetBytes($"10000\r\n{new string('x', 0x10000)}\r\n");
        // Up to 64 MiB offered in 64 KiB chunks; the server answers after a little over 1 MiB and stops reading.
        var sent = 0L;
        var answer = ReadResponseAsync(stream, TimeSpan.FromSeconds(30));
        try
        {
            for (var i = 0; i < 1024 && !answer.IsCompleted; i++)
            {
                await stream.WriteAsync(chunk).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
                sent += 0x10000;
            }
        }
        catch (Exception e) when (e is IOException or TimeoutException)
        {
            // The server stopped reading: the sender blocks or is reset.
        }
        var response = await answer;
        Assert.NotNull(response);
        Assert.Equal((400, "ValidationException"), (StatusOf(response), BodyOf(response).GetProperty("__type").GetString()));
        Assert.True(sent < 16L * 1024 * 1024, $"the server read {sent} bytes before answering");
    }

    [Fact]
    public async Task A_malformed_chunked_body_is_a_400_in_the_AWS_shape_not_a_500()
    {
        using var client = await ConnectAsync();
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(Head(fixture.Server.Endpoint.Port, [], "Transfer-Encoding: chunked") + "zz\r\n{}\r\n0\r\n\r\n"));
        var response = await ReadResponseAsync(stream, TimeSpan.FromSeconds(10));
        Assert.NotNull(response);
        // Found by these tests: Kestrel's BadHttpRequestException reached the catch-all and was answered 500 InternalServiceError.
        Assert.Equal((400, "ValidationException"), (StatusOf(response), BodyOf(response).GetProperty("__type").GetString()));
    }
}

/// <summary>A body trickled below the minimum data rate (its own class, so it runs beside the slowloris test).</summary>
public sealed class SlowBodyLimitsTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task A_client_trickling_its_body_below_the_minimum_rate_is_disconnected()
    {
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, fixture.Server.Endpoint.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST / HTTP/1.1\r\nHost: 127.0.0.1:{fixture.Server.Endpoint.Port}\r\n"
            + "Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: secretsmanager.ListSecrets\r\nContent-Length: 100000\r\n\r\n"));
        var started = Stopwatch.StartNew();
        var disconnected = false;
        try
        {
            // 4 bytes a second, far below 240 bytes/s: after the 5 s grace the server gives up on this body.
            while (started.Elapsed < TimeSpan.FromSeconds(30))
            {
                await stream.WriteAsync("    "u8.ToArray());
                await Task.Delay(1000);
                if (client.Client.Poll(0, SelectMode.SelectRead))
                {
                    disconnected = true;
                    break;
                }
            }
        }
        catch (IOException)
        {
            disconnected = true;
        }
        Assert.True(disconnected, $"still connected after {started.Elapsed}");
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(15));
        using var healthy = await fixture.SendAsync("ListSecrets", "{}");
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
    }
}
