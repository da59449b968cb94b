using System.Globalization;
using System.Text.RegularExpressions;
using Cronos;
using Tumbler.Core.Secrets;

namespace Tumbler.Core.Rotation;

/// <summary>A rotation window in UTC: the secret is due from <see cref="Start"/> (inclusive) and must be
/// rotated before <see cref="End"/> (exclusive). <see cref="End"/> is what NextRotationDate reports.</summary>
public readonly record struct RotationWindow(DateTimeOffset Start, DateTimeOffset End);

/// <summary>
/// The validated form of AWS <c>RotationRules</c> (spec §3.7) and the rule for the next rotation window.
/// All times are UTC. Three kinds of schedule:
/// <list type="bullet">
/// <item><b>Days</b> (<c>AutomaticallyAfterDays N</c> or <c>rate(N days)</c>): the next window opens at
/// UTC midnight of (the UTC date of the last rotation + N days). Default window: that whole UTC day.</item>
/// <item><b>Hours</b> (<c>rate(N hours)</c>, 4 ≤ N ≤ 23): windows open at 00:00, N, 2N, … &lt; 24 h UTC,
/// restarting at every UTC midnight, default 1 h long, cut at midnight. The next window is the first
/// one that is still open at <c>lastRotation + N hours</c>, starting no earlier than that instant: so a
/// secret is never rotated twice within N hours, and a rotation made late in a window does not skip
/// the following window (it only shortens it).</item>
/// <item><b>Cron</b> (<c>cron(0 H DoM Mon DoW *)</c>): the next window opens at the first occurrence
/// strictly after the last rotation. Default window: 1 h when the expression fires at several hours a
/// day, otherwise the rest of the UTC day.</item>
/// </list>
/// Model constraints (ranges, lengths, patterns) fail with <c>ValidationException</c> like AWS's framework
/// (spec §1.4); everything else fails with <c>InvalidParameterException</c>.
/// </summary>
public sealed partial class RotationSchedule
{
    /// <summary>Secrets Manager rotates a secret at most once every four hours.</summary>
    private const int MinHoursBetweenRotations = 4;
    private const int MaxDays = 1000;
    private const string TooFrequent =
        "The rotation schedule is too frequent: Secrets Manager rotates a secret at most once every four hours.";

    private static readonly TimeSpan OneDay = TimeSpan.FromDays(1);

    // The calendar (weekday of each date, leap years) repeats every 28 years between 1901 and 2099, so
    // scanning 28 years plus a day sees every pattern of matching days a cron expression can produce.
    private static readonly DateTime ScanFrom = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private static readonly DateTime ScanTo = ScanFrom.AddYears(28).AddDays(1);

    private enum Kind { Days, Hours, Cron }

    private readonly Kind _kind;
    private readonly int _interval;        // days (Days) or hours (Hours); unused for Cron
    private readonly TimeSpan _window;     // effective window length
    private readonly CronExpression? _cron;

    private RotationSchedule(RotationRulesType rules, Kind kind, int interval, TimeSpan window, CronExpression? cron = null)
    {
        Rules = rules;
        _kind = kind;
        _interval = interval;
        _window = window;
        _cron = cron;
    }

    /// <summary>The rules as DescribeSecret echoes them: only the members the caller gave, unchanged.</summary>
    public RotationRulesType Rules { get; }

