//! The IG officer's view of the disclosure log: list, read, prove and verify. Only the
//! `ig_officer` role with purpose `audit` may read it; it returns the log's own fields,
//! never case data; every read is itself written to the log before it is answered.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::ledger::bound::{BoundRows, BoundTable};
use crate::domain::ledger::merkle::Hash;
use crate::domain::ledger::review::{
    Annotation, BreakGlassReview, RELEASE_RULE, REVIEW_RULE, ReviewOutcome, SubjectAccessRelease,
};
use crate::domain::ledger::rotation::KeyChanges;
use crate::domain::ledger::verify::{Mismatch, Verified, Verifier};
use crate::domain::ledger::{Checkpoint, Decision, Disclosed, Entry, EntryKind, Ledger};
use crate::domain::ledger::{EntryFilter, StoredEntry};
use crate::domain::progress::{OnProgress, Progress, unwatched};
use crate::domain::{Practitioner, Purpose, Role};
use crate::error::Error;
use crate::store::Store;

/// Rows read per page while verifying.
const VERIFY_PAGE: u32 = 2_000;
/// Pages read ahead of the one being verified.
const VERIFY_PAGES_AHEAD: usize = 2;
/// Longest review or release note, in characters.
const NOTE_MAX: usize = 4000;
/// The agency whose entries are held back from subject-access reports until released:
/// disclosures to a law-enforcement body (DPA 2018 Part 3, s45(4) restrictions).
pub const LAW_ENFORCEMENT_AGENCY: &str = "police";

/// The lawful basis every read of the log records.
pub const LOG_READ_LAWFUL_BASIS: &str = "UK GDPR Art 6(1)(c); DPA 2018 s62 (logging)";
/// Largest page of entries a search returns.
pub const PAGE_MAX: u32 = 1000;
/// The page size of a search that names none.
pub const PAGE_DEFAULT: u32 = 100;

/// Who reads the log and through which door, as the entry of each read records them:
/// the gRPC API and the console describe their readers with this.
#[derive(Debug, Clone)]
pub struct Reader {
    pub agency: String,
    pub system_id: String,
    pub certificate_sha256: String,
    pub practitioner_id: String,
    pub role: Role,
    /// The RPC or console page read, e.g. `console GET /entries/{id}`.
    pub rpc: String,
    pub trace_id: String,
}

impl Reader {
    /// Refuses anyone but an IG officer (the purpose is always `audit` here).
    pub fn authorise(&self) -> Result<(), Error> {
        authorise(&Practitioner {
            id: self.practitioner_id.clone(),
            role: self.role,
            purpose: Some(Purpose::Audit),
            justification: None,
            break_glass: false,
        })
    }

    /// A new log-read entry describing this reader; each read fills in what it showed.
    pub fn entry(&self) -> Entry {
        let mut entry = Entry::new(EntryKind::LogRead, Decision::Released);
        entry.agency = self.agency.clone();
        entry.system_id = self.system_id.clone();
        entry.certificate_sha256 = self.certificate_sha256.clone();
        entry.practitioner_id = self.practitioner_id.clone();
        entry.role = self.role.as_str().to_owned();
        entry.purpose = Purpose::Audit.as_str().to_owned();
        entry.rpc = self.rpc.clone();
        entry.trace_id = self.trace_id.clone();
        entry.lawful_basis = LOG_READ_LAWFUL_BASIS.into();
        entry
    }
}

/// A search of the log as an IG officer states it: each text field empty when unused,
/// times RFC 3339, and a page token from the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSearch {
    pub person_id: String,
    pub agency: String,
    pub system_id: String,
    pub practitioner_id: String,
    pub purpose: String,
    pub kind: String,
    pub decision: String,
    pub break_glass: Option<bool>,
    pub break_glass_unreviewed: bool,
    pub from_time: String,
    pub to_time: String,
    pub page_size: u32,
    pub page_token: String,
}

