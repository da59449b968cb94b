using System.Security.Cryptography;
using System.Text;
using Tumbler.IntegrationTests.Support;

namespace Tumbler.IntegrationTests;

/// <summary>
/// <c>tumbler serve</c> as an operator meets it: first start, restart on the same data directory,
/// refusals with exit code 1, --accept-any-credentials, and a database file that holds no plaintext.
/// Every test starts its own server(s) on its own temp data directory.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ServeCommandTests
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private static string Unique(string hint) => $"{hint}-{Guid.NewGuid().ToString("N")[..10]}";

    private static TumblerServerOptions Options(string dataDir, string accessKeyId, string secretAccessKey, params string[] extraArgs) =>
        new() { DataDir = dataDir, AccessKeyId = accessKeyId, SecretAccessKey = secretAccessKey, ExtraArgs = extraArgs };

    [Fact]
    public async Task Secrets_survive_a_stop_and_a_start_on_the_same_data_directory()
    {
        using var temp = new TempDirectory();
        var dataDir = Path.Combine(temp.Path, "data");
        var options = Options(dataDir, TumblerServer.NewAccessKeyId(), TumblerServer.NewSecretAccessKey());
        var binary = RandomNumberGenerator.GetBytes(100);
        var binFile = Path.Combine(temp.Path, "value.bin");
        await File.WriteAllBytesAsync(binFile, binary);
        string db = Unique("restart/db"), bin = Unique("restart/bin"), meta = Unique("restart/meta"), doomed = Unique("restart/doomed");
        string dbArn, binArn, v1, v2;

        await using (var first = await TumblerServer.StartAsync(options))
        {
            var aws = AwsCli.For(first);
            var created = (await aws.SecretsManager("create-secret", "--name", db, "--secret-string", "{\"password\":\"one\"}")).Ok().Json;
            dbArn = created.Str("ARN");
            v1 = created.Str("VersionId");
            v2 = (await aws.SecretsManager("put-secret-value", "--secret-id", db, "--secret-string", "{\"password\":\"two\"}")).Ok().Json.Str("VersionId");
            (await aws.SecretsManager("update-secret-version-stage", "--secret-id", db, "--version-stage", "GREEN", "--move-to-version-id", v1)).Ok();
            binArn = (await aws.SecretsManager("create-secret", "--name", bin, "--secret-binary", "fileb://" + binFile)).Ok().Json.Str("ARN");
            (await aws.SecretsManager("create-secret", "--name", meta, "--secret-string", "m", "--description", "kept", "--tags", "Key=k,Value=v")).Ok();
            (await aws.SecretsManager("create-secret", "--name", doomed, "--secret-string", "d")).Ok();
            (await aws.SecretsManager("delete-secret", "--secret-id", doomed, "--recovery-window-in-days", "7")).Ok();

            var exit = await first.StopAsync(TumblerServer.Sigterm);
            Assert.True(exit == 0, $"SIGTERM must stop the server with exit code 0, got {exit}\n{first.StandardError}");
        }

        await using var second = await TumblerServer.StartAsync(options);
        var again = AwsCli.For(second);
        var current = (await again.SecretsManager("get-secret-value", "--secret-id", db)).Ok().Json;
        Assert.Equal(dbArn, current.Str("ARN"));
        Assert.Equal(v2, current.Str("VersionId"));
        Assert.Equal("{\"password\":\"two\"}", current.Str("SecretString"));
        var previous = (await again.SecretsManager("get-secret-value", "--secret-id", dbArn, "--version-stage", "AWSPREVIOUS")).Ok().Json;
        Assert.Equal("{\"password\":\"one\"}", previous.Str("SecretString"));
        Assert.Equal(["AWSPREVIOUS", "GREEN"], previous.Strings("VersionStages").Order(StringComparer.Ordinal));

        var binValue = (await again.SecretsManager("get-secret-value", "--secret-id", bin)).Ok().Json;
        Assert.Equal(binArn, binValue.Str("ARN"));
        Assert.Equal(binary, Convert.FromBase64String(binValue.Str("SecretBinary")));

        var described = (await again.SecretsManager("describe-secret", "--secret-id", meta)).Ok().Json;
        Assert.Equal("kept", described.Str("Description"));
        Assert.Equal("[{\"Key\":\"k\",\"Value\":\"v\"}]", System.Text.Json.JsonSerializer.Serialize(described.GetProperty("Tags")));

        Assert.True((await again.SecretsManager("describe-secret", "--secret-id", doomed)).Ok().Json.Has("DeletedDate"));
        CliAssert.AwsError(await again.SecretsManager("get-secret-value", "--secret-id", doomed), "InvalidRequestException", "GetSecretValue", null);

        var exit2 = await second.StopAsync(TumblerServer.Sigint);
        Assert.True(exit2 == 0, $"SIGINT must stop the server with exit code 0, got {exit2}\n{second.StandardError}");
    }

    [Fact]
    public async Task First_start_writes_a_credentials_file_and_a_private_root_key_that_later_starts_reuse()
    {
        using var temp = new TempDirectory();
        var dataDir = Path.Combine(temp.Path, "data");
        var options = new TumblerServerOptions { DataDir = dataDir, UseEnvironmentCredentials = false };
        var credentialsFile = Path.Combine(dataDir, "credentials");
        var rootKey = Path.Combine(dataDir, "root.key");
        var name = Unique("creds/app");
        byte[] credentialsBytes, rootKeyBytes;

        await using (var server = await TumblerServer.StartAsync(options))
        {
            Assert.True(Directory.Exists(dataDir));
            Assert.True(File.Exists(rootKey), "root.key missing");
            Assert.True(File.Exists(credentialsFile), "credentials missing");
            Assert.True(File.Exists(Path.Combine(dataDir, "tumbler.db")), "tumbler.db missing");
            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(rootKey));
            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(credentialsFile));
            Assert.Contains("[default]", await File.ReadAllTextAsync(credentialsFile), StringComparison.Ordinal);
            Assert.Contains("credentials", server.StandardOutput + server.StandardError, StringComparison.OrdinalIgnoreCase);

            // The file works as it is for the aws CLI.
            var aws = AwsCli.WithCredentialsFile(server.Endpoint, credentialsFile);
            (await aws.SecretsManager("create-secret", "--name", name, "--secret-string", "from-file")).Ok();
            Assert.Equal("from-file", (await aws.SecretsManager("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));

            // Anyone else is turned away.
            var stranger = new AwsCli(server.Endpoint, TumblerServer.NewAccessKeyId(), TumblerServer.NewSecretAccessKey());
            CliAssert.AwsError(await stranger.SecretsManager("get-secret-value", "--secret-id", name), "UnrecognizedClientException", "GetSecretValue",
                "The security token included in the request is invalid.");
            var wrongSecret = new AwsCli(server.Endpoint, server.AccessKeyId, TumblerServer.NewSecretAccessKey());
            CliAssert.AwsError(await wrongSecret.SecretsManager("get-secret-value", "--secret-id", name), "InvalidSignatureException", "GetSecretValue", null);

            credentialsBytes = await File.ReadAllBytesAsync(credentialsFile);
            rootKeyBytes = await File.ReadAllBytesAsync(rootKey);
            Assert.Equal(0, await server.StopAsync());
        }

        await using (var restarted = await TumblerServer.StartAsync(options))
        {
            Assert.Equal(credentialsBytes, await File.ReadAllBytesAsync(credentialsFile));
            Assert.Equal(rootKeyBytes, await File.ReadAllBytesAsync(rootKey));
            var aws = AwsCli.WithCredentialsFile(restarted.Endpoint, credentialsFile);
            Assert.Equal("from-file", (await aws.SecretsManager("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
            Assert.Equal(0, await restarted.StopAsync());
        }
    }

    [Fact]
    public async Task A_missing_root_key_for_an_existing_store_is_refused_and_not_replaced()
    {
        using var temp = new TempDirectory();
        var options = Options(Path.Combine(temp.Path, "data"), TumblerServer.NewAccessKeyId(), TumblerServer.NewSecretAccessKey());
        await SeedAsync(options, Unique("nokey/app"), "value");
        var rootKey = Path.Combine(options.DataDir!, "root.key");
        File.Delete(rootKey);

        var outcome = await TumblerServer.RunExpectingExitAsync(options);
        AssertRefused(outcome);
        Assert.Matches("(?i)root[ ._-]?key", outcome.StandardError);
        Assert.False(File.Exists(rootKey), "the server must not create a new root key over existing data");
    }

    [Fact]
    public async Task A_wrong_root_key_is_refused_and_the_right_one_still_opens_the_data()
    {
        using var temp = new TempDirectory();
        var options = Options(Path.Combine(temp.Path, "data"), TumblerServer.NewAccessKeyId(), TumblerServer.NewSecretAccessKey());
        var name = Unique("wrongkey/app");
        await SeedAsync(options, name, "precious");
        var rootKey = Path.Combine(options.DataDir!, "root.key");
        var original = await File.ReadAllBytesAsync(rootKey);

        await File.WriteAllBytesAsync(rootKey, OtherKeyInTheSameFormat(original));
        var outcome = await TumblerServer.RunExpectingExitAsync(options);
        AssertRefused(outcome);
        Assert.Matches("(?i)root[ ._-]?key", outcome.StandardError);

        await File.WriteAllBytesAsync(rootKey, original);
        await using var server = await TumblerServer.StartAsync(options);
        Assert.Equal("precious", (await AwsCli.For(server).SecretsManager("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
    }

    [Fact]
    public async Task A_wrong_root_key_in_the_environment_is_refused_even_beside_the_right_root_key_file()
    {
        using var temp = new TempDirectory();
        var options = Options(Path.Combine(temp.Path, "data"), TumblerServer.NewAccessKeyId(), TumblerServer.NewSecretAccessKey());
        var name = Unique("envkey/app");
        await SeedAsync(options, name, "precious");

        // TUMBLER_ROOT_KEY wins over root.key: a wrong one (a typo, another deployment's) must not open the store by
        // falling back to the file the operator believes unused.
        var wrong = options with
        {
            Environment = new Dictionary<string, string> { ["TUMBLER_ROOT_KEY"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) },
        };
        var outcome = await TumblerServer.RunExpectingExitAsync(wrong);
        AssertRefused(outcome);
        Assert.Contains("not this store's current root key. Refusing to start: give the store's current root key", outcome.StandardError, StringComparison.Ordinal);

        var right = options with
        {
            Environment = new Dictionary<string, string> { ["TUMBLER_ROOT_KEY"] = (await File.ReadAllTextAsync(Path.Combine(options.DataDir!, "root.key"))).Trim() },
        };
        await using var server = await TumblerServer.StartAsync(right);
        Assert.Equal("precious", (await AwsCli.For(server).SecretsManager("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
    }

    [Fact]
    public async Task A_second_server_on_a_data_directory_in_use_is_refused_and_the_audit_chain_stays_whole()
    {
        using var temp = new TempDirectory();
        var options = Options(Path.Combine(temp.Path, "data"), TumblerServer.NewAccessKeyId(), TumblerServer.NewSecretAccessKey());
        var name = Unique("locked/app");
        await using (var first = await TumblerServer.StartAsync(options))
        {
            (await AwsCli.For(first).SecretsManager("create-secret", "--name", name, "--secret-string", "first")).Ok();

            var second = await TumblerServer.RunExpectingExitAsync(options);
            AssertRefused(second);
            Assert.Contains("another tumbler serve", second.StandardError, StringComparison.Ordinal);
            (await AwsCli.For(first).SecretsManager("put-secret-value", "--secret-id", name, "--secret-string", "still first")).Ok();
            Assert.Equal(0, await first.StopAsync());
        }

        // Released when the server stops: the next start serves the directory, and the audit log is one unbroken chain.
        await using var next = await TumblerServer.StartAsync(options);
        Assert.Equal("still first", (await AwsCli.For(next).SecretsManager("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
        var verify = await ProcessRunner.RunAsync(TumblerServer.DotnetHost, [TumblerServer.TumblerDll, "audit", "verify", "--data-dir", options.DataDir!],
            ProcessRunner.BaseEnvironment(null, null));
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task A_data_directory_that_cannot_be_opened_is_refused()
    {
        using var temp = new TempDirectory();
        var notADirectory = Path.Combine(temp.Path, "plain-file");
        await File.WriteAllTextAsync(notADirectory, "not a directory");

        var outcome = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions { DataDir = notADirectory });
        AssertRefused(outcome);
    }

    [Fact]
    public async Task Accept_any_credentials_on_loopback_accepts_any_access_key_and_says_it_is_insecure()
    {
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { ExtraArgs = ["--accept-any-credentials"] });
        Assert.Contains("insecure", server.StandardOutput + server.StandardError, StringComparison.OrdinalIgnoreCase);

        var anyone = new AwsCli(server.Endpoint, "AKIAANYTHINGATALL123", "whatever-secret-key");
        var name = Unique("any/app");
        (await anyone.SecretsManager("create-secret", "--name", name, "--secret-string", "open")).Ok();
        var someoneElse = new AwsCli(server.Endpoint, TumblerServer.NewAccessKeyId(), TumblerServer.NewSecretAccessKey());
        Assert.Equal("open", (await someoneElse.SecretsManager("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
        Assert.Equal(0, await server.StopAsync());
    }

    [Fact]
    public async Task Accept_any_credentials_is_refused_on_a_non_loopback_address()
    {
        var outcome = await TumblerServer.RunExpectingExitAsync(new TumblerServerOptions
        {
            ListenHost = "0.0.0.0",
            ExtraArgs = ["--accept-any-credentials"],
        });
        AssertRefused(outcome);
        Assert.Contains("accept-any-credentials", outcome.StandardError, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Account_id_option_goes_into_every_arn()
    {
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { ExtraArgs = ["--account-id", "210987654321"] });
        var name = Unique("acct/app");
        var arn = (await AwsCli.For(server).SecretsManager("create-secret", "--name", name, "--secret-string", "x")).Ok().Json.Str("ARN");
        CliAssert.ArnOf(arn, name, account: "210987654321");
    }

    [Fact]
    public async Task The_region_of_the_request_signature_goes_into_the_arn()
    {
        await using var server = await TumblerServer.StartAsync(new TumblerServerOptions { ExtraArgs = ["--region", "us-east-1,eu-west-1"] });
        var ireland = new AwsCli(server.Endpoint, server.AccessKeyId, server.SecretAccessKey, "eu-west-1");
        var virginia = new AwsCli(server.Endpoint, server.AccessKeyId, server.SecretAccessKey, "us-east-1");
        var name = Unique("region/app");

        var arn = (await ireland.SecretsManager("create-secret", "--name", name, "--secret-string", "eu")).Ok().Json.Str("ARN");
        CliAssert.ArnOf(arn, name, region: "eu-west-1");
        Assert.Equal("eu", (await ireland.SecretsManager("get-secret-value", "--secret-id", arn)).Ok().Json.Str("SecretString"));
        // Each region is its own namespace, as on AWS.
        CliAssert.AwsError(await virginia.SecretsManager("describe-secret", "--secret-id", name), "ResourceNotFoundException", "DescribeSecret",
            "Secrets Manager can't find the specified secret.");
        var usArn = (await virginia.SecretsManager("create-secret", "--name", name, "--secret-string", "us")).Ok().Json.Str("ARN");
        CliAssert.ArnOf(usArn, name, region: "us-east-1");

        // A region the server does not serve is refused, not silently mapped.
        var tokyo = new AwsCli(server.Endpoint, server.AccessKeyId, server.SecretAccessKey, "ap-northeast-1");
        var refused = await tokyo.SecretsManager("list-secrets");
        Assert.True(refused.ExitCode == 254, "expected a service error for an unserved region:\n" + refused);
    }

    [Fact]
    public async Task The_database_files_hold_no_secret_value_in_plaintext()
    {
        using var temp = new TempDirectory();
        var options = Options(Path.Combine(temp.Path, "data"), TumblerServer.NewAccessKeyId(), TumblerServer.NewSecretAccessKey());
        var name = Unique("grep/app");
        var canary = "tumbler-canary-" + Guid.NewGuid().ToString("N");
        var canary2 = "second-canary-" + Guid.NewGuid().ToString("N");
        var binary = RandomNumberGenerator.GetBytes(48);
        var binFile = Path.Combine(temp.Path, "v.bin");
        await File.WriteAllBytesAsync(binFile, binary);

        var needles = new Dictionary<string, byte[]>
        {
            ["string value (UTF-8)"] = Encoding.UTF8.GetBytes(canary),
            ["string value (base64)"] = Encoding.ASCII.GetBytes(Convert.ToBase64String(Encoding.UTF8.GetBytes(canary))),
            ["updated value (UTF-8)"] = Encoding.UTF8.GetBytes(canary2),
            ["binary value (raw)"] = binary,
            ["binary value (base64)"] = Encoding.ASCII.GetBytes(Convert.ToBase64String(binary)),
        };

        await using var server = await TumblerServer.StartAsync(options);
        var aws = AwsCli.For(server);
        (await aws.SecretsManager("create-secret", "--name", name, "--secret-string", canary, "--description", "grep test")).Ok();
        (await aws.SecretsManager("put-secret-value", "--secret-id", name, "--secret-binary", "fileb://" + binFile)).Ok();
        (await aws.SecretsManager("update-secret", "--secret-id", name, "--secret-string", canary2)).Ok();
        Assert.Equal(canary2, (await aws.SecretsManager("get-secret-value", "--secret-id", name)).Ok().Json.Str("SecretString"));
        Assert.Equal(binary, Convert.FromBase64String((await aws.SecretsManager("get-secret-value", "--secret-id", name, "--version-stage", "AWSPREVIOUS")).Ok().Json.Str("SecretBinary")));

        // While running (WAL not yet checkpointed) and after a clean stop.
        AssertNoNeedles(options.DataDir!, needles, name);
        Assert.Equal(0, await server.StopAsync());
        AssertNoNeedles(options.DataDir!, needles, name);

        var logs = Encoding.UTF8.GetBytes(server.StandardOutput + server.StandardError);
        foreach (var (what, needle) in needles)
        {
            Assert.True(logs.AsSpan().IndexOf(needle) < 0, $"the server's output contains the {what}");
        }
    }

    private static void AssertNoNeedles(string dataDir, Dictionary<string, byte[]> needles, string secretName)
    {
        var db = Path.Combine(dataDir, "tumbler.db");
        Assert.True(File.Exists(db) && new FileInfo(db).Length > 0, "tumbler.db missing or empty");
        var files = new[] { db, db + "-wal" }.Where(File.Exists).ToList();
        // Every other file in the data directory must be clean too (root.key, credentials, journals...).
        files.AddRange(Directory.EnumerateFiles(dataDir, "*", SearchOption.AllDirectories).Where(f => !files.Contains(f)));

        var nameBytes = Encoding.UTF8.GetBytes(secretName);
        var nameSeen = false;
        foreach (var file in files)
        {
            byte[] content;
            using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            using (var memory = new MemoryStream())
            {
                stream.CopyTo(memory);
                content = memory.ToArray();
            }
            nameSeen |= content.AsSpan().IndexOf(nameBytes) >= 0;
            foreach (var (what, needle) in needles)
            {
                Assert.True(content.AsSpan().IndexOf(needle) < 0, $"{Path.GetFileName(file)} contains the {what} in plaintext");
            }
        }
        // Sanity: the search does look at the right bytes (the name is stored, unencrypted, for lookups).
        Assert.True(nameSeen, $"the secret name was not found in {string.Join(", ", files.Select(Path.GetFileName))}: is this the database?");
    }

    private static async Task SeedAsync(TumblerServerOptions options, string name, string value)
    {
        await using var server = await TumblerServer.StartAsync(options);
        (await AwsCli.For(server).SecretsManager("create-secret", "--name", name, "--secret-string", value)).Ok();
        Assert.Equal(0, await server.StopAsync());
    }

    private static void AssertRefused(ServeOutcome outcome)
    {
        Assert.False(outcome.BecameReady, "the server must refuse to start:\n" + outcome);
        Assert.True(outcome.ExitCode == 1, "expected exit code 1:\n" + outcome);
        Assert.False(string.IsNullOrWhiteSpace(outcome.StandardError), "expected a message on stderr:\n" + outcome);
        Assert.DoesNotContain("Unhandled exception", outcome.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", outcome.StandardError, StringComparison.Ordinal);
    }

    /// <summary>32 fresh random bytes written the way the server wrote its key (raw, base64 or hex text).</summary>
    private static byte[] OtherKeyInTheSameFormat(byte[] original)
    {
        var fresh = RandomNumberGenerator.GetBytes(32);
        if (original.Length == 32)
        {
            return fresh;
        }
        var text = Encoding.ASCII.GetString(original);
        var trimmed = text.Trim();
        var trailing = text[text.TrimEnd().Length..];
        if (trimmed.Length == 64 && trimmed.All(Uri.IsHexDigit))
        {
            var hex = Convert.ToHexString(fresh);
            return Encoding.ASCII.GetBytes((trimmed.Any(char.IsAsciiLetterLower) ? hex.ToLowerInvariant() : hex) + trailing);
        }
        try
        {
            if (Convert.FromBase64String(trimmed).Length == 32)
            {
                return Encoding.ASCII.GetBytes(Convert.ToBase64String(fresh) + trailing);
            }
        }
        catch (FormatException)
        {
        }
        Assert.Fail($"unrecognised root.key format ({original.Length} bytes): {text}");
        return [];
    }
}
