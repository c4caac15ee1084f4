//! Sampling frequencies, inferred from timestamps, and the regular grid each one defines.
//!
//! Inference looks at the most common step between consecutive timestamps rather than the
//! smallest or the first, so that a few gaps (a holiday, a missing month) do not change the
//! answer: gaps are the fill policy's business, not the frequency's. Month-based frequencies are
//! recognised by calendar months (every timestamp on the same day of the month, or every one on
//! a month end), so February does not make monthly data look irregular.

use std::fmt;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Weekday};
use serde::{Deserialize, Serialize};

/// How often a series is observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Frequency {
    /// A fixed step of `seconds` (< 1 day), e.g. 300 for 5-minute bars.
    Intraday {
        /// Step in seconds.
        seconds: u32,
    },
    /// Every calendar day.
    Daily,
    /// Monday to Friday (weekends are not gaps; holidays are).
    BusinessDaily,
    /// Every 7 days.
    Weekly,
    /// Every calendar month (same day of month, or month ends).
    Monthly,
    /// Every 3 months.
    Quarterly,
    /// Every 12 months.
    Yearly,
    /// The observed trading days of a daily series: weekdays, with the days the series skips
    /// (holidays) not counted as gaps. Forecasts are labelled with the next weekdays that are not
    /// in the series' holiday list.
    TradingDays,
    /// Intraday bars inside a daily session: every `seconds` from `open` up to (not including)
    /// `close`, both in seconds after midnight, on weekdays (`weekdays_only`) or every day. The
    /// bar after the last one of a day is the next session's open.
    Session {
        /// Step in seconds.
        seconds: u32,
        /// Time of the first bar of a session, seconds after midnight.
        open: u32,
        /// End of the session (the last bar starts one step before), seconds after midnight.
        close: u32,
        /// Sessions only on Monday to Friday.
        weekdays_only: bool,
    },
    /// A plain sequence indexed by integers 0, 1, 2, … (stored as days after 1970-01-01).
    Index,
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frequency::Intraday { seconds } => write!(f, "intraday ({seconds} s)"),
            Frequency::Daily => f.write_str("daily"),
            Frequency::BusinessDaily => f.write_str("business-daily"),
            Frequency::Weekly => f.write_str("weekly"),
            Frequency::Monthly => f.write_str("monthly"),
            Frequency::Quarterly => f.write_str("quarterly"),
            Frequency::Yearly => f.write_str("yearly"),
            Frequency::TradingDays => f.write_str("trading days"),
            Frequency::Session {
                seconds,
                open,
                close,
                ..
            } => write!(
                f,
                "intraday ({seconds} s) in sessions {}-{}",
                hhmm(*open),
                hhmm(*close)
            ),
            Frequency::Index => f.write_str("integer steps"),
        }
    }
}

fn hhmm(s: u32) -> String {
    format!("{:02}:{:02}", s / 3600, (s % 3600) / 60)
}

/// The epoch integer-indexed series count from (index `k` is this date plus `k` days).
pub(crate) fn index_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

impl Frequency {
    /// The usual seasonal period: 12 for monthly, 4 for quarterly, 7 for daily, 5 for
    /// business-daily, 52 for weekly, 1 for yearly, and observations per day for intraday data
    /// (1 when the step does not divide a day).
    pub fn default_season_period(&self) -> usize {
        match self {
            Frequency::Intraday { seconds } => {
                let s = *seconds as usize;
                if s > 0 && 86_400 % s == 0 {
                    86_400 / s
                } else {
                    1
                }
            }
            Frequency::Daily => 7,
            Frequency::BusinessDaily | Frequency::TradingDays => 5,
            Frequency::Session {
                seconds,
                open,
                close,
                ..
            } => {
                let s = *seconds as usize;
                let len = close.saturating_sub(*open) as usize;
                if s > 0 && len.is_multiple_of(s) && len > s {
                    len / s
                } else {
                    1
                }
            }
            Frequency::Index => 1,
            Frequency::Weekly => 52,
            Frequency::Monthly => 12,
            Frequency::Quarterly => 4,
            Frequency::Yearly => 1,
        }
    }

