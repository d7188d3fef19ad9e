//! Exports of the disclosure log, streamed a page at a time: JSON lines (every entry's
//! canonical text and hashes, then the signed checkpoint, so that an unfiltered export can
//! be verified offline with the public key alone), CSV (one row per entry, stable columns,
//! RFC 4180 quoting) and FHIR R4 AuditEvent resources as NDJSON, shaped after IHE BALP.
//! The export is itself logged before the first line leaves.

use std::io::BufRead;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::domain::ledger::merkle::Hash;
use crate::domain::ledger::verify::{Mismatch, Verified, Verifier};
use crate::domain::ledger::{Checkpoint, Decision, Entry, EntryKind, Ledger, fhir, now};
use crate::domain::ledger::{EntryFilter, StoredEntry};
use crate::domain::progress::{OnProgress, Progress, unwatched};
use crate::error::Error;
use crate::store::Store;

vocabulary! {
    /// How exported entries are written.
    ExportFormat {
        /// JSON lines: a header, one record per entry, the signed checkpoint.
        Jsonl => "jsonl",
        /// CSV with a header row, one row per entry.
        Csv => "csv",
        /// FHIR R4 AuditEvent resources, one per line (NDJSON).
        Fhir => "fhir",
    }
}

/// Rule id of an export's own log entry.
pub const EXPORT_RULE: &str = "audit.export";
/// The `format` a JSON-lines export names in its header.
pub const JSONL_FORMAT: &str = "safegate-disclosure-log";
/// Entries formatted per streamed chunk.
const PAGE: u32 = 200;
/// Chunks formatted ahead of a slow reader.
const AHEAD: usize = 4;

/// An export under way: chunks of whole lines, in order, ending after the last entry
/// (and, for JSON lines, the signed checkpoint). An `Err` ends the stream.
#[derive(Debug)]
pub struct Export {
    pub format: ExportFormat,
    /// The disclosure-log entry recording the export.
    pub export_entry_id: String,
    /// The log size the export covers: entries after it are not included.
    pub tree_size: u64,
    pub chunks: mpsc::Receiver<Result<String, Error>>,
}

/// One line of a JSON-lines export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum ExportRecord {
    Header {
        format: String,
        version: u32,
        exported_at: String,
        export_entry_id: String,
        tree_size: u64,
        /// True when no filter was applied: only then can the export be verified offline.
        complete: bool,
        filters: ExportFilters,
    },
    Entry {
        seq: u64,
        entry_id: String,
        /// The canonical encoding that was hashed, byte for byte.
        canonical: String,
        leaf_hash: String,
        chain_hash: String,
    },
    Checkpoint {
        tree_size: u64,
        /// Hex Merkle root.
        root_hash: String,
        signed_at: String,
        /// Base64 Ed25519 signature over `signed_text`.
        signature: String,
        key_id: String,
        signed_text: String,
    },
}

/// The filters an export applied, as its header states them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFilters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practitioner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass_unreviewed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_time: Option<String>,
}

impl ExportFilters {
    fn of(filter: &EntryFilter) -> Self {
        ExportFilters {
            person_id: filter.person_id.clone(),
            agency: filter.agency.clone(),
            system_id: filter.system_id.clone(),
            practitioner_id: filter.practitioner_id.clone(),
            purpose: filter.purpose.clone(),
            kind: filter.kind.clone(),
            decision: filter.decision.clone(),
            break_glass: filter.break_glass,
            break_glass_unreviewed: filter.break_glass_unreviewed,
            from_time: filter.from.clone(),
            to_time: filter.to.clone(),
        }
    }

    /// Whether nothing was filtered out.
    pub fn is_empty(&self) -> bool {
        *self == ExportFilters::default()
    }

