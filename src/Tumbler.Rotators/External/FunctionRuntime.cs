namespace Tumbler.Rotators.External;

/// <summary>
/// What external functions are told about the server they call back: its URL (known only once Kestrel
/// listens, so set late) and, for a self-signed certificate, the PEM file to trust.
/// </summary>
public sealed class FunctionRuntime
{
    private volatile Uri? _endpoint;

    /// <summary>Where functions reach the Secrets Manager API (the first listen address); null until the server listens.</summary>
    public Uri? Endpoint => _endpoint;

    /// <summary>PEM file passed as AWS_CA_BUNDLE (the self-signed certificate); null when the system's trust applies.</summary>
    public string? CaBundle { get; private set; }

    public void SetEndpoint(Uri endpoint, string? caBundle)
    {
        CaBundle = caBundle;
        _endpoint = endpoint;
    }
}

/// <summary>Limits and paths of external function runs.</summary>
public sealed record ExternalFunctionOptions
{
    /// <summary>External function invocations running at once on this node, whatever the function.</summary>
    public int MaxConcurrency { get; init; } = 16;
    /// <summary>The interpreter of Python handler functions.</summary>
    public string PythonExecutable { get; init; } = "/usr/bin/python3";
    /// <summary>How much of a failing function's standard error (or HTTP answer) is kept in the failure record.</summary>
    public int OutputCapChars { get; init; } = 4096;
    /// <summary>How long a session credential outlives its step's timeout if it could not be revoked (server crash).</summary>
    public TimeSpan CredentialGrace { get; init; } = TimeSpan.FromSeconds(30);
}
