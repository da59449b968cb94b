using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tumbler.Core.Crypto;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;
using Tumbler.Core.Storage;
using Tumbler.IntegrationTests.Support;
using Tumbler.Rotators;
using Tumbler.Rotators.MySql;
using Tumbler.Storage.Sqlite;

namespace Tumbler.IntegrationTests.Rotators;

/// <summary>
/// The built-in MySQL/MariaDB rotation functions against the real MariaDB of scripts/start-mariadb.sh,
/// run in-process over SecretsService on a SQLite store, step by step as the rotation engine runs them.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MySqlRotatorTests : IAsyncLifetime
{
    private const string Excluded = "/@\"'\\";
    private RotationHarness _harness = null!;
    private MariaDb _db = null!;

    public async Task InitializeAsync()
    {
        _db = await MariaDb.ConnectAsync();
        _harness = await RotationHarness.CreateAsync();
    }

    public async Task DisposeAsync()
    {
        await _harness.DisposeAsync();
        await _db.DisposeAsync();
    }

    // ---- single user ----

    [Fact]
    public async Task Single_user_MariaDB_rotation_changes_the_password_and_keeps_the_old_value_as_previous()
    {
        var user = MariaDb.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        // No ssl member: TLS is tried and, this server having none, the plain connection is used.
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1"));
        var firstVersion = (await _harness.GetAsync(arn, "AWSCURRENT")).VersionId;
        var function = Builtin(BuiltInRotationFunctions.MariaDbSingleUser);

        var token = await _harness.RotateAsync(function, arn);

        var current = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(token, current.VersionId);
        var password = Field(current, "password");
        Assert.Equal(32, password.Length);
        Assert.DoesNotContain(password, c => Excluded.Contains(c, StringComparison.Ordinal));
        Assert.Equal(user, Field(current, "username"));
        Assert.True(await MariaDb.CanLoginAsync(user, password));
        Assert.False(await MariaDb.CanLoginAsync(user, "first-Pass1"));

        var previous = await _harness.GetAsync(arn, "AWSPREVIOUS");
        Assert.Equal(firstVersion, previous.VersionId);
        Assert.Equal("first-Pass1", Field(previous, "password"));
        // Every other member is copied unchanged.
        Assert.Equal(MariaDb.Host, Field(current, "host"));
        Assert.Equal(MariaDb.Port, JsonNode.Parse(current.SecretString!)!["port"]!.GetValue<int>());
    }

    [Fact]
    public async Task Single_user_MySQL_template_works_against_MariaDB_with_a_string_port_and_custom_password_settings()
    {
        var user = MariaDb.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var json = Secret("mysql", user, "first-Pass1", ssl: "false");
        json["port"] = MariaDb.Port.ToString(CultureInfo.InvariantCulture);
        var arn = await _harness.CreateSecretAsync(json);
        var settings = new RotatorSettings { PasswordLength = 20, ExcludeCharacters = "abcdefABCDEF0123", ExcludePunctuation = true };
        var function = new BuiltInRotationFunctions(new Dictionary<string, RotatorSettings> { [BuiltInRotationFunctions.MySqlSingleUser] = settings })
            .Find(LambdaArn(BuiltInRotationFunctions.MySqlSingleUser))!;

        await _harness.RotateAsync(function, arn);

        var password = Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password");
        Assert.Equal(20, password.Length);
        Assert.All(password, c => Assert.True(char.IsAsciiLetterOrDigit(c) && !"abcdefABCDEF0123".Contains(c, StringComparison.Ordinal), $"unexpected '{c}'"));
        Assert.True(await MariaDb.CanLoginAsync(user, password));
        Assert.False(await MariaDb.CanLoginAsync(user, "first-Pass1"));
    }

    [Fact]
    public async Task Passwords_with_quotes_and_backslashes_are_passed_safely()
    {
        var user = MariaDb.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1", ssl: false));
        // Nothing excluded: the 94-character alphabet, so quotes and backslashes are all but certain in 200 characters.
        var function = new MySqlSingleUserRotator(MySqlFlavor.MariaDb, new RotatorSettings { ExcludeCharacters = "", PasswordLength = 200 });

        await _harness.RotateAsync(function, arn);

        var password = Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password");
        Assert.Equal(200, password.Length);
        Assert.True(await MariaDb.CanLoginAsync(user, password));
    }

    [Fact]
    public async Task Every_step_can_be_repeated_and_a_completed_rotation_replays_harmlessly()
    {
        var user = MariaDb.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1", ssl: false));
        var function = Builtin(BuiltInRotationFunctions.MariaDbSingleUser);
        var token = await _harness.BeginRotationAsync(arn);

        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret);
        var pending = Field(await _harness.GetAsync(arn, "AWSPENDING", token), "password");
        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret);
        Assert.Equal(pending, Field(await _harness.GetAsync(arn, "AWSPENDING", token), "password"));

        await _harness.StepAsync(function, arn, token, RotationStep.SetSecret);
        await _harness.StepAsync(function, arn, token, RotationStep.SetSecret); // the pending login already works
        await _harness.StepAsync(function, arn, token, RotationStep.TestSecret);
        await _harness.StepAsync(function, arn, token, RotationStep.TestSecret);
        await _harness.StepAsync(function, arn, token, RotationStep.FinishSecret);
        var labels = await _harness.LabelsAsync(arn);
        await _harness.StepAsync(function, arn, token, RotationStep.FinishSecret);
        foreach (var step in RotationStep.All)
        {
            await _harness.StepAsync(function, arn, token, step); // the token is AWSCURRENT: nothing to do
        }

        Assert.Equal(labels, await _harness.LabelsAsync(arn));
        Assert.Equal(new[] { "AWSCURRENT", "AWSPENDING" }, labels[token]);
        Assert.Equal(pending, Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password"));
        Assert.True(await MariaDb.CanLoginAsync(user, pending));
    }

    [Fact]
    public async Task A_pending_secret_for_another_user_is_refused()
    {
        var user = MariaDb.UniqueName("s");
        var victim = MariaDb.UniqueName("v");
        await _db.CreateUserAsync(user, "first-Pass1");
        await _db.CreateUserAsync(victim, "victim-Pass1");
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1", ssl: false));
        var function = Builtin(BuiltInRotationFunctions.MariaDbSingleUser);
        var token = await _harness.BeginRotationAsync(arn);
        // Someone who may write the secret stages a pending value naming another login.
        await _harness.PutPendingAsync(arn, token, Secret("mariadb", victim, "attacker-Pass1", ssl: false));

        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret); // keeps the existing pending value
        var error = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));

        Assert.Equal($"Attempting to modify user {victim} other than current user {user}", error.Message);
        Assert.True(await MariaDb.CanLoginAsync(victim, "victim-Pass1"));
        Assert.True(await MariaDb.CanLoginAsync(user, "first-Pass1"));
    }

    [Fact]
    public async Task A_pending_secret_for_another_host_is_refused()
    {
        var user = MariaDb.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1", ssl: false));
        var token = await _harness.BeginRotationAsync(arn);
        var pending = Secret("mariadb", user, "next-Pass1", ssl: false);
        pending["host"] = "localhost";
        await _harness.PutPendingAsync(arn, token, pending);

        var error = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.StepAsync(Builtin(BuiltInRotationFunctions.MariaDbSingleUser), arn, token, RotationStep.SetSecret));

        Assert.Equal($"Attempting to modify user for host localhost other than current host {MariaDb.Host}", error.Message);
        Assert.True(await MariaDb.CanLoginAsync(user, "first-Pass1"));
    }

    [Fact]
    public async Task When_the_current_password_does_not_log_in_the_previous_one_is_used()
    {
        var user = MariaDb.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1", ssl: false));
        // A new current value that was never applied to the database; the working one becomes AWSPREVIOUS.
        await _harness.PutCurrentAsync(arn, Secret("mariadb", user, "never-applied-1"));

        await _harness.RotateAsync(Builtin(BuiltInRotationFunctions.MariaDbSingleUser), arn);

        var password = Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password");
        Assert.True(await MariaDb.CanLoginAsync(user, password));
        Assert.False(await MariaDb.CanLoginAsync(user, "first-Pass1"));
    }

    [Fact]
    public async Task A_secret_of_another_engine_is_refused_in_createSecret()
    {
        var user = MariaDb.UniqueName("s");
        var arn = await _harness.CreateSecretAsync(Secret("postgres", user, "first-Pass1"));
        var token = await _harness.BeginRotationAsync(arn);

        var mariadb = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.StepAsync(Builtin(BuiltInRotationFunctions.MariaDbSingleUser), arn, token, RotationStep.CreateSecret));
        var mysql = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.StepAsync(Builtin(BuiltInRotationFunctions.MySqlSingleUser), arn, token, RotationStep.CreateSecret));

        Assert.Equal("Database engine must be set to 'mariadb' in order to use this rotation lambda", mariadb.Message);
        Assert.Equal("Database engine must be set to 'mysql' in order to use this rotation lambda", mysql.Message);
    }

    // ---- TLS and an unreachable database ----

    [Fact]
    public async Task Ssl_true_against_a_server_without_TLS_fails_without_sending_the_login()
    {
        await using var server = new ServerWithoutTls();
        var json = Secret("mariadb", "someone", "first-Pass1", ssl: true);
        json["port"] = server.Port;
        var arn = await _harness.CreateSecretAsync(json);
        var before = await _harness.GetAsync(arn, "AWSCURRENT");
        var function = Builtin(BuiltInRotationFunctions.MariaDbSingleUser);
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret);
        var pending = Field(await _harness.GetAsync(arn, "AWSPENDING", token), "password");

        var error = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));

        Assert.StartsWith($"Unable to log into database with previous, current, or pending secret of secret arn {arn}", error.Message, StringComparison.Ordinal);
        Assert.Contains("with verified TLS: Server does not support SSL", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("first-Pass1", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(pending, error.Message, StringComparison.Ordinal);
        Assert.Equal(before.VersionId, (await _harness.GetAsync(arn, "AWSCURRENT")).VersionId);
        await server.DisposeAsync();
        Assert.Equal(2, server.Connections); // pending, then current: once each, no plain retry
        // Nothing but COM_QUIT, or nothing at all (the client may close without it): no login packet (user name and
        // password hash) went out.
        Assert.All(server.Received, sent => Assert.Contains(sent, new[] { "0100000001", "" }));
    }

    [Fact]
    public async Task Ssl_true_verifies_the_server_certificate()
    {
        var user = MariaDb.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        await MariaDb.ExecuteAsync("ALTER USER @user REQUIRE SSL", ("@user", user)); // only a TLS login works
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1", ssl: "True"));

        // The test CA is not in the system trust store: the certificate is refused, nothing is changed.
        var untrusted = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.RotateAsync(Builtin(BuiltInRotationFunctions.MariaDbSingleUser), arn));
        Assert.Contains("with verified TLS", untrusted.Message, StringComparison.Ordinal);
        Assert.Contains("the server's TLS certificate was refused: it is not trusted by the system's CA store (UntrustedRoot)", untrusted.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Access denied", untrusted.Message, StringComparison.Ordinal); // refused before any login was sent
        Assert.True(await MariaDb.CanLoginAsync(user, "first-Pass1"));

        // Another CA configured: still refused.
        using (var otherCa = new UnrelatedCa())
        {
            var wrongCa = new MySqlSingleUserRotator(MySqlFlavor.MariaDb, new RotatorSettings { TlsCaFile = otherCa.PemFile });
            var refused = await Assert.ThrowsAsync<RotationStepException>(() => _harness.RotateAsync(wrongCa, arn));
            Assert.Contains("the server's TLS certificate was refused: it is not issued by the configured CA", refused.Message, StringComparison.Ordinal);
        }
        Assert.True(await MariaDb.CanLoginAsync(user, "first-Pass1"));

        // With the test CA configured for the function, the same rotation (a new one: the old one stays pending) succeeds.
        var trusted = new MySqlSingleUserRotator(MySqlFlavor.MariaDb, new RotatorSettings { TlsCaFile = MariaDb.CaFile });
        await _harness.RotateAsync(trusted, arn);
        var password = Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password");
        Assert.True(await MariaDb.CanLoginAsync(user, password));
        Assert.False(await MariaDb.CanLoginAsync(user, "first-Pass1"));
    }

    [Fact]
    public async Task Without_an_ssl_member_TLS_is_used_when_the_server_offers_it()
    {
        var user = MariaDb.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        await MariaDb.ExecuteAsync("ALTER USER @user REQUIRE SSL", ("@user", user)); // a plain login would be refused
        var arn = await _harness.CreateSecretAsync(Secret("mysql", user, "first-Pass1"));

        await _harness.RotateAsync(Builtin(BuiltInRotationFunctions.MySqlSingleUser), arn);

        Assert.True(await MariaDb.CanLoginAsync(user, Field(await _harness.GetAsync(arn, "AWSCURRENT"), "password")));
    }

    [Fact]
    public async Task A_database_that_is_down_fails_the_step_clearly_and_leaves_AWSCURRENT_alone()
    {
        var user = MariaDb.UniqueName("s");
        await _db.CreateUserAsync(user, "first-Pass1");
        var json = Secret("mariadb", user, "first-Pass1", ssl: false);
        json["port"] = MariaDb.ClosedPort();
        var arn = await _harness.CreateSecretAsync(json);
        var before = await _harness.GetAsync(arn, "AWSCURRENT");
        var function = Builtin(BuiltInRotationFunctions.MariaDbSingleUser);
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret);

        var error = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));

        Assert.StartsWith($"Unable to log into database with previous, current, or pending secret of secret arn {arn}", error.Message, StringComparison.Ordinal);
        Assert.Contains("Unable to connect", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("first-Pass1", error.Message, StringComparison.Ordinal);
        var after = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(before.VersionId, after.VersionId);
        Assert.Equal(before.SecretString, after.SecretString);
        Assert.True(await MariaDb.CanLoginAsync(user, "first-Pass1"));
        await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.TestSecret));
    }

    // ---- alternating users ----

    [Fact]
    public async Task Alternating_users_MariaDB_clone_gets_the_grants_and_both_logins_keep_working()
    {
        var user = MariaDb.UniqueName("m");
        var database = MariaDb.UniqueName("db");
        var role = MariaDb.UniqueName("r");
        await _db.CreateDatabaseAsync(database);
        await _db.CreateUserAsync(user, "first-Pass1");
        await MariaDb.GrantAsync("SELECT, INSERT", $"`{database}`.*", user);
        await MariaDb.GrantAsync("UPDATE", $"`{database}`.`items`", user, withGrantOption: true);
        await _db.CreateRoleAsync(role);
        await MariaDb.GrantAsync("DELETE", $"`{database}`.*", role);
        await MariaDb.ExecuteAsync($"GRANT `{role}` TO @user; SET DEFAULT ROLE `{role}` FOR @user", ("@user", user));
        var masterArn = await _harness.CreateSecretAsync(MasterSecret("mariadb"), name: MariaDb.UniqueName("master"));
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1", ssl: false, dbname: database, masterArn: masterArn));
        var function = Builtin(BuiltInRotationFunctions.MariaDbMultiUser);

        // First rotation: user_clone is created with user's grants and becomes current.
        await _harness.RotateAsync(function, arn);
        var first = await _harness.GetAsync(arn, "AWSCURRENT");
        var clone = user + "_clone";
        Assert.Equal(clone, Field(first, "username"));
        Assert.Equal(masterArn, Field(first, "masterarn"));
        var grants = await MariaDb.ShowGrantsAsync(clone);
        Assert.Contains($"GRANT SELECT, INSERT ON `{database}`.* TO `{clone}`@`%`", grants);
        Assert.Contains($"GRANT UPDATE ON `{database}`.`items` TO `{clone}`@`%` WITH GRANT OPTION", grants);
        Assert.Contains($"GRANT `{role}` TO `{clone}`@`%`", grants);
        Assert.Contains($"SET DEFAULT ROLE `{role}` FOR `{clone}`@`%`", grants);
        var clonePassword = Field(first, "password");
        await MariaDb.ExecuteAsUserAsync(clone, clonePassword, database, "INSERT INTO items VALUES (1, 'by the clone'); UPDATE items SET name = 'updated' WHERE id = 1; DELETE FROM items WHERE id = 1");
        Assert.True(await MariaDb.CanLoginAsync(user, "first-Pass1", database)); // previous still works
        Assert.Equal(user, Field(await _harness.GetAsync(arn, "AWSPREVIOUS"), "username"));

        // Second rotation: back to user, with a new password; the clone's credentials still work.
        await _harness.RotateAsync(function, arn);
        var second = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(user, Field(second, "username"));
        Assert.NotEqual("first-Pass1", Field(second, "password"));
        Assert.True(await MariaDb.CanLoginAsync(user, Field(second, "password"), database));
        Assert.False(await MariaDb.CanLoginAsync(user, "first-Pass1"));
        var previous = await _harness.GetAsync(arn, "AWSPREVIOUS");
        Assert.Equal(clone, Field(previous, "username"));
        Assert.True(await MariaDb.CanLoginAsync(clone, Field(previous, "password"), database));
        Assert.Equal(1L, Convert.ToInt64(await MariaDb.ScalarAsUserAsync(user, Field(second, "password"), database, "SELECT COUNT(*) + 1 FROM items"), CultureInfo.InvariantCulture));

        // Third rotation: the clone again, with a new password; user keeps the second one.
        await _harness.RotateAsync(function, arn);
        var third = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(clone, Field(third, "username"));
        Assert.NotEqual(clonePassword, Field(third, "password"));
        Assert.True(await MariaDb.CanLoginAsync(clone, Field(third, "password"), database));
        Assert.False(await MariaDb.CanLoginAsync(clone, clonePassword));
        Assert.True(await MariaDb.CanLoginAsync(user, Field(second, "password"), database));
    }

    [Fact]
    public async Task Alternating_users_MySQL_template_works_against_MariaDB()
    {
        var user = MariaDb.UniqueName("m");
        var database = MariaDb.UniqueName("db");
        await _db.CreateDatabaseAsync(database);
        await _db.CreateUserAsync(user, "first-Pass1");
        await MariaDb.GrantAsync("SELECT, INSERT", $"`{database}`.*", user);
        var masterArn = await _harness.CreateSecretAsync(MasterSecret("mysql"), name: MariaDb.UniqueName("master"));
        var arn = await _harness.CreateSecretAsync(Secret("mysql", user, "first-Pass1", ssl: "FALSE", dbname: database, masterArn: masterArn));
        var function = Builtin(BuiltInRotationFunctions.MySqlMultiUser);

        await _harness.RotateAsync(function, arn);
        var first = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(user + "_clone", Field(first, "username"));
        await MariaDb.ExecuteAsUserAsync(user + "_clone", Field(first, "password"), database, "INSERT INTO items VALUES (7, 'x')");
        Assert.True(await MariaDb.CanLoginAsync(user, "first-Pass1", database));

        await _harness.RotateAsync(function, arn);
        var second = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(user, Field(second, "username"));
        Assert.True(await MariaDb.CanLoginAsync(user, Field(second, "password"), database));
        Assert.True(await MariaDb.CanLoginAsync(user + "_clone", Field(first, "password"), database));
    }

    [Fact]
    public async Task Alternating_users_quote_odd_usernames_safely_and_copy_the_TLS_requirement()
    {
        var user = "o'q`" + MariaDb.UniqueName("m");
        var database = MariaDb.UniqueName("db");
        await _db.CreateDatabaseAsync(database);
        await _db.CreateUserAsync(user, "first-Pass1");
        await MariaDb.GrantAsync("SELECT", $"`{database}`.*", user);
        await MariaDb.ExecuteAsync("ALTER USER @user REQUIRE SSL", ("@user", user));
        var masterArn = await _harness.CreateSecretAsync(MasterSecret("mariadb"), name: MariaDb.UniqueName("master"));
        // No ssl member: TLS when offered, which the REQUIRE SSL login needs.
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1", dbname: database, masterArn: masterArn));

        await _harness.RotateAsync(new MySqlMultiUserRotator(MySqlFlavor.MariaDb, new RotatorSettings { ExcludeCharacters = "" }), arn);

        var current = await _harness.GetAsync(arn, "AWSCURRENT");
        Assert.Equal(user + "_clone", Field(current, "username"));
        Assert.True(await MariaDb.CanLoginAsync(user + "_clone", Field(current, "password"), database));
        Assert.Equal(0L, Convert.ToInt64(await MariaDb.ScalarAsUserAsync(user + "_clone", Field(current, "password"), database, "SELECT COUNT(*) FROM items"), CultureInfo.InvariantCulture));
        Assert.Equal("ANY", await MariaDb.SslTypeAsync(user + "_clone"));
    }

    [Fact]
    public async Task Alternating_users_refuse_a_clone_name_over_the_limit()
    {
        const string masterArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:m-abcdef";
        var mysqlArn = await _harness.CreateSecretAsync(Secret("mysql", "eleven_char", "first-Pass1", masterArn: masterArn));
        var mysqlToken = await _harness.BeginRotationAsync(mysqlArn);

        var error = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.StepAsync(Builtin(BuiltInRotationFunctions.MySqlMultiUser), mysqlArn, mysqlToken, RotationStep.CreateSecret));
        Assert.Equal("Unable to clone user, username length with _clone appended would exceed 16 characters", error.Message);

        // The MariaDB template allows 80 characters, and the limit is a setting.
        var mariadbArn = await _harness.CreateSecretAsync(Secret("mariadb", "eleven_char", "first-Pass1", masterArn: masterArn));
        var mariadbToken = await _harness.BeginRotationAsync(mariadbArn);
        await _harness.StepAsync(Builtin(BuiltInRotationFunctions.MariaDbMultiUser), mariadbArn, mariadbToken, RotationStep.CreateSecret);
        Assert.Equal("eleven_char_clone", Field(await _harness.GetAsync(mariadbArn, "AWSPENDING", mariadbToken), "username"));
        var limited = new MySqlMultiUserRotator(MySqlFlavor.MariaDb, new RotatorSettings { UsernameCharacterLimit = 12 });
        var limitError = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.StepAsync(limited, mariadbArn, mariadbToken, RotationStep.SetSecret));
        Assert.Equal("Unable to clone user, username length with _clone appended would exceed 12 characters", limitError.Message);
    }

    [Fact]
    public async Task Alternating_users_refuse_a_pending_user_that_is_not_the_other_login()
    {
        var user = MariaDb.UniqueName("m");
        var victim = MariaDb.UniqueName("v");
        await _db.CreateUserAsync(user, "first-Pass1");
        await _db.CreateUserAsync(victim, "victim-Pass1");
        var masterArn = await _harness.CreateSecretAsync(MasterSecret("mariadb"), name: MariaDb.UniqueName("master"));
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1", ssl: false, masterArn: masterArn));
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.PutPendingAsync(arn, token, Secret("mariadb", victim, "attacker-Pass1", ssl: false, masterArn: masterArn));

        var error = await Assert.ThrowsAsync<RotationStepException>(() =>
            _harness.StepAsync(Builtin(BuiltInRotationFunctions.MariaDbMultiUser), arn, token, RotationStep.SetSecret));

        Assert.Equal($"Attempting to modify user {victim} other than current user or clone {user}", error.Message);
        Assert.True(await MariaDb.CanLoginAsync(victim, "victim-Pass1"));
    }

    [Fact]
    public async Task Alternating_users_refuse_a_master_secret_for_another_host_and_require_a_working_current_login()
    {
        var user = MariaDb.UniqueName("m");
        await _db.CreateUserAsync(user, "first-Pass1");
        var master = MasterSecret("mariadb");
        master["host"] = "localhost";
        var masterArn = await _harness.CreateSecretAsync(master, name: MariaDb.UniqueName("master"));
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", user, "first-Pass1", ssl: false, masterArn: masterArn));
        var function = Builtin(BuiltInRotationFunctions.MariaDbMultiUser);
        var token = await _harness.BeginRotationAsync(arn);
        await _harness.StepAsync(function, arn, token, RotationStep.CreateSecret);

        var hostError = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));
        Assert.Equal($"Current database host {MariaDb.Host} is not the same host as/rds replica of master localhost", hostError.Message);
        Assert.False(await MariaDb.UserExistsAsync(user + "_clone"));

        // With the current password no longer valid, the master credentials are not used at all.
        await MariaDb.ExecuteAsync("ALTER USER @user IDENTIFIED BY 'changed-Pass1'", ("@user", user));
        var loginError = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.SetSecret));
        Assert.StartsWith($"Unable to log into database using current credentials for secret {arn}", loginError.Message, StringComparison.Ordinal);
        Assert.False(await MariaDb.UserExistsAsync(user + "_clone"));
    }

    // ---- the handler's staging checks (no database involved) ----

    [Fact]
    public async Task The_handler_checks_the_staging_of_the_token_before_any_step()
    {
        var arn = await _harness.CreateSecretAsync(Secret("mariadb", "nobody", "first-Pass1"));
        var function = Builtin(BuiltInRotationFunctions.MariaDbSingleUser);
        var unknown = Guid.NewGuid().ToString();
        var noStage = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, unknown, RotationStep.CreateSecret));
        Assert.Equal($"Secret version {unknown} has no stage for rotation of secret {arn}.", noStage.Message);

        var other = Guid.NewGuid().ToString();
        await _harness.PutAsync(arn, other, Secret("mariadb", "nobody", "x-Pass1"), ["SOMETHING"]);
        var notPending = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, other, RotationStep.SetSecret));
        Assert.Equal($"Secret version {other} not set as AWSPENDING for rotation of secret {arn}.", notPending.Message);

        var token = await _harness.BeginRotationAsync(arn);
        var badStep = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, "rotateSecret"));
        Assert.Equal($"Invalid step parameter rotateSecret for secret {arn}", badStep.Message);

        var currentToken = (await _harness.GetAsync(arn, "AWSCURRENT")).VersionId;
        foreach (var step in RotationStep.All)
        {
            await _harness.StepAsync(function, arn, currentToken, step); // already AWSCURRENT: success, nothing done
        }

        await _harness.SetRotationEnabledAsync(arn, false);
        var disabled = await Assert.ThrowsAsync<RotationStepException>(() => _harness.StepAsync(function, arn, token, RotationStep.CreateSecret));
        Assert.Equal($"Secret {arn} is not enabled for rotation", disabled.Message);
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
            ["host"] = MariaDb.Host,
            ["username"] = user,
            ["password"] = password,
            ["port"] = MariaDb.Port,
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

    private static JsonObject MasterSecret(string engine) => Secret(engine, MariaDb.AdminUser, MariaDb.AdminPassword, ssl: false);

    private static string Field(GetSecretValueResponse value, string name) =>
        JsonNode.Parse(value.SecretString!)![name]!.GetValue<string>();
}