    /// The names of the filters applied, for messages (their values may be personal data).
    pub fn names(&self) -> Vec<&'static str> {
        let set = [
            ("person_id", self.person_id.is_some()),
            ("agency", self.agency.is_some()),
            ("system_id", self.system_id.is_some()),
            ("practitioner_id", self.practitioner_id.is_some()),
            ("purpose", self.purpose.is_some()),
            ("kind", self.kind.is_some()),
            ("decision", self.decision.is_some()),
            ("break_glass", self.break_glass.is_some()),
            ("break_glass_unreviewed", self.break_glass_unreviewed),
            ("from_time", self.from_time.is_some()),
            ("to_time", self.to_time.is_some()),
        ];
        set.iter()
            .filter(|(_, applied)| *applied)
            .map(|(name, _)| *name)
            .collect()
    }
}

impl Ledger {
    /// Logs the export (`read` describes who exports and why), then streams every entry
    /// matching `filter` up to the latest signed checkpoint, the export's own entry
    /// included. Paging fields of `filter` are ignored.
    pub async fn export(
        &self,
        read: Entry,
        filter: &EntryFilter,
        format: ExportFormat,
    ) -> Result<Export, Error> {
        self.export_reporting(read, filter, format, Box::new(unwatched))
            .await
    }

    /// [`Ledger::export`], telling `progress` after each page how far through the log the
    /// export has read, of the size it covers. A filtered export reads every entry up to
    /// that size and writes only the matching ones, so it counts the entries read.
    pub async fn export_reporting(
        &self,
        mut read: Entry,
        filter: &EntryFilter,
        format: ExportFormat,
        progress: Box<dyn FnMut(Progress) + Send>,
    ) -> Result<Export, Error> {
        let filters = ExportFilters::of(filter);
        read.kind = EntryKind::Export;
        read.decision = Decision::Released;
        read.rule_ids = vec![EXPORT_RULE.into()];
        read.subject_person_id = filter.person_id.clone().unwrap_or_default();
        read.recipient_system = read.system_id.clone();
        read.reason = match filters.names().as_slice() {
            [] => format!("disclosure log exported as {format}, every entry"),
            names => format!(
                "disclosure log exported as {format}, filtered by {}",
                names.join(", ")
            ),
        };
        let export_entry_id = read.entry_id.clone();
        self.append(read).await?;
        // The checkpoint signed with (or after) the export's own entry: the snapshot.
        let checkpoint = self
            .store()
            .latest_checkpoint()
            .await?
            .ok_or_else(|| Error::internal("no checkpoint after appending the export entry"))?;
        let snapshot = EntryFilter {
            after_seq: 0,
            through_seq: Some(checkpoint.tree_size),
            limit: PAGE,
            ..filter.clone()
        };
        let header = ExportRecord::Header {
            format: JSONL_FORMAT.into(),
            version: 1,
            exported_at: now(),
            export_entry_id: export_entry_id.clone(),
            tree_size: checkpoint.tree_size,
            complete: filters.is_empty(),
            filters,
        };
        let (sender, chunks) = mpsc::channel(AHEAD);
        let tree_size = checkpoint.tree_size;
        tokio::spawn(stream_export(
            self.store().clone(),
            snapshot,
            format,
            header,
            checkpoint,
            sender,
            progress,
        ));
        Ok(Export {
            format,
            export_entry_id,
            tree_size,
            chunks,
        })
    }
}

async fn stream_export(
    store: Store,
    mut filter: EntryFilter,
    format: ExportFormat,
    header: ExportRecord,
    checkpoint: Checkpoint,
    sender: mpsc::Sender<Result<String, Error>>,
    mut progress: Box<dyn FnMut(Progress) + Send>,
) {
    let total = Some(checkpoint.tree_size);
    let opening = match format {
        ExportFormat::Jsonl => json_line(&header),
        ExportFormat::Csv => csv_header(),
        ExportFormat::Fhir => String::new(),
    };
    if !opening.is_empty() && sender.send(Ok(opening)).await.is_err() {
        return;
    }
    loop {
        let page = match store.entries(&filter).await {
            Ok(page) => page,
            Err(error) => {
                let _ = sender.send(Err(error)).await;
                return;
            }
        };
        let Some(last) = page.last() else { break };
        filter.after_seq = last.seq;
        let full = page.len() == PAGE as usize;
        let chunk: String = page.iter().map(|stored| line(format, stored)).collect();
        if sender.send(Ok(chunk)).await.is_err() {
            // The reader went away; nothing more to do.
            return;
        }
        progress(Progress {
            done: filter.after_seq,
            total,
        });
        if !full {
            break;
        }
    }
    // A filtered export's last page may end before the covered size: it is all read.
    progress(Progress {
        done: checkpoint.tree_size,
        total,
    });
    if format == ExportFormat::Jsonl {
        let _ = sender
            .send(Ok(json_line(&checkpoint_record(&checkpoint))))
            .await;
    }
}

