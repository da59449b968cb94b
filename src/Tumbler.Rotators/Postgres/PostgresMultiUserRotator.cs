using Microsoft.Extensions.Logging;
using Npgsql;

namespace Tumbler.Rotators.Postgres;

/// <summary>
/// <c>SecretsManagerRDSPostgreSQLRotationMultiUser</c> (spec §4.9): alternating users. Each rotation
/// switches between <c>user</c> and <c>user_clone</c>; the master login named by the secret's
/// <c>masterarn</c> creates the other login when needed, makes it a member of the current role (so it
/// has that role's privileges, including grants made to it later), and sets its password, so the
/// current and the previous credentials both keep working.
/// </summary>
public sealed class PostgresMultiUserRotator(RotatorSettings? settings = null, ILogger? logger = null)
    : DatabaseRotationFunction(settings, logger)
{
    /// <summary>The template's clone-name limit (PostgreSQL's 63-byte identifiers).</summary>
    public const int DefaultUsernameCharacterLimit = 63;

    /// <summary>The longest clone name allowed: the setting, else 63.</summary>
    public int UsernameCharacterLimit => Settings.UsernameCharacterLimit ?? DefaultUsernameCharacterLimit;

    protected override string DatabaseName => PostgresServer.DisplayName;
    protected override string DefaultExcludeCharacters => RotatorSettings.PostgreSqlDefaultExcludeCharacters;
    protected override int DefaultPort => PostgresServer.DefaultPort;
    protected override string? DefaultDatabase => PostgresServer.DefaultDatabase;

    protected override void ValidateSecret(DatabaseSecret secret) => PostgresServer.Validate(secret);

    protected override string PendingUsername(DatabaseSecret current) => AlternateUsername(current.Username, UsernameCharacterLimit);

    protected override Task<LoginAttempt> TryLoginAsync(DatabaseSecret secret, CancellationToken ct) =>
        PostgresServer.TryLoginAsync(secret, Settings, Logger, ct);

    protected override Task SetSecretAsync(StepContext context) =>
        MultiUserSetSecretAsync(context, (master, current, pending, ct) => PostgresServer.CloneLoginAsync(
            (NpgsqlConnection)master, current, pending, Settings, Logger, ct));
}
