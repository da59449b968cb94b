using System.Text;
using System.Text.Json;

namespace Tumbler.Cli;

/// <summary>
/// Turns each line written to it into a JSON object shaped like the JSON console logger's entries
/// (<c>Timestamp</c> in UTC, <c>EventId</c>, <c>LogLevel</c>, <c>Category</c>, <c>Message</c>), so the
/// server's startup messages and its log share one format under <c>--log-format json</c>.
/// </summary>
internal sealed class JsonLinesWriter(TextWriter inner) : TextWriter
{
    private readonly StringBuilder _line = new();

    public override Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        if (value == '\n')
        {
            Emit();
        }
        else if (value != '\r')
        {
            _line.Append(value);
        }
    }

    public override void Flush()
    {
        if (_line.Length > 0)
        {
            Emit();
        }
        inner.Flush();
    }

    private void Emit()
    {
        var message = _line.ToString();
        _line.Clear();
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("Timestamp", DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
            w.WriteNumber("EventId", 0);
            w.WriteString("LogLevel", message.StartsWith("WARNING", StringComparison.Ordinal) ? "Warning" : "Information");
            w.WriteString("Category", "Tumbler");
            w.WriteString("Message", message);
            w.WriteEndObject();
        }
        inner.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
        inner.Flush();
    }
}
