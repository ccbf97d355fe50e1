//! The schedule against an independent oracle: property tests over random
//! manifests (flights, windows, dates, tiers, caps, time zones), share of
//! airtime against the weights, fallback, and DST transition days in
//! Europe/Berlin.
//!
//! The oracle restates the rules in its own terms (a window as an interval
//! of civil date-times opened on an allowed day; two plays in the same clock
//! hour as "same local date and hour, less than an hour apart") so that a
//! mistake in `ekran::schedule` is not repeated here.

#![allow(clippy::unwrap_used)]

use ekran::manifest::{Fit, Flight, Item, Manifest, Media, Overlay, RootKeys, Weekday, Window};
use ekran::schedule::{Decision, Schedule, Scheduler, simulate};
use jiff::civil::{Date, DateTime, Time, date, time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;

const ZONES: [&str; 7] = [
    "UTC",
    "Asia/Dushanbe",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Santiago",
];

const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

fn item(id: &str, weight: u32) -> Item {
    Item {
        id: id.into(),
        campaign: "test".into(),
        media: Media {
            sha256: "0".repeat(64),
            size: 1,
            mime: "video/mp4".into(),
            url: format!("/media/{id}.mp4"),
        },
        duration_ms: None,
        fit: Fit::Contain,
        flight: Flight {
            start: date(2026, 1, 1),
            end: date(2028, 12, 31),
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
        screen_id: "dyu-1".into(),
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

/// Local midnight of `day` in `zone`, as an instant.
fn midnight(zone: &str, day: Date) -> Timestamp {
    day.to_zoned(TimeZone::get(zone).unwrap())
        .unwrap()
        .timestamp()
}

// --- The oracle ---

fn local(manifest: &Manifest, at: Timestamp) -> DateTime {
    at.to_zoned(TimeZone::get(&manifest.timezone).unwrap())
        .datetime()
}

/// The window as civil date-time intervals: opened at `start` on an allowed
/// day, closed at `end` that day or, when `end` is not after `start`, the next.
fn oracle_window(window: &Window, at: DateTime) -> bool {
    [at.date().yesterday().unwrap(), at.date()]
        .into_iter()
        .any(|opened| {
            let allowed =
                window.days.is_empty() || window.days.contains(&Weekday::from(opened.weekday()));
            let open = opened.to_datetime(window.start);
            let close = if window.end > window.start {
                opened.to_datetime(window.end)
            } else {
                opened.tomorrow().unwrap().to_datetime(window.end)
            };
            allowed && open <= at && at < close
        })
}

/// The calendar rules alone: weight, flight, dates, windows.
fn oracle_allows(manifest: &Manifest, item: &Item, at: Timestamp) -> bool {
    let local = local(manifest, at);
    item.weight > 0
        && item.flight.start <= local.date()
        && local.date() <= item.flight.end
        && (item.dates.is_empty() || item.dates.contains(&local.date()))
        && (item.windows.is_empty()
            || item
                .windows
                .iter()
                .any(|window| oracle_window(window, local)))
}

/// Same local clock hour: same local date and hour, less than an hour apart
/// (a repeated DST hour is two hours).
fn same_clock_hour(manifest: &Manifest, a: Timestamp, b: Timestamp) -> bool {
    let (la, lb) = (local(manifest, a), local(manifest, b));
    la.date() == lb.date()
        && la.hour() == lb.hour()
        && a.duration_since(b).abs() < SignedDuration::from_hours(1)
}

/// Whether `item` may play at `at` given the plays before it, caps included.
fn oracle_playable(
    manifest: &Manifest,
    plays: &[(Timestamp, String)],
    item: &Item,
    at: Timestamp,
) -> bool {
    oracle_allows(manifest, item, at)
        && item.max_plays_per_hour.is_none_or(|cap| {
            let this_hour = plays
                .iter()
                .filter(|(start, id)| {
                    *id == item.id && *start < at && same_clock_hour(manifest, *start, at)
                })
                .count();
            this_hour < cap as usize
        })
}

/// Checks every play of a simulation against the oracle, and the stretches
/// without a play against "nothing was playable".
fn check_simulation(
    manifest: &Manifest,
    plays: &[(Timestamp, String)],
    duration_of: &dyn Fn(&Item) -> SignedDuration,
    from: Timestamp,
    to: Timestamp,
) -> Result<(), TestCaseError> {
    let find = |id: &str| manifest.items.iter().find(|item| item.id == id).unwrap();
    let mut free_from = from;
    for (position, (start, id)) in plays.iter().enumerate() {
        let before = &plays[..position];
        // Only the last hour's plays can count toward a cap.
        let recent_start =
            before.partition_point(|(played, _)| *played < *start - SignedDuration::from_hours(2));
        let recent = &before[recent_start..];
        let item = find(id);
        let at = local(manifest, *start);
        prop_assert!(
            oracle_allows(manifest, item, *start),
            "{id} played at {at} outside its flight, dates or windows"
        );
        prop_assert!(
            oracle_playable(manifest, recent, item, *start),
            "{id} played at {at} over its hourly cap"
        );
        for other in &manifest.items {
            prop_assert!(
                other.priority <= item.priority
                    || !oracle_playable(manifest, recent, other, *start),
                "{id} (tier {}) played at {at} while {} (tier {}) could",
                item.priority,
                other.id,
                other.priority
            );
        }
        // The screen was free since `free_from`: nothing may have been
        // playable in between (probed every minute).
        check_free(manifest, before, free_from, *start)?;
        free_from = *start + duration_of(item).max(ekran::schedule::MIN_CHARGE);
    }
    check_free(manifest, plays, free_from, to)?;
    Ok(())
}

/// Nothing was playable from `from` until `until`, probed every minute.
fn check_free(
    manifest: &Manifest,
    before: &[(Timestamp, String)],
    from: Timestamp,
    until: Timestamp,
) -> Result<(), TestCaseError> {
    // Only the last hour's plays can count toward a cap.
    let recent_start =
        before.partition_point(|(start, _)| *start < from - SignedDuration::from_hours(2));
    let recent = &before[recent_start..];
    let mut probe = from;
    while probe < until {
        for other in &manifest.items {
            prop_assert!(
                !oracle_playable(manifest, recent, other, probe),
                "fallback at {} although {} could play",
                local(manifest, probe),
                other.id
            );
        }
        probe += SignedDuration::from_secs(60);
    }
    Ok(())
}

// --- Generators ---

fn arb_window() -> impl Strategy<Value = Window> {
    (
        0u8..128,
        0i8..24,
        prop::sample::select(vec![0i8, 15, 30, 45]),
        1i32..(24 * 4),
    )
        .prop_map(|(day_mask, hour, minute, quarters)| {
            let start = Time::new(hour, minute, 0, 0).unwrap();
            // Any length from 15 minutes to 24 hours, wrapping past midnight.
            let end = start.wrapping_add(SignedDuration::from_mins(i64::from(quarters) * 15));
            let days = (0..7)
                .filter(|bit| day_mask & (1 << bit) != 0)
                .map(|bit| WEEKDAYS[bit])
                .collect();
            Window { days, start, end }
        })
}

fn arb_item(index: usize, base: Date) -> impl Strategy<Value = (Item, u32)> {
    (
        0i32..8,
        0i32..8,
        prop::collection::vec(arb_window(), 0..3),
        prop::collection::vec(0i32..12, 0..3),
        0u32..5,
        0u8..3,
        prop::option::of(1u32..5),
        5u32..900,
    )
        .prop_map(
            move |(start, length, windows, dates, weight, priority, cap, seconds)| {
                let mut item = item(&format!("item-{index}"), weight);
                let start = base.checked_add(start.days()).unwrap();
                item.flight = Flight {
                    start,
                    end: start.checked_add(length.days()).unwrap(),
                };
                item.windows = windows;
                let mut dates: Vec<Date> = dates
                    .into_iter()
                    .map(|day| base.checked_add(day.days()).unwrap())
                    .collect();
                dates.sort();
                dates.dedup();
                item.dates = dates;
                item.priority = priority;
                item.max_plays_per_hour = cap;
                (item, seconds)
            },
        )
}

/// A random manifest, the duration of each item (seconds), and where to start.
fn arb_case() -> impl Strategy<Value = (Manifest, Vec<u32>, Timestamp)> {
    // Around the spring and autumn DST changes of both hemispheres.
    let bases = vec![
        date(2027, 3, 24),
        date(2027, 10, 27),
        date(2027, 4, 1),
        date(2027, 9, 2),
        date(2027, 6, 20),
    ];
    (
        prop::sample::select(ZONES.to_vec()),
        prop::sample::select(bases),
        1usize..6,
        0i64..(6 * 24 * 60),
    )
        .prop_flat_map(|(zone, base, count, minutes)| {
            let items: Vec<_> = (0..count).map(|index| arb_item(index, base)).collect();
            (Just(zone), Just(base), items, Just(minutes))
        })
        .prop_map(|(zone, base, items, minutes)| {
            let (items, seconds): (Vec<Item>, Vec<u32>) = items.into_iter().unzip();
            let from = midnight(zone, base) + SignedDuration::from_mins(minutes);
            (manifest(zone, items), seconds, from)
        })
}

fn durations(manifest: &Manifest, seconds: &[u32]) -> impl Fn(&Item) -> SignedDuration + use<> {
    let table: Vec<(String, u32)> = manifest
        .items
        .iter()
        .map(|item| item.id.clone())
        .zip(seconds.iter().copied())
        .collect();
    move |item: &Item| {
        let seconds = table.iter().find(|(id, _)| *id == item.id).unwrap().1;
        SignedDuration::from_secs(i64::from(seconds))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Never an item outside its flight, dates or windows, over its cap, or
    /// below a tier that could play; never fallback while something could play.
    #[test]
    fn plays_obey_every_rule((manifest, seconds, from) in arb_case()) {
        let to = from + SignedDuration::from_hours(36);
        let duration_of = durations(&manifest, &seconds);
        let plays = simulate(&manifest, from, to, &duration_of).unwrap();
        check_simulation(&manifest, &plays, &duration_of, from, to)?;
        for pair in plays.windows(2) {
            prop_assert!(pair[0].0 < pair[1].0, "plays in order");
        }
    }

    /// Over a day, each item's airtime is its weight's share of the total,
    /// within one play of the longest item.
    #[test]
    fn airtime_follows_weights(
        zone in prop::sample::select(ZONES.to_vec()),
        shares in prop::collection::vec((1u32..7, 5u32..180), 2..6),
        minutes in 0i64..(365 * 24 * 60),
    ) {
        let items: Vec<Item> = shares.iter().enumerate().map(|(index, (weight, _))| item(&format!("item-{index}"), *weight)).collect();
        let seconds: Vec<u32> = shares.iter().map(|(_, seconds)| *seconds).collect();
        let manifest = manifest(zone, items);
        let from = midnight(zone, date(2027, 1, 1)) + SignedDuration::from_mins(minutes);
        let duration_of = durations(&manifest, &seconds);
        let plays = simulate(&manifest, from, from + SignedDuration::from_hours(24), &duration_of).unwrap();
        let airtime = |item: &Item| {
            plays.iter().filter(|(_, id)| *id == item.id).count() as f64 * duration_of(item).as_secs_f64()
        };
        let total: f64 = manifest.items.iter().map(airtime).sum();
        let total_weight: f64 = manifest.items.iter().map(|item| f64::from(item.weight)).sum();
        let longest = f64::from(*seconds.iter().max().unwrap());
        for item in &manifest.items {
            let fair = total * f64::from(item.weight) / total_weight;
            prop_assert!(
                (airtime(item) - fair).abs() <= longest,
                "{}: weight {} of {}, {}s of airtime, fair share {:.0}s (longest item {}s)",
                item.id, item.weight, total_weight, airtime(item), fair, longest
            );
        }
    }

    /// With nothing schedulable the answer is fallback, with a retry instant
    /// only while some flight is still to come.
    #[test]
    fn nothing_schedulable_is_fallback(
        zone in prop::sample::select(ZONES.to_vec()),
        minutes in 0i64..(30 * 24 * 60),
    ) {
        let mut over = item("over", 3);
        over.flight = Flight { start: date(2027, 1, 1), end: date(2027, 5, 31) };
        let mut later = item("later", 1);
        later.flight = Flight { start: date(2027, 8, 1), end: date(2027, 8, 31) };
        let now = midnight(zone, date(2027, 6, 1)) + SignedDuration::from_mins(minutes);

        let both = manifest(zone, vec![over.clone(), later]);
        let schedule = Schedule::new(&both).unwrap();
        let Decision::Fallback { retry_at: Some(retry_at) } = Scheduler::new().decide(&schedule, now) else {
            return Err(TestCaseError::fail("expected fallback with a retry instant"));
        };
        prop_assert!(retry_at > now && retry_at <= now + SignedDuration::from_hours(25));
        prop_assert!(simulate(&both, now, now + SignedDuration::from_hours(48), |_| SignedDuration::from_secs(30)).unwrap().is_empty());

        let ended = manifest(zone, vec![over]);
        let schedule = Schedule::new(&ended).unwrap();
        prop_assert_eq!(Scheduler::new().decide(&schedule, now), Decision::Fallback { retry_at: None });
    }
}

#[test]
fn empty_manifest_falls_back_for_good() {
    let empty = manifest("Asia/Dushanbe", vec![]);
    let schedule = Schedule::new(&empty).unwrap();
    let now: Timestamp = "2027-06-26T08:00:00Z".parse().unwrap();
    assert_eq!(
        Scheduler::new().decide(&schedule, now),
        Decision::Fallback { retry_at: None }
    );
}

/// Plays between two local midnights of an all-day item of `seconds`.
fn plays_on(zone: &str, day: Date, items: Vec<Item>, seconds: i64) -> Vec<(Timestamp, String)> {
    let manifest = manifest(zone, items);
    let (from, to) = (midnight(zone, day), midnight(zone, day.tomorrow().unwrap()));
    simulate(&manifest, from, to, |_| SignedDuration::from_secs(seconds)).unwrap()
}

#[test]
fn dst_days_in_berlin_have_23_and_25_hours_of_airtime() {
    // Last Sundays of March and October 2027.
    assert_eq!(
        plays_on(
            "Europe/Berlin",
            date(2027, 3, 28),
            vec![item("loop", 1)],
            60
        )
        .len(),
        23 * 60
    );
    assert_eq!(
        plays_on(
            "Europe/Berlin",
            date(2027, 10, 31),
            vec![item("loop", 1)],
            60
        )
        .len(),
        25 * 60
    );
    assert_eq!(
        plays_on(
            "Europe/Berlin",
            date(2027, 6, 27),
            vec![item("loop", 1)],
            60
        )
        .len(),
        24 * 60
    );
}

#[test]
fn a_window_in_the_skipped_hour_never_opens_and_the_repeated_hour_plays_twice() {
    let mut night = item("night", 1);
    night.windows = vec![Window {
        days: vec![],
        start: time(2, 0, 0, 0),
        end: time(3, 0, 0, 0),
    }];
    // 02:00–03:00 does not exist on 28 March 2027 in Berlin.
    assert_eq!(
        plays_on("Europe/Berlin", date(2027, 3, 28), vec![night.clone()], 60).len(),
        0
    );
    assert_eq!(
        plays_on("Europe/Berlin", date(2027, 3, 27), vec![night.clone()], 60).len(),
        60
    );
    // ... and happens twice on 31 October 2027.
    assert_eq!(
        plays_on("Europe/Berlin", date(2027, 10, 31), vec![night], 60).len(),
        120
    );
}

#[test]
fn a_window_opening_in_the_skipped_hour_opens_when_the_clocks_jump() {
    let mut early = item("early", 1);
    early.windows = vec![Window {
        days: vec![Weekday::Sun],
        start: time(2, 30, 0, 0),
        end: time(4, 0, 0, 0),
    }];
    let plays = plays_on("Europe/Berlin", date(2027, 3, 28), vec![early], 60);
    // 03:00 CEST (01:00 UTC) is the first local time past 02:30 that day.
    assert_eq!(
        plays.first().unwrap().0,
        "2027-03-28T01:00:00Z".parse().unwrap()
    );
    assert_eq!(plays.len(), 60);
}

#[test]
fn hourly_caps_count_clock_hours_across_dst() {
    let mut capped = item("capped", 10);
    capped.max_plays_per_hour = Some(10);
    let filler = item("filler", 1);
    let count = |day| {
        plays_on(
            "Europe/Berlin",
            day,
            vec![capped.clone(), filler.clone()],
            60,
        )
        .iter()
        .filter(|(_, id)| id == "capped")
        .count()
    };
    assert_eq!(count(date(2027, 3, 28)), 23 * 10);
    assert_eq!(count(date(2027, 10, 31)), 25 * 10);
}

#[test]
fn a_higher_tier_preempts_while_its_window_is_open() {
    let rotation = item("rotation", 1);
    let mut urgent = item("urgent", 1);
    urgent.priority = 2;
    urgent.windows = vec![Window {
        days: vec![],
        start: time(12, 0, 0, 0),
        end: time(12, 30, 0, 0),
    }];
    let manifest = manifest("Asia/Dushanbe", vec![rotation, urgent]);
    let schedule = Schedule::new(&manifest).unwrap();
    let scheduler = Scheduler::new();
    let at = |hh, mm| {
        date(2027, 6, 26)
            .at(hh, mm, 0, 0)
            .to_zoned(schedule.time_zone().clone())
            .unwrap()
            .timestamp()
    };
    // The rotation is on screen when the urgent window opens: cut in.
    assert_eq!(scheduler.preempting(&schedule, at(11, 59), 0), None);
    assert_eq!(scheduler.preempting(&schedule, at(12, 0), 0), Some(1));
    let plays = simulate(&manifest, at(11, 0), at(13, 0), |_| {
        SignedDuration::from_secs(60)
    })
    .unwrap();
    let urgent_plays: Vec<_> = plays.iter().filter(|(_, id)| id == "urgent").collect();
    assert_eq!(urgent_plays.len(), 30);
    assert_eq!(plays.len(), 120);
}

#[test]
fn poster_of_the_day_changes_at_local_midnight() {
    let mut posters = Vec::new();
    let mut day = date(2026, 11, 10);
    for number in 1..=30 {
        let mut poster = item(&format!("poster-{number:02}"), 1);
        poster.dates = vec![day];
        posters.push(poster);
        day = day.tomorrow().unwrap();
    }
    let manifest = manifest("Asia/Dushanbe", posters);
    // 23:59:40 on 10 November Dushanbe time (UTC+5) with 20-second posters.
    let from: Timestamp = "2026-11-10T18:59:40Z".parse().unwrap();
    let plays = simulate(
        &manifest,
        from,
        from + SignedDuration::from_secs(40),
        |_| SignedDuration::from_secs(20),
    )
    .unwrap();
    let ids: Vec<&str> = plays.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, ["poster-01", "poster-02"]);
}

#[test]
fn tickers_follow_their_flight_and_windows() {
    let mut manifest = manifest("Asia/Dushanbe", vec![item("clip", 1)]);
    manifest.overlays = vec![Overlay::Ticker {
        campaign: "test".into(),
        text: "Телефони боварӣ: 98 787 66 66".into(),
        flight: Flight {
            start: date(2027, 5, 28),
            end: date(2027, 6, 26),
        },
        windows: vec![Window {
            days: vec![],
            start: time(8, 0, 0, 0),
            end: time(22, 0, 0, 0),
        }],
    }];
    let schedule = Schedule::new(&manifest).unwrap();
    let at = |day: Date, hh| {
        day.at(hh, 0, 0, 0)
            .to_zoned(schedule.time_zone().clone())
            .unwrap()
            .timestamp()
    };
    assert_eq!(schedule.active_overlays(at(date(2027, 6, 26), 9)).len(), 1);
    assert!(
        schedule
            .active_overlays(at(date(2027, 6, 26), 23))
            .is_empty()
    );
    assert!(
        schedule
            .active_overlays(at(date(2027, 6, 27), 9))
            .is_empty()
    );
}
