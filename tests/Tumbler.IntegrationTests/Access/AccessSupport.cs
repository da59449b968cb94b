using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests.Access;

/// <summary>An IAM user made through <c>tumbler iam</c>, with its one access key.</summary>
public sealed record IamUserKey(string UserName, string Arn, string AccessKeyId, string SecretAccessKey);

/// <summary>
/// The built <c>tumbler</c> executable run as a process (as ServeCommandTests and AuditCommandTests run it),
/// and the few steps the access tests repeat: make a user with a key and a policy, write a credentials file.
/// </summary>
public static class TumblerProcess
{
    public const string Account = "123456789012";

    public static string UserArn(string userName) => $"arn:aws:iam::{Account}:user/{userName}";

    public static string SecretArnPattern(string namePattern) => $"arn:aws:secretsmanager:us-east-1:{Account}:secret:{namePattern}";

    public static string Unique(string hint) => $"{hint}{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary><c>tumbler ARGS</c> with exactly the given environment.</summary>
    public static Task<CliResult> RunAsync(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        ProcessRunner.RunAsync(TumblerServer.DotnetHost, [TumblerServer.TumblerDll, .. args], environment);

    /// <summary><c>tumbler iam ARGS --endpoint-url E [--ca-bundle C]</c> with the key in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.</summary>
    public static Task<CliResult> IamAsync(string endpoint, string accessKeyId, string secretAccessKey, string? caBundle, params string[] args)
    {
        string[] bundle = caBundle is null ? [] : ["--ca-bundle", caBundle];
        return RunAsync(ProcessRunner.BaseEnvironment(accessKeyId, secretAccessKey), ["iam", .. args, "--endpoint-url", endpoint, .. bundle]);
    }

    /// <summary><c>tumbler iam ARGS</c> as the server's root.</summary>
    public static Task<CliResult> IamAsRootAsync(TumblerServer server, params string[] args) =>
        IamAsync(server.Endpoint, server.AccessKeyId, server.SecretAccessKey, null, args);

    /// <summary>
    /// create-user, create-access-key and (when given) put-user-policy with an inline document, as root,
    /// through <c>tumbler iam</c> processes.
    /// </summary>
    public static async Task<IamUserKey> CreateUserAsync(TumblerServer server, string userName, string? policyDocument,
        string? endpoint = null, string? caBundle = null)
    {
        endpoint ??= server.Endpoint;
        Task<CliResult> Iam(params string[] args) => IamAsync(endpoint, server.AccessKeyId, server.SecretAccessKey, caBundle, args);

        var user = (await Iam("create-user", "--user-name", userName)).Ok().Json.GetProperty("User");
        var key = (await Iam("create-access-key", "--user-name", userName)).Ok().Json.GetProperty("AccessKey");
        if (policyDocument is not null)
        {
            (await Iam("put-user-policy", "--user-name", userName, "--policy-name", "main", "--policy-document", policyDocument)).Ok();
        }
        return new IamUserKey(userName, user.GetProperty("Arn").GetString()!, key.GetProperty("AccessKeyId").GetString()!,
            key.GetProperty("SecretAccessKey").GetString()!);
    }

    /// <summary>An AWS shared-credentials file with one profile per (name, key).</summary>
    public static string WriteCredentialsFile(string path, params (string Profile, string AccessKeyId, string SecretAccessKey)[] profiles)
    {
        File.WriteAllLines(path, profiles.SelectMany(p => new[]
        {
            $"[{p.Profile}]", $"aws_access_key_id = {p.AccessKeyId}", $"aws_secret_access_key = {p.SecretAccessKey}", "",
        }));
        return path;
    }

    /// <summary>An identity policy of one Allow statement per (actions, resource), with an optional condition on the first.</summary>
    public static string Allow(string[] actions, string resource, JsonObject? condition = null) =>
        Policy(new JsonObject
        {
            ["Effect"] = "Allow",
            ["Action"] = new JsonArray([.. actions.Select(a => (JsonNode)JsonValue.Create(a))]),
            ["Resource"] = resource,
            ["Condition"] = condition,
        });

    public static string Policy(params JsonObject[] statements)
    {
        foreach (var s in statements)
        {
            if (s["Condition"] is null)
            {
                s.Remove("Condition");
            }
        }
        return new JsonObject
        {
            ["Version"] = "2012-10-17",
            ["Statement"] = new JsonArray([.. statements.Select(s => (JsonNode)s)]),
        }.ToJsonString();
    }

    /// <summary>
    /// The aws CLI v2 refused the call with a service error: exit code 254, nothing on stdout, stderr
    /// <c>An error occurred (CODE) when calling the OP operation: MESSAGE</c>; none of <paramref name="mustNotAppear"/> shows anywhere.
    /// Returns the message.
    /// </summary>
    public static string AssertAwsError(CliResult result, string code, string operation, params string[] mustNotAppear)
    {
        Assert.True(result.ExitCode == 254, $"expected the aws CLI to fail with {code} (exit 254):\n{result}");
        Assert.True(result.Stdout.Trim().Length == 0, result.ToString());
        var prefix = $"An error occurred ({code}) when calling the {operation} operation: ";
        var line = result.Stderr.Split('\n').Select(l => l.Trim()).SingleOrDefault(l => l.Length > 0);
        Assert.True(line is not null && line.StartsWith(prefix, StringComparison.Ordinal), $"expected `{prefix}...`:\n{result}");
        AssertNotIn(result, mustNotAppear);
        return line[prefix.Length..];
    }

    /// <summary><c>tumbler</c> failed with exit 1 and exactly one line on stderr, nothing on stdout; returns the line.</summary>
    public static string AssertOneLineError(CliResult result)
    {
        Assert.True(result.ExitCode == 1, $"expected exit code 1:\n{result}");
        Assert.True(result.Stdout.Length == 0, result.ToString());
        Assert.True(result.Stderr.EndsWith('\n') && result.Stderr.TrimEnd('\n').Split('\n').Length == 1, $"expected one line on stderr:\n{result}");
        return result.Stderr.TrimEnd('\n');
    }

    public static void AssertNotIn(CliResult result, params string[] values)
    {
        foreach (var value in values)
        {
            Assert.False(result.Stdout.Contains(value, StringComparison.Ordinal) || result.Stderr.Contains(value, StringComparison.Ordinal),
                $"`{value}` leaked into the output:\n{result}");
        }
    }

    /// <summary>The expected AccessDeniedException message; <paramref name="reason"/> defaults to the no-allow one.</summary>
    public static string NotAuthorized(string principalArn, string action, string resource, string? reason = null) =>
        $"User: {principalArn} is not authorized to perform: {action} on resource: {resource} {reason ?? $"because no identity-based policy allows the {action} action"}";
}
