//! The structured playlist form (manager): campaign, targets, flight, items
//! (single files or a file a day), their rules and time windows, and
//! tickers, as form fields, for managers who do not write TOML.
//!
//! The playlist's TOML stays the one source of truth: the form writes it
//! ([`PlaylistForm::to_toml`], every value escaped by the `toml` crate) and
//! sends it down the TOML editor's path ([`campaigns::act`]: the check of
//! [`crate::playlist::parse`], the library, preview, publish). Each line the
//! form writes remembers the field it came from, so every error the check
//! reports at a line is shown next to that field. A stored playlist is read
//! back into the form ([`PlaylistForm::from_toml`]) only when the form can
//! hold all of it: a key it does not know, or anything whose meaning would
//! change on the way through the form, sends the manager to the TOML editor
//! instead. Repeated rows are added and removed by submit buttons that
//! re-render the form with its current values, so it works without script.

use std::collections::BTreeMap;
use std::path::Path;

use axum::Form;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::campaigns::{self, Action, EditorQuery, Outcome};
use super::{Web, WebError};
use crate::playlist::{self, Location, Playlist};
use crate::server::auth::Role;

/// Most items, tickers or windows of one form: a guard against a posted
/// index that would allocate without bound.
const MAX_ROWS: usize = 500;

/// Weekday short names, Monday first: the form's checkbox values and what
/// the TOML's `days` lists are written with.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The first line of every playlist the form writes (it also catches the
/// errors that the check places at the top of the file).
const HEADER_COMMENT: &str = "# Written by the Ekran dashboard's playlist form.";

/// Everything a playlist expresses, as the text of form fields.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PlaylistForm {
    /// File name the playlist is stored under.
    pub file_name: String,
    /// Campaign name (`campaign`).
    pub campaign: String,
    /// Campaign id (`id`); empty derives it from the name.
    pub id: String,
    /// IANA time zone (`timezone`).
    pub timezone: String,
    /// Venue ids, separated by commas or spaces.
    pub venues: String,
    /// Screen groups, separated by commas or spaces.
    pub groups: String,
    /// Screen-id patterns, separated by commas or spaces.
    pub screens: String,
    /// First day of the campaign (`[flight] start`).
    pub flight_start: String,
    /// Last day of the campaign (`[flight] end`).
    pub flight_end: String,
    /// `[[item]]` and `[[daily]]` tables, in form order.
    pub items: Vec<ItemRow>,
    /// `[[ticker]]` tables.
    pub tickers: Vec<TickerRow>,
    /// Screen to preview on.
    pub screen: String,
    /// Day to preview.
    pub day: String,
}

/// One `[[item]]` (one file) or `[[daily]]` (a file a day) table.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ItemRow {
    /// A `[[daily]]` table: `start` and `media_list` instead of `media` and `dates`.
    pub daily: bool,
    /// Item id (or the daily table's id prefix); empty derives it.
    pub id: String,
    /// Library file name (`[[item]]`).
    pub media: String,
    /// Dates the item plays on only, separated by commas or spaces (`[[item]]`).
    pub dates: String,
    /// Day the first file plays (`[[daily]]`).
    pub start: String,
    /// One library file name a line, one a day (`[[daily]]`).
    pub media_list: String,
    /// Display time (stills) or cap (clips): `20s`, `1m 30s` or seconds.
    pub duration: String,
    /// `contain`, `cover`, or empty for the default.
    pub fit: String,
    /// Share of airtime within its tier.
    pub weight: String,
    /// Priority tier.
    pub priority: String,
    /// Cap of plays per clock hour.
    pub max_plays_per_hour: String,
    /// The item's own first day, inside the campaign's.
    pub flight_start: String,
    /// The item's own last day.
    pub flight_end: String,
    /// Times of day it may play.
    pub windows: Vec<WindowRow>,
}

/// One time window: weekdays (none means every day) and local times.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WindowRow {
    /// Short weekday names (`mon`…`sun`).
    pub days: Vec<String>,
    /// Opening time, `HH:MM`.
    pub start: String,
    /// Closing time, `HH:MM` (before `start` wraps past midnight).
    pub end: String,
}

/// One `[[ticker]]` table.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TickerRow {
    /// The scrolling line, any Unicode.
    pub text: String,
    /// The ticker's own first day.
    pub flight_start: String,
    /// The ticker's own last day.
    pub flight_end: String,
    /// Times of day it runs.
    pub windows: Vec<WindowRow>,
}

/// A posted form that cannot be read (a row index out of range, an unknown field).
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// A field name the form never writes.
    #[error("unknown form field `{0}`")]
    UnknownField(String),
    /// A row index beyond [`MAX_ROWS`].
    #[error("form field `{0}`: too many rows (at most {MAX_ROWS})")]
    TooManyRows(String),
}

/// Why a playlist's TOML cannot be shown in the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsupported {
    /// The text is not TOML at all (the parser's message).
    NotToml(String),
    /// A key the form has no field for (path like `item[0].wieght`).
    UnknownKey(String),
    /// A value of a type the form cannot show (path and TOML type).
    CannotHold(String, &'static str),
    /// A `days` entry that is no weekday (path and entry).
    UnknownDay(String, String),
    /// Written back by the form, the playlist would mean something else.
    MeaningChanges,
}

