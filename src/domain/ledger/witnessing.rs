//! The gateway's side of witnessing (C2SP tlog-witness): a witness policy (witnesses by
//! name, URL and verifier key, and a quorum), a background task that sends each new
//! checkpoint with its consistency proof to every witness and keeps their cosignatures,
//! and the check `audit verify` makes against what the witnesses hold. Disclosures never
//! wait for a witness: the task runs beside the append path, and a witness that is down
//! or behind only turns health to a warning and raises a notice to the IG office.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

use crate::domain::ledger::Checkpoint;
use crate::domain::ledger::bound::BoundTable;
use crate::domain::ledger::merkle::{self, Hash};
use crate::domain::ledger::note::{self, Note, SignatureLine, Vkey};
use crate::domain::ledger::verify::Mismatch;
use crate::error::Error;
use crate::store::{Store, StoredCosignature};

/// One witness the log sends its checkpoints to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    pub name: String,
    /// Its submission prefix: `POST <url>/add-checkpoint`.
    pub url: String,
    /// Its cosigning key (type 0x04).
    pub vkey: Vkey,
}

/// Which witnesses, how many must cosign, and how long cosigning may lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessPolicy {
    pub witnesses: Vec<PolicyWitness>,
    pub quorum: usize,
    /// How long the latest checkpoint may go without a quorum's cosignatures before
    /// health warns and the IG office is told.
    pub max_lag: Duration,
    /// How often the task looks for a new checkpoint.
    pub interval: Duration,
    /// How long one request to a witness may take.
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    quorum: usize,
    #[serde(default = "default_max_lag")]
    max_lag_secs: u64,
    #[serde(default = "default_interval")]
    interval_ms: u64,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    #[serde(rename = "witness")]
    witnesses: Vec<WitnessFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WitnessFile {
    name: String,
    url: String,
    vkey: String,
}

fn default_max_lag() -> u64 {
    300
}
fn default_interval() -> u64 {
    1000
}
fn default_timeout() -> u64 {
    5000
}

impl WitnessPolicy {
    /// Reads a policy file; each problem is named.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
        Self::parse(&text)
    }

    /// Parses a policy:
    /// `quorum`, `max_lag_secs`, `interval_ms`, `timeout_ms`, and `[[witness]]` tables
    /// with `name`, `url` (http://) and `vkey` (its cosignature verifier key).
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| format!("not valid: {e}"))?;
        let mut witnesses = Vec::new();
        for witness in file.witnesses {
            let vkey = Vkey::parse(&witness.vkey)
                .filter(|v| v.signature_type == note::COSIGNATURE_TYPE)
                .ok_or_else(|| {
                    format!(
                        "witness `{}`: vkey is not a cosignature/v1 verifier key",
                        witness.name
                    )
                })?;
            if vkey.name != witness.name {
                return Err(format!(
                    "witness `{}`: its vkey names `{}`",
                    witness.name, vkey.name
                ));
            }
            if !witness.url.starts_with("http://") {
                return Err(format!(
                    "witness `{}`: url must be http:// (put TLS in front of a witness \
                     beyond loopback with a local forwarder)",
                    witness.name
                ));
            }
            if witnesses
                .iter()
                .any(|w: &PolicyWitness| w.name == witness.name)
            {
                return Err(format!("witness `{}` is listed twice", witness.name));
            }
            witnesses.push(PolicyWitness {
                name: witness.name,
                url: witness.url.trim_end_matches('/').to_owned(),
                vkey,
            });
        }
        if file.quorum == 0 || file.quorum > witnesses.len() {
            return Err(format!(
                "quorum must be from 1 to the {} witnesses listed",
                witnesses.len()
            ));
        }
        Ok(WitnessPolicy {
            witnesses,
            quorum: file.quorum,
            max_lag: Duration::from_secs(file.max_lag_secs),
            interval: Duration::from_millis(file.interval_ms.max(10)),
            timeout: Duration::from_millis(file.timeout_ms.max(10)),
        })
    }

    /// The largest size at least `quorum` of `sizes` (one per witness) reach.
    pub fn quorum_size(&self, sizes: &[u64]) -> u64 {
        let mut sizes = sizes.to_vec();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.get(self.quorum - 1).copied().unwrap_or(0)
    }
}

