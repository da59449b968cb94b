using System.Data.Common;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;

namespace Tumbler.Rotators;

/// <summary>
/// What every AWS database rotation template does, independent of the database engine (spec §4.4):
/// the staging checks of the handler, <c>createSecret</c>, <c>finishSecret</c>, and the two
/// <c>setSecret</c> flows (single user: the user changes its own password; alternating users: a master
/// login resets the other login) with their confused-deputy checks. An engine supplies the secret
/// validation, the login, and the SQL.
/// </summary>
/// <remarks>
/// Errors are <see cref="RotationStepException"/>s whose messages are the templates' texts (and never
/// contain a password); errors of the Secrets Manager calls propagate as the client raised them, as
/// they do out of a Lambda function.
/// </remarks>
public abstract class DatabaseRotationFunction : IRotationFunction
{
    public const string Current = "AWSCURRENT";
    public const string Pending = "AWSPENDING";
    public const string Previous = "AWSPREVIOUS";
    private const string CloneSuffix = "_clone";

    protected DatabaseRotationFunction(RotatorSettings? settings, ILogger? logger)
    {
        Settings = settings ?? RotatorSettings.Default;
        Logger = logger ?? NullLogger.Instance;
    }

    public RotatorSettings Settings { get; }
    protected ILogger Logger { get; }

    /// <summary>How logs and errors name the database ("MySQL", "MariaDB", "PostgreSQL").</summary>
    protected abstract string DatabaseName { get; }
    /// <summary>The excluded characters when the settings name none.</summary>
    protected abstract string DefaultExcludeCharacters { get; }
    /// <summary>The port when the secret has none.</summary>
    protected abstract int DefaultPort { get; }
    /// <summary>The database when the secret has no <c>dbname</c> (none for MySQL, <c>postgres</c> for PostgreSQL).</summary>
    protected virtual string? DefaultDatabase => null;

    /// <summary>
    /// Checks a secret's JSON as the template's <c>get_secret_dict</c> does (engine, required keys) and
    /// throws a <see cref="RotationStepException"/> with the template's message when it is not usable.
    /// </summary>
    protected abstract void ValidateSecret(DatabaseSecret secret);

    /// <summary>The username of the pending secret: the same user (single user) or the other login (alternating users).</summary>
    protected virtual string PendingUsername(DatabaseSecret current) => current.Username;

    /// <summary>Makes the pending credentials valid on the database (the step must be idempotent).</summary>
    protected abstract Task SetSecretAsync(StepContext context);

    /// <summary>
    /// Opens a connection with the secret's credentials, or reports why that failed. Only an
    /// authentication or connection failure is a failed login; anything else throws.
    /// </summary>
    protected abstract Task<LoginAttempt> TryLoginAsync(DatabaseSecret secret, CancellationToken ct);

