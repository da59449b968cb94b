using System.Globalization;
using Tumbler.Core.Rotation;
using Tumbler.Core.Secrets;

namespace Tumbler.Core.Tests.Rotation;

public class RotationScheduleTests
{
    // 2024-05-15 is a Wednesday; expectations below were worked out on a calendar, not with Cronos.
    private const string Wednesday1030 = "2024-05-15T10:30:00Z";

    private static DateTimeOffset At(string iso) => DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture);

    private static RotationSchedule Schedule(string expression, string? duration = null) =>
        RotationSchedule.Parse(new RotationRulesType { ScheduleExpression = expression, Duration = duration });

    private static void AssertWindow(RotationWindow window, string start, string end)
    {
        Assert.Equal(At(start), window.Start);
        Assert.Equal(At(end), window.End);
        Assert.Equal(TimeSpan.Zero, window.Start.Offset);
        Assert.Equal(TimeSpan.Zero, window.End.Offset);
    }

    private static ServiceException AssertRejected(RotationRulesType rules, string code = ErrorCodes.InvalidParameter)
    {
        var ex = Assert.Throws<ServiceException>(() => RotationSchedule.Parse(rules));
        Assert.Equal(code, ex.ErrorCode);
        return ex;
    }

    private static ServiceException AssertRejected(string expression, string? duration = null) =>
        AssertRejected(new RotationRulesType { ScheduleExpression = expression, Duration = duration });

    // ---- Days: AutomaticallyAfterDays and rate(N days) ----

    [Fact]
    public void AutomaticallyAfterDays_opens_at_midnight_of_the_last_rotation_date_plus_N_for_the_whole_day()
    {
        var schedule = RotationSchedule.Parse(new RotationRulesType { AutomaticallyAfterDays = 30 });

        AssertWindow(schedule.NextWindow(At(Wednesday1030)), "2024-06-14T00:00:00Z", "2024-06-15T00:00:00Z");
        // The time of day of the last rotation does not matter, only its UTC date.
        AssertWindow(schedule.NextWindow(At("2024-05-15T23:59:59Z")), "2024-06-14T00:00:00Z", "2024-06-15T00:00:00Z");
        AssertWindow(schedule.NextWindow(At("2024-05-15T00:00:00Z")), "2024-06-14T00:00:00Z", "2024-06-15T00:00:00Z");
    }

    [Fact]
    public void AutomaticallyAfterDays_uses_the_utc_date_of_an_offset_timestamp()
    {
        var schedule = RotationSchedule.Parse(new RotationRulesType { AutomaticallyAfterDays = 1 });

        // 01:00 at +02:00 is still the 14th in UTC.
        AssertWindow(schedule.NextWindow(At("2024-05-15T01:00:00+02:00")), "2024-05-15T00:00:00Z", "2024-05-16T00:00:00Z");
    }

    [Fact]
    public void AutomaticallyAfterDays_takes_a_Duration()
    {
        var schedule = RotationSchedule.Parse(new RotationRulesType { AutomaticallyAfterDays = 7, Duration = "3h" });

        AssertWindow(schedule.NextWindow(At(Wednesday1030)), "2024-05-22T00:00:00Z", "2024-05-22T03:00:00Z");
    }

    [Theory]
    [InlineData("rate(10 days)", 10)]
    [InlineData("rate(1 day)", 1)]
    [InlineData("rate(1 days)", 1)]
    [InlineData("rate(2 day)", 2)]
    [InlineData("rate(1000 days)", 1000)]
    public void Rate_in_days_is_AutomaticallyAfterDays(string expression, int days)
    {
        var byRate = Schedule(expression);
        var byDays = RotationSchedule.Parse(new RotationRulesType { AutomaticallyAfterDays = days });

        foreach (var last in new[] { Wednesday1030, "2024-02-28T23:00:00Z", "2024-12-31T00:00:00Z" })
        {
            Assert.Equal(byDays.NextWindow(At(last)), byRate.NextWindow(At(last)));
        }
    }

    [Fact]
    public void Rate_in_days_with_Duration()
    {
        AssertWindow(Schedule("rate(1 day)", "24h").NextWindow(At(Wednesday1030)), "2024-05-16T00:00:00Z", "2024-05-17T00:00:00Z");
        AssertWindow(Schedule("rate(1 day)", "1h").NextWindow(At(Wednesday1030)), "2024-05-16T00:00:00Z", "2024-05-16T01:00:00Z");
    }

    // ---- Hours: rate(N hours) ----

    [Fact]
    public void Rate_in_hours_after_a_rotation_at_a_window_start_gives_the_next_boundary()
    {
        var schedule = Schedule("rate(4 hours)");

        AssertWindow(schedule.NextWindow(At("2024-05-15T08:00:00Z")), "2024-05-15T12:00:00Z", "2024-05-15T13:00:00Z");
        AssertWindow(schedule.NextWindow(At("2024-05-15T20:00:00Z")), "2024-05-16T00:00:00Z", "2024-05-16T01:00:00Z");
    }

    [Fact]
    public void Rate_in_hours_after_a_rotation_inside_a_window_shortens_the_next_window_instead_of_skipping_it()
    {
        var schedule = Schedule("rate(4 hours)");

        // Rotated at 08:10 inside the 08:00 window: the 12:00 window opens at 12:10, four hours later.
        AssertWindow(schedule.NextWindow(At("2024-05-15T08:10:00Z")), "2024-05-15T12:10:00Z", "2024-05-15T13:00:00Z");
        // Rotated at 08:59:59: still the 12:00 window.
        AssertWindow(schedule.NextWindow(At("2024-05-15T08:59:59Z")), "2024-05-15T12:59:59Z", "2024-05-15T13:00:00Z");
    }

    [Fact]
    public void Rate_in_hours_after_a_rotation_between_windows_waits_N_hours()
    {
        var schedule = Schedule("rate(4 hours)");

        // A manual change at 10:30: 14:30 lies after the 12:00 window, so the 16:00 window is next.
        AssertWindow(schedule.NextWindow(At(Wednesday1030)), "2024-05-15T16:00:00Z", "2024-05-15T17:00:00Z");
        // 21:30 + 4 h = 01:30 tomorrow, after the 00:00 window.
        AssertWindow(schedule.NextWindow(At("2024-05-15T21:30:00Z")), "2024-05-16T04:00:00Z", "2024-05-16T05:00:00Z");
    }

    [Fact]
    public void Rate_in_hours_resets_at_midnight()
    {
        // rate(5 hours): 00, 05, 10, 15, 20 every day.
        var schedule = Schedule("rate(5 hours)");

        AssertWindow(schedule.NextWindow(At("2024-05-15T15:00:00Z")), "2024-05-15T20:00:00Z", "2024-05-15T21:00:00Z");
        // 20:00 + 5 h = 01:00, when the 00:00 window has closed: next is 05:00, not 01:00.
        AssertWindow(schedule.NextWindow(At("2024-05-15T20:00:00Z")), "2024-05-16T05:00:00Z", "2024-05-16T06:00:00Z");
        // 19:00 + 5 h = 00:00 exactly: the 00:00 window.
        AssertWindow(schedule.NextWindow(At("2024-05-15T19:00:00Z")), "2024-05-16T00:00:00Z", "2024-05-16T01:00:00Z");
    }

    [Fact]
    public void Rate_in_hours_cuts_the_last_window_of_the_day_at_midnight()
    {
        // rate(5 hours) with 5h windows: 20:00-01:00 would run into tomorrow's 00:00 window.
        var schedule = Schedule("rate(5 hours)", "5h");

        AssertWindow(schedule.NextWindow(At("2024-05-15T15:00:00Z")), "2024-05-15T20:00:00Z", "2024-05-16T00:00:00Z");
        AssertWindow(schedule.NextWindow(At("2024-05-15T10:00:00Z")), "2024-05-15T15:00:00Z", "2024-05-15T20:00:00Z");
    }

    [Fact]
    public void Rate_in_hours_accepts_singular_units_and_a_window_as_long_as_the_interval()
    {
        AssertWindow(Schedule("rate(12 hour)", "12h").NextWindow(At("2024-05-15T00:00:00Z")), "2024-05-15T12:00:00Z", "2024-05-16T00:00:00Z");
        AssertWindow(Schedule("rate(23 hours)").NextWindow(At("2024-05-15T00:00:00Z")), "2024-05-15T23:00:00Z", "2024-05-16T00:00:00Z");
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(13)]
    [InlineData(23)]
    public void Rate_in_hours_never_opens_a_window_within_N_hours_of_the_last_rotation(int n)
    {
        var schedule = Schedule($"rate({n} hours)");
        var interval = TimeSpan.FromHours(n);

        for (var last = At("2024-05-15T00:00:00Z"); last < At("2024-05-18T00:00:00Z"); last = last.AddMinutes(17))
        {
            var window = schedule.NextWindow(last);
            Assert.True(window.Start >= last + interval, $"{last:O} -> {window.Start:O}");
            Assert.True(window.End > window.Start);
            Assert.True(window.End - window.Start <= TimeSpan.FromHours(1));
            // It stays on the daily grid: the window closes on a boundary hour + 1h.
            Assert.Equal(0, window.End.AddHours(-1).Hour % n);
            Assert.Equal(0, window.End.Minute);
        }
    }

    [Fact]
    public void Rate_in_hours_rotating_at_the_window_start_hits_every_boundary_of_the_day()
    {
        var schedule = Schedule("rate(6 hours)");
        var starts = new List<DateTimeOffset>();
        var last = At("2024-05-15T00:00:00Z");
        for (var i = 0; i < 8; i++)
        {
            last = schedule.NextWindow(last).Start;
            starts.Add(last);
        }

        Assert.Equal(
            new[] { "06", "12", "18", "00", "06", "12", "18", "00" },
            starts.Select(s => s.ToString("HH", CultureInfo.InvariantCulture)));
        Assert.Equal(At("2024-05-17T00:00:00Z"), starts[^1]);
    }

    // ---- Cron: the documented examples ----

    [Theory]
    // Every 8 hours from midnight (0, 8, 16), 1h windows.
    [InlineData("cron(0 /8 * * ? *)", null, Wednesday1030, "2024-05-15T16:00:00Z", "2024-05-15T17:00:00Z")]
    [InlineData("cron(0 /8 * * ? *)", null, "2024-05-15T16:20:00Z", "2024-05-16T00:00:00Z", "2024-05-16T01:00:00Z")]
    // 8 and 16.
    [InlineData("cron(0 8/8 * * ? *)", null, Wednesday1030, "2024-05-15T16:00:00Z", "2024-05-15T17:00:00Z")]
    [InlineData("cron(0 8/8 * * ? *)", null, "2024-05-15T17:00:00Z", "2024-05-16T08:00:00Z", "2024-05-16T09:00:00Z")]
    // 2, 12, 22.
    [InlineData("cron(0 2/10 * * ? *)", null, Wednesday1030, "2024-05-15T12:00:00Z", "2024-05-15T13:00:00Z")]
    [InlineData("cron(0 2/10 * * ? *)", null, "2024-05-15T22:30:00Z", "2024-05-16T02:00:00Z", "2024-05-16T03:00:00Z")]
    // Daily at 10:00: a rotation at 10:30 is inside today's window, so tomorrow; the window runs to midnight.
    [InlineData("cron(0 10 * * ? *)", null, Wednesday1030, "2024-05-16T10:00:00Z", "2024-05-17T00:00:00Z")]
    [InlineData("cron(0 10 * * ? *)", null, "2024-05-15T09:59:59Z", "2024-05-15T10:00:00Z", "2024-05-16T00:00:00Z")]
    // Saturdays at 18:00.
    [InlineData("cron(0 18 ? * SAT *)", null, Wednesday1030, "2024-05-18T18:00:00Z", "2024-05-19T00:00:00Z")]
    // The 1st of the month at 08:00.
    [InlineData("cron(0 8 1 * ? *)", null, Wednesday1030, "2024-06-01T08:00:00Z", "2024-06-02T00:00:00Z")]
    // The first Sunday of Jan/Apr/Jul/Oct at 01:00; July 2024 starts on a Monday.
    [InlineData("cron(0 1 ? 1/3 SUN#1 *)", null, Wednesday1030, "2024-07-07T01:00:00Z", "2024-07-08T00:00:00Z")]
    // The last day of the month at 17:00.
    [InlineData("cron(0 17 L * ? *)", null, Wednesday1030, "2024-05-31T17:00:00Z", "2024-06-01T00:00:00Z")]
    [InlineData("cron(0 17 L * ? *)", null, "2024-02-01T00:00:00Z", "2024-02-29T17:00:00Z", "2024-03-01T00:00:00Z")]
    // Weekdays at 08:00: Wednesday -> Thursday, Friday -> Monday.
    [InlineData("cron(0 8 ? * MON-FRI *)", null, Wednesday1030, "2024-05-16T08:00:00Z", "2024-05-17T00:00:00Z")]
    [InlineData("cron(0 8 ? * MON-FRI *)", null, "2024-05-17T09:00:00Z", "2024-05-20T08:00:00Z", "2024-05-21T00:00:00Z")]
    // The 1st and 15th at 16:00 with the model's 2h window.
    [InlineData("cron(0 16 1,15 * ? *)", "2h", Wednesday1030, "2024-05-15T16:00:00Z", "2024-05-15T18:00:00Z")]
    [InlineData("cron(0 16 1,15 * ? *)", "2h", "2024-05-15T17:00:00Z", "2024-06-01T16:00:00Z", "2024-06-01T18:00:00Z")]
    // The first Sunday of the month at midnight; June 2024 starts on a Saturday.
    [InlineData("cron(0 0 ? * SUN#1 *)", null, Wednesday1030, "2024-06-02T00:00:00Z", "2024-06-03T00:00:00Z")]
    public void Documented_cron_examples(string expression, string? duration, string last, string start, string end)
    {
        var schedule = Schedule(expression, duration);

        AssertWindow(schedule.NextWindow(At(last)), start, end);
    }

    [Fact]
    public void Cron_hours_reset_each_day()
    {
        // 4 and 16 every day (the AWS docs' own example).
        var schedule = Schedule("cron(0 4/12 * * ? *)");

        AssertWindow(schedule.NextWindow(At("2024-05-15T04:00:00Z")), "2024-05-15T16:00:00Z", "2024-05-15T17:00:00Z");
        AssertWindow(schedule.NextWindow(At("2024-05-15T16:00:00Z")), "2024-05-16T04:00:00Z", "2024-05-16T05:00:00Z");
    }

    [Fact]
    public void Cron_takes_an_offset_timestamp_and_answers_in_utc()
    {
        // 23:30 at +02:00 is 21:30 UTC, before the 22:00 UTC occurrence.
        AssertWindow(Schedule("cron(0 22 * * ? *)").NextWindow(At("2024-05-15T23:30:00+02:00")),
            "2024-05-15T22:00:00Z", "2024-05-16T00:00:00Z");
    }

    [Fact]
    public void Cron_window_may_last_up_to_the_gap_and_up_to_midnight()
    {
        AssertWindow(Schedule("cron(0 8/8 * * ? *)", "8h").NextWindow(At(Wednesday1030)), "2024-05-15T16:00:00Z", "2024-05-16T00:00:00Z");
        AssertWindow(Schedule("cron(0 4/12 * * ? *)", "8h").NextWindow(At(Wednesday1030)), "2024-05-15T16:00:00Z", "2024-05-16T00:00:00Z");
        AssertWindow(Schedule("cron(0 0 * * ? *)", "24h").NextWindow(At(Wednesday1030)), "2024-05-16T00:00:00Z", "2024-05-17T00:00:00Z");
    }

    // AWS numbers days of the week 1=SUN..7=SAT; Cronos 0=SUN. Each numeric form must equal its named form.
    [Theory]
    [InlineData("1", "SUN")]
    [InlineData("7", "SAT")]
    [InlineData("2-6", "MON-FRI")]
    [InlineData("1,7", "SUN,SAT")]
    [InlineData("1#1", "SUN#1")]
    [InlineData("6L", "FRIL")]
    [InlineData("L", "SAT")]
    [InlineData("*/2", "SUN,TUE,THU,SAT")]
    [InlineData("1/2", "SUN,TUE,THU,SAT")]
    [InlineData("2/2", "MON,WED,FRI")]
    [InlineData("MON/2", "MON,WED,FRI")]
    [InlineData("2-6/2", "MON,WED,FRI")]
    [InlineData("sat", "SAT")]
    public void Cron_day_of_week_numbers_follow_aws(string aws, string names)
    {
        var numeric = Schedule($"cron(0 12 ? * {aws} *)");
        var named = Schedule($"cron(0 12 ? * {names} *)");

        for (var last = At("2024-01-01T00:00:00Z"); last < At("2024-03-01T00:00:00Z"); last = last.AddDays(1))
        {
            Assert.Equal(named.NextWindow(last), numeric.NextWindow(last));
        }
    }

    [Fact]
    public void Cron_last_weekday_of_the_month()
    {
        // 6L = the last Friday; May 2024 ends on Friday the 31st.
        AssertWindow(Schedule("cron(0 12 ? * 6L *)").NextWindow(At(Wednesday1030)), "2024-05-31T12:00:00Z", "2024-06-01T00:00:00Z");
    }

    [Fact]
    public void Cron_months_by_name_and_number()
    {
        AssertWindow(Schedule("cron(0 10 1 JAN,JUL ? *)").NextWindow(At(Wednesday1030)), "2024-07-01T10:00:00Z", "2024-07-02T00:00:00Z");
        AssertWindow(Schedule("cron(0 10 1 1,7 ? *)").NextWindow(At(Wednesday1030)), "2024-07-01T10:00:00Z", "2024-07-02T00:00:00Z");
        AssertWindow(Schedule("cron(0 10 1 */6 ? *)").NextWindow(At(Wednesday1030)), "2024-07-01T10:00:00Z", "2024-07-02T00:00:00Z");
    }

    [Fact]
    public void Cron_close_hours_around_midnight_are_fine_when_consecutive_days_never_match()
    {
        // 22:00 and 01:00 are three hours apart only across a midnight, and the 1st never follows the 1st.
        AssertWindow(Schedule("cron(0 1,22 1 * ? *)").NextWindow(At(Wednesday1030)), "2024-06-01T01:00:00Z", "2024-06-01T02:00:00Z");
    }

    // ---- Rules echo ----

    [Fact]
    public void Rules_echo_only_the_given_members()
    {
        var days = RotationSchedule.Parse(new RotationRulesType { AutomaticallyAfterDays = 30 });
        Assert.Equal(new RotationRulesType { AutomaticallyAfterDays = 30 }, days.Rules);

        var cron = Schedule("cron(0 16 1,15 * ? *)", "2h");
        Assert.Equal(new RotationRulesType { ScheduleExpression = "cron(0 16 1,15 * ? *)", Duration = "2h" }, cron.Rules);

        var rate = Schedule("rate(10 days)");
        Assert.Equal(new RotationRulesType { ScheduleExpression = "rate(10 days)" }, rate.Rules);
    }

    // ---- AutomaticallyAfterDays as DescribeSecret reports it for an expression ----

    [Theory]
    [InlineData("rate(10 days)", "2024-06-05T10:30:00Z", 10)]
    [InlineData("rate(1 day)", "2024-06-05T23:59:00Z", 1)]
    [InlineData("rate(10 hours)", "2024-06-05T10:30:00Z", 1)] // as AWS answers for rate(10 hours)
    [InlineData("cron(0 10 * * ? *)", "2024-06-05T10:30:00Z", 1)]
    [InlineData("cron(0 /8 * * ? *)", "2024-06-05T10:30:00Z", 1)]
    [InlineData("cron(0 18 ? * SAT *)", "2024-06-05T10:30:00Z", 7)]
    [InlineData("cron(0 16 1,15 * ? *)", "2024-06-01T16:10:00Z", 16)] // June 15th to July 1st
    [InlineData("cron(0 16 1,15 * ? *)", "2024-06-15T16:10:00Z", 14)] // July 1st to 15th
    [InlineData("cron(0 0 1 1 ? *)", "2024-12-01T00:00:00Z", 365)] // not the 31 days to the next window
    public void An_expression_reports_the_whole_days_between_its_next_two_windows(string expression, string lastRotation, long days)
    {
        Assert.Equal(days, Schedule(expression).DaysBetweenRotations(At(lastRotation)));
    }

    // ---- Rejected rules ----

    [Fact]
    public void Both_or_neither_of_AutomaticallyAfterDays_and_ScheduleExpression_is_rejected()
    {
        var both = AssertRejected(new RotationRulesType { AutomaticallyAfterDays = 30, ScheduleExpression = "rate(30 days)" });
        Assert.Equal("You cannot specify both rotation frequency and schedule expression together.", both.Message); // AWS's text

        var neither = AssertRejected(new RotationRulesType());
        Assert.Contains("either", neither.Message, StringComparison.Ordinal);
        AssertRejected(new RotationRulesType { Duration = "2h" });
    }

    [Theory]
    [InlineData(0L, "greater than or equal to 1")]
    [InlineData(1001L, "less than or equal to 1000")]
    [InlineData(-5L, "greater than or equal to 1")]
    public void AutomaticallyAfterDays_out_of_range_is_a_model_violation(long days, string constraint)
    {
        var ex = AssertRejected(new RotationRulesType { AutomaticallyAfterDays = days }, ErrorCodes.Validation);

        Assert.Equal(
            $"1 validation error detected: Value '{days}' at 'rotationRules.automaticallyAfterDays' failed to satisfy constraint: Member must have value {constraint}",
            ex.Message);
    }

    [Theory]
    [InlineData(1L)]
    [InlineData(1000L)]
    public void AutomaticallyAfterDays_bounds_are_accepted(long days)
    {
        RotationSchedule.Parse(new RotationRulesType { AutomaticallyAfterDays = days });
    }

    [Theory]
    [InlineData("25h")]
    [InlineData("0h")]
    [InlineData("00h")]
    [InlineData("99h")]
    public void Duration_outside_1h_to_24h_is_rejected(string duration)
    {
        var ex = AssertRejected(new RotationRulesType { AutomaticallyAfterDays = 1, Duration = duration });

        Assert.Contains($"'{duration}'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2d")]
    [InlineData("h")]
    [InlineData("100h")]
    [InlineData("2 h")]
    public void Duration_not_matching_the_model_is_a_model_violation(string duration)
    {
        var ex = AssertRejected(new RotationRulesType { AutomaticallyAfterDays = 1, Duration = duration }, ErrorCodes.Validation);

        Assert.Contains("'rotationRules.duration'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1h")]
    [InlineData("24h")]
    [InlineData("01h")]
    public void Duration_bounds_are_accepted(string duration)
    {
        RotationSchedule.Parse(new RotationRulesType { AutomaticallyAfterDays = 1, Duration = duration });
    }

    [Theory]
    [InlineData("rate(1 hours)")]
    [InlineData("rate(1 hour)")]
    [InlineData("rate(3 hours)")]
    [InlineData("cron(0 /2 * * ? *)")]
    [InlineData("cron(0 * * * ? *)")]
    [InlineData("cron(0 0-23 * * ? *)")]
    [InlineData("cron(0 1,4 * * ? *)")]
    // 23:00 then 01:00 the next day.
    [InlineData("cron(0 1,23 * * ? *)")]
    // The 1st and 2nd are consecutive days: 22:00 on the 1st and 01:00 on the 2nd.
    [InlineData("cron(0 1,22 1,2 * ? *)")]
    // Saturday 22:00 and Sunday 01:00.
    [InlineData("cron(0 1,22 ? * SUN,SAT *)")]
    public void Schedules_more_often_than_every_four_hours_are_rejected(string expression)
    {
        var ex = AssertRejected(expression);

        Assert.Contains("too frequent", ex.Message, StringComparison.Ordinal);
        Assert.Contains("four hours", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cron(0 4 * * ? *)")]
    [InlineData("cron(0 0/4 * * ? *)")]
    [InlineData("cron(0 2,22 * * ? *)")]
    [InlineData("rate(4 hours)")]
    public void Schedules_exactly_four_hours_apart_are_accepted(string expression)
    {
        Schedule(expression);
    }

    [Theory]
    [InlineData("cron(0 23 * * ? *)", "3h", "next UTC day")]
    [InlineData("cron(0 23 * * ? *)", "2h", "next UTC day")]
    [InlineData("cron(0 4/12 * * ? *)", "9h", "next UTC day")]
    [InlineData("cron(0 8/8 * * ? *)", "9h", "next rotation window")]
    [InlineData("cron(0 0/6 * * ? *)", "7h", "next rotation window")]
    [InlineData("rate(4 hours)", "5h", "next rotation window")]
    [InlineData("rate(12 hours)", "13h", "next rotation window")]
    public void Windows_running_into_the_next_day_or_window_are_rejected(string expression, string duration, string problem)
    {
        var ex = AssertRejected(expression, duration);

        Assert.Contains(problem, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cron(30 10 * * ? *)", "Minutes")]
    [InlineData("cron(0/15 10 * * ? *)", "Minutes")]
    [InlineData("cron(0 10 * * ? 2025)", "Year")]
    [InlineData("cron(0 10 ? * ? *)", "exactly one")]
    [InlineData("cron(0 10 * * * *)", "exactly one")]
    [InlineData("cron(0 10 1 * MON *)", "exactly one")]
    [InlineData("cron(0 10 * * ?)", "6 fields")]
    [InlineData("cron(0 0 10 * * ? *)", "6 fields")]
    [InlineData("cron()", "6 fields")]
    [InlineData("cron(0 24 * * ? *)", "Hours")]
    [InlineData("cron(0 10 32 * ? *)", "Days of month")]
    [InlineData("cron(0 10 15W * ? *)", "Day-of-month")]
    [InlineData("cron(0 10 ? 13 MON *)", "Months")]
    [InlineData("cron(0 10 ? * 0 *)", "Day-of-week")]
    [InlineData("cron(0 10 ? * 8 *)", "Day-of-week")]
    [InlineData("cron(0 10 ? * SUN#6 *)", "Day-of-week")]
    [InlineData("cron(0 10 ? * SUN#1,MON#1 *)", "Days of week")]
    [InlineData("cron(0 10 30 2 ? *)", "never")]
    [InlineData("cron(0 H * * ? *)", "Hours")]
    [InlineData("cron(0 10 ? FOO MON *)", "Months")]
    public void Malformed_or_restricted_cron_expressions_are_rejected(string expression, string mentions)
    {
        var ex = AssertRejected(expression);

        Assert.Contains(mentions, ex.Message, StringComparison.Ordinal);
        Assert.Contains(expression, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("weekly")]
    [InlineData("rate(2 weeks)")]
    [InlineData("rate(0 days)")]
    [InlineData("rate(hours)")]
    [InlineData("rate(4hours)")]
    [InlineData("rate(4 hours")]
    [InlineData("rate(1001 days)")]
    [InlineData("rate(24 hours)")]
    [InlineData("Rate(4 hours)")]
    [InlineData("cron 0 10 * * ? *")]
    public void Unrecognised_expressions_are_rejected(string expression)
    {
        var ex = AssertRejected(expression);

        Assert.Contains(expression, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rate(0 days)", "a positive whole number")]
    [InlineData("rate(1001 days)", "the longest rotation interval is 1000 days")]
    [InlineData("rate(2147483648 days)", "the longest rotation interval is 1000 days")]
    [InlineData("rate(2147483647 hours)", "an interval in hours must be 4 to 23 hours")]
    [InlineData("rate(99999999999 hours)", "an interval in hours must be 4 to 23 hours")]
    public void A_rate_out_of_range_names_the_range_even_past_an_int(string expression, string says) =>
        Assert.Contains(says, AssertRejected(expression).Message, StringComparison.Ordinal);

    [Theory]
    [InlineData("rate(4 hours);")]
    [InlineData("cron(0\t10 * * ? *)")]
    public void Expressions_with_characters_outside_the_model_pattern_are_model_violations(string expression)
    {
        var ex = AssertRejected(new RotationRulesType { ScheduleExpression = expression }, ErrorCodes.Validation);

        Assert.Contains("'rotationRules.scheduleExpression'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Too_long_expressions_are_model_violations()
    {
        var ex = AssertRejected(new RotationRulesType { ScheduleExpression = "cron(0 10 " + new string(' ', 250) + "* * ? *)" }, ErrorCodes.Validation);

        Assert.Contains("less than or equal to 256", ex.Message, StringComparison.Ordinal);
    }
}