/// <summary>The registry's ARN rules and the grant rewriting, without a database.</summary>
public sealed class BuiltInRotationFunctionsTests
{
    [Theory]
    [InlineData("arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSMySQLRotationSingleUser", BuiltInRotationFunctions.MySqlSingleUser)]
    [InlineData("arn:aws:lambda:eu-west-3:000000000000:function:SecretsManagerRDSMySQLRotationMultiUser", BuiltInRotationFunctions.MySqlMultiUser)]
    [InlineData("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:SecretsManagerRDSMariaDBRotationSingleUser", BuiltInRotationFunctions.MariaDbSingleUser)]
    [InlineData("arn:aws:lambda:local:123456789012:function:SecretsManagerRDSMariaDBRotationMultiUser:$LATEST", BuiltInRotationFunctions.MariaDbMultiUser)]
    [InlineData("arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSMariaDBRotationMultiUser:live", BuiltInRotationFunctions.MariaDbMultiUser)]
    public void Known_names_in_well_formed_ARNs_are_found(string arn, string name)
    {
        var functions = new BuiltInRotationFunctions();
        Assert.NotNull(functions.Find(arn));
        Assert.Same(functions.Find(arn), functions.Find($"arn:aws:lambda:us-east-1:123456789012:function:{name}"));
    }