/// One entry in `format`, ending in its line break.
pub fn line(format: ExportFormat, stored: &StoredEntry) -> String {
    match format {
        ExportFormat::Jsonl => json_line(&ExportRecord::Entry {
            seq: stored.seq,
            entry_id: stored.entry.entry_id.clone(),
            canonical: stored.text.clone(),
            leaf_hash: stored.leaf_hash.clone(),
            chain_hash: stored.chain_hash.clone(),
        }),
        ExportFormat::Csv => csv_row(stored),
        ExportFormat::Fhir => {
            let mut text = fhir::audit_event(stored).to_string();
            text.push('\n');
            text
        }
    }
}

fn json_line(record: &ExportRecord) -> String {
    // A record of strings and numbers always serialises.
    let mut text = serde_json::to_string(record).unwrap_or_default();
    text.push('\n');
    text
}

fn checkpoint_record(checkpoint: &Checkpoint) -> ExportRecord {
    ExportRecord::Checkpoint {
        tree_size: checkpoint.tree_size,
        root_hash: hex::encode(checkpoint.root),
        signed_at: checkpoint.signed_at.clone(),
        signature: B64.encode(&checkpoint.signature),
        key_id: checkpoint.key_id.clone(),
        signed_text: checkpoint.text(),
    }
}

/// The CSV columns, in order; they are part of the export's contract.
pub const CSV_COLUMNS: &[&str] = &[
    "seq",
    "entry_id",
    "recorded_at",
    "kind",
    "decision",
    "rpc",
    "agency",
    "system_id",
    "certificate_sha256",
    "practitioner_id",
    "role",
    "purpose",
    "lawful_basis",
    "justification",
    "break_glass",
    "subject_person_id",
    "linked_person_ids",
    "released",
    "withheld",
    "rule_ids",
    "policy_version",
    "reason",
    "recipient_system",
    "trace_id",
    "leaf_hash",
    "chain_hash",
    "review_outcome",
    "reviewed_at",
    "reviewer_id",
    "review_note",
    // Which of this row's cells were prefixed with `'` because they would start a
    // formula in a spreadsheet (OWASP CSV injection): strip that `'` to get the value.
    "formula_escaped_columns",
];

/// What a spreadsheet reads as the start of a formula (OWASP CSV injection).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Prefixes `'` to a cell a spreadsheet would run as a formula; whether it did.
fn defuse(cell: &mut String) -> bool {
    if cell.starts_with(FORMULA_STARTS) {
        cell.insert(0, '\'');
        return true;
    }
    false
}

fn csv_header() -> String {
    csv_record(CSV_COLUMNS.iter().map(|c| (*c).to_owned()))
}

