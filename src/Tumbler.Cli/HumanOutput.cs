using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Tumbler.Cli;

/// <summary>
/// The human rendering of Secrets Manager answers: Spectre.Console tables, dates in local time, rotation
/// state spelled out. Values are always rendered as plain <see cref="Text"/>, never parsed as markup.
/// </summary>
internal static class HumanOutput
{
    private static readonly Lazy<IAnsiConsole> Console = new(() =>
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Out) });
        if (System.Console.IsOutputRedirected)
        {
            // Piped: no terminal width to honour; don't wrap ARNs at 80 columns.
            console.Profile.Width = 240;
        }
        return console;
    });

    public static IAnsiConsole Out => Console.Value;

    private static readonly string[] StageOrder = ["AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"];

    public static string? Str(JsonElement obj, string member) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(member, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static DateTimeOffset? Date(JsonElement obj, string member) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(member, out var v) && v.ValueKind == JsonValueKind.Number
            ? DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(v.GetDouble() * 1000))
            : null;

    /// <summary>Local time, e.g. <c>2025-03-01 14:02:11 +01:00</c>; with <paramref name="relative"/> also "(in 29 days)".</summary>
    public static string Format(DateTimeOffset? date, bool relative = false)
    {
        if (date is not { } d)
        {
            return "-";
        }
        var text = d.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture);
        return relative ? $"{text} ({Relative(d)})" : text;
    }

    private static string Relative(DateTimeOffset date)
    {
        var span = date - DateTimeOffset.UtcNow;
        var abs = span.Duration();
        // Rounded, not truncated: a deletion 30 days out, read a moment later, is "in 30 days", not 29.
        var amount = abs.TotalDays >= 2 ? $"{Math.Round(abs.TotalDays)} days"
            : abs.TotalHours >= 2 ? $"{Math.Round(abs.TotalHours)} hours"
            : abs.TotalMinutes >= 2 ? $"{Math.Round(abs.TotalMinutes)} minutes"
            : $"{Math.Round(abs.TotalSeconds)} seconds";
        return span > TimeSpan.Zero ? $"in {amount}" : $"{amount} ago";
    }

    /// <summary>"enabled", "disabled" (configured, then cancelled) or "not configured".</summary>
    public static string RotationState(JsonElement secret) =>
        secret.TryGetProperty("RotationEnabled", out var enabled) && enabled.ValueKind == JsonValueKind.True ? "enabled"
        : secret.TryGetProperty("RotationLambdaARN", out _) ? "disabled"
        : "not configured";

    /// <summary>"every 30 days", "rate(10 days)", "cron(0 4 * * ? *), window 2h"; null without rules.</summary>
    public static string? Schedule(JsonElement secret)
    {
        if (!secret.TryGetProperty("RotationRules", out var rules) || rules.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        var text = Str(rules, "ScheduleExpression")
            ?? (rules.TryGetProperty("AutomaticallyAfterDays", out var days) && days.ValueKind == JsonValueKind.Number ? $"every {days.GetInt64()} days" : null);
        if (Str(rules, "Duration") is { } window)
        {
            text = text is null ? $"window {window}" : $"{text}, window {window}";
        }
        return text;
    }

    /// <summary>Stages in a stable order: AWSCURRENT, AWSPENDING, AWSPREVIOUS, then custom labels alphabetically.</summary>
    public static IEnumerable<string> OrderStages(IEnumerable<string> stages) =>
        stages.OrderBy(s => Array.IndexOf(StageOrder, s) is var i && i >= 0 ? i : StageOrder.Length).ThenBy(s => s, StringComparer.Ordinal);

    public static string Stages(JsonElement array) =>
        array.ValueKind == JsonValueKind.Array ? string.Join(", ", OrderStages(array.EnumerateArray().Select(s => s.GetString() ?? ""))) : "(deprecated)";

    public static string Tags(JsonElement secret) =>
        secret.TryGetProperty("Tags", out var tags) && tags.ValueKind == JsonValueKind.Array && tags.GetArrayLength() > 0
            ? string.Join(", ", tags.EnumerateArray().Select(t => $"{Str(t, "Key")}={Str(t, "Value")}"))
            : "-";

    /// <summary>DescribeSecret: the secret's facts, its rotation at a glance, and its versions with their stages.</summary>
    public static void Describe(JsonElement d)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        void Row(string label, string? value)
        {
            if (value is not null)
            {
                grid.AddRow(new Text(label, new Style(decoration: Decoration.Bold)), new Text(value));
            }
        }
        Row("Name", Str(d, "Name"));
        Row("ARN", Str(d, "ARN"));
        Row("Description", Str(d, "Description"));
        Row("KMS key", Str(d, "KmsKeyId") ?? "aws/secretsmanager (default)");
        Row("Created", Format(Date(d, "CreatedDate")));
        Row("Last changed", Format(Date(d, "LastChangedDate")));
        Row("Last accessed", Date(d, "LastAccessedDate") is { } accessed ? Format(accessed) : "never");
        if (Date(d, "DeletedDate") is { } deleted)
        {
            Row("Deletion", $"scheduled for {Format(deleted, relative: true)}; `tumbler restore` cancels it");
        }
        Row("Tags", Tags(d));
        Row("Rotation", RotationState(d));
        Row("  Function", Str(d, "RotationLambdaARN"));
        Row("  Schedule", Schedule(d));
        Row("  Last rotated", Date(d, "LastRotatedDate") is { } last ? Format(last, relative: true) : "never");
        if (RotationState(d) == "enabled")
        {
            Row("  Next rotation", Date(d, "NextRotationDate") is { } next ? Format(next, relative: true) : "-");
        }
        if (d.TryGetProperty("TumblerRotationStatus", out var status) && status.ValueKind == JsonValueKind.Object)
        {
            Row("  In progress", RotationProgress(status));
        }
        Out.Write(grid);

        var versions = new Table().Border(TableBorder.Simple).AddColumn("Version").AddColumn("Stages");
        if (d.TryGetProperty("VersionIdsToStages", out var map) && map.ValueKind == JsonValueKind.Object)
        {
            foreach (var version in map.EnumerateObject().OrderBy(v => StageRank(v.Value)))
            {
                versions.AddRow(new Text(version.Name), new Text(Stages(version.Value)));
            }
        }
        Out.Write(versions);
    }

    /// <summary>"InProgress, next step setSecret, attempt 1" or "Retrying, attempt 3, next at ..., last error: ...".</summary>
    public static string RotationProgress(JsonElement status)
    {
        var parts = new List<string> { Str(status, "State") ?? "?" };
        if (Str(status, "VersionId") is { } version)
        {
            parts.Add($"pending version {version}");
        }
        if (Str(status, "NextStep") is { } step)
        {
            parts.Add($"next step {step}");
        }
        if (status.TryGetProperty("Attempts", out var attempts) && attempts.ValueKind == JsonValueKind.Number)
        {
            parts.Add($"attempts {attempts.GetInt32()}");
        }
        if (Date(status, "NextAttemptDate") is { } next)
        {
            parts.Add($"next attempt {Format(next, relative: true)}");
        }
        if (Str(status, "LastError") is { } error)
        {
            parts.Add($"last error: {error}");
        }
        return string.Join(", ", parts);
    }

    private static int StageRank(JsonElement stages) =>
        stages.ValueKind == JsonValueKind.Array
            ? stages.EnumerateArray().Select(s => Array.IndexOf(StageOrder, s.GetString()) is var i && i >= 0 ? i : StageOrder.Length).DefaultIfEmpty(StageOrder.Length).Min()
            : StageOrder.Length + 1;

    /// <summary>ListSecrets: one row per secret.</summary>
    public static void List(IReadOnlyList<JsonElement> secrets)
    {
        var table = new Table().Border(TableBorder.Simple)
            .AddColumn("Name").AddColumn("Last changed").AddColumn("Rotation").AddColumn("Next rotation").AddColumn("Description");
        foreach (var s in secrets)
        {
            var name = Str(s, "Name") ?? "";
            if (Date(s, "DeletedDate") is { } deleted)
            {
                name += $" (deleted; purged {Format(deleted)})";
            }
            var rotation = RotationState(s) == "enabled" ? Schedule(s) ?? "enabled" : RotationState(s);
            var next = RotationState(s) == "enabled" ? Format(Date(s, "NextRotationDate")) : "-";
            table.AddRow(Cells(name, Format(Date(s, "LastChangedDate")), rotation, next, Str(s, "Description") ?? ""));
        }
        Out.Write(table);
        Out.WriteLine($"{secrets.Count} secret{(secrets.Count == 1 ? "" : "s")}");
    }

    /// <summary>ListSecretVersionIds: one row per version, newest first as the server lists them.</summary>
    public static void Versions(string name, IReadOnlyList<JsonElement> versions)
    {
        var table = new Table().Border(TableBorder.Simple).Title(new TableTitle(name))
            .AddColumn("Version").AddColumn("Stages").AddColumn("Created").AddColumn("Last accessed");
        foreach (var v in versions)
        {
            var stages = v.TryGetProperty("VersionStages", out var s) ? Stages(s) : "(deprecated)";
            table.AddRow(Cells(Str(v, "VersionId") ?? "", stages, Format(Date(v, "CreatedDate")), Date(v, "LastAccessedDate") is { } a ? Format(a) : "never"));
        }
        Out.Write(table);
    }

    public static void TagTable(JsonElement secret)
    {
        var table = new Table().Border(TableBorder.Simple).Title(new TableTitle(Str(secret, "Name") ?? "")).AddColumn("Key").AddColumn("Value");
        if (secret.TryGetProperty("Tags", out var tags) && tags.ValueKind == JsonValueKind.Array)
        {
            foreach (var t in tags.EnumerateArray().OrderBy(t => Str(t, "Key"), StringComparer.Ordinal))
            {
                table.AddRow(Cells(Str(t, "Key") ?? "", Str(t, "Value") ?? ""));
            }
        }
        Out.Write(table);
    }

    private static IRenderable[] Cells(params string[] values) => values.Select(v => (IRenderable)new Text(v)).ToArray();

    /// <summary>A plain line on standard output.</summary>
    public static void Line(string text) => System.Console.Out.WriteLine(text);
}