    /// <summary>Validates AWS rotation rules. Throws <see cref="ServiceException"/>
    /// (<c>ValidationException</c> for model constraints, <c>InvalidParameterException</c> otherwise).</summary>
    public static RotationSchedule Parse(RotationRulesType rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        // The model constraints of RotationRulesType, reported by AWS's framework, not the service.
        new RequestValidator()
            .Range(rules.AutomaticallyAfterDays, "rotationRules.automaticallyAfterDays", 1, MaxDays)
            .Length(rules.Duration, "rotationRules.duration", 2, 3)
            .Pattern(rules.Duration, "rotationRules.duration", DurationPattern())
            .Length(rules.ScheduleExpression, "rotationRules.scheduleExpression", 1, 256)
            .Pattern(rules.ScheduleExpression, "rotationRules.scheduleExpression", ExpressionPattern())
            .ThrowIfInvalid();

        if (rules.AutomaticallyAfterDays is not null && rules.ScheduleExpression is not null)
        {
            throw ServiceException.InvalidParameter(
                "You cannot specify both rotation frequency and schedule expression together."); // AWS's text
        }
        var echo = new RotationRulesType
        {
            AutomaticallyAfterDays = rules.AutomaticallyAfterDays,
            Duration = rules.Duration,
            ScheduleExpression = rules.ScheduleExpression,
        };
        var duration = ParseDuration(rules.Duration);
        if (rules.AutomaticallyAfterDays is { } days)
        {
            // A window starting at midnight can be up to 24 h long, so any valid Duration fits.
            return new RotationSchedule(echo, Kind.Days, (int)days, duration ?? OneDay);
        }
        var expression = rules.ScheduleExpression
            ?? throw ServiceException.InvalidParameter(
                "RotationRules must contain either AutomaticallyAfterDays or ScheduleExpression.");
        if (expression.StartsWith("rate(", StringComparison.Ordinal))
        {
            return ParseRate(echo, expression, duration);
        }
        if (expression.StartsWith("cron(", StringComparison.Ordinal) && expression.EndsWith(')'))
        {
            return ParseCron(echo, expression, duration);
        }
        throw ServiceException.InvalidParameter(
            $"Invalid ScheduleExpression '{expression}': use rate(N hours), rate(N days) or "
            + "cron(Minutes Hours Day-of-month Month Day-of-week Year).");
    }

    /// <summary>The window of the rotation that follows one made (or a value change recorded) at
    /// <paramref name="lastRotation"/>; see the class comment for the rule of each kind. Always in UTC.</summary>
    public RotationWindow NextWindow(DateTimeOffset lastRotation)
    {
        var last = lastRotation.ToUniversalTime();
        switch (_kind)
        {
            case Kind.Days:
            {
                var start = Midnight(last).AddDays(_interval);
                return new RotationWindow(start, start + _window);
            }
            case Kind.Hours:
            {
                var earliest = last.AddHours(_interval);
                // Today's grid and then tomorrow's: tomorrow's first window always ends after `earliest`.
                for (var midnight = Midnight(earliest); ; midnight = midnight.AddDays(1))
                {
                    for (var hour = 0; hour < 24; hour += _interval)
                    {
                        var start = midnight.AddHours(hour);
                        // The last window of a day stops at midnight: it must not run into tomorrow's 00:00 window.
                        var end = Min(start + _window, midnight + OneDay);
                        if (end > earliest)
                        {
                            return new RotationWindow(start > earliest ? start : earliest, end);
                        }
                    }
                }
            }
            default:
            {
                // Cronos returns the first occurrence strictly after `last`, so a rotation made inside a
                // window never gets that same window again.
                var start = _cron!.GetNextOccurrence(last, TimeZoneInfo.Utc)
                    ?? throw new InvalidOperationException("The cron expression has no further occurrence.");
                return new RotationWindow(start.ToUniversalTime(), start.ToUniversalTime() + _window);
            }
        }
    }

    /// <summary>
    /// The AutomaticallyAfterDays DescribeSecret reports for a ScheduleExpression: the whole days (rounded up, at least
    /// one) between the next two windows after a rotation at <paramref name="lastRotation"/>, so a yearly cron reads
    /// 365 however long ago the secret was made. AWS answers
    /// <c>{"AutomaticallyAfterDays": 1, "ScheduleExpression": "rate(10 hours)"}</c>, and N for rate(N days).
    /// </summary>
    public long DaysBetweenRotations(DateTimeOffset lastRotation)
    {
        switch (_kind)
        {
            case Kind.Days:
                return _interval;
            case Kind.Hours:
                return 1;
            default:
                var next = NextWindow(lastRotation).Start;
                return Math.Max(1, (long)Math.Ceiling((NextWindow(next).Start - next).TotalDays));
        }
    }

