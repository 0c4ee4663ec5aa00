//! A [`Schedule`] (a fixed interval or a cron pattern, with its [`Missed`] policy and job
//! priority), how it is stored in Redis, and the tick arithmetic: when the next tick is, and
//! which due ticks a scheduler enqueues or skips ([`Plan`]).

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::error::Error;

/// Most ticks one [`Missed::CatchUp`] may enqueue.
pub const MAX_CATCH_UP: u32 = 10_000;

/// Version tag that starts every stored definition (`rqs1|…`); a future format gets another.
const FORMAT: &str = "rqs1";

/// What a scheduler does with *missed* ticks: ticks it finds more than
/// [`SchedulerConfig::grace`](crate::SchedulerConfig::grace) after their time, because every
/// scheduler was down or stalled. Ticks found within the grace are always enqueued, once
/// each, whatever the policy.
///
/// With `k` missed ticks found together (one scheduler pass):
///
/// | policy | jobs enqueued for the `k` missed ticks | counted as skipped |
/// |---|---|---|
/// | `Skip` (default) | none | `k` |
/// | `RunOnce` | one, for the newest missed tick (when `k ≥ 1`) | `k − 1` |
/// | `CatchUp(n)` | one per tick for the newest `min(n, k)` ticks, oldest first | `k − min(n, k)` |
///
/// A job's origin (`<tick ms>|<schedule name>`) names the tick it was enqueued for.
///
/// ```
/// use rqueue::{Missed, Schedule};
/// let s = Schedule::every(std::time::Duration::from_secs(60)).missed(Missed::CatchUp(3));
/// assert_eq!(s.missed_policy(), Missed::CatchUp(3));
/// assert_eq!(Missed::default(), Missed::Skip);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Missed {
    /// Missed ticks are not enqueued (each is counted as skipped).
    #[default]
    Skip,
    /// All the missed ticks found together enqueue exactly one job (for the newest of them).
    RunOnce,
    /// The newest `n` missed ticks (1 ≤ `n` ≤ 10,000) are each enqueued; older ones are
    /// skipped.
    CatchUp(u32),
}

impl Missed {
    /// How many of the newest missed ticks are enqueued.
    fn keep(self) -> usize {
        match self {
            Missed::Skip => 0,
            Missed::RunOnce => 1,
            Missed::CatchUp(n) => n as usize,
        }
    }

    fn encode(self) -> String {
        match self {
            Missed::Skip => "skip".into(),
            Missed::RunOnce => "once".into(),
            Missed::CatchUp(n) => format!("catchup:{n}"),
        }
    }

    fn decode(s: &str) -> Option<Missed> {
        match s {
            "skip" => Some(Missed::Skip),
            "once" => Some(Missed::RunOnce),
            _ => s
                .strip_prefix("catchup:")?
                .parse()
                .ok()
                .map(Missed::CatchUp),
        }
    }
}

impl fmt::Display for Missed {
    /// `skip`, `run-once` or `catch-up:<n>`.
    ///
    /// ```
    /// assert_eq!(rqueue::Missed::CatchUp(3).to_string(), "catch-up:3");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missed::Skip => f.write_str("skip"),
            Missed::RunOnce => f.write_str("run-once"),
            Missed::CatchUp(n) => write!(f, "catch-up:{n}"),
        }
    }
}

#[derive(Clone)]
enum Kind {
    /// Ticks at every multiple of the interval (ms) since the Unix epoch.
    Every(u64),
    Cron {
        pattern: String,
        cron: Box<Cron>,
        tz: Tz,
    },
}

