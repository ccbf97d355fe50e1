//! What plays now and next, given a manifest and an instant.
//!
//! Pure and deterministic: no clock, no I/O. The player asks
//! [`Scheduler::decide`] whenever the screen is free and reports each play
//! back with [`Scheduler::record_play`]; the dashboard previews a day with
//! [`simulate`]. All calendar rules are read in the manifest's time zone
//! (jiff, DST-correct):
//!
//! - **Flight and dates:** an item plays only on local dates inside its
//!   flight and, when it lists `dates`, on those dates only. The local date
//!   of the instant decides, also inside a window that wrapped past midnight.
//! - **Windows:** weekday + time-of-day ranges; a window whose end is not
//!   after its start wraps past midnight and belongs to the day it opens on.
//!   Local times that a DST change skips never occur; repeated ones occur twice.
//! - **Caps:** `max_plays_per_hour` counts plays started in the current local
//!   clock hour (an hour repeated by DST is two hours).
//! - **Priority tiers:** among the items that may play, only the highest tier
//!   is considered, so an urgent tier pre-empts the rest while it has
//!   anything to play ([`Scheduler::preempting`] tells the player to cut in).
//! - **Share of voice:** within the tier, a smooth weighted round-robin over
//!   *airtime*: every play credits each candidate `weight × duration` and
//!   charges the chosen item the candidates' total weight × duration; the
//!   item with the largest credit plays next. Credits accrue only while an
//!   item may play, so an item whose window opens does not get a burst for
//!   the time it was closed, and over any stretch with a fixed set of
//!   candidates each item's airtime stays within about one play of its share.
//!
//! An item of weight 0 never plays. With nothing to play the decision is
//! [`Decision::Fallback`], with the next instant at which that may change.
//!
//! The player's loop: `decide` when the screen is free, preroll
//! [`Scheduler::next_after`] while the item plays, `record_play` when it
//! ends, and poll [`Scheduler::preempting`] to cut in for a higher tier.

use std::collections::HashMap;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

use crate::manifest::{Item, Manifest, Overlay, Weekday, Window};

/// Least airtime a play is charged: an item that fails at once (a broken
/// clip reported with zero duration) must not be picked again immediately
/// for ever, and a simulation must always move forward.
pub const MIN_CHARGE: SignedDuration = SignedDuration::from_secs(1);

/// Why a manifest cannot be scheduled.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The manifest names a time zone this box's time zone database lacks.
    #[error(
        "unknown time zone \"{name}\" in the manifest: cannot read its dates and windows \
         (is the tzdata package installed?): {source}"
    )]
    UnknownTimeZone {
        /// The IANA name in the manifest.
        name: String,
        /// jiff's lookup error.
        #[source]
        source: jiff::Error,
    },
}

/// A manifest with its time zone resolved: the calendar rules, without any
/// play history.
#[derive(Debug, Clone)]
pub struct Schedule<'m> {
    manifest: &'m Manifest,
    time_zone: TimeZone,
}

/// What the screen should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Play this item.
    Play {
        /// Index into the manifest's `items`.
        index: usize,
        /// The item's id, for logs and proof-of-play.
        item_id: String,
        /// Its priority tier.
        priority: u8,
    },
    /// Nothing may play: show the configured fallback (logo or black).
    Fallback {
        /// Earliest instant at which something may become playable (a local
        /// midnight, a window opening, a new clock hour freeing a cap). Asking
        /// again earlier gives the same answer. `None` when no item of this
        /// manifest can ever play again (every flight is over).
        retry_at: Option<Timestamp>,
    },
}

impl<'m> Schedule<'m> {
    /// Resolves the manifest's time zone.
    pub fn new(manifest: &'m Manifest) -> Result<Self, ScheduleError> {
        let time_zone =
            TimeZone::get(&manifest.timezone).map_err(|source| ScheduleError::UnknownTimeZone {
                name: manifest.timezone.clone(),
                source,
            })?;
        Ok(Schedule {
            manifest,
            time_zone,
        })
    }

