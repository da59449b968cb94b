namespace Tumbler.Client.Configuration;

/// <summary>What <see cref="TumblerSecretsConfigurationExtensions.AddTumblerSecrets"/> loads and how it names the keys.</summary>
public sealed class TumblerSecretsOptions
{
    /// <summary>Secrets to load (names or ARNs); their AWSCURRENT version is read.</summary>
    public IList<string> SecretIds { get; set; } = [];

    /// <summary>
    /// Where the keys go. Null (default): under the secret id with '/' as ':', so secret <c>prod/app/db</c>
    /// with JSON member <c>password</c> is <c>prod:app:db:password</c>. Set: under this prefix for every
    /// secret (<c>"Database"</c> gives <c>Database:password</c>; <c>""</c> puts the members at the root).
    /// A secret that is not a JSON object is one key: the prefix (or the mapped id) itself.
    /// </summary>
    public string? Prefix { get; set; }

    /// <summary>
    /// Full control over names: (secret id, member path) -> configuration key, or null to leave the member out.
    /// The member path is "" for a secret that is not a JSON object, and uses ':' for nested members and array
    /// indexes ("hosts:0"), as the JSON configuration provider does. Overrides <see cref="Prefix"/>.
    /// </summary>
    public Func<string, string, string?>? KeyMapping { get; set; }

    /// <summary>
    /// How often to ask (one DescribeSecret per secret) whether AWSCURRENT moved; when it did, the new value
    /// is loaded and the configuration's reload token fires. Null (default): load once.
    /// </summary>
    public TimeSpan? ReloadInterval { get; set; }

    /// <summary>The client to read with; default: <see cref="SecretsManagerClient.FromEnvironment"/> (owned and disposed by the provider).</summary>
    public ISecretsManager? Client { get; set; }

    /// <summary>When true, a secret that cannot be read at the first load is left out instead of failing the configuration build.</summary>
    public bool Optional { get; set; }

    /// <summary>Called when a background reload fails; the previous values stay in place.</summary>
    public Action<Exception>? OnReloadError { get; set; }
}