    /// <summary>The templates' testSecret: log in with the pending secret and run <c>SELECT NOW()</c>.</summary>
    protected virtual async Task TestSecretAsync(StepContext context)
    {
        var pending = await GetSecretAsync(context, context.Arn, Pending, context.Token);
        var login = await TryLoginAsync(pending, context.CancellationToken);
        if (login.Connection is not { } connection)
        {
            Logger.LogError("testSecret: Unable to log into database with pending secret of secret ARN {Arn}: {Failure}", context.Arn, login.Failure);
            throw Fail($"Unable to log into database with pending secret of secret ARN {context.Arn}", login.Failure);
        }
        await using (connection)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT NOW()";
            await ExecuteAsync(command, "SELECT NOW()", context.CancellationToken, pending.Password);
        }
        Logger.LogInformation("testSecret: Successfully signed into {Database} DB with AWSPENDING secret in {Arn}.", DatabaseName, context.Arn);
    }

    public async Task InvokeAsync(RotationEvent rotationEvent, ISecretsManagerClient secrets, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(rotationEvent);
        ArgumentNullException.ThrowIfNull(secrets);
        var arn = rotationEvent.SecretId;
        var token = rotationEvent.ClientRequestToken;
        if (string.IsNullOrEmpty(arn) || string.IsNullOrEmpty(token) || string.IsNullOrEmpty(rotationEvent.Step))
        {
            throw new RotationStepException("The rotation event must name SecretId, ClientRequestToken and Step.");
        }

        // Make sure the version is staged correctly.
        var metadata = await secrets.DescribeSecretAsync(new SecretIdRequest { SecretId = arn }, ct);
        if (metadata.RotationEnabled == false)
        {
            Logger.LogError("Secret {Arn} is not enabled for rotation", arn);
            throw new RotationStepException($"Secret {arn} is not enabled for rotation");
        }
        var versions = metadata.VersionIdsToStages ?? new Dictionary<string, IReadOnlyList<string>>();
        if (!versions.TryGetValue(token, out var stages))
        {
            Logger.LogError("Secret version {Token} has no stage for rotation of secret {Arn}.", token, arn);
            throw new RotationStepException($"Secret version {token} has no stage for rotation of secret {arn}.");
        }
        if (stages.Contains(Current))
        {
            Logger.LogInformation("Secret version {Token} already set as AWSCURRENT for secret {Arn}.", token, arn);
            return;
        }
        if (!stages.Contains(Pending))
        {
            Logger.LogError("Secret version {Token} not set as AWSPENDING for rotation of secret {Arn}.", token, arn);
            throw new RotationStepException($"Secret version {token} not set as AWSPENDING for rotation of secret {arn}.");
        }

        var context = new StepContext(rotationEvent, secrets, arn, token, ct);
        switch (rotationEvent.Step)
        {
            case RotationStep.CreateSecret:
                await CreateSecretAsync(context);
                break;
            case RotationStep.SetSecret:
                await SetSecretAsync(context);
                break;
            case RotationStep.TestSecret:
                await TestSecretAsync(context);
                break;
            case RotationStep.FinishSecret:
                await FinishSecretAsync(context);
                break;
            default:
                Logger.LogError("lambda_handler: Invalid step parameter {Step} for secret {Arn}", rotationEvent.Step, arn);
                throw new RotationStepException($"Invalid step parameter {rotationEvent.Step} for secret {arn}");
        }
    }

    /// <summary>
    /// createSecret: keeps a pending value that already exists (a retry), otherwise stores a copy of the
    /// current JSON with a new password (and the pending username) as the AWSPENDING version.
    /// </summary>
    protected virtual async Task CreateSecretAsync(StepContext context)
    {
        var current = await GetSecretAsync(context, context.Arn, Current, null);
        try
        {
            await GetSecretAsync(context, context.Arn, Pending, context.Token);
            Logger.LogInformation("createSecret: Successfully retrieved secret for {Arn}.", context.Arn);
            return;
        }
        catch (ServiceException e) when (e.ErrorCode == ErrorCodes.ResourceNotFound)
        {
            // No value yet for this version: make one.
        }

        var username = PendingUsername(current);
        var password = await context.Secrets.GetRandomPasswordAsync(Settings.ToPasswordRequest(DefaultExcludeCharacters), context.CancellationToken);
        var pending = current.With(username, password.RandomPassword);
        await context.Secrets.PutSecretValueAsync(new PutSecretValueRequest
        {
            SecretId = context.Arn,
            ClientRequestToken = context.Token,
            SecretString = pending.ToJson(),
            VersionStages = [Pending],
            RotationToken = context.Event.RotationToken,
        }, context.CancellationToken);
        Logger.LogInformation("createSecret: Successfully put secret for ARN {Arn} and version {Token}.", context.Arn, context.Token);
    }

    /// <summary>finishSecret: moves AWSCURRENT (and so AWSPREVIOUS) to the token's version; leaves AWSPENDING alone.</summary>
    protected virtual async Task FinishSecretAsync(StepContext context)
    {
        var metadata = await context.Secrets.DescribeSecretAsync(new SecretIdRequest { SecretId = context.Arn }, context.CancellationToken);
        string? currentVersion = null;
        foreach (var (version, stages) in metadata.VersionIdsToStages ?? new Dictionary<string, IReadOnlyList<string>>())
        {
            if (stages.Contains(Current))
            {
                if (version == context.Token)
                {
                    Logger.LogInformation("finishSecret: Version {Version} already marked as AWSCURRENT for {Arn}", version, context.Arn);
                    return;
                }
                currentVersion = version;
                break;
            }
        }
        await context.Secrets.UpdateSecretVersionStageAsync(new UpdateSecretVersionStageRequest
        {
            SecretId = context.Arn,
            VersionStage = Current,
            MoveToVersionId = context.Token,
            RemoveFromVersionId = currentVersion,
        }, context.CancellationToken);
        Logger.LogInformation("finishSecret: Successfully set AWSCURRENT stage to version {Token} for secret {Arn}.", context.Token, context.Arn);
    }

    /// <summary>
    /// The single-user setSecret of every template: done when the pending login already works; the
    /// pending user and host must be the current ones; log in with the current secret, else with the
    /// previous one (with the current <c>ssl</c> setting, and again the same user and host); then
    /// <paramref name="setOwnPassword"/> runs as that user.
    /// </summary>
    protected async Task SingleUserSetSecretAsync(StepContext context, Func<DbConnection, DatabaseSecret, CancellationToken, Task> setOwnPassword)
    {
        var ct = context.CancellationToken;
        DatabaseSecret? previous;
        try
        {
            previous = await GetSecretAsync(context, context.Arn, Previous, null);
        }
        catch (Exception e) when (e is ServiceException { ErrorCode: ErrorCodes.ResourceNotFound } or RotationStepException)
        {
            previous = null;
        }
        var (current, pending, pendingLogin) = await LoadForSetSecretAsync(context);
        if (pendingLogin is not { } pendingFailure)
        {
            return;
        }

        // Make sure the user and host of current and pending match (confused deputy).
        if (current.Username != pending.Username)
        {
            throw LogFail($"Attempting to modify user {pending.Username} other than current user {current.Username}");
        }
        if (current.Host != pending.Host)
        {
            throw LogFail($"Attempting to modify user for host {pending.Host} other than current host {current.Host}");
        }

        // Now try the current password, then the previous one with the current TLS setting.
        var login = await TryLoginAsync(current, ct);
        var failures = new List<string?> { $"current: {login.Failure}" };
        if (login.Connection is null && previous is not null)
        {
            previous = previous.WithSslOf(current);
            login = await TryLoginAsync(previous, ct);
            failures.Add($"previous: {login.Failure}");
            if (previous.Username != pending.Username || previous.Host != pending.Host)
            {
                if (login.Connection is not null)
                {
                    await login.Connection.DisposeAsync();
                }
                throw previous.Username != pending.Username
                    ? LogFail($"Attempting to modify user {pending.Username} other than previous valid user {previous.Username}")
                    : LogFail($"Attempting to modify user for host {pending.Host} other than previous host {previous.Host}");
            }
        }
        if (login.Connection is not { } connection)
        {
            failures.Insert(0, $"pending: {pendingFailure.Failure}");
            var detail = string.Join("; ", failures);
            Logger.LogError("setSecret: Unable to log into database with previous, current, or pending secret of secret arn {Arn} ({Detail})", context.Arn, detail);
            throw Fail($"Unable to log into database with previous, current, or pending secret of secret arn {context.Arn}", detail);
        }

        await using (connection)
        {
            await setOwnPassword(connection, pending, ct);
        }
        Logger.LogInformation("setSecret: Successfully set password for user {User} in {Database} DB for secret arn {Arn}.", pending.Username, DatabaseName, context.Arn);
    }

    /// <summary>
    /// What both setSecret flows start with: the current and pending secrets, and a login with the pending
    /// one. A null login result means it already works — an earlier attempt set it (the crash-resume
    /// case) — and there is nothing left to do.
    /// </summary>
    private async Task<(DatabaseSecret Current, DatabaseSecret Pending, LoginAttempt? PendingLogin)> LoadForSetSecretAsync(StepContext context)
    {
        var current = await GetSecretAsync(context, context.Arn, Current, null);
        var pending = await GetSecretAsync(context, context.Arn, Pending, context.Token);
        var pendingLogin = await TryLoginAsync(pending, context.CancellationToken);
        if (pendingLogin.Connection is { } already)
        {
            await already.DisposeAsync();
            Logger.LogInformation("setSecret: AWSPENDING secret is already set as password in {Database} DB for secret arn {Arn}.", DatabaseName, context.Arn);
            return (current, pending, null);
        }
        return (current, pending, pendingLogin);
    }

    /// <summary>
    /// The alternating-users setSecret of every template: done when the pending login already works; the
    /// pending user must be the other login of the current one on the same host; the current login must
    /// work (confused deputy); the master secret named by <c>masterarn</c> must be for the same host; then
    /// <paramref name="applyAsMaster"/> runs as the master (create the other login, copy the grants, set
    /// its password).
    /// </summary>
    protected async Task MultiUserSetSecretAsync(StepContext context,
        Func<DbConnection, DatabaseSecret, DatabaseSecret, CancellationToken, Task> applyAsMaster)
    {
        var ct = context.CancellationToken;
        var (current, pending, pendingLogin) = await LoadForSetSecretAsync(context);
        if (pendingLogin is null)
        {
            return; // already set
        }

        if (PendingUsername(current) != pending.Username)
        {
            throw LogFail($"Attempting to modify user {pending.Username} other than current user or clone {current.Username}");
        }
        if (current.Host != pending.Host)
        {
            throw LogFail($"Attempting to modify user for host {pending.Host} other than current host {current.Host}");
        }

        // The current credentials must work before the master credentials are used for them.
        var currentLogin = await TryLoginAsync(current, ct);
        if (currentLogin.Connection is not { } currentConnection)
        {
            Logger.LogError("setSecret: Unable to log into database using current credentials for secret {Arn}: {Failure}", context.Arn, currentLogin.Failure);
            throw Fail($"Unable to log into database using current credentials for secret {context.Arn}", currentLogin.Failure);
        }
        await currentConnection.DisposeAsync();

        var masterArn = current.MasterArn
            ?? throw LogFail("masterarn key is missing from secret JSON");
        var master = await GetSecretAsync(context, masterArn, Current, null, isMaster: true);
        master = master.WithDbName(current.DbName);
        if (current.Host != master.Host)
        {
            throw LogFail($"Current database host {current.Host} is not the same host as/rds replica of master {master.Host}");
        }

        var masterLogin = await TryLoginAsync(master, ct);
        if (masterLogin.Connection is not { } masterConnection)
        {
            Logger.LogError("setSecret: Unable to log into database using credentials in master secret {MasterArn}: {Failure}", masterArn, masterLogin.Failure);
            throw Fail($"Unable to log into database using credentials in master secret {masterArn}", masterLogin.Failure);
        }
        await using (masterConnection)
        {
            await applyAsMaster(masterConnection, current, pending, ct);
        }
        Logger.LogInformation("setSecret: Successfully set password for {User} in {Database} DB for secret arn {Arn}.", pending.Username, DatabaseName, context.Arn);
    }

    /// <summary>
    /// The other login of an alternating pair: strips a trailing <c>_clone</c> or appends one, refusing a
    /// clone name longer than <paramref name="limit"/>.
    /// </summary>
    protected static string AlternateUsername(string username, int limit)
    {
        if (username.EndsWith(CloneSuffix, StringComparison.Ordinal))
        {
            return username[..^CloneSuffix.Length];
        }
        var clone = username + CloneSuffix;
        if (clone.Length > limit)
        {
            throw new RotationStepException($"Unable to clone user, username length with _clone appended would exceed {limit} characters");
        }
        return clone;
    }

    /// <summary>
    /// GetSecretValue for a stage (and version), parsed and validated. A master secret that holds only
    /// username and password (an RDS-managed one) is refused: its database can only be found through
    /// the RDS API.
    /// </summary>
    protected async Task<DatabaseSecret> GetSecretAsync(StepContext context, string secretId, string stage, string? token, bool isMaster = false)
    {
        GetSecretValueResponse response;
        try
        {
            response = await context.Secrets.GetSecretValueAsync(new GetSecretValueRequest
            {
                SecretId = secretId,
                VersionId = token,
                VersionStage = stage,
            }, context.CancellationToken);
        }
        catch (ServiceException e) when (isMaster)
        {
            // The API's message names no secret, and the one being rotated is not the one missing here.
            throw LogFail($"The master secret {secretId} (the secret's masterarn) cannot be read: {e.Message}");
        }
        var secret = DatabaseSecret.Parse(response.SecretString, $"The {stage} value of secret {secretId}", DefaultPort, DefaultDatabase);
        if (isMaster && secret.HasOnlyCredentials)
        {
            throw LogFail($"The master secret {secretId} holds only username and password (an RDS-managed master secret); " +
                "Tumbler cannot look its database up through the RDS API: add engine, host and port to it");
        }
        ValidateSecret(secret);
        return secret;
    }

    /// <summary>Runs a statement; a database error becomes a step error with the passwords removed from its text.</summary>
    protected async Task ExecuteAsync(DbCommand command, string what, CancellationToken ct, params string?[] secrets)
    {
        try
        {
            await command.ExecuteNonQueryAsync(ct);
        }
        catch (DbException e)
        {
            throw DatabaseError(what, e, secrets);
        }
    }

    /// <summary>A step error for a failed statement, with every given secret value blanked out of the server's message.</summary>
    protected RotationStepException DatabaseError(string what, DbException e, params string?[] secrets)
    {
        var message = Redact(e.Message, secrets);
        Logger.LogError("{What} failed: {Message}", what, message);
        return new RotationStepException($"{what} failed: {message}");
    }

    /// <summary>
    /// The server's message, or a placeholder when it contains a secret value in any quoted or escaped
    /// form: masking only the matching part would reveal a short password through the surrounding text.
    /// </summary>
    protected internal static string Redact(string message, params string?[] secrets)
    {
        foreach (var secret in secrets)
        {
            if (string.IsNullOrEmpty(secret))
            {
                continue;
            }
            foreach (var form in new[] { secret, secret.Replace("'", "''", StringComparison.Ordinal), secret.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) })
            {
                if (message.Contains(form, StringComparison.Ordinal))
                {
                    return "(the database's message is withheld because it contains a secret value)";
                }
            }
        }
        return message;
    }

    private static RotationStepException Fail(string message, string? detail) =>
        new(string.IsNullOrEmpty(detail) ? message : $"{message} ({detail})");

    private RotationStepException LogFail(string message)
    {
        Logger.LogError("setSecret: {Message}", message);
        return new RotationStepException(message);
    }

    /// <summary>One step's event, client and cancellation.</summary>
    protected sealed record StepContext(RotationEvent Event, ISecretsManagerClient Secrets, string Arn, string Token, CancellationToken CancellationToken);
}