impl Unsupported {
    /// The reason in the page's language.
    fn describe(&self, web: &Web) -> String {
        match self {
            Unsupported::NotToml(message) => {
                web.t_with("form-reason-not-toml", &[("message", message.clone())])
            }
            Unsupported::UnknownKey(key) => {
                web.t_with("form-reason-unknown-key", &[("key", key.clone())])
            }
            Unsupported::CannotHold(key, kind) => web.t_with(
                "form-reason-cannot-hold",
                &[("key", key.clone()), ("kind", (*kind).to_owned())],
            ),
            Unsupported::UnknownDay(key, day) => web.t_with(
                "form-reason-unknown-day",
                &[("key", key.clone()), ("day", day.clone())],
            ),
            Unsupported::MeaningChanges => web.t("form-reason-meaning"),
        }
    }
}

impl FormError {
    /// The error in the page's language.
    fn describe(&self, web: &Web) -> String {
        match self {
            FormError::UnknownField(field) => {
                web.t_with("form-bad-field", &[("field", field.clone())])
            }
            FormError::TooManyRows(field) => web.t_with(
                "form-too-many-rows",
                &[("field", field.clone()), ("max", MAX_ROWS.to_string())],
            ),
        }
    }
}

/// The playlist TOML the form wrote and, for each of its lines (0-based),
/// the form field the line came from.
#[derive(Debug, Default)]
pub struct Written {
    /// The TOML text.
    pub source: String,
    /// Field name per line; empty where a line belongs to no field.
    pub fields: Vec<String>,
}

impl Written {
    fn line(&mut self, field: &str, text: impl Into<String>) {
        self.source.push_str(&text.into());
        self.source.push('\n');
        self.fields.push(field.to_owned());
    }

    /// The field a 1-based line belongs to.
    pub fn field_at(&self, line: usize) -> Option<&str> {
        self.fields
            .get(line.checked_sub(1)?)
            .map(String::as_str)
            .filter(|field| !field.is_empty())
    }
}

/// A TOML string, escaped by the `toml` crate.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A date as a bare TOML date when it is one, else as a string the check
/// will name as wrong (a bare bad date would be a syntax error that hides
/// every other problem).
fn toml_date(text: &str) -> String {
    let text = text.trim();
    if text.len() == 10 && text.parse::<jiff::civil::Date>().is_ok() {
        text.to_owned()
    } else {
        toml_string(text)
    }
}

/// A whole number as a TOML integer when it is one, else as a string the
/// check names as wrong.
fn toml_integer(text: &str) -> String {
    let text = text.trim();
    match text.parse::<i64>() {
        Ok(value) => value.to_string(),
        Err(_) => toml_string(text),
    }
}

/// Words of a list field: split at commas and white space.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect()
}

fn toml_list(values: &[&str], element: impl Fn(&str) -> String) -> String {
    let inner: Vec<String> = values.iter().map(|value| element(value)).collect();
    format!("[{}]", inner.join(", "))
}

/// Weekdays as the TOML writes them: runs of three or more as ranges
/// (`mon-fri`), unknown names kept as they are so the check names them.
fn days_list(days: &[String]) -> Vec<String> {
    let mut known: Vec<usize> = days
        .iter()
        .filter_map(|day| DAYS.iter().position(|d| d == day))
        .collect();
    known.sort_unstable();
    known.dedup();
    let mut out = Vec::new();
    let mut index = 0;
    while index < known.len() {
        let mut last = index;
        while last + 1 < known.len() && known[last + 1] == known[last] + 1 {
            last += 1;
        }
        if last - index >= 2 {
            out.push(format!("{}-{}", DAYS[known[index]], DAYS[known[last]]));
        } else {
            out.extend((index..=last).map(|i| DAYS[known[i]].to_owned()));
        }
        index = last + 1;
    }
    out.extend(
        days.iter()
            .filter(|day| !DAYS.contains(&day.as_str()))
            .cloned(),
    );
    out
}

/// Reads a `days` entry (`mon`, `monday`, `mon-fri`, `weekdays`,
/// `weekend`) into short names; `None` for a name the form cannot tick.
fn read_days(text: &str) -> Option<Vec<&'static str>> {
    let one = |name: &str| -> Option<usize> {
        let name = name.trim().to_ascii_lowercase();
        DAYS.iter().position(|short| {
            name == *short
                || matches!(
                    (*short, name.as_str()),
                    ("mon", "monday")
                        | ("tue", "tuesday")
                        | ("wed", "wednesday")
                        | ("thu", "thursday")
                        | ("fri", "friday")
                        | ("sat", "saturday")
                        | ("sun", "sunday")
                )
        })
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "weekdays" => return Some(DAYS[..5].to_vec()),
        "weekend" => return Some(DAYS[5..].to_vec()),
        _ => {}
    }
    if let Some((from, to)) = text.split_once('-') {
        let (from, to) = (one(from)?, one(to)?);
        let mut days = Vec::new();
        let mut day = from;
        loop {
            days.push(DAYS[day]);
            if day == to {
                break;
            }
            day = (day + 1) % 7;
        }
        return Some(days);
    }
    Some(vec![DAYS[one(text)?]])
}

