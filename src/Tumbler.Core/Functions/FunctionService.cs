using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Tumbler.Core.Access;
using Tumbler.Core.Crypto;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;

namespace Tumbler.Core.Functions;

/// <summary>
/// The functions admin API: register, change, show, list and delete external rotation functions.
/// Each call is authorized as <c>lambda:&lt;Operation&gt;</c> on <c>arn:aws:lambda:REGION:ACCOUNT:function:NAME</c>.
/// Registering a command or Python function lets its author run code as the server's OS user whenever a
/// secret is rotated with it, so these actions belong to administrators only. Functions are global
/// (one namespace for every region served), like the built-in ones a rotation ARN names in any region.
/// </summary>
public sealed partial class FunctionService(IFunctionStore store, KeyRing keys, AccessControl access, TimeProvider time, SecretsOptions options,
    IReadOnlyCollection<string>? reservedNames = null)
{
    public const int DefaultTimeoutSeconds = 30;
    public const int MaxTimeoutSeconds = 300;
    public const int DefaultMaxConcurrency = 4;
    public const int MaxMaxConcurrency = 100;
    /// <summary>Lambda's limit on the environment: 4 KB of names and values.</summary>
    public const int MaxEnvironmentBytes = 4096;
    private const string SealPurpose = "function-config";

    /// <summary>Set by Tumbler for every command and Python function; a function's own environment may not set them.</summary>
    public static readonly IReadOnlySet<string> ReservedVariables = new HashSet<string>(StringComparer.Ordinal)
    {
        "SECRETS_MANAGER_ENDPOINT", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_TIMEOUT", "LAMBDA_TASK_ROOT",
    };

    [GeneratedRegex(@"^[a-zA-Z0-9\-_]{1,64}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^[a-zA-Z][a-zA-Z0-9_]*$")]
    private static partial Regex VariablePattern();

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")]
    private static partial Regex HandlerPattern();

    public string FunctionArn(string region, string name) => $"arn:aws:lambda:{region}:{options.AccountId}:function:{name}";

    public async Task<FunctionConfiguration> CreateFunctionAsync(FunctionRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidName(request.FunctionName);
        Authorize(call, "CreateFunction", FunctionArn(call.Region, name));
        if (reservedNames?.Contains(name) == true)
        {
            throw new ServiceException(FunctionErrors.ResourceConflict, $"{name} is the name of a built-in rotation function.");
        }
        var kinds = (request.Command is null ? 0 : 1) + (request.PythonHandler is null ? 0 : 1) + (request.Url is null ? 0 : 1);
        if (kinds != 1)
        {
            throw Invalid("Give exactly one of Command, PythonHandler and Url.");
        }
        var now = time.GetUtcNow();
        var entity = Build(name, Kind(request)!, request.Command, request.PythonHandler, request.WorkingDirectory, request.Url,
            request.SharedSecret, request.Environment ?? new Dictionary<string, string>(),
            request.Timeout ?? DefaultTimeoutSeconds, request.MaxConcurrency ?? DefaultMaxConcurrency, now, now);
        RequireDirectory(request.WorkingDirectory);
        if (!await store.InsertFunctionAsync(entity, ct))
        {
            throw new ServiceException(FunctionErrors.ResourceConflict, $"Function already exist: {name}");
        }
        return Shape(entity, call.Region);
    }

    public async Task<FunctionConfiguration> UpdateFunctionAsync(FunctionRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidName(request.FunctionName);
        Authorize(call, "UpdateFunction", FunctionArn(call.Region, name));
        var kinds = (request.Command is null ? 0 : 1) + (request.PythonHandler is null ? 0 : 1) + (request.Url is null ? 0 : 1);
        if (kinds > 1)
        {
            throw Invalid("Give at most one of Command, PythonHandler and Url.");
        }
        var existing = await store.FindFunctionAsync(name, ct) ?? throw NotFound(call.Region, name);
        var current = Open(existing);
        var kind = Kind(request) ?? existing.Kind;
        var sameKind = kind == existing.Kind;
        var entity = Build(name, kind,
            kind == FunctionKinds.Command ? request.Command ?? (sameKind ? existing.Command : null) : null,
            kind == FunctionKinds.Python ? request.PythonHandler ?? (sameKind ? existing.PythonHandler : null) : null,
            kind == FunctionKinds.Http ? null : request.WorkingDirectory ?? existing.WorkingDirectory,
            kind == FunctionKinds.Http ? request.Url ?? (sameKind ? existing.Url : null) : null,
            kind == FunctionKinds.Http ? request.SharedSecret ?? current.SharedSecret : null,
            kind == FunctionKinds.Http ? new Dictionary<string, string>() : request.Environment ?? current.Environment,
            request.Timeout ?? existing.TimeoutSeconds, request.MaxConcurrency ?? existing.MaxConcurrency, existing.CreatedDate, time.GetUtcNow());
        RequireDirectory(request.WorkingDirectory);
        if (!await store.UpdateFunctionAsync(entity, ct))
        {
            throw NotFound(call.Region, name);
        }
        return Shape(entity, call.Region);
    }

    public async Task<GetFunctionResponse> GetFunctionAsync(FunctionNameRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidName(request.FunctionName);
        Authorize(call, "GetFunction", FunctionArn(call.Region, name));
        var entity = await store.FindFunctionAsync(name, ct) ?? throw NotFound(call.Region, name);
        return new GetFunctionResponse { Configuration = Shape(entity, call.Region) };
    }

    public async Task<ListFunctionsResponse> ListFunctionsAsync(CallContext call, CancellationToken ct)
    {
        Authorize(call, "ListFunctions", FunctionArn(call.Region, "*"));
        return new ListFunctionsResponse { Functions = [.. (await store.ListFunctionsAsync(ct)).Select(f => Shape(f, call.Region))] };
    }

    /// <summary>Deletes the function; a rotation still configured with it fails at its next step, as on AWS.</summary>
    public async Task DeleteFunctionAsync(FunctionNameRequest request, CallContext call, CancellationToken ct)
    {
        var name = ValidName(request.FunctionName);
        Authorize(call, "DeleteFunction", FunctionArn(call.Region, name));
        if (!await store.DeleteFunctionAsync(name, ct))
        {
            throw NotFound(call.Region, name);
        }
    }

    /// <summary>The function to run for a rotation, its secrets opened; null when there is none (or it cannot be opened).</summary>
    public async Task<FunctionDefinition?> ResolveAsync(string name, CancellationToken ct)
    {
        var entity = await store.FindFunctionAsync(name, ct);
        if (entity is null)
        {
            return null;
        }
        try
        {
            var config = Open(entity);
            return new FunctionDefinition(entity.Name, entity.Kind, entity.Command, entity.PythonHandler, entity.WorkingDirectory, entity.Url,
                config.SharedSecret, config.Environment, TimeSpan.FromSeconds(entity.TimeoutSeconds), entity.MaxConcurrency, entity.LastModified);
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    /// <summary>
    /// A working directory a call names must exist on the node that takes the call, so a typo fails now rather than at
    /// the first rotation. (One kept from before is not checked: a call changing only the timeout is not refused for it.)
    /// </summary>
    private static void RequireDirectory(string? workingDirectory)
    {
        if (workingDirectory is not null && !Directory.Exists(workingDirectory))
        {
            throw Invalid($"WorkingDirectory {workingDirectory} is not a directory on the Tumbler server.");
        }
    }

    private FunctionEntity Build(string name, string kind, string? command, string? pythonHandler, string? workingDirectory, string? url,
        string? sharedSecret, IReadOnlyDictionary<string, string> environment, int timeout, int maxConcurrency, DateTimeOffset created, DateTimeOffset modified)
    {
        if (timeout is < 1 or > MaxTimeoutSeconds)
        {
            throw Invalid($"Timeout must be from 1 to {MaxTimeoutSeconds} seconds.");
        }
        if (maxConcurrency is < 1 or > MaxMaxConcurrency)
        {
            throw Invalid($"MaxConcurrency must be from 1 to {MaxMaxConcurrency}.");
        }
        if (workingDirectory is not null && (!Path.IsPathFullyQualified(workingDirectory) || workingDirectory.Length > 4096))
        {
            throw Invalid("WorkingDirectory must be an absolute path.");
        }
        switch (kind)
        {
            case FunctionKinds.Command:
                if (string.IsNullOrWhiteSpace(command) || command.Length > 4096 || command.Contains('\0', StringComparison.Ordinal))
                {
                    throw Invalid("Command must be a command line of at most 4096 characters.");
                }
                break;
            case FunctionKinds.Python:
                if (pythonHandler is null || pythonHandler.Length > 256 || !HandlerPattern().IsMatch(pythonHandler))
                {
                    throw Invalid("PythonHandler must be module.function, such as lambda_function.lambda_handler.");
                }
                if (workingDirectory is null)
                {
                    throw Invalid("A Python handler needs WorkingDirectory: the directory holding its module.");
                }
                break;
            case FunctionKinds.Http:
                if (url is null || url.Length > 2048 || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "https" && uri.Scheme != "http")
                    || !string.IsNullOrEmpty(uri.UserInfo))
                {
                    throw Invalid("Url must be an http:// or https:// URL without user information.");
                }
                if (sharedSecret is null || sharedSecret.Length < 16 || sharedSecret.Length > 1024)
                {
                    throw Invalid("An HTTP function needs SharedSecret (16 to 1024 characters): it signs every request Tumbler sends.");
                }
                if (workingDirectory is not null || environment.Count > 0)
                {
                    throw Invalid("WorkingDirectory and Environment apply to command and Python functions only.");
                }
                break;
        }
        var size = 0;
        foreach (var (key, value) in environment)
        {
            if (!VariablePattern().IsMatch(key) || key.Length > 256)
            {
                throw Invalid($"Environment variable name {(key.Length > 64 ? key[..64] + "..." : key)} is not valid: letters, digits and underscores, starting with a letter.");
            }
            if (ReservedVariables.Contains(key) || key.StartsWith("AWS_LAMBDA_", StringComparison.Ordinal))
            {
                throw Invalid($"Environment variable {key} is set by Tumbler and cannot be configured.");
            }
            if (value is null || value.Contains('\0', StringComparison.Ordinal))
            {
                throw Invalid($"Environment variable {key} has no value or contains a NUL character.");
            }
            size += System.Text.Encoding.UTF8.GetByteCount(key) + System.Text.Encoding.UTF8.GetByteCount(value);
        }
        if (size > MaxEnvironmentBytes)
        {
            throw Invalid($"The environment may hold at most {MaxEnvironmentBytes} bytes of names and values.");
        }
        byte[]? sealedConfig = null;
        if (sharedSecret is not null || environment.Count > 0)
        {
            var plaintext = JsonSerializer.SerializeToUtf8Bytes(new SealedFunctionConfig(sharedSecret, new Dictionary<string, string>(environment)),
                FunctionJson.Default.SealedFunctionConfig);
            try
            {
                sealedConfig = keys.Seal(SealPurpose, name, plaintext);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(plaintext);
            }
        }
        return new FunctionEntity(name, kind, command, pythonHandler, workingDirectory, url, timeout, maxConcurrency,
            [.. environment.Keys.Order(StringComparer.Ordinal)], sealedConfig, created, modified);
    }

    private SealedFunctionConfig Open(FunctionEntity entity)
    {
        if (entity.SealedConfig is null)
        {
            return new SealedFunctionConfig(null, []);
        }
        var plaintext = keys.Open(SealPurpose, entity.Name, entity.SealedConfig);
        try
        {
            return JsonSerializer.Deserialize(plaintext, FunctionJson.Default.SealedFunctionConfig) ?? new SealedFunctionConfig(null, []);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    private static string? Kind(FunctionRequest request) =>
        request.Command is not null ? FunctionKinds.Command : request.PythonHandler is not null ? FunctionKinds.Python : request.Url is not null ? FunctionKinds.Http : null;

    private FunctionConfiguration Shape(FunctionEntity f, string region) => new()
    {
        FunctionName = f.Name,
        FunctionArn = FunctionArn(region, f.Name),
        Kind = f.Kind,
        Command = f.Command,
        PythonHandler = f.PythonHandler,
        WorkingDirectory = f.WorkingDirectory,
        Url = f.Url,
        SharedSecretSet = f.Kind == FunctionKinds.Http ? true : null,
        EnvironmentVariableNames = f.EnvironmentNames.Count > 0 ? f.EnvironmentNames : null,
        Timeout = f.TimeoutSeconds,
        MaxConcurrency = f.MaxConcurrency,
        LastModified = f.LastModified.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'+0000'", CultureInfo.InvariantCulture),
    };

    private void Authorize(CallContext call, string operation, string resource) =>
        access.Require(call, new Demand("lambda:" + operation), resource);

    private static string ValidName(string? name)
    {
        if (name is null || !NamePattern().IsMatch(name))
        {
            throw Invalid("FunctionName must be 1 to 64 letters, digits, hyphens or underscores.");
        }
        return name;
    }

    private static ServiceException Invalid(string message) => new(FunctionErrors.InvalidParameterValue, message);

    private ServiceException NotFound(string region, string name) =>
        new(FunctionErrors.ResourceNotFound, $"Function not found: {FunctionArn(region, name)}");
}

internal sealed record SealedFunctionConfig(string? SharedSecret, Dictionary<string, string> Environment);

[JsonSerializable(typeof(SealedFunctionConfig))]
internal sealed partial class FunctionJson : JsonSerializerContext;
