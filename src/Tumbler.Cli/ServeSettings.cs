using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Tumbler.Core.Rotation;
using Tumbler.Server.Hosting;
using Tumbler.Storage.Postgres;

namespace Tumbler.Cli;

/// <summary>
/// The settings of <c>tumbler serve</c> and where each one may come from: the configuration file
/// (<c>tumbler.json</c>, key in camelCase), the environment (<c>TUMBLER_</c> + the key in upper snake case)
/// and the command line (<c>--</c> + the key in kebab case). Flags win over the environment, which wins
/// over the file, which wins over the defaults. One naming rule, so the three never drift apart:
/// <c>rateLimit</c> = <c>TUMBLER_RATE_LIMIT</c> = <c>--rate-limit</c>.
/// </summary>
internal static class ServeSettings
{
    public const string FileName = "tumbler.json";
    public const string DataDirEnvironment = "TUMBLER_DATA_DIR";

    internal enum Kind { Text, TextList, Flag, Number, WholeNumber }

    /// <summary>One setting: its file key, its kind and (for choices) the accepted values.</summary>
    /// <param name="HoldsSecret">Its value may carry a password: an error about it never quotes the value.</param>
    internal sealed record Setting(string Key, Kind Type, string[]? Choices = null, bool IsPath = false, bool HoldsSecret = false)
    {
        public string Environment => "TUMBLER_" + Snake(Key).ToUpperInvariant();
        public string Flag => "--" + Snake(Key).Replace('_', '-');

        private static string Snake(string key)
        {
            var b = new StringBuilder();
            foreach (var c in key)
            {
                if (char.IsAsciiLetterUpper(c))
                {
                    b.Append('_').Append(char.ToLowerInvariant(c));
                }
                else
                {
                    b.Append(c);
                }
            }
            return b.ToString();
        }
    }

    public static readonly string[] LogLevels = ["Trace", "Debug", "Information", "Warning", "Error", "Critical"];

    /// <summary>Every setting the file, the environment and the flags can carry (the data directory is apart: see <see cref="ResolveDataDir"/>).</summary>
    public static readonly IReadOnlyList<Setting> All =
    [
        new("store", Kind.Text, HoldsSecret: true),
        new("listen", Kind.TextList),
        new("region", Kind.TextList),
        new("accountId", Kind.Text),
        new("acceptAnyCredentials", Kind.Flag),
        new("tlsCert", Kind.Text, IsPath: true),
        new("tlsKey", Kind.Text, IsPath: true),
        new("tlsSelfSigned", Kind.Flag),
        new("trustedProxy", Kind.TextList),
        new("rateLimit", Kind.Number),
        new("rateBurst", Kind.WholeNumber),
        new("metrics", Kind.Flag),
        new("audit", Kind.Text, ["file", "none"]),
        new("logFormat", Kind.Text, ["text", "json"]),
        new("logLevel", Kind.Text, LogLevels),
        new("rotationLeaseSeconds", Kind.Number),
        new("rotationPollSeconds", Kind.Number),
        new("rotationRetrySeconds", Kind.Number),
        new("rotationCaFile", Kind.Text, IsPath: true),
        new("sharedStorePollSeconds", Kind.Number),
    ];

    /// <summary>A setting's value and where it came from (for messages and --print-config).</summary>
    public sealed record Value(object Data, string Source);

    /// <summary>The data directory: --data-dir, else TUMBLER_DATA_DIR, else ./tumbler-data. Never from the file, which lives in it.</summary>
    public static (string Path, string Source) ResolveDataDir(string? flag)
    {
        if (!string.IsNullOrWhiteSpace(flag))
        {
            return (flag, "--data-dir");
        }
        var env = System.Environment.GetEnvironmentVariable(DataDirEnvironment);
        return string.IsNullOrWhiteSpace(env) ? (new ServerOptions().DataDirectory, "default") : (env, DataDirEnvironment);
    }

