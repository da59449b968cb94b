using System.Text.Json;
using System.Text.Json.Serialization;
using Tumbler.Core.Storage;

namespace Tumbler.Storage;

/// <summary>How list-valued columns (labels, tags) are stored: small JSON arrays.</summary>
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(List<SecretTag>))]
internal sealed partial class StorageJsonContext : JsonSerializerContext
{
    public static string Labels(List<string> labels) => JsonSerializer.Serialize(labels, Default.ListString);
    public static List<string> Labels(string json) => JsonSerializer.Deserialize(json, Default.ListString) ?? [];
    public static string? Tags(List<SecretTag>? tags) => tags is null ? null : JsonSerializer.Serialize(tags, Default.ListSecretTag);
    public static List<SecretTag>? Tags(string? json) => json is null ? null : JsonSerializer.Deserialize(json, Default.ListSecretTag);
}