impl PlaylistForm {
    /// A new campaign: UTC, one empty item.
    pub fn blank() -> Self {
        Self {
            timezone: "UTC".to_owned(),
            items: vec![ItemRow::default()],
            ..Self::default()
        }
    }

    /// The playlist TOML this form means, and which field each line came from.
    pub fn to_toml(&self) -> Written {
        let mut out = Written::default();
        out.line("", HEADER_COMMENT);
        out.line(
            "campaign",
            format!("campaign = {}", toml_string(self.campaign.trim())),
        );
        if !self.id.trim().is_empty() {
            out.line("id", format!("id = {}", toml_string(self.id.trim())));
        }
        out.line(
            "timezone",
            format!("timezone = {}", toml_string(self.timezone.trim())),
        );
        out.line("", "");
        out.line("targets", "[targets]");
        for (key, text) in [
            ("venues", &self.venues),
            ("groups", &self.groups),
            ("screens", &self.screens),
        ] {
            let list = words(text);
            if !list.is_empty() {
                out.line(key, format!("{key} = {}", toml_list(&list, toml_string)));
            }
        }
        out.line("", "");
        out.line("flight", "[flight]");
        out.line(
            "flight_start",
            format!("start = {}", toml_date(&self.flight_start)),
        );
        out.line(
            "flight_end",
            format!("end = {}", toml_date(&self.flight_end)),
        );
        for (index, item) in self.items.iter().enumerate() {
            item.write(&mut out, &format!("item.{index}"));
        }
        for (index, ticker) in self.tickers.iter().enumerate() {
            let prefix = format!("ticker.{index}");
            out.line("", "");
            out.line(&prefix, "[[ticker]]");
            out.line(
                &format!("{prefix}.text"),
                format!("text = {}", toml_string(&ticker.text)),
            );
            write_flight(
                &mut out,
                &prefix,
                "ticker",
                &ticker.flight_start,
                &ticker.flight_end,
            );
            write_windows(&mut out, &prefix, "ticker", &ticker.windows);
        }
        out
    }