    /// <summary>The file named by --config (which must exist), else DATA_DIR/tumbler.json when it exists, else none.</summary>
    public static string? ResolveFile(string? configFlag, string dataDir)
    {
        if (configFlag is not null)
        {
            return File.Exists(configFlag) ? configFlag : throw new StartupException($"--config {configFlag}: no such file.");
        }
        var inDataDir = Path.Combine(dataDir, FileName);
        return File.Exists(inDataDir) ? inDataDir : null;
    }

    /// <summary>Reads the configuration file; throws <see cref="StartupException"/> naming the file and the key.</summary>
    public static Dictionary<string, Value> ReadFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"{path}: cannot read: {e.Message}");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            // The reader counts lines and columns from 0; editors from 1.
            var reason = OneLine(e.Message);
            var position = reason.IndexOf(" Path: ", StringComparison.Ordinal) is >= 0 and var at ? at : reason.IndexOf(" LineNumber: ", StringComparison.Ordinal);
            throw new StartupException($"{path}: not valid JSON at line {e.LineNumber + 1}, column {e.BytePositionInLine + 1}: " +
                (position >= 0 ? reason[..position] : reason));
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new StartupException($"{path}: must be a JSON object of settings, such as {{\"listen\": \"127.0.0.1:8787\"}}.");
            }
            var values = new Dictionary<string, Value>(StringComparer.Ordinal);
            var baseDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
            foreach (var member in document.RootElement.EnumerateObject())
            {
                var where = $"{path}: \"{member.Name}\"";
                if (member.Name == "dataDir")
                {
                    throw new StartupException($"{where}: cannot be set in the configuration file; give --data-dir or {DataDirEnvironment}.");
                }
                var setting = All.FirstOrDefault(s => s.Key == member.Name)
                    ?? throw new StartupException($"{where}: unknown setting (known: {string.Join(", ", All.Select(s => s.Key))}).");
                if (values.ContainsKey(setting.Key))
                {
                    throw new StartupException($"{where}: given more than once.");
                }
                var data = FromJson(setting, member.Value, where);
                if (setting.IsPath && data is string relative)
                {
                    data = Path.GetFullPath(relative, baseDir); // relative to the file, not to where the server was started
                }
                values[setting.Key] = new Value(Check(setting, data, where), path);
            }
            return values;
        }
    }

    /// <summary>The settings given as TUMBLER_* variables (lists comma-separated; flags true/false/1/0).</summary>
    public static Dictionary<string, Value> ReadEnvironment()
    {
        var values = new Dictionary<string, Value>(StringComparer.Ordinal);
        foreach (var setting in All)
        {
            var text = System.Environment.GetEnvironmentVariable(setting.Environment);
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }
            values[setting.Key] = new Value(Check(setting, FromText(setting, [text], setting.Environment), setting.Environment), setting.Environment);
        }
        return values;
    }

    /// <summary>A flag's value (texts as typed; a repeated option gives several).</summary>
    public static Value FromFlag(Setting setting, IReadOnlyList<string> texts) =>
        new(Check(setting, FromText(setting, texts, setting.Flag), setting.Flag), setting.Flag);

    private static object FromText(Setting setting, IReadOnlyList<string> texts, string where)
    {
        var text = texts[^1].Trim();
        switch (setting.Type)
        {
            case Kind.TextList:
                return texts.SelectMany(t => t.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToArray();
            case Kind.Flag:
                return text.ToLowerInvariant() switch
                {
                    "true" or "1" or "yes" or "on" => true,
                    "false" or "0" or "no" or "off" => false,
                    _ => throw new StartupException($"{where}: must be true or false, got {text}"),
                };
            case Kind.Number:
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
                    ? number
                    : throw new StartupException($"{where}: must be a positive number, got {text}");
            case Kind.WholeNumber:
                return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var whole)
                    ? whole
                    : throw new StartupException($"{where}: must be a positive whole number, got {text}");
            default:
                return text;
        }
    }

    private static object FromJson(Setting setting, JsonElement json, string where)
    {
        var got = setting.HoldsSecret ? $"a JSON {json.ValueKind.ToString().ToLowerInvariant()}" : OneLine(json.GetRawText());
        switch (setting.Type)
        {
            case Kind.TextList when json.ValueKind == JsonValueKind.String:
                return json.GetString()!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            case Kind.TextList when json.ValueKind == JsonValueKind.Array && json.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String):
                return json.EnumerateArray().Select(e => e.GetString()!.Trim()).ToArray();
            case Kind.TextList:
                throw new StartupException($"{where}: must be a string or an array of strings, got {got}");
            case Kind.Flag:
                return json.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw new StartupException($"{where}: must be true or false, got {got}"),
                };
            case Kind.Number:
                return json.ValueKind == JsonValueKind.Number && json.TryGetDouble(out var number)
                    ? number
                    : throw new StartupException($"{where}: must be a positive number, got {got}");
            case Kind.WholeNumber:
                return json.ValueKind == JsonValueKind.Number && json.TryGetInt64(out var whole)
                    ? whole
                    : throw new StartupException($"{where}: must be a positive whole number, got {got}");
            default:
                return json.ValueKind == JsonValueKind.String
                    ? json.GetString()!
                    : throw new StartupException($"{where}: must be a string, got {got}");
        }
    }

    /// <summary>The checks that need only the value itself; the same whatever its source.</summary>
    private static object Check(Setting setting, object data, string where)
    {
        string Got(object value) => value is double d ? d.ToString(CultureInfo.InvariantCulture) : $"{value}";
        switch (setting.Key, data)
        {
            case (_, double d) when !double.IsFinite(d) || d <= 0:
                throw new StartupException($"{where}: must be a positive number, got {Got(d)}");
            case (_, long n) when n <= 0 || n > int.MaxValue:
                throw new StartupException($"{where}: must be a positive whole number, got {n}");
            case (_, string s) when setting.Choices is { } choices:
                return choices.FirstOrDefault(c => string.Equals(c, s, StringComparison.OrdinalIgnoreCase))
                    ?? throw new StartupException($"{where}: must be one of {string.Join(", ", choices)}, got {s}");
            case (_, string s) when s.Length == 0:
                throw new StartupException($"{where}: must not be empty");
            case ("store", string s) when !string.Equals(s, "sqlite", StringComparison.OrdinalIgnoreCase):
                try
                {
                    PostgresSecretStore.ConnectionStringFrom(s);
                }
                catch (FormatException e)
                {
                    throw new StartupException($"{where}: {e.Message} Give sqlite, a postgres:// URL or an Npgsql connection string.");
                }
                break;
            case ("accountId", string s) when s.Length != 12 || !s.All(char.IsAsciiDigit):
                throw new StartupException($"{where}: must be 12 digits, got {s}");
            case (_, string[] list) when list.Length == 0:
                throw new StartupException($"{where}: give at least one value");
            case ("listen", string[] list):
                foreach (var item in list)
                {
                    Reason(where, () => ServerOptions.ParseListen(item));
                }
                break;
            case ("trustedProxy", string[] list):
                foreach (var item in list)
                {
                    Reason(where, () => new ServerOptions { TrustedProxies = [item] }.TrustedProxyNetworks());
                }
                break;
        }
        return data;
    }

    /// <summary>Runs a check of <see cref="ServerOptions"/> and says its failure as this source's.</summary>
    private static void Reason(string where, Action check)
    {
        try
        {
            check();
        }
        catch (StartupException e)
        {
            // "--listen X: the port must be..." -> "WHERE: X: the port must be..."
            var message = e.Message.StartsWith("--", StringComparison.Ordinal) && e.Message.IndexOf(' ', StringComparison.Ordinal) is > 0 and var space
                ? e.Message[(space + 1)..]
                : e.Message;
            throw new StartupException($"{where}: {message}");
        }
    }

    /// <summary>The layers merged (flags over environment over file) into the server's options.</summary>
    public static ServerOptions Build(string dataDir, IReadOnlyDictionary<string, Value> merged, Action<string>? faultPoint)
    {
        T? Get<T>(string key) => merged.TryGetValue(key, out var v) ? (T)v.Data : default;
        var defaults = new ServerOptions();
        var rotation = new RotationOptions();
        return new ServerOptions
        {
            DataDirectory = dataDir,
            Store = Get<string>("store"),
            Listen = Get<string[]>("listen") ?? defaults.Listen,
            Regions = Get<string[]>("region") ?? defaults.Regions,
            AccountId = Get<string>("accountId") ?? defaults.AccountId,
            AcceptAnyCredentials = Get<bool>("acceptAnyCredentials"),
            TlsCertificateFile = Get<string>("tlsCert"),
            TlsKeyFile = Get<string>("tlsKey"),
            TlsSelfSigned = Get<bool>("tlsSelfSigned"),
            TrustedProxies = Get<string[]>("trustedProxy") ?? [],
            RateLimit = merged.ContainsKey("rateLimit") ? Get<double>("rateLimit") : null,
            RateBurst = merged.ContainsKey("rateBurst") ? (int)Get<long>("rateBurst") : null,
            Metrics = Get<bool>("metrics"),
            Audit = Get<string>("audit") ?? defaults.Audit,
            LogFormat = Get<string>("logFormat") ?? defaults.LogFormat,
            LogLevel = Get<string>("logLevel") is { } level ? Enum.Parse<LogLevel>(level) : defaults.LogLevel,
            RotationCaFile = Get<string>("rotationCaFile"),
            SharedStorePollInterval = merged.ContainsKey("sharedStorePollSeconds")
                ? TimeSpan.FromSeconds(Get<double>("sharedStorePollSeconds")) : defaults.SharedStorePollInterval,
            Rotation = rotation with
            {
                LeaseDuration = merged.ContainsKey("rotationLeaseSeconds") ? TimeSpan.FromSeconds(Get<double>("rotationLeaseSeconds")) : rotation.LeaseDuration,
                PollInterval = merged.ContainsKey("rotationPollSeconds") ? TimeSpan.FromSeconds(Get<double>("rotationPollSeconds")) : rotation.PollInterval,
                RetryBase = merged.ContainsKey("rotationRetrySeconds") ? TimeSpan.FromSeconds(Get<double>("rotationRetrySeconds")) : rotation.RetryBase,
                StepBoundary = faultPoint,
            },
        };
    }

    /// <summary>Whether a setting's name says its value is secret (printed masked); paths to such things are not secret.</summary>
    public static bool IsSecretName(string name) =>
        name.Contains("key", StringComparison.OrdinalIgnoreCase) || name.Contains("secret", StringComparison.OrdinalIgnoreCase)
        || name.Contains("password", StringComparison.OrdinalIgnoreCase);

    public const string Masked = "********";

    /// <summary>The effective configuration as one JSON document: every setting, where it came from, secrets masked.</summary>
    public static string Print(ServerOptions options, string dataDirSource, string? file, IReadOnlyDictionary<string, Value> merged)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("configFile", file is null ? null : Path.GetFullPath(file));
            w.WriteString("dataDir", Path.GetFullPath(options.DataDirectory));
            foreach (var setting in All)
            {
                w.WritePropertyName(setting.Key);
                if (IsSecretName(setting.Key) && !setting.IsPath && merged.ContainsKey(setting.Key))
                {
                    w.WriteStringValue(Masked);
                    continue;
                }
                WriteEffective(w, setting.Key, options);
            }
            // Where the root secrets come from, in the server's order (TumblerServer.LoadRootKeyAsync); values are never printed.
            var rootKey = System.Environment.GetEnvironmentVariable(Tumbler.Core.Crypto.RootKeyFile.EnvironmentVariable);
            var passphrase = System.Environment.GetEnvironmentVariable(Tumbler.Core.Crypto.RootKeyFile.PassphraseVariable);
            w.WriteString("rootKey", !string.IsNullOrWhiteSpace(rootKey) ? $"{Masked} (from {Tumbler.Core.Crypto.RootKeyFile.EnvironmentVariable})"
                : options.RootKeyPassphraseFile is { } passphraseFile ? $"derived from the passphrase in {Path.GetFullPath(passphraseFile)}"
                : !string.IsNullOrEmpty(passphrase) ? $"derived from the passphrase in {Tumbler.Core.Crypto.RootKeyFile.PassphraseVariable}"
                : Path.GetFullPath(Path.Combine(options.DataDirectory, ServerOptions.RootKeyFile)));
            var rootSecret = System.Environment.GetEnvironmentVariable("TUMBLER_ROOT_SECRET_ACCESS_KEY");
            w.WriteString("rootCredentials", string.IsNullOrWhiteSpace(rootSecret)
                ? Path.GetFullPath(Path.Combine(options.DataDirectory, ServerOptions.CredentialsFile))
                : $"{Masked} (from TUMBLER_ROOT_ACCESS_KEY_ID and TUMBLER_ROOT_SECRET_ACCESS_KEY)");
            w.WriteStartObject("sources");
            w.WriteString("dataDir", dataDirSource);
            foreach (var setting in All)
            {
                w.WriteString(setting.Key, merged.TryGetValue(setting.Key, out var v) ? v.Source : "default");
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteEffective(Utf8JsonWriter w, string key, ServerOptions o)
    {
        switch (key)
        {
            case "store": w.WriteStringValue(o.UsesSharedStore ? PostgresSecretStore.Mask(o.Store!) : "sqlite"); break;
            case "listen": WriteList(w, o.Listen); break;
            case "region": WriteList(w, o.Regions); break;
            case "accountId": w.WriteStringValue(o.AccountId); break;
            case "acceptAnyCredentials": w.WriteBooleanValue(o.AcceptAnyCredentials); break;
            case "tlsCert": WriteOptional(w, o.TlsCertificateFile); break;
            case "tlsKey": WriteOptional(w, o.TlsKeyFile); break;
            case "tlsSelfSigned": w.WriteBooleanValue(o.TlsSelfSigned); break;
            case "trustedProxy": WriteList(w, o.TrustedProxies); break;
            case "rateLimit": if (o.RateLimit is { } rate) { w.WriteNumberValue(rate); } else { w.WriteNullValue(); } break;
            case "rateBurst": if (o.RateBurst is { } burst) { w.WriteNumberValue(burst); } else { w.WriteNullValue(); } break;
            case "metrics": w.WriteBooleanValue(o.Metrics); break;
            case "audit": w.WriteStringValue(o.Audit); break;
            case "logFormat": w.WriteStringValue(o.LogFormat); break;
            case "logLevel": w.WriteStringValue(o.LogLevel.ToString()); break;
            case "rotationLeaseSeconds": w.WriteNumberValue(o.Rotation.LeaseDuration.TotalSeconds); break;
            case "rotationPollSeconds": w.WriteNumberValue(o.Rotation.PollInterval.TotalSeconds); break;
            case "rotationRetrySeconds": w.WriteNumberValue(o.Rotation.RetryBase.TotalSeconds); break;
            case "rotationCaFile": WriteOptional(w, o.RotationCaFile); break;
            case "sharedStorePollSeconds": w.WriteNumberValue(o.SharedStorePollInterval.TotalSeconds); break;
            default: w.WriteNullValue(); break;
        }

        static void WriteList(Utf8JsonWriter w, IReadOnlyList<string> items)
        {
            w.WriteStartArray();
            foreach (var item in items)
            {
                w.WriteStringValue(item);
            }
            w.WriteEndArray();
        }

        static void WriteOptional(Utf8JsonWriter w, string? value)
        {
            if (value is null)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteStringValue(value);
            }
        }
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
