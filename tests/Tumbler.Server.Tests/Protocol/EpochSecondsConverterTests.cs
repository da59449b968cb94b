using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Tumbler.Core.Secrets;
using Tumbler.Server.Protocol;

namespace Tumbler.Server.Tests.Protocol;

public sealed class EpochSecondsConverterTests
{
    [Theory]
    [InlineData(1764374400123L, "1764374400.123")]
    [InlineData(1764374400000L, "1764374400.000")]
    [InlineData(1764374400007L, "1764374400.007")]
    [InlineData(0L, "0.000")]
    [InlineData(-500L, "-0.500")]
    [InlineData(-1500L, "-1.500")]
    [InlineData(253402300799999L, "253402300799.999")]
    public void Timestamps_are_written_as_seconds_with_three_decimals_and_read_back(long unixMilliseconds, string expected)
    {
        Timestamp date = DateTimeOffset.FromUnixTimeMilliseconds(unixMilliseconds);
        var json = JsonSerializer.Serialize(date, WireJsonContext.Default.Options);
        Assert.Equal(expected, json);
        Assert.Equal((unixMilliseconds / 1000m).ToString("0.000", CultureInfo.InvariantCulture), json);
        Assert.Equal(date, JsonSerializer.Deserialize<Timestamp>(json, WireJsonContext.Default.Options));
    }

    [Fact]
    public void Every_timestamp_of_a_response_is_a_number_in_the_generated_serializer()
    {
        // Through the response shapes (the generated fast path writes each member itself), required and optional.
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1764374400123L);
        var page = new ListSecretsResponse
        {
            SecretList = [new SecretListEntry { ARN = "arn", Name = "n", CreatedDate = at, LastChangedDate = at, LastAccessedDate = at, DeletedDate = at }],
        };
        var json = JsonSerializer.Serialize(page, WireJsonContext.Default.ListSecretsResponse);
        Assert.Equal("""{"SecretList":[{"ARN":"arn","Name":"n","LastChangedDate":1764374400.123,"LastAccessedDate":1764374400.123,"DeletedDate":1764374400.123,"CreatedDate":1764374400.123}]}""", json);
    }

    [Fact]
    public void No_shape_has_a_date_member_that_would_be_written_as_a_string()
    {
        // A DateTimeOffset or DateTime member would go out as an ISO-8601 string, which JS SDK v3 rejects: shapes use Timestamp.
        var offenders = new List<string>();
        var seen = new HashSet<Type>();
        foreach (var root in typeof(WireJsonContext).GetProperties(BindingFlags.Public | BindingFlags.Instance)
                     .Where(p => typeof(JsonTypeInfo).IsAssignableFrom(p.PropertyType))
                     .Select(p => ((JsonTypeInfo)p.GetValue(WireJsonContext.Default)!).Type))
        {
            Visit(root);
        }
        Assert.Empty(offenders);

        void Visit(Type type)
        {
            type = Nullable.GetUnderlyingType(type) ?? type;
            if (!seen.Add(type) || type.GetCustomAttribute<JsonConverterAttribute>() is not null
                || type.Namespace?.StartsWith("Tumbler", StringComparison.Ordinal) != true && !type.IsGenericType)
            {
                return;
            }
            foreach (var argument in type.GetGenericArguments())
            {
                Visit(argument);
            }
            if (type.IsGenericType)
            {
                return;
            }
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                if (propertyType == typeof(DateTimeOffset) || propertyType == typeof(DateTime))
                {
                    offenders.Add($"{type.Name}.{property.Name}");
                }
                Visit(property.PropertyType);
            }
        }
    }
}