    /// Reads posted `name=value` pairs (`campaign`, `item.0.media`,
    /// `item.0.window.1.day`…). `csrf`, `action`, `source` are not fields.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, FormError> {
        let mut form = Self::default();
        for (name, value) in pairs {
            let value = value.clone();
            let parts: Vec<&str> = name.split('.').collect();
            match parts.as_slice() {
                ["csrf" | "action" | "source"] => {}
                ["file_name"] => form.file_name = value,
                ["campaign"] => form.campaign = value,
                ["id"] => form.id = value,
                ["timezone"] => form.timezone = value,
                ["venues"] => form.venues = value,
                ["groups"] => form.groups = value,
                ["screens"] => form.screens = value,
                ["flight_start"] => form.flight_start = value,
                ["flight_end"] => form.flight_end = value,
                ["screen"] => form.screen = value,
                ["day"] => form.day = value,
                ["item", index, rest @ ..] => {
                    let item = row(&mut form.items, index, name)?;
                    match rest {
                        ["daily"] => item.daily = value == "1",
                        ["id"] => item.id = value,
                        ["media"] => item.media = value,
                        ["dates"] => item.dates = value,
                        ["start"] => item.start = value,
                        ["media_list"] => item.media_list = value,
                        ["duration"] => item.duration = value,
                        ["fit"] => item.fit = value,
                        ["weight"] => item.weight = value,
                        ["priority"] => item.priority = value,
                        ["max_plays_per_hour"] => item.max_plays_per_hour = value,
                        ["flight_start"] => item.flight_start = value,
                        ["flight_end"] => item.flight_end = value,
                        ["window", index, field] => {
                            window_field(row(&mut item.windows, index, name)?, field, value, name)?;
                        }
                        _ => return Err(FormError::UnknownField(name.clone())),
                    }
                }
                ["ticker", index, rest @ ..] => {
                    let ticker = row(&mut form.tickers, index, name)?;
                    match rest {
                        ["text"] => ticker.text = value,
                        ["flight_start"] => ticker.flight_start = value,
                        ["flight_end"] => ticker.flight_end = value,
                        ["window", index, field] => {
                            window_field(
                                row(&mut ticker.windows, index, name)?,
                                field,
                                value,
                                name,
                            )?;
                        }
                        _ => return Err(FormError::UnknownField(name.clone())),
                    }
                }
                _ => return Err(FormError::UnknownField(name.clone())),
            }
        }
        Ok(form)
    }

    /// Adds or removes a row as a form button asks (`add:item`,
    /// `add:daily`, `add:ticker`, `add:item.2.window`, `remove:item.2`,
    /// `remove:ticker.0.window.1`…). False when `action` is none of these.
    pub fn edit_rows(&mut self, action: &str) -> bool {
        let parse = |text: &str| text.parse::<usize>().ok();
        let Some((verb, target)) = action.split_once(':') else {
            return false;
        };
        let parts: Vec<&str> = target.split('.').collect();
        match (verb, parts.as_slice()) {
            ("add", ["item"]) => self.items.push(ItemRow::default()),
            ("add", ["daily"]) => self.items.push(ItemRow {
                daily: true,
                ..ItemRow::default()
            }),
            ("add", ["ticker"]) => self.tickers.push(TickerRow::default()),
            ("add", ["item", index, "window"]) => {
                let Some(item) = parse(index).and_then(|i| self.items.get_mut(i)) else {
                    return false;
                };
                item.windows.push(WindowRow::default());
            }
            ("add", ["ticker", index, "window"]) => {
                let Some(ticker) = parse(index).and_then(|i| self.tickers.get_mut(i)) else {
                    return false;
                };
                ticker.windows.push(WindowRow::default());
            }
            ("remove", ["item", index]) => return remove(&mut self.items, parse(index)),
            ("remove", ["ticker", index]) => return remove(&mut self.tickers, parse(index)),
            ("remove", ["item", index, "window", window]) => {
                let Some(item) = parse(index).and_then(|i| self.items.get_mut(i)) else {
                    return false;
                };
                return remove(&mut item.windows, parse(window));
            }
            ("remove", ["ticker", index, "window", window]) => {
                let Some(ticker) = parse(index).and_then(|i| self.tickers.get_mut(i)) else {
                    return false;
                };
                return remove(&mut ticker.windows, parse(window));
            }
            _ => return false,
        }
        true
    }

    /// Reads a playlist's TOML into the form, or says why the form cannot
    /// hold it: text that is not TOML, keys or values the form has no field
    /// for, or anything whose meaning would change when the form writes it
    /// back (checked by comparing what [`playlist::parse`] makes of both).
    pub fn from_toml(file_name: &str, source: &str) -> Result<Self, Vec<Unsupported>> {
        let table: toml::Table = toml::from_str(source)
            .map_err(|error| vec![Unsupported::NotToml(error.message().trim().to_owned())])?;
        let mut reader = Reader::default();
        let mut form = Self {
            file_name: file_name.to_owned(),
            ..Self::default()
        };
        let mut dailies = Vec::new();
        for (key, value) in &table {
            match key.as_str() {
                "campaign" => form.campaign = reader.text(key, value),
                "id" => form.id = reader.text(key, value),
                "timezone" => form.timezone = reader.text(key, value),
                "targets" => {
                    for (inner, list) in reader.table(key, value) {
                        let joined = reader.list(&format!("targets.{inner}"), list).join(", ");
                        match inner.as_str() {
                            "venues" => form.venues = joined,
                            "groups" => form.groups = joined,
                            "screens" => form.screens = joined,
                            _ => reader.unknown(&format!("targets.{inner}")),
                        }
                    }
                }
                "flight" => {
                    (form.flight_start, form.flight_end) = reader.flight(key, value);
                }
                "item" => {
                    for (index, table) in reader.tables(key, value).into_iter().enumerate() {
                        form.items
                            .push(reader.item(&format!("item[{index}]"), table, false));
                    }
                }
                "daily" => {
                    for (index, table) in reader.tables(key, value).into_iter().enumerate() {
                        dailies.push(reader.item(&format!("daily[{index}]"), table, true));
                    }
                }
                "ticker" => {
                    for (index, table) in reader.tables(key, value).into_iter().enumerate() {
                        form.tickers
                            .push(reader.ticker(&format!("ticker[{index}]"), table));
                    }
                }
                other => reader.unknown(other),
            }
        }
        form.items.extend(dailies);
        if !reader.problems.is_empty() {
            return Err(reader.problems);
        }
        // The file is valid: the form must mean exactly the same playlist.
        let file = Path::new(file_name);
        if let Ok(original) = playlist::parse(source, file) {
            let written = form.to_toml();
            let same = playlist::parse(&written.source, file)
                .is_ok_and(|round_trip| same_meaning(&original, &round_trip));
            if !same {
                return Err(vec![Unsupported::MeaningChanges]);
            }
        }
        Ok(form)
    }
}

/// True when two parsed playlists schedule the same things (where in the
/// text each media file was named does not count).
fn same_meaning(a: &Playlist, b: &Playlist) -> bool {
    let nowhere = |playlist: &Playlist| {
        let mut playlist = playlist.clone();
        for item in &mut playlist.items {
            item.media_at = Location {
                file: String::new(),
                line: 0,
                column: 0,
            };
        }
        playlist
    };
    nowhere(a) == nowhere(b)
}

/// The row at a posted index, growing the list to reach it.
fn row<'r, T: Default>(
    rows: &'r mut Vec<T>,
    index: &str,
    name: &str,
) -> Result<&'r mut T, FormError> {
    let index: usize = index
        .parse()
        .map_err(|_| FormError::UnknownField(name.to_owned()))?;
    if index >= MAX_ROWS {
        return Err(FormError::TooManyRows(name.to_owned()));
    }
    if rows.len() <= index {
        rows.resize_with(index + 1, T::default);
    }
    Ok(&mut rows[index])
}