/// Whether cosigning lags, as the health watcher reads it.
#[derive(Debug, Default)]
pub struct WitnessHealth {
    lagging: AtomicBool,
    quorum_size: AtomicU64,
}

impl WitnessHealth {
    /// True while the latest checkpoint has lacked a quorum's cosignatures for longer than
    /// the policy allows.
    pub fn lagging(&self) -> bool {
        self.lagging.load(Ordering::Relaxed)
    }

    /// The largest size a quorum of witnesses has cosigned, as far as this process saw.
    pub fn quorum_size(&self) -> u64 {
        self.quorum_size.load(Ordering::Relaxed)
    }
}

/// What a witness answered to `add-checkpoint`.
enum Answer {
    Cosigned(StoredCosignature),
    /// 409: the witness holds this size.
    Holds(u64),
    Refused(u16),
}

/// How far witnessing lags, once it lags beyond the policy's bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessLag {
    /// The log's size.
    pub log_size: u64,
    /// The size a quorum of witnesses has cosigned.
    pub quorum_size: u64,
    /// How long the quorum has been behind, in seconds.
    pub lag_secs: u64,
    /// The witnesses behind the log's size.
    pub behind: Vec<String>,
}

/// Who is told when witnessing lags beyond the policy's bound: the ledger says how far;
/// the room that words notices tells the IG office (the ledger does not import it).
pub trait LagAlarm: Send + Sync {
    /// Raises the alarm for `lag`; a failure is the alarm's to log.
    fn lagging(&self, lag: WitnessLag) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Sends checkpoints to the policy's witnesses until the process ends: one task per
/// witness, so a witness that is slow or hung holds back none of the others, and one that
/// watches the lag.
pub struct Cosigner {
    store: Store,
    policy: Arc<WitnessPolicy>,
    health: Arc<WitnessHealth>,
    alarm: Arc<dyn LagAlarm>,
    /// The size each witness is known to hold, in the policy's order.
    held: Arc<Vec<AtomicU64>>,
    /// Since when the latest checkpoint has been beyond the quorum's size.
    behind_since: Option<Instant>,
}

impl Cosigner {
    /// Starts the tasks on the current runtime; returns the health they keep.
    pub fn start(
        store: Store,
        policy: Arc<WitnessPolicy>,
        alarm: Arc<dyn LagAlarm>,
    ) -> Arc<WitnessHealth> {
        let health = Arc::new(WitnessHealth::default());
        let held = Arc::new(
            policy
                .witnesses
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect::<Vec<_>>(),
        );
        let cosigner = Cosigner {
            store,
            policy,
            health: Arc::clone(&health),
            alarm,
            held,
            behind_since: None,
        };
        tokio::spawn(cosigner.run());
        health
    }

    async fn run(mut self) {
        // What this database already holds; a witness that holds more says so (409).
        if let Ok(sizes) = self.store.cosigned_sizes().await {
            for (i, witness) in self.policy.witnesses.iter().enumerate() {
                if let Some((_, size)) = sizes.iter().find(|(name, _)| *name == witness.name) {
                    self.held[i].store(*size, Ordering::Relaxed);
                }
            }
        }
        for i in 0..self.policy.witnesses.len() {
            tokio::spawn(follow(
                self.store.clone(),
                Arc::clone(&self.policy),
                Arc::clone(&self.held),
                i,
            ));
        }
        let mut ticker = tokio::time::interval(self.policy.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match self.store.latest_checkpoint().await {
                Ok(Some(checkpoint)) if checkpoint.note().is_some() => {
                    self.update_lag(checkpoint.tree_size).await;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "witnessing: cannot read the latest checkpoint")
                }
            }
        }
    }

