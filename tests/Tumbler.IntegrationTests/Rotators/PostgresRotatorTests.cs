using System.Globalization;
using System.Text.Json.Nodes;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;
using Tumbler.IntegrationTests.Support;
using Tumbler.Rotators;
using Tumbler.Rotators.Postgres;

namespace Tumbler.IntegrationTests.Rotators;

/// <summary>
/// The built-in PostgreSQL rotation functions against the real PostgreSQL of scripts/start-postgres.sh,
/// run in-process over SecretsService on a SQLite store (<see cref="RotationHarness"/>), step by step as
/// the rotation engine runs them.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PostgresRotatorTests : IAsyncLifetime
{
    private const string Excluded = ":/@\"'\\";
    /// <summary>Everything a careless quoting would trip over: quotes, backslashes, an escaped quote, dollar quotes, a comment.</summary>
    private const string NastyPassword = "a'b\\c\\'d''e$$f\"g;--h\\\\'";
    private RotationHarness _harness = null!;
    private Postgres _db = null!;

    public async Task InitializeAsync()
    {
        _db = await Postgres.ConnectAsync();
        _harness = await RotationHarness.CreateAsync();
    }

    public async Task DisposeAsync()
    {
        await _harness.DisposeAsync();
        await _db.DisposeAsync();
    }

    // ---- single user ----

    [Fact]
    public async Task Single_user_rotation_changes_the_password_and_keeps_the_old_value_as_previous()
    {
        var user = Postgres.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        // No ssl member (TLS if offered) and no dbname (postgres).
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1"));
        var firstVersion = (await _harness.GetAsync(arn, "AWSCURRENT")).VersionId;

        var token = await _harness.RotateAsync(Builtin(BuiltInRotationFunctions.PostgreSqlSingleUser), arn);

        var current = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(token, current.VersionId);
        var password = Field(current, "password");
        Assert.Equal(32, password.Length);
        Assert.DoesNotContain(password, c => Excluded.Contains(c, StringComparison.Ordinal));
        Assert.Equal(user, Field(current, "username"));
        Assert.True(await Postgres.CanLoginAsync(user, password));
        Assert.False(await Postgres.CanLoginAsync(user, "first-Pass1"));

        var previous = await _harness.GetAsync(arn, "AWSPREVIOUS");
        Assert.Equal(firstVersion, previous.VersionId);
        Assert.Equal("first-Pass1", Field(previous, "password"));
        Assert.Equal(Postgres.Host, Field(current, "host"));
        Assert.Equal(Postgres.Port, JsonNode.Parse(current.SecretString!)!["port"]!.GetValue<int>());
        Assert.False(JsonNode.Parse(current.SecretString!)!.AsObject().ContainsKey("dbname"));
    }

    [Fact]
    public async Task Aurora_engine_a_string_port_and_a_dbname_work()
    {
        var user = Postgres.UniqueName("s");
        var database = Postgres.UniqueName("db");
        await _db.CreateDatabaseAsync(database);
        await _db.CreateUserAsync(user, "first-Pass1");
        var json = Secret("aurora-postgresql", user, "first-Pass1", ssl: "FALSE", dbname: database);
        json["port"] = Postgres.Port.ToString(CultureInfo.InvariantCulture);
        var arn = await _harness.CreateSecretAsync(json);

        await _harness.RotateAsync(Builtin(BuiltInRotationFunctions.PostgreSqlSingleUser), arn);

        var password = Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password");
        Assert.True(await Postgres.CanLoginAsync(user, password, database));
        Assert.False(await Postgres.CanLoginAsync(user, "first-Pass1", database));
    }

    [Fact]
    public async Task Passwords_with_quotes_and_backslashes_are_passed_safely()
    {
        // A chosen pending value (as a createSecret of someone else, or a retry, would leave it).
        var user = Postgres.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: false));
        var function = Builtin(BuiltInRotationFunctions.PostgreSqlSingleUser);
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.PutPendingAsync(arn, token, Secret("postgres", user, NastyPassword, ssl: false));
        foreach (var step in RotationStep.All)
        {
            await _harness.StepAsync(function, arn, token, step);
        }
        Assert.Equal(NastyPassword, Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password"));
        Assert.True(await Postgres.CanLoginAsync(user, NastyPassword));
        Assert.False(await Postgres.CanLoginAsync(user, "first-Pass1"));

        // And random ones: nothing excluded, so quotes and backslashes are all but certain in 200 characters.
        var wide = new PostgresSingleUserRotator(new RotatorSettings { ExcludeCharacters = "", PasswordLength = 200 });
        await _harness.RotateAsync(wide, arn);
        var password = Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password");
        Assert.Equal(200, password.Length);
        Assert.True(await Postgres.CanLoginAsync(user, password));
        Assert.False(await Postgres.CanLoginAsync(user, NastyPassword));
    }

    [Fact]
    public async Task With_the_SCRAM_setting_the_database_receives_a_verifier_not_the_password()
    {
        var user = Postgres.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: false));
        var scram = new PostgresSingleUserRotator(new RotatorSettings { PostgreSqlScramVerifier = true, ExcludeCharacters = "" });
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.PutPendingAsync(arn, token, Secret("postgres", user, NastyPassword, ssl: false));
        await _harness.StepAsync(scram, arn, token, RotationStep.SetSecret);

        var stored = await Postgres.StoredPasswordAsync(user);
        Assert.StartsWith("SCRAM-SHA-256$4096:", stored, StringComparison.Ordinal);
        Assert.True(await Postgres.CanLoginAsync(user, NastyPassword));

        // A whole rotation with random passwords, then the alternating-users function with it too.
        await _harness.StepAsync(scram, arn, token, RotationStep.TestSecret);
        await _harness.StepAsync(scram, arn, token, RotationStep.FinishSecret);
        await _harness.RotateAsync(scram, arn);
        Assert.True(await Postgres.CanLoginAsync(user, Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password")));
        Assert.False(await Postgres.CanLoginAsync(user, NastyPassword));

        var multiUser = Postgres.UniqueName("m");
        await _db.CreateUserAsync(multiUser, "first-Pass1");
        var masterArn = await _harness.CreateSecretAsync(MasterSecret(), name: Postgres.UniqueName("master", 16));
        var multiArn = await _harness.CreateSecretAsync(Secret("postgres", multiUser, "first-Pass1", ssl: false, masterArn: masterArn));
        var multi = new PostgresMultiUserRotator(new RotatorSettings { PostgreSqlScramVerifier = true });
        await _harness.RotateAsync(multi, multiArn);
        await _harness.RotateAsync(multi, multiArn);
        await _harness.RotateAsync(multi, multiArn);
        var current = await _harness.GetAsync(multiArn, "AWSCURRENT");
        Assert.Equal(multiUser + "_clone", Field(current, "username"));
        Assert.StartsWith("SCRAM-SHA-256$4096:", await Postgres.StoredPasswordAsync(multiUser + "_clone"), StringComparison.Ordinal);
        Assert.True(await Postgres.CanLoginAsync(multiUser + "_clone", Field(current, "password")));
        Assert.True(await Postgres.CanLoginAsync(multiUser, Field(await _harness.GetAsync(multiArn, "AWSPREVIOUS"), "password")));
    }

    [Fact]
    public async Task Every_step_can_be_repeated()
    {
        var user = Postgres.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: false));
        var function = Builtin(BuiltInRotationFunctions.PostgreSqlSingleUser);
        var token = await _harness.BeginRotationAsync(arn);

        foreach (var step in RotationStep.All)
        {
            await _harness.StepAsync(function, arn, token, step);
            await _harness.StepAsync(function, arn, token, step);
        }

        var password = Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password");
        Assert.Equal(token, (await _harness.GetAsync(arn, "AWSCURRENT")).VersionId);
        Assert.True(await Postgres.CanLoginAsync(user, password));
    }

    [Fact]
    public async Task A_pending_secret_for_another_user_or_host_is_refused()
    {
        var user = Postgres.UniqueName("s");
        var victim = Postgres.UniqueName("v");
        await _db.CreateUserAsync(user, "first-Pass1");
        await _db.CreateUserAsync(victim, "victim-Pass1");
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: false));
        var function = Builtin(BuiltInRotationFunctions.PostgreSqlSingleUser);
        var token = await _harness.BeginRotationAsync(arn);
        // Someone who may write the secret stages a pending value naming another login.
        await _harness.PutPendingAsync(arn, token, Secret("postgres", victim, "attacker-Pass1", ssl: false));

        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret); // keeps the existing pending value
        var error = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));

        Assert.Equal($"Attempting to modify user {victim} other than current user {user}", error.Message);
        Assert.True(await Postgres.CanLoginAsync(victim, "victim-Pass1"));
        Assert.True(await Postgres.CanLoginAsync(user, "first-Pass1"));

        var otherHost = await _harness.BeginRotationAsync(arn);
        var pending = Secret("postgres", user, "next-Pass1", ssl: false);
        pending["host"] = "localhost";
        await _harness.PutPendingAsync(arn, otherHost, pending);
        var hostError = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, otherHost, RotationStep.SetSecret));
        Assert.Equal($"Attempting to modify user for host localhost other than current host {Postgres.Host}", hostError.Message);
        Assert.True(await Postgres.CanLoginAsync(user, "first-Pass1"));
    }

    [Fact]
    public async Task When_the_current_password_does_not_log_in_the_previous_one_is_used()
    {
        var user = Postgres.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: false));
        await _harness.PutCurrentAsync(arn, Secret("postgres", user, "never-applied-1"));

        await _harness.RotateAsync(Builtin(BuiltInRotationFunctions.PostgreSqlSingleUser), arn);

        var password = Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password");
        Assert.True(await Postgres.CanLoginAsync(user, password));
        Assert.False(await Postgres.CanLoginAsync(user, "first-Pass1"));
    }

    [Fact]
    public async Task A_secret_of_another_engine_is_refused_in_createSecret()
    {
        var arn = await _harness.CreateSecretAsync(Secret("mysql", "someone", "first-Pass1"));
        var token = await _harness.BeginRotationAsync(arn);

        var single = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.StepAsync(Builtin(BuiltInRotationFunctions.PostgreSqlSingleUser), arn, token, RotationStep.CreateSecret));
        var multi = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.StepAsync(Builtin(BuiltInRotationFunctions.PostgreSqlMultiUser), arn, token, RotationStep.CreateSecret));

        Assert.Equal("Database engine must be set to 'postgres' in order to use this rotation lambda", single.Message);
        Assert.Equal(single.Message, multi.Message);
    }

    // ---- TLS and an unreachable database ----

    [Fact]
    public async Task Ssl_true_verifies_the_server_certificate()
    {
        var user = Postgres.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        await Postgres.ExecuteAsync($"GRANT tls_only TO \"{user}\""); // pg_hba admits this user over TLS only
        Assert.False(await Postgres.CanLoginAsync(user, "first-Pass1"));
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: true));
        var before = await _harness.GetAsync(arn, "AWSCURRENT");

        // The test CA is not in the system trust store: the certificate is refused, nothing is changed, no plain retry.
        var untrusted = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.RotateAsync(Builtin(BuiltInRotationFunctions.PostgreSqlSingleUser), arn));
        Assert.Contains("with verified TLS: the server's TLS certificate was refused: it is not trusted by the system's CA store (PartialChain)",
            untrusted.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("without TLS", untrusted.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("first-Pass1", untrusted.Message, StringComparison.Ordinal);
        Assert.Equal(before.VersionId, (await _harness.GetAsync(arn, "AWSCURRENT")).VersionId);
        Assert.True(await Postgres.CanLoginAsync(user, "first-Pass1", verifiedTls: true));

        // Another CA configured: still refused, and the message says so.
        using (var otherCa = new UnrelatedCa())
        {
            var wrongCa = new PostgresSingleUserRotator(new RotatorSettings { TlsCaFile = otherCa.PemFile });
            var refused = await Assert.ThrowsAsync<RotationStepException>(() => _harness.RotateAsync(wrongCa, arn));
            Assert.Contains("the server's TLS certificate was refused: it is not issued by the configured CA", refused.Message, StringComparison.Ordinal);
        }

        // With the test CA configured for the function, a new rotation (the refused one stays pending) succeeds over verified TLS.
        var trusted = new PostgresSingleUserRotator(new RotatorSettings { TlsCaFile = Postgres.CaFile });
        await _harness.RotateAsync(trusted, arn);
        var password = Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password");
        Assert.NotEqual("first-Pass1", password);
        Assert.True(await Postgres.CanLoginAsync(user, password, verifiedTls: true));
        Assert.False(await Postgres.CanLoginAsync(user, "first-Pass1", verifiedTls: true));
    }

    [Fact]
    public async Task Ssl_true_sends_nothing_but_the_SSLRequest_to_a_server_without_TLS()
    {
        await using var server = new PostgresServerWithoutTls();
        var json = Secret("postgres", "someone", "first-Pass1", ssl: "true");
        json["port"] = server.Port;
        var arn = await _harness.CreateSecretAsync(json);
        var function = Builtin(BuiltInRotationFunctions.PostgreSqlSingleUser);
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret);

        var error = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));

        Assert.Contains("with verified TLS", error.Message, StringComparison.Ordinal);
        await server.DisposeAsync();
        Assert.Equal(2, server.Connections); // pending, then current: once each, no plain retry
        // No StartupMessage (the user name) and no password message followed the refused SSLRequest.
        Assert.All(server.Received, sent => Assert.Equal(PostgresServerWithoutTls.SslRequest, sent));
    }

    [Fact]
    public async Task A_database_that_is_down_fails_the_step_clearly_and_leaves_AWSCURRENT_alone()
    {
        var user = Postgres.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var json = Secret("postgres", user, "first-Pass1");
        json["port"] = Postgres.ClosedPort();
        var arn = await _harness.CreateSecretAsync(json);
        var before = await _harness.GetAsync(arn, "AWSCURRENT");
        var function = Builtin(BuiltInRotationFunctions.PostgreSqlSingleUser);
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret);

        var error = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));

        Assert.StartsWith($"Unable to log into database with previous, current, or pending secret of secret arn {arn}", error.Message, StringComparison.Ordinal);
        Assert.Contains("Failed to connect", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("first-Pass1", error.Message, StringComparison.Ordinal);
        var after = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(before.VersionId, after.VersionId);
        Assert.Equal(before.SecretString, after.SecretString);
        Assert.True(await Postgres.CanLoginAsync(user, "first-Pass1"));
        var test = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.TestSecret));
        Assert.StartsWith($"Unable to log into database with pending secret of secret ARN {arn}", test.Message, StringComparison.Ordinal);
    }

    // ---- alternating users ----

    [Fact]
    public async Task Alternating_users_clone_gets_the_role_privileges_through_membership_and_both_logins_keep_working()
    {
        var user = Postgres.UniqueName("m");
        var database = Postgres.UniqueName("db");
        await _db.CreateDatabaseAsync(database);
        await _db.CreateUserAsync(user, "first-Pass1");
        await Postgres.FormatAndExecuteAsync("GRANT SELECT, INSERT ON items TO %I", database, user);
        var masterArn = await _harness.CreateSecretAsync(MasterSecret(), name: Postgres.UniqueName("master", 16));
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: false, dbname: database, masterArn: masterArn));
        var function = Builtin(BuiltInRotationFunctions.PostgreSqlMultiUser);
        var clone = user + "_clone";

        // First rotation: user_clone is created as a member of user and becomes current.
        await _harness.RotateAsync(function, arn);
        var first = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(clone, Field(first, "username"));
        Assert.Equal(masterArn, Field(first, "masterarn"));
        Assert.Equal(database, Field(first, "dbname"));
        Assert.True(await Postgres.IsMemberAsync(clone, user));
        var clonePassword = Field(first, "password");
        Assert.DoesNotContain(clonePassword, c => Excluded.Contains(c, StringComparison.Ordinal));
        await Postgres.ScalarAsUserAsync(clone, clonePassword, database, "INSERT INTO items VALUES (1, 'by the clone')");
        Assert.True(await Postgres.CanLoginAsync(user, "first-Pass1", database)); // previous still works
        Assert.Equal(user, Field(await _harness.GetAsync(arn, "AWSPREVIOUS"), "username"));

        // A privilege granted to user afterwards reaches the clone (membership, not copied grants).
        await Postgres.FormatAndExecuteAsync("GRANT DELETE ON items TO %I", database, user);
        await Postgres.ScalarAsUserAsync(clone, clonePassword, database, "DELETE FROM items WHERE id = 1");
        // The clone acts as the original role: what it creates, user owns, and can use once it is current again.
        await Postgres.FormatAndExecuteAsync("GRANT CREATE ON SCHEMA public TO %I", database, user);
        Assert.Equal(user, await Postgres.ScalarAsUserAsync(clone, clonePassword, database, "SELECT current_user::text"));
        await Postgres.ScalarAsUserAsync(clone, clonePassword, database, "CREATE TABLE made_by_clone (id INT); INSERT INTO made_by_clone VALUES (7)");

        // Second rotation: back to user, with a new password; the clone's credentials still work.
        await _harness.RotateAsync(function, arn);
        var second = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(user, Field(second, "username"));
        Assert.NotEqual("first-Pass1", Field(second, "password"));
        Assert.True(await Postgres.CanLoginAsync(user, Field(second, "password"), database));
        Assert.False(await Postgres.CanLoginAsync(user, "first-Pass1"));
        var previous = await _harness.GetAsync(arn, "AWSPREVIOUS");
        Assert.Equal(clone, Field(previous, "username"));
        Assert.True(await Postgres.CanLoginAsync(clone, Field(previous, "password"), database));
        Assert.Equal(0L, Convert.ToInt64(await Postgres.ScalarAsUserAsync(user, Field(second, "password"), database, "SELECT COUNT(*) FROM items"), CultureInfo.InvariantCulture));
        Assert.Equal(7, await Postgres.ScalarAsUserAsync(user, Field(second, "password"), database, "SELECT id FROM made_by_clone"));
        await Postgres.ScalarAsUserAsync(user, Field(second, "password"), database, "ALTER TABLE made_by_clone ADD COLUMN note TEXT"); // owner's right

        // A revoked membership is restored when the clone's turn comes again.
        await Postgres.FormatAndExecuteAsync("REVOKE %I FROM %I", null, user, clone);
        // Third rotation: the clone again, with a new password; user keeps the second one.
        await _harness.RotateAsync(function, arn);
        var third = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(clone, Field(third, "username"));
        Assert.NotEqual(clonePassword, Field(third, "password"));
        Assert.True(await Postgres.CanLoginAsync(clone, Field(third, "password"), database));
        Assert.False(await Postgres.CanLoginAsync(clone, clonePassword));
        Assert.True(await Postgres.CanLoginAsync(user, Field(second, "password"), database));
        Assert.True(await Postgres.IsMemberAsync(clone, user));
        await Postgres.ScalarAsUserAsync(clone, Field(third, "password"), database, "INSERT INTO items VALUES (3, 'x')");
    }

    [Fact]
    public async Task Alternating_users_quote_odd_role_names_safely()
    {
        var user = "O'q\"X " + Postgres.UniqueName("m");
        var database = Postgres.UniqueName("db");
        await _db.CreateDatabaseAsync(database);
        await _db.CreateUserAsync(user, "first-Pass1");
        await Postgres.FormatAndExecuteAsync("GRANT SELECT ON items TO %I", database, user);
        var masterArn = await _harness.CreateSecretAsync(MasterSecret(), name: Postgres.UniqueName("master", 16));
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", dbname: database, masterArn: masterArn));

        await _harness.RotateAsync(new PostgresMultiUserRotator(new RotatorSettings { ExcludeCharacters = "" }), arn);

        var current = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(user + "_clone", Field(current, "username"));
        Assert.True(await Postgres.RoleExistsAsync(user + "_clone"));
        Assert.Equal(0L, Convert.ToInt64(await Postgres.ScalarAsUserAsync(user + "_clone", Field(current, "password"), database, "SELECT COUNT(*) FROM items"), CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Alternating_users_refuse_a_clone_name_over_63_characters()
    {
        const string masterArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:m-abcdef";
        var arn = await _harness.CreateSecretAsync(Secret("postgres", new string('u', 58), "first-Pass1", masterArn: masterArn));
        var token = await _harness.BeginRotationAsync(arn);

        var error = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.StepAsync(Builtin(BuiltInRotationFunctions.PostgreSqlMultiUser), arn, token, RotationStep.CreateSecret));
        Assert.Equal("Unable to clone user, username length with _clone appended would exceed 63 characters", error.Message);

        var fits = await _harness.CreateSecretAsync(Secret("postgres", new string('u', 57), "first-Pass1", masterArn: masterArn));
        var fitsToken = await _harness.BeginRotationAsync(fits);
        await _harness.StepAsync(Builtin(BuiltInRotationFunctions.PostgreSqlMultiUser), fits, fitsToken, RotationStep.CreateSecret);
        Assert.Equal(new string('u', 57) + "_clone", Field(await _harness.GetAsync(fits, "AWSPENDING", fitsToken), "username"));
    }

    [Fact]
    public async Task Alternating_users_refuse_a_pending_user_that_is_not_the_other_login()
    {
        var user = Postgres.UniqueName("m");
        var victim = Postgres.UniqueName("v");
        await _db.CreateUserAsync(user, "first-Pass1");
        await _db.CreateUserAsync(victim, "victim-Pass1");
        var masterArn = await _harness.CreateSecretAsync(MasterSecret(), name: Postgres.UniqueName("master", 16));
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: false, masterArn: masterArn));
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.PutPendingAsync(arn, token, Secret("postgres", victim, "attacker-Pass1", ssl: false, masterArn: masterArn));

        var error = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.StepAsync(Builtin(BuiltInRotationFunctions.PostgreSqlMultiUser), arn, token, RotationStep.SetSecret));

        Assert.Equal($"Attempting to modify user {victim} other than current user or clone {user}", error.Message);
        Assert.True(await Postgres.CanLoginAsync(victim, "victim-Pass1"));
        Assert.False(await Postgres.RoleExistsAsync(user + "_clone"));
    }

    [Fact]
    public async Task Alternating_users_require_a_working_current_login_and_a_master_on_the_same_host()
    {
        var user = Postgres.UniqueName("m");
        await _db.CreateUserAsync(user, "first-Pass1");
        var master = MasterSecret();
        master["host"] = "localhost";
        var masterArn = await _harness.CreateSecretAsync(master, name: Postgres.UniqueName("master", 16));
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: false, masterArn: masterArn));
        var function = Builtin(BuiltInRotationFunctions.PostgreSqlMultiUser);
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret);

        var hostError = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));
        Assert.Equal($"Current database host {Postgres.Host} is not the same host as/rds replica of master localhost", hostError.Message);

        await Postgres.FormatAndExecuteAsync("ALTER ROLE %I WITH PASSWORD %L", null, user, "changed-Pass1");
        var loginError = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));
        Assert.StartsWith($"Unable to log into database using current credentials for secret {arn}", loginError.Message, StringComparison.Ordinal);
        Assert.Contains("28P01", loginError.Message, StringComparison.Ordinal);
        Assert.False(await Postgres.RoleExistsAsync(user + "_clone"));

        // A masterarn naming no secret: the error says it is the master secret that is missing.
        await Postgres.FormatAndExecuteAsync("ALTER ROLE %I WITH PASSWORD %L", null, user, "first-Pass1");
        var missingMaster = masterArn[..^6] + "zzzzzz";
        var orphan = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: false, masterArn: missingMaster));
        var orphanToken = await _harness.BeginRotationAsync(orphan);
        await _harness.StepAsync(function, orphan, orphanToken, RotationStep.CreateSecret);
        var masterError = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, orphan, orphanToken, RotationStep.SetSecret));
        Assert.StartsWith($"The master secret {missingMaster} (the secret's masterarn) cannot be read: ", masterError.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_master_without_CREATEROLE_fails_with_the_database_error_and_no_password()
    {
        var user = Postgres.UniqueName("m");
        var weakMaster = Postgres.UniqueName("w");
        await _db.CreateUserAsync(user, "first-Pass1");
        await _db.CreateUserAsync(weakMaster, "weak-Pass1");
        var masterArn = await _harness.CreateSecretAsync(Secret("postgres", weakMaster, "weak-Pass1", ssl: false), name: Postgres.UniqueName("master", 16));
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1", ssl: false, masterArn: masterArn));
        var function = Builtin(BuiltInRotationFunctions.PostgreSqlMultiUser);
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret);
        var pending = Field(await _harness.GetAsync(arn, "AWSPENDING", token), "password");

        var error = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));

        Assert.StartsWith($"Creating user {user}_clone failed: 42501:", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(pending, error.Message, StringComparison.Ordinal);
        Assert.False(await Postgres.RoleExistsAsync(user + "_clone"));
        Assert.Equal("first-Pass1", Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password"));
    }

    // ---- helpers ----

    private static string LambdaArn(string name) => $"arn:aws:lambda:us-east-1:123456789012:function:{name}";

    private static IRotationFunction Builtin(string name) =>
        new BuiltInRotationFunctions().Find(LambdaArn(name)) ?? throw new InvalidOperationException(name);

    private static JsonObject Secret(string engine, string user, string password, object? ssl = null, string? dbname = null, string? masterArn = null)
    {
        var json = new JsonObject
        {
            ["engine"] = engine,
            ["host"] = Postgres.Host,
            ["username"] = user,
            ["password"] = password,
            ["port"] = Postgres.Port,
        };
        switch (ssl)
        {
            case bool flag:
                json["ssl"] = flag;
                break;
            case string text:
                json["ssl"] = text;
                break;
        }
        if (dbname is not null)
        {
            json["dbname"] = dbname;
        }
        if (masterArn is not null)
        {
            json["masterarn"] = masterArn;
        }
        return json;
    }

    private static JsonObject MasterSecret() => Secret("postgres", Postgres.AdminUser, Postgres.AdminPassword, ssl: false);

    private static string Field(GetSecretValueResponse value, string name) =>
        JsonNode.Parse(value.SecretString!)![name]!.GetValue<string>();
}

