using System.Globalization;
using System.Text.Json;
using Tumbler.Server.Protocol;

namespace Tumbler.Server.Tests.Protocol;

public sealed class EpochSecondsConverterTests
{
    private static readonly JsonSerializerOptions Options = new() { Converters = { new EpochSecondsConverter() } };

    [Theory]
    [InlineData(1764374400123L, "1764374400.123")]
    [InlineData(1764374400000L, "1764374400.000")]
    [InlineData(1764374400007L, "1764374400.007")]
    [InlineData(0L, "0.000")]
    [InlineData(-500L, "-0.500")]
    [InlineData(-1500L, "-1.500")]
    [InlineData(253402300799999L, "253402300799.999")]
    public void Dates_are_written_as_seconds_with_three_decimals_and_read_back(long unixMilliseconds, string expected)
    {
        var date = DateTimeOffset.FromUnixTimeMilliseconds(unixMilliseconds);
        var json = JsonSerializer.Serialize(date, Options);
        Assert.Equal(expected, json);
        Assert.Equal((unixMilliseconds / 1000m).ToString("0.000", CultureInfo.InvariantCulture), json);
        Assert.Equal(date, JsonSerializer.Deserialize<DateTimeOffset>(json, Options));
    }
}