/// <summary>A login: an open connection, or why there is none (never with a password in it).</summary>
public readonly record struct LoginAttempt(DbConnection? Connection, string? Failure)
{
    public static LoginAttempt Succeeded(DbConnection connection) => new(connection, null);
    public static LoginAttempt Failed(string failure) => new(null, failure);
}

/// <summary>The <c>ssl</c> member of a database secret (spec §4.3).</summary>
public enum DatabaseTls
{
    /// <summary>Absent or not a recognised value: try TLS, fall back to a plain connection.</summary>
    Preferred,
    /// <summary><c>true</c> or <c>"true"</c>: TLS with a verified certificate, never a plain connection.</summary>
    Required,
    /// <summary><c>false</c> or <c>"false"</c>: a plain connection.</summary>
    Disabled,
}

/// <summary>
/// The JSON of a database secret (spec §4.3): every member is kept as it was (createSecret copies the
/// whole object), the connection members are read with the templates' rules.
/// </summary>
public sealed class DatabaseSecret
{
    private readonly JsonObject _json;
    private readonly int _defaultPort;
    private readonly string? _defaultDatabase;

    private DatabaseSecret(JsonObject json, string description, int defaultPort, string? defaultDatabase)
    {
        _json = json;
        Description = description;
        _defaultPort = defaultPort;
        _defaultDatabase = defaultDatabase;
    }

