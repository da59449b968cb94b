using System.Buffers;
using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tumbler.Core.Secrets;
using Tumbler.Server.Auth;

namespace Tumbler.Server.Protocol;

/// <summary>
/// The AWS JSON 1.1 endpoint (spec §1): <c>POST /</c>, operation from <c>X-Amz-Target</c>, SigV4 verified
/// before anything else is read, request parsed into its shape, answered with its shape or an error.
/// </summary>
public sealed class ApiEndpoint(SecretsService secrets, SigV4Verifier verifier, ILogger<ApiEndpoint> logger)
{
    public const string ContentType = "application/x-amz-json-1.1";
    public const int MaxBodyBytes = 1024 * 1024;
    private const string TargetPrefix = "secretsmanager.";
    private readonly SecretsService _secrets = secrets;

    private delegate Task Operation(ApiEndpoint endpoint, HttpContext http, ReadOnlyMemory<byte> body, CallContext call);

    private static readonly FrozenDictionary<string, Operation> Operations = new Dictionary<string, Operation>
    {
        ["CreateSecret"] = Handle(WireJsonContext.Default.CreateSecretRequest, WireJsonContext.Default.CreateSecretResponse,
            (s, r, c, ct) => s.CreateSecretAsync(r, c, ct)),
        ["GetSecretValue"] = Handle(WireJsonContext.Default.GetSecretValueRequest, WireJsonContext.Default.GetSecretValueResponse,
            (s, r, c, ct) => s.GetSecretValueAsync(r, c, ct)),
        ["BatchGetSecretValue"] = Handle(WireJsonContext.Default.BatchGetSecretValueRequest, WireJsonContext.Default.BatchGetSecretValueResponse,
            (s, r, c, ct) => s.BatchGetSecretValueAsync(r, c, ct)),
        ["PutSecretValue"] = Handle(WireJsonContext.Default.PutSecretValueRequest, WireJsonContext.Default.PutSecretValueResponse,
            (s, r, c, ct) => s.PutSecretValueAsync(r, c, ct)),
        ["UpdateSecret"] = Handle(WireJsonContext.Default.UpdateSecretRequest, WireJsonContext.Default.UpdateSecretResponse,
            (s, r, c, ct) => s.UpdateSecretAsync(r, c, ct)),
        ["UpdateSecretVersionStage"] = Handle(WireJsonContext.Default.UpdateSecretVersionStageRequest, WireJsonContext.Default.SecretIdentity,
            (s, r, c, ct) => s.UpdateSecretVersionStageAsync(r, c, ct)),
        ["DescribeSecret"] = Handle(WireJsonContext.Default.SecretIdRequest, WireJsonContext.Default.DescribeSecretResponse,
            (s, r, c, ct) => s.DescribeSecretAsync(r, c, ct)),
        ["ListSecrets"] = Handle(WireJsonContext.Default.ListSecretsRequest, WireJsonContext.Default.ListSecretsResponse,
            (s, r, c, ct) => s.ListSecretsAsync(r, c, ct)),
        ["ListSecretVersionIds"] = Handle(WireJsonContext.Default.ListSecretVersionIdsRequest, WireJsonContext.Default.ListSecretVersionIdsResponse,
            (s, r, c, ct) => s.ListSecretVersionIdsAsync(r, c, ct)),
        ["DeleteSecret"] = Handle(WireJsonContext.Default.DeleteSecretRequest, WireJsonContext.Default.DeleteSecretResponse,
            (s, r, c, ct) => s.DeleteSecretAsync(r, c, ct)),
        ["RestoreSecret"] = Handle(WireJsonContext.Default.SecretIdRequest, WireJsonContext.Default.SecretIdentity,
            (s, r, c, ct) => s.RestoreSecretAsync(r, c, ct)),
        ["TagResource"] = Handle(WireJsonContext.Default.TagResourceRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.TagResourceAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["UntagResource"] = Handle(WireJsonContext.Default.UntagResourceRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.UntagResourceAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["RotateSecret"] = Handle(WireJsonContext.Default.RotateSecretRequest, WireJsonContext.Default.RotationResponse,
            (s, r, c, ct) => s.RotateSecretAsync(r, c, ct)),
        ["CancelRotateSecret"] = Handle(WireJsonContext.Default.SecretIdRequest, WireJsonContext.Default.RotationResponse,
            (s, r, c, ct) => s.CancelRotateSecretAsync(r, c, ct)),
        ["GetRandomPassword"] = Handle(WireJsonContext.Default.GetRandomPasswordRequest, WireJsonContext.Default.GetRandomPasswordResponse,
            (s, r, c, ct) => Task.FromResult(s.GetRandomPassword(r))),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Operations of the AWS model that later work brings; until then they answer a clear error.</summary>
    private static readonly FrozenSet<string> NotYetAvailable = new[]
    {
        "PutResourcePolicy", "GetResourcePolicy", "DeleteResourcePolicy",
        "ValidateResourcePolicy", "ReplicateSecretToRegions", "RemoveRegionsFromReplication", "StopReplicationToReplica",
    }.ToFrozenSet(StringComparer.Ordinal);

    public async Task HandleAsync(HttpContext http)
    {
        http.Response.Headers["x-amzn-RequestId"] = http.TraceIdentifier;
        byte[]? rented = null;
        try
        {
            (rented, var length) = await ReadBodyAsync(http.Request);
            var body = rented.AsMemory(0, length);
            var caller = await verifier.VerifyAsync(http.Request.Method, http.Request.Path.Value ?? "/", http.Request.QueryString.Value ?? "",
                http.Request.Headers, body, http.RequestAborted);
            if (!http.RequestServices.GetRequiredService<AccessKeyThrottle>().TryAcquire(caller.AccessKeyId))
            {
                throw new ServiceException(ErrorCodes.Throttling, AccessKeyThrottle.Message);
            }
            var operation = ResolveOperation(http.Request.Headers["X-Amz-Target"].ToString());
            await operation(this, http, body, new CallContext(caller.Region, caller.PrincipalArn));
        }
        catch (ServiceException e)
        {
            await ErrorWriter.WriteAsync(http, e);
        }
        catch (JsonException e)
        {
            // Position only: the JSON text itself may hold a secret value.
            await ErrorWriter.WriteAsync(http, new ServiceException(ErrorCodes.Serialization,
                $"The request body is not valid JSON for this operation (at {e.Path ?? "$"}, line {e.LineNumber}, byte {e.BytePositionInLine})."));
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
        }
        catch (Exception e)
        {
            logger.LogError(e, "Request {RequestId} failed", http.TraceIdentifier);
            await ErrorWriter.WriteAsync(http, new ServiceException(ErrorCodes.InternalServiceError,
                $"An internal error occurred. Request id: {http.TraceIdentifier}."));
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented, clearArray: true);
            }
        }
    }

    private static Operation ResolveOperation(string target)
    {
        if (!target.StartsWith(TargetPrefix, StringComparison.Ordinal))
        {
            throw new ServiceException(ErrorCodes.UnknownOperation,
                target.Length == 0 ? "The X-Amz-Target header is missing." : "The X-Amz-Target header does not name a Secrets Manager operation.");
        }
        var name = target[TargetPrefix.Length..];
        if (Operations.TryGetValue(name, out var operation))
        {
            return operation;
        }
        if (NotYetAvailable.Contains(name))
        {
            throw ServiceException.InvalidRequest($"{name} is not available in this version of Tumbler yet.");
        }
        throw new ServiceException(ErrorCodes.UnknownOperation, $"Unknown operation: {(name.Length > 64 ? name[..64] + "..." : name)}.");
    }

    /// <summary>Reads the body into a pooled buffer (cleared on return: it may hold a secret), refusing more than MaxBodyBytes.</summary>
    private static async Task<(byte[] Buffer, int Length)> ReadBodyAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxBodyBytes)
        {
            throw TooLarge();
        }
        var buffer = ArrayPool<byte>.Shared.Rent((int)(request.ContentLength ?? 4096) + 1);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length > MaxBodyBytes)
                    {
                        throw TooLarge();
                    }
                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, MaxBodyBytes + 1));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
                    buffer = larger;
                }
                var read = await request.Body.ReadAsync(buffer.AsMemory(length), request.HttpContext.RequestAborted);
                if (read == 0)
                {
                    return (buffer, length);
                }
                length += read;
                if (length > MaxBodyBytes)
                {
                    throw TooLarge();
                }
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
            throw;
        }
    }

    private static ServiceException TooLarge() =>
        new(ErrorCodes.Validation, $"The request body is larger than the limit of {MaxBodyBytes} bytes.");

    private static Operation Handle<TRequest, TResponse>(JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType,
        Func<SecretsService, TRequest, CallContext, CancellationToken, Task<TResponse>> invoke)
        where TRequest : new() =>
        async (endpoint, http, body, call) =>
        {
            // An empty body or a JSON null reads as {}: operations without input still work for raw callers.
            var request = body.IsEmpty ? new TRequest() : JsonSerializer.Deserialize(body.Span, requestType) ?? new TRequest();
            var response = await invoke(endpoint._secrets, request, call, http.RequestAborted);
            http.Response.StatusCode = StatusCodes.Status200OK;
            http.Response.ContentType = ContentType;
            using (var writer = new Utf8JsonWriter(http.Response.BodyWriter))
            {
                JsonSerializer.Serialize(writer, response, responseType);
            }
            await http.Response.BodyWriter.FlushAsync(http.RequestAborted);
        };
}
