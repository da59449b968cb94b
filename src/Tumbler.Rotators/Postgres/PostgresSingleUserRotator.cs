using Microsoft.Extensions.Logging;
using Npgsql;

namespace Tumbler.Rotators.Postgres;

/// <summary>
/// <c>SecretsManagerRDSPostgreSQLRotationSingleUser</c> (spec §4.8): the user logs in with its current
/// (or previous) password and changes its own password to the pending one with
/// <c>ALTER USER "name" WITH PASSWORD …</c> (the clear password as an escape-string literal, or a
/// SCRAM-SHA-256 verifier when <see cref="RotatorSettings.PostgreSqlScramVerifier"/> is set).
/// </summary>
public sealed class PostgresSingleUserRotator(RotatorSettings? settings = null, ILogger? logger = null)
    : DatabaseRotationFunction(settings, logger)
{
    protected override string DatabaseName => PostgresServer.DisplayName;
    protected override string DefaultExcludeCharacters => RotatorSettings.PostgreSqlDefaultExcludeCharacters;
    protected override int DefaultPort => PostgresServer.DefaultPort;
    protected override string? DefaultDatabase => PostgresServer.DefaultDatabase;

    protected override void ValidateSecret(DatabaseSecret secret) => PostgresServer.Validate(secret);

    protected override Task<LoginAttempt> TryLoginAsync(DatabaseSecret secret, CancellationToken ct) =>
        PostgresServer.TryLoginAsync(secret, Settings, Logger, ct);

    protected override Task SetSecretAsync(StepContext context) =>
        SingleUserSetSecretAsync(context, (connection, pending, ct) => PostgresServer.SetOwnPasswordAsync(
            (NpgsqlConnection)connection, pending, Settings, Logger, ct));
}
