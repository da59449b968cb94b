using System.Text;
using Tumbler.Core.Access;

namespace Tumbler.Server.Auth;

/// <summary>
/// The root access key pair: from TUMBLER_ROOT_ACCESS_KEY_ID / TUMBLER_ROOT_SECRET_ACCESS_KEY, or a
/// file in AWS shared-credentials format created on first start (mode 0600), so that
/// <c>AWS_SHARED_CREDENTIALS_FILE=DATA_DIR/credentials</c> is all a client needs.
/// </summary>
public static class RootCredentials
{
    public const string AccessKeyIdVariable = "TUMBLER_ROOT_ACCESS_KEY_ID";
    public const string SecretAccessKeyVariable = "TUMBLER_ROOT_SECRET_ACCESS_KEY";

    public static (string AccessKeyId, string SecretAccessKey)? FromEnvironment()
    {
        var id = Environment.GetEnvironmentVariable(AccessKeyIdVariable);
        var secret = Environment.GetEnvironmentVariable(SecretAccessKeyVariable);
        if (string.IsNullOrEmpty(id) && string.IsNullOrEmpty(secret))
        {
            return null;
        }
        if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(secret))
        {
            throw new InvalidOperationException($"Set both {AccessKeyIdVariable} and {SecretAccessKeyVariable}, or neither.");
        }
        return (id, secret);
    }

    public static (string AccessKeyId, string SecretAccessKey) ReadFile(string path)
    {
        string? id = null, secret = null;
        foreach (var line in File.ReadAllLines(path))
        {
            var parts = line.Split('=', 2, StringSplitOptions.TrimEntries);
            if (parts.Length != 2)
            {
                continue;
            }
            if (parts[0] == "aws_access_key_id")
            {
                id = parts[1];
            }
            else if (parts[0] == "aws_secret_access_key")
            {
                secret = parts[1];
            }
        }
        return id is not null && secret is not null ? (id, secret) : throw new InvalidDataException($"{path} has no aws_access_key_id and aws_secret_access_key.");
    }

    /// <summary>A new key pair in the shape AWS issues (AKIA... / 40 characters), written with mode 0600.</summary>
    public static (string AccessKeyId, string SecretAccessKey) CreateFile(string path)
    {
        var (id, secret) = AccessKeys.NewPair();
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using var stream = new FileStream(path, options);
        stream.Write(Encoding.UTF8.GetBytes($"[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"));
        stream.Flush(flushToDisk: true);
        return (id, secret);
    }
}
