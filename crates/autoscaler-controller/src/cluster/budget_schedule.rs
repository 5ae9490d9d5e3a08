//! When a scheduled disruption budget is active: a cron schedule (five fields, minute hour day-of-month
//! month day-of-week, or a macro such as `@daily`) in UTC marks each start, and the budget holds for its
//! `duration` after each start, as Karpenter's NodePool budgets read them.
//!
//! A schedule or duration that cannot be read counts the budget as always active, the safe side (fewer
//! disruptions), and is reported with the field it came from.

use jiff::civil::{DateTime, Weekday};
use jiff::tz::TimeZone;

/// Why a budget's schedule or duration cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not five fields nor a known macro.
    #[error(
        "{0:?} is not a cron schedule (five fields: minute hour day-of-month month day-of-week, or @daily and friends)"
    )]
    Shape(String),
    /// A field holds a value out of its range or not a number.
    #[error("the {field} field {value:?} is not valid ({min}-{max}, *, lists, ranges and /steps)")]
    Field {
        /// minute, hour, day-of-month, month or day-of-week.
        field: &'static str,
        /// What it held.
        value: String,
        /// Smallest allowed value.
        min: u32,
        /// Largest allowed value.
        max: u32,
    },
    /// Not a duration of hours, minutes and seconds such as `8h` or `1h30m`.
    #[error("{0:?} is not a duration such as 8h or 1h30m")]
    Duration(String),
}

/// A parsed cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// Day-of-month was `*` (then a day matches on day-of-week alone, and the other way round).
    any_day_of_month: bool,
    any_day_of_week: bool,
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field's rules: its name, range and the names it accepts for its values.
struct FieldRule {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value the first name stands for.
    first_named: u32,
}

impl FieldRule {
    fn error(&self, value: &str) -> ScheduleError {
        ScheduleError::Field { field: self.name, value: value.to_owned(), min: self.min, max: self.max }
    }

    fn value(&self, text: &str, whole: &str) -> Result<u32, ScheduleError> {
        let lower = text.to_ascii_lowercase();
        let found = self.names.iter().position(|n| *n == lower).and_then(|i| u32::try_from(i).ok());
        let v = match found {
            Some(i) => i + self.first_named,
            None => text.parse::<u32>().map_err(|_| self.error(whole))?,
        };
        if v < self.min || v > self.max {
            return Err(self.error(whole));
        }
        Ok(v)
    }

    /// The set of values `field` allows, as bits.
    fn parse(&self, field: &str) -> Result<u64, ScheduleError> {
        let mut bits = 0u64;
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| self.error(field))?),
                None => (part, 1),
            };
            let (low, high) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                (self.value(a, field)?, self.value(b, field)?)
            } else {
                let v = self.value(range, field)?;
                // `5/15` means from 5 to the end in steps of 15.
                (v, if part.contains('/') { self.max } else { v })
            };
            if low > high {
                return Err(self.error(field));
            }
            let mut v = low;
            while v <= high {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok(bits)
    }
}

impl Schedule {
    /// Parses five fields or a macro.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields.as_slice() else {
            return Err(ScheduleError::Shape(text.to_owned()));
        };
        let rule = |name, min, max| FieldRule { name, min, max, names: &[], first_named: 0 };
        let dow_rule = FieldRule { name: "day-of-week", min: 0, max: 7, names: &WEEKDAYS, first_named: 0 };
        let mut days_of_week = dow_rule.parse(dow)?;
        // 7 is Sunday too.
        if days_of_week & (1 << 7) != 0 {
            days_of_week |= 1;
        }
        Ok(Schedule {
            minutes: rule("minute", 0, 59).parse(minute)?,
            hours: rule("hour", 0, 23).parse(hour)?,
            days_of_month: rule("day-of-month", 1, 31).parse(dom)?,
            months: FieldRule { name: "month", min: 1, max: 12, names: &MONTHS, first_named: 1 }.parse(month)?,
            days_of_week,
            any_day_of_month: dom.starts_with('*'),
            any_day_of_week: dow.starts_with('*'),
        })
    }

    /// Whether a start falls on this minute (UTC).
    fn matches(&self, t: DateTime) -> bool {
        let bit = |set: u64, v: i8| u32::try_from(v).is_ok_and(|v| set & (1 << v) != 0);
        let weekday = match t.weekday() {
            Weekday::Sunday => 0,
            other => other.to_monday_one_offset(),
        };
        let dom = bit(self.days_of_month, t.day());
        let dow = bit(self.days_of_week, weekday);
        // As cron: when both day fields are restricted, either one matching is enough.
        let day = match (self.any_day_of_month, self.any_day_of_week) {
            (false, false) => dom || dow,
            _ => dom && dow,
        };
        day && bit(self.minutes, t.minute()) && bit(self.hours, t.hour()) && bit(self.months, t.month())
    }
}

