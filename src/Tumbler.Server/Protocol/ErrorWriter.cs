using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Tumbler.Core.Secrets;

namespace Tumbler.Server.Protocol;

/// <summary>
/// AWS JSON 1.1 errors (spec §1.3): <c>{"__type": CODE, "Message": TEXT}</c>, HTTP 400 for every client
/// error and 500 only for our own faults. Framework errors use a lower-case <c>message</c> as AWS does.
/// </summary>
public static class ErrorWriter
{
    public static Task WriteAsync(HttpContext context, ServiceException error)
    {
        var status = error.ErrorCode == ErrorCodes.InternalServiceError ? StatusCodes.Status500InternalServerError : StatusCodes.Status400BadRequest;
        return WriteAsync(context, status, error.ErrorCode, error.Message, error.IsFrameworkError);
    }

    public static Task WriteAsync(HttpContext context, int status, string code, string message, bool lowerCaseMessage)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = ApiEndpoint.ContentType;
        response.Headers["x-amzn-ErrorType"] = code;
        var body = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(body))
        {
            writer.WriteStartObject();
            writer.WriteString("__type", code);
            writer.WriteString(lowerCaseMessage ? "message" : "Message", message);
            writer.WriteEndObject();
        }
        ApiEndpoint.WriteBody(response, body.WrittenSpan);
        return Task.CompletedTask;
    }
}