    [Theory]
    [InlineData("SecretsManagerRDSMySQLRotationSingleUser")]
    [InlineData("arn:aws:lambda:us-east-1:123456789012:function:secretsmanagerrdsmysqlrotationsingleuser")]
    [InlineData("arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSOracleRotationSingleUser")]
    [InlineData("arn:aws:lambda:us-east-1:12345:function:SecretsManagerRDSMySQLRotationSingleUser")]
    [InlineData("arn:aws:lambda::123456789012:function:SecretsManagerRDSMySQLRotationSingleUser")]
    [InlineData("arn:aws:secretsmanager:us-east-1:123456789012:function:SecretsManagerRDSMySQLRotationSingleUser")]
    [InlineData("arn:aws:lambda:us-east-1:123456789012:layer:SecretsManagerRDSMySQLRotationSingleUser")]
    [InlineData(" arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSMySQLRotationSingleUser")]
    [InlineData("")]
    public void Unknown_names_and_malformed_ARNs_are_not_found(string arn) =>
        Assert.Null(new BuiltInRotationFunctions().Find(arn));

    [Fact]
    public void Settings_are_per_function_and_unknown_names_are_refused()
    {
        var settings = new RotatorSettings { PasswordLength = 40 };
        var functions = new BuiltInRotationFunctions(new Dictionary<string, RotatorSettings> { [BuiltInRotationFunctions.MariaDbMultiUser] = settings });
        var multi = (MySqlMultiUserRotator)functions.Find("arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSMariaDBRotationMultiUser")!;
        Assert.Same(settings, multi.Settings);
        Assert.Equal(80, multi.UsernameCharacterLimit);
        var single = (MySqlSingleUserRotator)functions.Find("arn:aws:lambda:us-east-1:123456789012:function:SecretsManagerRDSMySQLRotationSingleUser")!;
        Assert.Equal(32, single.Settings.PasswordLength);
        Assert.Equal(16, new MySqlMultiUserRotator(MySqlFlavor.MySql).UsernameCharacterLimit);
        Assert.Throws<ArgumentException>(() => new BuiltInRotationFunctions(new Dictionary<string, RotatorSettings> { ["Nope"] = settings }));
    }