    async fn update_lag(&mut self, size: u64) {
        let held: Vec<u64> = self
            .held
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .collect();
        let quorum_size = self.policy.quorum_size(&held);
        self.health
            .quorum_size
            .store(quorum_size, Ordering::Relaxed);
        if quorum_size >= size {
            self.behind_since = None;
            if self.health.lagging.swap(false, Ordering::Relaxed) {
                tracing::info!(quorum_size, "witnesses caught up: cosigning lag cleared");
            }
            return;
        }
        let since = *self.behind_since.get_or_insert_with(Instant::now);
        let lag = since.elapsed();
        if lag <= self.policy.max_lag || self.health.lagging.load(Ordering::Relaxed) {
            return;
        }
        self.health.lagging.store(true, Ordering::Relaxed);
        let behind: Vec<String> = self
            .policy
            .witnesses
            .iter()
            .zip(&held)
            .filter(|(_, held)| **held < size)
            .map(|(w, _)| w.name.clone())
            .collect();
        tracing::warn!(
            log_size = size,
            quorum_size,
            lag_secs = lag.as_secs(),
            behind = %behind.join(","),
            "witness cosigning lags beyond the policy's bound: health warning"
        );
        self.alarm
            .lagging(WitnessLag {
                log_size: size,
                quorum_size,
                lag_secs: lag.as_secs(),
                behind,
            })
            .await;
    }
}

/// Sends each new checkpoint to witness `i` of the policy, one request at a time, and
/// records the size it holds in `held[i]`. A failure is logged once, until it cosigns
/// again.
async fn follow(store: Store, policy: Arc<WitnessPolicy>, held: Arc<Vec<AtomicU64>>, i: usize) {
    let witness = &policy.witnesses[i];
    let mut failing = false;
    let mut ticker = tokio::time::interval(policy.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let checkpoint = match store.latest_checkpoint().await {
            Ok(Some(checkpoint)) if checkpoint.note().is_some() => checkpoint,
            _ => continue,
        };
        let from = held[i].load(Ordering::Relaxed);
        if from >= checkpoint.tree_size {
            continue;
        }
        match submit(&store, witness, &checkpoint, from, policy.timeout).await {
            Ok(size) => {
                if failing {
                    tracing::info!(witness = %witness.name, size, "witness cosigning again");
                }
                failing = false;
                held[i].store(size, Ordering::Relaxed);
            }
            Err((size, problem)) => {
                if let Some(size) = size {
                    held[i].store(size, Ordering::Relaxed);
                }
                if !failing {
                    tracing::warn!(witness = %witness.name, %problem, "witness did not cosign");
                }
                failing = true;
            }
        }
    }
}

/// Sends `checkpoint` from the size the witness is thought to hold (`held`); on 409, again
/// from the size it says it holds, and keeps the cosignature. The size it holds
/// afterwards, or the problem (with the size learnt, if any).
pub async fn submit(
    store: &Store,
    witness: &PolicyWitness,
    checkpoint: &Checkpoint,
    held: u64,
    timeout: Duration,
) -> Result<u64, (Option<u64>, String)> {
    let mut from = held;
    // From `held`, then from the size a 409 names, and once more if another submitter of
    // this log (another gateway process) moved the witness on in between.
    for _ in 0..3 {
        match send(store, witness, checkpoint, from, timeout).await {
            Ok(Answer::Cosigned(cosignature)) => {
                store
                    .add_cosignature(&cosignature)
                    .await
                    .map_err(|e| (None, format!("storing its cosignature failed: {e}")))?;
                return Ok(checkpoint.tree_size);
            }
            Ok(Answer::Holds(size)) if size <= checkpoint.tree_size && size != from => {
                from = size;
            }
            Ok(Answer::Holds(size)) if size > checkpoint.tree_size => {
                return Err((
                    Some(size),
                    format!(
                        "it holds a checkpoint of {size} entries, more than the log's {}: \
                         the log may have been cut short",
                        checkpoint.tree_size
                    ),
                ));
            }
            Ok(Answer::Holds(size)) => {
                return Err((
                    Some(size),
                    format!("it holds size {size} and refused again"),
                ));
            }
            Ok(Answer::Refused(status)) => {
                return Err((None, format!("it answered HTTP {status}")));
            }
            Err(problem) => return Err((None, problem)),
        }
    }
    Err((Some(from), "it kept answering 409".into()))
}