    /// <summary>Names the secret value in error messages, e.g. "The AWSCURRENT value of secret arn:…".</summary>
    public string Description { get; }

    public static DatabaseSecret Parse(string? secretString, string description, int defaultPort, string? defaultDatabase)
    {
        if (secretString is null)
        {
            throw new RotationStepException($"{description} has no SecretString: database rotation needs a JSON object");
        }
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(secretString);
            ReadEveryMember(node);
        }
        catch (JsonException)
        {
            // The parser's message quotes the offending text: it is left out on purpose.
            throw new RotationStepException($"{description} is not valid JSON");
        }
        catch (ArgumentException)
        {
            throw new RotationStepException($"{description} is not usable JSON: an object names the same member twice");
        }
        catch (InvalidOperationException)
        {
            throw new RotationStepException($"{description} is not usable JSON: a string holds an escaped half of a surrogate pair");
        }
        return node is JsonObject json
            ? new DatabaseSecret(json, description, defaultPort, defaultDatabase)
            : throw new RotationStepException($"{description} is not a JSON object");
    }

    /// <summary>
    /// Reads the whole tree now: a JsonNode parses members and strings only when first read, so a member named twice
    /// (ArgumentException) or an escaped lone surrogate (InvalidOperationException) would otherwise fail a later step.
    /// </summary>
    private static void ReadEveryMember(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (_, member) in obj)
                {
                    ReadEveryMember(member);
                }
                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    ReadEveryMember(item);
                }
                break;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                _ = value.GetValue<string>();
                break;
        }
    }

    public bool Has(string key) => _json.ContainsKey(key);

    /// <summary>True when the object has exactly the members username and password (an RDS-managed master secret).</summary>
    public bool HasOnlyCredentials => _json.Count == 2 && Has("username") && Has("password");

    /// <summary>The <c>engine</c> member as text, or null when absent.</summary>
    public string? Engine => Has("engine") ? Text("engine") : null;
    public string Host => Required("host");
    public string Username => Required("username");
    public string Password => Required("password", sensitive: true);
    public string? MasterArn => Has("masterarn") ? Text("masterarn") : null;

    /// <summary><c>port</c> as a number or a string (the templates do <c>int(...)</c>); the engine's default when absent.</summary>
    public int Port
    {
        get
        {
            if (!_json.TryGetPropertyValue("port", out var node) || node is null)
            {
                return _defaultPort;
            }
            int? port = null;
            if (node is JsonValue value)
            {
                if (value.TryGetValue<string>(out var text))
                {
                    port = int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed) ? parsed : null;
                }
                else if (value.TryGetValue<double>(out var number) && number == Math.Floor(number) && number is >= int.MinValue and <= int.MaxValue)
                {
                    port = (int)number;
                }
            }
            return port is >= 1 and <= 65535
                ? port.Value
                : throw new RotationStepException($"{Description}: port must be a port number (1-65535)");
        }
    }

    /// <summary><c>dbname</c>, or the engine's default database when absent or null.</summary>
    public string? DbName => _json.TryGetPropertyValue("dbname", out var node) && node is not null ? Text("dbname") : _defaultDatabase;

    /// <summary><c>ssl</c>: a JSON boolean or the strings "true"/"false" (any case) decide; anything else tries TLS then plain.</summary>
    public DatabaseTls Tls
    {
        get
        {
            if (!_json.TryGetPropertyValue("ssl", out var node) || node is not JsonValue value)
            {
                return DatabaseTls.Preferred;
            }
            if (value.TryGetValue<bool>(out var flag))
            {
                return flag ? DatabaseTls.Required : DatabaseTls.Disabled;
            }
            if (value.TryGetValue<string>(out var text))
            {
                return text.ToLowerInvariant() switch
                {
                    "true" => DatabaseTls.Required,
                    "false" => DatabaseTls.Disabled,
                    _ => DatabaseTls.Preferred,
                };
            }
            return DatabaseTls.Preferred;
        }
    }

    /// <summary>A copy with another username and password: the pending secret of createSecret.</summary>
    public DatabaseSecret With(string username, string password)
    {
        var copy = Copy();
        copy._json["username"] = username;
        copy._json["password"] = password;
        return copy;
    }

    /// <summary>A copy whose <c>ssl</c> member is the other secret's (removed when the other has none).</summary>
    public DatabaseSecret WithSslOf(DatabaseSecret other)
    {
        var copy = Copy();
        copy._json.Remove("ssl");
        if (other._json.TryGetPropertyValue("ssl", out var ssl))
        {
            copy._json["ssl"] = ssl?.DeepClone();
        }
        return copy;
    }

    /// <summary>A copy using the other secret's database (the master secret logs into the user's <c>dbname</c>).</summary>
    public DatabaseSecret WithDbName(string? dbname)
    {
        var copy = Copy();
        if (dbname is null)
        {
            copy._json.Remove("dbname");
        }
        else
        {
            copy._json["dbname"] = dbname;
        }
        return copy;
    }

    /// <summary>Written as Python's json.dumps would (no \u escapes for '+', '&lt;' or non-ASCII), as the templates store it.</summary>
    public string ToJson() => _json.ToJsonString(StoredJsonOptions);

    private static readonly JsonSerializerOptions StoredJsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Never the value: this type holds a password.</summary>
    public override string ToString() => Description;

    private DatabaseSecret Copy() => new((JsonObject)_json.DeepClone(), Description, _defaultPort, _defaultDatabase);

    private string Required(string key, bool sensitive = false) =>
        Has(key) ? Text(key, sensitive) : throw new RotationStepException($"{key} key is missing from secret JSON");

    private string Text(string key, bool sensitive = false)
    {
        var node = _json[key];
        if (node is JsonValue value && value.TryGetValue<string>(out var text))
        {
            return text;
        }
        if (!sensitive && node is JsonValue number && number.GetValueKind() is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False)
        {
            return number.ToJsonString();
        }
        throw new RotationStepException($"{Description}: {key} must be a string");
    }
}
