using System.Runtime.CompilerServices;
using System.Text.Json;
using Tumbler.Core.Secrets;

namespace Tumbler.Server.Protocol;

/// <summary>
/// ListSecrets' answer, the same bytes the generated serializer writes, from each entry's JSON rendered once. A page the
/// store's read cache holds yields the same entry objects for every request until a write (SecretsService keys them to
/// the cached secrets), so rendering them again was most of a page's cost. A rendered entry goes when its entry does.
/// </summary>
internal static class ListSecretsJson
{
    private static readonly ConditionalWeakTable<SecretListEntry, byte[]> RenderedEntries = new();

    public static void Write(Utf8JsonWriter writer, ListSecretsResponse response)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("SecretList"u8);
        foreach (var entry in response.SecretList)
        {
            // Our own serializer's output: nothing to validate.
            writer.WriteRawValue(RenderedEntries.GetValue(entry, Render), skipInputValidation: true);
        }
        writer.WriteEndArray();
        if (response.NextToken is { } nextToken)
        {
            writer.WriteString("NextToken"u8, nextToken);
        }
        writer.WriteEndObject();
    }

    private static byte[] Render(SecretListEntry entry) => JsonSerializer.SerializeToUtf8Bytes(entry, WireJsonContext.Default.SecretListEntry);
}