fn window_field(
    window: &mut WindowRow,
    field: &str,
    value: String,
    name: &str,
) -> Result<(), FormError> {
    match field {
        "day" => window.days.push(value),
        "start" => window.start = value,
        "end" => window.end = value,
        _ => return Err(FormError::UnknownField(name.to_owned())),
    }
    Ok(())
}

fn remove<T>(rows: &mut Vec<T>, index: Option<usize>) -> bool {
    match index {
        Some(index) if index < rows.len() => {
            rows.remove(index);
            true
        }
        _ => false,
    }
}

fn write_flight(out: &mut Written, prefix: &str, table: &str, start: &str, end: &str) {
    if start.trim().is_empty() && end.trim().is_empty() {
        return;
    }
    out.line(&format!("{prefix}.flight"), format!("[{table}.flight]"));
    out.line(
        &format!("{prefix}.flight_start"),
        format!("start = {}", toml_date(start)),
    );
    out.line(
        &format!("{prefix}.flight_end"),
        format!("end = {}", toml_date(end)),
    );
}

fn write_windows(out: &mut Written, prefix: &str, table: &str, windows: &[WindowRow]) {
    for (index, window) in windows.iter().enumerate() {
        let field = format!("{prefix}.window.{index}");
        out.line(&field, format!("[[{table}.windows]]"));
        let days = days_list(&window.days);
        // All seven days is every day: the same as no `days` at all.
        if !days.is_empty() && days != ["mon-sun"] {
            let days: Vec<&str> = days.iter().map(String::as_str).collect();
            out.line(
                &format!("{field}.days"),
                format!("days = {}", toml_list(&days, toml_string)),
            );
        }
        out.line(
            &format!("{field}.start"),
            format!("start = {}", toml_string(window.start.trim())),
        );
        out.line(
            &format!("{field}.end"),
            format!("end = {}", toml_string(window.end.trim())),
        );
    }
}

impl ItemRow {
    fn write(&self, out: &mut Written, prefix: &str) {
        let table = if self.daily { "daily" } else { "item" };
        out.line("", "");
        out.line(prefix, format!("[[{table}]]"));
        let field = |name: &str| format!("{prefix}.{name}");
        if !self.id.trim().is_empty() {
            out.line(
                &field("id"),
                format!("id = {}", toml_string(self.id.trim())),
            );
        }
        if self.daily {
            out.line(
                &field("start"),
                format!("start = {}", toml_date(&self.start)),
            );
            out.line(&field("media_list"), "media = [");
            for name in self
                .media_list
                .lines()
                .map(str::trim)
                .filter(|n| !n.is_empty())
            {
                out.line(&field("media_list"), format!("  {},", toml_string(name)));
            }
            out.line(&field("media_list"), "]");
        } else {
            out.line(
                &field("media"),
                format!("media = {}", toml_string(self.media.trim())),
            );
            let dates = words(&self.dates);
            if !dates.is_empty() {
                out.line(
                    &field("dates"),
                    format!("dates = {}", toml_list(&dates, toml_date)),
                );
            }
        }
        let duration = self.duration.trim();
        if !duration.is_empty() {
            let value = if duration.chars().all(|c| c.is_ascii_digit()) {
                toml_integer(duration)
            } else {
                toml_string(duration)
            };
            out.line(&field("duration"), format!("duration = {value}"));
        }
        if !self.fit.trim().is_empty() {
            out.line(
                &field("fit"),
                format!("fit = {}", toml_string(self.fit.trim())),
            );
        }
        for (key, value) in [
            ("weight", &self.weight),
            ("priority", &self.priority),
            ("max_plays_per_hour", &self.max_plays_per_hour),
        ] {
            if !value.trim().is_empty() {
                out.line(&field(key), format!("{key} = {}", toml_integer(value)));
            }
        }
        write_flight(out, prefix, table, &self.flight_start, &self.flight_end);
        write_windows(out, prefix, table, &self.windows);
    }
}

/// Walks a playlist's TOML table by table, collecting what the form cannot hold.
#[derive(Default)]
struct Reader {
    problems: Vec<Unsupported>,
}

impl Reader {
    fn unknown(&mut self, key: &str) {
        self.problems.push(Unsupported::UnknownKey(key.to_owned()));
    }

    fn cannot_hold(&mut self, key: &str, value: &toml::Value) {
        self.problems
            .push(Unsupported::CannotHold(key.to_owned(), value.type_str()));
    }

    /// A string, number or date as field text.
    fn text(&mut self, key: &str, value: &toml::Value) -> String {
        match value {
            toml::Value::String(text) => text.clone(),
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Datetime(datetime) => datetime.to_string(),
            other => {
                self.cannot_hold(key, other);
                String::new()
            }
        }
    }

    fn list(&mut self, key: &str, value: &toml::Value) -> Vec<String> {
        match value {
            toml::Value::Array(values) => values
                .iter()
                .enumerate()
                .map(|(index, value)| self.text(&format!("{key}[{index}]"), value))
                .collect(),
            other => {
                self.cannot_hold(key, other);
                Vec::new()
            }
        }
    }

