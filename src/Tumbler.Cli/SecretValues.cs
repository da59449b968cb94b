using System.Text;
using System.Text.Json;
using Tumbler.Client;

namespace Tumbler.Cli;

/// <summary>
/// Turning a GetSecretValue answer into what <c>tumbler get --key</c> prints and into the environment
/// <c>tumbler exec</c> gives its command. Error messages name secrets and keys, never values.
/// </summary>
internal static class SecretValues
{
    /// <summary>One top-level key of a JSON secret: a string as it is, anything else as its JSON text.</summary>
    public static string Field(JsonElement answer, string key, string? name)
    {
        if (AsObject(answer) is not { } obj)
        {
            throw new TumblerClientException($"secret {name} is not a JSON object, so it has no key '{key}'.");
        }
        if (!obj.TryGetProperty(key, out var value))
        {
            throw new TumblerClientException($"secret {name} has no key '{key}' (its keys: {string.Join(", ", obj.EnumerateObject().Select(p => p.Name))}).");
        }
        return Text(value);
    }

    /// <summary>The SecretString parsed, when it is a JSON object; null otherwise.</summary>
    public static JsonElement? AsObject(JsonElement answer)
    {
        if (HumanOutput.Str(answer, "SecretString") is not { } text)
        {
            return null;
        }
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>A JSON value as an environment value: strings unquoted, null empty, numbers/booleans/objects/arrays as compact JSON.</summary>
    public static string Text(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString() ?? "",
        JsonValueKind.Null => "",
        _ => value.GetRawText(),
    };

    /// <summary>
    /// Upper-cases ASCII letters and turns every character that is not an ASCII letter, digit or '_' into '_':
    /// <c>db-host</c> -> <c>DB_HOST</c>. A name that would start with a digit gets a leading '_'.
    /// </summary>
    public static string EnvName(string text)
    {
        var name = new StringBuilder(text.Length + 1);
        foreach (var c in text)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) ? char.ToUpperInvariant(c) : '_');
        }
        if (name.Length > 0 && char.IsAsciiDigit(name[0]))
        {
            name.Insert(0, '_');
        }
        return name.ToString();
    }

    /// <summary>The default prefix of a secret: its name's last path segment as an env name, then '_' (prod/app/db -> DB_).</summary>
    public static string DefaultPrefix(string secretName)
    {
        var last = secretName.TrimEnd('/');
        last = last[(last.LastIndexOf('/') + 1)..];
        return EnvName(last) + "_";
    }

    public static bool IsValidEnvName(string name) =>
        name.Length > 0 && (char.IsAsciiLetter(name[0]) || name[0] == '_') && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}