    // Duration: "<hours>h", 1h to 24h (the model already checked length 2-3 and the pattern).
    private static TimeSpan? ParseDuration(string? duration)
    {
        if (duration is null)
        {
            return null;
        }
        if (!duration.EndsWith('h')
            || !int.TryParse(duration.AsSpan(0, duration.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var hours)
            || hours is < 1 or > 24)
        {
            throw ServiceException.InvalidParameter(
                $"Invalid Duration '{duration}': a rotation window lasts from 1h to 24h, in whole hours.");
        }
        return TimeSpan.FromHours(hours);
    }

    // rate(N hour|hours|day|days): singular and plural are both accepted for any N, as the AWS docs list
    // all four units without tying them to N.
    private static RotationSchedule ParseRate(RotationRulesType echo, string expression, TimeSpan? duration)
    {
        var match = RatePattern().Match(expression);
        // The pattern allows digits only: a number too large for an int is just too large, and the checks below say the longest interval.
        var n = !match.Success ? 0 : int.TryParse(match.Groups["n"].Value, CultureInfo.InvariantCulture, out var parsed) ? parsed : int.MaxValue;
        if (n < 1)
        {
            throw ServiceException.InvalidParameter(
                $"Invalid rate() expression '{expression}': use rate(N hours) or rate(N days) with N a positive whole number.");
        }
        if (match.Groups["unit"].Value.StartsWith("day", StringComparison.Ordinal))
        {
            if (n > MaxDays)
            {
                throw ServiceException.InvalidParameter(
                    $"Invalid rate() expression '{expression}': the longest rotation interval is {MaxDays} days.");
            }
            // rate(N days) is AutomaticallyAfterDays N.
            return new RotationSchedule(echo, Kind.Days, n, duration ?? OneDay);
        }
        if (n < MinHoursBetweenRotations)
        {
            throw ServiceException.InvalidParameter(TooFrequent);
        }
        // Hour windows restart every UTC midnight, so an interval of a day or more has no meaning in hours.
        if (n > 23)
        {
            throw ServiceException.InvalidParameter(
                $"Invalid rate() expression '{expression}': an interval in hours must be 4 to 23 hours; use rate(N days) for longer intervals.");
        }
        var window = duration ?? TimeSpan.FromHours(1);
        if (window > TimeSpan.FromHours(n))
        {
            throw ServiceException.InvalidParameter(
                $"The rotation window ({echo.Duration}) must not extend into the next rotation window, which opens {n} hours later.");
        }
        return new RotationSchedule(echo, Kind.Hours, n, window);
    }

    // cron(Minutes Hours Day-of-month Month Day-of-week Year) with the Secrets Manager restrictions,
    // translated to a five-field Cronos expression evaluated in UTC.
    private static RotationSchedule ParseCron(RotationRulesType echo, string expression, TimeSpan? duration)
    {
        var fields = expression[5..^1].ToUpperInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length != 6)
        {
            throw InvalidCron(expression, $"it needs 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), not {fields.Length}");
        }
        var (minutes, hours, dayOfMonth, month, dayOfWeek, year) = (fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]);
        if (minutes != "0")
        {
            throw InvalidCron(expression, "the Minutes field must be 0, because rotation windows open on the hour");
        }
        if (year != "*")
        {
            throw InvalidCron(expression, "the Year field must be *");
        }
        if ((dayOfMonth == "?") == (dayOfWeek == "?"))
        {
            throw InvalidCron(expression, "exactly one of the Day-of-month and Day-of-week fields must be ?");
        }

        var cronHours = TranslateHours(expression, hours);
        var cronDays = $"{TranslateDayOfMonth(expression, dayOfMonth)} {TranslateMonth(expression, month)} {TranslateDayOfWeek(expression, dayOfWeek)}";
        var cron = ParseCronos(expression, $"0 {cronHours} {cronDays}");

