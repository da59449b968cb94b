namespace Tumbler.Core.Functions;

// Request and response shapes of the functions admin API (X-Amz-Target: TumblerFunctions.<Operation>,
// signed for the "lambda" service). Named after Lambda's where Lambda has the same idea.

/// <summary>CreateFunction and UpdateFunction. Exactly one of Command, PythonHandler and Url on create; on update, members left out keep their value.</summary>
public sealed record FunctionRequest
{
    public string? FunctionName { get; init; }
    /// <summary>A command line run with /bin/sh -c once per step; the event JSON on standard input.</summary>
    public string? Command { get; init; }
    /// <summary>module.function of a Python Lambda handler in WorkingDirectory, run by Tumbler's bootstrap.</summary>
    public string? PythonHandler { get; init; }
    public string? WorkingDirectory { get; init; }
    /// <summary>An HTTP(S) endpoint POSTed the event, with an HMAC-SHA256 signature made with SharedSecret.</summary>
    public string? Url { get; init; }
    public string? SharedSecret { get; init; }
    /// <summary>Extra environment of a command or Python function (replaces the whole set on update).</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }
    /// <summary>Seconds a step may run before the function is killed (1-300, default 30).</summary>
    public int? Timeout { get; init; }
    /// <summary>Invocations of this function running at once on one node (1-100, default 4).</summary>
    public int? MaxConcurrency { get; init; }
}

public sealed record FunctionNameRequest
{
    public string? FunctionName { get; init; }
}

/// <summary>A function as the API shows it: never an environment value or the shared secret.</summary>
public sealed record FunctionConfiguration
{
    public required string FunctionName { get; init; }
    public required string FunctionArn { get; init; }
    /// <summary>command, python or http.</summary>
    public required string Kind { get; init; }
    public string? Command { get; init; }
    public string? PythonHandler { get; init; }
    public string? WorkingDirectory { get; init; }
    public string? Url { get; init; }
    public bool? SharedSecretSet { get; init; }
    /// <summary>The names of the configured environment variables (their values are stored sealed and never shown).</summary>
    public IReadOnlyList<string>? EnvironmentVariableNames { get; init; }
    public required int Timeout { get; init; }
    public required int MaxConcurrency { get; init; }
    public required string LastModified { get; init; }
}

public sealed record GetFunctionResponse
{
    public required FunctionConfiguration Configuration { get; init; }
}

public sealed record ListFunctionsResponse
{
    public required IReadOnlyList<FunctionConfiguration> Functions { get; init; }
}

/// <summary>What an invoker needs to run a function: its configuration with the sealed parts opened.</summary>
public sealed record FunctionDefinition(
    string Name,
    string Kind,
    string? Command,
    string? PythonHandler,
    string? WorkingDirectory,
    string? Url,
    string? SharedSecret,
    IReadOnlyDictionary<string, string> Environment,
    TimeSpan Timeout,
    int MaxConcurrency,
    DateTimeOffset LastModified);

public static class FunctionKinds
{
    public const string Command = "command";
    public const string Python = "python";
    public const string Http = "http";
}

/// <summary>Lambda's error codes for the functions API.</summary>
public static class FunctionErrors
{
    public const string ResourceNotFound = "ResourceNotFoundException";
    public const string ResourceConflict = "ResourceConflictException";
    public const string InvalidParameterValue = "InvalidParameterValueException";
}
