using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.Client;

namespace Tumbler.Cli;

/// <summary>
/// <c>tumbler get|put|create|describe|list|delete|restore|rotate|versions|tag</c>: a Secrets Manager client for
/// people. Human output by default; <c>--output json</c> prints the API's JSON as is, for scripts.
/// </summary>
internal static class SecretsCommands
{
    public static IEnumerable<Command> Create() =>
        [Get(), Put(), CreateSecret(), Describe(), List(), Delete(), Restore(), Rotate(), Versions(), Tag()];

    // ---- shared options -------------------------------------------------------------------------

    private sealed class Common
    {
        public ConnectionOptions Connection { get; } = new();
        public Option<string> Output { get; } = new("--output")
        {
            Description = "table (for people, the default) or json (the API's answer as is, for scripts).",
            DefaultValueFactory = _ => "table",
        };

        public Common(Command command, bool output = true)
        {
            Connection.AddTo(command);
            if (output)
            {
                Output.AcceptOnlyFromAmong("table", "json");
                command.Options.Add(Output);
            }
        }

        public bool Json(ParseResult parse) => parse.GetValue(Output) == "json";
    }

    /// <summary>The secret, as an argument or as --secret-id (name or ARN).</summary>
    private sealed class SecretId
    {
        private readonly Argument<string?> _argument = new("secret-id") { Arity = ArgumentArity.ZeroOrOne, Description = "The secret's name or ARN." };
        private readonly Option<string?> _option = new("--secret-id") { Description = "The secret's name or ARN (or give it as the argument)." };

        public SecretId(Command command)
        {
            command.Arguments.Add(_argument);
            command.Options.Add(_option);
        }

        public string Get(ParseResult parse) =>
            parse.GetValue(_option) ?? parse.GetValue(_argument) ?? throw new TumblerClientException("which secret? Give its name or ARN (--secret-id).");

        public bool Given(ParseResult parse) => parse.GetValue(_option) is not null || parse.GetValue(_argument) is not null;
    }

    /// <summary>--value / --value-file (a path, or '-' for standard input) / --binary.</summary>
    private sealed class ValueOptions
    {
        private readonly Option<string?> _value = new("--value")
        {
            Description = "The value. Visible to other users in ps while the command runs: prefer --value-file or standard input.",
        };
        private readonly Option<string?> _file = new("--value-file") { Description = "Read the value from this file, or from standard input with '-'. Taken byte for byte (no newline is removed)." };
        private readonly Option<bool> _binary = new("--binary") { Description = "Store the value as SecretBinary (raw bytes) instead of SecretString." };

        public ValueOptions(Command command)
        {
            command.Options.Add(_value);
            command.Options.Add(_file);
            command.Options.Add(_binary);
        }

        /// <summary>Adds SecretString or SecretBinary to <paramref name="body"/>; false when no value was given.</summary>
        public async Task<bool> AddToAsync(ParseResult parse, JsonObject body, CancellationToken ct)
        {
            var value = parse.GetValue(_value);
            var file = parse.GetValue(_file);
            if (value is not null && file is not null)
            {
                throw new TumblerClientException("give the value once: --value or --value-file, not both.");
            }
            byte[] bytes;
            if (value is not null)
            {
                bytes = Encoding.UTF8.GetBytes(value);
            }
            else if (file == "-")
            {
                using var stdin = Console.OpenStandardInput();
                using var buffer = new MemoryStream();
                await stdin.CopyToAsync(buffer, ct);
                bytes = buffer.ToArray();
            }
            else if (file is not null)
            {
                bytes = await File.ReadAllBytesAsync(file, ct);
            }
            else
            {
                return false;
            }
            if (parse.GetValue(_binary))
            {
                body["SecretBinary"] = Convert.ToBase64String(bytes);
            }
            else
            {
                try
                {
                    body["SecretString"] = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
                }
                catch (DecoderFallbackException)
                {
                    throw new TumblerClientException("the value is not UTF-8 text; store it with --binary.");
                }
            }
            return true;
        }
    }

