//! Charts where officers would rather look than read: disclosures and refusals per
//! agency per week, the break-glass rate, and the privacy alerts by rule, drawn here as
//! SVG (no script), each with a title and description for assistive technology and a
//! table with the same numbers.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::console::ConsoleState;
use crate::console::officer::Officer;
use crate::console::page::{Layout, Nav, render};
use crate::console::views::alerts::{rule_label, rule_words};
use crate::domain::alerts::cases::RuleCount;
use crate::domain::alerts::{AlertRule, Cases};
use crate::domain::ledger::statistics::Statistics;

/// Weeks the charts cover.
const WEEKS: u32 = 12;
/// Agency colours, in the stylesheet's order (`sg-c0` ...).
const COLOURS: usize = 6;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 16.0;

/// One bar.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub class: String,
}

/// A label on an axis.
pub struct Label {
    pub x: String,
    pub y: String,
    pub text: String,
}

/// A bar chart ready to draw.
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub description: String,
    pub bars: Vec<Bar>,
    pub x_labels: Vec<Label>,
    pub y_labels: Vec<Label>,
    pub gridlines: Vec<String>,
    pub axis_y: String,
    /// (colour class, agency) pairs, for the legend.
    pub legend: Vec<(String, String)>,
}

/// The charts page.
#[derive(Template)]
#[template(path = "console/charts.html")]
pub struct ChartsPage {
    pub layout: Layout,
    pub charts: Vec<Chart>,
    pub weeks: Vec<String>,
    pub agencies: Vec<String>,
    /// Per week: per agency (disclosures, refusals).
    pub table: Vec<Vec<(u64, u64)>>,
    /// Per week: (queries, break-glass, rate in words).
    pub rates: Vec<(u64, u64, String)>,
    /// Per rule: its privacy alerts.
    pub alerts: Vec<AlertCountRow>,
}

fn number(value: f64) -> String {
    format!("{value:.1}")
}

