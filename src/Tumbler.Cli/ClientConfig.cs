using System.Text;
using Tumbler.Client;

namespace Tumbler.Cli;

/// <summary>
/// <c>~/.tumbler/config</c> (or <c>TUMBLER_CONFIG_FILE</c>): INI sections named after profiles, each with
/// <c>endpoint_url</c>, <c>region</c>, <c>ca_bundle</c>, and either <c>aws_access_key_id</c> /
/// <c>aws_secret_access_key</c> (/ <c>aws_session_token</c>) or <c>aws_profile</c> (take the keys from that
/// profile of ~/.aws). Written by <c>tumbler configure</c> with mode 0600 in a 0700 directory.
/// </summary>
internal static class ClientConfig
{
    public const string EndpointUrl = "endpoint_url";
    public const string Region = "region";
    public const string CaBundle = "ca_bundle";
    public const string AccessKeyId = "aws_access_key_id";
    public const string SecretAccessKey = "aws_secret_access_key";
    public const string SessionToken = "aws_session_token";
    public const string AwsProfileName = "aws_profile";

    public static readonly string[] Keys = [EndpointUrl, Region, AccessKeyId, SecretAccessKey, SessionToken, AwsProfileName, CaBundle];

    public static string FilePath =>
        NullIfEmpty(Environment.GetEnvironmentVariable("TUMBLER_CONFIG_FILE"))
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".tumbler", "config");

    /// <summary>The profile name in effect: --profile, else TUMBLER_PROFILE, else AWS_PROFILE, else "default".</summary>
    public static string ProfileName(string? flag) =>
        flag ?? NullIfEmpty(Environment.GetEnvironmentVariable("TUMBLER_PROFILE"))
        ?? NullIfEmpty(Environment.GetEnvironmentVariable("AWS_PROFILE")) ?? "default";

    /// <summary>All sections, in file order; an absent file is no sections.</summary>
    public static List<(string Name, Dictionary<string, string> Values)> Read(string path)
    {
        var sections = new List<(string, Dictionary<string, string>)>();
        if (!File.Exists(path))
        {
            return sections;
        }
        Dictionary<string, string>? current = null;
        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }
            if (line.StartsWith('[') && line.EndsWith(']'))
            {
                current = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                sections.Add((line[1..^1].Trim(), current));
            }
            else if (current is not null && line.Split('=', 2, StringSplitOptions.TrimEntries) is [var key, var value])
            {
                current[key] = value;
            }
        }
        return sections;
    }

    public static Dictionary<string, string>? Section(string profile) =>
        Read(FilePath).LastOrDefault(s => s.Name == profile).Values;

    /// <summary>Writes the file whole: created 0600 before any byte goes in, directory 0700, replaced atomically.</summary>
    public static void Write(string path, List<(string Name, Dictionary<string, string> Values)> sections)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir))
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(dir);
            }
            else
            {
                Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }
        var text = new StringBuilder();
        foreach (var (name, values) in sections)
        {
            text.Append('[').Append(name).Append("]\n");
            foreach (var (key, value) in values.OrderBy(kv => Array.IndexOf(Keys, kv.Key) is var i && i < 0 ? int.MaxValue : i))
            {
                text.Append(key).Append(" = ").Append(value).Append('\n');
            }
            text.Append('\n');
        }
        var temp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        File.Delete(temp);
        using (var stream = new FileStream(temp, options))
        {
            stream.Write(Encoding.UTF8.GetBytes(text.ToString()));
            stream.Flush(flushToDisk: true);
        }
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        File.Move(temp, path, overwrite: true);
    }

    public static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}

/// <summary>Where a client call goes and as whom.</summary>
internal sealed record ResolvedConnection(Uri Endpoint, string Region, AwsCredentials Credentials, string? CaBundle);

/// <summary>
/// Resolves endpoint, region, credentials and CA bundle with the precedence
/// flags &gt; environment &gt; ~/.tumbler/config &gt; ~/.aws (credentials and config) &gt; built-in defaults.
/// </summary>
internal static class ConnectionResolver
{
    public static ResolvedConnection Resolve(string? endpointFlag, string? regionFlag, string? profileFlag, string? caBundleFlag)
    {
        var profile = ClientConfig.ProfileName(profileFlag);
        var section = ClientConfig.Section(profile);
        // The ~/.aws profile: the section's aws_profile, else the profile named for tumbler (--profile or TUMBLER_PROFILE),
        // else null: AWS_PROFILE or default, as the aws CLI picks.
        var awsProfile = section?.GetValueOrDefault(ClientConfig.AwsProfileName) is { Length: > 0 } named ? named
            : profileFlag ?? Env("TUMBLER_PROFILE");

        var endpoint = endpointFlag
            ?? Env("AWS_ENDPOINT_URL_SECRETS_MANAGER") ?? Env("AWS_ENDPOINT_URL")
            ?? Get(section, ClientConfig.EndpointUrl)
            ?? ConnectionOptions.DefaultEndpoint;
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
        {
            throw new TumblerClientException($"--endpoint-url must be an http:// or https:// URL, got '{endpoint}'.");
        }

        var region = regionFlag
            ?? Env("AWS_REGION") ?? Env("AWS_DEFAULT_REGION")
            ?? Get(section, ClientConfig.Region)
            ?? AwsProfile.ResolveRegion(awsProfile)
            ?? "us-east-1";

        var caBundle = caBundleFlag ?? Env("AWS_CA_BUNDLE") ?? Get(section, ClientConfig.CaBundle);

        return new ResolvedConnection(uri, region, Credentials(profileFlag, profile, section, awsProfile), caBundle);
    }

    private static AwsCredentials Credentials(string? profileFlag, string profile, Dictionary<string, string>? section, string? awsProfile)
    {
        // Without --profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY win over every file (as in the aws CLI).
        if (profileFlag is null && Env("AWS_ACCESS_KEY_ID") is { } id && Env("AWS_SECRET_ACCESS_KEY") is { } secret)
        {
            return new AwsCredentials(id, secret, Env("AWS_SESSION_TOKEN"));
        }
        if (Get(section, ClientConfig.AccessKeyId) is { } fileId && Get(section, ClientConfig.SecretAccessKey) is { } fileSecret)
        {
            return new AwsCredentials(fileId, fileSecret, Get(section, ClientConfig.SessionToken));
        }
        try
        {
            // AwsProfile reads the environment first, then ~/.aws; with a name it reads only ~/.aws.
            return AwsProfile.ResolveCredentials(awsProfile);
        }
        catch (TumblerClientException e)
        {
            throw new TumblerClientException(
                $"{e.Message.TrimEnd('.')}, or run `tumbler configure{(profile == "default" ? "" : " --profile " + profile)}`.");
        }
    }

    private static string? Get(Dictionary<string, string>? section, string key) =>
        section is not null && section.TryGetValue(key, out var value) && value.Length > 0 ? value : null;

    private static string? Env(string name) => ClientConfig.NullIfEmpty(Environment.GetEnvironmentVariable(name));
}