    [Fact]
    public void Template_environment_variables_keep_their_semantics()
    {
        var settings = RotatorSettings.FromVariables(new Dictionary<string, string>
        {
            ["EXCLUDE_CHARACTERS"] = "xyz",
            ["PASSWORD_LENGTH"] = "20",
            ["EXCLUDE_NUMBERS"] = "YES",
            ["EXCLUDE_PUNCTUATION"] = "1",
            ["EXCLUDE_UPPERCASE"] = "no",
            ["REQUIRE_EACH_INCLUDED_TYPE"] = "false",
            ["USERNAME_CHARACTER_LIMIT"] = "32",
        });
        Assert.Equal(new RotatorSettings
        {
            ExcludeCharacters = "xyz", PasswordLength = 20, ExcludeNumbers = true, ExcludePunctuation = true,
            ExcludeUppercase = false, ExcludeLowercase = false, RequireEachIncludedType = false, UsernameCharacterLimit = 32,
        }, settings);
        var defaults = RotatorSettings.FromVariables(new Dictionary<string, string>()).ToPasswordRequest(RotatorSettings.MySqlDefaultExcludeCharacters);
        Assert.Equal("/@\"'\\", defaults.ExcludeCharacters);
        Assert.Equal(32, defaults.PasswordLength);
        Assert.True(defaults.RequireEachIncludedType);
        Assert.False(defaults.ExcludeNumbers);
    }

