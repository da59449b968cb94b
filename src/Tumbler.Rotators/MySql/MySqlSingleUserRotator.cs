using Microsoft.Extensions.Logging;
using MySqlConnector;

namespace Tumbler.Rotators.MySql;

/// <summary>
/// <c>SecretsManagerRDSMySQLRotationSingleUser</c> and <c>SecretsManagerRDSMariaDBRotationSingleUser</c>
/// (spec §4.5, §4.7): the user logs in with its current (or previous) password and changes its own
/// password to the pending one with SET PASSWORD.
/// </summary>
public sealed class MySqlSingleUserRotator(MySqlFlavor flavor, RotatorSettings? settings = null, ILogger? logger = null)
    : DatabaseRotationFunction(settings, logger)
{
    public MySqlFlavor Flavor { get; } = flavor;

    protected override string DatabaseName => MySqlServer.DisplayName(Flavor);
    protected override string DefaultExcludeCharacters => RotatorSettings.MySqlDefaultExcludeCharacters;
    protected override int DefaultPort => MySqlServer.DefaultPort;

    protected override void ValidateSecret(DatabaseSecret secret) => MySqlServer.Validate(secret, Flavor);

    protected override Task<LoginAttempt> TryLoginAsync(DatabaseSecret secret, CancellationToken ct) =>
        MySqlServer.TryLoginAsync(secret, Settings, Logger, allowUserVariables: false, ct);

    protected override Task SetSecretAsync(StepContext context) =>
        SingleUserSetSecretAsync(context, (connection, pending, ct) => MySqlServer.SetOwnPasswordAsync(
            (MySqlConnection)connection, pending, (command, what, secrets) => ExecuteAsync(command, what, ct, secrets), ct));
}