    /// The manifest being scheduled.
    pub fn manifest(&self) -> &'m Manifest {
        self.manifest
    }

    /// The venue's time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// The instant as local wall-clock time of the venue.
    pub fn local(&self, now: Timestamp) -> Zoned {
        now.to_zoned(self.time_zone.clone())
    }

    /// Whether the item's calendar rules (flight, dates, windows) allow it
    /// at this instant. Caps and priority tiers are the [`Scheduler`]'s.
    pub fn allows(&self, item: &Item, now: Timestamp) -> bool {
        allows_at(item, self.local(now).datetime())
    }

    /// The overlays (tickers) to draw at this instant.
    pub fn active_overlays(&self, now: Timestamp) -> Vec<&'m Overlay> {
        let local = self.local(now).datetime();
        self.manifest
            .overlays
            .iter()
            .filter(|overlay| match overlay {
                Overlay::Ticker {
                    flight, windows, ..
                } => {
                    in_flight(flight.start, flight.end, local.date()) && in_windows(windows, local)
                }
            })
            .collect()
    }

    /// Start of the local clock hour containing `now`, as an instant: an hour
    /// that DST repeats is two distinct hours, a skipped one never starts.
    pub fn hour_start(&self, now: Timestamp) -> Timestamp {
        let local = self.local(now);
        let into_hour =
            SignedDuration::from_secs(i64::from(local.minute()) * 60 + i64::from(local.second()))
                + SignedDuration::from_nanos(i64::from(local.subsec_nanosecond()));
        now - into_hour
    }

    /// The next local midnight after `now` (the next start of a day, which
    /// a DST change at midnight may move to 01:00).
    fn next_day_start(&self, now: Timestamp) -> Option<Timestamp> {
        let tomorrow = self.local(now).date().tomorrow().ok()?;
        let start = tomorrow.to_zoned(self.time_zone.clone()).ok()?;
        Some(start.timestamp())
    }

    /// Instant at which `time` of local `date` occurs (a time skipped by DST
    /// maps to after the gap, as clocks show it; the DST change itself is a
    /// retry instant of its own, so a window opening in the gap is not late).
    fn instant(&self, date: Date, time: jiff::civil::Time) -> Option<Timestamp> {
        let zoned = date
            .to_datetime(time)
            .to_zoned(self.time_zone.clone())
            .ok()?;
        Some(zoned.timestamp())
    }
}

/// The calendar rules of an item at a local date-time.
fn allows_at(item: &Item, local: DateTime) -> bool {
    item.weight > 0
        && in_flight(item.flight.start, item.flight.end, local.date())
        && (item.dates.is_empty() || item.dates.contains(&local.date()))
        && in_windows(&item.windows, local)
}

fn in_flight(start: Date, end: Date, date: Date) -> bool {
    start <= date && date <= end
}

/// True when `windows` is empty (all day) or one of them contains `local`.
fn in_windows(windows: &[Window], local: DateTime) -> bool {
    windows.is_empty() || windows.iter().any(|window| window_contains(window, local))
}

/// Whether a weekly window contains a local date-time. A window whose end is
/// not after its start runs past midnight into the next day (end == start:
/// a full 24 hours), and counts as the day it opened on.
pub fn window_contains(window: &Window, local: DateTime) -> bool {
    let opens_on =
        |date: Date| window.days.is_empty() || window.days.contains(&Weekday::from(date.weekday()));
    let (date, time) = (local.date(), local.time());
    if window.start < window.end {
        opens_on(date) && window.start <= time && time < window.end
    } else {
        (time >= window.start && opens_on(date))
            || (time < window.end && date.yesterday().is_ok_and(opens_on))
    }
}

/// The play history a player keeps across decisions (and across manifest
/// versions: it is keyed by item id). Small: one credit per item and the
/// start times of the last hour's plays of capped items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scheduler {
    /// Share-of-voice credit per item id, in weight × milliseconds.
    credits: HashMap<String, i128>,
    /// Start instants of recent plays per item id, for hourly caps.
    recent_plays: HashMap<String, Vec<Timestamp>>,
}