/// <summary>The PostgreSQL functions' registration and quoting, without a database.</summary>
public sealed class PostgresRotatorUnitTests
{
    private static string Arn(string name) => $"arn:aws:lambda:us-east-1:123456789012:function:{name}";

    [Fact]
    public void The_registry_finds_the_PostgreSQL_functions()
    {
        var functions = new BuiltInRotationFunctions(new Dictionary<string, RotatorSettings>
        {
            [BuiltInRotationFunctions.PostgreSqlMultiUser] = new() { UsernameCharacterLimit = 20 },
        });
        Assert.IsType<PostgresSingleUserRotator>(functions.Find(Arn(BuiltInRotationFunctions.PostgreSqlSingleUser)));
        var multi = Assert.IsType<PostgresMultiUserRotator>(functions.Find(Arn(BuiltInRotationFunctions.PostgreSqlMultiUser) + ":$LATEST"));
        Assert.Equal(20, multi.UsernameCharacterLimit);
        Assert.Equal(63, new PostgresMultiUserRotator().UsernameCharacterLimit);
        Assert.Equal(":/@\"'\\", RotatorSettings.Default.ToPasswordRequest(RotatorSettings.PostgreSqlDefaultExcludeCharacters).ExcludeCharacters);
    }

    [Theory]
    [InlineData("plain", "E'plain'")]
    [InlineData("a'b", "E'a''b'")]
    [InlineData("a\\b", "E'a\\\\b'")]
    [InlineData("\\'", "E'\\\\'''")]
    public void Literals_escape_backslashes_and_quotes(string value, string expected) =>
        Assert.Equal(expected, PostgresServer.Literal(value));

    [Fact]
    public void Identifiers_are_always_quoted_and_NUL_is_refused()
    {
        Assert.Equal("\"app\"", PostgresServer.QuoteIdentifier("app"));
        Assert.Equal("\"a\"\"b\"", PostgresServer.QuoteIdentifier("a\"b"));
        Assert.Throws<RotationStepException>(() => PostgresServer.QuoteIdentifier("a\0b"));
        Assert.Throws<RotationStepException>(() => PostgresServer.Literal("a\0b"));
        Assert.Throws<RotationStepException>(() => PostgresServer.QuoteIdentifier(new string('é', 32)));
    }
}