/// Reads `8h`, `90m`, `1h30m`, `45s` as seconds.
pub fn parse_duration(text: &str) -> Result<i64, ScheduleError> {
    let bad = || ScheduleError::Duration(text.to_owned());
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: i64 = number.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// Whether a budget scheduled by `schedule` for `duration` is active at `now`: some start `s` of the
/// schedule has `s <= now < s + duration`.
pub fn active(schedule: &str, duration: &str, now: jiff::Timestamp) -> Result<bool, ScheduleError> {
    let schedule = Schedule::parse(schedule)?;
    let seconds = parse_duration(duration)?;
    let now = now.to_zoned(TimeZone::UTC).datetime();
    let to_minute = jiff::civil::DateTimeRound::new().smallest(jiff::Unit::Minute).mode(jiff::RoundMode::Trunc);
    let Ok(minute) = now.round(to_minute) else { return Ok(true) };
    // Starts are whole minutes; look back over every minute a start could be and still hold now.
    let lookback = (seconds + 59) / 60;
    for back in 0..=lookback {
        let Ok(start) = minute.checked_sub(jiff::SignedDuration::from_mins(back)) else { break };
        if !schedule.matches(start) {
            continue;
        }
        let held = now.duration_since(start).as_secs();
        if held < seconds {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn business_hours_on_weekdays() {
        // 09:00-17:00 UTC, Monday to Friday. 2026-12-02 is a Wednesday, 2026-12-05 a Saturday.
        let (s, d) = ("0 9 * * 1-5", "8h");
        assert_eq!(active(s, d, at("2026-12-02T08:59:59Z")), Ok(false), "before the start");
        assert_eq!(active(s, d, at("2026-12-02T09:00:00Z")), Ok(true), "at the start");
        assert_eq!(active(s, d, at("2026-12-02T16:59:59Z")), Ok(true), "just before the end");
        assert_eq!(active(s, d, at("2026-12-02T17:00:00Z")), Ok(false), "the end is not held");
        assert_eq!(active(s, d, at("2026-12-05T10:00:00Z")), Ok(false), "not on Saturday");
        assert_eq!(active("0 9 * * mon-fri", d, at("2026-12-02T10:00:00Z")), Ok(true), "day names");
    }

    #[test]
    fn a_window_runs_past_midnight_and_macros_expand() {
        assert_eq!(active("0 22 * * *", "4h", at("2026-12-03T01:30:00Z")), Ok(true), "22:00 + 4h covers 01:30");
        assert_eq!(active("0 22 * * *", "4h", at("2026-12-03T02:00:00Z")), Ok(false));
        assert_eq!(active("@daily", "1h", at("2026-12-02T00:30:00Z")), Ok(true));
        assert_eq!(active("@daily", "1h", at("2026-12-02T01:00:00Z")), Ok(false));
        assert_eq!(active("@monthly", "24h", at("2026-12-01T12:00:00Z")), Ok(true));
        assert_eq!(active("@monthly", "24h", at("2026-12-02T12:00:00Z")), Ok(false));
    }

    #[test]
    fn steps_lists_and_both_day_fields() {
        // Every 15 minutes for 5 minutes.
        assert_eq!(active("*/15 * * * *", "5m", at("2026-12-02T10:47:00Z")), Ok(true));
        assert_eq!(active("*/15 * * * *", "5m", at("2026-12-02T10:51:00Z")), Ok(false));
        assert_eq!(active("0 0,12 * * *", "1h", at("2026-12-02T12:10:00Z")), Ok(true));
        // Both day fields restricted: either matching starts the window (the 1st, or any Sunday).
        assert_eq!(active("0 0 1 * 0", "1h", at("2026-12-01T00:10:00Z")), Ok(true), "the 1st, a Tuesday");
        assert_eq!(active("0 0 1 * 0", "1h", at("2026-12-06T00:10:00Z")), Ok(true), "a Sunday");
        assert_eq!(active("0 0 1 * 0", "1h", at("2026-12-02T00:10:00Z")), Ok(false));
        assert_eq!(active("0 0 * * 7", "1h", at("2026-12-06T00:10:00Z")), Ok(true), "7 is Sunday");
    }

    #[test]
    fn what_cannot_be_read_names_the_field() {
        assert!(matches!(Schedule::parse("0 9 * *"), Err(ScheduleError::Shape(_))));
        assert!(matches!(Schedule::parse("61 9 * * *"), Err(ScheduleError::Field { field: "minute", .. })));
        assert!(matches!(Schedule::parse("0 24 * * *"), Err(ScheduleError::Field { field: "hour", .. })));
        assert!(matches!(Schedule::parse("0 9 0 * *"), Err(ScheduleError::Field { field: "day-of-month", .. })));
        assert!(matches!(Schedule::parse("0 9 * foo *"), Err(ScheduleError::Field { field: "month", .. })));
        assert!(matches!(Schedule::parse("0 9 * * 1-9"), Err(ScheduleError::Field { field: "day-of-week", .. })));
        assert!(matches!(Schedule::parse("*/0 9 * * *"), Err(ScheduleError::Field { field: "minute", .. })));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("45s"), Ok(45));
        assert!(parse_duration("8").is_err() && parse_duration("0h").is_err() && parse_duration("1d").is_err());
    }
}