/// When a periodic job is enqueued: every fixed interval, or on a cron pattern (in UTC or a
/// named time zone); what happens to ticks missed while no scheduler ran ([`Missed`]); and
/// the priority of the jobs. Store it with [`Scheduler::add`](crate::Scheduler::add).
///
/// Ticks are instants of the Redis server's clock:
/// - [`Schedule::every`]`(d)` ticks at every multiple of `d` since the Unix epoch (UTC):
///   `every(1 min)` at each whole minute, `every(1 h)` at each whole UTC hour, `every(7 days)`
///   on Thursdays at 00:00 UTC (the epoch was a Thursday).
/// - [`Schedule::cron`] ticks when the pattern matches, in its time zone (UTC unless
///   [`Schedule::time_zone`] says otherwise), at whole seconds.
///
/// ```
/// use std::time::Duration;
/// use rqueue::{Missed, Schedule};
/// let nightly = Schedule::cron("0 30 2 * * *")?     // 02:30:00 every day
///     .time_zone("Europe/Paris")?
///     .missed(Missed::RunOnce)
///     .priority(5);
/// assert_eq!(nightly.cron_pattern(), Some("0 30 2 * * *"));
/// let often = Schedule::every(Duration::from_millis(250));
/// assert_eq!(often.interval(), Some(Duration::from_millis(250)));
/// # Ok::<(), rqueue::Error>(())
/// ```
#[derive(Clone)]
pub struct Schedule {
    kind: Kind,
    missed: Missed,
    priority: i32,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        let kind = match (&self.kind, &other.kind) {
            (Kind::Every(a), Kind::Every(b)) => a == b,
            (
                Kind::Cron {
                    pattern: p1,
                    tz: z1,
                    ..
                },
                Kind::Cron {
                    pattern: p2,
                    tz: z2,
                    ..
                },
            ) => p1 == p2 && z1 == z2,
            _ => false,
        };
        kind && self.missed == other.missed && self.priority == other.priority
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Schedule");
        match &self.kind {
            Kind::Every(ms) => d.field("every_ms", ms),
            Kind::Cron { pattern, tz, .. } => d.field("cron", pattern).field("tz", &tz.name()),
        };
        d.field("missed", &self.missed)
            .field("priority", &self.priority)
            .finish()
    }
}

impl fmt::Display for Schedule {
    /// `every 250ms`, `cron "0 30 2 * * *" Europe/Paris`, then the policy and priority when
    /// not the defaults.
    ///
    /// ```
    /// let s = rqueue::Schedule::every(std::time::Duration::from_secs(2)).priority(3);
    /// assert_eq!(s.to_string(), "every 2000ms, priority 3");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Every(ms) => write!(f, "every {ms}ms")?,
            Kind::Cron { pattern, tz, .. } => write!(f, "cron {pattern:?} {}", tz.name())?,
        }
        if self.missed != Missed::Skip {
            write!(f, ", missed: {}", self.missed)?;
        }
        if self.priority != 0 {
            write!(f, ", priority {}", self.priority)?;
        }
        Ok(())
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidSchedule {
        name: None,
        reason: reason.into(),
    }
}