impl Scheduler {
    /// A scheduler with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// What to play at `now`. Does not change the history: report the play
    /// with [`Scheduler::record_play`] once it ends (or is cut short).
    pub fn decide(&self, schedule: &Schedule<'_>, now: Timestamp) -> Decision {
        let candidates = self.candidates(schedule, now);
        let items = &schedule.manifest().items;
        let chosen = candidates.iter().copied().max_by(|&a, &b| {
            let credit = |index: usize| self.credit(&items[index].id);
            credit(a)
                .cmp(&credit(b))
                .then(items[a].weight.cmp(&items[b].weight))
                // Earlier items win ties: `max_by` keeps the last maximum.
                .then(b.cmp(&a))
        });
        match chosen {
            Some(index) => Decision::Play {
                index,
                item_id: items[index].id.clone(),
                priority: items[index].priority,
            },
            None => Decision::Fallback {
                retry_at: self.retry_at(schedule, now),
            },
        }
    }

    /// Records that item `index` played from `started_at` for `played`
    /// (charged at least [`MIN_CHARGE`]): moves the share-of-voice credits of
    /// the items that could have played then, and counts the play toward
    /// its hourly cap.
    pub fn record_play(
        &mut self,
        schedule: &Schedule<'_>,
        index: usize,
        started_at: Timestamp,
        played: SignedDuration,
    ) {
        let items = &schedule.manifest().items;
        let Some(played_item) = items.get(index) else {
            return;
        };
        let charge = played.max(MIN_CHARGE).as_millis();
        let candidates = self.candidates(schedule, started_at);
        if candidates.contains(&index) {
            let total_weight: i128 = candidates
                .iter()
                .map(|&candidate| i128::from(items[candidate].weight))
                .sum();
            for &candidate in &candidates {
                let item = &items[candidate];
                *self.credits.entry(item.id.clone()).or_default() +=
                    i128::from(item.weight) * charge;
            }
            *self.credits.entry(played_item.id.clone()).or_default() -= total_weight * charge;
        }
        if played_item.max_plays_per_hour.is_some() {
            let plays = self.recent_plays.entry(played_item.id.clone()).or_default();
            // Older plays can no longer count toward any cap.
            let horizon = started_at - SignedDuration::from_hours(2);
            plays.retain(|&start| start >= horizon);
            plays.push(started_at);
        }
    }

    /// What follows a play now on screen, assuming it runs `expected` from
    /// `started_at`: the player prerolls this while the current item plays.
    /// When the play really ends it records it and asks [`Scheduler::decide`],
    /// which gives the same answer unless the play ended early or late.
    pub fn next_after(
        &self,
        schedule: &Schedule<'_>,
        index: usize,
        started_at: Timestamp,
        expected: SignedDuration,
    ) -> Decision {
        let mut after = self.clone();
        after.record_play(schedule, index, started_at, expected);
        let ends_at = started_at
            .saturating_add(expected.max(MIN_CHARGE))
            .unwrap_or(Timestamp::MAX);
        after.decide(schedule, ends_at)
    }

    /// While item `playing` is on screen, an item of a higher tier that may
    /// play now (the player cuts in with it), if any.
    pub fn preempting(
        &self,
        schedule: &Schedule<'_>,
        now: Timestamp,
        playing: usize,
    ) -> Option<usize> {
        let items = &schedule.manifest().items;
        let current = items.get(playing)?.priority;
        match self.decide(schedule, now) {
            Decision::Play {
                index, priority, ..
            } if priority > current => Some(index),
            _ => None,
        }
    }

    /// Drops the history of items the manifest no longer has.
    pub fn retain_items(&mut self, manifest: &Manifest) {
        let keep = |id: &String| manifest.items.iter().any(|item| &item.id == id);
        self.credits.retain(|id, _| keep(id));
        self.recent_plays.retain(|id, _| keep(id));
    }