    /// The seasonal periods worth trying on `n` observations: the usual period, then a longer
    /// one where the data show two (a week of days or of intraday bars, a year of trading days);
    /// the longer one kept only when the series holds two full cycles. Never empty.
    pub fn default_season_periods(&self, n: usize) -> Vec<usize> {
        let first = self.default_season_period();
        let second = match self {
            Frequency::Intraday { .. } if first > 1 => Some(first * 7),
            Frequency::Session { weekdays_only, .. } if first > 1 => {
                Some(first * if *weekdays_only { 5 } else { 7 })
            }
            Frequency::Daily => Some(365),
            Frequency::BusinessDaily | Frequency::TradingDays => Some(252),
            _ => None,
        };
        let mut out: Vec<usize> = std::iter::once(first)
            .filter(|p| *p > 1)
            .chain(second.filter(|p| n >= 2 * p))
            .collect();
        if out.is_empty() {
            out.push(first);
        }
        out
    }

    /// The grid point after `t`, skipping `holidays` (dates with no trading) for
    /// [`Frequency::TradingDays`] and [`Frequency::Session`].
    pub fn next_on(&self, t: NaiveDateTime, holidays: &[NaiveDate]) -> NaiveDateTime {
        let closed = |d: NaiveDate, weekdays_only: bool| {
            (weekdays_only && is_weekend(d)) || holidays.binary_search(&d).is_ok()
        };
        match self {
            Frequency::TradingDays => {
                let mut n = t + Duration::days(1);
                while closed(n.date(), true) {
                    n += Duration::days(1);
                }
                n
            }
            Frequency::Session {
                seconds,
                open,
                close,
                weekdays_only,
            } => {
                let n = t + Duration::seconds(i64::from(*seconds));
                let tod = n.time().num_seconds_from_midnight();
                if n.date() == t.date() && tod >= *open && tod < *close {
                    return n;
                }
                let mut d = t.date() + Duration::days(1);
                if t.time().num_seconds_from_midnight() < *open {
                    d = t.date();
                }
                while closed(d, *weekdays_only) {
                    d += Duration::days(1);
                }
                d.and_hms_opt(0, 0, 0).unwrap_or(t) + Duration::seconds(i64::from(*open))
            }
            other => other.next(t),
        }
    }

    /// The `h` grid points after `t`, skipping `holidays` (see [`Frequency::next_on`]).
    pub fn future_on(
        &self,
        t: NaiveDateTime,
        h: usize,
        holidays: &[NaiveDate],
    ) -> Vec<NaiveDateTime> {
        let mut out = Vec::with_capacity(h);
        let mut cur = t;
        for _ in 0..h {
            cur = self.next_on(cur, holidays);
            out.push(cur);
        }
        out
    }

    /// `true` for calendars on which the observed rows are the grid (trading days, sessions):
    /// a day the series skips is a holiday, not a missing value.
    pub fn is_observed_calendar(&self) -> bool {
        matches!(self, Frequency::TradingDays | Frequency::Session { .. })
    }

    /// How a timestamp of this frequency is written in responses: the integer for
    /// [`Frequency::Index`], date and time for intraday data, the date for midnight timestamps of
    /// daily and longer frequencies.
    pub fn label(&self, t: NaiveDateTime) -> String {
        match self {
            Frequency::Index => (t - index_epoch()).num_days().to_string(),
            Frequency::Intraday { .. } | Frequency::Session { .. } => {
                t.format("%Y-%m-%dT%H:%M:%S").to_string()
            }
            _ if t.time().num_seconds_from_midnight() == 0 && t.nanosecond() == 0 => {
                t.date().format("%Y-%m-%d").to_string()
            }
            _ => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
        }
    }

    /// The grid point after `t`.
    pub fn next(&self, t: NaiveDateTime) -> NaiveDateTime {
        match self {
            Frequency::TradingDays | Frequency::Session { .. } => self.next_on(t, &[]),
            Frequency::Index => t + Duration::days(1),
            Frequency::Intraday { seconds } => t + Duration::seconds(i64::from(*seconds)),
            Frequency::Daily => t + Duration::days(1),
            Frequency::BusinessDaily => {
                let mut n = t + Duration::days(1);
                while matches!(n.weekday(), Weekday::Sat | Weekday::Sun) {
                    n += Duration::days(1);
                }
                n
            }
            Frequency::Weekly => t + Duration::days(7),
            Frequency::Monthly => add_months(t, 1),
            Frequency::Quarterly => add_months(t, 3),
            Frequency::Yearly => add_months(t, 12),
        }
    }

