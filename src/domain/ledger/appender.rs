//! Group commit: concurrent appends queue to one committer task, which writes everything
//! queued in one transaction and answers each caller only after that transaction commits.
//! Order, the hash chain and the Merkle tree stay exact; throughput rises with load.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::domain::ledger::bound::BoundTable;
use crate::domain::ledger::review::Annotation;
use crate::domain::ledger::witnessing::WitnessPolicy;
use crate::domain::ledger::{CheckpointSigner, Entry, Sealed};
use crate::error::Error;
use crate::store::Store;

/// Most entries committed in one transaction.
const MAX_BATCH: usize = 1024;
/// Entries that may wait for the committer before callers queue behind them.
const QUEUE: usize = 8192;

/// Told of each group commit, for metrics; the ledger knows nothing of how they are kept.
pub trait CommitObserver: Send + Sync + std::fmt::Debug {
    /// A batch of `entries` entries was written (or failed, `committed` false) in `took`.
    fn batch(&self, entries: usize, took: std::time::Duration, committed: bool);
}

/// Observes nothing.
#[derive(Debug)]
struct Unobserved;

impl CommitObserver for Unobserved {
    fn batch(&self, _: usize, _: std::time::Duration, _: bool) {}
}

/// Entries just committed, in `seq` order, as handed to a subscriber of the append path
/// (the privacy-alert evaluator): they are moved there, never copied.
pub type Committed = Vec<(u64, Entry)>;

/// Batches waiting for the subscriber before further ones are dropped (it then reads them
/// back from the log).
const HANDOFF: usize = 256;

type Subscriber = Arc<std::sync::Mutex<Option<mpsc::Sender<Committed>>>>;

/// Where an entry landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub entry_id: String,
}

struct Pending {
    sealed: Sealed,
    /// A record committed in the same transaction as the entry that records it.
    annotation: Option<Annotation>,
    reply: oneshot::Sender<Result<u64, Error>>,
}

/// The disclosure ledger's append path, shared by every handler.
#[derive(Clone, Debug)]
pub struct Ledger {
    queue: mpsc::Sender<Pending>,
    store: Store,
    public_key: Arc<Vec<u8>>,
    /// The log's origin line.
    origin: Arc<str>,
    /// The witnesses verification also checks the log against, if any.
    witnesses: Option<Arc<WitnessPolicy>>,
    /// Who is handed each committed batch, if anyone.
    subscriber: Subscriber,
    /// The tables other rooms keep beside the log, which verification checks too.
    bound: Arc<[Arc<dyn BoundTable>]>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("entry_id", &self.sealed.entry.entry_id)
            .finish()
    }
}

impl Ledger {
    /// Starts the committer task on the current Tokio runtime; verification checks the
    /// tables `bound` beside the log as well as the ledger's own (the caller names them:
    /// they belong to rooms the ledger does not import).
    pub fn start(store: Store, signer: CheckpointSigner, bound: Vec<Arc<dyn BoundTable>>) -> Self {
        Self::start_observed(store, signer, Arc::new(Unobserved), bound)
    }

    /// [`Ledger::start`], telling `observer` of each group commit.
    pub fn start_observed(
        store: Store,
        signer: CheckpointSigner,
        observer: Arc<dyn CommitObserver>,
        bound: Vec<Arc<dyn BoundTable>>,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let public_key = Arc::new(signer.public_key());
        let origin = Arc::from(signer.origin());
        let subscriber = Subscriber::default();
        tokio::spawn(commit_loop(
            receiver,
            store.clone(),
            signer,
            observer,
            Arc::clone(&subscriber),
        ));
        Ledger {
            queue,
            store,
            public_key,
            origin,
            witnesses: None,
            subscriber,
            bound: bound.into(),
        }
    }

    /// The tables other rooms keep beside the log, which verification checks too.
    pub fn bound_tables(&self) -> &[Arc<dyn BoundTable>] {
        &self.bound
    }

    /// Hands every batch committed from now on to the returned receiver, in order (one
    /// subscriber; a later call replaces it). The committer never waits for it: a batch
    /// it has no room for is dropped, and the subscriber sees a gap in `seq` to read back
    /// from the log.
    pub fn subscribe(&self) -> mpsc::Receiver<Committed> {
        let (sender, receiver) = mpsc::channel(HANDOFF);
        if let Ok(mut subscriber) = self.subscriber.lock() {
            *subscriber = Some(sender);
        }
        receiver
    }

    /// The same ledger, its verification also checked against `policy`'s witnesses.
    pub fn with_witnesses(mut self, policy: Arc<WitnessPolicy>) -> Self {
        self.witnesses = Some(policy);
        self
    }

    /// The witness policy verification checks against, if any.
    pub fn witnesses(&self) -> Option<&WitnessPolicy> {
        self.witnesses.as_deref()
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Appends an entry and waits until it is durably committed. If it cannot be, the
    /// caller gets UNAVAILABLE and must release nothing.
    pub async fn append(&self, entry: Entry) -> Result<Appended, Error> {
        self.commit(entry, None).await
    }

    /// Appends an entry together with the record it describes (a break-glass review, a
    /// release): both commit in one transaction, or neither does.
    pub async fn append_annotated(
        &self,
        entry: Entry,
        annotation: Annotation,
    ) -> Result<Appended, Error> {
        self.commit(entry, Some(annotation)).await
    }

    async fn commit(
        &self,
        entry: Entry,
        annotation: Option<Annotation>,
    ) -> Result<Appended, Error> {
        let entry_id = entry.entry_id.clone();
        // Encoded and hashed here, on the caller's task, in parallel with other callers.
        let sealed = Sealed::new(entry)?;
        let (reply, committed) = oneshot::channel();
        self.queue
            .send(Pending {
                sealed,
                annotation,
                reply,
            })
            .await
            .map_err(|_| unavailable())?;
        let seq = committed.await.map_err(|_| unavailable())??;
        Ok(Appended { seq, entry_id })
    }

    /// The store the ledger writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The raw Ed25519 public key that verifies checkpoints.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }
}

fn unavailable() -> Error {
    Error::Unavailable(
        "the disclosure log could not be written, so nothing was released; retry later".into(),
    )
}

async fn commit_loop(
    mut receiver: mpsc::Receiver<Pending>,
    store: Store,
    signer: CheckpointSigner,
    observer: Arc<dyn CommitObserver>,
    subscriber: Subscriber,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let entries: Vec<(&Sealed, Option<&Annotation>)> = batch
            .iter()
            .map(|p| (&p.sealed, p.annotation.as_ref()))
            .collect();
        let started = std::time::Instant::now();
        let appended = store.append_guarded(&entries, &signer).await;
        observer.batch(entries.len(), started.elapsed(), appended.is_ok());
        drop(entries);
        match appended {
            Ok(seqs) => {
                let handing = subscriber
                    .lock()
                    .ok()
                    .and_then(|s| s.as_ref().map(|s| s.clone()));
                let mut committed = Vec::new();
                for (pending, seq) in batch.drain(..).zip(seqs) {
                    if let (Some(_), Ok(seq)) = (&handing, &seq) {
                        committed.push((*seq, pending.sealed.entry));
                    }
                    let _ = pending.reply.send(seq);
                }
                if let Some(handing) = handing
                    && !committed.is_empty()
                {
                    let _ = handing.try_send(committed);
                }
            }
            Err(error) => {
                tracing::error!(%error, entries = batch.len(), "disclosure log append failed: releasing nothing");
                for pending in batch.drain(..) {
                    let _ = pending.reply.send(Err(unavailable()));
                }
            }
        }
    }
}