    private static Option<string[]> TagsOption(string description) => new("--tags")
    {
        Description = description,
        AllowMultipleArgumentsPerToken = true,
    };

    private static JsonArray ParseTags(IEnumerable<string> tags)
    {
        var array = new JsonArray();
        foreach (var tag in tags)
        {
            var eq = tag.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new TumblerClientException($"a tag is KEY=VALUE, got '{tag}'.");
            }
            array.Add(new JsonObject { ["Key"] = tag[..eq], ["Value"] = tag[(eq + 1)..] });
        }
        return array;
    }

    private static string Token() => Guid.NewGuid().ToString();

    // ---- commands -------------------------------------------------------------------------------

    private static Command Get()
    {
        var command = new Command("get", "Print a secret's value alone: SecretString as stored, SecretBinary as raw bytes (--output json: the whole API answer).");
        var common = new Common(command);
        var id = new SecretId(command);
        var key = new Option<string?>("--key") { Description = "Print only this key of a JSON secret (strings as they are, other values as JSON)." };
        var stage = new Option<string?>("--version-stage") { Description = "The version with this label (default AWSCURRENT)." };
        var versionId = new Option<string?>("--version-id") { Description = "This version." };
        command.Options.Add(key);
        command.Options.Add(stage);
        command.Options.Add(versionId);
        command.SetAction((parse, ct) => ClientRunner.RunAsync(common.Connection, parse, async api =>
        {
            var body = new JsonObject { ["SecretId"] = id.Get(parse) };
            if (parse.GetValue(versionId) is { } v)
            {
                body["VersionId"] = v;
            }
            if (parse.GetValue(stage) is { } s)
            {
                body["VersionStage"] = s;
            }
            var answer = await api.CallAsync("GetSecretValue", body);
            if (common.Json(parse) && parse.GetValue(key) is null)
            {
                ClientRunner.PrintJson(answer);
                return 0;
            }
            var name = HumanOutput.Str(answer, "Name");
            if (parse.GetValue(key) is { } wanted)
            {
                var field = SecretValues.Field(answer, wanted, name);
                await WriteValueAsync(Encoding.UTF8.GetBytes(field), ct);
                return 0;
            }
            if (HumanOutput.Str(answer, "SecretString") is { } text)
            {
                await WriteValueAsync(Encoding.UTF8.GetBytes(text), ct);
            }
            else if (HumanOutput.Str(answer, "SecretBinary") is { } binary)
            {
                await WriteValueAsync(Convert.FromBase64String(binary), ct, addNewline: false);
            }
            return 0;
        }, ct));
        return command;
    }

    /// <summary>The value byte for byte; a newline is added only for a terminal, so scripts get exactly the value.</summary>
    private static async Task WriteValueAsync(byte[] bytes, CancellationToken ct, bool addNewline = true)
    {
        using var stdout = Console.OpenStandardOutput();
        await stdout.WriteAsync(bytes, ct);
        if (addNewline && !Console.IsOutputRedirected && (bytes.Length == 0 || bytes[^1] != (byte)'\n'))
        {
            await stdout.WriteAsync("\n"u8.ToArray(), ct);
        }
        await stdout.FlushAsync(ct);
    }

    private static Command Put()
    {
        var command = new Command("put", "Store a new value as the secret's AWSCURRENT version (from --value-file FILE, --value-file - for standard input, or --value).");
        var common = new Common(command);
        var id = new SecretId(command);
        var value = new ValueOptions(command);
        var stages = new Option<string[]>("--version-stages") { Description = "Labels for the new version (default AWSCURRENT).", AllowMultipleArgumentsPerToken = true };
        command.Options.Add(stages);
        command.SetAction((parse, ct) => ClientRunner.RunAsync(common.Connection, parse, async api =>
        {
            var body = new JsonObject { ["SecretId"] = id.Get(parse), ["ClientRequestToken"] = Token() };
            if (!await value.AddToAsync(parse, body, ct))
            {
                throw new TumblerClientException("no value: give --value-file FILE, --value-file - (standard input) or --value.");
            }
            if (parse.GetValue(stages) is { Length: > 0 } labels)
            {
                body["VersionStages"] = new JsonArray(labels.Select(l => (JsonNode?)l).ToArray());
            }
            var answer = await api.CallAsync("PutSecretValue", body);
            if (common.Json(parse))
            {
                ClientRunner.PrintJson(answer);
            }
            else
            {
                HumanOutput.Line($"Stored version {HumanOutput.Str(answer, "VersionId")} of {HumanOutput.Str(answer, "Name")} " +
                    $"({(answer.TryGetProperty("VersionStages", out var s) ? HumanOutput.Stages(s) : "")}).");
            }
            return 0;
        }, ct));
        return command;
    }

    private static Command CreateSecret()
    {
        var command = new Command("create", "Create a secret, with or without a first value.");
        var common = new Common(command);
        var name = new Option<string>("--name") { Description = "The new secret's name, e.g. prod/app/db.", Required = true };
        var description = new Option<string?>("--description") { Description = "What the secret is for." };
        var kms = new Option<string?>("--kms-key-id") { Description = "KMS-like key to encrypt it with (default aws/secretsmanager)." };
        var tags = TagsOption("Tags as KEY=VALUE, e.g. --tags team=web env=prod.");
        command.Options.Add(name);
        command.Options.Add(description);
        command.Options.Add(kms);
        command.Options.Add(tags);
        var value = new ValueOptions(command);
        command.SetAction((parse, ct) => ClientRunner.RunAsync(common.Connection, parse, async api =>
        {
            var body = new JsonObject { ["Name"] = parse.GetValue(name), ["ClientRequestToken"] = Token() };
            if (parse.GetValue(description) is { } d)
            {
                body["Description"] = d;
            }
            if (parse.GetValue(kms) is { } k)
            {
                body["KmsKeyId"] = k;
            }
            if (parse.GetValue(tags) is { Length: > 0 } t)
            {
                body["Tags"] = ParseTags(t);
            }
            var hasValue = await value.AddToAsync(parse, body, ct);
            if (!hasValue)
            {
                body.Remove("ClientRequestToken");
            }
            var answer = await api.CallAsync("CreateSecret", body);
            if (common.Json(parse))
            {
                ClientRunner.PrintJson(answer);
            }
            else
            {
                HumanOutput.Line($"Created {HumanOutput.Str(answer, "Name")}");
                HumanOutput.Line($"  ARN      {HumanOutput.Str(answer, "ARN")}");
                HumanOutput.Line(HumanOutput.Str(answer, "VersionId") is { } v ? $"  Version  {v} (AWSCURRENT)" : "  No value yet: `tumbler put` stores one.");
            }
            return 0;
        }, ct));
        return command;
    }

    private static Command Describe()
    {
        var command = new Command("describe", "Show a secret: dates, tags, rotation (enabled, function, schedule, last and next rotation) and its versions' stages.");
        var common = new Common(command);
        var id = new SecretId(command);
        command.SetAction((parse, ct) => ClientRunner.RunAsync(common.Connection, parse, async api =>
        {
            var answer = await api.CallAsync("DescribeSecret", new JsonObject { ["SecretId"] = id.Get(parse) });
            if (common.Json(parse))
            {
                ClientRunner.PrintJson(answer);
            }
            else
            {
                HumanOutput.Describe(answer);
            }
            return 0;
        }, ct));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List secrets (every page).");
        var common = new Common(command);
        var prefix = new Option<string?>("--name-prefix") { Description = "Only secrets whose name starts with this." };
        var deleted = new Option<bool>("--include-deleted") { Description = "Also secrets scheduled for deletion." };
        command.Options.Add(prefix);
        command.Options.Add(deleted);
        command.SetAction((parse, ct) => ClientRunner.RunAsync(common.Connection, parse, async api =>
        {
            var all = new List<JsonElement>();
            string? next = null;
            do
            {
                var body = new JsonObject { ["MaxResults"] = 100 };
                if (parse.GetValue(prefix) is { } p)
                {
                    body["Filters"] = new JsonArray(new JsonObject { ["Key"] = "name", ["Values"] = new JsonArray(p) });
                }
                if (parse.GetValue(deleted))
                {
                    body["IncludePlannedDeletion"] = true;
                }
                if (next is not null)
                {
                    body["NextToken"] = next;
                }
                var page = await api.CallAsync("ListSecrets", body);
                if (page.TryGetProperty("SecretList", out var list))
                {
                    all.AddRange(list.EnumerateArray().Select(e => e.Clone()));
                }
                next = HumanOutput.Str(page, "NextToken");
            }
            while (next is not null);
            // The name filter is a prefix match on AWS for the start of each word; keep only true prefixes.
            if (parse.GetValue(prefix) is { } wanted)
            {
                all = all.Where(s => (HumanOutput.Str(s, "Name") ?? "").StartsWith(wanted, StringComparison.Ordinal)).ToList();
            }
            if (common.Json(parse))
            {
                ClientRunner.PrintJson(new JsonObject { ["SecretList"] = new JsonArray(all.Select(e => JsonNode.Parse(e.GetRawText())).ToArray()) });
            }
            else
            {
                HumanOutput.List(all);
            }
            return 0;
        }, ct));
        return command;
    }

    private static Command Delete()
    {
        var command = new Command("delete", "Schedule a secret for deletion (default after 30 days; `tumbler restore` cancels), or delete it at once with --force.");
        var common = new Common(command);
        var id = new SecretId(command);
        var window = new Option<int?>("--recovery-window-days") { Description = "Days (7-30) before the secret is purged." };
        var force = new Option<bool>("--force") { Description = "Delete now, with no recovery window." };
        command.Options.Add(window);
        command.Options.Add(force);
        command.SetAction((parse, ct) => ClientRunner.RunAsync(common.Connection, parse, async api =>
        {
            var body = new JsonObject { ["SecretId"] = id.Get(parse) };
            if (parse.GetValue(window) is { } days)
            {
                body["RecoveryWindowInDays"] = days;
            }
            if (parse.GetValue(force))
            {
                body["ForceDeleteWithoutRecovery"] = true;
            }
            var answer = await api.CallAsync("DeleteSecret", body);
            if (common.Json(parse))
            {
                ClientRunner.PrintJson(answer);
            }
            else if (parse.GetValue(force))
            {
                HumanOutput.Line($"Deleted {HumanOutput.Str(answer, "Name")}.");
            }
            else
            {
                HumanOutput.Line($"{HumanOutput.Str(answer, "Name")} is scheduled for deletion on {HumanOutput.Format(HumanOutput.Date(answer, "DeletionDate"), relative: true)}; `tumbler restore` cancels it.");
            }
            return 0;
        }, ct));
        return command;
    }

    private static Command Restore()
    {
        var command = new Command("restore",
            "Cancel a secret's scheduled deletion (tumbler restore SECRET), or restore a backup into a new data directory (tumbler restore --from FILE --data-dir DIR).");
        var common = new Common(command);
        var id = new SecretId(command);
        var data = new BackupCommand.DataRestore(command);
        command.SetAction((parse, ct) => data.Requested(parse) ? data.RunAsync(parse, secretGiven: id.Given(parse), ct) : ClientRunner.RunAsync(common.Connection, parse, async api =>
        {
            var answer = await api.CallAsync("RestoreSecret", new JsonObject { ["SecretId"] = id.Get(parse) });
            if (common.Json(parse))
            {
                ClientRunner.PrintJson(answer);
            }
            else
            {
                HumanOutput.Line($"Restored {HumanOutput.Str(answer, "Name")}.");
            }
            return 0;
        }, ct));
        return command;
    }

    private static Command Rotate()
    {
        var command = new Command("rotate", "Rotate a secret now (and set its rotation function and schedule); --wait follows the rotation to its end.");
        var common = new Common(command);
        var id = new SecretId(command);
        var function = new Option<string?>("--rotation-lambda-arn") { Description = "The rotation function, e.g. arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSPostgreSQLRotationSingleUser." };
        var schedule = new Option<string?>("--schedule") { Description = "rate(N days|hours) or cron(...) (UTC)." };
        var days = new Option<int?>("--days") { Description = "Rotate every N days (AutomaticallyAfterDays)." };
        var duration = new Option<string?>("--duration") { Description = "Rotation window length, e.g. 2h." };
        var later = new Option<bool>("--schedule-only") { Description = "Store the schedule and test the function, but don't rotate now (RotateImmediately=false)." };
        var wait = new Option<bool>("--wait") { Description = "Wait until the rotation has finished (AWSPENDING gone) or failed; exit 0 only on success." };
        var waitTimeout = new Option<int>("--wait-timeout") { Description = "Seconds to wait with --wait.", DefaultValueFactory = _ => 300 };
        foreach (var option in new Option[] { function, schedule, days, duration, later, wait, waitTimeout })
        {
            command.Options.Add(option);
        }
        command.SetAction((parse, ct) => ClientRunner.RunAsync(common.Connection, parse, async api =>
        {
            var secretId = id.Get(parse);
            var body = new JsonObject { ["SecretId"] = secretId, ["ClientRequestToken"] = Token() };
            if (parse.GetValue(function) is { } arn)
            {
                body["RotationLambdaARN"] = arn;
            }
            var rules = new JsonObject();
            if (parse.GetValue(schedule) is { } expression)
            {
                rules["ScheduleExpression"] = expression;
            }
            if (parse.GetValue(days) is { } n)
            {
                rules["AutomaticallyAfterDays"] = n;
            }
            if (parse.GetValue(duration) is { } window)
            {
                rules["Duration"] = window;
            }
            if (rules.Count > 0)
            {
                body["RotationRules"] = rules;
            }
            if (parse.GetValue(later))
            {
                body["RotateImmediately"] = false;
            }
            var answer = await api.CallAsync("RotateSecret", body);
            var name = HumanOutput.Str(answer, "Name") ?? secretId;
            var version = HumanOutput.Str(answer, "VersionId");
            if (!parse.GetValue(wait))
            {
                if (common.Json(parse))
                {
                    ClientRunner.PrintJson(answer);
                }
                else
                {
                    HumanOutput.Line($"Rotation of {name} started: pending version {version}. `tumbler describe {name}` shows its progress.");
                }
                return 0;
            }
            return await WaitForRotationAsync(api, parse, common, answer, name, version, TimeSpan.FromSeconds(parse.GetValue(waitTimeout)), ct);
        }, ct));
        return command;
    }

    /// <summary>Polls DescribeSecret until no version carries AWSPENDING (done) or the rotation reports a failed attempt.</summary>
    private static async Task<int> WaitForRotationAsync(SecretsApi api, ParseResult parse, Common common, JsonElement started, string name, string? version,
        TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (true)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
            var d = await api.CallAsync("DescribeSecret", new JsonObject { ["SecretId"] = HumanOutput.Str(started, "ARN") ?? name });
            var stages = d.TryGetProperty("VersionIdsToStages", out var map) && map.ValueKind == JsonValueKind.Object
                ? map.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(s => s.GetString()).ToList())
                : [];
            var pending = stages.Any(kv => kv.Value.Contains("AWSPENDING") && !kv.Value.Contains("AWSCURRENT"));
            var status = d.TryGetProperty("TumblerRotationStatus", out var s) && s.ValueKind == JsonValueKind.Object ? s : (JsonElement?)null;
            if (!pending && status is null)
            {
                var current = stages.FirstOrDefault(kv => kv.Value.Contains("AWSCURRENT")).Key;
                if (common.Json(parse))
                {
                    ClientRunner.PrintJson(d);
                }
                else if (version is not null && current == version)
                {
                    HumanOutput.Line($"Rotated {name}: version {version} is AWSCURRENT.");
                }
                else
                {
                    HumanOutput.Line($"Rotation of {name} finished; AWSCURRENT is version {current}.");
                }
                return 0;
            }
            if (status is { } failing && HumanOutput.Str(failing, "State") == "Retrying")
            {
                throw new TumblerClientException($"rotation of {name} failed: {HumanOutput.RotationProgress(failing)}. The server retries it; `tumbler describe {name}` follows it.");
            }
            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new TumblerClientException($"rotation of {name} still running after {timeout.TotalSeconds:0} s" +
                    (status is { } st ? $" ({HumanOutput.RotationProgress(st)})" : "") + ".");
            }
        }
    }

    private static Command Versions()
    {
        var command = new Command("versions", "List a secret's versions with their stages, newest first.");
        var common = new Common(command);
        var id = new SecretId(command);
        var deprecated = new Option<bool>("--include-deprecated") { Description = "Also versions without a label." };
        command.Options.Add(deprecated);
        command.SetAction((parse, ct) => ClientRunner.RunAsync(common.Connection, parse, async api =>
        {
            var versions = new List<JsonElement>();
            JsonElement last = default;
            string? next = null;
            do
            {
                var body = new JsonObject { ["SecretId"] = id.Get(parse), ["MaxResults"] = 100 };
                if (parse.GetValue(deprecated))
                {
                    body["IncludeDeprecated"] = true;
                }
                if (next is not null)
                {
                    body["NextToken"] = next;
                }
                last = await api.CallAsync("ListSecretVersionIds", body);
                if (last.TryGetProperty("Versions", out var list))
                {
                    versions.AddRange(list.EnumerateArray().Select(e => e.Clone()));
                }
                next = HumanOutput.Str(last, "NextToken");
            }
            while (next is not null);
            if (common.Json(parse))
            {
                var json = JsonNode.Parse(last.GetRawText())!.AsObject();
                json.Remove("NextToken");
                json["Versions"] = new JsonArray(versions.Select(e => JsonNode.Parse(e.GetRawText())).ToArray());
                ClientRunner.PrintJson(json);
            }
            else
            {
                HumanOutput.Versions(HumanOutput.Str(last, "Name") ?? "", versions);
            }
            return 0;
        }, ct));
        return command;
    }

    private static Command Tag()
    {
        var command = new Command("tag", "Add or change tags (--tags k=v ...), remove tags (--remove k ...), or with neither show the tags.");
        var common = new Common(command);
        var id = new SecretId(command);
        var tags = TagsOption("Tags to add or change, as KEY=VALUE.");
        var remove = new Option<string[]>("--remove") { Description = "Tag keys to remove.", AllowMultipleArgumentsPerToken = true };
        command.Options.Add(tags);
        command.Options.Add(remove);
        command.SetAction((parse, ct) => ClientRunner.RunAsync(common.Connection, parse, async api =>
        {
            var secretId = id.Get(parse);
            var add = parse.GetValue(tags) ?? [];
            var drop = parse.GetValue(remove) ?? [];
            if (add.Length > 0)
            {
                await api.CallAsync("TagResource", new JsonObject { ["SecretId"] = secretId, ["Tags"] = ParseTags(add) });
            }
            if (drop.Length > 0)
            {
                await api.CallAsync("UntagResource", new JsonObject { ["SecretId"] = secretId, ["TagKeys"] = new JsonArray(drop.Select(k => (JsonNode?)k).ToArray()) });
            }
            var d = await api.CallAsync("DescribeSecret", new JsonObject { ["SecretId"] = secretId });
            if (common.Json(parse))
            {
                ClientRunner.PrintJson(new JsonObject { ["Tags"] = d.TryGetProperty("Tags", out var t) ? JsonNode.Parse(t.GetRawText()) : new JsonArray() });
            }
            else
            {
                HumanOutput.TagTable(d);
            }
            return 0;
        }, ct));
        return command;
    }
}