    [Theory]
    [InlineData("GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*9F75CEF7FD0C75DC40611DD8F86B6FFF569BF56D'", "GRANT USAGE ON *.* TO @tumbler_login")]
    [InlineData("GRANT SELECT, INSERT ON `appdb`.* TO `app`@`%` WITH GRANT OPTION", "GRANT SELECT, INSERT ON `appdb`.* TO @tumbler_login WITH GRANT OPTION")]
    [InlineData("GRANT `r1` TO `app`@`%`", "GRANT `r1` TO @tumbler_login")]
    [InlineData("SET DEFAULT ROLE `r1` FOR `app`@`%`", "SET DEFAULT ROLE `r1` FOR @tumbler_login")]
    [InlineData("GRANT `r1`@`%` TO `app`@`%` WITH ADMIN OPTION", "GRANT `r1`@`%` TO @tumbler_login WITH ADMIN OPTION")]
    [InlineData("GRANT SELECT ON `x TO y`.* TO 'app'@'%'", "GRANT SELECT ON `x TO y`.* TO @tumbler_login")]
    [InlineData("REVOKE INSERT ON `mysql`.* FROM `app`@`%`", "REVOKE INSERT ON `mysql`.* FROM @tumbler_login")]
    [InlineData("GRANT SELECT ON `d`.* TO app@localhost", "GRANT SELECT ON `d`.* TO @tumbler_login")]
    public void Grant_lines_are_rewritten_for_the_other_login(string line, string expected) =>
        Assert.Equal(expected, MySqlServer.RewriteGrant(line, "app"));