    fn table<'v>(
        &mut self,
        key: &str,
        value: &'v toml::Value,
    ) -> Vec<(&'v String, &'v toml::Value)> {
        match value {
            toml::Value::Table(table) => table.iter().collect(),
            other => {
                self.cannot_hold(key, other);
                Vec::new()
            }
        }
    }

    fn tables<'v>(&mut self, key: &str, value: &'v toml::Value) -> Vec<&'v toml::Table> {
        match value {
            toml::Value::Array(values) => values
                .iter()
                .filter_map(|value| match value {
                    toml::Value::Table(table) => Some(table),
                    other => {
                        self.cannot_hold(key, other);
                        None
                    }
                })
                .collect(),
            other => {
                self.cannot_hold(key, other);
                Vec::new()
            }
        }
    }

    fn flight(&mut self, key: &str, value: &toml::Value) -> (String, String) {
        let (mut start, mut end) = (String::new(), String::new());
        for (inner, value) in self.table(key, value) {
            match inner.as_str() {
                "start" => start = self.text(&format!("{key}.start"), value),
                "end" => end = self.text(&format!("{key}.end"), value),
                _ => self.unknown(&format!("{key}.{inner}")),
            }
        }
        (start, end)
    }

    fn windows(&mut self, key: &str, value: &toml::Value) -> Vec<WindowRow> {
        let mut rows = Vec::new();
        for (index, table) in self.tables(key, value).into_iter().enumerate() {
            let key = format!("{key}[{index}]");
            let mut window = WindowRow::default();
            for (inner, value) in table {
                match inner.as_str() {
                    "days" => {
                        for day in self.list(&format!("{key}.days"), value) {
                            match read_days(&day) {
                                Some(days) => {
                                    window.days.extend(days.into_iter().map(str::to_owned))
                                }
                                None => self
                                    .problems
                                    .push(Unsupported::UnknownDay(format!("{key}.days"), day)),
                            }
                        }
                    }
                    "start" => window.start = self.time(&format!("{key}.start"), value),
                    "end" => window.end = self.time(&format!("{key}.end"), value),
                    _ => self.unknown(&format!("{key}.{inner}")),
                }
            }
            rows.push(window);
        }
        rows
    }

    /// A time of day as `HH:MM` (`HH:MM:SS` when it has seconds).
    fn time(&mut self, key: &str, value: &toml::Value) -> String {
        let text = self.text(key, value);
        match text.strip_suffix(":00") {
            Some(short) if text.len() == 8 => short.to_owned(),
            _ => text,
        }
    }

    fn item(&mut self, key: &str, table: &toml::Table, daily: bool) -> ItemRow {
        let mut item = ItemRow {
            daily,
            ..ItemRow::default()
        };
        for (inner, value) in table {
            let path = format!("{key}.{inner}");
            match (inner.as_str(), daily) {
                ("id", _) => item.id = self.text(&path, value),
                ("media", false) => item.media = self.text(&path, value),
                ("media", true) => item.media_list = self.list(&path, value).join("\n"),
                ("dates", false) => item.dates = self.list(&path, value).join(", "),
                ("start", true) => item.start = self.text(&path, value),
                ("duration", _) => item.duration = self.text(&path, value),
                ("fit", _) => item.fit = self.text(&path, value),
                ("weight", _) => item.weight = self.text(&path, value),
                ("priority", _) => item.priority = self.text(&path, value),
                ("max_plays_per_hour", _) => item.max_plays_per_hour = self.text(&path, value),
                ("flight", _) => (item.flight_start, item.flight_end) = self.flight(&path, value),
                ("windows", _) => item.windows = self.windows(&path, value),
                _ => self.unknown(&path),
            }
        }
        item
    }

    fn ticker(&mut self, key: &str, table: &toml::Table) -> TickerRow {
        let mut ticker = TickerRow::default();
        for (inner, value) in table {
            let path = format!("{key}.{inner}");
            match inner.as_str() {
                "text" => ticker.text = self.text(&path, value),
                "flight" => (ticker.flight_start, ticker.flight_end) = self.flight(&path, value),
                "windows" => ticker.windows = self.windows(&path, value),
                _ => self.unknown(&path),
            }
        }
        ticker
    }
}

/// True when the TOML has comments (other than the form's own first line),
/// which the form does not keep. A `#` inside a string may count too: the
/// warning is then needless, never missing.
fn has_comments(source: &str) -> bool {
    source.lines().any(|line| {
        line.trim() != HEADER_COMMENT && (line.trim_start().starts_with('#') || line.contains(" #"))
    })
}

/// `GET /playlists/form[?campaign=ID]` (manager): the form, empty or with a stored playlist.
pub async fn form(web: Web, Query(query): Query<EditorQuery>) -> Result<Response, Response> {
    web.require(Role::Manager)?;
    let page = match query.campaign.as_deref().filter(|c| !c.is_empty()) {
        Some(campaign) => {
            let (file_name, source) = campaigns::stored_playlist(&web, campaign)
                .await
                .map_err(IntoResponse::into_response)?;
            loaded(&web, &file_name, &source, Some(campaign)).await
        }
        None => {
            render(
                &web,
                &PlaylistForm::blank(),
                Outcome::default(),
                Checked::default(),
            )
            .await
        }
    };
    page.map_err(IntoResponse::into_response)
}