fn csv_row(stored: &StoredEntry) -> String {
    let e = &stored.entry;
    let review = stored.latest_review.as_ref();
    // Facts as compact JSON arrays: exact and machine-readable inside one cell.
    let facts = |facts: &[crate::domain::ledger::Disclosed]| {
        serde_json::to_string(facts).unwrap_or_default()
    };
    let mut cells = [
        stored.seq.to_string(),
        e.entry_id.clone(),
        e.recorded_at.clone(),
        e.kind.as_str().to_owned(),
        e.decision.as_str().to_owned(),
        e.rpc.clone(),
        e.agency.clone(),
        e.system_id.clone(),
        e.certificate_sha256.clone(),
        e.practitioner_id.clone(),
        e.role.clone(),
        e.purpose.clone(),
        e.lawful_basis.clone(),
        e.justification.clone(),
        e.break_glass.to_string(),
        e.subject_person_id.clone(),
        e.linked_person_ids.join(";"),
        facts(&e.released),
        facts(&e.withheld),
        e.rule_ids.join(";"),
        e.policy_version.clone(),
        e.reason.clone(),
        e.recipient_system.clone(),
        e.trace_id.clone(),
        stored.leaf_hash.clone(),
        stored.chain_hash.clone(),
        review
            .map(|r| r.outcome.as_str().to_owned())
            .unwrap_or_default(),
        review.map(|r| r.reviewed_at.clone()).unwrap_or_default(),
        review.map(|r| r.reviewer_id.clone()).unwrap_or_default(),
        review.map(|r| r.note.clone()).unwrap_or_default(),
    ];
    let escaped: Vec<&str> = cells
        .iter_mut()
        .zip(CSV_COLUMNS)
        .filter_map(|(cell, column)| defuse(cell).then_some(*column))
        .collect();
    let escaped = escaped.join(";");
    csv_record(cells.into_iter().chain(std::iter::once(escaped)))
}