    /// The `h` grid points after `t`.
    pub fn future(&self, t: NaiveDateTime, h: usize) -> Vec<NaiveDateTime> {
        let mut out = Vec::with_capacity(h);
        let mut cur = t;
        for _ in 0..h {
            cur = self.next(cur);
            out.push(cur);
        }
        out
    }

    /// Infers the frequency of sorted, distinct timestamps.
    ///
    /// # Errors
    ///
    /// A reason, when fewer than two timestamps are given or the steps match no frequency.
    pub fn infer(ts: &[NaiveDateTime]) -> Result<Frequency, String> {
        if ts.len() < 2 {
            return Err("at least two timestamps are needed; pass the frequency explicitly".into());
        }
        let intraday = ts.iter().any(|t| t.time().num_seconds_from_midnight() != 0);
        let secs: Vec<i64> = ts.windows(2).map(|w| (w[1] - w[0]).num_seconds()).collect();
        if intraday {
            let step = mode(&secs);
            if step <= 0 || step >= 86_400 {
                return Err(format!(
                    "timestamps carry a time of day but the usual step is {step} s"
                ));
            }
            let seconds = u32::try_from(step).map_err(|_| "step too large".to_string())?;
            return Ok(infer_session(ts, seconds, None).unwrap_or(Frequency::Intraday { seconds }));
        }
        let dates: Vec<NaiveDate> = ts.iter().map(|t| t.date()).collect();
        let same_day = dates.iter().all(|d| d.day() == dates[0].day());
        let month_ends = dates.iter().all(|d| is_month_end(*d));
        if same_day || month_ends {
            let months: Vec<i64> = dates
                .windows(2)
                .map(|w| month_index(w[1]) - month_index(w[0]))
                .collect();
            match mode(&months) {
                1 => return Ok(Frequency::Monthly),
                3 => return Ok(Frequency::Quarterly),
                12 => return Ok(Frequency::Yearly),
                _ => {}
            }
        }
        let days: Vec<i64> = secs.iter().map(|s| s / 86_400).collect();
        let weekend = dates
            .iter()
            .any(|d| matches!(d.weekday(), Weekday::Sat | Weekday::Sun));
        match mode(&days) {
            1 if weekend => Ok(Frequency::Daily),
            1 => Ok(Frequency::BusinessDaily),
            7 => Ok(Frequency::Weekly),
            step => Err(format!("the usual step between timestamps is {step} days")),
        }
    }

    /// Number of grid steps from `a` to `b` (`b` on the grid through `a`), or `None` when `b` is
    /// not a grid point.
    pub(crate) fn steps_between(&self, a: NaiveDateTime, b: NaiveDateTime) -> Option<usize> {
        if b < a {
            return None;
        }
        match self {
            Frequency::Intraday { seconds } => {
                let d = (b - a).num_seconds();
                let s = i64::from(*seconds);
                (d % s == 0).then(|| usize::try_from(d / s).ok()).flatten()
            }
            Frequency::TradingDays | Frequency::Session { .. } => None,
            Frequency::Index => usize::try_from((b - a).num_days()).ok(),
            Frequency::Daily | Frequency::Weekly => {
                if a.time() != b.time() {
                    return None;
                }
                let d = (b - a).num_days();
                let s = if *self == Frequency::Daily { 1 } else { 7 };
                (d % s == 0 && b - a == Duration::days(d))
                    .then(|| usize::try_from(d / s).ok())
                    .flatten()
            }
            Frequency::BusinessDaily => {
                if a.time() != b.time() || matches!(b.weekday(), Weekday::Sat | Weekday::Sun) {
                    return None;
                }
                let days = (b.date() - a.date()).num_days();
                let weeks = days / 7;
                let mut count = weeks * 5;
                let mut d = a.date() + Duration::days(weeks * 7);
                while d < b.date() {
                    d += Duration::days(1);
                    if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                        count += 1;
                    }
                }
                usize::try_from(count).ok()
            }
            Frequency::Monthly | Frequency::Quarterly | Frequency::Yearly => {
                let step = match self {
                    Frequency::Monthly => 1,
                    Frequency::Quarterly => 3,
                    _ => 12,
                };
                let months = month_index(b.date()) - month_index(a.date());
                if months % step != 0 {
                    return None;
                }
                let k = months / step;
                (add_months(a, months) == b)
                    .then(|| usize::try_from(k).ok())
                    .flatten()
            }
        }
    }
}