/// The form filled from a playlist's TOML, or the page that says why it
/// cannot be and offers the TOML editor.
async fn loaded(
    web: &Web,
    file_name: &str,
    source: &str,
    campaign: Option<&str>,
) -> Result<Response, WebError> {
    match PlaylistForm::from_toml(file_name, source) {
        Ok(form) => {
            let checked = Checked {
                comments_dropped: has_comments(source),
                ..Checked::default()
            };
            render(web, &form, Outcome::default(), checked).await
        }
        Err(reasons) => {
            tracing::info!(
                file_name,
                ?reasons,
                "playlist the form cannot hold: offering the TOML editor"
            );
            let reasons: Vec<String> = reasons.iter().map(|reason| reason.describe(web)).collect();
            let mut response = web.render(
                "playlist_form_unsupported.html",
                minijinja::context! {
                    file_name => file_name,
                    source => source,
                    campaign => campaign,
                    reasons => reasons,
                },
            );
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
    }
}

/// Errors of a check, placed at the form's fields.
#[derive(Debug, Default, Serialize)]
struct Checked {
    /// Field name → messages.
    field_errors: BTreeMap<String, Vec<String>>,
    /// Messages that belong to no one field.
    general_errors: Vec<String>,
    /// The TOML that was checked.
    source: String,
    /// The playlist was loaded from TOML that had comments.
    comments_dropped: bool,
}

/// `POST /playlists/form` (manager): add or remove rows, check, preview,
/// publish, open the TOML editor on what the form says, or load TOML
/// (from the editor) into the form.
pub async fn submit(
    web: Web,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Response> {
    let session = web.require(Role::Manager)?;
    let by = session.caller.name.clone();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let action = field("action");
    if action == "load-toml" {
        let file_name = campaigns::safe_file_name(&field("file_name"));
        return loaded(&web, &file_name, &field("source"), None)
            .await
            .map_err(IntoResponse::into_response);
    }
    let bad =
        |message: String| WebError::new(&web, StatusCode::BAD_REQUEST, message).into_response();
    let mut form = PlaylistForm::from_pairs(&pairs).map_err(|error| bad(error.describe(&web)))?;
    let file_name = if form.file_name.trim().is_empty() {
        let id = form.id.trim();
        campaigns::safe_file_name(&format!(
            "{}.toml",
            if id.is_empty() { "playlist" } else { id }
        ))
    } else {
        campaigns::safe_file_name(&form.file_name)
    };
    form.file_name = file_name.clone();
    let written = form.to_toml();
    match action.as_str() {
        "toml" => campaigns::editor_with_source(&web, file_name, written.source)
            .await
            .map_err(IntoResponse::into_response),
        "check" | "preview" | "publish" => {
            let outcome = campaigns::act(
                &web,
                &by,
                &file_name,
                &written.source,
                Action::from_name(&action),
                &form.screen,
                &form.day,
            )
            .await?;
            let mut checked = Checked {
                source: written.source.clone(),
                ..Checked::default()
            };
            for problem in &outcome.errors {
                match problem.line.and_then(|line| written.field_at(line)) {
                    Some(field) => checked
                        .field_errors
                        .entry(field.to_owned())
                        .or_default()
                        .push(problem.message.clone()),
                    None => checked.general_errors.push(problem.message.clone()),
                }
            }
            if !outcome.errors.is_empty() {
                tracing::info!(
                    file_name,
                    errors = outcome.errors.len(),
                    action,
                    "playlist form refused"
                );
            }
            let status = outcome.status();
            let mut response = render(&web, &form, outcome, checked)
                .await
                .map_err(IntoResponse::into_response)?;
            *response.status_mut() = status;
            Ok(response)
        }
        other => {
            if form.edit_rows(other) {
                render(&web, &form, Outcome::default(), Checked::default())
                    .await
                    .map_err(IntoResponse::into_response)
            } else {
                Err(bad(web.t_with(
                    "form-unknown-action",
                    &[("action", other.to_owned())],
                )))
            }
        }
    }
}

async fn render(
    web: &Web,
    form: &PlaylistForm,
    outcome: Outcome,
    checked: Checked,
) -> Result<Response, WebError> {
    let (screens, library) = campaigns::screens_and_library(web).await?;
    Ok(web.render(
        "playlist_form.html",
        minijinja::context! {
            form => form,
            days => DAYS,
            library => library,
            screens => screens,
            timezones => super::zone_names(),
            outcome => outcome,
            checked => checked,
            assumed_clip_secs => campaigns::ASSUMED_CLIP_SECS,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../playlists/udhr-2026.toml");

    #[test]
    fn the_sample_playlists_round_trip_through_the_form() {
        for (name, source) in [
            ("udhr-2026.toml", SAMPLE),
            (
                "june26-2027.toml",
                include_str!("../../../playlists/june26-2027.toml"),
            ),
        ] {
            let form =
                PlaylistForm::from_toml(name, source).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let written = form.to_toml();
            let original = playlist::parse(source, Path::new(name)).unwrap();
            let again = playlist::parse(&written.source, Path::new(name)).unwrap();
            assert!(same_meaning(&original, &again), "{}", written.source);
            assert!(
                original.tickers[0].text.contains("Ҳуқуқ")
                    || original.tickers[0].text.contains("Телефон")
            );
        }
    }

    #[test]
    fn unknown_keys_and_unreadable_days_go_to_the_toml_editor() {
        let source = SAMPLE.replace("weight = 1\n", "wieght = 1\n");
        let reasons = PlaylistForm::from_toml("x.toml", &source).unwrap_err();
        assert_eq!(reasons, [Unsupported::UnknownKey("item[0].wieght".into())]);
        let reasons = PlaylistForm::from_toml("x.toml", "campaign = [").unwrap_err();
        assert!(
            matches!(reasons[..], [Unsupported::NotToml(_)]),
            "{reasons:?}"
        );
        let source = SAMPLE.replace("[[ticker]]\ntext", "[[ticker]]\ncolour = 3\ntext");
        let reasons = PlaylistForm::from_toml("x.toml", &source).unwrap_err();
        assert_eq!(
            reasons,
            [Unsupported::UnknownKey("ticker[0].colour".into())]
        );
        let windowed = SAMPLE.replace(
            "id = \"slogan\"",
            "id = \"slogan\"\nwindows = [{ days = [\"someday\"], start = \"08:00\", end = \"09:00\" }]",
        );
        let reasons = PlaylistForm::from_toml("x.toml", &windowed).unwrap_err();
        assert_eq!(
            reasons,
            [Unsupported::UnknownDay(
                "item[0].windows[0].days".into(),
                "someday".into()
            )]
        );
    }

    #[test]
    fn tickers_keep_their_flight_and_windows() {
        let source = SAMPLE.replace(
            "[[ticker]]\n",
            "[[ticker]]\nflight = { start = 2026-12-01, end = 2026-12-10 }\n\
             windows = [{ days = [\"sat\", \"sun\"], start = 08:00:00, end = \"24:00\" }]\n",
        );
        let form = PlaylistForm::from_toml("x.toml", &source).unwrap();
        let ticker = &form.tickers[0];
        assert_eq!(
            (ticker.flight_start.as_str(), ticker.flight_end.as_str()),
            ("2026-12-01", "2026-12-10")
        );
        assert_eq!(
            ticker.windows,
            [WindowRow {
                days: vec!["sat".into(), "sun".into()],
                start: "08:00".into(),
                end: "24:00".into(),
            }]
        );
        let written = form.to_toml().source;
        assert!(written.contains("[ticker.flight]\nstart = 2026-12-01\nend = 2026-12-10\n[[ticker.windows]]\ndays = [\"sat\", \"sun\"]"), "{written}");
    }

    #[test]
    fn days_are_written_as_ranges_and_read_back() {
        let days =
            |list: &[&str]| days_list(&list.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>());
        assert_eq!(days(&["mon", "tue", "wed", "thu", "fri"]), ["mon-fri"]);
        assert_eq!(days(&["sat", "mon", "sun"]), ["mon", "sat", "sun"]);
        assert_eq!(days(&["fri", "sat", "sun", "tue"]), ["tue", "fri-sun"]);
        assert_eq!(read_days("weekend"), Some(vec!["sat", "sun"]));
        assert_eq!(read_days("fri-mon"), Some(vec!["fri", "sat", "sun", "mon"]));
        assert_eq!(read_days("Monday"), Some(vec!["mon"]));
        assert_eq!(read_days("someday"), None);
    }

    #[test]
    fn posted_fields_build_rows_and_buttons_edit_them() {
        let pairs: Vec<(String, String)> = [
            ("campaign", "Права"),
            ("item.1.media", "b.mp4"),
            ("item.0.media", "a.png"),
            ("item.0.window.0.day", "mon"),
            ("item.0.window.0.day", "tue"),
            ("ticker.0.text", "Телефон \"доверия\""),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let mut form = PlaylistForm::from_pairs(&pairs).unwrap();
        assert_eq!(form.items.len(), 2);
        assert_eq!(form.items[0].windows[0].days, ["mon", "tue"]);
        assert!(form.edit_rows("add:item.1.window"));
        assert!(form.edit_rows("remove:item.0"));
        assert_eq!(form.items[0].media, "b.mp4");
        assert_eq!(form.items[0].windows.len(), 1);
        assert!(!form.edit_rows("remove:item.7"));
        let written = form.to_toml();
        let table: toml::Table = toml::from_str(&written.source).unwrap();
        assert_eq!(
            table["ticker"][0]["text"].as_str(),
            Some("Телефон \"доверия\""),
            "{}",
            written.source
        );
        let line = written
            .source
            .lines()
            .position(|l| l.starts_with("text ="))
            .unwrap();
        assert_eq!(written.field_at(line + 1), Some("ticker.0.text"));
        let too_far = [("item.999999.id".to_owned(), "x".to_owned())];
        assert!(matches!(
            PlaylistForm::from_pairs(&too_far),
            Err(FormError::TooManyRows(_))
        ));
        let unknown = [("item.0.colour".to_owned(), "x".to_owned())];
        assert!(matches!(
            PlaylistForm::from_pairs(&unknown),
            Err(FormError::UnknownField(_))
        ));
    }
}
