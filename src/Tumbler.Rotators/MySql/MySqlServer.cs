using System.Data.Common;
using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging;
using MySqlConnector;
using Tumbler.Core.Rotation;

namespace Tumbler.Rotators.MySql;

/// <summary>Which AWS template a MySQL-protocol rotator reproduces: they differ in the engine they accept.</summary>
public enum MySqlFlavor
{
    /// <summary><c>SecretsManagerRDSMySQLRotation*</c>: engine <c>mysql</c> or <c>aurora-mysql</c> (works against MariaDB too).</summary>
    MySql,
    /// <summary><c>SecretsManagerRDSMariaDBRotation*</c>: engine <c>mariadb</c>.</summary>
    MariaDb,
}

/// <summary>The connection and SQL shared by the MySQL and MariaDB rotators (spec §4.5-§4.7).</summary>
internal static class MySqlServer
{
    public const int DefaultPort = 3306;
    /// <summary>The parameter that stands for the other login in copied grant statements.</summary>
    internal const string LoginParameter = "@tumbler_login";

    public static string DisplayName(MySqlFlavor flavor) => flavor == MySqlFlavor.MariaDb ? "MariaDB" : "MySQL";

    /// <summary>The template's get_secret_dict checks: engine first, then host, username and password.</summary>
    public static void Validate(DatabaseSecret secret, MySqlFlavor flavor)
    {
        var engine = secret.Engine;
        var ok = flavor == MySqlFlavor.MariaDb ? engine == "mariadb" : engine is "mysql" or "aurora-mysql";
        if (!ok)
        {
            throw new RotationStepException(flavor == MySqlFlavor.MariaDb
                ? "Database engine must be set to 'mariadb' in order to use this rotation lambda"
                : "Database engine must be set to 'mysql' in order to use this rotation lambda");
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
    /// Logs in with a secret. TLS follows its <c>ssl</c> member: absent → TLS if the server offers it,
    /// else (or when that attempt fails) a plain connection, as the templates fall back; true → TLS with
    /// the certificate chain and host name verified, no fallback; false → plain. Only failures to
    /// connect or authenticate (<see cref="MySqlException"/> while opening) are a failed login.
    /// </summary>
    public static async Task<LoginAttempt> TryLoginAsync(DatabaseSecret secret, RotatorSettings settings, ILogger logger,
        bool allowUserVariables, CancellationToken ct)
    {
        switch (secret.Tls)
        {
            case DatabaseTls.Required:
                return await ConnectAsync(secret, settings, logger, MySqlSslMode.VerifyFull, allowUserVariables, ct);
            case DatabaseTls.Disabled:
                return await ConnectAsync(secret, settings, logger, MySqlSslMode.None, allowUserVariables, ct);
            default:
                var withTls = await ConnectAsync(secret, settings, logger, MySqlSslMode.Preferred, allowUserVariables, ct);
                if (withTls.Connection is not null)
                {
                    return withTls;
                }
                var plain = await ConnectAsync(secret, settings, logger, MySqlSslMode.None, allowUserVariables, ct);
                return plain.Connection is not null || plain.Failure == withTls.Failure
                    ? plain
                    : LoginAttempt.Failed($"{withTls.Failure}; without TLS: {plain.Failure}");
        }
    }

    private static async Task<LoginAttempt> ConnectAsync(DatabaseSecret secret, RotatorSettings settings, ILogger logger,
        MySqlSslMode sslMode, bool allowUserVariables, CancellationToken ct)
    {
        var verify = sslMode == MySqlSslMode.VerifyFull;
        var timeoutSeconds = (uint)Math.Max(1, Math.Ceiling(settings.ConnectTimeout.TotalSeconds));
        var builder = new MySqlConnectionStringBuilder
        {
            Server = secret.Host,
            Port = (uint)secret.Port,
            UserID = secret.Username,
            Password = secret.Password,
            Database = secret.DbName ?? "",
            // Verified TLS is "Required" plus our own certificate check (ServerCertificateCheck).
            SslMode = verify ? MySqlSslMode.Required : sslMode,
            ConnectionTimeout = timeoutSeconds,
            DefaultCommandTimeout = 30,
            // A password change must be seen by the very next login: no pooled sessions.
            Pooling = false,
            AllowUserVariables = allowUserVariables,
            // MySQL 8's caching_sha2_password over a plain connection needs the server's RSA key; with
            // verified TLS the password travels inside TLS and the key is never needed.
            AllowPublicKeyRetrieval = !verify,
        };
        var connection = new MySqlConnection(builder.ConnectionString);
        string? certificateProblem = null;
        if (verify)
        {
            // MySqlConnector's own VerifyFull lets a handshake with an untrusted certificate go on to the
            // login and checks the certificate only afterwards (MariaDB's password-bound certificate
            // fingerprint), so a man in the middle would receive the login, and the password itself when
            // it asks for mysql_clear_password. This callback refuses the certificate during the TLS
            // handshake, before anything of the login is sent.
            var trustedRoots = ServerCertificateCheck.LoadCaFile(settings.TlsCaFile);
            connection.RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                certificateProblem = ServerCertificateCheck.Verify(certificate, chain, errors, trustedRoots);
                return certificateProblem is null;
            };
        }

        var how = sslMode switch
        {
            MySqlSslMode.VerifyFull => "with verified TLS",
            MySqlSslMode.None => "without TLS",
            _ => "with TLS if offered",
        };
        var (attempt, error) = await DatabaseLogin.OpenAsync(connection, secret, how, (int)timeoutSeconds, logger, ct);
        return error is null
            ? attempt
            : DatabaseLogin.Failed(secret, how, ServerCertificateCheck.Describe(certificateProblem, error));
    }

    public static async Task<string> ServerVersionAsync(MySqlConnection connection, CancellationToken ct)
    {
        await using var command = new MySqlCommand("SELECT VERSION()", connection);
        return Convert.ToString(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture) ?? "";
    }

    /// <summary>
    /// Whether a password is given to SET PASSWORD through <c>PASSWORD()</c>. The templates use a plain
    /// literal only when the version starts with 8 (MySQL 8.0); MySQL 9 and later have no PASSWORD()
    /// either, so here every MySQL from 8 on takes the literal. MariaDB (every version) and MySQL 5.x keep
    /// <c>PASSWORD()</c>, exactly as the templates do.
    /// </summary>
    public static bool UsesPasswordFunction(string version)
    {
        if (version.Contains("MariaDB", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        var digits = 0;
        while (digits < version.Length && char.IsAsciiDigit(version[digits]))
        {
            digits++;
        }
        return !int.TryParse(version.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out var major) || major < 8;
    }

    /// <summary>
    /// Single user, as that user: <c>SET PASSWORD = PASSWORD(?)</c>, or <c>SET PASSWORD = ?</c> on MySQL 8+.
    /// (Not <c>ALTER USER CURRENT_USER()</c>: MariaDB requires the CREATE USER privilege for it even on
    /// one's own account, while any account may SET PASSWORD for itself.)
    /// </summary>
    public static async Task SetOwnPasswordAsync(MySqlConnection connection, DatabaseSecret pending, Func<DbCommand, string, string?[], Task> execute, CancellationToken ct)
    {
        var version = await ServerVersionAsync(connection, ct);
        await using var command = new MySqlCommand(
            UsesPasswordFunction(version) ? "SET PASSWORD = PASSWORD(@password)" : "SET PASSWORD = @password", connection);
        command.Parameters.AddWithValue("@password", pending.Password);
        await execute(command, $"Setting the password of user {pending.Username}", [pending.Password]);
    }

    /// <summary>
    /// Alternating users, as the master (spec §4.6, §4.7): creates the other login <c>'user'@'%'</c> when it
    /// does not exist, grants it every privilege <c>SHOW GRANTS</c> lists for the current login, copies
    /// the current login's TLS requirement, and sets its password last.
    /// </summary>
    /// <remarks>
    /// The new login is created with a random password nobody knows, not with the pending one as the
    /// MySQL template does: the pending password starts working only after the grants are in place, so
    /// a crash in between cannot let a retry's "pending login works" shortcut skip the grants. The
    /// MariaDB template's <c>GRANT … IDENTIFIED BY</c> (create and set the password in every grant) is
    /// replaced by this same sequence: the end state is identical, and it is the form MySQL 8 accepts too.
    /// </remarks>
    public static async Task CloneLoginAsync(MySqlConnection master, DatabaseSecret current, DatabaseSecret pending,
        Func<DbCommand, string, string?[], Task> execute, CancellationToken ct)
    {
        var secrets = new[] { pending.Password, current.Password };

        await using (var exists = new MySqlCommand("SELECT COUNT(*) FROM mysql.user WHERE User = @user AND Host = '%'", master))
        {
            exists.Parameters.AddWithValue("@user", pending.Username);
            long count;
            try
            {
                count = Convert.ToInt64(await exists.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
            }
            catch (MySqlException e)
            {
                throw new RotationStepException($"Looking up user {pending.Username} in mysql.user failed: {Scrub(e.Message, secrets)}");
            }
            if (count == 0)
            {
                await using var create = new MySqlCommand("CREATE USER @user IDENTIFIED BY @password", master);
                create.Parameters.AddWithValue("@user", pending.Username);
                create.Parameters.AddWithValue("@password", UnknowablePassword());
                await execute(create, $"Creating user {pending.Username}", secrets);
            }
        }

        var grants = new List<string>();
        await using (var show = new MySqlCommand("SHOW GRANTS FOR @user", master))
        {
            show.Parameters.AddWithValue("@user", current.Username);
            try
            {
                await using var reader = await show.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    grants.Add(reader.GetString(0));
                }
            }
            catch (MySqlException e)
            {
                throw new RotationStepException($"SHOW GRANTS for user {current.Username} failed: {Scrub(e.Message, secrets)}");
            }
        }
        foreach (var grant in grants)
        {
            await using var copy = new MySqlCommand(RewriteGrant(grant, current.Username), master);
            copy.Parameters.AddWithValue(LoginParameter, pending.Username);
            await execute(copy, $"Copying a grant of user {current.Username} to user {pending.Username}", secrets);
        }

        var version = await ServerVersionAsync(master, ct);
        await CopyTlsRequirementAsync(master, current, pending, version, execute, secrets, ct);

        await using var setPassword = new MySqlCommand(
            UsesPasswordFunction(version) ? "SET PASSWORD FOR @user = PASSWORD(@password)" : "SET PASSWORD FOR @user = @password", master);
        setPassword.Parameters.AddWithValue("@user", pending.Username);
        setPassword.Parameters.AddWithValue("@password", pending.Password);
        await execute(setPassword, $"Setting the password of user {pending.Username}", secrets);
    }

    private static async Task CopyTlsRequirementAsync(MySqlConnection master, DatabaseSecret current, DatabaseSecret pending, string version,
        Func<DbCommand, string, string?[], Task> execute, string?[] secrets, CancellationToken ct)
    {
        string sslType, cipher, issuer, subject;
        await using (var query = new MySqlCommand(
            "SELECT ssl_type, ssl_cipher, x509_issuer, x509_subject FROM mysql.user WHERE User = @user AND Host = '%'", master))
        {
            query.Parameters.AddWithValue("@user", current.Username);
            try
            {
                await using var reader = await query.ExecuteReaderAsync(ct);
                if (!await reader.ReadAsync(ct))
                {
                    throw new RotationStepException($"User {current.Username}@'%' is not in mysql.user: its TLS requirement cannot be copied");
                }
                sslType = Text(reader.GetValue(0));
                cipher = Text(reader.GetValue(1));
                issuer = Text(reader.GetValue(2));
                subject = Text(reader.GetValue(3));
            }
            catch (MySqlException e)
            {
                throw new RotationStepException($"Reading the TLS requirement of user {current.Username} failed: {Scrub(e.Message, secrets)}");
            }
        }

        await using var command = new MySqlCommand { Connection = master };
        command.Parameters.AddWithValue("@user", pending.Username);
        string requirement;
        switch (sslType.ToUpperInvariant())
        {
            case "":
                requirement = "NONE";
                break;
            case "ANY":
                requirement = "SSL";
                break;
            case "X509":
                requirement = "X509";
                break;
            default:
                var parts = new List<string>();
                foreach (var (name, value) in new[] { ("CIPHER", cipher), ("ISSUER", issuer), ("SUBJECT", subject) })
                {
                    if (value.Length > 0)
                    {
                        var parameter = "@" + name.ToLowerInvariant();
                        parts.Add($"{name} {parameter}");
                        command.Parameters.AddWithValue(parameter, value);
                    }
                }
                requirement = parts.Count == 0 ? "SSL" : string.Join(" AND ", parts);
                break;
        }
        command.CommandText = version.StartsWith("5.6", StringComparison.Ordinal)
            ? $"GRANT USAGE ON *.* TO @user REQUIRE {requirement}"
            : $"ALTER USER @user REQUIRE {requirement}";
        await execute(command, $"Copying the TLS requirement of user {current.Username} to user {pending.Username}", secrets);
    }

    /// <summary>
    /// Turns one line of <c>SHOW GRANTS FOR current</c> into the same statement for the other login
    /// (<see cref="LoginParameter"/>). Like the templates, it keeps what precedes <c>TO account</c>; unlike
    /// them it also keeps <c>WITH GRANT OPTION</c>/<c>WITH ADMIN OPTION</c>, drops MariaDB's
    /// <c>IDENTIFIED BY PASSWORD '…'</c> (the current login's hash), and handles MariaDB's
    /// <c>SET DEFAULT ROLE … FOR account</c> and MySQL's partial-revoke <c>REVOKE … FROM account</c>.
    /// </summary>
    internal static string RewriteGrant(string statement, string currentUser)
    {
        string[] accounts =
        [
            "`" + currentUser.Replace("`", "``", StringComparison.Ordinal) + "`@`%`",
            "'" + currentUser + "'@'%'",
            "'" + currentUser.Replace("'", "\\'", StringComparison.Ordinal) + "'@'%'",
            "'" + currentUser.Replace("'", "''", StringComparison.Ordinal) + "'@'%'",
        ];
        var keyword = statement.StartsWith("SET DEFAULT ROLE ", StringComparison.OrdinalIgnoreCase) ? " FOR "
            : statement.StartsWith("REVOKE ", StringComparison.OrdinalIgnoreCase) ? " FROM "
            : " TO ";
        foreach (var account in accounts)
        {
            var at = statement.LastIndexOf(keyword + account, StringComparison.Ordinal);
            if (at < 0)
            {
                continue;
            }
            var rest = statement[(at + keyword.Length + account.Length)..];
            var options = new StringBuilder();
            if (keyword == " TO " && rest.Contains("WITH", StringComparison.OrdinalIgnoreCase))
            {
                if (rest.Contains("GRANT OPTION", StringComparison.OrdinalIgnoreCase))
                {
                    options.Append(" WITH GRANT OPTION");
                }
                else if (rest.Contains("ADMIN OPTION", StringComparison.OrdinalIgnoreCase))
                {
                    options.Append(" WITH ADMIN OPTION");
                }
            }
            return statement[..at] + keyword + LoginParameter + options;
        }

        // The templates' rule when the account is spelled some other way: the text before the first " TO ".
        var to = statement.IndexOf(" TO ", StringComparison.Ordinal);
        if (keyword != " TO " || to < 0)
        {
            throw new RotationStepException($"A SHOW GRANTS line for user {currentUser} has an unexpected form; the grants cannot be copied");
        }
        return statement[..to] + " TO " + LoginParameter;
    }

    /// <summary>A password nobody knows, for a login whose real password is set once its grants are in place.</summary>
    /// (It ends with one character of every class, so a server-side password policy accepts it.)
    private static string UnknowablePassword() =>
        RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 40) + "_Aa1";

    private static string Text(object? value) => value switch
    {
        null or DBNull => "",
        byte[] bytes => Encoding.UTF8.GetString(bytes),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };

    internal static string Scrub(string message, params string?[] secrets) => DatabaseRotationFunction.Redact(message, secrets);
}
