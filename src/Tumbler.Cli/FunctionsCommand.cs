using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.Client;

namespace Tumbler.Cli;

/// <summary>
/// <c>tumbler functions ...</c>: register and manage external rotation functions on a (possibly remote)
/// server. Calls the functions admin API (X-Amz-Target TumblerFunctions.*), signed for "lambda", with the
/// same connection options as <c>tumbler iam</c>.
/// </summary>
internal static class FunctionsCommand
{
    private const string TargetPrefix = "TumblerFunctions.";

    public static Command Create()
    {
        var connection = new ConnectionOptions();
        var command = new Command("functions", "Register and manage external rotation functions (commands, Python Lambda handlers, HTTP endpoints).");
        connection.AddTo(command);
        command.Subcommands.Add(Define(connection, "create", "Register a function: exactly one of --command, --python-handler, --url.", "CreateFunction", required: true));
        command.Subcommands.Add(Define(connection, "update", "Change a function; options left out keep their value (--env replaces the whole environment).",
            "UpdateFunction", required: false));
        command.Subcommands.Add(ByName(connection, "describe", "Show a function (never its environment values or shared secret).", "GetFunction"));
        command.Subcommands.Add(ByName(connection, "delete", "Delete a function.", "DeleteFunction"));
        var list = new Command("list", "List the registered functions.");
        list.SetAction((parse, ct) => connection.RunAsync(parse, "ListFunctions",
            client => client.CallAsync(TargetPrefix + "ListFunctions", "lambda", "{}"u8.ToArray(), ct)));
        command.Subcommands.Add(list);
        return command;
    }

    private static Command ByName(ConnectionOptions connection, string name, string description, string operation)
    {
        var functionName = new Option<string>("--name") { Description = "The function's name.", Required = true };
        var command = new Command(name, description) { functionName };
        command.SetAction((parse, ct) => connection.RunAsync(parse, operation, client =>
            client.CallAsync(TargetPrefix + operation, "lambda",
                JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["FunctionName"] = parse.GetValue(functionName) }), ct)));
        return command;
    }

    private static Command Define(ConnectionOptions connection, string name, string description, string operation, bool required)
    {
        var functionName = new Option<string>("--name") { Description = "The function's name (the NAME in arn:aws:lambda:REGION:ACCOUNT:function:NAME).", Required = true };
        var commandLine = new Option<string?>("--command") { Description = "Command line run with /bin/sh -c once per step; the event JSON on standard input; exit code 0 is success." };
        var pythonHandler = new Option<string?>("--python-handler") { Description = "module.function of a Python Lambda handler in --working-dir, e.g. lambda_function.lambda_handler." };
        var url = new Option<string?>("--url") { Description = "HTTPS endpoint POSTed the event (signed with the shared secret); 2xx is success." };
        var workingDir = new Option<string?>("--working-dir") { Description = "Directory the command or Python handler runs in (absolute)." };
        var env = new Option<string[]>("--env")
        {
            Description = "Environment variable KEY=VALUE of a command or Python function (repeatable); stored sealed.",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var sharedSecretFile = new Option<string?>("--shared-secret-file") { Description = "File holding the HTTP function's shared secret (16+ characters)." };
        var timeout = new Option<string?>("--timeout") { Description = "Time a step may take before the function is killed: 30s, 2m or seconds (default 30s, at most 300s)." };
        var maxConcurrency = new Option<int?>("--max-concurrency") { Description = "Invocations of this function running at once per node (default 4)." };
        var command = new Command(name, description) { functionName, commandLine, pythonHandler, url, workingDir, env, sharedSecretFile, timeout, maxConcurrency };
        command.SetAction((parse, ct) => connection.RunAsync(parse, operation, async client =>
        {
            var kinds = new[] { parse.GetValue(commandLine), parse.GetValue(pythonHandler), parse.GetValue(url) }.Count(v => v is not null);
            if (required ? kinds != 1 : kinds > 1)
            {
                throw new TumblerClientException(required ? "Give exactly one of --command, --python-handler and --url." : "Give at most one of --command, --python-handler and --url.");
            }
            var body = new JsonObject { ["FunctionName"] = parse.GetValue(functionName) };
            Set(body, "Command", parse.GetValue(commandLine));
            Set(body, "PythonHandler", parse.GetValue(pythonHandler));
            Set(body, "Url", parse.GetValue(url));
            Set(body, "WorkingDirectory", parse.GetValue(workingDir) is { } dir ? Path.GetFullPath(dir) : null);
            if (parse.GetValue(sharedSecretFile) is { } file)
            {
                body["SharedSecret"] = File.Exists(file) ? File.ReadAllText(file).Trim() : throw new TumblerClientException($"Cannot read {file}: no such file.");
            }
            if (parse.GetValue(env) is { Length: > 0 } variables)
            {
                var environment = new JsonObject();
                foreach (var pair in variables)
                {
                    var eq = pair.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                    {
                        throw new TumblerClientException($"--env {pair.Split('=')[0]}: give KEY=VALUE.");
                    }
                    environment[pair[..eq]] = pair[(eq + 1)..];
                }
                body["Environment"] = environment;
            }
            if (parse.GetValue(timeout) is { } text)
            {
                body["Timeout"] = Seconds(text);
            }
            if (parse.GetValue(maxConcurrency) is { } limit)
            {
                body["MaxConcurrency"] = limit;
            }
            return await client.CallAsync(TargetPrefix + operation, "lambda", JsonSerializer.SerializeToUtf8Bytes(body), ct);
        }));
        return command;
    }

    private static void Set(JsonObject body, string member, string? value)
    {
        if (value is not null)
        {
            body[member] = value;
        }
    }

    /// <summary>30s, 2m, 90 (seconds) -> whole seconds.</summary>
    private static int Seconds(string text)
    {
        var trimmed = text.Trim();
        var factor = trimmed.EndsWith('m') ? 60 : 1;
        var number = trimmed.TrimEnd('s', 'm');
        return int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0 && value <= 86400
            ? value * factor
            : throw new TumblerClientException($"--timeout {text}: give a duration such as 30s, 2m or 45.");
    }
}
