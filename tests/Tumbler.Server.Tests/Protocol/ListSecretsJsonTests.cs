using System.Buffers;
using System.Text;
using System.Text.Json;
using Tumbler.Core.Secrets;
using Tumbler.Server.Protocol;

namespace Tumbler.Server.Tests.Protocol;

public sealed class ListSecretsJsonTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.FromUnixTimeMilliseconds(1764374400123L);

    public static TheoryData<string> Pages => ["full page with a token", "full page", "empty page"];

    [Theory]
    [MemberData(nameof(Pages))]
    public void The_answer_is_byte_for_byte_what_the_generated_serializer_writes(string page)
    {
        var response = page switch
        {
            "empty page" => new ListSecretsResponse { SecretList = [] },
            "full page" => new ListSecretsResponse { SecretList = [Plain("a"), Everything("b"), Plain("c")] },
            _ => new ListSecretsResponse { SecretList = [Everything("a"), Plain("b")], NextToken = "bmFtZQphc2MKYgo0Mg==" },
        };

        Assert.Equal(JsonSerializer.Serialize(response, WireJsonContext.Default.ListSecretsResponse), Written(response));
    }

    private static string Written(ListSecretsResponse response)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            ListSecretsJson.Write(writer, response);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static SecretListEntry Plain(string name) => new()
    {
        ARN = $"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf", Name = name, CreatedDate = At, LastChangedDate = At,
        SecretVersionsToStages = new Dictionary<string, IReadOnlyList<string>> { ["v1"] = ["AWSCURRENT"] },
    };

    private static SecretListEntry Everything(string name) => Plain(name) with
    {
        // Text the encoder escapes (quotes, HTML-sensitive characters, non-ASCII) and every optional member.
        Type = "db", Description = "\"quoted\" <b>&amp;</b> ünïcødé ☃ \u0001", KmsKeyId = "alias/app",
        RotationEnabled = true, RotationLambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:rotate",
        RotationRules = new RotationRulesType { AutomaticallyAfterDays = 30, Duration = "2h", ScheduleExpression = "rate(30 days)" },
        LastRotatedDate = At, LastAccessedDate = At, DeletedDate = At, NextRotationDate = At,
        Tags = [new Tag { Key = "team", Value = "payments" }, new Tag { Key = "env", Value = "prod" }],
        SecretVersionsToStages = new Dictionary<string, IReadOnlyList<string>> { ["v1"] = ["AWSPREVIOUS"], ["v2"] = ["AWSCURRENT", "AWSPENDING"] },
        OwningService = "tumbler", PrimaryRegion = "us-east-1",
    };
}