impl LogSearch {
    /// The store filter, or INVALID_ARGUMENT naming the field (`page_token`, `page_size`).
    pub fn filter(&self) -> Result<EntryFilter, Error> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let after_seq = match self.page_token.trim() {
            "" => 0,
            token => token.parse::<u64>().map_err(|_| {
                Error::invalid("page_token", "must be a token from a previous page")
            })?,
        };
        let limit = match self.page_size {
            0 => PAGE_DEFAULT,
            n if n <= PAGE_MAX => n,
            _ => {
                return Err(Error::invalid(
                    "page_size",
                    format!("must be at most {PAGE_MAX}"),
                ));
            }
        };
        Ok(EntryFilter {
            person_id: text(&self.person_id),
            also_person_ids: Vec::new(),
            agency: text(&self.agency),
            system_id: text(&self.system_id),
            practitioner_id: text(&self.practitioner_id),
            purpose: text(&self.purpose),
            kind: text(&self.kind),
            decision: text(&self.decision),
            break_glass: self.break_glass,
            break_glass_unreviewed: self.break_glass_unreviewed,
            from: text(&self.from_time),
            to: text(&self.to_time),
            after_seq,
            through_seq: None,
            limit,
        })
    }
}

/// The token of the page after `entries` (listed under `filter`), empty on the last.
pub fn next_page_token(filter: &EntryFilter, entries: &[StoredEntry]) -> String {
    match entries.last() {
        Some(last) if entries.len() == filter.limit as usize => last.seq.to_string(),
        _ => String::new(),
    }
}

/// An entry with its inclusion proof, checked against the latest signed checkpoint.
#[derive(Debug, Clone)]
pub struct ProvenEntry {
    pub stored: StoredEntry,
    /// The latest checkpoint (none while the log has none).
    pub checkpoint: Option<Checkpoint>,
    /// The proof in the checkpoint's tree (none while the entry is beyond it).
    pub inclusion: Option<Inclusion>,
    /// Whether the checkpoint's signature verifies with the log's key.
    pub signature_valid: bool,
    /// Whether the proof leads from the entry's stored text to the checkpoint's root.
    pub proof_valid: bool,
}

/// Refuses anyone but an IG officer acting for the purpose of audit.
pub fn authorise(practitioner: &Practitioner) -> Result<(), Error> {
    if practitioner.role != Role::IgOfficer {
        return Err(Error::PermissionDenied {
            rule: "audit.ig_officer_only",
            reason: format!(
                "the disclosure log is read by the ig_officer role only, not `{}`",
                practitioner.role
            ),
        });
    }
    if practitioner.purpose != Some(Purpose::Audit) {
        return Err(Error::PermissionDenied {
            rule: "audit.purpose_audit",
            reason: "reading the disclosure log needs the purpose `audit`".into(),
        });
    }
    Ok(())
}

/// What a logged verification found: the log's own verification, the checkpoint it
/// verified against and, with witnesses, what they cosigned.
pub type VerifyOutcome = (
    Result<Verified, Mismatch>,
    Option<Checkpoint>,
    Option<crate::domain::ledger::witnessing::Witnessed>,
);

/// A proof that an entry is in the log.
#[derive(Debug, Clone)]
pub struct Inclusion {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub path: Vec<Hash>,
    pub root: Hash,
}

/// A proof that an earlier log is a prefix of a later one.
#[derive(Debug, Clone)]
pub struct Consistency {
    pub old_size: u64,
    pub size: u64,
    pub old_root: Hash,
    pub root: Hash,
    pub proof: Vec<Hash>,
}

impl Ledger {
    /// Writes the log-read entry (`read` describes who read and why) for `entries`.
    pub(crate) async fn record_read(
        &self,
        mut read: Entry,
        entries: &[&StoredEntry],
    ) -> Result<(), Error> {
        read.kind = EntryKind::LogRead;
        read.decision = Decision::Released;
        read.rule_ids = vec!["audit.ig_officer_only".into()];
        read.released = entries
            .iter()
            .map(|stored| Disclosed {
                person_id: stored.entry.subject_person_id.clone(),
                record_id: stored.entry.entry_id.clone(),
                category: "disclosure_log".into(),
                level: "detail".into(),
                rule_id: "audit.ig_officer_only".into(),
            })
            .collect();
        self.append(read).await.map(|_| ())
    }