    [Theory]
    [InlineData("{\"engine\":\"mysql\",\"host\":\"h\",\"username\":\"u\",\"username\":\"v\",\"password\":\"p\"}", "an object names the same member twice")]
    [InlineData("{\"engine\":\"mysql\",\"host\":\"h\",\"username\":\"u\\ud800\",\"password\":\"p\"}", "a string holds an escaped half of a surrogate pair")]
    [InlineData("{\"engine\":\"mysql\",\"host\":\"h\",\"username\":\"u\",\"password\":\"p\",\"extra\":[{\"a\":\"\\udc00\"}]}", "a string holds an escaped half of a surrogate pair")]
    [InlineData("{\"engine\":\"mysql\",\"host\":\"h\",\"username\":\"u\",\"password\":\"p\",\"extra\":{\"a\":1,\"a\":2}}", "an object names the same member twice")]
    public void A_secret_value_a_rotation_cannot_read_whole_is_refused_when_parsed_with_a_clear_reason(string json, string reason)
    {
        // JsonNode reads members and strings lazily: without the up-front read these failed later steps with .NET's own texts.
        var error = Assert.Throws<RotationStepException>(() => DatabaseSecret.Parse(json, "The AWSCURRENT value", MySqlServer.DefaultPort, null));
        Assert.Equal($"The AWSCURRENT value is not usable JSON: {reason}", error.Message);
    }

