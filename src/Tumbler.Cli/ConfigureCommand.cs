using System.CommandLine;
using System.Text;
using Tumbler.Client;

namespace Tumbler.Cli;

/// <summary>
/// <c>tumbler configure</c>: writes a profile of ~/.tumbler/config (endpoint, region, keys or an ~/.aws profile,
/// CA bundle), file mode 0600. With no value options on a terminal it asks, as <c>aws configure</c> does.
/// The secret access key is never needed in argv: <c>--secret-access-key -</c> reads it from standard input.
/// </summary>
internal static class ConfigureCommand
{
    public static Command Create()
    {
        var profile = new Option<string?>("--profile") { Description = "Profile (section) to write (default: TUMBLER_PROFILE, AWS_PROFILE, else default)." };
        var endpoint = new Option<string?>("--endpoint-url") { Description = "The Tumbler server, e.g. https://tumbler.example:8787." };
        var region = new Option<string?>("--region") { Description = "Region to sign for." };
        var accessKeyId = new Option<string?>("--access-key-id") { Description = "Access key id (replaces --aws-profile)." };
        var secretAccessKey = new Option<string?>("--secret-access-key")
        {
            Description = "Secret access key; '-' reads it from standard input (preferred: argv is visible to other users in ps).",
        };
        var awsProfile = new Option<string?>("--aws-profile") { Description = "Take the keys from this profile of ~/.aws/credentials instead (replaces stored keys)." };
        var caBundle = new Option<string?>("--ca-bundle") { Description = "PEM file of the CA (or self-signed certificate) to trust for HTTPS." };

        var command = new Command("configure", "Write a profile of ~/.tumbler/config (mode 0600): endpoint, region, access keys or an ~/.aws profile, CA bundle. " +
            "Without options on a terminal, asks for each. An empty value ('') removes a setting.")
        {
            profile, endpoint, region, accessKeyId, secretAccessKey, awsProfile, caBundle,
        };
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                var path = ClientConfig.FilePath;
                var name = ClientConfig.ProfileName(parse.GetValue(profile));
                var sections = ClientConfig.Read(path);
                var index = sections.FindLastIndex(s => s.Name == name);
                if (index < 0)
                {
                    sections.Add((name, new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)));
                    index = sections.Count - 1;
                }
                var values = sections[index].Values;

                var given = new Dictionary<string, string?>
                {
                    [ClientConfig.EndpointUrl] = parse.GetValue(endpoint),
                    [ClientConfig.Region] = parse.GetValue(region),
                    [ClientConfig.AccessKeyId] = parse.GetValue(accessKeyId),
                    [ClientConfig.SecretAccessKey] = parse.GetValue(secretAccessKey),
                    [ClientConfig.AwsProfileName] = parse.GetValue(awsProfile),
                    [ClientConfig.CaBundle] = parse.GetValue(caBundle),
                };
                if (given[ClientConfig.SecretAccessKey] == "-")
                {
                    given[ClientConfig.SecretAccessKey] = (await Console.In.ReadToEndAsync(ct)).Trim();
                }
                if (given.Values.All(v => v is null))
                {
                    if (Console.IsInputRedirected)
                    {
                        throw new TumblerClientException("nothing to configure: give --endpoint-url, --region, --access-key-id, --secret-access-key -, --aws-profile or --ca-bundle.");
                    }
                    Prompt(values, given);
                }

                if (given[ClientConfig.AccessKeyId] is { Length: > 0 } || given[ClientConfig.SecretAccessKey] is { Length: > 0 })
                {
                    values.Remove(ClientConfig.AwsProfileName);
                    values.Remove(ClientConfig.SessionToken);
                }
                if (given[ClientConfig.AwsProfileName] is { Length: > 0 })
                {
                    values.Remove(ClientConfig.AccessKeyId);
                    values.Remove(ClientConfig.SecretAccessKey);
                    values.Remove(ClientConfig.SessionToken);
                }
                foreach (var (key, value) in given)
                {
                    if (value is null)
                    {
                        continue;
                    }
                    if (value.Length == 0)
                    {
                        values.Remove(key);
                    }
                    else
                    {
                        if (value.Contains('\n', StringComparison.Ordinal) || value.Contains('\r', StringComparison.Ordinal))
                        {
                            throw new TumblerClientException($"{key} must be one line.");
                        }
                        if (key == ClientConfig.EndpointUrl && !(Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
                        {
                            throw new TumblerClientException($"--endpoint-url must be an http:// or https:// URL, got '{value}'.");
                        }
                        values[key] = key == ClientConfig.CaBundle ? Path.GetFullPath(value) : value;
                    }
                }
                if (values.ContainsKey(ClientConfig.AccessKeyId) != values.ContainsKey(ClientConfig.SecretAccessKey))
                {
                    throw new TumblerClientException("give both --access-key-id and --secret-access-key (or --aws-profile).");
                }
                ClientConfig.Write(path, sections);
                await Console.Error.WriteLineAsync($"Wrote profile '{name}' to {path}.");
                return 0;
            }
            catch (Exception e) when (e is TumblerClientException or IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"tumbler: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>Asks for each setting, showing the current one (keys masked); Enter keeps it.</summary>
    private static void Prompt(Dictionary<string, string> current, Dictionary<string, string?> given)
    {
        string? Ask(string label, string key, bool secret = false)
        {
            var shown = current.TryGetValue(key, out var value) ? secret || key == ClientConfig.AccessKeyId ? Mask(value) : value : "None";
            Console.Error.Write($"{label} [{shown}]: ");
            var answer = secret ? ReadHidden() : Console.ReadLine();
            return string.IsNullOrWhiteSpace(answer) ? null : answer.Trim();
        }
        given[ClientConfig.EndpointUrl] = Ask("Tumbler endpoint URL", ClientConfig.EndpointUrl);
        given[ClientConfig.Region] = Ask("Region", ClientConfig.Region);
        given[ClientConfig.AccessKeyId] = Ask("Access key id (empty: keep, or use an ~/.aws profile)", ClientConfig.AccessKeyId);
        if (given[ClientConfig.AccessKeyId] is not null)
        {
            given[ClientConfig.SecretAccessKey] = Ask("Secret access key", ClientConfig.SecretAccessKey, secret: true);
        }
        else
        {
            given[ClientConfig.AwsProfileName] = Ask("Profile of ~/.aws to take the keys from", ClientConfig.AwsProfileName);
        }
        given[ClientConfig.CaBundle] = Ask("CA bundle (PEM file, for HTTPS)", ClientConfig.CaBundle);
    }

    private static string Mask(string value) => value.Length <= 4 ? "****" : new string('*', 16) + value[^4..];

    private static string ReadHidden()
    {
        var text = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
            {
                Console.Error.WriteLine();
                return text.ToString();
            }
            if (key.Key == ConsoleKey.Backspace)
            {
                if (text.Length > 0)
                {
                    text.Length--;
                }
            }
            else if (!char.IsControl(key.KeyChar))
            {
                text.Append(key.KeyChar);
            }
        }
    }
}