    /// Plays from `from` until `to` if this scheduler ran on its own, each
    /// item lasting `duration_of(item)` (at least [`MIN_CHARGE`]); fallback
    /// stretches are skipped. Leaves `self` untouched.
    pub fn preview(
        &self,
        schedule: &Schedule<'_>,
        from: Timestamp,
        to: Timestamp,
        duration_of: impl Fn(&Item) -> SignedDuration,
    ) -> Vec<(Timestamp, String)> {
        let mut scheduler = self.clone();
        let mut plays = Vec::new();
        let mut now = from;
        while now < to {
            match scheduler.decide(schedule, now) {
                Decision::Play { index, item_id, .. } => {
                    let played = duration_of(&schedule.manifest().items[index]).max(MIN_CHARGE);
                    scheduler.record_play(schedule, index, now, played);
                    plays.push((now, item_id));
                    now = now.saturating_add(played).unwrap_or(Timestamp::MAX);
                }
                Decision::Fallback {
                    retry_at: Some(retry_at),
                } => now = retry_at,
                Decision::Fallback { retry_at: None } => break,
            }
        }
        plays
    }

    fn credit(&self, id: &str) -> i128 {
        self.credits.get(id).copied().unwrap_or_default()
    }

    /// Plays of `item` that count toward its cap at `now`: those started in
    /// the same local clock hour (same local date and hour) and less than an
    /// hour ago. The second condition keeps a DST-repeated hour, whole or
    /// half (Lord Howe), two hours.
    fn plays_this_hour<'s>(
        &'s self,
        schedule: &'s Schedule<'_>,
        item: &Item,
        now: Timestamp,
    ) -> impl Iterator<Item = Timestamp> + 's {
        let here = schedule.local(now).datetime();
        self.recent_plays
            .get(&item.id)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&start| {
                let there = schedule.local(start).datetime();
                start <= now
                    && now.duration_since(start) < SignedDuration::from_hours(1)
                    && there.date() == here.date()
                    && there.hour() == here.hour()
            })
    }

    /// Whether `item` has used up its plays in the local clock hour of `now`.
    fn capped(&self, schedule: &Schedule<'_>, item: &Item, now: Timestamp) -> bool {
        let Some(cap) = item.max_plays_per_hour else {
            return false;
        };
        let this_hour = self.plays_this_hour(schedule, item, now).count();
        this_hour >= usize::try_from(cap).unwrap_or(usize::MAX)
    }

    /// Indices of the items that may play at `now`, all of the highest tier
    /// that has any.
    fn candidates(&self, schedule: &Schedule<'_>, now: Timestamp) -> Vec<usize> {
        let items = &schedule.manifest().items;
        // Converted once: a time zone lookup per item would dominate.
        let local = schedule.local(now).datetime();
        let playable: Vec<usize> = (0..items.len())
            .filter(|&index| {
                allows_at(&items[index], local) && !self.capped(schedule, &items[index], now)
            })
            .collect();
        let Some(top) = playable.iter().map(|&index| items[index].priority).max() else {
            return Vec::new();
        };
        playable
            .into_iter()
            .filter(|&index| items[index].priority == top)
            .collect()
    }

    /// When nothing may play: the earliest instant after `now` at which that
    /// may change. Flights and dates change at local midnight, windows at
    /// their opening times, caps at the next clock hour.
    fn retry_at(&self, schedule: &Schedule<'_>, now: Timestamp) -> Option<Timestamp> {
        let today = schedule.local(now).date();
        let items = &schedule.manifest().items;
        let future: Vec<&Item> = items
            .iter()
            .filter(|item| item.weight > 0 && item.flight.end >= today)
            .filter(|item| item.dates.is_empty() || item.dates.iter().any(|&date| date >= today))
            .collect();
        if future.is_empty() {
            return None;
        }
        let hour_start = schedule.hour_start(now);
        let mut next = schedule.next_day_start(now);
        // Around a DST change local times jump: a window may open at the
        // jump (its start time was skipped) or open again (a repeated hour).
        let transition = schedule.time_zone.following(now).next();
        let mut consider = |instant: Option<Timestamp>| {
            if let Some(instant) = instant.filter(|&instant| instant > now) {
                next = Some(next.map_or(instant, |next: Timestamp| next.min(instant)));
            }
        };
        consider(transition.map(|transition| transition.timestamp()));
        for item in &future {
            for window in &item.windows {
                consider(schedule.instant(today, window.start));
            }
            if self.capped(schedule, item, now) {
                // Freed at the next clock hour, or when its oldest play of
                // this hour is an hour old (a repeated hour).
                consider(Some(hour_start + SignedDuration::from_hours(1)));
                let oldest = self.plays_this_hour(schedule, item, now).min();
                consider(oldest.map(|start| start + SignedDuration::from_hours(1)));
            }
        }
        next
    }
}

