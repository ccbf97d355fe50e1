//! Languages of the dashboard: every UI string lives in a Fluent file under
//! `locales/<lang>/` (embedded at build time), the language is chosen per
//! request, and numbers, dates and times are formatted by rules that the
//! same files carry (separators, month names, date patterns). Adding a
//! language is adding a folder beside `en/` and `ru/`.

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};

fluent_templates::static_loader! {
    // Every translation, read from `src/server/web/locales` when the crate is built.
    pub static LOCALES = {
        locales: "./src/server/web/locales",
        fallback_language: "en",
        // No Unicode isolation marks around arguments: they show up as
        // stray characters in `<title>`, CSV names and copied text.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// Cookie remembering the language picked with `?lang=`.
pub const LANG_COOKIE: &str = "ekran_lang";

/// The languages the dashboard has files for, sorted by tag.
pub fn available() -> Vec<LanguageIdentifier> {
    let mut languages: Vec<LanguageIdentifier> = LOCALES.locales().cloned().collect();
    languages.sort_by_key(ToString::to_string);
    languages
}

/// The fallback language.
pub fn fallback() -> LanguageIdentifier {
    fluent_templates::langid!("en")
}

/// Finds the available language matching `tag` by its language subtag
/// (`ru-RU` → `ru`), if any.
pub fn find(tag: &str) -> Option<LanguageIdentifier> {
    let wanted: LanguageIdentifier = tag.trim().parse().ok()?;
    let languages = available();
    languages
        .iter()
        .find(|lang| **lang == wanted)
        .or_else(|| {
            languages
                .iter()
                .find(|lang| lang.language == wanted.language)
        })
        .cloned()
}

/// The request's language: `?lang=` first, then the cookie, then the
/// browser's `Accept-Language` (in its order of preference), then English.
pub fn negotiate(
    query: Option<&str>,
    cookie: Option<&str>,
    accept_language: Option<&str>,
) -> LanguageIdentifier {
    if let Some(lang) = query.and_then(find).or_else(|| cookie.and_then(find)) {
        return lang;
    }
    let mut ranked: Vec<(f32, &str)> = accept_language
        .unwrap_or_default()
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            let quality = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (!tag.is_empty() && tag != "*").then_some((quality, tag))
        })
        .collect();
    // Stable: equal weights keep the browser's order.
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked
        .into_iter()
        .find_map(|(_, tag)| find(tag))
        .unwrap_or_else(fallback)
}

/// Arguments of a message.
pub type Args = HashMap<Cow<'static, str>, FluentValue<'static>>;

/// The message `key` in `lang` (falling back to English, then to the key itself).
pub fn text(lang: &LanguageIdentifier, key: &str) -> String {
    LOCALES
        .try_lookup(lang, key)
        .unwrap_or_else(|| key.to_owned())
}

/// The message `key` in `lang` with arguments.
pub fn text_with(lang: &LanguageIdentifier, key: &str, args: &Args) -> String {
    LOCALES
        .try_lookup_with_args(lang, key, args)
        .unwrap_or_else(|| key.to_owned())
}

/// `value` with `decimals` digits after the separator, digits grouped by
/// thousands, both separators taken from the language's file.
pub fn number(lang: &LanguageIdentifier, value: f64, decimals: usize) -> String {
    let formatted = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = formatted
        .split_once('.')
        .map_or((formatted.as_str(), None), |(w, f)| (w, Some(f)));
    let group = text(lang, "number-group-separator");
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push_str(&group);
        }
        grouped.push(digit);
    }
    let sign = if value < 0.0 && formatted.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    match fraction {
        Some(fraction) => format!(
            "{sign}{grouped}{}{fraction}",
            text(lang, "number-decimal-separator")
        ),
        None => format!("{sign}{grouped}"),
    }
}

/// A share (0.0–1.0) as a percentage with one decimal.
pub fn percent(lang: &LanguageIdentifier, share: f64) -> String {
    let mut args = Args::new();
    args.insert("value".into(), number(lang, share * 100.0, 1).into());
    text_with(lang, "format-percent", &args)
}

