using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tumbler.Cli;

/// <summary>
/// <c>tumbler keys ...</c>: the KMS-like keys on a (possibly remote) server, mirroring <c>aws kms</c>: same
/// option names (--key-id takes a key id, key ARN, alias name or alias ARN), the KMS JSON printed with
/// dates as the aws CLI v2 prints them. Calls the keys admin API (X-Amz-Target TumblerKMS.*), signed for "kms".
/// </summary>
internal static class KeysCommand
{
    private const string TargetPrefix = "TumblerKMS.";

    public static Command Create()
    {
        var connection = new ConnectionOptions();
        var command = new Command("keys", "Manage the KMS-like keys that encrypt secrets (as `aws kms`).");
        connection.AddTo(command);
        var keyId = () => new Option<string>("--key-id") { Description = "Key id, key ARN, alias name (alias/...) or alias ARN.", Required = true };

        command.Subcommands.Add(Call(connection, "create", "Create a key.", "CreateKey",
            new Option<string?>("--description") { Description = "What the key is for." }));
        command.Subcommands.Add(Call(connection, "list", "List the keys (id and ARN).", "ListKeys"));
        command.Subcommands.Add(Call(connection, "describe", "Show a key's metadata and state.", "DescribeKey", keyId()));
        command.Subcommands.Add(Call(connection, "enable", "Enable a disabled key.", "EnableKey", keyId()));
        command.Subcommands.Add(Call(connection, "disable",
            "Disable a key: reads of its secrets fail with DecryptionFailure and writes with EncryptionFailure until it is enabled.", "DisableKey", keyId()));
        command.Subcommands.Add(Call(connection, "schedule-deletion",
            "Schedule a key's deletion (refused while a secret version uses it); it is unusable meanwhile.", "ScheduleKeyDeletion", keyId(),
            new Option<int?>("--pending-window-in-days") { Description = "7 to 30 days (default 30)." }));
        command.Subcommands.Add(Call(connection, "cancel-deletion", "Cancel a scheduled deletion; the key comes back disabled.", "CancelKeyDeletion", keyId()));
        command.Subcommands.Add(Call(connection, "create-alias", "Name a key with an alias (alias/NAME) usable as KmsKeyId.", "CreateAlias",
            new Option<string>("--alias-name") { Description = "alias/NAME (not alias/aws/...).", Required = true },
            new Option<string>("--target-key-id") { Description = "The key: id, ARN, alias or alias ARN.", Required = true }));
        command.Subcommands.Add(Call(connection, "rotate",
            "Rotate a key's material (as aws kms rotate-key-on-demand): new secret versions use the new material, older ones stay readable.",
            "RotateKeyOnDemand", keyId()));
        var alias = new Command("alias", "List, repoint or delete aliases (alias/aws/secretsmanager always names the default key).");
        var aliasName = () => new Option<string>("--alias-name") { Description = "alias/NAME.", Required = true };
        alias.Subcommands.Add(Call(connection, "list", "List the aliases (of one key with --key-id).", "ListAliases",
            new Option<string?>("--key-id") { Description = "Only this key's aliases: key id, key ARN, alias name or alias ARN." }));
        alias.Subcommands.Add(Call(connection, "update", "Point an alias at another key.", "UpdateAlias", aliasName(),
            new Option<string>("--target-key-id") { Description = "The key: id, ARN, alias or alias ARN.", Required = true }));
        alias.Subcommands.Add(Call(connection, "delete", "Delete an alias (the key stays).", "DeleteAlias", aliasName()));
        command.Subcommands.Add(alias);
        command.Subcommands.Add(RotateRootCommand.Create());
        return command;
    }

    /// <summary>A subcommand whose options become the request's members: --key-id -> KeyId.</summary>
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
                if (option is Option<int?> number)
                {
                    if (parse.GetValue(number) is { } value)
                    {
                        body[MemberName(option.Name)] = value;
                    }
                }
                else if (parse.GetValue<string?>(option.Name) is { } text)
                {
                    body[MemberName(option.Name)] = text;
                }
            }
            return Dates(await client.CallAsync(TargetPrefix + operation, "kms", JsonSerializer.SerializeToUtf8Bytes(body), ct));
        }));
        return command;
    }

    /// <summary>CreationDate/DeletionDate/LastRotationDate (epoch seconds on the wire) as the aws CLI v2 prints them: 2024-01-02T03:04:05.678000+00:00.</summary>
    private static JsonElement Dates(JsonElement answer)
    {
        if (answer.ValueKind != JsonValueKind.Object)
        {
            return answer;
        }
        var node = JsonNode.Parse(answer.GetRawText())!;
        Convert(node);
        return JsonSerializer.SerializeToElement(node);

        static void Convert(JsonNode? node)
        {
            if (node is JsonObject obj)
            {
                foreach (var (name, value) in obj.ToList())
                {
                    if (name is "CreationDate" or "DeletionDate" or "LastRotationDate" && value is JsonValue v && v.TryGetValue<decimal>(out var seconds))
                    {
                        obj[name] = DateTimeOffset.FromUnixTimeMilliseconds((long)(seconds * 1000m))
                            .ToString("yyyy-MM-dd'T'HH:mm:ss.ffffffzzz", CultureInfo.InvariantCulture);
                    }
                    else
                    {
                        Convert(value);
                    }
                }
            }
            else if (node is JsonArray array)
            {
                foreach (var item in array)
                {
                    Convert(item);
                }
            }
        }
    }

    private static string MemberName(string option) =>
        string.Concat(option.TrimStart('-').Split('-').Select(part => char.ToUpperInvariant(part[0]) + part[1..]));
}