/// One `add-checkpoint` request from `old_size`.
async fn send(
    store: &Store,
    witness: &PolicyWitness,
    checkpoint: &Checkpoint,
    old_size: u64,
    timeout: Duration,
) -> Result<Answer, String> {
    let note = checkpoint
        .note()
        .ok_or("a v1 checkpoint cannot be witnessed")?;
    let proof = if old_size == 0 || old_size >= checkpoint.tree_size {
        Vec::new()
    } else {
        store
            .consistency_proof(old_size, checkpoint.tree_size)
            .await
            .map_err(|e| format!("making the consistency proof failed: {e}"))?
    };
    let body = add_checkpoint_body(old_size, &proof, &note);
    let (status, text) = http_request(&witness.url, "/add-checkpoint", Some(body), timeout).await?;
    match status {
        200 => {
            let body = checkpoint.text();
            let timestamp = text
                .lines()
                .filter_map(SignatureLine::parse)
                .find_map(|line| {
                    note::verify_cosignature(&witness.vkey, &body, &line).map(|t| (t, line))
                });
            let Some((cosigned_at, line)) = timestamp else {
                return Err("its answer holds no valid cosignature by its key".into());
            };
            Ok(Answer::Cosigned(StoredCosignature {
                witness: witness.name.clone(),
                tree_size: checkpoint.tree_size,
                root_hash: hex::encode(checkpoint.root),
                cosignature: line.render(),
                cosigned_at,
            }))
        }
        409 => text
            .trim_end_matches('\n')
            .parse()
            .map(Answer::Holds)
            .map_err(|_| "a 409 without a size".into()),
        other => Ok(Answer::Refused(other)),
    }
}