/// A byte count in B/KiB/MiB/GiB.
pub fn bytes(lang: &LanguageIdentifier, bytes: u64) -> String {
    const UNITS: [&str; 4] = ["unit-bytes", "unit-kib", "unit-mib", "unit-gib"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let mut args = Args::new();
    args.insert(
        "value".into(),
        number(lang, value, if unit == 0 { 0 } else { 1 }).into(),
    );
    text_with(lang, UNITS[unit], &args)
}

/// A calendar date in the language's pattern and month names.
pub fn date(lang: &LanguageIdentifier, date: jiff::civil::Date) -> String {
    let mut args = Args::new();
    args.insert("day".into(), i64::from(date.day()).into());
    args.insert(
        "month".into(),
        text(lang, &format!("month-{}", date.month())).into(),
    );
    args.insert("year".into(), i64::from(date.year()).into());
    text_with(lang, "format-date", &args)
}

/// An instant as a date and 24-hour time in `zone`, with the zone's abbreviation.
pub fn date_time(
    lang: &LanguageIdentifier,
    at: jiff::Timestamp,
    zone: &jiff::tz::TimeZone,
) -> String {
    let local = at.to_zoned(zone.clone());
    let mut args = Args::new();
    args.insert("date".into(), date(lang, local.date()).into());
    args.insert("time".into(), local.strftime("%H:%M").to_string().into());
    args.insert("zone".into(), local.strftime("%Z").to_string().into());
    text_with(lang, "format-datetime", &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(tag: &str) -> LanguageIdentifier {
        find(tag).unwrap()
    }

    #[test]
    fn english_and_russian_are_embedded() {
        let tags: Vec<String> = available().iter().map(ToString::to_string).collect();
        assert!(
            tags.contains(&"en".to_owned()) && tags.contains(&"ru".to_owned()),
            "{tags:?}"
        );
    }

    #[test]
    fn negotiation_prefers_query_then_cookie_then_browser() {
        assert_eq!(
            negotiate(Some("ru"), Some("en"), Some("en")).to_string(),
            "ru"
        );
        assert_eq!(negotiate(None, Some("ru"), Some("en")).to_string(), "ru");
        assert_eq!(
            negotiate(None, None, Some("de-DE, ru-RU;q=0.8, en;q=0.5")).to_string(),
            "ru"
        );
        assert_eq!(negotiate(Some("xx"), None, None).to_string(), "en");
    }

    #[test]
    fn numbers_and_dates_follow_the_language() {
        assert_eq!(number(&lang("en"), 1_234_567.3, 1), "1,234,567.3");
        assert_eq!(number(&lang("ru"), 1_234_567.3, 1), "1\u{a0}234\u{a0}567,3");
        assert_eq!(number(&lang("en"), -5.0, 0), "-5");
        let day = jiff::civil::date(2027, 6, 26);
        assert_eq!(date(&lang("en"), day), "Jun 26, 2027");
        assert_eq!(date(&lang("ru"), day), "26 июня 2027");
        assert_eq!(percent(&lang("ru"), 0.5), "50,0\u{a0}%");
        assert_eq!(bytes(&lang("en"), 3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn every_english_message_exists_in_russian() {
        let keys = |source: &str| -> Vec<String> {
            source
                .lines()
                .filter_map(|line| line.split_once(" =").map(|(key, _)| key.trim().to_owned()))
                .filter(|key| !key.is_empty() && !key.starts_with('#') && !key.starts_with(' '))
                .collect()
        };
        // Every file of `en/` (the loader merges them all), each against
        // its namesake in `ru/`.
        let locales =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/web/locales");
        let mut files: Vec<_> = std::fs::read_dir(locales.join("en"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name.to_string_lossy().ends_with(".ftl"))
            .collect();
        files.sort();
        assert!(files.len() >= 2, "{files:?}");
        let mut total = 0;
        for file in files {
            let read = |lang: &str| {
                std::fs::read_to_string(locales.join(lang).join(&file))
                    .unwrap_or_else(|e| panic!("{lang}/{}: {e}", file.to_string_lossy()))
            };
            let en = keys(&read("en"));
            let ru = keys(&read("ru"));
            let missing: Vec<&String> = en.iter().filter(|key| !ru.contains(key)).collect();
            assert!(
                missing.is_empty(),
                "missing in ru/{}: {missing:?}",
                file.to_string_lossy()
            );
            total += en.len();
        }
        assert!(total > 50, "{total}");
    }
}