    /// The stored entry with this id, or NOT_FOUND naming the field.
    async fn entry_named(&self, entry_id: &str) -> Result<StoredEntry, Error> {
        self.store()
            .entry(entry_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                field: "entry_id".into(),
                reason: "no disclosure-log entry has this id".into(),
            })
    }

    /// Entries matching `filter`; the read is logged before they are returned.
    pub async fn list(&self, read: Entry, filter: &EntryFilter) -> Result<Vec<StoredEntry>, Error> {
        // By person: every agency's record of the person, as the resolved person.
        let mut filter = filter.clone();
        if let Some(person) = &filter.person_id {
            let persons = self.store().identity_members(person).await?;
            filter.also_person_ids = persons.into_iter().filter(|p| p != person).collect();
        }
        let entries = self.store().entries(&filter).await?;
        self.record_read(read, &entries.iter().collect::<Vec<_>>())
            .await?;
        Ok(entries)
    }

    /// One entry; the read is logged before it is returned.
    pub async fn get(&self, read: Entry, entry_id: &str) -> Result<StoredEntry, Error> {
        let stored = self.entry_named(entry_id).await?;
        self.record_read(read, &[&stored]).await?;
        Ok(stored)
    }

    /// One entry with its inclusion proof in the latest signed checkpoint's tree, the
    /// proof and the checkpoint's signature checked here; one read is logged for it.
    pub async fn get_proven(&self, read: Entry, entry_id: &str) -> Result<ProvenEntry, Error> {
        let stored = self.entry_named(entry_id).await?;
        let checkpoint = self.store().latest_checkpoint().await?;
        let inclusion = match &checkpoint {
            Some(latest) if stored.seq <= latest.tree_size => {
                let index = stored.seq - 1;
                let path = self
                    .store()
                    .inclusion_proof(index, latest.tree_size)
                    .await?;
                Some(Inclusion {
                    leaf_index: index,
                    tree_size: latest.tree_size,
                    leaf_hash: crate::domain::ledger::merkle::leaf_hash(stored.text.as_bytes()),
                    path,
                    root: latest.root,
                })
            }
            _ => None,
        };
        let signature_valid = checkpoint
            .as_ref()
            .is_some_and(|c| c.verify(self.public_key()));
        let proof_valid = inclusion.as_ref().is_some_and(|proof| {
            crate::domain::ledger::merkle::verify_inclusion(
                &proof.leaf_hash,
                proof.leaf_index,
                proof.tree_size,
                &proof.path,
                &proof.root,
            )
        });
        self.record_read(read, &[&stored]).await?;
        Ok(ProvenEntry {
            stored,
            checkpoint,
            inclusion,
            signature_valid,
            proof_valid,
        })
    }

    /// Records an IG officer's finding on a break-glass entry (`read` describes the
    /// reviewer). Only break-glass entries are reviewed; a later review supersedes an
    /// earlier one and neither is ever changed.
    pub async fn review_break_glass(
        &self,
        mut read: Entry,
        entry_id: &str,
        outcome: ReviewOutcome,
        note: &str,
    ) -> Result<BreakGlassReview, Error> {
        let note = checked_note(note)?;
        let reviewed = self.existing(entry_id).await?;
        if !reviewed.entry.break_glass {
            return Err(Error::FailedPrecondition {
                rule: "audit.review_needs_break_glass",
                reason: "only entries made under break-glass are reviewed".into(),
            });
        }
        read.kind = EntryKind::Review;
        read.decision = Decision::Released;
        read.rule_ids = vec![REVIEW_RULE.into()];
        read.subject_person_id = reviewed.entry.subject_person_id.clone();
        read.released = vec![log_record(&reviewed, REVIEW_RULE)];
        read.justification = note.to_owned();
        let review = BreakGlassReview::recorded_by(&read, entry_id, outcome, note);
        // The hashed text names the review row, so verify proves the row's id too.
        read.reason = format!(
            "break-glass use reviewed: {outcome} (review {})",
            review.review_id
        );
        self.append_annotated(read, Annotation::Review(review.clone()))
            .await?;
        Ok(review)
    }

    /// Releases a law-enforcement entry for subject-access reports (`read` describes the
    /// IG officer). Only entries held back from those reports can be released.
    pub async fn release_for_subject_access(
        &self,
        mut read: Entry,
        entry_id: &str,
        note: &str,
    ) -> Result<SubjectAccessRelease, Error> {
        let note = checked_note(note)?;
        let released = self.existing(entry_id).await?;
        if released.entry.agency != LAW_ENFORCEMENT_AGENCY {
            return Err(Error::FailedPrecondition {
                rule: "audit.release_not_withheld",
                reason: "only law-enforcement entries are held back from subject-access \
                         reports, so only they are released"
                    .into(),
            });
        }
        read.kind = EntryKind::Review;
        read.decision = Decision::Released;
        read.rule_ids = vec![RELEASE_RULE.into()];
        read.subject_person_id = released.entry.subject_person_id.clone();
        read.released = vec![log_record(&released, RELEASE_RULE)];
        read.justification = note.to_owned();
        let release = SubjectAccessRelease::recorded_by(&read, entry_id, note);
        read.reason = format!(
            "law-enforcement entry released for subject access (release {})",
            release.release_id
        );
        self.append_annotated(read, Annotation::Release(release.clone()))
            .await?;
        Ok(release)
    }

    async fn existing(&self, entry_id: &str) -> Result<StoredEntry, Error> {
        self.store()
            .entry(entry_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                field: "entry_id".into(),
                reason: "no disclosure-log entry has this id".into(),
            })
    }

    /// The latest signed checkpoint.
    pub async fn checkpoint(&self, read: Entry) -> Result<Checkpoint, Error> {
        let checkpoint = latest(self.store()).await?;
        self.record_read(read, &[]).await?;
        Ok(checkpoint)
    }

    /// The inclusion proof of an entry in the tree of `size` (0: the latest checkpoint).
    pub async fn inclusion(
        &self,
        read: Entry,
        entry_id: &str,
        size: u64,
    ) -> Result<Inclusion, Error> {
        let stored = self.entry_named(entry_id).await?;
        let latest = latest(self.store()).await?;
        let size = if size == 0 { latest.tree_size } else { size };
        if size < stored.seq || size > latest.tree_size {
            return Err(Error::invalid(
                "tree_size",
                format!(
                    "must be between the entry's position {} and the latest checkpoint's size {}",
                    stored.seq, latest.tree_size
                ),
            ));
        }
        let index = stored.seq - 1;
        let path = self.store().inclusion_proof(index, size).await?;
        let root = self.store().tree_root(size).await?;
        self.record_read(read, &[&stored]).await?;
        Ok(Inclusion {
            leaf_index: index,
            tree_size: size,
            leaf_hash: crate::domain::ledger::merkle::leaf_hash(stored.text.as_bytes()),
            path,
            root,
        })
    }

    /// The consistency proof from `old_size` to `size` (0: the latest checkpoint).
    pub async fn consistency(
        &self,
        read: Entry,
        old_size: u64,
        size: u64,
    ) -> Result<Consistency, Error> {
        let latest = latest(self.store()).await?;
        let size = if size == 0 { latest.tree_size } else { size };
        if old_size == 0 || old_size > size || size > latest.tree_size {
            return Err(Error::invalid(
                "old_tree_size",
                format!(
                    "must satisfy 1 <= old_tree_size <= tree_size <= {} (the latest checkpoint)",
                    latest.tree_size
                ),
            ));
        }
        let proof = self.store().consistency_proof(old_size, size).await?;
        let old_root = self.store().tree_root(old_size).await?;
        let root = self.store().tree_root(size).await?;
        self.record_read(read, &[]).await?;
        Ok(Consistency {
            old_size,
            size,
            old_root,
            root,
            proof,
        })
    }

    /// Recomputes the whole log; the verification is logged after it ran (its entry is
    /// not part of what it checked). A damaged log cannot take new entries, so everything
    /// else fails closed; the diagnosis alone (which holds no case data) is still returned
    /// then, because it is how IG learns which entry was tampered with.
    pub async fn verify_logged(&self, read: Entry) -> Result<VerifyOutcome, Error> {
        self.verify_logged_reporting(read, &mut unwatched).await
    }

    /// [`Ledger::verify_logged`], telling `progress` how far the verification is.
    pub async fn verify_logged_reporting(
        &self,
        read: Entry,
        progress: OnProgress<'_>,
    ) -> Result<VerifyOutcome, Error> {
        let outcome = crate::domain::ledger::witnessing::verify_witnessed_reporting(
            self.store(),
            self.public_key(),
            self.witnesses(),
            self.origin(),
            self.bound_tables(),
            progress,
        )
        .await?;
        match self.record_read(read, &[]).await {
            Ok(()) => Ok(outcome),
            Err(error) if outcome.0.is_err() => {
                tracing::error!(%error, "the disclosure log is damaged and cannot record its own verification");
                Ok(outcome)
            }
            Err(error) => Err(error),
        }
    }
}