    [Fact]
    public void Quoted_usernames_are_found_in_grant_lines() =>
        Assert.Equal("GRANT SELECT ON `d`.* TO @tumbler_login", MySqlServer.RewriteGrant("GRANT SELECT ON `d`.* TO `o'q``x`@`%`", "o'q`x"));

    [Fact]
    public void A_certificate_for_another_host_name_is_refused_even_from_a_trusted_CA()
    {
        using var key = ECDsa.Create();
        using var certificate = new CertificateRequest("CN=db.example", key, HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        Assert.Equal("it is not issued for the host name in the secret",
            ServerCertificateCheck.Verify(certificate, null, SslPolicyErrors.RemoteCertificateNameMismatch, [certificate]));
        Assert.Null(ServerCertificateCheck.Verify(certificate, null, SslPolicyErrors.None, null));
        Assert.Equal("the server sent no certificate", ServerCertificateCheck.Verify(null, null, SslPolicyErrors.RemoteCertificateNotAvailable, null));
    }

    [Fact]
    public void A_certificate_from_the_configured_CA_that_is_not_for_server_authentication_is_refused()
    {
        using var caKey = ECDsa.Create();
        var caRequest = new CertificateRequest("CN=Test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        X509Certificate2 Leaf(string usage)
        {
            using var key = ECDsa.Create();
            var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
            return request.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(1), [1, 2, 3]);
        }
        using var server = Leaf("1.3.6.1.5.5.7.3.1");
        using var client = Leaf("1.3.6.1.5.5.7.3.2");
        Assert.Null(ServerCertificateCheck.Verify(server, null, SslPolicyErrors.RemoteCertificateChainErrors, [ca]));
        Assert.Equal("it is not issued by the configured CA (NotValidForUsage)",
            ServerCertificateCheck.Verify(client, null, SslPolicyErrors.RemoteCertificateChainErrors, [ca]));
    }

    [Theory]
    [InlineData("8.0.36", false)]
    [InlineData("9.1.0", false)]
    [InlineData("10.11.19-MariaDB-0+deb12u1", true)]
    [InlineData("11.4.2-MariaDB", true)]
    [InlineData("5.7.44-log", true)]
    [InlineData("5.6.51", true)]
    [InlineData("", true)]
    public void SET_PASSWORD_uses_PASSWORD_except_on_MySQL_8_and_later(string version, bool usesFunction) =>
        Assert.Equal(usesFunction, MySqlServer.UsesPasswordFunction(version));
}

/// <summary>SecretsService on a SQLite store in a temp directory, and the rotation placeholder RotateSecret makes.</summary>
internal sealed class RotationHarness : IAsyncDisposable
{
    public const string Region = "us-east-1";
    private static readonly CallContext Caller = CallContext.AsRoot(Region, "123456789012");