/// One RFC 4180 record: fields holding a comma, double quote, CR or LF are quoted, with
/// quotes doubled; the record ends in CRLF.
fn csv_record(fields: impl Iterator<Item = String>) -> String {
    let mut record = fields
        .map(|field| {
            if field.contains([',', '"', '\r', '\n']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    record.push_str("\r\n");
    record
}

/// Why an export file could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum ExportCheck {
    /// An entry, or the file around it, does not match: it was edited, reordered or cut.
    #[error("{0}")]
    Mismatch(Mismatch),
    /// The export is a filtered subset: the hash chain and the Merkle root cover every
    /// entry, so only an unfiltered export can be verified offline.
    #[error(
        "this export is filtered (by {0}); offline verification needs an unfiltered export, \
         because the hash chain and the signed Merkle root cover every entry of the log: \
         export again without filters"
    )]
    Filtered(String),
    /// The file is not a safegate JSON-lines export.
    #[error("not a safegate JSON-lines export: {0}")]
    NotAnExport(String),
    #[error("reading the export")]
    Read(#[from] std::io::Error),
}

/// Verifies an unfiltered JSON-lines export with the raw Ed25519 `public_key` alone:
/// every entry's canonical encoding, leaf and chain hash, the order, the Merkle root and
/// the signed checkpoint. Names the first entry (or line) that does not match.
pub fn verify_export(export: impl BufRead, public_key: &[u8]) -> Result<Verified, ExportCheck> {
    verify_export_reporting(export, public_key, &mut unwatched)
}

/// [`verify_export`], telling `progress` after each entry how many are checked, of the
/// size the export's header says it covers.
pub fn verify_export_reporting(
    export: impl BufRead,
    public_key: &[u8],
    progress: OnProgress<'_>,
) -> Result<Verified, ExportCheck> {
    let mut lines = export.lines().enumerate();
    let edited = |line: usize, seq: u64, problem: String| {
        ExportCheck::Mismatch(Mismatch {
            seq,
            entry_id: String::new(),
            problem: format!("line {}: {problem}", line + 1),
        })
    };
    let Some((_, first)) = lines.next() else {
        return Err(ExportCheck::NotAnExport("the file is empty".into()));
    };
    let total = match serde_json::from_str::<ExportRecord>(&first?) {
        Ok(ExportRecord::Header {
            format,
            filters,
            tree_size,
            ..
        }) if format == JSONL_FORMAT => {
            if !filters.is_empty() {
                return Err(ExportCheck::Filtered(filters.names().join(", ")));
            }
            tree_size
        }
        _ => {
            return Err(ExportCheck::NotAnExport(
                "the first line is not its header".into(),
            ));
        }
    };
    let mut verifier = Verifier::new();
    let mut next_seq = 1;
    let mut checkpoint = None;
    for (number, text) in lines {
        let text = text?;
        if checkpoint.is_some() {
            return Err(edited(
                number,
                next_seq,
                "a record follows the signed checkpoint: lines were added".into(),
            ));
        }
        let record = serde_json::from_str::<ExportRecord>(&text).map_err(|_| {
            edited(
                number,
                next_seq,
                "not a valid export record: the line was edited".into(),
            )
        })?;
        match record {
            ExportRecord::Entry {
                seq,
                entry_id,
                canonical,
                leaf_hash,
                chain_hash,
            } => {
                let fail = |problem: &str| {
                    ExportCheck::Mismatch(Mismatch {
                        seq,
                        entry_id: entry_id.clone(),
                        problem: format!("line {}: {problem}", number + 1),
                    })
                };
                let entry: Entry = serde_json::from_str(&canonical).map_err(|_| {
                    fail("the canonical text is not a valid entry encoding: it was edited")
                })?;
                if entry.entry_id != entry_id {
                    return Err(fail(
                        "the entry_id differs from the hashed entry's: the line was edited",
                    ));
                }
                verifier
                    .push_entry(seq, &entry, canonical.as_bytes(), &leaf_hash, &chain_hash)
                    .map_err(|mismatch| {
                        ExportCheck::Mismatch(Mismatch {
                            problem: format!("line {}: {}", number + 1, mismatch.problem),
                            ..mismatch
                        })
                    })?;
                next_seq = seq + 1;
                progress(Progress {
                    done: verifier.entries(),
                    total: Some(total),
                });
            }
            ExportRecord::Checkpoint {
                tree_size,
                root_hash,
                signed_at,
                signature,
                key_id,
                ..
            } => {
                let unreadable = || {
                    edited(
                        number,
                        tree_size,
                        "the checkpoint's root or signature is malformed: it was edited".into(),
                    )
                };
                let root: Hash = hex::decode(&root_hash)
                    .ok()
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or_else(unreadable)?;
                let signature = B64.decode(&signature).map_err(|_| unreadable())?;
                checkpoint = Some(Checkpoint {
                    tree_size,
                    root,
                    signed_at,
                    signature,
                    key_id,
                });
            }
            ExportRecord::Header { .. } => {
                return Err(edited(
                    number,
                    next_seq,
                    "a second header: exports were concatenated or edited".into(),
                ));
            }
        }
    }
    let Some(checkpoint) = checkpoint else {
        return Err(ExportCheck::Mismatch(Mismatch {
            seq: next_seq,
            entry_id: String::new(),
            problem: "the export ends without its signed checkpoint: it was cut short".into(),
        }));
    };
    verifier
        .finish(Some(&checkpoint), public_key)
        .map_err(ExportCheck::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_rfc_4180_needs_it() {
        let record = csv_record(
            [
                "plain".to_owned(),
                "a, b".to_owned(),
                "say \"hi\"".to_owned(),
                "two\nlines".to_owned(),
                String::new(),
            ]
            .into_iter(),
        );
        assert_eq!(
            record,
            "plain,\"a, b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n"
        );
    }

    #[test]
    fn cells_that_would_start_a_formula_are_defused() {
        for formula in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            let mut cell = formula.to_owned();
            assert!(defuse(&mut cell), "{formula:?}");
            assert_eq!(cell, format!("'{formula}"));
        }
        for safe in ["plain", "2026-12-01", "", "a=b", "'quoted"] {
            let mut cell = safe.to_owned();
            assert!(!defuse(&mut cell), "{safe:?}");
            assert_eq!(cell, safe);
        }
    }

    #[test]
    fn a_filtered_export_is_refused_by_name() {
        let header = ExportRecord::Header {
            format: JSONL_FORMAT.into(),
            version: 1,
            exported_at: now(),
            export_entry_id: "x".into(),
            tree_size: 1,
            complete: false,
            filters: ExportFilters {
                kind: Some("query".into()),
                ..Default::default()
            },
        };
        let text = json_line(&header);
        match verify_export(text.as_bytes(), &[0; 32]) {
            Err(ExportCheck::Filtered(names)) => assert_eq!(names, "kind"),
            other => panic!("expected a filtered-export refusal, got {other:?}"),
        }
    }
}
