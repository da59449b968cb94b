using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tumbler.Core.Secrets;

/// <summary>
/// A timestamp member of an API shape: on the wire a JSON number of seconds since the Unix epoch with exactly three
/// decimals, e.g. <c>1700000000.123</c> (spec §1.2; JS SDK v3 rejects strings). The format belongs to the type rather
/// than to a serializer option so that the protocol layer's source-generated serializer keeps its fast path, which a
/// converter in the options turns off for every shape.
/// </summary>
[JsonConverter(typeof(EpochSecondsConverter))]
public readonly record struct Timestamp(DateTimeOffset Value)
{
    public static implicit operator Timestamp(DateTimeOffset value) => new(value);

    public static implicit operator DateTimeOffset(Timestamp timestamp) => timestamp.Value;

    public override string ToString() => Value.ToString("O", CultureInfo.InvariantCulture);
}

/// <summary>Writes and reads a <see cref="Timestamp"/> as epoch seconds with three decimals.</summary>
public sealed class EpochSecondsConverter : JsonConverter<Timestamp>
{
    public override Timestamp Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(reader.GetDecimal() * 1000m));

    public override void Write(Utf8JsonWriter writer, Timestamp value, JsonSerializerOptions options)
    {
        // From integers: a custom decimal format cost more than the rest of a ListSecrets page's JSON.
        Span<byte> buffer = stackalloc byte[32];
        var milliseconds = value.Value.ToUnixTimeMilliseconds();
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