/// `old <size>`, the proof lines, a blank line, the checkpoint note.
pub fn add_checkpoint_body(old_size: u64, proof: &[Hash], note: &str) -> String {
    let mut body = format!("old {old_size}\n");
    for hash in proof {
        body.push_str(&B64.encode(hash));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

/// A plain HTTP/1.1 request (POST with `body`, else GET) to `base` + `path`: its status
/// and body text.
pub async fn http_request(
    base: &str,
    path: &str,
    body: Option<String>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Full};
    let uri: http::Uri = format!("{base}{path}")
        .parse()
        .map_err(|_| "the witness URL is not valid".to_owned())?;
    let authority = uri
        .authority()
        .ok_or("the witness URL has no host")?
        .to_string();
    let host = uri.host().ok_or("the witness URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let exchange = async move {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        tokio::spawn(connection);
        let builder = http::Request::builder()
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority);
        let request = match body {
            Some(body) => builder
                .method(http::Method::POST)
                .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Full::new(bytes::Bytes::from(body))),
            None => builder
                .method(http::Method::GET)
                .body(Full::new(bytes::Bytes::new())),
        }
        .map_err(|e| format!("building the request failed: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("the request failed: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
}

/// What the witnesses hold, checked against the verified log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    /// The largest size a quorum of witnesses has cosigned (0 if no quorum).
    pub quorum_size: u64,
    pub quorum: usize,
    /// (witness, size it cosigned) for each witness whose checkpoint was obtained.
    pub witnesses: Vec<(String, u64)>,
}

/// Checks the verified log (its latest checkpoint `latest`, of `entries`) against the
/// latest checkpoint each witness cosigned: asked of the witness itself (its monitoring
/// URL), else this database's copy of its cosignature. A witnessed checkpoint larger
/// than the log, or one the log is not consistent with, is a mismatch: the log was cut
/// short or rewritten, even if its own checkpoints were removed with it.
pub async fn check_witnessed(
    store: &Store,
    policy: &WitnessPolicy,
    latest: Option<&Checkpoint>,
    log_key: &Vkey,
) -> Result<Result<Witnessed, Mismatch>, Error> {
    use sha2::{Digest, Sha256};
    let log_size = latest.map_or(0, |c| c.tree_size);
    let origin_hash = hex::encode(Sha256::digest(log_key.name.as_bytes()));
    let mut seen = Vec::new();
    for witness in &policy.witnesses {
        let path = format!("/{origin_hash}/checkpoint");
        let held = match http_request(&witness.url, &path, None, policy.timeout).await {
            Ok((200, text)) => cosigned_checkpoint(&text, log_key, &witness.vkey),
            Ok(_) | Err(_) => None,
        };
        let held = match held {
            Some(held) => Some(held),
            None => stored_cosigned(store, witness, log_key).await?,
        };
        let Some((size, root)) = held else { continue };
        if size > log_size {
            return Ok(Err(Mismatch {
                seq: log_size + 1,
                entry_id: String::new(),
                problem: format!(
                    "missing: witness {} cosigned a checkpoint of {size} entries but the log \
                     ends at {log_size}: the tail was removed",
                    witness.name
                ),
            }));
        }
        let consistent = match latest {
            None => size == 0,
            Some(latest) => {
                let proof = if size == 0 || size == latest.tree_size {
                    Vec::new()
                } else {
                    store.consistency_proof(size, latest.tree_size).await?
                };
                size == 0
                    || merkle::verify_consistency(
                        size,
                        latest.tree_size,
                        &root,
                        &latest.root,
                        &proof,
                    )
            }
        };
        if !consistent {
            return Ok(Err(Mismatch {
                seq: size,
                entry_id: String::new(),
                problem: format!(
                    "the log is not consistent with the checkpoint of {size} entries witness \
                     {} cosigned: entries up to it were rewritten",
                    witness.name
                ),
            }));
        }
        seen.push((witness.name.clone(), size));
    }
    let sizes: Vec<u64> = seen.iter().map(|(_, size)| *size).collect();
    Ok(Ok(Witnessed {
        quorum_size: policy.quorum_size(&sizes),
        quorum: policy.quorum,
        witnesses: seen,
    }))
}

/// Verifies the log in `store` against its checkpoints with `public_key` and then, with a
/// policy, against what the witnesses hold (`origin`: the log's name where its latest
/// checkpoint predates witnessing), and the tables beside the log against their entries:
/// the ledger's own and `bound`, those other rooms keep.
pub async fn verify_witnessed(
    store: &Store,
    public_key: &[u8],
    policy: Option<&WitnessPolicy>,
    origin: &str,
    bound: &[Arc<dyn BoundTable>],
) -> Result<
    (
        Result<crate::domain::ledger::verify::Verified, Mismatch>,
        Option<Checkpoint>,
        Option<Witnessed>,
    ),
    Error,
> {
    verify_witnessed_reporting(
        store,
        public_key,
        policy,
        origin,
        bound,
        &mut crate::domain::progress::unwatched,
    )
    .await
}

/// [`verify_witnessed`], telling `progress` how far the log's own verification is.
pub async fn verify_witnessed_reporting(
    store: &Store,
    public_key: &[u8],
    policy: Option<&WitnessPolicy>,
    origin: &str,
    bound: &[Arc<dyn BoundTable>],
    progress: crate::domain::progress::OnProgress<'_>,
) -> Result<
    (
        Result<crate::domain::ledger::verify::Verified, Mismatch>,
        Option<Checkpoint>,
        Option<Witnessed>,
    ),
    Error,
> {
    let (outcome, checkpoint) =
        crate::domain::ledger::audit::verify_store_reporting(store, public_key, bound, progress)
            .await?;
    let (Ok(done), Some(policy)) = (&outcome, policy) else {
        return Ok((outcome, checkpoint, None));
    };
    let log_key = Vkey {
        name: checkpoint
            .as_ref()
            .and_then(Checkpoint::origin)
            .unwrap_or_else(|| origin.to_owned()),
        signature_type: note::ED25519_TYPE,
        public_key: public_key.to_vec(),
    };
    // After a key change the latest checkpoint is the new key's: witnesses hold the log's
    // checkpoints under the key that signed them, so ask with that one.
    let log_key = match &checkpoint {
        Some(latest) if !latest.verify(&log_key.public_key) => match latest.form() {
            crate::domain::ledger::checkpoint::CheckpointForm::Tlog(vkey) => vkey,
            crate::domain::ledger::checkpoint::CheckpointForm::SafegateV1 => log_key,
        },
        _ => log_key,
    };
    let done = done.clone();
    match check_witnessed(store, policy, checkpoint.as_ref(), &log_key).await? {
        Ok(seen) => Ok((Ok(done), checkpoint, Some(seen))),
        Err(mismatch) => Ok((Err(mismatch), checkpoint, None)),
    }
}

/// (size, root) of a witness's answer, if the log's key signed it and the witness's key
/// cosigned it.
fn cosigned_checkpoint(text: &str, log_key: &Vkey, witness_key: &Vkey) -> Option<(u64, Hash)> {
    let note = Note::parse(text)?;
    let body = note::parse_body(&note.text)?;
    if body.origin != log_key.name {
        return None;
    }
    let signed = note
        .signatures
        .iter()
        .any(|line| note::verify_ed25519(log_key, &note.text, line));
    let cosigned = note
        .signatures
        .iter()
        .any(|line| note::verify_cosignature(witness_key, &note.text, line).is_some());
    (signed && cosigned).then_some((body.tree_size, body.root))
}

/// The largest checkpoint this database holds the witness's valid cosignature for.
async fn stored_cosigned(
    store: &Store,
    witness: &PolicyWitness,
    log_key: &Vkey,
) -> Result<Option<(u64, Hash)>, Error> {
    let Some((_, size)) = store
        .cosigned_sizes()
        .await?
        .into_iter()
        .find(|(name, _)| *name == witness.name)
    else {
        return Ok(None);
    };
    for stored in store.cosignatures_at(size).await? {
        if stored.witness != witness.name {
            continue;
        }
        let Some(root) = hex::decode(&stored.root_hash)
            .ok()
            .and_then(|b| Hash::try_from(b).ok())
        else {
            continue;
        };
        let body = note::checkpoint_body(&log_key.name, size, &root);
        let valid = SignatureLine::parse(stored.cosignature.trim_end())
            .and_then(|line| note::verify_cosignature(&witness.vkey, &body, &line));
        if valid.is_some() {
            return Ok(Some((size, root)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vkey(name: &str, signature_type: u8) -> String {
        Vkey {
            name: name.into(),
            signature_type,
            public_key: vec![7; 32],
        }
        .render()
    }

    fn policy(quorum: usize, witnesses: &[(&str, &str, String)]) -> String {
        let mut text = format!("quorum = {quorum}\nmax_lag_secs = 5\n");
        for (name, url, vkey) in witnesses {
            text.push_str(&format!(
                "[[witness]]\nname = \"{name}\"\nurl = \"{url}\"\nvkey = \"{vkey}\"\n"
            ));
        }
        text
    }

    #[test]
    fn a_witness_policy_names_what_is_wrong_with_it() {
        let a = (
            "a.example/w",
            "http://127.0.0.1:1",
            vkey("a.example/w", note::COSIGNATURE_TYPE),
        );
        let b = (
            "b.example/w",
            "http://127.0.0.1:2/",
            vkey("b.example/w", note::COSIGNATURE_TYPE),
        );
        let parsed = WitnessPolicy::parse(&policy(2, &[a.clone(), b.clone()])).expect("valid");
        assert_eq!(parsed.quorum, 2);
        assert_eq!(parsed.max_lag, Duration::from_secs(5));
        assert_eq!(parsed.witnesses[1].url, "http://127.0.0.1:2");
        assert_eq!(parsed.quorum_size(&[9, 4]), 4);
        assert_eq!(parsed.quorum_size(&[9]), 0);
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "quorum too large",
                policy(3, &[a.clone(), b.clone()]),
                "quorum",
            ),
            ("quorum zero", policy(0, std::slice::from_ref(&a)), "quorum"),
            (
                "a log key, not a cosigning key",
                policy(
                    1,
                    &[(
                        "a.example/w",
                        "http://x",
                        vkey("a.example/w", note::ED25519_TYPE),
                    )],
                ),
                "cosignature/v1",
            ),
            (
                "vkey of another name",
                policy(1, &[("c.example/w", "http://x", a.2.clone())]),
                "names",
            ),
            (
                "https",
                policy(1, &[(a.0, "https://x", a.2.clone())]),
                "http://",
            ),
            ("listed twice", policy(1, &[a.clone(), a.clone()]), "twice"),
            (
                "unknown key",
                "quorum = 1\nwitnesses = []\n".into(),
                "not valid",
            ),
        ];
        for (case, text, said) in cases {
            let error = WitnessPolicy::parse(&text).expect_err(case);
            assert!(error.contains(said), "{case}: {error}");
        }
    }
}
