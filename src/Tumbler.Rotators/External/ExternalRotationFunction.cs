using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Tumbler.Core.Access;
using Tumbler.Core.Functions;
using Tumbler.Core.Rotation;

namespace Tumbler.Rotators.External;

/// <summary>
/// A registered function run outside the server, with the Lambda contract unchanged: one invocation per
/// step with the event <c>{SecretId, ClientRequestToken, Step, RotationToken}</c>. Command and Python
/// functions get the environment a rotation Lambda reads, with a session credential issued for the step
/// and revoked when it ends; HTTP functions act with their own credentials. The scoped client the engine
/// passes is not used: the function calls the API itself, as a Lambda would.
/// </summary>
public sealed class ExternalRotationFunction(FunctionDefinition definition, FunctionRuntime runtime, IRotationCredentialIssuer credentials,
    FunctionConcurrency concurrency, ExternalFunctionOptions options) : IRotationFunction
{
    private static readonly Lazy<string> Bootstrap = new(() =>
    {
        using var stream = typeof(ExternalRotationFunction).Assembly.GetManifestResourceStream("Tumbler.Rotators.External.lambda_bootstrap.py")
            ?? throw new InvalidOperationException("The Python bootstrap resource is missing.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    public FunctionDefinition Definition => definition;

    public async Task InvokeAsync(RotationEvent rotationEvent, ISecretsManagerClient secrets, CancellationToken ct)
    {
        var eventJson = EventJson(rotationEvent);
        using var slot = await concurrency.AcquireAsync(definition.Name, definition.MaxConcurrency, ct);
        if (definition.Kind == FunctionKinds.Http)
        {
            await HttpInvoker.RunAsync(definition.Name, new Uri(definition.Url!), definition.SharedSecret ?? "", eventJson, definition.Timeout,
                options.OutputCapChars, ct);
            return;
        }
        var endpoint = runtime.Endpoint ?? throw new RotationStepException("The server's own endpoint is not known yet; the step is retried.");
        var credential = await credentials.IssueAsync(rotationEvent.SecretId, definition.Name, rotationEvent.ClientRequestToken,
            definition.Timeout + options.CredentialGrace, ct);
        try
        {
            var start = StartInfo();
            SetEnvironment(start, rotationEvent, endpoint, credential);
            await ProcessInvoker.RunAsync(definition.Name, start, eventJson, definition.Timeout, options.OutputCapChars, ct);
        }
        finally
        {
            // Revoked whatever happened: the credential lives exactly as long as the step.
            await credentials.RevokeAsync(credential.AccessKeyId, CancellationToken.None);
        }
    }

    /// <summary>The Lambda event, exactly these four members.</summary>
    public static byte[] EventJson(RotationEvent e)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("SecretId", e.SecretId);
            writer.WriteString("ClientRequestToken", e.ClientRequestToken);
            writer.WriteString("Step", e.Step);
            writer.WriteString("RotationToken", e.RotationToken);
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private ProcessStartInfo StartInfo()
    {
        var workingDirectory = definition.WorkingDirectory ?? Path.GetTempPath();
        ProcessStartInfo start;
        if (definition.Kind == FunctionKinds.Python)
        {
            var dot = definition.PythonHandler!.LastIndexOf('.');
            start = new ProcessStartInfo(File.Exists(options.PythonExecutable) ? options.PythonExecutable : "python3");
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(Bootstrap.Value);
            start.ArgumentList.Add(definition.PythonHandler[..dot]);
            start.ArgumentList.Add(definition.PythonHandler[(dot + 1)..]);
        }
        else
        {
            start = new ProcessStartInfo("/bin/sh");
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(definition.Command!);
        }
        start.WorkingDirectory = workingDirectory;
        return start;
    }

    /// <summary>
    /// A clean environment: nothing of the server's own (it may hold TUMBLER_ROOT_KEY or root credentials)
    /// but PATH, then the function's configured variables, then what Tumbler sets (which they cannot override).
    /// </summary>
    private void SetEnvironment(ProcessStartInfo start, RotationEvent rotationEvent, Uri endpoint, SessionCredential credential)
    {
        var path = Environment.GetEnvironmentVariable("PATH");
        start.Environment.Clear();
        start.Environment["PATH"] = string.IsNullOrEmpty(path) ? "/usr/local/bin:/usr/bin:/bin" : path;
        start.Environment["HOME"] = start.WorkingDirectory;
        start.Environment["LANG"] = "C.UTF-8";
        start.Environment["TZ"] = "UTC";
        start.Environment["PYTHONUNBUFFERED"] = "1";
        foreach (var (key, value) in definition.Environment)
        {
            start.Environment[key] = value;
        }
        var parts = rotationEvent.SecretId.Split(':');
        var region = parts.Length > 3 ? parts[3] : "us-east-1";
        var url = endpoint.ToString().TrimEnd('/');
        start.Environment["SECRETS_MANAGER_ENDPOINT"] = url;
        start.Environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = url;
        start.Environment["AWS_REGION"] = region;
        start.Environment["AWS_DEFAULT_REGION"] = region;
        start.Environment["AWS_ACCESS_KEY_ID"] = credential.AccessKeyId;
        start.Environment["AWS_SECRET_ACCESS_KEY"] = credential.SecretAccessKey;
        start.Environment["AWS_SESSION_TOKEN"] = credential.SessionToken;
        start.Environment["AWS_CONFIG_FILE"] = "/dev/null";
        start.Environment["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null";
        start.Environment["AWS_EC2_METADATA_DISABLED"] = "true";
        if (runtime.CaBundle is { } caBundle)
        {
            start.Environment["AWS_CA_BUNDLE"] = caBundle;
        }
        start.Environment["AWS_LAMBDA_FUNCTION_NAME"] = definition.Name;
        start.Environment["AWS_LAMBDA_FUNCTION_TIMEOUT"] = ((int)Math.Ceiling(definition.Timeout.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        start.Environment["LAMBDA_TASK_ROOT"] = start.WorkingDirectory;
        if (parts.Length > 4)
        {
            start.Environment["TUMBLER_FUNCTION_ARN"] = $"arn:aws:lambda:{region}:{parts[4]}:function:{definition.Name}";
        }
    }
}
