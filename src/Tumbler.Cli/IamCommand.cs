using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.Client;

namespace Tumbler.Cli;

/// <summary>
/// <c>tumbler iam ...</c>: users, access keys and user policies on a (possibly remote) server, mirroring
/// <c>aws iam</c>: same command and option names, same JSON printed. Calls the admin API, signed for "iam".
/// </summary>
internal static class IamCommand
{
    private const string TargetPrefix = "TumblerIAM.";

    public static Command Create()
    {
        var connection = new ConnectionOptions();
        var command = new Command("iam", "Manage users, their access keys and their policies (as `aws iam`).");
        connection.AddTo(command);

        var userName = () => new Option<string>("--user-name") { Description = "The user's name.", Required = true };
        var optionalUserName = () => new Option<string?>("--user-name") { Description = "The key's user (default: the key's owner)." };
        var accessKeyId = () => new Option<string>("--access-key-id") { Description = "The access key id.", Required = true };
        var policyName = () => new Option<string>("--policy-name") { Description = "The inline policy's name.", Required = true };

        command.Subcommands.Add(Call(connection, "create-user", "Create a user.", "CreateUser", userName()));
        command.Subcommands.Add(Call(connection, "get-user", "Show a user.", "GetUser", userName()));
        command.Subcommands.Add(Call(connection, "list-users", "List users.", "ListUsers"));
        command.Subcommands.Add(Call(connection, "delete-user", "Delete a user (its keys and policies first).", "DeleteUser", userName()));
        command.Subcommands.Add(Call(connection, "create-access-key",
            "Create an access key pair for a user; the secret access key is shown only now.", "CreateAccessKey", userName()));
        command.Subcommands.Add(Call(connection, "list-access-keys", "List a user's access keys.", "ListAccessKeys", userName()));
        command.Subcommands.Add(Call(connection, "update-access-key", "Make an access key Active or Inactive (refused at once when inactive).",
            "UpdateAccessKey", optionalUserName(), accessKeyId(),
            new Option<string>("--status") { Description = "Active or Inactive.", Required = true }));
        command.Subcommands.Add(Call(connection, "delete-access-key", "Delete an access key.", "DeleteAccessKey", optionalUserName(), accessKeyId()));
        command.Subcommands.Add(Call(connection, "put-user-policy", "Add or replace a user's inline policy.", "PutUserPolicy",
            userName(), policyName(),
            new Option<string>("--policy-document") { Description = "The policy JSON, or file://PATH.", Required = true }));
        command.Subcommands.Add(Call(connection, "get-user-policy", "Show a user's inline policy.", "GetUserPolicy", userName(), policyName()));
        command.Subcommands.Add(Call(connection, "delete-user-policy", "Delete a user's inline policy.", "DeleteUserPolicy", userName(), policyName()));
        command.Subcommands.Add(Call(connection, "list-user-policies", "List a user's inline policy names.", "ListUserPolicies", userName()));
        return command;
    }

    /// <summary>A subcommand whose options become the request's members: --user-name -> UserName.</summary>
    private static Command Call(ConnectionOptions connection, string name, string description, string operation, params Option[] options)
    {
        var command = new Command(name, description);
        foreach (var option in options)
        {
            command.Options.Add(option);
        }
        command.SetAction((parse, ct) => connection.RunAsync(parse, operation, async client =>
        {
            var body = new JsonObject();
            foreach (var option in options)
            {
                if (parse.GetValue<string?>(option.Name) is { } value)
                {
                    body[MemberName(option.Name)] = option.Name == "--policy-document" ? ReadDocument(value) : value;
                }
            }
            var answer = await client.CallAsync(TargetPrefix + operation, "iam", JsonSerializer.SerializeToUtf8Bytes(body), ct);
            return DecodePolicyDocument(answer);
        }));
        return command;
    }

    /// <summary>
    /// The aws CLI prints an IAM answer's PolicyDocument as the JSON object it holds, not as a string
    /// (botocore decodes it), so scripts can query into it; print it the same way.
    /// </summary>
    private static JsonElement DecodePolicyDocument(JsonElement answer)
    {
        if (answer.ValueKind != JsonValueKind.Object || !answer.TryGetProperty("PolicyDocument", out var document)
            || document.ValueKind != JsonValueKind.String)
        {
            return answer;
        }
        JsonNode? decoded;
        try
        {
            decoded = JsonNode.Parse(document.GetString()!);
        }
        catch (JsonException)
        {
            return answer;
        }
        var shaped = JsonNode.Parse(answer.GetRawText())!.AsObject();
        shaped["PolicyDocument"] = decoded;
        return JsonSerializer.SerializeToElement(shaped);
    }

    /// <summary>--access-key-id -> AccessKeyId.</summary>
    private static string MemberName(string option) =>
        string.Concat(option.TrimStart('-').Split('-').Select(part => char.ToUpperInvariant(part[0]) + part[1..]));

    /// <summary>file://PATH reads the file, as the aws CLI does; anything else is the document itself.</summary>
    private static string ReadDocument(string value) =>
        value.StartsWith("file://", StringComparison.Ordinal)
            ? File.Exists(value[7..]) ? File.ReadAllText(value[7..]) : throw new TumblerClientException($"Cannot read {value[7..]}: no such file.")
            : value;
}