/// A log entry as a record the IG officer saw.
pub(crate) fn log_record(stored: &StoredEntry, rule: &str) -> Disclosed {
    Disclosed {
        person_id: stored.entry.subject_person_id.clone(),
        record_id: stored.entry.entry_id.clone(),
        category: "disclosure_log".into(),
        level: "detail".into(),
        rule_id: rule.into(),
    }
}

fn checked_note(note: &str) -> Result<&str, Error> {
    let note = note.trim();
    if note.is_empty() {
        return Err(Error::invalid(
            "note",
            "must say why: the note is what a later reader relies on",
        ));
    }
    if note.chars().count() > NOTE_MAX {
        return Err(Error::invalid(
            "note",
            format!("must be at most {NOTE_MAX} characters"),
        ));
    }
    Ok(note)
}

async fn latest(store: &Store) -> Result<Checkpoint, Error> {
    store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| Error::FailedPrecondition {
            rule: "audit.log_empty",
            reason: "the disclosure log has no entries yet".into(),
        })
}

/// Recomputes everything in the store against its latest checkpoint and `public_key`,
/// and the tables beside the log against the entries that prove them (see `bound.rs`):
/// the ledger's own and `bound`, those other rooms keep.
/// A reader task fetches the next page while this one is checked, so reading and hashing
/// overlap; the checks themselves run strictly in `seq` order.
pub async fn verify_store(
    store: &Store,
    public_key: &[u8],
    bound: &[Arc<dyn BoundTable>],
) -> Result<(Result<Verified, Mismatch>, Option<Checkpoint>), Error> {
    verify_store_reporting(store, public_key, bound, &mut unwatched).await
}