/// A trading session in intraday timestamps: the usual first and last bar time of a day. `None`
/// when the bars cover the whole day (or a single day), which is plain intraday data. `given` is
/// an explicit `(open, close)` in seconds after midnight.
pub(crate) fn infer_session(
    ts: &[NaiveDateTime],
    seconds: u32,
    given: Option<(u32, u32)>,
) -> Option<Frequency> {
    let weekdays_only = !ts.iter().any(|t| is_weekend(t.date()));
    if let Some((open, close)) = given {
        return Some(Frequency::Session {
            seconds,
            open,
            close,
            weekdays_only,
        });
    }
    let mut firsts = Vec::new();
    let mut lasts = Vec::new();
    let mut i = 0;
    while i < ts.len() {
        let day = ts[i].date();
        let j = i + ts[i..].iter().take_while(|t| t.date() == day).count();
        firsts.push(i64::from(ts[i].time().num_seconds_from_midnight()));
        lasts.push(i64::from(ts[j - 1].time().num_seconds_from_midnight()));
        i = j;
    }
    if firsts.len() < 2 {
        return None;
    }
    let open = u32::try_from(mode(&firsts)).ok()?;
    let close = u32::try_from(mode(&lasts)).ok()? + seconds;
    if close <= open || (open < seconds && close + seconds > 86_400) {
        return None;
    }
    Some(Frequency::Session {
        seconds,
        open,
        close,
        weekdays_only,
    })
}

fn mode(v: &[i64]) -> i64 {
    let mut sorted = v.to_vec();
    sorted.sort_unstable();
    let (mut best, mut best_count) = (sorted[0], 0usize);
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].iter().take_while(|x| **x == sorted[i]).count();
        if j > best_count {
            best = sorted[i];
            best_count = j;
        }
        i += j;
    }
    best
}

fn month_index(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let first_next = NaiveDate::from_ymd_opt(ny, nm, 1).unwrap_or(NaiveDate::MAX);
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(NaiveDate::MIN);
    u32::try_from((first_next - first).num_days()).unwrap_or(30)
}

fn is_month_end(d: NaiveDate) -> bool {
    d.day() == days_in_month(d.year(), d.month())
}

/// Adds calendar months; a month-end stays a month-end (Jan 31 → Feb 28 → Mar 31) and the first
/// of a month stays the first.
fn add_months(t: NaiveDateTime, months: i64) -> NaiveDateTime {
    let d = t.date();
    let idx = month_index(d) + months;
    let year = i32::try_from(idx.div_euclid(12)).unwrap_or(i32::MAX);
    let month = u32::try_from(idx.rem_euclid(12)).unwrap_or(0) + 1;
    let dim = days_in_month(year, month);
    let day = if is_month_end(d) && d.day() != 1 {
        dim
    } else {
        d.day().min(dim)
    };
    NaiveDate::from_ymd_opt(year, month, day)
        .map(|nd| nd.and_time(t.time()))
        .unwrap_or(t)
}

/// Formats a timestamp as a date when it is midnight, as date and time otherwise.
pub(crate) fn fmt_ts(t: NaiveDateTime) -> String {
    if t.time().num_seconds_from_midnight() == 0 && t.nanosecond() == 0 {
        t.date().format("%Y-%m-%d").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, day)
            .and_then(|x| x.and_hms_opt(0, 0, 0))
            .expect("valid date")
    }

    #[test]
    fn month_end_arithmetic() {
        assert_eq!(add_months(d(2024, 1, 31), 1), d(2024, 2, 29));
        assert_eq!(add_months(d(2024, 2, 29), 1), d(2024, 3, 31));
        assert_eq!(add_months(d(2024, 11, 1), 3), d(2025, 2, 1));
        assert_eq!(add_months(d(2024, 1, 15), -1), d(2023, 12, 15));
    }

    #[test]
    fn business_day_steps() {
        let f = Frequency::BusinessDaily;
        // Friday → Monday is one step; Monday → next Monday five.
        assert_eq!(f.steps_between(d(2024, 1, 5), d(2024, 1, 8)), Some(1));
        assert_eq!(f.steps_between(d(2024, 1, 8), d(2024, 1, 15)), Some(5));
        assert_eq!(f.steps_between(d(2024, 1, 8), d(2024, 1, 13)), None);
        assert_eq!(f.next(d(2024, 1, 5)), d(2024, 1, 8));
    }
}
