//! The subject-access report: every disclosure recorded about one person, for the IG
//! officer answering that person's request (UK GDPR Art 15). Entries recording a
//! disclosure to a law-enforcement body are held back until an IG officer releases them
//! (DPA 2018 Part 3, s45(4)); the report gives only how many are held back.

use crate::domain::ledger::audit::{LAW_ENFORCEMENT_AGENCY, log_record};
use crate::domain::ledger::{Decision, Disclosed, Entry, EntryKind, Ledger};
use crate::domain::ledger::{EntryFilter, StoredEntry};
use crate::error::Error;

/// Rule id of the report's own log entry.
pub const REPORT_RULE: &str = "audit.subject_access_report";
/// Rule id naming why an entry was held back from the report.
pub const WITHHELD_RULE: &str = "audit.law_enforcement_withheld";
/// Entries read per page while building the report.
const PAGE: u32 = 1000;

/// One disclosure about the person, as the report shows it: who received what about
/// them, when and why. Third parties' data in the entry (other persons' facts, the
/// practitioner's id and free-text justification) is left out; the IG officer reads the
/// whole entry with GetEntry when the request needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedDisclosure {
    pub seq: u64,
    pub entry_id: String,
    pub recorded_at: String,
    pub kind: EntryKind,
    pub decision: Decision,
    pub agency: String,
    pub system_id: String,
    pub role: String,
    pub purpose: String,
    pub lawful_basis: String,
    pub break_glass: bool,
    /// Facts about this person released, and withheld, by the entry.
    pub released: Vec<Disclosed>,
    pub withheld: Vec<Disclosed>,
    /// A law-enforcement entry an IG officer released for subject access.
    pub released_for_subject_access: bool,
}

/// The report for one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectAccessReport {
    pub person_id: String,
    pub disclosures: Vec<ReportedDisclosure>,
    /// Law-enforcement entries about the person not yet released: a count, no content.
    pub withheld_count: u64,
    /// The disclosure-log entry recording that the report was produced.
    pub report_entry_id: String,
    /// The log size the report covers (entries after it are in the next report).
    pub covers_through_seq: u64,
}

/// Whether an entry records the IG's own work on the log (reading, exporting, reviewing,
/// releasing, reporting) rather than a disclosure about the person; such entries would
/// otherwise make each report list the previous ones and name withheld entries by id.
fn is_audit_work(entry: &Entry) -> bool {
    matches!(entry.kind, EntryKind::LogRead | EntryKind::Review)
        || entry.rule_ids.iter().any(|rule| rule.starts_with("audit."))
}

/// The facts about any of `persons` (the persons resolved to the one reported on).
fn about(persons: &[String], facts: &[Disclosed]) -> Vec<Disclosed> {
    facts
        .iter()
        .filter(|fact| persons.contains(&fact.person_id))
        .cloned()
        .collect()
}

impl Ledger {
    /// Every disclosure about `person_id` up to the latest checkpoint, law-enforcement
    /// entries held back unless released; the report is logged (`read` describes the IG
    /// officer) before it is returned.
    pub async fn subject_access_report(
        &self,
        mut read: Entry,
        person_id: &str,
    ) -> Result<SubjectAccessReport, Error> {
        let person_id = person_id.trim();
        if person_id.is_empty() {
            return Err(Error::invalid(
                "person_id",
                "must name the person the report is about",
            ));
        }
        let through = self
            .store()
            .latest_checkpoint()
            .await?
            .map_or(0, |checkpoint| checkpoint.tree_size);
        // Every agency's record of the person: disclosures follow the resolved person.
        let persons = self.store().identity_members(person_id).await?;
        let mut about_person: Vec<StoredEntry> = Vec::new();
        let mut filter = EntryFilter {
            person_id: Some(person_id.to_owned()),
            also_person_ids: persons
                .iter()
                .filter(|p| *p != person_id)
                .cloned()
                .collect(),
            through_seq: Some(through),
            limit: PAGE,
            ..Default::default()
        };
        loop {
            let page = self.store().entries(&filter).await?;
            let Some(last) = page.last() else { break };
            filter.after_seq = last.seq;
            let full = page.len() == PAGE as usize;
            about_person.extend(page.into_iter().filter(|s| !is_audit_work(&s.entry)));
            if !full {
                break;
            }
        }
        let law_enforcement: Vec<String> = about_person
            .iter()
            .filter(|s| s.entry.agency == LAW_ENFORCEMENT_AGENCY)
            .map(|s| s.entry.entry_id.clone())
            .collect();
        let released = self
            .store()
            .released_for_subject_access(&law_enforcement)
            .await?;
        let (mut reported, mut withheld) = (Vec::new(), Vec::new());
        for stored in about_person {
            let is_law_enforcement = stored.entry.agency == LAW_ENFORCEMENT_AGENCY;
            let was_released = released.contains(&stored.entry.entry_id);
            if is_law_enforcement && !was_released {
                withheld.push(stored);
            } else {
                reported.push((stored, was_released));
            }
        }

        read.kind = EntryKind::LogRead;
        read.decision = Decision::Released;
        read.rule_ids = vec![REPORT_RULE.into()];
        read.subject_person_id = person_id.to_owned();
        read.released = reported
            .iter()
            .map(|(stored, _)| log_record(stored, REPORT_RULE))
            .collect();
        read.withheld = withheld
            .iter()
            .map(|stored| Disclosed {
                level: "nothing".into(),
                ..log_record(stored, WITHHELD_RULE)
            })
            .collect();
        read.reason = format!(
            "subject-access report: {} entries reported, {} law-enforcement entries held back",
            reported.len(),
            withheld.len()
        );
        let report_entry_id = read.entry_id.clone();
        self.append(read).await?;

        Ok(SubjectAccessReport {
            person_id: person_id.to_owned(),
            disclosures: reported
                .into_iter()
                .map(|(stored, released_for_subject_access)| {
                    let e = stored.entry;
                    ReportedDisclosure {
                        seq: stored.seq,
                        released: about(&persons, &e.released),
                        withheld: about(&persons, &e.withheld),
                        entry_id: e.entry_id,
                        recorded_at: e.recorded_at,
                        kind: e.kind,
                        decision: e.decision,
                        agency: e.agency,
                        system_id: e.system_id,
                        role: e.role,
                        purpose: e.purpose,
                        lawful_basis: e.lawful_basis,
                        break_glass: e.break_glass,
                        released_for_subject_access,
                    }
                })
                .collect(),
            withheld_count: withheld.len() as u64,
            report_entry_id,
            covers_through_seq: through,
        })
    }
}
