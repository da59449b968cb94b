using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;
using Tumbler.Core.Rotation;

namespace Tumbler.Rotators.Postgres;

/// <summary>The connection and SQL shared by the PostgreSQL rotators (spec §4.8, §4.9).</summary>
internal static class PostgresServer
{
    public const string DisplayName = "PostgreSQL";
    public const int DefaultPort = 5432;
    public const string DefaultDatabase = "postgres";
    /// <summary>PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes; longer names are silently truncated by the server.</summary>
    public const int IdentifierByteLimit = 63;

    /// <summary>The template's get_secret_dict checks: engine first, then host, username and password.</summary>
    public static void Validate(DatabaseSecret secret)
    {
        if (secret.Engine is not ("postgres" or "aurora-postgresql"))
        {
            throw new RotationStepException("Database engine must be set to 'postgres' in order to use this rotation lambda");
        }
        foreach (var key in new[] { "host", "username", "password" })
        {
            if (!secret.Has(key))
            {
                throw new RotationStepException($"{key} key is missing from secret JSON");
            }
        }
    }

    /// <summary>
    /// Logs in with a secret. TLS follows its <c>ssl</c> member: absent → TLS if the server offers it
    /// (<see cref="SslMode.Prefer"/>), and a plain retry when the TLS attempt failed below the login
    /// (libpq's <c>prefer</c>); true → <see cref="SslMode.VerifyFull"/> (chain and host name verified,
    /// against the system store or <see cref="RotatorSettings.TlsCaFile"/>), never plain; false → plain.
    /// Only failures to connect or authenticate (an <see cref="NpgsqlException"/> while opening) are a
    /// failed login.
    /// </summary>
    public static async Task<LoginAttempt> TryLoginAsync(DatabaseSecret secret, RotatorSettings settings, ILogger logger, CancellationToken ct)
    {
        switch (secret.Tls)
        {
            case DatabaseTls.Required:
                return (await ConnectAsync(secret, settings, logger, SslMode.VerifyFull, ct)).Attempt;
            case DatabaseTls.Disabled:
                return (await ConnectAsync(secret, settings, logger, SslMode.Disable, ct)).Attempt;
            default:
                var (withTls, serverRefusedLogin) = await ConnectAsync(secret, settings, logger, SslMode.Prefer, ct);
                if (withTls.Connection is not null || serverRefusedLogin)
                {
                    return withTls;
                }
                var (plain, _) = await ConnectAsync(secret, settings, logger, SslMode.Disable, ct);
                return plain.Connection is not null || plain.Failure == withTls.Failure
                    ? plain
                    : LoginAttempt.Failed($"{withTls.Failure}; without TLS: {plain.Failure}");
        }
    }