fn parse_cron(pattern: &str) -> Result<Cron, String> {
    if pattern.contains('|') {
        return Err("a cron pattern cannot contain '|'".into());
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(pattern)
        .map_err(|e| format!("cron pattern {pattern:?}: {e}"))
}

fn ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Server milliseconds as a wall-clock time.
pub(crate) fn time_of(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// What one scheduler pass does for one schedule: the ticks it enqueues (oldest first), how
/// many it skips, and the new last handled tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) jobs: Vec<u64>,
    pub(crate) skipped: u64,
    pub(crate) new_last: u64,
    /// More due ticks remain (the pass stopped at `max_jobs`).
    pub(crate) more: bool,
}

impl Schedule {
    /// Ticks at every multiple of `interval` since the Unix epoch (server clock), measured
    /// in whole milliseconds (a fraction of a millisecond is dropped). An interval below 1 ms
    /// is refused by [`Scheduler::add`](crate::Scheduler::add) with
    /// [`Error::InvalidSchedule`].
    ///
    /// ```
    /// let s = rqueue::Schedule::every(std::time::Duration::from_secs(30));
    /// assert_eq!(s.interval(), Some(std::time::Duration::from_secs(30)));
    /// ```
    pub fn every(interval: Duration) -> Schedule {
        let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        Schedule {
            kind: Kind::Every(ms),
            missed: Missed::default(),
            priority: 0,
        }
    }

    /// Ticks when the cron `pattern` matches (UTC unless [`Schedule::time_zone`] is set).
    /// Five fields (`min hour day-of-month month day-of-week`, ticking at second 0) or six
    /// with seconds first (`*/5 * * * * *`: every 5 s); an optional seventh field is the year.
    /// Also `@hourly`, `@daily`, `L`, `W`, `#` and the rest of
    /// [croner](https://docs.rs/croner)'s syntax.
    ///
    /// Errors: [`Error::InvalidSchedule`] (with `name: None`) for a pattern that does not
    /// parse or never matches again.
    ///
    /// ```
    /// use rqueue::{Error, Schedule};
    /// assert!(Schedule::cron("*/5 * * * * *").is_ok());
    /// assert!(Schedule::cron("0 9 * * MON-FRI").is_ok());
    /// assert!(matches!(Schedule::cron("every monday"), Err(Error::InvalidSchedule { .. })));
    /// ```
    pub fn cron(pattern: &str) -> Result<Schedule, Error> {
        let pattern = pattern.trim();
        let cron = parse_cron(pattern).map_err(invalid)?;
        let s = Schedule {
            kind: Kind::Cron {
                pattern: pattern.to_string(),
                cron: Box::new(cron),
                tz: chrono_tz::UTC,
            },
            missed: Missed::default(),
            priority: 0,
        };
        if s.next_after_ms(ms_of(SystemTime::now())).is_none() {
            return Err(invalid(format!("cron pattern {pattern:?} never matches")));
        }
        Ok(s)
    }

    /// The time zone a cron pattern is read in: an IANA name such as `Europe/Paris`
    /// (daylight saving time as croner handles it: a time skipped by the change does not
    /// tick, a repeated one ticks once). Default `UTC`.
    ///
    /// Errors: [`Error::InvalidSchedule`] for an unknown zone, or on an interval schedule
    /// (which has no time zone).
    ///
    /// ```
    /// use rqueue::Schedule;
    /// let s = Schedule::cron("0 0 9 * * *")?.time_zone("America/New_York")?;
    /// assert_eq!(s.time_zone_name(), Some("America/New_York"));
    /// assert!(Schedule::cron("0 0 9 * * *")?.time_zone("Mars/Olympus").is_err());
    /// assert!(Schedule::every(std::time::Duration::from_secs(1)).time_zone("UTC").is_err());
    /// # Ok::<(), rqueue::Error>(())
    /// ```
    pub fn time_zone(mut self, zone: &str) -> Result<Schedule, Error> {
        let parsed: Tz = zone
            .parse()
            .map_err(|_| invalid(format!("unknown time zone {zone:?}")))?;
        match &mut self.kind {
            Kind::Cron { tz, .. } => *tz = parsed,
            Kind::Every(_) => {
                return Err(invalid(
                    "a time zone applies to cron schedules only (intervals count from the Unix epoch)",
                ));
            }
        }
        Ok(self)
    }

    /// What to do with missed ticks (default [`Missed::Skip`]). `CatchUp(0)` and
    /// `CatchUp(n)` with `n` above 10,000 are refused by
    /// [`Scheduler::add`](crate::Scheduler::add).
    ///
    /// ```
    /// use rqueue::{Missed, Schedule};
    /// let s = Schedule::every(std::time::Duration::from_secs(60)).missed(Missed::RunOnce);
    /// assert_eq!(s.missed_policy(), Missed::RunOnce);
    /// ```
    pub fn missed(mut self, policy: Missed) -> Schedule {
        self.missed = policy;
        self
    }

    /// Priority of the jobs it enqueues (higher is served first; default 0).
    ///
    /// ```
    /// let s = rqueue::Schedule::every(std::time::Duration::from_secs(60)).priority(7);
    /// assert_eq!(s.job_priority(), 7);
    /// ```
    pub fn priority(mut self, priority: i32) -> Schedule {
        self.priority = priority;
        self
    }

    /// The interval of an interval schedule (whole milliseconds).
    ///
    /// ```
    /// assert_eq!(rqueue::Schedule::cron("* * * * *")?.interval(), None);
    /// # Ok::<(), rqueue::Error>(())
    /// ```
    pub fn interval(&self) -> Option<Duration> {
        match self.kind {
            Kind::Every(ms) => Some(Duration::from_millis(ms)),
            Kind::Cron { .. } => None,
        }
    }

    /// The pattern of a cron schedule (trimmed).
    ///
    /// ```
    /// assert_eq!(rqueue::Schedule::cron(" @hourly ")?.cron_pattern(), Some("@hourly"));
    /// # Ok::<(), rqueue::Error>(())
    /// ```
    pub fn cron_pattern(&self) -> Option<&str> {
        match &self.kind {
            Kind::Cron { pattern, .. } => Some(pattern),
            Kind::Every(_) => None,
        }
    }

    /// The time zone of a cron schedule (`UTC` unless set).
    ///
    /// ```
    /// assert_eq!(rqueue::Schedule::cron("@daily")?.time_zone_name(), Some("UTC"));
    /// # Ok::<(), rqueue::Error>(())
    /// ```
    pub fn time_zone_name(&self) -> Option<&'static str> {
        match &self.kind {
            Kind::Cron { tz, .. } => Some(tz.name()),
            Kind::Every(_) => None,
        }
    }

    /// The missed-ticks policy.
    ///
    /// ```
    /// let s = rqueue::Schedule::every(std::time::Duration::from_secs(1));
    /// assert_eq!(s.missed_policy(), rqueue::Missed::Skip);
    /// ```
    pub fn missed_policy(&self) -> Missed {
        self.missed
    }

    /// The priority of the jobs it enqueues.
    ///
    /// ```
    /// assert_eq!(rqueue::Schedule::every(std::time::Duration::from_secs(1)).job_priority(), 0);
    /// ```
    pub fn job_priority(&self) -> i32 {
        self.priority
    }

    /// The first tick strictly after `t` (`None` when there is none: a cron pattern that no
    /// longer matches, or a time past the year 9999).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let s = rqueue::Schedule::every(Duration::from_secs(10));
    /// let t = UNIX_EPOCH + Duration::from_millis(1_700_000_003_500);
    /// assert_eq!(s.next_tick_after(t), Some(UNIX_EPOCH + Duration::from_secs(1_700_000_010)));
    /// ```
    pub fn next_tick_after(&self, t: SystemTime) -> Option<SystemTime> {
        self.next_after_ms(ms_of(t)).map(time_of)
    }

    /// Why this schedule cannot be stored, if it cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        match self.kind {
            Kind::Every(0) => return Err("the interval must be at least 1 ms".into()),
            Kind::Every(ms) if ms > i64::MAX as u64 / 2 => {
                return Err("the interval is too long".into());
            }
            _ => {}
        }
        match self.missed {
            Missed::CatchUp(0) => {
                Err("Missed::CatchUp(0) would skip every missed tick: use Missed::Skip".into())
            }
            Missed::CatchUp(n) if n > MAX_CATCH_UP => Err(format!(
                "Missed::CatchUp({n}): at most {MAX_CATCH_UP} missed ticks can be caught up"
            )),
            _ => Ok(()),
        }
    }

    /// The stored form: `rqs1|every|<ms>||<missed>|<priority>|<payload>` or
    /// `rqs1|cron|<pattern>|<time zone>|<missed>|<priority>|<payload>`; the payload (the
    /// job's MessagePack bytes) runs to the end.
    pub(crate) fn encode(&self, payload: &[u8]) -> Vec<u8> {
        let (kind, spec, tz) = match &self.kind {
            Kind::Every(ms) => ("every", ms.to_string(), ""),
            Kind::Cron { pattern, tz, .. } => ("cron", pattern.clone(), tz.name()),
        };
        let head = format!(
            "{FORMAT}|{kind}|{spec}|{tz}|{}|{}|",
            self.missed.encode(),
            self.priority
        );
        let mut out = head.into_bytes();
        out.extend_from_slice(payload);
        out
    }

    /// The inverse of [`Schedule::encode`]: the schedule and its payload bytes, or why the
    /// stored bytes are not a definition this version can run.
    pub(crate) fn decode(raw: &[u8]) -> Result<(Schedule, &[u8]), String> {
        let mut parts = raw.splitn(7, |b| *b == b'|');
        let mut field = |what: &str| -> Result<&str, String> {
            let f = parts
                .next()
                .ok_or_else(|| format!("the definition ends before its {what}"))?;
            std::str::from_utf8(f).map_err(|_| format!("its {what} is not UTF-8"))
        };
        let version = field("format tag")?;
        if version != FORMAT {
            return Err(format!(
                "unknown definition format {:?} (this version reads {FORMAT})",
                version.chars().take(16).collect::<String>()
            ));
        }
        let kind = field("kind")?;
        let spec = field("interval or pattern")?;
        let tz = field("time zone")?;
        let missed = field("missed policy")?;
        let priority = field("priority")?;
        let payload = parts.next().ok_or("the definition has no payload")?;
        let missed = Missed::decode(missed).ok_or_else(|| format!("missed policy {missed:?}"))?;
        let priority: i32 = priority
            .parse()
            .map_err(|_| format!("priority {priority:?}"))?;
        let kind = match kind {
            "every" => Kind::Every(spec.parse().map_err(|_| format!("interval {spec:?}"))?),
            "cron" => Kind::Cron {
                pattern: spec.to_string(),
                cron: Box::new(parse_cron(spec)?),
                tz: tz
                    .parse()
                    .map_err(|_| format!("unknown time zone {tz:?}"))?,
            },
            other => return Err(format!("unknown schedule kind {other:?}")),
        };
        let s = Schedule {
            kind,
            missed,
            priority,
        };
        s.check()?;
        Ok((s, payload))
    }

    /// The first tick strictly after `ms` (server ms).
    pub(crate) fn next_after_ms(&self, ms: u64) -> Option<u64> {
        match &self.kind {
            Kind::Every(iv) => (ms / iv).checked_add(1)?.checked_mul(*iv),
            Kind::Cron { cron, tz, .. } => {
                let t = start(ms, tz)?;
                let next = cron.find_next_occurrence(&t, false).ok()?;
                u64::try_from(next.timestamp_millis()).ok()
            }
        }
    }

    /// What a pass at server time `now` does, when the last handled tick is `last`: `None`
    /// when no tick is due. A tick `t` is missed when `now − t > grace` (ms); at most
    /// `max_jobs` jobs (≥ 1), the oldest first.
    pub(crate) fn plan(&self, last: u64, now: u64, grace: u64, max_jobs: usize) -> Option<Plan> {
        let max_jobs = max_jobs.max(1);
        // Ticks before `late` are missed.
        let late = now.saturating_sub(grace);
        let keep = self.missed.keep();
        let mut missed = 0u64;
        let mut last_missed: Option<u64> = None;
        let mut newest_missed: VecDeque<u64> = VecDeque::new();
        let mut on_time: Vec<u64> = Vec::new();
        match &self.kind {
            Kind::Every(iv) => {
                let iv = *iv;
                let first = (last / iv).checked_add(1)?.checked_mul(iv)?;
                if first > now {
                    return None;
                }
                if late > first {
                    // Missed: first, first + iv, …, up to the last multiple below `late`.
                    let newest = (late - 1) / iv * iv;
                    missed = (newest - first) / iv + 1;
                    last_missed = Some(newest);
                    let n = missed.min(keep as u64);
                    for j in (0..n).rev() {
                        newest_missed.push_back(newest - j * iv);
                    }
                }
                // On time: multiples of iv in [max(first, late), now].
                let from = first.max(late.div_ceil(iv).saturating_mul(iv));
                let mut t = from;
                while t <= now && on_time.len() <= max_jobs {
                    on_time.push(t);
                    t = t.checked_add(iv)?;
                }
            }
            Kind::Cron { cron, tz, .. } => {
                let from = start(last, tz)?;
                for t in cron.iter_after(from) {
                    let Ok(t) = u64::try_from(t.timestamp_millis()) else {
                        break;
                    };
                    if t > now || on_time.len() > max_jobs {
                        break;
                    }
                    if t < late {
                        missed += 1;
                        last_missed = Some(t);
                        newest_missed.push_back(t);
                        if newest_missed.len() > keep {
                            newest_missed.pop_front();
                        }
                    } else {
                        on_time.push(t);
                    }
                }
            }
        }
        if missed == 0 && on_time.is_empty() {
            return None;
        }
        let newest = on_time.last().copied().or(last_missed);
        let mut jobs: Vec<u64> = match self.missed {
            Missed::Skip => Vec::new(),
            Missed::RunOnce => newest_missed.back().copied().into_iter().collect(),
            Missed::CatchUp(_) => newest_missed.iter().copied().collect(),
        };
        let skipped = missed - jobs.len() as u64;
        jobs.extend(on_time);
        let (new_last, more) = if jobs.len() > max_jobs {
            jobs.truncate(max_jobs);
            (jobs[max_jobs - 1], true)
        } else {
            (newest?, false)
        };
        Some(Plan {
            jobs,
            skipped,
            new_last,
            more,
        })
    }
}

