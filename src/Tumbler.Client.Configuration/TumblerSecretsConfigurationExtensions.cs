using Microsoft.Extensions.Configuration;

namespace Tumbler.Client.Configuration;

public static class TumblerSecretsConfigurationExtensions
{
    /// <summary>
    /// Adds secrets from Tumbler (or AWS Secrets Manager) as configuration keys, e.g.
    /// <c>builder.Configuration.AddTumblerSecrets(o => { o.SecretIds = ["prod/app/db"]; o.ReloadInterval = TimeSpan.FromMinutes(5); })</c>
    /// then <c>configuration["prod:app:db:password"]</c>.
    /// </summary>
    public static IConfigurationBuilder AddTumblerSecrets(this IConfigurationBuilder builder, Action<TumblerSecretsOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new TumblerSecretsOptions();
        configure(options);
        return builder.Add(new TumblerSecretsConfigurationSource(options));
    }
}

public sealed class TumblerSecretsConfigurationSource(TumblerSecretsOptions options) : IConfigurationSource
{
    public TumblerSecretsOptions Options { get; } = options;

    public IConfigurationProvider Build(IConfigurationBuilder builder) => new TumblerSecretsConfigurationProvider(Options);
}