    /// <returns>The attempt, and whether the server itself refused the login (no point retrying without TLS).</returns>
    private static async Task<(LoginAttempt Attempt, bool ServerRefusedLogin)> ConnectAsync(DatabaseSecret secret, RotatorSettings settings,
        ILogger logger, SslMode sslMode, CancellationToken ct)
    {
        var timeoutSeconds = (int)Math.Max(1, Math.Ceiling(settings.ConnectTimeout.TotalSeconds));
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = secret.Host,
            Port = secret.Port,
            Username = secret.Username,
            Password = secret.Password,
            Database = secret.DbName ?? DefaultDatabase,
            // Verified TLS is "Require" plus our own certificate check (ServerCertificateCheck), which says why it refuses.
            SslMode = sslMode == SslMode.VerifyFull ? SslMode.Require : sslMode,
            Timeout = timeoutSeconds,
            CommandTimeout = 30,
            // A password change must be seen by the very next login: no pooled sessions.
            Pooling = false,
            // Never put parameter values (or other details) into exceptions.
            IncludeErrorDetail = false,
            ApplicationName = "tumbler-rotation",
            // The templates never use GSSAPI encryption; Npgsql's default (prefer) would make a second
            // connection attempt after every failed one.
            GssEncryptionMode = GssEncryptionMode.Disable,
        };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        string? certificateProblem = null;
        if (sslMode == SslMode.VerifyFull)
        {
            var trustedRoots = ServerCertificateCheck.LoadCaFile(settings.TlsCaFile);
            connection.SslClientAuthenticationOptionsCallback = options => options.RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                certificateProblem = ServerCertificateCheck.Verify(certificate, chain, errors, trustedRoots);
                return certificateProblem is null;
            };
        }

        var how = sslMode switch
        {
            SslMode.VerifyFull => "with verified TLS",
            SslMode.Disable => "without TLS",
            _ => "with TLS if offered",
        };
        var (attempt, error) = await DatabaseLogin.OpenAsync(connection, secret, how, timeoutSeconds, logger, ct);
        if (error is null)
        {
            return (attempt, false);
        }
        // 28000 is also pg_hba's "no entry ... SSL encryption", which a plain retry may pass (as libpq's prefer does).
        var refused = error is PostgresException pg && pg.SqlState != PostgresErrorCodes.InvalidAuthorizationSpecification;
        return (DatabaseLogin.Failed(secret, how, ServerCertificateCheck.Describe(certificateProblem, error)), refused);
    }

    /// <summary>
    /// An identifier always double-quoted (what <c>quote_ident</c> yields, also for names it would leave
    /// bare): the name is used exactly as written, case included.
    /// </summary>
    public static string QuoteIdentifier(string name)
    {
        if (name.Length == 0 || name.Contains('\0', StringComparison.Ordinal))
        {
            throw new RotationStepException("A PostgreSQL role name must be non-empty and cannot contain NUL characters");
        }
        if (Encoding.UTF8.GetByteCount(name) > IdentifierByteLimit)
        {
            throw new RotationStepException($"The role name {name} is longer than PostgreSQL's {IdentifierByteLimit}-byte limit");
        }
        return "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>
    /// A string constant for a utility statement (which takes no bind parameters): an escape string
    /// <c>E'…'</c> with backslashes and quotes doubled. Its meaning does not depend on
    /// <c>standard_conforming_strings</c>, and Npgsql always talks UTF-8, so no multi-byte encoding can
    /// swallow a backslash.
    /// </summary>
    public static string Literal(string value)
    {
        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new RotationStepException("A PostgreSQL password cannot contain NUL characters");
        }
        return "E'" + EscapedBody(value) + "'";
    }

    private static string EscapedBody(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal);

    /// <summary>
    /// The password clause's value: the clear password as a literal, or, when the settings ask for it
    /// and the password is printable ASCII (which SASLprep leaves unchanged, so client and server agree
    /// on the bytes), a SCRAM-SHA-256 verifier computed here, which the server stores as it is: the clear
    /// password then never reaches the database (its logs, pg_stat_activity, an auditing extension).
    /// </summary>
    public static (string Sql, string[] Secrets) PasswordValue(string password, RotatorSettings settings, ILogger logger)
    {
        if (settings.PostgreSqlScramVerifier)
        {
            if (password.All(c => c is >= ' ' and <= '~'))
            {
                var verifier = ScramSha256Verifier(password);
                return (Literal(verifier), [password, verifier, EscapedBody(password)]);
            }
            logger.LogWarning("The new password has characters outside printable ASCII: it is sent in clear (as a string literal) instead of as a SCRAM-SHA-256 verifier");
        }
        return (Literal(password), [password, EscapedBody(password)]);
    }

    /// <summary>
    /// A SCRAM-SHA-256 verifier as PostgreSQL stores it (<c>SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey</c>, RFC 5802/7677).
    /// </summary>
    internal static string ScramSha256Verifier(string password, byte[]? salt = null, int iterations = 4096)
    {
        salt ??= RandomNumberGenerator.GetBytes(16);
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        CryptographicOperations.ZeroMemory(salted);
        return $"SCRAM-SHA-256${iterations.ToString(CultureInfo.InvariantCulture)}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}";
    }

    /// <summary>Single user, as that user: <c>ALTER USER "name" WITH PASSWORD E'…'</c>.</summary>
    public static async Task SetOwnPasswordAsync(NpgsqlConnection connection, DatabaseSecret pending, RotatorSettings settings, ILogger logger,
        CancellationToken ct)
    {
        var (value, secrets) = PasswordValue(pending.Password, settings, logger);
        await using var command = new NpgsqlCommand($"ALTER USER {QuoteIdentifier(pending.Username)} WITH PASSWORD {value}", connection);
        await ExecuteAsync(command, $"Setting the password of user {pending.Username}", secrets, logger, ct);
    }

    /// <summary>
    /// Alternating users, as the master, in one transaction: when the pending role does not exist,
    /// <c>CREATE ROLE pending WITH LOGIN PASSWORD …</c>; when it exists, <c>ALTER USER pending WITH PASSWORD …</c>.
    /// When the pending login is the <c>_clone</c> (made, or its turn again), <c>GRANT current TO pending</c> (the
    /// clone gets the role's privileges through membership, also ones granted later; a revoked membership is
    /// restored) and <c>ALTER ROLE pending SET role = current</c>: every session of the clone runs as the original
    /// role, so the objects it creates are owned by that role and stay usable when the original login is current
    /// again (the AWS template leaves them owned by the clone, out of the other login's reach).
    /// </summary>
    public static async Task CloneLoginAsync(NpgsqlConnection master, DatabaseSecret current, DatabaseSecret pending, RotatorSettings settings,
        ILogger logger, CancellationToken ct)
    {
        var pendingRole = QuoteIdentifier(pending.Username);
        var currentRole = QuoteIdentifier(current.Username);
        var (value, secrets) = PasswordValue(pending.Password, settings, logger);
        await using var transaction = await master.BeginTransactionAsync(ct);

        bool exists;
        await using (var find = new NpgsqlCommand("SELECT 1 FROM pg_roles WHERE rolname = @name", master, transaction))
        {
            find.Parameters.AddWithValue("name", pending.Username);
            try
            {
                exists = await find.ExecuteScalarAsync(ct) is not null;
            }
            catch (NpgsqlException e)
            {
                throw new RotationStepException($"Looking up role {pending.Username} failed: {Scrub(e.Message, secrets)}");
            }
        }

        await using (var login = new NpgsqlCommand(exists
            ? $"ALTER USER {pendingRole} WITH PASSWORD {value}"
            : $"CREATE ROLE {pendingRole} WITH LOGIN PASSWORD {value}", master, transaction))
        {
            await ExecuteAsync(login, exists ? $"Setting the password of user {pending.Username}" : $"Creating user {pending.Username}", secrets, logger, ct);
        }
        if (!exists || pending.Username == current.Username + "_clone")
        {
            await using var grant = new NpgsqlCommand($"GRANT {currentRole} TO {pendingRole}", master, transaction);
            await ExecuteAsync(grant, $"Granting role {current.Username} to user {pending.Username}", secrets, logger, ct);
            await using var actAs = new NpgsqlCommand($"ALTER ROLE {pendingRole} SET role = {currentRole}", master, transaction);
            await ExecuteAsync(actAs, $"Making user {pending.Username} act as role {current.Username}", secrets, logger, ct);
        }

        try
        {
            await transaction.CommitAsync(ct);
        }
        catch (NpgsqlException e)
        {
            throw new RotationStepException($"Committing the changes for user {pending.Username} failed: {Scrub(e.Message, secrets)}");
        }
    }

    /// <summary>
    /// Runs a statement; a database error becomes a step error with the secrets removed from its text.
    /// A syntax error's message is withheld whole: it quotes the text "at or near" the error, which in a
    /// statement carrying a password may be a fragment of it that no redaction of the whole value finds.
    /// </summary>
    private static async Task ExecuteAsync(NpgsqlCommand command, string what, string?[] secrets, ILogger logger, CancellationToken ct)
    {
        try
        {
            await command.ExecuteNonQueryAsync(ct);
        }
        catch (NpgsqlException e)
        {
            var message = e is PostgresException { SqlState: PostgresErrorCodes.SyntaxError } syntax
                ? $"{syntax.SqlState}: syntax error (the database's message is withheld because it may quote part of a secret value)"
                : Scrub(e.Message, secrets);
            logger.LogError("{What} failed: {Message}", what, message);
            throw new RotationStepException($"{what} failed: {message}");
        }
    }

    internal static string Scrub(string message, params string?[] secrets) => DatabaseRotationFunction.Redact(message, secrets);
}