        // Hours are the same on every matching day, so the hours of one day and the matching days
        // together describe every occurrence.
        var hourSet = ParseCronos(expression, $"0 {cronHours} * * *")
            .GetOccurrences(ScanFrom, ScanFrom + OneDay, fromInclusive: true, toInclusive: false)
            .Select(t => t.Hour).ToList();
        var days = ParseCronos(expression, $"0 0 {cronDays}")
            .GetOccurrences(ScanFrom, ScanTo, fromInclusive: true, toInclusive: false);
        if (hourSet.Count == 0 || !days.Any())
        {
            throw InvalidCron(expression, "it never matches any date");
        }

        // Within a day: consecutive hours. Across midnight: last hour of one day to the first of the
        // next, which only matters when two consecutive days match.
        var minGapInDay = hourSet.Zip(hourSet.Skip(1), (a, b) => b - a).DefaultIfEmpty(24).Min();
        var gapOverMidnight = 24 - hourSet[^1] + hourSet[0];
        if (minGapInDay < MinHoursBetweenRotations
            || (gapOverMidnight < MinHoursBetweenRotations && HasConsecutiveDays(days)))
        {
            throw ServiceException.InvalidParameter(TooFrequent);
        }

        var window = duration ?? (hourSet.Count > 1 ? TimeSpan.FromHours(1) : TimeSpan.FromHours(24 - hourSet[0]));
        if (window.TotalHours > minGapInDay)
        {
            throw ServiceException.InvalidParameter(
                $"The rotation window ({echo.Duration}) must not extend into the next rotation window, which opens {minGapInDay} hours later.");
        }
        // Ending by midnight also keeps it clear of the next day's first window.
        if (hourSet[^1] + window.TotalHours > 24)
        {
            throw ServiceException.InvalidParameter(
                $"The rotation window ({echo.Duration}) must not extend into the next UTC day: a window opening at {hourSet[^1]:00}:00 UTC may last at most {24 - hourSet[^1]}h.");
        }
        return new RotationSchedule(echo, Kind.Cron, 0, window, cron);
    }

    private static bool HasConsecutiveDays(IEnumerable<DateTime> days)
    {
        DateTime? previous = null;
        foreach (var day in days)
        {
            if (day - previous == OneDay)
            {
                return true;
            }
            previous = day;
        }
        return false;
    }

    // Hours 0-23 with , - * /; AWS reads a leading "/8" as "0/8".
    private static string TranslateHours(string expression, string field)
    {
        var items = field.Split(',').Select(item => item.StartsWith('/') ? "0" + item : item).ToList();
        if (!items.All(item => HourOrDayItem().IsMatch(item)))
        {
            throw InvalidCron(expression, $"the Hours field '{field}' may only hold hours 0-23 with , - * /");
        }
        return string.Join(',', items);
    }

    // Day-of-month 1-31 with , - * / and L (last day, optionally L-n); "?" means "any" for Cronos.
    private static string TranslateDayOfMonth(string expression, string field)
    {
        if (field == "?")
        {
            return "*";
        }
        if (LastDayOfMonth().IsMatch(field) || field.Split(',').All(item => HourOrDayItem().IsMatch(item)))
        {
            return field;
        }
        throw InvalidCron(expression, $"the Day-of-month field '{field}' may only hold days 1-31 with , - * ? / L");
    }

    // Month 1-12 or JAN-DEC with , - * /: Cronos numbers months the same way.
    private static string TranslateMonth(string expression, string field)
    {
        if (field.Split(',').All(item => MonthItem().IsMatch(item)))
        {
            return field;
        }
        throw InvalidCron(expression, $"the Month field '{field}' may only hold months 1-12 or JAN-DEC with , - * /");
    }

    // Day-of-week: AWS counts 1=SUN..7=SAT, Cronos 0=SUN..6=SAT (7 is SUN again). Every day is turned
    // into a Cronos number, and open-ended forms get an explicit end, so Cronos's extra 7 never creeps in.
    private static string TranslateDayOfWeek(string expression, string field)
    {
        if (field == "?")
        {
            return "*";
        }
        var items = field.Split(',').Select(item =>
        {
            // "L" alone is the last day of the week: Saturday.
            if (item == "L")
            {
                return "6";
            }
            var match = DayOfWeekItem().Match(item);
            if (!match.Success)
            {
                throw InvalidCron(expression, $"the Day-of-week field '{field}' may only hold days 1-7 or SUN-SAT with # , - * ? / L");
            }
            var step = match.Groups["step"].Success ? "/" + match.Groups["step"].Value : "";
            if (!match.Groups["from"].Success)
            {
                return step.Length == 0 ? "*" : "0-6" + step;
            }
            var from = CronosDay(expression, field, match.Groups["from"].Value);
            if (match.Groups["nth"].Success)
            {
                return $"{from}#{match.Groups["nth"].Value}";
            }
            if (match.Groups["last"].Success)
            {
                return $"{from}L";
            }
            if (match.Groups["to"].Success)
            {
                return $"{from}-{CronosDay(expression, field, match.Groups["to"].Value)}{step}";
            }
            // "MON/2" runs to the end of the week (AWS: up to 7 = SAT).
            return step.Length == 0 ? from.ToString(CultureInfo.InvariantCulture) : $"{from}-6{step}";
        });
        return string.Join(',', items);
    }

    private static int CronosDay(string expression, string field, string day)
    {
        var index = Array.IndexOf(DayNames, day);
        if (index >= 0)
        {
            return index;
        }
        if (int.TryParse(day, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 7)
        {
            return n - 1;
        }
        throw InvalidCron(expression, $"the Day-of-week field '{field}' may only hold days 1-7 or SUN-SAT with # , - * ? / L");
    }

    private static readonly string[] DayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

    private static CronExpression ParseCronos(string expression, string cronos)
    {
        try
        {
            return CronExpression.Parse(cronos);
        }
        catch (CronFormatException ex)
        {
            // Cronos prefixes every message with a generic sentence; keep only the part naming the field.
            var problem = ex.Message.Replace("The given cron expression has an invalid format.", "", StringComparison.Ordinal).Trim();
            throw InvalidCron(expression, problem.TrimEnd('.'));
        }
    }

    private static ServiceException InvalidCron(string expression, string problem) =>
        ServiceException.InvalidParameter($"Invalid cron() expression '{expression}': {problem}.");

    private static DateTimeOffset Midnight(DateTimeOffset utc) => new(utc.UtcDateTime.Date, TimeSpan.Zero);

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    [GeneratedRegex(@"^[0-9]+h$")]
    private static partial Regex DurationPattern();

    [GeneratedRegex(@"^[0-9A-Za-z\(\)#\?\*\-\/, ]+$")]
    private static partial Regex ExpressionPattern();

    [GeneratedRegex(@"^rate\((?<n>[0-9]{1,12}) (?<unit>hours?|days?)\)$")]
    private static partial Regex RatePattern();

    // "5", "1-15", "*", "*/3", "4/12", "1-15/2" (Cronos checks the ranges).
    [GeneratedRegex(@"^(\*|[0-9]{1,2}(-[0-9]{1,2})?)(/[0-9]{1,2})?$")]
    private static partial Regex HourOrDayItem();

    [GeneratedRegex(@"^L(-[0-9]{1,2})?$")]
    private static partial Regex LastDayOfMonth();

    [GeneratedRegex(@"^(\*|([0-9]{1,2}|[A-Z]{3})(-([0-9]{1,2}|[A-Z]{3}))?)(/[0-9]{1,2})?$")]
    private static partial Regex MonthItem();

    // "*", "*/2", "MON", "2", "MON-FRI", "2-6/2", "MON/2", "SUN#1", "1#1", "5L", "FRIL".
    [GeneratedRegex(@"^(?:\*(?:/(?<step>[0-9]{1,2}))?|(?<from>[0-9]|[A-Z]{3})(?:#(?<nth>[1-5])|(?<last>L))|(?<from>[0-9]|[A-Z]{3})(?:-(?<to>[0-9]|[A-Z]{3}))?(?:/(?<step>[0-9]{1,2}))?)$")]
    private static partial Regex DayOfWeekItem();
}
