using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Tumbler.Core.Access;
using Tumbler.Core.Functions;
using Tumbler.Core.Keys;
using Tumbler.Core.Secrets;

namespace Tumbler.Server.Protocol;

/// <summary>
/// Source-generated serialization of every request and response shape (spec §1.2): members without
/// a value are omitted, blobs are standard base64, timestamps are epoch seconds as JSON numbers.
/// </summary>
[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = [typeof(EpochSecondsConverter)],
    AllowTrailingCommas = false,
    MaxDepth = 32)]
[JsonSerializable(typeof(PutResourcePolicyRequest))]
[JsonSerializable(typeof(GetResourcePolicyResponse))]
[JsonSerializable(typeof(ValidateResourcePolicyRequest))]
[JsonSerializable(typeof(ValidateResourcePolicyResponse))]
[JsonSerializable(typeof(CreateKeyRequest))]
[JsonSerializable(typeof(KeyIdRequest))]
[JsonSerializable(typeof(ScheduleKeyDeletionRequest))]
[JsonSerializable(typeof(CreateAliasRequest))]
[JsonSerializable(typeof(KeyMetadataResponse))]
[JsonSerializable(typeof(ListKeysResponse))]
[JsonSerializable(typeof(ScheduleKeyDeletionResponse))]
[JsonSerializable(typeof(CancelKeyDeletionResponse))]
[JsonSerializable(typeof(RotateKeyOnDemandResponse))]
[JsonSerializable(typeof(ListAliasesRequest))]
[JsonSerializable(typeof(ListAliasesResponse))]
[JsonSerializable(typeof(UpdateAliasRequest))]
[JsonSerializable(typeof(DeleteAliasRequest))]
[JsonSerializable(typeof(FunctionRequest))]
[JsonSerializable(typeof(FunctionNameRequest))]
[JsonSerializable(typeof(FunctionConfiguration))]
[JsonSerializable(typeof(GetFunctionResponse))]
[JsonSerializable(typeof(ListFunctionsResponse))]
[JsonSerializable(typeof(UserNameRequest))]
[JsonSerializable(typeof(UserResponse))]
[JsonSerializable(typeof(ListUsersResponse))]
[JsonSerializable(typeof(AccessKeyRequest))]
[JsonSerializable(typeof(CreateAccessKeyResponse))]
[JsonSerializable(typeof(ListAccessKeysResponse))]
[JsonSerializable(typeof(UserPolicyRequest))]
[JsonSerializable(typeof(GetUserPolicyResponse))]
[JsonSerializable(typeof(ListUserPoliciesResponse))]
[JsonSerializable(typeof(CreateSecretRequest))]
[JsonSerializable(typeof(CreateSecretResponse))]
[JsonSerializable(typeof(GetSecretValueRequest))]
[JsonSerializable(typeof(GetSecretValueResponse))]
[JsonSerializable(typeof(BatchGetSecretValueRequest))]
[JsonSerializable(typeof(BatchGetSecretValueResponse))]
[JsonSerializable(typeof(PutSecretValueRequest))]
[JsonSerializable(typeof(PutSecretValueResponse))]
[JsonSerializable(typeof(UpdateSecretRequest))]
[JsonSerializable(typeof(UpdateSecretResponse))]
[JsonSerializable(typeof(UpdateSecretVersionStageRequest))]
[JsonSerializable(typeof(SecretIdentity))]
[JsonSerializable(typeof(SecretIdRequest))]
[JsonSerializable(typeof(DescribeSecretResponse))]
[JsonSerializable(typeof(ListSecretsRequest))]
[JsonSerializable(typeof(ListSecretsResponse))]
[JsonSerializable(typeof(ListSecretVersionIdsRequest))]
[JsonSerializable(typeof(ListSecretVersionIdsResponse))]
[JsonSerializable(typeof(DeleteSecretRequest))]
[JsonSerializable(typeof(DeleteSecretResponse))]
[JsonSerializable(typeof(GetRandomPasswordRequest))]
[JsonSerializable(typeof(GetRandomPasswordResponse))]
[JsonSerializable(typeof(TagResourceRequest))]
[JsonSerializable(typeof(UntagResourceRequest))]
[JsonSerializable(typeof(RotateSecretRequest))]
[JsonSerializable(typeof(RotationResponse))]
[JsonSerializable(typeof(EmptyResponse))]
public sealed partial class WireJsonContext : JsonSerializerContext;

/// <summary>Timestamps as epoch seconds with millisecond precision, e.g. <c>1700000000.123</c>: JS SDK v3 rejects strings.</summary>
public sealed class EpochSecondsConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(reader.GetDecimal() * 1000m));

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
    {
        // Seconds with exactly three decimals (1764374400.123), from integers: a custom decimal format cost more than
        // the rest of a ListSecrets page's JSON.
        Span<byte> buffer = stackalloc byte[32];
        var milliseconds = value.ToUnixTimeMilliseconds();
        var (seconds, fraction) = Math.DivRem(Math.Abs(milliseconds), 1000L);
        var at = 0;
        if (milliseconds < 0)
        {
            buffer[at++] = (byte)'-';
        }
        seconds.TryFormat(buffer[at..], out var written, default, CultureInfo.InvariantCulture);
        at += written;
        buffer[at++] = (byte)'.';
        fraction.TryFormat(buffer[at..], out written, "D3", CultureInfo.InvariantCulture);
        writer.WriteRawValue(buffer[..(at + written)], skipInputValidation: true);
    }
}
