namespace Tumbler.Client;

/// <summary>An access key pair (and the session token of temporary credentials).</summary>
public sealed record AwsCredentials(string AccessKeyId, string SecretAccessKey, string? SessionToken = null);

/// <summary>
/// Finds credentials and region the way the AWS CLI and SDKs do, so a tumbler command works wherever
/// `aws` does: explicit values, then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
/// then the profile (AWS_PROFILE or "default") in AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials)
/// and AWS_CONFIG_FILE (~/.aws/config).
/// </summary>
public static class AwsProfile
{
    public static AwsCredentials ResolveCredentials(string? profile = null)
    {
        var id = Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID");
        var secret = Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY");
        if (profile is null && !string.IsNullOrEmpty(id) && !string.IsNullOrEmpty(secret))
        {
            return new AwsCredentials(id, secret, NullIfEmpty(Environment.GetEnvironmentVariable("AWS_SESSION_TOKEN")));
        }
        var name = ProfileName(profile);
        var path = CredentialsFile();
        var section = ReadSection(path, name, configStyle: false) ?? ReadSection(ConfigFile(), name, configStyle: true);
        if (section is not null && section.TryGetValue("aws_access_key_id", out var fileId) && section.TryGetValue("aws_secret_access_key", out var fileSecret))
        {
            return new AwsCredentials(fileId, fileSecret, section.GetValueOrDefault("aws_session_token"));
        }
        throw new TumblerClientException(
            $"No credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add profile '{name}' to {path}.");
    }

    /// <summary>AWS_REGION, AWS_DEFAULT_REGION, then the profile's region; null when none is set.</summary>
    public static string? ResolveRegion(string? profile = null) =>
        NullIfEmpty(Environment.GetEnvironmentVariable("AWS_REGION"))
        ?? NullIfEmpty(Environment.GetEnvironmentVariable("AWS_DEFAULT_REGION"))
        ?? ReadSection(ConfigFile(), ProfileName(profile), configStyle: true)?.GetValueOrDefault("region");

    private static string ProfileName(string? profile) =>
        profile ?? NullIfEmpty(Environment.GetEnvironmentVariable("AWS_PROFILE")) ?? "default";

    private static string CredentialsFile() =>
        NullIfEmpty(Environment.GetEnvironmentVariable("AWS_SHARED_CREDENTIALS_FILE"))
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".aws", "credentials");

    private static string ConfigFile() =>
        NullIfEmpty(Environment.GetEnvironmentVariable("AWS_CONFIG_FILE"))
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".aws", "config");

    /// <summary>One [section] of an INI file; in ~/.aws/config profiles other than default are named "profile NAME".</summary>
    private static Dictionary<string, string>? ReadSection(string path, string profile, bool configStyle)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        var wanted = configStyle && profile != "default" ? $"profile {profile}" : profile;
        Dictionary<string, string>? section = null;
        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.Trim();
            if (line.StartsWith('[') && line.EndsWith(']'))
            {
                if (section is not null)
                {
                    break;
                }
                if (line[1..^1].Trim() == wanted)
                {
                    section = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                }
            }
            else if (section is not null && line.Split('=', 2, StringSplitOptions.TrimEntries) is [var key, var value] && !key.StartsWith('#'))
            {
                section[key] = value;
            }
        }
        return section;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