/// Plays from `from` until `to` under `manifest` for a scheduler with no
/// history, each item lasting `duration_of(item)`: the schedule preview of
/// the dashboard and the ground truth of the tests.
pub fn simulate(
    manifest: &Manifest,
    from: Timestamp,
    to: Timestamp,
    duration_of: impl Fn(&Item) -> SignedDuration,
) -> Result<Vec<(Timestamp, String)>, ScheduleError> {
    let schedule = Schedule::new(manifest)?;
    Ok(Scheduler::new().preview(&schedule, from, to, duration_of))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Fit, Flight, Media, RootKeys};
    use jiff::civil::{date, time};

    fn item(id: &str, weight: u32) -> Item {
        Item {
            id: id.into(),
            campaign: "test".into(),
            media: Media {
                sha256: "0".repeat(64),
                size: 1,
                mime: "video/mp4".into(),
                url: format!("/media/{id}"),
            },
            duration_ms: None,
            fit: Fit::Contain,
            flight: Flight {
                start: date(2027, 1, 1),
                end: date(2027, 12, 31),
            },
            windows: vec![],
            dates: vec![],
            weight,
            priority: 0,
            max_plays_per_hour: None,
        }
    }

    fn manifest(timezone: &str, items: Vec<Item>) -> Manifest {
        Manifest {
            schema: 1,
            screen_id: "s".into(),
            version: 1,
            issued_at: Timestamp::UNIX_EPOCH,
            expires_at: Timestamp::MAX,
            timezone: timezone.into(),
            items,
            overlays: vec![],
            root: RootKeys {
                version: 1,
                keys: vec![],
                threshold: 1,
            },
        }
    }

    #[test]
    fn windows_wrap_past_midnight_and_belong_to_their_opening_day() {
        let friday_night = Window {
            days: vec![Weekday::Fri],
            start: time(22, 0, 0, 0),
            end: time(2, 0, 0, 0),
        };
        // 2027-06-25 is a Friday.
        assert!(window_contains(
            &friday_night,
            date(2027, 6, 25).at(23, 0, 0, 0)
        ));
        assert!(window_contains(
            &friday_night,
            date(2027, 6, 26).at(1, 59, 0, 0)
        ));
        assert!(!window_contains(
            &friday_night,
            date(2027, 6, 26).at(2, 0, 0, 0)
        ));
        assert!(!window_contains(
            &friday_night,
            date(2027, 6, 26).at(23, 0, 0, 0)
        ));
        assert!(!window_contains(
            &friday_night,
            date(2027, 6, 25).at(1, 0, 0, 0)
        ));
        let shop_hours = Window {
            days: vec![],
            start: time(8, 0, 0, 0),
            end: time(22, 0, 0, 0),
        };
        assert!(window_contains(
            &shop_hours,
            date(2027, 6, 25).at(8, 0, 0, 0)
        ));
        assert!(!window_contains(
            &shop_hours,
            date(2027, 6, 25).at(22, 0, 0, 0)
        ));
        let full_day = Window {
            days: vec![Weekday::Mon],
            start: time(6, 0, 0, 0),
            end: time(6, 0, 0, 0),
        };
        // 2027-06-21 is a Monday: 24 hours from 06:00.
        assert!(window_contains(
            &full_day,
            date(2027, 6, 22).at(5, 59, 0, 0)
        ));
        assert!(!window_contains(
            &full_day,
            date(2027, 6, 22).at(6, 0, 0, 0)
        ));
    }

    #[test]
    fn hour_start_follows_half_hour_offsets_and_repeated_hours() {
        let kolkata = manifest("Asia/Kolkata", vec![]);
        let schedule = Schedule::new(&kolkata).unwrap();
        // 10:15 UTC is 15:45 in Kolkata: the local hour began at 09:30 UTC.
        let now: Timestamp = "2027-06-01T10:15:00Z".parse().unwrap();
        assert_eq!(
            schedule.hour_start(now),
            "2027-06-01T09:30:00Z".parse().unwrap()
        );
        // Berlin, 31 October 2027: 02:30 happens twice, an hour apart.
        let berlin = manifest("Europe/Berlin", vec![]);
        let schedule = Schedule::new(&berlin).unwrap();
        let first: Timestamp = "2027-10-31T00:30:00Z".parse().unwrap();
        let second: Timestamp = "2027-10-31T01:30:00Z".parse().unwrap();
        assert_eq!(
            schedule.hour_start(first),
            "2027-10-31T00:00:00Z".parse().unwrap()
        );
        assert_eq!(
            schedule.hour_start(second),
            "2027-10-31T01:00:00Z".parse().unwrap()
        );
    }

    #[test]
    fn equal_clips_rotate_smoothly_by_weight() {
        let manifest = manifest("UTC", vec![item("a", 5), item("b", 1), item("c", 1)]);
        let from: Timestamp = "2027-06-01T00:00:00Z".parse().unwrap();
        let to = from + SignedDuration::from_secs(70 * 10);
        let ten_seconds = |_: &Item| SignedDuration::from_secs(10);
        let plays = simulate(&manifest, from, to, ten_seconds).unwrap();
        assert_eq!(
            plays,
            simulate(&manifest, from, to, ten_seconds).unwrap(),
            "deterministic"
        );
        let order: Vec<&str> = plays.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(order.len(), 70);
        // Smooth: every run of 7 consecutive plays holds exactly the shares,
        // not five a's bunched together and then b and c.
        for run in order.windows(7) {
            let count = |id: &str| run.iter().filter(|&&played| played == id).count();
            assert_eq!((count("a"), count("b"), count("c")), (5, 1, 1), "{run:?}");
        }
    }

    #[test]
    fn next_after_is_what_decide_says_once_the_play_is_recorded() {
        let manifest = manifest(
            "Asia/Dushanbe",
            vec![item("a", 2), item("b", 1), item("c", 1)],
        );
        let schedule = Schedule::new(&manifest).unwrap();
        let mut scheduler = Scheduler::new();
        let mut now: Timestamp = "2027-06-01T12:00:00Z".parse().unwrap();
        let clip = SignedDuration::from_secs(25);
        for _ in 0..12 {
            let Decision::Play { index, .. } = scheduler.decide(&schedule, now) else {
                panic!("expected a play");
            };
            let prerolled = scheduler.next_after(&schedule, index, now, clip);
            scheduler.record_play(&schedule, index, now, clip);
            now += clip;
            assert_eq!(prerolled, scheduler.decide(&schedule, now));
        }
    }

    #[test]
    fn unknown_time_zone_is_an_error_naming_it() {
        let manifest = manifest("Mars/Olympus_Mons", vec![item("a", 1)]);
        let error = Schedule::new(&manifest).unwrap_err();
        assert!(error.to_string().contains("Mars/Olympus_Mons"), "{error}");
    }

    #[test]
    fn a_zero_length_play_is_charged_the_minimum() {
        let manifest = manifest("UTC", vec![item("broken", 1), item("good", 1)]);
        let schedule = Schedule::new(&manifest).unwrap();
        let mut scheduler = Scheduler::new();
        let now: Timestamp = "2027-06-01T12:00:00Z".parse().unwrap();
        let Decision::Play { index, .. } = scheduler.decide(&schedule, now) else {
            panic!("expected a play");
        };
        scheduler.record_play(&schedule, index, now, SignedDuration::ZERO);
        let Decision::Play { item_id, .. } = scheduler.decide(&schedule, now) else {
            panic!("expected a play");
        };
        assert_ne!(
            item_id, manifest.items[index].id,
            "the failed item must not repeat at once"
        );
    }
}