/// A round top for the y axis at or above `max`.
fn axis_top(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if step * magnitude >= max {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

/// Grouped bars: one group per week, one bar per series (value per week).
fn grouped(
    id: &'static str,
    title: String,
    description: String,
    series: &[(String, Vec<f64>)],
    weeks: &[String],
    unit: &str,
) -> Chart {
    let labels: Vec<String> = weeks
        .iter()
        .enumerate()
        .map(|(w, week)| {
            // Every other week is labelled, by its month and day.
            if w % 2 == 0 {
                week.get(5..).unwrap_or(week).to_owned()
            } else {
                String::new()
            }
        })
        .collect();
    bars_by_group(id, title, description, series, &labels, unit)
}

/// Grouped bars: one group per label (an empty label is not drawn), one bar per series.
fn bars_by_group(
    id: &'static str,
    title: String,
    description: String,
    series: &[(String, Vec<f64>)],
    groups: &[String],
    unit: &str,
) -> Chart {
    let weeks = groups;
    let max = series
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .fold(0.0, f64::max);
    // A count's axis ends at 2 or more, so its middle tick is a whole number.
    let top = match axis_top(max) {
        top if unit.is_empty() && top < 2.0 => 2.0,
        top => top,
    };
    let plot_width = WIDTH - LEFT - 8.0;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let group = plot_width / weeks.len().max(1) as f64;
    let bar = (group * 0.8) / series.len().max(1) as f64;
    let base = HEIGHT - BOTTOM;
    let mut bars = Vec::new();
    for (s, (_, values)) in series.iter().enumerate() {
        for (w, value) in values.iter().enumerate() {
            let height = if top > 0.0 {
                value / top * plot_height
            } else {
                0.0
            };
            bars.push(Bar {
                x: number(LEFT + w as f64 * group + group * 0.1 + s as f64 * bar),
                y: number(base - height),
                width: number(bar.max(1.0)),
                height: number(height),
                class: format!("sg-c{}", s % COLOURS),
            });
        }
    }
    let x_labels = weeks
        .iter()
        .enumerate()
        .filter(|(_, label)| !label.is_empty())
        .map(|(w, label)| Label {
            x: number(LEFT + w as f64 * group + group / 2.0),
            y: number(base + 18.0),
            text: label.clone(),
        })
        .collect();
    let ticks = [0.0, 0.5, 1.0];
    let y_labels = ticks
        .iter()
        .map(|t| Label {
            x: number(LEFT - 6.0),
            y: number(base - t * plot_height + 4.0),
            // Whole numbers as such; a half of a small top (0.5 of 1) is not rounded up.
            text: match t * top {
                v if v.fract() == 0.0 => format!("{v:.0}{unit}"),
                v => format!("{v:.1}{unit}"),
            },
        })
        .collect();
    let gridlines = ticks
        .iter()
        .map(|t| number(base - t * plot_height))
        .collect();
    Chart {
        id,
        title,
        description,
        bars,
        x_labels,
        y_labels,
        gridlines,
        axis_y: number(base),
        legend: series
            .iter()
            .enumerate()
            .map(|(s, (name, _))| (format!("sg-c{}", s % COLOURS), name.clone()))
            .collect(),
    }
}

fn charts(statistics: &Statistics) -> Vec<Chart> {
    let per_agency = |pick: fn(&crate::domain::ledger::statistics::AgencyWeek) -> u64| {
        statistics
            .agencies
            .iter()
            .map(|agency| {
                let values = statistics.by_agency[agency]
                    .iter()
                    .map(|week| pick(week) as f64)
                    .collect();
                (agency.replace('_', " "), values)
            })
            .collect::<Vec<_>>()
    };
    let weeks = &statistics.weeks;
    let first = weeks.first().cloned().unwrap_or_default();
    vec![
        grouped(
            "disclosures",
            "Disclosures per agency per week".into(),
            format!(
                "Bar chart of answers, notifications and exports that released data, per \
                 agency, for the {} weeks from {first}. The table below gives each number.",
                weeks.len()
            ),
            &per_agency(|w| w.disclosures),
            weeks,
            "",
        ),
        grouped(
            "refusals",
            "Refusals per agency per week".into(),
            format!(
                "Bar chart of refused requests per agency for the {} weeks from {first}. The \
                 table below gives each number.",
                weeks.len()
            ),
            &per_agency(|w| w.refusals),
            weeks,
            "",
        ),
        grouped(
            "break-glass",
            "Break-glass rate per week".into(),
            format!(
                "Bar chart of the percentage of released queries made under break-glass, per \
                 week, for the {} weeks from {first}. The table below gives each number.",
                weeks.len()
            ),
            &[(
                "break-glass queries, % of queries".to_owned(),
                statistics
                    .queries
                    .iter()
                    .map(|q| q.rate_percent().unwrap_or(0.0))
                    .collect(),
            )],
            weeks,
            "%",
        ),
    ]
}

/// Alerts by rule, not yet closed and closed, every rule of the gateway's a group.
fn alerts_chart(counts: &[AlertCountRow]) -> Chart {
    let labels: Vec<String> = counts.iter().map(|c| rule_label(&c.rule_id)).collect();
    let series = [
        (
            "open or assigned".to_owned(),
            counts.iter().map(|c| c.not_closed as f64).collect(),
        ),
        (
            "closed".to_owned(),
            counts.iter().map(|c| c.closed as f64).collect(),
        ),
    ];
    bars_by_group(
        "alerts",
        "Privacy alerts by rule".into(),
        format!(
            "Bar chart of the privacy alerts each of the {} rules has raised, open or assigned \
             and closed, since the log began. The table below gives each number.",
            counts.len()
        ),
        &series,
        &labels,
        "",
    )
}

/// One rule's alerts, for the chart and its table.
pub struct AlertCountRow {
    pub rule_id: String,
    pub rule: String,
    pub not_closed: u64,
    pub closed: u64,
}

/// Every rule's counts, in the rules' order (a rule that raised none has zeros), then
/// any rule the log holds alerts of that this gateway no longer has.
fn alert_rows(counts: Vec<RuleCount>) -> Vec<AlertCountRow> {
    let row = |c: &RuleCount| AlertCountRow {
        rule_id: c.rule_id.clone(),
        rule: rule_words(&c.rule_id),
        not_closed: c.not_closed,
        closed: c.closed,
    };
    let mut rows: Vec<AlertCountRow> = AlertRule::ALL
        .iter()
        .map(|rule| {
            counts
                .iter()
                .find(|c| c.rule_id == rule.as_str())
                .map(row)
                .unwrap_or_else(|| AlertCountRow {
                    rule_id: rule.as_str().to_owned(),
                    rule: rule_words(rule.as_str()),
                    not_closed: 0,
                    closed: 0,
                })
        })
        .collect();
    rows.extend(
        counts
            .iter()
            .filter(|c| AlertRule::parse(&c.rule_id).is_none())
            .map(row),
    );
    rows
}

/// The charts; the counts are a read of the log, logged before they are shown.
pub async fn view_charts_get(officer: Officer, State(state): State<Arc<ConsoleState>>) -> Response {
    officer
        .answer(&state, Nav::Charts, async {
            let statistics = state.ledger.statistics(officer.read(), WEEKS).await?;
            let alerts = alert_rows(
                Cases::new(state.ledger.clone(), Arc::new(state.store.clone()))
                    .counts(officer.read())
                    .await?,
            );
            let table = (0..statistics.weeks.len())
                .map(|w| {
                    statistics
                        .agencies
                        .iter()
                        .map(|a| {
                            let week = &statistics.by_agency[a][w];
                            (week.disclosures, week.refusals)
                        })
                        .collect()
                })
                .collect();
            let rates = statistics
                .queries
                .iter()
                .map(|q| {
                    let rate = q
                        .rate_percent()
                        .map_or("no queries".to_owned(), |r| format!("{r:.1}%"));
                    (q.queries, q.break_glass, rate)
                })
                .collect();
            Ok(render(
                StatusCode::OK,
                &ChartsPage {
                    layout: officer.layout(&state, "Charts", Nav::Charts),
                    charts: {
                        let mut all = charts(&statistics);
                        all.push(alerts_chart(&alerts));
                        all
                    },
                    alerts,
                    agencies: statistics
                        .agencies
                        .iter()
                        .map(|a| a.replace('_', " "))
                        .collect(),
                    weeks: statistics.weeks.clone(),
                    table,
                    rates,
                },
            ))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alerts_chart_has_a_group_per_rule_and_a_bar_per_state() {
        let rows = alert_rows(vec![RuleCount {
            rule_id: "alerts.repeated_refusals".into(),
            not_closed: 2,
            closed: 1,
        }]);
        assert_eq!(rows.len(), AlertRule::ALL.len(), "every rule, with zeros");
        let chart = alerts_chart(&rows);
        assert_eq!(chart.bars.len(), 2 * AlertRule::ALL.len());
        let labels: Vec<&str> = chart.x_labels.iter().map(|l| l.text.as_str()).collect();
        assert!(labels.contains(&"Refusals"), "{labels:?}");
        let y: Vec<&str> = chart.y_labels.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(y, ["0", "1", "2"]);
        let legend: Vec<&str> = chart.legend.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(legend, ["open or assigned", "closed"]);
    }

    #[test]
    fn the_axis_ends_on_a_round_number_above_the_largest_bar() {
        assert_eq!(axis_top(0.0), 1.0);
        assert_eq!(axis_top(7.0), 10.0);
        assert_eq!(axis_top(12.0), 20.0);
        assert_eq!(axis_top(450.0), 500.0);
        assert_eq!(axis_top(100.0), 100.0);
    }
}
