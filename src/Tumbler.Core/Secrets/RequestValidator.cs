using System.Text;
using System.Text.RegularExpressions;

namespace Tumbler.Core.Secrets;

/// <summary>
/// Collects model-constraint failures and reports them the way AWS's framework does (spec §1.4):
/// <c>2 validation errors detected: Value 'x' at 'name' failed to satisfy constraint: ...; ...</c>.
/// Sensitive members are reported without their value.
/// </summary>
public sealed class RequestValidator
{
    private const int MaxEchoedLength = 128;
    private readonly List<string> _errors = [];

    public RequestValidator Required(object? value, string member)
    {
        if (value is null)
        {
            _errors.Add($"Value null at '{member}' failed to satisfy constraint: Member must not be null");
        }
        return this;
    }

    public RequestValidator Length(string? value, string member, int min, int max, bool sensitive = false)
    {
        if (value is null)
        {
            return this;
        }
        if (value.Length < min)
        {
            Fail(value, member, sensitive, $"Member must have length greater than or equal to {min}");
        }
        else if (value.Length > max)
        {
            Fail(value, member, sensitive, $"Member must have length less than or equal to {max}");
        }
        return this;
    }

    public RequestValidator Range(long? value, string member, long min, long max)
    {
        if (value < min)
        {
            Fail(value.Value.ToString(), member, false, $"Member must have value greater than or equal to {min}");
        }
        else if (value > max)
        {
            Fail(value.Value.ToString(), member, false, $"Member must have value less than or equal to {max}");
        }
        return this;
    }

    public RequestValidator Count<T>(IReadOnlyList<T>? list, string member, int min, int max)
    {
        if (list is null)
        {
            return this;
        }
        if (list.Count < min)
        {
            Fail($"[{list.Count} items]", member, false, $"Member must have length greater than or equal to {min}");
        }
        else if (list.Count > max)
        {
            Fail($"[{list.Count} items]", member, false, $"Member must have length less than or equal to {max}");
        }
        return this;
    }

    public RequestValidator Pattern(string? value, string member, Regex pattern, bool sensitive = false)
    {
        if (value is not null && !pattern.IsMatch(value))
        {
            Fail(value, member, sensitive, $"Member must satisfy regular expression pattern: {pattern}");
        }
        return this;
    }

    public RequestValidator Enum(string? value, string member, IReadOnlyList<string> allowed)
    {
        if (value is not null && !allowed.Contains(value))
        {
            Fail(value, member, false, $"Member must satisfy enum value set: [{string.Join(", ", allowed)}]");
        }
        return this;
    }

    /// <summary>Binary values count decoded bytes; string values count characters and, conservatively, UTF-8 bytes.</summary>
    public RequestValidator SecretValue(string? text, byte[]? binary, int max)
    {
        Length(text, "secretString", 1, max, sensitive: true);
        if (text is not null && text.Length <= max && Encoding.UTF8.GetByteCount(text) > max)
        {
            Fail(text, "secretString", true, $"Member must have length less than or equal to {max}");
        }
        if (binary is not null && (binary.Length < 1 || binary.Length > max))
        {
            Fail("", "secretBinary", true, binary.Length < 1
                ? "Member must have length greater than or equal to 1"
                : $"Member must have length less than or equal to {max}");
        }
        return this;
    }

    /// <summary>Throws the collected failures as one error; IAM names the same error <c>ValidationError</c>.</summary>
    public void ThrowIfInvalid(string errorCode = ErrorCodes.Validation)
    {
        if (_errors.Count == 0)
        {
            return;
        }
        var count = _errors.Count == 1 ? "1 validation error detected: " : $"{_errors.Count} validation errors detected: ";
        throw new ServiceException(errorCode, count + string.Join("; ", _errors));
    }

    private void Fail(string value, string member, bool sensitive, string constraint)
    {
        var shown = sensitive ? "Value" : $"Value '{(value.Length > MaxEchoedLength ? value[..MaxEchoedLength] + "..." : value)}'";
        _errors.Add($"{shown} at '{member}' failed to satisfy constraint: {constraint}");
    }
}
