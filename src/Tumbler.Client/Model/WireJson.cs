using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tumbler.Client.Model;

/// <summary>Source-generated serialization of the request and response classes, as AWS JSON 1.1 writes them.</summary>
[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = [typeof(EpochSecondsConverter), typeof(Base64MemoryStreamConverter)])]
[JsonSerializable(typeof(GetSecretValueRequest))]
[JsonSerializable(typeof(GetSecretValueResponse))]
[JsonSerializable(typeof(DescribeSecretRequest))]
[JsonSerializable(typeof(DescribeSecretResponse))]
[JsonSerializable(typeof(ListSecretsRequest))]
[JsonSerializable(typeof(ListSecretsResponse))]
[JsonSerializable(typeof(PutSecretValueRequest))]
[JsonSerializable(typeof(PutSecretValueResponse))]
[JsonSerializable(typeof(CreateSecretRequest))]
[JsonSerializable(typeof(CreateSecretResponse))]
[JsonSerializable(typeof(BatchGetSecretValueRequest))]
[JsonSerializable(typeof(BatchGetSecretValueResponse))]
internal sealed partial class WireJson : JsonSerializerContext;

/// <summary>AWS JSON 1.1 timestamps: epoch seconds as a JSON number (with milliseconds as a fraction); also reads a numeric string.</summary>
internal sealed class EpochSecondsConverter : JsonConverter<DateTime>
{
    public override DateTime Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var seconds = reader.TokenType == JsonTokenType.String
            ? decimal.Parse(reader.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture)
            : reader.GetDecimal();
        return DateTime.UnixEpoch.AddTicks((long)(seconds * TimeSpan.TicksPerSecond));
    }

    public override void Write(Utf8JsonWriter writer, DateTime value, JsonSerializerOptions options) =>
        writer.WriteNumberValue(decimal.Round((decimal)(value.ToUniversalTime() - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerSecond, 3));
}

/// <summary>Blobs (SecretBinary): base64 on the wire, a MemoryStream in the SDK's shapes. Writing does not move the stream's position.</summary>
internal sealed class Base64MemoryStreamConverter : JsonConverter<MemoryStream>
{
    public override MemoryStream Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var bytes = reader.GetBytesFromBase64();
        return new MemoryStream(bytes, 0, bytes.Length, writable: false, publiclyVisible: true);
    }

    public override void Write(Utf8JsonWriter writer, MemoryStream value, JsonSerializerOptions options) =>
        writer.WriteBase64StringValue(value.TryGetBuffer(out var buffer) ? buffer : value.ToArray());
}
