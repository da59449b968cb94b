using System.Buffers;
using System.Collections.Frozen;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Tumbler.Core.Access;
using Tumbler.Core.Audit;
using Tumbler.Server.Audit;
using Tumbler.Core.Functions;
using Tumbler.Core.Keys;
using Tumbler.Core.Secrets;
using Tumbler.Server.Auth;
using Tumbler.Server.Metrics;

namespace Tumbler.Server.Protocol;

/// <summary>
/// The AWS JSON 1.1 endpoint (spec §1): <c>POST /</c>, operation from <c>X-Amz-Target</c>, SigV4 verified
/// before anything else is read, request parsed into its shape, answered with its shape or an error.
/// </summary>
public sealed class ApiEndpoint(SecretsService secrets, IdentityService identities, FunctionService functions, KeyService keyService, SigV4Verifier verifier,
    AccessKeyThrottle throttle, IAuditLog audit, UnauthenticatedAuditLimit unauthenticatedAudit, ServerMetrics metrics, TimeProvider time,
    ILogger<ApiEndpoint> logger)
{
    public const string ContentType = "application/x-amz-json-1.1";
    public const int MaxBodyBytes = 1024 * 1024;
    private const string TargetPrefix = "secretsmanager.";
    /// <summary>The admin (IAM) operations: same endpoint, requests signed for the "iam" service.</summary>
    public const string IamTargetPrefix = "TumblerIAM.";
    private readonly SecretsService _secrets = secrets;
    private readonly IdentityService _identities = identities;
    private readonly FunctionService _functions = functions;
    /// <summary>The rotation functions admin operations: same endpoint, requests signed for the "lambda" service.</summary>
    public const string FunctionsTargetPrefix = "TumblerFunctions.";
    private readonly KeyService _keys = keyService;
    /// <summary>The KMS-like keys admin operations: same endpoint, requests signed for the "kms" service.</summary>
    public const string KeysTargetPrefix = "TumblerKMS.";

    /// <summary>Runs an operation and returns the writer of its answer; the answer is sent only once the audit record is written.</summary>
    private delegate Task<Func<Task>> Operation(ApiEndpoint endpoint, HttpContext http, ReadOnlyMemory<byte> body, CallContext call, AuditFacts facts);

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
        ["ListSecrets"] = Handle(WireJsonContext.Default.ListSecretsRequest, ListSecretsJson.Write,
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
            (s, r, c, ct) => Task.FromResult(s.GetRandomPassword(r, c))),
        ["PutResourcePolicy"] = Handle(WireJsonContext.Default.PutResourcePolicyRequest, WireJsonContext.Default.SecretIdentity,
            (s, r, c, ct) => s.PutResourcePolicyAsync(r, c, ct)),
        ["GetResourcePolicy"] = Handle(WireJsonContext.Default.SecretIdRequest, WireJsonContext.Default.GetResourcePolicyResponse,
            (s, r, c, ct) => s.GetResourcePolicyAsync(r, c, ct)),
        ["DeleteResourcePolicy"] = Handle(WireJsonContext.Default.SecretIdRequest, WireJsonContext.Default.SecretIdentity,
            (s, r, c, ct) => s.DeleteResourcePolicyAsync(r, c, ct)),
        ["ValidateResourcePolicy"] = Handle(WireJsonContext.Default.ValidateResourcePolicyRequest, WireJsonContext.Default.ValidateResourcePolicyResponse,
            (s, r, c, ct) => s.ValidateResourcePolicyAsync(r, c, ct)),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static readonly FrozenDictionary<string, Operation> IamOperations = new Dictionary<string, Operation>
    {
        ["CreateUser"] = HandleIam(WireJsonContext.Default.UserNameRequest, WireJsonContext.Default.UserResponse,
            (s, r, c, ct) => s.CreateUserAsync(r, c, ct)),
        ["GetUser"] = HandleIam(WireJsonContext.Default.UserNameRequest, WireJsonContext.Default.UserResponse,
            (s, r, c, ct) => s.GetUserAsync(r, c, ct)),
        ["ListUsers"] = HandleIam(WireJsonContext.Default.EmptyResponse, WireJsonContext.Default.ListUsersResponse,
            (s, r, c, ct) => s.ListUsersAsync(c, ct)),
        ["DeleteUser"] = HandleIam(WireJsonContext.Default.UserNameRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.DeleteUserAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["CreateAccessKey"] = HandleIam(WireJsonContext.Default.AccessKeyRequest, WireJsonContext.Default.CreateAccessKeyResponse,
            (s, r, c, ct) => s.CreateAccessKeyAsync(r, c, ct)),
        ["ListAccessKeys"] = HandleIam(WireJsonContext.Default.UserNameRequest, WireJsonContext.Default.ListAccessKeysResponse,
            (s, r, c, ct) => s.ListAccessKeysAsync(r, c, ct)),
        ["UpdateAccessKey"] = HandleIam(WireJsonContext.Default.AccessKeyRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.UpdateAccessKeyAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["DeleteAccessKey"] = HandleIam(WireJsonContext.Default.AccessKeyRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.DeleteAccessKeyAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["PutUserPolicy"] = HandleIam(WireJsonContext.Default.UserPolicyRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.PutUserPolicyAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["GetUserPolicy"] = HandleIam(WireJsonContext.Default.UserPolicyRequest, WireJsonContext.Default.GetUserPolicyResponse,
            (s, r, c, ct) => s.GetUserPolicyAsync(r, c, ct)),
        ["DeleteUserPolicy"] = HandleIam(WireJsonContext.Default.UserPolicyRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.DeleteUserPolicyAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["ListUserPolicies"] = HandleIam(WireJsonContext.Default.UserNameRequest, WireJsonContext.Default.ListUserPoliciesResponse,
            (s, r, c, ct) => s.ListUserPoliciesAsync(r, c, ct)),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static readonly FrozenDictionary<string, Operation> FunctionOperations = new Dictionary<string, Operation>
    {
        ["CreateFunction"] = HandleFunctions(WireJsonContext.Default.FunctionRequest, WireJsonContext.Default.FunctionConfiguration,
            (s, r, c, ct) => s.CreateFunctionAsync(r, c, ct)),
        ["UpdateFunction"] = HandleFunctions(WireJsonContext.Default.FunctionRequest, WireJsonContext.Default.FunctionConfiguration,
            (s, r, c, ct) => s.UpdateFunctionAsync(r, c, ct)),
        ["GetFunction"] = HandleFunctions(WireJsonContext.Default.FunctionNameRequest, WireJsonContext.Default.GetFunctionResponse,
            (s, r, c, ct) => s.GetFunctionAsync(r, c, ct)),
        ["ListFunctions"] = HandleFunctions(WireJsonContext.Default.EmptyResponse, WireJsonContext.Default.ListFunctionsResponse,
            (s, r, c, ct) => s.ListFunctionsAsync(c, ct)),
        ["DeleteFunction"] = HandleFunctions(WireJsonContext.Default.FunctionNameRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.DeleteFunctionAsync(r, c, ct); return EmptyResponse.Instance; }),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static readonly FrozenDictionary<string, Operation> KeyOperations = new Dictionary<string, Operation>
    {
        ["CreateKey"] = HandleKeys(WireJsonContext.Default.CreateKeyRequest, WireJsonContext.Default.KeyMetadataResponse,
            (s, r, c, ct) => s.CreateKeyAsync(r, c, ct)),
        ["ListKeys"] = HandleKeys(WireJsonContext.Default.EmptyResponse, WireJsonContext.Default.ListKeysResponse,
            (s, r, c, ct) => s.ListKeysAsync(c, ct)),
        ["DescribeKey"] = HandleKeys(WireJsonContext.Default.KeyIdRequest, WireJsonContext.Default.KeyMetadataResponse,
            (s, r, c, ct) => s.DescribeKeyAsync(r, c, ct)),
        ["EnableKey"] = HandleKeys(WireJsonContext.Default.KeyIdRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.EnableKeyAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["DisableKey"] = HandleKeys(WireJsonContext.Default.KeyIdRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.DisableKeyAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["ScheduleKeyDeletion"] = HandleKeys(WireJsonContext.Default.ScheduleKeyDeletionRequest, WireJsonContext.Default.ScheduleKeyDeletionResponse,
            (s, r, c, ct) => s.ScheduleKeyDeletionAsync(r, c, ct)),
        ["CancelKeyDeletion"] = HandleKeys(WireJsonContext.Default.KeyIdRequest, WireJsonContext.Default.CancelKeyDeletionResponse,
            (s, r, c, ct) => s.CancelKeyDeletionAsync(r, c, ct)),
        ["CreateAlias"] = HandleKeys(WireJsonContext.Default.CreateAliasRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.CreateAliasAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["UpdateAlias"] = HandleKeys(WireJsonContext.Default.UpdateAliasRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.UpdateAliasAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["DeleteAlias"] = HandleKeys(WireJsonContext.Default.DeleteAliasRequest, WireJsonContext.Default.EmptyResponse,
            async (s, r, c, ct) => { await s.DeleteAliasAsync(r, c, ct); return EmptyResponse.Instance; }),
        ["ListAliases"] = HandleKeys(WireJsonContext.Default.ListAliasesRequest, WireJsonContext.Default.ListAliasesResponse,
            (s, r, c, ct) => s.ListAliasesAsync(r, c, ct)),
        ["RotateKeyOnDemand"] = HandleKeys(WireJsonContext.Default.KeyIdRequest, WireJsonContext.Default.RotateKeyOnDemandResponse,
            (s, r, c, ct) => s.RotateKeyOnDemandAsync(r, c, ct)),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The admin APIs beside Secrets Manager on the same endpoint: a target prefix, the service its requests must be signed for, its operations.</summary>
    private sealed record AdminApi(string Prefix, string Service, FrozenDictionary<string, Operation> Operations);

    private static readonly AdminApi[] AdminApis = [new(IamTargetPrefix, "iam", IamOperations), new(FunctionsTargetPrefix, "lambda", FunctionOperations),
        new(KeysTargetPrefix, "kms", KeyOperations)];

    /// <summary>Operations of the AWS model Tumbler does not offer: each region it serves is its own namespace, so there is nothing to replicate.</summary>
    private static readonly FrozenSet<string> ReplicationOperations = new[]
    {
        "ReplicateSecretToRegions", "RemoveRegionsFromReplication", "StopReplicationToReplica",
    }.ToFrozenSet(StringComparer.Ordinal);

    public async Task HandleAsync(HttpContext http)
    {
        http.Response.Headers["x-amzn-RequestId"] = http.TraceIdentifier;
        var started = Stopwatch.GetTimestamp();
        byte[]? rented = null;
        var facts = new AuditFacts();
        var origin = Origin(http);
        try
        {
            (rented, var length) = await ReadBodyAsync(http.Request);
            var body = rented.AsMemory(0, length);
            var target = http.Request.Headers["X-Amz-Target"].ToString();
            facts.Operation = OperationName(target);
            var caller = await verifier.VerifyAsync(http.Request.Method, http.Request.Path.Value ?? "/", http.Request.QueryString.Value ?? "",
                http.Request.Headers, body, http.RequestAborted);
            facts.Caller = caller;
            if (!throttle.TryAcquire(caller.AccessKeyId))
            {
                throw new ServiceException(ErrorCodes.Throttling, AccessKeyThrottle.Message);
            }
            var operation = ResolveOperation(target, caller.Service);
            if (!audit.IsHealthy)
            {
                throw AuditUnavailable();
            }
            var respond = await operation(this, http, body, new CallContext(caller.Region, caller.Principal, origin), facts);
            await AppendAsync(http, facts, origin, null);
            await respond();
            metrics.RecordRequest(facts.Operation, AuditOutcome.Success, Stopwatch.GetElapsedTime(started));
        }
        catch (Exception e) when (e is not OperationCanceledException || !http.RequestAborted.IsCancellationRequested)
        {
            var error = ToServiceError(e, http);
            try
            {
                // Who never authenticated is recorded within a budget per address (the rest only counted), so junk cannot fill the disk.
                if (facts.Caller is not null)
                {
                    await AppendAsync(http, facts, origin, error);
                }
                else if (UnauthenticatedAuditLimit.SourceOf(origin.SourceIp) is var source && unauthenticatedAudit.TryRecord(source, out var unrecorded))
                {
                    facts.Detail = unrecorded > 0 ? UnauthenticatedAuditLimit.Detail(unrecorded) : null;
                    try
                    {
                        await AppendAsync(http, facts, origin, error);
                    }
                    catch
                    {
                        unauthenticatedAudit.Restore(source, unrecorded);
                        throw;
                    }
                }
            }
            catch (AuditUnavailableException)
            {
                error = AuditUnavailable();
            }
            await ErrorWriter.WriteAsync(http, error);
            metrics.RecordRequest(facts.Operation, Outcome(error), Stopwatch.GetElapsedTime(started));
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented, clearArray: true);
            }
            if (logger.IsEnabled(LogLevel.Debug))
            {
                logger.LogDebug("{Operation} answered {StatusCode} in {ElapsedMs:F1} ms", facts.Operation, http.Response.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
    }

    private ServiceException ToServiceError(Exception e, HttpContext http)
    {
        switch (e)
        {
            case ServiceException service:
                return service;
            case JsonException json:
                // Position only (counted from 1, as editors do): the JSON text itself may hold a secret value.
                return new ServiceException(ErrorCodes.Serialization,
                    $"The request body is not valid JSON for this operation (at {json.Path ?? "$"}, line {json.LineNumber + 1}, byte {json.BytePositionInLine + 1}).");
            case BadHttpRequestException unreadable:
                // Kestrel could not read the body (broken chunked framing, a client too slow): the client's fault, not ours.
                return new ServiceException(ErrorCodes.Validation, $"The request body could not be read: {unreadable.Message}");
            case System.Data.Common.DbException store:
                // The database (the SQLite file, or PostgreSQL) failed or is out of reach: one line per request while it lasts,
                // not a stack trace; its messages carry no values (Npgsql leaves row details out unless asked).
                logger.LogError("Request {RequestId} failed in the store: {Reason}", http.TraceIdentifier, store.Message);
                return new ServiceException(ErrorCodes.InternalServiceError,
                    $"Tumbler's store is unavailable or failed; try again. Request id: {http.TraceIdentifier}.");
            case AuditUnavailableException audited:
                logger.LogError("Request {RequestId} refused: {Reason}", http.TraceIdentifier, audited.Message);
                return AuditUnavailable();
            default:
                logger.LogError(e, "Request {RequestId} failed", http.TraceIdentifier);
                return new ServiceException(ErrorCodes.InternalServiceError, $"An internal error occurred. Request id: {http.TraceIdentifier}.");
        }
    }

    private static ServiceException AuditUnavailable() => new(ErrorCodes.InternalServiceError,
        "The audit log cannot be written, so Tumbler refuses requests until it can (after some faults, until it is restarted). The server's log says why.");

    /// <summary>One audit record per request, allowed or not; never a value or a key.</summary>
    private ValueTask AppendAsync(HttpContext http, AuditFacts facts, RequestOrigin origin, ServiceException? error) =>
        audit.AppendAsync(new AuditRecord
        {
            Time = time.GetUtcNow(),
            RequestId = http.TraceIdentifier,
            Operation = facts.Operation,
            Outcome = Outcome(error),
            ErrorCode = error?.ErrorCode,
            PrincipalArn = facts.Caller?.Principal.Arn,
            AccessKeyId = facts.Caller?.AccessKeyId,
            SourceIp = origin.SourceIp,
            UserAgent = origin.UserAgent,
            Region = facts.Caller?.Region,
            SecretArn = facts.SecretArn,
            VersionId = facts.VersionId,
            VersionStage = facts.VersionStage,
            Detail = facts.Detail,
        }, CancellationToken.None);

    private static string Outcome(ServiceException? error) => error switch
    {
        null => AuditOutcome.Success,
        { ErrorCode: ErrorCodes.AccessDenied or ErrorCodes.UnrecognizedClient or ErrorCodes.MissingAuthenticationToken or ErrorCodes.ExpiredToken
            or ErrorCodes.InvalidSignature or ErrorCodes.IncompleteSignature } => AuditOutcome.Denied,
        _ => AuditOutcome.Failed,
    };

    /// <summary>The operation as the audit log names it: known names only, so junk targets cannot write arbitrary text.</summary>
    private static string OperationName(string target)
    {
        if (target.StartsWith(TargetPrefix, StringComparison.Ordinal))
        {
            var name = target[TargetPrefix.Length..];
            return Operations.ContainsKey(name) || ReplicationOperations.Contains(name) ? name : "Unknown";
        }
        foreach (var api in AdminApis)
        {
            if (target.StartsWith(api.Prefix, StringComparison.Ordinal))
            {
                var name = target[api.Prefix.Length..];
                return api.Operations.ContainsKey(name) ? name : "Unknown";
            }
        }
        return "Unknown";
    }

    /// <summary>The peer as Kestrel saw it (or as a trusted proxy reported it); IPv4-mapped addresses read as IPv4.</summary>
    private static RequestOrigin Origin(HttpContext http)
    {
        var address = http.Connection.RemoteIpAddress;
        if (address is { IsIPv4MappedToIPv6: true })
        {
            address = address.MapToIPv4();
        }
        var userAgent = http.Request.Headers.UserAgent.ToString();
        return new RequestOrigin(address?.ToString(), http.Request.IsHttps, userAgent.Length == 0 ? null : userAgent);
    }

    private static Operation ResolveOperation(string target, string signedService)
    {
        foreach (var api in AdminApis)
        {
            if (target.StartsWith(api.Prefix, StringComparison.Ordinal))
            {
                if (signedService != api.Service)
                {
                    throw new ServiceException(ErrorCodes.InvalidSignature, $"Credential should be scoped to correct service: '{api.Service}'.");
                }
                return api.Operations.TryGetValue(target[api.Prefix.Length..], out var adminOperation)
                    ? adminOperation
                    : throw new ServiceException(ErrorCodes.UnknownOperation, $"Unknown {api.Service} admin operation.");
            }
        }
        if (signedService != "secretsmanager")
        {
            throw new ServiceException(ErrorCodes.InvalidSignature, "Credential should be scoped to correct service: 'secretsmanager'.");
        }
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
        if (ReplicationOperations.Contains(name))
        {
            throw ServiceException.InvalidRequest($"{name}: replication is not supported; each region Tumbler serves is its own namespace.");
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
        Handle(requestType, Serialize(responseType), invoke);

    /// <summary>A Secrets Manager operation whose answer has a writer of its own.</summary>
    private static Operation Handle<TRequest, TResponse>(JsonTypeInfo<TRequest> requestType, Action<Utf8JsonWriter, TResponse> write,
        Func<SecretsService, TRequest, CallContext, CancellationToken, Task<TResponse>> invoke)
        where TRequest : new() =>
        Respond(requestType, write, (endpoint, request, call, ct) => invoke(endpoint._secrets, request, call, ct));

    private static Operation HandleIam<TRequest, TResponse>(JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType,
        Func<IdentityService, TRequest, CallContext, CancellationToken, Task<TResponse>> invoke)
        where TRequest : new() =>
        Respond(requestType, Serialize(responseType), (endpoint, request, call, ct) => invoke(endpoint._identities, request, call, ct));

    private static Operation HandleFunctions<TRequest, TResponse>(JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType,
        Func<FunctionService, TRequest, CallContext, CancellationToken, Task<TResponse>> invoke)
        where TRequest : new() =>
        Respond(requestType, Serialize(responseType), (endpoint, request, call, ct) => invoke(endpoint._functions, request, call, ct));

    private static Operation HandleKeys<TRequest, TResponse>(JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType,
        Func<KeyService, TRequest, CallContext, CancellationToken, Task<TResponse>> invoke)
        where TRequest : new() =>
        Respond(requestType, Serialize(responseType), (endpoint, request, call, ct) => invoke(endpoint._keys, request, call, ct));

    /// <summary>Answers with the generated serializer's JSON of the shape.</summary>
    private static Action<Utf8JsonWriter, TResponse> Serialize<TResponse>(JsonTypeInfo<TResponse> responseType) =>
        (writer, response) => JsonSerializer.Serialize(writer, response, responseType);

    private static Operation Respond<TRequest, TResponse>(JsonTypeInfo<TRequest> requestType, Action<Utf8JsonWriter, TResponse> write,
        Func<ApiEndpoint, TRequest, CallContext, CancellationToken, Task<TResponse>> invoke)
        where TRequest : new() =>
        async (endpoint, http, body, call, facts) =>
        {
            // System.Text.Json skips members it does not bind without decoding them, so invalid UTF-8 there would pass unnoticed.
            if (!System.Text.Unicode.Utf8.IsValid(body.Span))
            {
                throw new ServiceException(ErrorCodes.Serialization, "The request body is not valid UTF-8.");
            }
            // An empty body or a JSON null reads as {}: operations without input still work for raw callers.
            var request = body.IsEmpty ? new TRequest() : JsonSerializer.Deserialize(body.Span, requestType) ?? new TRequest();
            facts.Describe(request);
            var response = await invoke(endpoint, request, call, http.RequestAborted);
            if (response is not null)
            {
                facts.Describe(response);
            }
            return () => WriteAsync(http, response, write);
        };

    // Each thread serializes answers into one kept buffer (serialization is synchronous), copied once into Kestrel's:
    // a ListSecrets page is ~30 KB, which SerializeToUtf8Bytes would allocate and copy for every request.
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_answerBuffer;
    [ThreadStatic] private static Utf8JsonWriter? t_answerWriter;
    private const int KeptAnswerBufferBytes = 256 * 1024; // a larger one (a BatchGetSecretValue of big values) is let go

    private static Task WriteAsync<TResponse>(HttpContext http, TResponse response, Action<Utf8JsonWriter, TResponse> write)
    {
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = ContentType;
        // 80 KB: a secret value at its 64 KB limit and the rest of the answer fit, and it stays off the large object heap.
        var buffer = t_answerBuffer ??= new ArrayBufferWriter<byte>(80 * 1024);
        var writer = t_answerWriter ??= new Utf8JsonWriter(buffer);
        writer.Reset(buffer);
        try
        {
            write(writer, response);
            writer.Flush();
            WriteBody(http.Response, buffer.WrittenSpan);
        }
        finally
        {
            // Zeroes what was written, as it may hold a secret value (an array outgrown on the way is left to the GC
            // unzeroed, like the value's own string and Kestrel's copy).
            buffer.Clear();
            if (buffer.Capacity > KeptAnswerBufferBytes)
            {
                t_answerBuffer = null;
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// Sends a whole body with its Content-Length: Kestrel writes it when the request ends, headers and body in one send,
    /// rather than a chunked body and a second send for its last chunk.
    /// </summary>
    internal static void WriteBody(HttpResponse response, ReadOnlySpan<byte> body)
    {
        response.ContentLength = body.Length;
        response.BodyWriter.Write(body);
    }
}
