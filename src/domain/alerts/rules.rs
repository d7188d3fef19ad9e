//! The privacy alert rules' file (`policies/alerts.toml`): each rule's id, why in words and
//! thresholds. Its version is the SHA-256 of the file's bytes, recorded with every alert.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::domain::Role;

vocabulary! {
    /// The rules, by the id each has in the file.
    AlertRule {
        /// Break-glass not followed by any involvement from the same system in time.
        BreakGlassWithoutInvolvement => "alerts.break_glass_without_involvement",
        /// An involvement opened shortly before a query of the person and ended soon after.
        InvolvementWindow => "alerts.involvement_window",
        /// A practitioner's daily queries far above their own usual.
        VolumeAboveUsual => "alerts.volume_above_usual",
        /// Repeated refusals for one practitioner (probing).
        RepeatedRefusals => "alerts.repeated_refusals",
        /// Queries out of hours.
        OutOfHours => "alerts.out_of_hours",
    }
}

/// Why the rules file cannot be used; names the rule and the field.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read the alert rules file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the alert rules file is not valid: {0}")]
    Parse(String),
    #[error("alert rule [{section}]: {reason}")]
    Invalid {
        section: &'static str,
        reason: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassWithoutInvolvement {
    pub id: String,
    pub why: String,
    pub deadline_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvolvementWindow {
    pub id: String,
    pub why: String,
    pub opened_before_query_minutes: u32,
    pub ended_after_query_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeAboveUsual {
    pub id: String,
    pub why: String,
    pub baseline_days: u32,
    pub min_active_days: u32,
    pub factor: f64,
    pub min_excess: u32,
    pub new_practitioner_daily_limit: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatedRefusals {
    pub id: String,
    pub why: String,
    pub refusals: u32,
    pub window_minutes: u32,
    pub counted_rules: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfHours {
    pub id: String,
    pub why: String,
    pub start: String,
    pub end: String,
    pub weekdays_only: bool,
    pub roles: Vec<String>,
    /// `start` and `end` in minutes after local midnight.
    #[serde(skip)]
    pub start_minute: u32,
    #[serde(skip)]
    pub end_minute: u32,
    #[serde(skip)]
    pub role_set: Vec<Role>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    break_glass_without_involvement: BreakGlassWithoutInvolvement,
    involvement_window: InvolvementWindow,
    volume_above_usual: VolumeAboveUsual,
    repeated_refusals: RepeatedRefusals,
    out_of_hours: OutOfHours,
}

/// The rules in force, with their version.
#[derive(Debug, Clone)]
pub struct AlertRules {
    pub break_glass_without_involvement: BreakGlassWithoutInvolvement,
    pub involvement_window: InvolvementWindow,
    pub volume_above_usual: VolumeAboveUsual,
    pub repeated_refusals: RepeatedRefusals,
    pub out_of_hours: OutOfHours,
    version: String,
}

fn invalid(section: &'static str, reason: impl Into<String>) -> RulesError {
    RulesError::Invalid {
        section,
        reason: reason.into(),
    }
}

/// `HH:MM` as minutes after midnight.
fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

impl AlertRules {
    /// Parses the rules file; the version is the lowercase hex SHA-256 of `text`.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let mut file: File = toml::from_str(text).map_err(|e| RulesError::Parse(e.to_string()))?;
        let ids: [(&'static str, &str, AlertRule, &str); 5] = [
            (
                "break_glass_without_involvement",
                &file.break_glass_without_involvement.id,
                AlertRule::BreakGlassWithoutInvolvement,
                &file.break_glass_without_involvement.why,
            ),
            (
                "involvement_window",
                &file.involvement_window.id,
                AlertRule::InvolvementWindow,
                &file.involvement_window.why,
            ),
            (
                "volume_above_usual",
                &file.volume_above_usual.id,
                AlertRule::VolumeAboveUsual,
                &file.volume_above_usual.why,
            ),
            (
                "repeated_refusals",
                &file.repeated_refusals.id,
                AlertRule::RepeatedRefusals,
                &file.repeated_refusals.why,
            ),
            (
                "out_of_hours",
                &file.out_of_hours.id,
                AlertRule::OutOfHours,
                &file.out_of_hours.why,
            ),
        ];
        for (section, id, rule, why) in ids {
            if id != rule.as_str() {
                return Err(invalid(section, format!("id must be `{rule}`")));
            }
            if why.trim().is_empty() {
                return Err(invalid(section, "`why` must say why, in words"));
            }
        }
        let b = &file.break_glass_without_involvement;
        if b.deadline_hours == 0 {
            return Err(invalid(
                "break_glass_without_involvement",
                "deadline_hours must be at least 1",
            ));
        }
        let w = &file.involvement_window;
        if w.opened_before_query_minutes == 0 || w.ended_after_query_hours == 0 {
            return Err(invalid(
                "involvement_window",
                "opened_before_query_minutes and ended_after_query_hours must be at least 1",
            ));
        }
        let v = &file.volume_above_usual;
        if v.baseline_days == 0 || v.min_active_days == 0 || v.min_active_days > v.baseline_days {
            return Err(invalid(
                "volume_above_usual",
                "need 1 <= min_active_days <= baseline_days",
            ));
        }
        if !(v.factor.is_finite() && v.factor >= 1.0) {
            return Err(invalid("volume_above_usual", "factor must be at least 1.0"));
        }
        if v.new_practitioner_daily_limit == 0 {
            return Err(invalid(
                "volume_above_usual",
                "new_practitioner_daily_limit must be at least 1",
            ));
        }
        let r = &file.repeated_refusals;
        if r.refusals < 2 || r.window_minutes == 0 {
            return Err(invalid(
                "repeated_refusals",
                "refusals must be at least 2 and window_minutes at least 1",
            ));
        }
        let o = &mut file.out_of_hours;
        match (minutes(&o.start), minutes(&o.end)) {
            (Some(start), Some(end)) if start < end => {
                o.start_minute = start;
                o.end_minute = end;
            }
            _ => {
                return Err(invalid(
                    "out_of_hours",
                    "start and end must be HH:MM with start before end",
                ));
            }
        }
        o.role_set = o
            .roles
            .iter()
            .map(|r| {
                Role::parse(r).ok_or_else(|| {
                    invalid(
                        "out_of_hours",
                        format!("role `{r}` is not one of: {}", Role::expected()),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AlertRules {
            break_glass_without_involvement: file.break_glass_without_involvement,
            involvement_window: file.involvement_window,
            volume_above_usual: file.volume_above_usual,
            repeated_refusals: file.repeated_refusals,
            out_of_hours: file.out_of_hours,
            version: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// Reads and parses the rules file.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The rules' version: the lowercase hex SHA-256 of the file's text.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The words saying why `rule` matters.
    pub fn why(&self, rule: AlertRule) -> &str {
        match rule {
            AlertRule::BreakGlassWithoutInvolvement => &self.break_glass_without_involvement.why,
            AlertRule::InvolvementWindow => &self.involvement_window.why,
            AlertRule::VolumeAboveUsual => &self.volume_above_usual.why,
            AlertRule::RepeatedRefusals => &self.repeated_refusals.why,
            AlertRule::OutOfHours => &self.out_of_hours.why,
        }
    }

    /// How far back the engine needs the log to rebuild its state after a restart, in
    /// seconds: the longest window any rule looks back over.
    pub fn lookback_secs(&self) -> i64 {
        let days = i64::from(self.volume_above_usual.baseline_days + 1) * 86_400;
        let deadline = i64::from(self.break_glass_without_involvement.deadline_hours) * 3_600;
        let refusals = i64::from(self.repeated_refusals.window_minutes) * 60;
        days.max(deadline).max(refusals)
    }
}