/// [`verify_store`], telling `progress` after each page how many entries are checked, of
/// the checkpoint's size (or of an unknown total when the log has no checkpoint).
pub async fn verify_store_reporting(
    store: &Store,
    public_key: &[u8],
    bound: &[Arc<dyn BoundTable>],
    progress: OnProgress<'_>,
) -> Result<(Result<Verified, Mismatch>, Option<Checkpoint>), Error> {
    // Read the checkpoint first: entries appended while verifying are beyond it, and the
    // next verification covers them. The bound tables are read after it, so every row an
    // entry up to the checkpoint wrote is among them (each commits with its entry).
    let checkpoint = store.latest_checkpoint().await?;
    let mut bound = BoundRows::read(store, bound).await?;
    // Without a checkpoint every row is read, so entries nobody signed are reported.
    let limit = checkpoint.as_ref().map_or(i64::MAX as u64, |c| c.tree_size);
    let (pages, mut received) = tokio::sync::mpsc::channel(VERIFY_PAGES_AHEAD);
    let reader = tokio::spawn(read_pages(store.clone(), limit, pages));
    let mut verifier = Verifier::new();
    let mut outcome = None;
    let mut stray = Vec::new();
    let mut changes = KeyChanges::default();
    while let Some(page) = received.recv().await {
        match page {
            Ok(page) => {
                match check_page(&mut verifier, &mut bound, &mut changes, page) {
                    Ok(seqs) => stray.extend(seqs),
                    Err(mismatch) => {
                        outcome = Some(Err(mismatch));
                        break;
                    }
                }
                progress(Progress {
                    done: verifier.entries(),
                    total: checkpoint.as_ref().map(|c| c.tree_size),
                });
            }
            Err(error) => {
                reader.abort();
                return Err(error);
            }
        }
    }
    reader.abort();
    // The latest checkpoint verifies with the key given, or with the key the log's
    // recorded key changes lead to from it.
    let key = match &checkpoint {
        Some(latest) if !latest.verify(public_key) => changes.in_force(public_key),
        _ => public_key.to_vec(),
    };
    let outcome = match (outcome, &checkpoint) {
        (None, Some(latest)) => match changes.check(store, latest).await? {
            Ok(()) => None,
            Err(mismatch) => Some(Err(mismatch)),
        },
        (outcome, _) => outcome,
    };
    let outcome = outcome.unwrap_or_else(|| {
        let verified = verifier.finish(checkpoint.as_ref(), &key)?;
        bound.finish(verified.entries)?;
        match stray.into_iter().min() {
            None => Ok(verified),
            Some(seq) => Err(Mismatch {
                seq,
                entry_id: String::new(),
                problem: format!(
                    "the person index (disclosure_person) has rows for entry {seq}, which \
                     does not exist: they were inserted or edited"
                ),
            }),
        }
    });
    Ok((outcome, checkpoint))
}

