using System.Net;
using System.Text.Json;
using Tumbler.Server.Audit;
using Tumbler.Server.Tests.Support;

namespace Tumbler.Server.Tests.Keys;

/// <summary>The KMS-like keys admin API (TumblerKMS.*, signed for "kms") over real signed HTTP, and what a key's state does to secrets.</summary>
public sealed class KeysApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Account = "123456789012";

    private async Task<(HttpStatusCode Status, string? Type, JsonElement Body)> Kms(string operation, object body, string? accessKeyId = null, string? secret = null)
    {
        using var response = await fixture.SendAsAsync("TumblerKMS." + operation, JsonSerializer.Serialize(body),
            accessKeyId ?? fixture.Server.Root.AccessKeyId, secret ?? fixture.Server.Root.SecretAccessKey, "kms");
        var text = await response.Content.ReadAsStringAsync();
        var json = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return (response.StatusCode, response.IsSuccessStatusCode ? null : json.GetProperty("__type").GetString(), json);
    }

    private async Task<JsonElement> Ok(string operation, object body)
    {
        var (status, type, json) = await Kms(operation, body);
        Assert.True(status == HttpStatusCode.OK, $"{operation}: {type} {json}");
        return json;
    }

    private async Task<(string? Type, string Body)> Secrets(string operation, object body)
    {
        // Raw calls: the token an SDK would fill in.
        var withToken = JsonSerializer.SerializeToNode(body)!.AsObject();
        if (operation is "CreateSecret" or "PutSecretValue")
        {
            withToken["ClientRequestToken"] = Guid.NewGuid().ToString();
        }
        using var response = await fixture.SendAsync(operation, withToken.ToJsonString());
        var text = await response.Content.ReadAsStringAsync();
        return (response.IsSuccessStatusCode ? null : JsonDocument.Parse(text).RootElement.GetProperty("__type").GetString(), text);
    }

    [Fact]
    public async Task Disabling_a_key_makes_its_secrets_unreadable_and_unwritable_until_it_is_enabled_again()
    {
        var metadata = (await Ok("CreateKey", new { Description = "app keys" })).GetProperty("KeyMetadata");
        var keyId = metadata.GetProperty("KeyId").GetString()!;
        var keyArn = metadata.GetProperty("Arn").GetString()!;
        Assert.Equal($"arn:aws:kms:us-east-1:{Account}:key/{keyId}", keyArn);
        Assert.Equal(("Enabled", true, "app keys", "CUSTOMER"), (metadata.GetProperty("KeyState").GetString(), metadata.GetProperty("Enabled").GetBoolean(),
            metadata.GetProperty("Description").GetString(), metadata.GetProperty("KeyManager").GetString()));
        Assert.Equal(JsonValueKind.Number, metadata.GetProperty("CreationDate").ValueKind);
        await Ok("CreateAlias", new { AliasName = "alias/keys-test/app", TargetKeyId = keyArn });

        // The alias (and its ARN) resolve in CreateSecret.
        Assert.Null((await Secrets("CreateSecret", new { Name = "keys/db", SecretString = "v1-secret", KmsKeyId = "alias/keys-test/app" })).Type);
        Assert.Null((await Secrets("CreateSecret", new { Name = "keys/db2", SecretString = "v2", KmsKeyId = $"arn:aws:kms:us-east-1:{Account}:alias/keys-test/app" })).Type);
        Assert.Contains("v1-secret", (await Secrets("GetSecretValue", new { SecretId = "keys/db" })).Body, StringComparison.Ordinal);

        await Ok("DisableKey", new { KeyId = "alias/keys-test/app" });
        var described = (await Ok("DescribeKey", new { KeyId = keyId })).GetProperty("KeyMetadata");
        Assert.Equal(("Disabled", false), (described.GetProperty("KeyState").GetString(), described.GetProperty("Enabled").GetBoolean()));
        Assert.Equal("alias/keys-test/app", described.GetProperty("Aliases")[0].GetString());

        var read = await Secrets("GetSecretValue", new { SecretId = "keys/db" });
        Assert.Equal("DecryptionFailure", read.Type);
        Assert.StartsWith("Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
            JsonDocument.Parse(read.Body).RootElement.GetProperty("Message").GetString(), StringComparison.Ordinal);
        var write = await Secrets("PutSecretValue", new { SecretId = "keys/db", SecretString = "v2-secret" });
        Assert.Equal("EncryptionFailure", write.Type);
        var create = await Secrets("CreateSecret", new { Name = "keys/db3", SecretString = "x", KmsKeyId = keyId });
        Assert.Equal("EncryptionFailure", create.Type);

        await Ok("EnableKey", new { KeyId = keyArn });
        Assert.Contains("v1-secret", (await Secrets("GetSecretValue", new { SecretId = "keys/db" })).Body, StringComparison.Ordinal);
        Assert.Null((await Secrets("PutSecretValue", new { SecretId = "keys/db", SecretString = "v2-secret" })).Type);

        // The change is in the store too: a key listed, its state as set.
        var keys = (await Ok("ListKeys", new { })).GetProperty("Keys").EnumerateArray().Select(k => k.GetProperty("KeyArn").GetString()).ToList();
        Assert.Contains(keyArn, keys);

        // Audited with the key and its state.
        var records = File.ReadAllLines(AuditFormat.LogPath(fixture.DataDirectory)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var disable = records.Single(r => r.GetProperty("operation").GetString() == "DisableKey");
        Assert.Equal("Success", disable.GetProperty("outcome").GetString());
        Assert.Contains("alias/keys-test/app", disable.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Changing_a_secrets_key_reencrypts_its_staged_versions_so_the_old_key_can_be_disabled()
    {
        var oldKey = (await Ok("CreateKey", new { })).GetProperty("KeyMetadata").GetProperty("Arn").GetString()!;
        Assert.Null((await Secrets("CreateSecret", new { Name = "keys/moving", SecretString = "moving-v1", KmsKeyId = oldKey })).Type);
        Assert.Null((await Secrets("PutSecretValue", new { SecretId = "keys/moving", SecretString = "moving-v2" })).Type);
        Assert.Null((await Secrets("PutSecretValue", new { SecretId = "keys/moving", SecretString = "moving-v3" })).Type);

        Assert.Null((await Secrets("UpdateSecret", new { SecretId = "keys/moving", KmsKeyId = "" })).Type);

        // AWSCURRENT and AWSPREVIOUS moved to the default key; the deprecated first version keeps the old one.
        var versions = JsonDocument.Parse((await Secrets("ListSecretVersionIds", new { SecretId = "keys/moving", IncludeDeprecated = true })).Body)
            .RootElement.GetProperty("Versions").EnumerateArray()
            .ToDictionary(v => v.TryGetProperty("VersionStages", out var stages) ? string.Join(",", stages.EnumerateArray().Select(l => l.GetString())) : "",
                v => v.GetProperty("KmsKeyIds")[0].GetString());
        Assert.Equal(new Dictionary<string, string?> { ["AWSCURRENT"] = "DefaultEncryptionKey", ["AWSPREVIOUS"] = "DefaultEncryptionKey", [""] = oldKey }, versions);
        await Ok("DisableKey", new { KeyId = oldKey });
        Assert.Contains("moving-v3", (await Secrets("GetSecretValue", new { SecretId = "keys/moving" })).Body, StringComparison.Ordinal);
        Assert.Contains("moving-v2", (await Secrets("GetSecretValue", new { SecretId = "keys/moving", VersionStage = "AWSPREVIOUS" })).Body, StringComparison.Ordinal);

        // A key that can no longer decrypt fails the change, which then changes nothing.
        Assert.Null((await Secrets("CreateSecret", new { Name = "keys/stuck", SecretString = "stuck-v1", KmsKeyId = (await Ok("CreateKey", new { }))
            .GetProperty("KeyMetadata").GetProperty("Arn").GetString() })).Type);
        var stuckKey = JsonDocument.Parse((await Secrets("DescribeSecret", new { SecretId = "keys/stuck" })).Body).RootElement.GetProperty("KmsKeyId").GetString();
        await Ok("DisableKey", new { KeyId = stuckKey! });
        Assert.Equal("DecryptionFailure", (await Secrets("UpdateSecret", new { SecretId = "keys/stuck", KmsKeyId = "" })).Type);
        Assert.Equal(stuckKey, JsonDocument.Parse((await Secrets("DescribeSecret", new { SecretId = "keys/stuck" })).Body).RootElement.GetProperty("KmsKeyId").GetString());
        await Ok("EnableKey", new { KeyId = stuckKey! });
        Assert.Contains("stuck-v1", (await Secrets("GetSecretValue", new { SecretId = "keys/stuck" })).Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_default_key_cannot_be_disabled_or_deleted()
    {
        var disable = await Kms("DisableKey", new { KeyId = "alias/aws/secretsmanager" });
        Assert.Equal("UnsupportedOperationException", disable.Type);
        Assert.Contains("default key", disable.Body.ToString(), StringComparison.Ordinal);
        var delete = await Kms("ScheduleKeyDeletion", new { KeyId = "alias/aws/secretsmanager", PendingWindowInDays = 7 });
        Assert.Equal("UnsupportedOperationException", delete.Type);
        var reserved = await Kms("CreateAlias", new { AliasName = "alias/aws/mine", TargetKeyId = "alias/aws/secretsmanager" });
        Assert.Equal("InvalidAliasNameException", reserved.Type);
        var described = (await Ok("DescribeKey", new { KeyId = "alias/aws/secretsmanager" })).GetProperty("KeyMetadata");
        Assert.Equal(("Enabled", "AWS"), (described.GetProperty("KeyState").GetString(), described.GetProperty("KeyManager").GetString()));
        Assert.Equal("NotFoundException", (await Kms("DescribeKey", new { KeyId = "alias/nothing-here" })).Type);
    }

    [Fact]
    public async Task Scheduled_deletion_is_refused_while_a_version_uses_the_key_and_a_pending_key_is_unusable()
    {
        var keyId = (await Ok("CreateKey", new { })).GetProperty("KeyMetadata").GetProperty("KeyId").GetString()!;
        Assert.Null((await Secrets("CreateSecret", new { Name = "keys/in-use", SecretString = "x", KmsKeyId = keyId })).Type);
        var refused = await Kms("ScheduleKeyDeletion", new { KeyId = keyId, PendingWindowInDays = 7 });
        Assert.Equal("KMSInvalidStateException", refused.Type);
        Assert.Equal("ValidationException", (await Kms("ScheduleKeyDeletion", new { KeyId = keyId, PendingWindowInDays = 6 })).Type);

        var unused = (await Ok("CreateKey", new { })).GetProperty("KeyMetadata").GetProperty("KeyId").GetString()!;
        var scheduled = await Ok("ScheduleKeyDeletion", new { KeyId = unused, PendingWindowInDays = 7 });
        Assert.Equal(("PendingDeletion", 7), (scheduled.GetProperty("KeyState").GetString(), scheduled.GetProperty("PendingWindowInDays").GetInt32()));
        var deletionDate = scheduled.GetProperty("DeletionDate").GetDouble();
        Assert.InRange(deletionDate - DateTimeOffset.UtcNow.ToUnixTimeSeconds(), 7 * 86400 - 60, 7 * 86400 + 60);
        Assert.Equal("EncryptionFailure", (await Secrets("CreateSecret", new { Name = "keys/pending", SecretString = "x", KmsKeyId = unused })).Type);
        Assert.Equal("KMSInvalidStateException", (await Kms("EnableKey", new { KeyId = unused })).Type);

        var cancelled = await Ok("CancelKeyDeletion", new { KeyId = unused });
        Assert.EndsWith(unused, cancelled.GetProperty("KeyId").GetString(), StringComparison.Ordinal);
        Assert.Equal("Disabled", (await Ok("DescribeKey", new { KeyId = unused })).GetProperty("KeyMetadata").GetProperty("KeyState").GetString());
        await Ok("EnableKey", new { KeyId = unused });
        Assert.Null((await Secrets("CreateSecret", new { Name = "keys/after-cancel", SecretString = "x", KmsKeyId = unused })).Type);
    }

    [Fact]
    public async Task Key_operations_need_a_kms_policy_on_the_key_and_a_kms_signature()
    {
        var keyArn = (await Ok("CreateKey", new { })).GetProperty("KeyMetadata").GetProperty("Arn").GetString()!;
        await fixture.AdminAsync("CreateUser", new { UserName = "keys-reader" });
        var key = (await fixture.AdminAsync("CreateAccessKey", new { UserName = "keys-reader" })).GetProperty("AccessKey");
        var (id, secret) = (key.GetProperty("AccessKeyId").GetString()!, key.GetProperty("SecretAccessKey").GetString()!);
        await fixture.AdminAsync("PutUserPolicy", new
        {
            UserName = "keys-reader",
            PolicyName = "describe",
            PolicyDocument = $$"""{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "{{keyArn}}"}]}""",
        });
        Assert.Null((await Kms("DescribeKey", new { KeyId = keyArn }, id, secret)).Type);
        var denied = await Kms("DisableKey", new { KeyId = keyArn }, id, secret);
        Assert.Equal("AccessDeniedException", denied.Type);
        Assert.Contains($"kms:DisableKey on resource: {keyArn}", denied.Body.ToString(), StringComparison.Ordinal);
        Assert.Equal("AccessDeniedException", (await Kms("CreateKey", new { }, id, secret)).Type);
        // A key that does not exist is denied the same way: existence does not leak.
        Assert.Equal("AccessDeniedException", (await Kms("DisableKey", new { KeyId = "alias/no-such-key" }, id, secret)).Type);

        using var wrongService = await fixture.SendAsAsync("TumblerKMS.ListKeys", "{}", fixture.Server.Root.AccessKeyId, fixture.Server.Root.SecretAccessKey, "iam");
        var wrongText = await wrongService.Content.ReadAsStringAsync();
        Assert.Contains("'kms'", JsonDocument.Parse(wrongText).RootElement.GetProperty("message").GetString(), StringComparison.Ordinal);
    }
    [Fact]
    public async Task Rotating_a_keys_material_keeps_old_versions_readable_and_shows_in_describe_and_list()
    {
        var keyId = (await Ok("CreateKey", new { Description = "rotating" })).GetProperty("KeyMetadata").GetProperty("KeyId").GetString()!;
        var fresh = (await Ok("DescribeKey", new { KeyId = keyId })).GetProperty("KeyMetadata");
        Assert.Equal(1, fresh.GetProperty("KeyMaterialCount").GetInt32());
        Assert.False(fresh.TryGetProperty("LastRotationDate", out _));
        Assert.Null((await Secrets("CreateSecret", new { Name = "keys/rotating", SecretString = "before-rotation", KmsKeyId = keyId })).Type);

        var rotated = await Ok("RotateKeyOnDemand", new { KeyId = keyId });
        Assert.Equal((keyId, 2), (rotated.GetProperty("KeyId").GetString(), rotated.GetProperty("KeyMaterialCount").GetInt32()));
        Assert.Null((await Secrets("PutSecretValue", new { SecretId = "keys/rotating", SecretString = "after-rotation", VersionStages = new[] { "AWSPENDING" } })).Type);
        await Ok("RotateKeyOnDemand", new { KeyId = keyId });

        Assert.Contains("\"before-rotation\"", (await Secrets("GetSecretValue", new { SecretId = "keys/rotating" })).Body, StringComparison.Ordinal);
        Assert.Contains("\"after-rotation\"", (await Secrets("GetSecretValue", new { SecretId = "keys/rotating", VersionStage = "AWSPENDING" })).Body, StringComparison.Ordinal);
        var described = (await Ok("DescribeKey", new { KeyId = keyId })).GetProperty("KeyMetadata");
        Assert.Equal(3, described.GetProperty("KeyMaterialCount").GetInt32());
        Assert.InRange(described.GetProperty("LastRotationDate").GetDouble() - DateTimeOffset.UtcNow.ToUnixTimeSeconds(), -120, 5);
        var listed = (await Ok("ListKeys", new { })).GetProperty("Keys").EnumerateArray().Single(k => k.GetProperty("KeyId").GetString() == keyId);
        Assert.Equal(3, listed.GetProperty("KeyMaterialCount").GetInt32());

        // A disabled key does not rotate; the rotation is audited with the key and its new material version.
        await Ok("DisableKey", new { KeyId = keyId });
        Assert.Equal("DisabledException", (await Kms("RotateKeyOnDemand", new { KeyId = keyId })).Type);
        await Ok("EnableKey", new { KeyId = keyId });
        var records = File.ReadAllLines(AuditFormat.LogPath(fixture.DataDirectory)).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(r => r.GetProperty("operation").GetString() == "RotateKeyOnDemand" && r.GetProperty("outcome").GetString() == "Success")
            .Select(r => r.GetProperty("detail").GetString()).ToList();
        Assert.Contains($"key {keyId} material version 3", records);
    }

    [Fact]
    public async Task Aliases_list_move_to_another_key_and_delete_but_the_default_alias_stays()
    {
        var first = (await Ok("CreateKey", new { })).GetProperty("KeyMetadata").GetProperty("KeyId").GetString()!;
        var second = (await Ok("CreateKey", new { })).GetProperty("KeyMetadata").GetProperty("KeyId").GetString()!;
        await Ok("CreateAlias", new { AliasName = "alias/moving", TargetKeyId = first });
        Assert.Null((await Secrets("CreateSecret", new { Name = "keys/alias-first", SecretString = "on-first", KmsKeyId = "alias/moving" })).Type);

        var all = (await Ok("ListAliases", new { })).GetProperty("Aliases").EnumerateArray()
            .ToDictionary(a => a.GetProperty("AliasName").GetString()!, a => (a.GetProperty("TargetKeyId").GetString(), a.GetProperty("AliasArn").GetString()));
        Assert.Equal((first, $"arn:aws:kms:us-east-1:{Account}:alias/moving"), all["alias/moving"]);
        Assert.True(all.ContainsKey("alias/aws/secretsmanager"));
        var ofFirst = (await Ok("ListAliases", new { KeyId = first })).GetProperty("Aliases").EnumerateArray().Select(a => a.GetProperty("AliasName").GetString());
        Assert.Equal(["alias/moving"], ofFirst);

        await Ok("UpdateAlias", new { AliasName = "alias/moving", TargetKeyId = second });
        Assert.Equal(second, (await Ok("DescribeKey", new { KeyId = "alias/moving" })).GetProperty("KeyMetadata").GetProperty("KeyId").GetString());
        Assert.Null((await Secrets("CreateSecret", new { Name = "keys/alias-second", SecretString = "on-second", KmsKeyId = "alias/moving" })).Type);
        // The secret made before the move stays under the first key and readable.
        Assert.Contains("on-first", (await Secrets("GetSecretValue", new { SecretId = "keys/alias-first" })).Body, StringComparison.Ordinal);

        await Ok("DeleteAlias", new { AliasName = "alias/moving" });
        Assert.Equal("NotFoundException", (await Kms("DescribeKey", new { KeyId = "alias/moving" })).Type);
        Assert.Equal("NotFoundException", (await Kms("DeleteAlias", new { AliasName = "alias/moving" })).Type);
        Assert.Equal("NotFoundException", (await Kms("UpdateAlias", new { AliasName = "alias/never-made", TargetKeyId = first })).Type);
        Assert.Contains("on-second", (await Secrets("GetSecretValue", new { SecretId = "keys/alias-second" })).Body, StringComparison.Ordinal);

        var deleteDefault = await Kms("DeleteAlias", new { AliasName = "alias/aws/secretsmanager" });
        Assert.Equal("UnsupportedOperationException", deleteDefault.Type);
        Assert.Contains("default alias", deleteDefault.Body.ToString(), StringComparison.Ordinal);
        Assert.Equal("UnsupportedOperationException", (await Kms("UpdateAlias", new { AliasName = "alias/aws/secretsmanager", TargetKeyId = first })).Type);
        Assert.Equal("AWS", (await Ok("DescribeKey", new { KeyId = "alias/aws/secretsmanager" })).GetProperty("KeyMetadata").GetProperty("KeyManager").GetString());
    }

    [Fact]
    public async Task Rotation_and_alias_changes_need_their_kms_actions()
    {
        var keyArn = (await Ok("CreateKey", new { })).GetProperty("KeyMetadata").GetProperty("Arn").GetString()!;
        await Ok("CreateAlias", new { AliasName = "alias/guarded", TargetKeyId = keyArn });
        await fixture.AdminAsync("CreateUser", new { UserName = "keys-lister" });
        var key = (await fixture.AdminAsync("CreateAccessKey", new { UserName = "keys-lister" })).GetProperty("AccessKey");
        var (id, secret) = (key.GetProperty("AccessKeyId").GetString()!, key.GetProperty("SecretAccessKey").GetString()!);
        await fixture.AdminAsync("PutUserPolicy", new
        {
            UserName = "keys-lister",
            PolicyName = "list",
            PolicyDocument = """{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:ListAliases", "Resource": "*"}]}""",
        });
        Assert.Null((await Kms("ListAliases", new { }, id, secret)).Type);
        var denied = await Kms("RotateKeyOnDemand", new { KeyId = keyArn }, id, secret);
        Assert.Equal("AccessDeniedException", denied.Type);
        Assert.Contains($"kms:RotateKeyOnDemand on resource: {keyArn}", denied.Body.ToString(), StringComparison.Ordinal);
        Assert.Equal("AccessDeniedException", (await Kms("DeleteAlias", new { AliasName = "alias/guarded" }, id, secret)).Type);
        Assert.Equal("AccessDeniedException", (await Kms("UpdateAlias", new { AliasName = "alias/guarded", TargetKeyId = keyArn }, id, secret)).Type);
        Assert.Equal(keyArn, (await Ok("DescribeKey", new { KeyId = "alias/guarded" })).GetProperty("KeyMetadata").GetProperty("Arn").GetString());
    }
}
