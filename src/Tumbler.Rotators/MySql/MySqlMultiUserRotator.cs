using Microsoft.Extensions.Logging;
using MySqlConnector;

namespace Tumbler.Rotators.MySql;

/// <summary>
/// <c>SecretsManagerRDSMySQLRotationMultiUser</c> and <c>SecretsManagerRDSMariaDBRotationMultiUser</c>
/// (spec §4.6, §4.7): alternating users. Each rotation switches between <c>user</c> and
/// <c>user_clone</c>; the master login named by the secret's <c>masterarn</c> creates the other login
/// when needed, gives it the current login's grants and TLS requirement, and resets its password, so
/// the current and the previous credentials both keep working.
/// </summary>
public sealed class MySqlMultiUserRotator(MySqlFlavor flavor, RotatorSettings? settings = null, ILogger? logger = null)
    : DatabaseRotationFunction(settings, logger)
{
    /// <summary>The MySQL template's clone-name limit (the MySQL 5.x username length).</summary>
    public const int MySqlUsernameCharacterLimit = 16;
    /// <summary>The MariaDB template's clone-name limit.</summary>
    public const int MariaDbUsernameCharacterLimit = 80;

    public MySqlFlavor Flavor { get; } = flavor;

    /// <summary>The longest clone name allowed: the setting, else 16 (MySQL) or 80 (MariaDB).</summary>
    public int UsernameCharacterLimit => Settings.UsernameCharacterLimit
        ?? (Flavor == MySqlFlavor.MariaDb ? MariaDbUsernameCharacterLimit : MySqlUsernameCharacterLimit);

    protected override string DatabaseName => MySqlServer.DisplayName(Flavor);
    protected override string DefaultExcludeCharacters => RotatorSettings.MySqlDefaultExcludeCharacters;
    protected override int DefaultPort => MySqlServer.DefaultPort;

    protected override void ValidateSecret(DatabaseSecret secret) => MySqlServer.Validate(secret, Flavor);

    protected override string PendingUsername(DatabaseSecret current) => AlternateUsername(current.Username, UsernameCharacterLimit);

    // The copied grant statements may contain @`host` account parts that are not parameters.
    protected override Task<LoginAttempt> TryLoginAsync(DatabaseSecret secret, CancellationToken ct) =>
        MySqlServer.TryLoginAsync(secret, Settings, Logger, allowUserVariables: true, ct);

    protected override Task SetSecretAsync(StepContext context) =>
        MultiUserSetSecretAsync(context, (master, current, pending, ct) => MySqlServer.CloneLoginAsync(
            (MySqlConnection)master, current, pending, (command, what, secrets) => ExecuteAsync(command, what, ct, secrets), ct));
}