/// A page of the log with the person index rows of the same range of `seq`.
struct Page {
    rows: Vec<crate::store::RawLogRow>,
    persons: Vec<(u64, String)>,
}

/// Checks a page; person index rows naming no entry of the page are returned, to be
/// reported once the log itself has verified (a truncated log is named as such first).
fn check_page(
    verifier: &mut Verifier,
    bound: &mut BoundRows,
    changes: &mut KeyChanges,
    page: Page,
) -> Result<Vec<u64>, Mismatch> {
    let mut persons: HashMap<u64, Vec<String>> = HashMap::new();
    for (seq, person) in page.persons {
        persons.entry(seq).or_default().push(person);
    }
    for row in &page.rows {
        let entry = verifier.push_row(row)?;
        changes.push(row.seq, &entry)?;
        bound.check(
            row.seq,
            &entry,
            persons.remove(&row.seq).unwrap_or_default(),
        )?;
    }
    Ok(persons.into_keys().collect())
}

/// Sends the rows with `seq` up to `limit`, page by page in order, each with its person
/// index rows, until done, a read fails (the error is sent) or the receiver is gone. A
/// last page without log rows carries the person index rows past `limit` that name no
/// entry at all.
async fn read_pages(
    store: Store,
    limit: u64,
    pages: tokio::sync::mpsc::Sender<Result<Page, Error>>,
) {
    use tokio_stream::StreamExt;
    let mut persons = Box::pin(store.person_index_in_order());
    let mut pending: Option<(u64, String)> = None;
    let mut after = 0;
    while after < limit {
        let page = store.raw_log_page(after, limit, VERIFY_PAGE).await;
        let page = match page {
            Ok(rows) => {
                // A short page is the last: its person rows run to the limit.
                let through = match rows.last() {
                    Some(last) if rows.len() == VERIFY_PAGE as usize => last.seq,
                    _ => limit,
                };
                let mut page_persons = Vec::new();
                let mut failed = None;
                loop {
                    let next = match pending.take() {
                        Some(row) => Some(Ok(row)),
                        None => persons.next().await,
                    };
                    match next {
                        Some(Ok(row)) if row.0 <= through => page_persons.push(row),
                        Some(Ok(row)) => {
                            pending = Some(row);
                            break;
                        }
                        Some(Err(error)) => {
                            failed = Some(error);
                            break;
                        }
                        None => break,
                    }
                }
                match failed {
                    Some(error) => Err(error),
                    None => Ok(Page {
                        rows,
                        persons: page_persons,
                    }),
                }
            }
            Err(error) => Err(error),
        };
        // None after a failed read or an empty page: either ends the reading.
        let next = page
            .as_ref()
            .ok()
            .and_then(|page| page.rows.last())
            .map(|row| row.seq);
        if pages.send(page).await.is_err() {
            return;
        }
        match next {
            Some(seq) => after = seq,
            None => break,
        }
    }
    // Past the checkpoint: rows of entries appended since are fine; others name nothing.
    let mut beyond: Vec<(u64, String)> = pending.into_iter().collect();
    while let Some(row) = persons.next().await {
        match row {
            Ok(row) => beyond.push(row),
            Err(error) => {
                let _ = pages.send(Err(error)).await;
                return;
            }
        }
    }
    if beyond.is_empty() {
        return;
    }
    let page = store.log_seqs_after(limit).await.map(|appended| Page {
        rows: Vec::new(),
        persons: beyond
            .into_iter()
            .filter(|(seq, _)| appended.binary_search(seq).is_err())
            .collect(),
    });
    let _ = pages.send(page).await;
}