    private readonly string _directory;
    private readonly SqliteSecretStore _store;
    private readonly SecretsService _service;

    private RotationHarness(string directory, SqliteSecretStore store, SecretsService service)
    {
        _directory = directory;
        _store = store;
        _service = service;
    }

    public static async Task<RotationHarness> CreateAsync()
    {
        var directory = Directory.CreateTempSubdirectory("tumbler-rotator-tests-").FullName;
        var store = new SqliteSecretStore(Path.Combine(directory, "tumbler.db"));
        await store.InitializeAsync(CancellationToken.None);
        var keys = await KeyRing.OpenAsync(store, RandomNumberGenerator.GetBytes(32), Region, "123456789012", TimeProvider.System, CancellationToken.None);
        return new RotationHarness(directory, store, new SecretsService(store, keys, TimeProvider.System, new SecretsOptions()));
    }

    public async Task<string> CreateSecretAsync(JsonObject value, string? name = null)
    {
        var created = await _service.CreateSecretAsync(new CreateSecretRequest
        {
            Name = name ?? MariaDb.UniqueName("secret", 16),
            SecretString = value.ToJsonString(),
            ClientRequestToken = Guid.NewGuid().ToString(),
        }, Caller, default);
        return created.ARN;
    }

    public Task<GetSecretValueResponse> GetAsync(string arn, string stage, string? versionId = null) =>
        _service.GetSecretValueAsync(new GetSecretValueRequest { SecretId = arn, VersionStage = stage, VersionId = versionId }, Caller, default);

    public Task PutAsync(string arn, string token, JsonObject value, IReadOnlyList<string>? stages) =>
        _service.PutSecretValueAsync(new PutSecretValueRequest
        {
            SecretId = arn, ClientRequestToken = token, SecretString = value.ToJsonString(), VersionStages = stages,
        }, Caller, default);

    /// <summary>Gives the (valueless) pending version a value, as a createSecret of someone else would.</summary>
    public Task PutPendingAsync(string arn, string token, JsonObject value) => PutAsync(arn, token, value, ["AWSPENDING"]);

    /// <summary>A new AWSCURRENT value (the old one becomes AWSPREVIOUS).</summary>
    public Task PutCurrentAsync(string arn, JsonObject value) => PutAsync(arn, Guid.NewGuid().ToString(), value, null);

    public async Task<Dictionary<string, List<string>>> LabelsAsync(string arn)
    {
        var described = await _service.DescribeSecretAsync(new SecretIdRequest { SecretId = arn }, Caller, default);
        return described.VersionIdsToStages?.ToDictionary(p => p.Key, p => p.Value.Order(StringComparer.Ordinal).ToList()) ?? [];
    }

    /// <summary>
    /// What RotateSecret does before the first step: rotation enabled, AWSPENDING taken off any version
    /// still holding it, and a new version (the token) with AWSPENDING and no value.
    /// </summary>
    public async Task<string> BeginRotationAsync(string arn)
    {
        var token = Guid.NewGuid().ToString();
        await _store.WriteAsync(async writer =>
        {
            var secret = await writer.FindSecretAsync(Region, SecretLookup.ByArn(arn)) ?? throw new InvalidOperationException(arn);
            foreach (var version in secret.Versions.Where(v => v.Labels.Contains("AWSPENDING")))
            {
                version.Labels.Remove("AWSPENDING");
                await writer.UpdateVersionAsync(secret.Key, version, null);
            }
            secret.RotationEnabled = true;
            await writer.UpdateSecretAsync(secret);
            await writer.InsertVersionAsync(secret.Key, new VersionEntity
            {
                VersionId = token,
                Labels = ["AWSPENDING"],
                CreatedDate = DateTimeOffset.UtcNow,
                HasValue = false,
            }, null);
            return token;
        }, CancellationToken.None);
        return token;
    }

    public async Task SetRotationEnabledAsync(string arn, bool enabled) =>
        await _store.WriteAsync(async writer =>
        {
            var secret = await writer.FindSecretAsync(Region, SecretLookup.ByArn(arn)) ?? throw new InvalidOperationException(arn);
            secret.RotationEnabled = enabled;
            await writer.UpdateSecretAsync(secret);
            return 0;
        }, CancellationToken.None);

    /// <summary>One step, with the client the engine gives functions: scoped to this secret and its masterarn.</summary>
    public Task StepAsync(IRotationFunction function, string arn, string token, string step) =>
        function.InvokeAsync(new RotationEvent(arn, token, step, Guid.NewGuid().ToString()), new ScopedSecretsClient(_service, Caller, arn), CancellationToken.None);

    /// <summary>A whole rotation: the placeholder, then the four steps in order. Returns the token.</summary>
    public async Task<string> RotateAsync(IRotationFunction function, string arn)
    {
        var token = await BeginRotationAsync(arn);
        foreach (var step in RotationStep.All)
        {
            await StepAsync(function, arn, token, step);
        }
        return token;
    }

    public async ValueTask DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
