//! The report chart: seconds on screen per day, one bar per campaign in
//! each day's cluster (venues summed), drawn server-side as SVG by plotters'
//! SVG backend, so the page needs no script and prints as it shows.

use std::collections::BTreeMap;

use plotters::prelude::*;

use crate::server::reports::AirtimeRow;

/// Width and height of the chart in SVG user units (it scales with the page).
const SIZE: (u32, u32) = (800, 320);

/// Draws the chart; `day_label` turns `YYYY-MM-DD` into an axis label.
pub fn airtime_svg(
    rows: &[AirtimeRow],
    y_label: &str,
    day_label: impl Fn(&str) -> String,
) -> Result<String, String> {
    // (day, campaign) → seconds, venues summed.
    let mut seconds: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for row in rows {
        *seconds.entry((&row.day, &row.campaign)).or_default() += row.seconds;
    }
    let mut days: Vec<&str> = seconds.keys().map(|(day, _)| *day).collect();
    days.dedup();
    let mut campaigns: Vec<&str> = seconds.keys().map(|(_, campaign)| *campaign).collect();
    campaigns.sort_unstable();
    campaigns.dedup();
    let top = seconds.values().copied().fold(0.0_f64, f64::max).max(1.0) * 1.15;
    let slots = days.len().max(1);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5_f64..slots as f64 - 0.5, 0.0_f64..top)
            .map_err(|e| e.to_string())?;
        let label_of = |x: &f64| {
            let index = x.round();
            if (x - index).abs() > 0.01 || index < 0.0 {
                return String::new();
            }
            days.get(index as usize)
                .map(|day| day_label(day))
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(slots.min(14) + 1)
            .x_label_formatter(&label_of)
            .y_desc(y_label)
            .draw()
            .map_err(|e| e.to_string())?;
        let width = 0.8 / campaigns.len().max(1) as f64;
        for (index, campaign) in campaigns.iter().enumerate() {
            let color = Palette99::pick(index).mix(0.9);
            let bars = days.iter().enumerate().filter_map(|(slot, day)| {
                let value = *seconds.get(&(*day, *campaign))?;
                let left = slot as f64 - 0.4 + width * index as f64;
                Some(Rectangle::new(
                    [(left, 0.0), (left + width, value)],
                    color.filled(),
                ))
            });
            chart
                .draw_series(bars)
                .map_err(|e| e.to_string())?
                .label(*campaign)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        if !campaigns.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    // Scale with its container (plotters already writes the viewBox)
    // instead of a fixed pixel size.
    Ok(svg.replacen(
        &format!("width=\"{}\" height=\"{}\"", SIZE.0, SIZE.1),
        "preserveAspectRatio=\"xMidYMid meet\" role=\"img\" class=\"chart\"",
        1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: &str, campaign: &str, seconds: f64) -> AirtimeRow {
        AirtimeRow {
            day: day.into(),
            venue: "v".into(),
            campaign: campaign.into(),
            seconds,
            plays: 1,
            completed_plays: 1,
            screens: 1,
            verified_seconds: seconds,
            verified_plays: 1,
            verified_share: 1.0,
        }
    }

    #[test]
    fn one_bar_per_day_and_campaign_with_a_legend() {
        let rows = [
            row("2027-06-25", "Права", 120.0),
            row("2027-06-26", "Права", 60.0),
            row("2027-06-26", "june26", 30.0),
        ];
        let svg = airtime_svg(&rows, "seconds", |d| d[5..].to_owned()).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("viewBox=\"0 0 800 320\""),
            "{svg:.200}"
        );
        assert!(svg.contains("Права") && svg.contains("june26") && svg.contains("06-26"));
        // Three bars plus two legend swatches, above the background and mesh.
        let rects = svg.matches("<rect").count();
        assert!(rects >= 5, "{rects} rects");
    }

    #[test]
    fn an_empty_report_still_draws_axes() {
        let svg = airtime_svg(&[], "seconds", str::to_owned).unwrap();
        assert!(svg.contains("<svg") && svg.contains("seconds"));
    }
}