/// `ms` as a time in `tz`.
fn start(ms: u64, tz: &Tz) -> Option<DateTime<Tz>> {
    let ms = i64::try_from(ms).ok()?;
    Some(Utc.timestamp_millis_opt(ms).single()?.with_timezone(tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every(ms: u64) -> Schedule {
        Schedule::every(Duration::from_millis(ms))
    }

    #[test]
    fn encoding_round_trips_and_is_versioned() {
        let s = Schedule::cron("*/5 * * * * *")
            .and_then(|s| s.time_zone("Europe/Paris"))
            .expect("schedule")
            .missed(Missed::CatchUp(3))
            .priority(-4);
        let raw = s.encode(b"\x92|x");
        assert!(raw.starts_with(b"rqs1|cron|*/5 * * * * *|Europe/Paris|catchup:3|-4|"));
        let (back, payload) = Schedule::decode(&raw).expect("decode");
        assert_eq!(back, s);
        assert_eq!(payload, b"\x92|x");
        let e = every(1500).missed(Missed::RunOnce);
        let raw = e.encode(b"");
        let (back, payload) = Schedule::decode(&raw).expect("decode");
        assert_eq!((back, payload), (e, &b""[..]));
        for bad in [
            &b"rqs2|every|10||skip|0|"[..],
            b"rqs1|every|0||skip|0|",
            b"rqs1|every|10||skip|0",
            b"rqs1|every|x||skip|0|",
            b"rqs1|cron|nonsense|UTC|skip|0|",
            b"rqs1|cron|* * * * *|Mars/X|skip|0|",
            b"rqs1|every|10||catchup:0|0|",
            b"rqs1|hourly|10||skip|0|",
            b"\xff\xfe",
            b"",
        ] {
            assert!(
                Schedule::decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn checks_refuse_zero_intervals_and_catch_up_zero() {
        assert!(every(0).check().is_err());
        assert!(Schedule::every(Duration::from_micros(999)).check().is_err());
        assert!(every(1).check().is_ok());
        assert!(every(5).missed(Missed::CatchUp(0)).check().is_err());
        assert!(
            every(5)
                .missed(Missed::CatchUp(MAX_CATCH_UP + 1))
                .check()
                .is_err()
        );
        assert!(
            every(5)
                .missed(Missed::CatchUp(MAX_CATCH_UP))
                .check()
                .is_ok()
        );
        assert!(
            Schedule::cron("0 0 30 2 *").is_err(),
            "February 30 never comes"
        );
        assert!(Schedule::cron("5/5 * * * *").is_err());
        assert!(Schedule::cron("").is_err());
    }

    #[test]
    fn next_ticks() {
        assert_eq!(every(100).next_after_ms(1_050), Some(1_100));
        assert_eq!(every(100).next_after_ms(1_100), Some(1_200));
        let c = Schedule::cron("* * * * * *").expect("cron");
        assert_eq!(c.next_after_ms(1_700_000_000_500), Some(1_700_000_001_000));
        assert_eq!(c.next_after_ms(1_700_000_001_000), Some(1_700_000_002_000));
        // Five fields tick at second 0 of each matching minute.
        let m = Schedule::cron("*/5 * * * *").expect("cron");
        assert_eq!(m.next_after_ms(1_700_000_000_000), Some(1_700_000_100_000));
        // 09:00 in Paris (winter, UTC+1) is 08:00 UTC.
        let p = Schedule::cron("0 0 9 * * *")
            .and_then(|s| s.time_zone("Europe/Paris"))
            .expect("cron");
        let next = p.next_after_ms(1_700_000_000_000).expect("next");
        assert_eq!(next % 86_400_000, 8 * 3_600_000);
    }

    #[test]
    fn nothing_due_means_no_plan() {
        assert_eq!(every(1000).plan(10_000, 10_999, 1000, 1000), None);
        let c = Schedule::cron("* * * * * *").expect("cron");
        assert_eq!(c.plan(10_000, 10_999, 1000, 1000), None);
    }

    /// Every policy on an interval and on the same ticks as a cron pattern: last handled 10 s,
    /// found at 17.3 s with 1 s grace: ticks 11..=16 s missed (16 s is 1.3 s late), 17 s on
    /// time.
    #[test]
    fn policies_follow_the_table() {
        let c = Schedule::cron("* * * * * *").expect("cron");
        let cases = [
            (Missed::Skip, vec![17_000], 6),
            (Missed::RunOnce, vec![16_000, 17_000], 5),
            (Missed::CatchUp(3), vec![14_000, 15_000, 16_000, 17_000], 3),
            (
                Missed::CatchUp(100),
                vec![11_000, 12_000, 13_000, 14_000, 15_000, 16_000, 17_000],
                0,
            ),
        ];
        for (policy, jobs, skipped) in cases {
            for s in [every(1000).missed(policy), c.clone().missed(policy)] {
                let p = s.plan(10_000, 17_300, 1000, 1000).expect("due");
                assert_eq!(
                    p,
                    Plan {
                        jobs: jobs.clone(),
                        skipped,
                        new_last: 17_000,
                        more: false
                    },
                    "{s}"
                );
            }
        }
        // Exactly `grace` late is still on time.
        let p = every(1000).plan(10_000, 12_000, 1000, 1000).expect("due");
        assert_eq!((p.jobs, p.skipped), (vec![11_000, 12_000], 0));
        // Only missed ticks, Skip: nothing enqueued, the last one still handled.
        let p = every(1000).plan(10_000, 13_500, 100, 1000).expect("due");
        assert_eq!((p.jobs, p.skipped, p.new_last), (vec![], 3, 13_000));
        let p = c.plan(10_000, 13_500, 100, 1000).expect("due");
        assert_eq!((p.jobs, p.skipped, p.new_last), (vec![], 3, 13_000));
    }

    #[test]
    fn a_long_outage_is_counted_not_listed_and_batches_are_bounded() {
        // A 1 ms interval down for a day: 86.4 M missed, counted arithmetically.
        let s = every(1).missed(Missed::CatchUp(2));
        let p = s.plan(0, 86_400_000, 1000, 1000).expect("due");
        // Missed: 1 ..= 86_398_999 (before now − grace); the newest two are caught up.
        assert_eq!(p.skipped, 86_398_999 - 2);
        assert_eq!(p.jobs.len(), 1000);
        assert!(p.more);
        assert_eq!(p.jobs[..3], [86_398_998, 86_398_999, 86_399_000]);
        assert_eq!(p.new_last, p.jobs[999]);
        let next = s.plan(p.new_last, 86_400_000, 1000, 1000).expect("rest");
        assert_eq!(next.skipped, 0);
        assert_eq!(next.jobs.first(), Some(&(p.new_last + 1)));
        assert_eq!(next.new_last, 86_400_000);
        assert!(!next.more);
    }
}
