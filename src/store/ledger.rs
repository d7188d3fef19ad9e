//! SQL for the disclosure log. A batch of entries is appended in one transaction that
//! also stores the kept Merkle hashes it completes (one in 256 nodes, as tlog tiles keep
//! them) and a signed checkpoint, so the chain, the tree and the checkpoints always agree.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::Row;

use crate::domain::ledger::merkle::{self, Hash, NodeSource};
use crate::domain::ledger::review::{Annotation, BreakGlassReview, ReviewOutcome};
use crate::domain::ledger::{
    Checkpoint, CheckpointSigner, Entry, EntryFilter, Sealed, StoredEntry, chain_hash, now,
};
use crate::error::Error;
use crate::store::{Backend, Store, database_error};

/// Arbitrary constant naming the PostgreSQL advisory lock that serialises appends from
/// every gateway process sharing the database.
const APPEND_LOCK: i64 = 0x5AFE_6A7E;

/// How many entries of one kind, decision and break-glass flag one agency's systems
/// wrote on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyCount {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub agency: String,
    pub kind: String,
    pub decision: String,
    pub break_glass: bool,
    pub entries: u64,
}

/// Rows bound in one `IN (...)` list.
const IN_CHUNK: usize = 500;

/// `$first, $first+1, ...` for `count` binds.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hex_hash(text: &str) -> Result<Hash, Error> {
    let bytes = hex::decode(text).map_err(Error::internal)?;
    bytes
        .try_into()
        .map_err(|_| Error::internal("stored hash is not 32 bytes"))
}

/// Merkle nodes for a computation: first recording which nodes it asks for (answering
/// with placeholders), then serving exactly those, loaded from the store.
enum Nodes {
    Recording(Vec<(u32, u64)>),
    Loaded(HashMap<(u32, u64), Hash>),
}

impl NodeSource for Nodes {
    type Error = (u32, u64);
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, (u32, u64)> {
        match self {
            Nodes::Recording(asked) => {
                asked.push((level, index));
                Ok([0; 32])
            }
            Nodes::Loaded(nodes) => nodes.get(&(level, index)).copied().ok_or((level, index)),
        }
    }
}

impl Nodes {
    fn insert(&mut self, level: u32, index: u64, hash: Hash) {
        if let Nodes::Loaded(nodes) = self {
            nodes.insert((level, index), hash);
        }
    }
}

/// Where this process's last committed batch left the log: its size, chain hash and the
/// Merkle frontier (the roots of the perfect subtrees that make up the tree).
#[derive(Debug, Clone)]
pub(crate) struct LedgerTip {
    size: u64,
    chain: Hash,
    frontier: HashMap<(u32, u64), Hash>,
}

/// The perfect subtrees whose roots make up a tree of `size` leaves.
fn frontier(size: u64) -> Vec<(u32, u64)> {
    (0..64)
        .filter(|level| size >> level & 1 == 1)
        .map(|level| (level, (size >> level) - 1))
        .collect()
}

/// The tables a batch inserts into, with their columns.
const LOG_TABLE: &str = "disclosure_log (seq, entry_id, recorded_at, kind, decision, agency, \
     system_id, practitioner_id, purpose, break_glass, subject_person_id, entry, leaf_hash, \
     chain_hash)";
const PERSON_TABLE: &str = "disclosure_person (person_id, seq)";
const NODE_TABLE: &str = "merkle_node (level, idx, hash)";
const CHECKPOINT_TABLE: &str = "checkpoint (tree_size, root_hash, signed_at, signature, key_id)";

/// A batch of entries placed after a tip: their rows, the Merkle nodes they complete and
/// the signed checkpoint of the new tree, ready to insert.
struct Batch<'a> {
    seqs: Vec<u64>,
    log_rows: Vec<Vec<Cell<'a>>>,
    person_rows: Vec<Vec<Cell<'a>>>,
    node_rows: Vec<Vec<Cell<'a>>>,
    checkpoint_row: Vec<Vec<Cell<'a>>>,
    /// Where the log ends once the batch is committed, when the frontier is complete.
    tip: Option<LedgerTip>,
}

impl<'a> Batch<'a> {
    /// Places `entries` after a log of `size` entries ending in chain hash `previous`,
    /// whose Merkle frontier is `nodes`.
    fn build(
        entries: &[(&'a Sealed, Option<&Annotation>)],
        mut size: u64,
        mut previous: Hash,
        nodes: HashMap<(u32, u64), Hash>,
        signer: &CheckpointSigner,
    ) -> Result<Self, Error> {
        let mut nodes = Nodes::Loaded(nodes);
        let mut seqs = Vec::with_capacity(entries.len());
        let mut log_rows: Vec<Vec<Cell>> = Vec::with_capacity(entries.len());
        let mut person_rows: Vec<Vec<Cell>> = Vec::new();
        let mut node_rows: Vec<Vec<Cell>> = Vec::new();
        for &(sealed, _) in entries {
            let (entry, text, leaf) = (&sealed.entry, &sealed.text, sealed.leaf);
            let chain = chain_hash(&previous, &leaf);
            let completed = merkle::completed_nodes(&mut nodes, size, leaf)
                .map_err(|missing| Error::internal(format!("merkle node {missing:?} missing")))?;
            for (level, index, hash) in completed {
                nodes.insert(level, index, hash);
                // Leaves are kept as the entry's own leaf hash; other levels between
                // kept ones are recomputed when needed.
                if level == 0 || !merkle::is_kept(level) {
                    continue;
                }
                node_rows.push(vec![
                    Cell::Int(i64::from(level)),
                    Cell::Int(index as i64),
                    Cell::owned(hex::encode(hash)),
                ]);
            }
            size += 1;
            log_rows.push(vec![
                Cell::Int(size as i64),
                Cell::borrowed(&entry.entry_id),
                Cell::borrowed(&entry.recorded_at),
                Cell::borrowed(entry.kind.as_str()),
                Cell::borrowed(entry.decision.as_str()),
                Cell::borrowed(&entry.agency),
                Cell::borrowed(&entry.system_id),
                Cell::borrowed(&entry.practitioner_id),
                Cell::borrowed(&entry.purpose),
                Cell::Int(i64::from(entry.break_glass)),
                Cell::borrowed(&entry.subject_person_id),
                Cell::borrowed(text),
                Cell::owned(hex::encode(leaf)),
                Cell::owned(hex::encode(chain)),
            ]);
            for person in entry.persons() {
                person_rows.push(vec![Cell::borrowed(person), Cell::Int(size as i64)]);
            }
            previous = chain;
            seqs.push(size);
        }
        let root = merkle::subtree_root(&mut nodes, 0, size)
            .map_err(|missing| Error::internal(format!("merkle node {missing:?} missing")))?;
        let checkpoint = signer.sign(size, root, now());
        let checkpoint_row = vec![checkpoint_cells(checkpoint)];
        let Nodes::Loaded(all) = nodes else {
            return Err(Error::internal("merkle nodes changed kind"));
        };
        // Remembered only when complete; otherwise the next batch reads it.
        let tip = frontier(size)
            .into_iter()
            .map(|at| all.get(&at).map(|hash| (at, *hash)))
            .collect::<Option<HashMap<_, _>>>()
            .map(|frontier| LedgerTip {
                size,
                chain: previous,
                frontier,
            });
        Ok(Batch {
            seqs,
            log_rows,
            person_rows,
            node_rows,
            checkpoint_row,
            tip,
        })
    }

    /// Each table the batch inserts into, with its rows.
    fn tables(&self) -> [(&'static str, &[Vec<Cell<'a>>]); 4] {
        [
            (LOG_TABLE, &self.log_rows),
            (PERSON_TABLE, &self.person_rows),
            (NODE_TABLE, &self.node_rows),
            (CHECKPOINT_TABLE, &self.checkpoint_row),
        ]
    }

    /// PostgreSQL: every insert of the batch as one statement, each table's rows but the
    /// last in a data-modifying `WITH` clause, with the values in order; `None` if that
    /// would pass the protocol's limit on bind parameters.
    fn one_statement(&self) -> Option<(String, impl Iterator<Item = &Cell<'a>>)> {
        const MAX_PARAMETERS: usize = 65_535;
        let tables: Vec<_> = self
            .tables()
            .into_iter()
            .filter(|(_, rows)| !rows.is_empty())
            .collect();
        let count: usize = tables
            .iter()
            .flat_map(|(_, rows)| rows.iter())
            .map(Vec::len)
            .sum();
        if count > MAX_PARAMETERS {
            return None;
        }
        let (mut sql, mut bound) = (String::new(), 0);
        let last = tables.len().saturating_sub(1);
        for (i, (table, rows)) in tables.iter().enumerate() {
            if i < last {
                sql.push_str(&format!("{} t{i} AS (", if i == 0 { "WITH" } else { "," }));
            }
            sql.push_str(&format!("INSERT INTO {table} VALUES "));
            push_values(&mut sql, Backend::Postgres, rows, &mut bound);
            sql.push_str(if i < last { ") " } else { "" });
        }
        let cells = tables
            .into_iter()
            .flat_map(|(_, rows)| rows.iter().flatten());
        Some((sql, cells))
    }

    /// The batch's INSERT statements, each with its values in order: a few multi-row
    /// statements per batch instead of several per entry.
    fn statements(&self, backend: Backend) -> Vec<(String, impl Iterator<Item = &Cell<'a>>)> {
        self.tables()
            .into_iter()
            .flat_map(|(table, rows)| insert_statements(backend, table, rows))
            .map(|(sql, chunk)| (sql, chunk.iter().flatten()))
            .collect()
    }
}

impl Store {
    /// Appends `entries` in order in one transaction and signs a checkpoint of the new
    /// tree; returns each entry's `seq`. Nothing is visible until the commit.
    pub async fn append_entries(
        &self,
        entries: &[Entry],
        signer: &CheckpointSigner,
    ) -> Result<Vec<u64>, Error> {
        let sealed = entries
            .iter()
            .map(|e| Sealed::new(e.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let batch: Vec<(&Sealed, Option<&Annotation>)> = sealed.iter().map(|e| (e, None)).collect();
        self.append_annotated(&batch, signer).await
    }

    /// Like [`Store::append_entries`], each entry with the record it describes (a
    /// break-glass review, a release, an alert or a step of its case), inserted in the
    /// same transaction. Fails as a whole if any record's condition does not hold.
    pub async fn append_annotated(
        &self,
        entries: &[(&Sealed, Option<&Annotation>)],
        signer: &CheckpointSigner,
    ) -> Result<Vec<u64>, Error> {
        self.append_guarded(entries, signer)
            .await?
            .into_iter()
            .collect()
    }

    /// Appends `entries` in one transaction; each entry whose record's condition does not
    /// hold (an alert whose key is already raised, a case step that is not the case's
    /// next) is left out with its own error, and the others are committed without it. The
    /// conditions are checked under the append lock, so across gateway processes too.
    pub async fn append_guarded(
        &self,
        entries: &[(&Sealed, Option<&Annotation>)],
        signer: &CheckpointSigner,
    ) -> Result<Vec<Result<u64, Error>>, Error> {
        // The frontier this process left after its last batch, if any: a batch of plain
        // entries then goes in fewer round trips (see `append_at_remembered_tip`).
        let remembered = self.ledger_tip.lock().ok().and_then(|mut tip| tip.take());
        let remembered = match remembered {
            Some(tip) if entries.iter().all(|(_, a)| a.is_none()) => {
                match self.append_at_remembered_tip(entries, signer, tip).await {
                    Ok(seqs) => return Ok(seqs.into_iter().map(Ok).collect()),
                    // Another process appended since (or the write failed): read the tip.
                    Err(_) => None,
                }
            }
            other => other,
        };
        let mut tx = self.begin_write().await.map_err(database_error)?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(APPEND_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(database_error)?;
        }
        let mut refused: Vec<Option<Error>> = Vec::with_capacity(entries.len());
        for &(_, annotation) in entries {
            refused.push(match annotation {
                Some(annotation) => guard(&mut tx, annotation).await?,
                None => None,
            });
        }
        let kept: Vec<(&Sealed, Option<&Annotation>)> = entries
            .iter()
            .zip(&refused)
            .filter(|(_, refused)| refused.is_none())
            .map(|(entry, _)| *entry)
            .collect();
        if kept.is_empty() {
            return Ok(refused.into_iter().flatten().map(Err).collect());
        }
        let tip =
            sqlx::query("SELECT seq, chain_hash FROM disclosure_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(database_error)?;
        let (size, previous) = match tip {
            Some(row) => {
                let seq: i64 = row.try_get(0).map_err(database_error)?;
                let chain: String = row.try_get(1).map_err(database_error)?;
                (seq as u64, hex_hash(&chain)?)
            }
            None => (0, [0u8; 32]),
        };
        // The remembered frontier serves if the log still ends where this process's last
        // batch ended (no other process appended since): saves one read per frontier
        // node, a dozen or more on a large log.
        let loaded = match remembered.filter(|tip| tip.size == size && tip.chain == previous) {
            Some(tip) => tip.frontier,
            None => self.load_nodes(&mut tx, &frontier(size)).await?,
        };
        let batch = Batch::build(&kept, size, previous, loaded, signer)?;
        for (statement, cells) in batch.statements(self.backend) {
            bind_all(sqlx::query(&statement), cells)
                .execute(&mut *tx)
                .await
                .map_err(database_error)?;
        }
        for &(_, annotation) in &kept {
            if let Some(annotation) = annotation {
                insert_annotation(&mut tx, self.backend, annotation).await?;
            }
        }
        tx.commit().await.map_err(database_error)?;
        self.remember_tip(batch.tip);
        let mut seqs = batch.seqs.into_iter();
        Ok(refused
            .into_iter()
            .map(|refused| match refused {
                Some(error) => Err(error),
                None => seqs
                    .next()
                    .ok_or_else(|| Error::internal("fewer positions than entries")),
            })
            .collect())
    }

    /// When this process remembers where its last batch left the log, the batch is sent
    /// in as few round trips as the backend allows, without reading the tip first:
    /// - SQLite: the whole batch (begin, inserts, checkpoint, commit) as one query, one
    ///   hand-off to its worker thread instead of one per statement;
    /// - PostgreSQL: the transaction begins and takes the append lock in one round trip,
    ///   every insert goes in one statement (data-modifying `WITH`), then the commit.
    ///
    /// If another process appended since, the batch's first `seq` is already taken: the
    /// primary key refuses the insert, the transaction is rolled back and the caller reads
    /// the tip instead.
    async fn append_at_remembered_tip(
        &self,
        entries: &[(&Sealed, Option<&Annotation>)],
        signer: &CheckpointSigner,
        tip: LedgerTip,
    ) -> Result<Vec<u64>, Error> {
        let batch = Batch::build(entries, tip.size, tip.chain, tip.frontier, signer)?;
        match self.backend {
            Backend::Sqlite => {
                let mut sql = String::from("BEGIN IMMEDIATE;\n");
                let mut cells: Vec<&Cell> = Vec::new();
                for (statement, chunk) in batch.statements(Backend::Sqlite) {
                    sql.push_str(&statement);
                    sql.push_str(";\n");
                    cells.extend(chunk);
                }
                sql.push_str("COMMIT;");
                let mut conn = self.writer.acquire().await.map_err(database_error)?;
                // Each batch's text differs: not worth a place in the statement cache.
                let query = bind_all(sqlx::query(&sql).persistent(false), cells);
                if let Err(error) = query.execute(&mut *conn).await {
                    // Undo whatever ran; a connection that cannot roll back is not reused.
                    if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                        conn.close_on_drop();
                    }
                    return Err(database_error(error));
                }
            }
            Backend::Postgres => {
                let (sql, cells) = batch
                    .one_statement()
                    .ok_or_else(|| Error::internal("batch too large for one statement"))?;
                // Dropped on an error before the commit: the transaction is rolled back.
                let mut tx = self
                    .writer
                    .begin_with(format!(
                        "BEGIN; SELECT pg_advisory_xact_lock({APPEND_LOCK})"
                    ))
                    .await
                    .map_err(database_error)?;
                bind_all(sqlx::query(&sql).persistent(false), cells)
                    .execute(&mut *tx)
                    .await
                    .map_err(database_error)?;
                tx.commit().await.map_err(database_error)?;
            }
        }
        self.remember_tip(batch.tip);
        Ok(batch.seqs)
    }

    fn remember_tip(&self, tip: Option<LedgerTip>) {
        if let Ok(mut remembered) = self.ledger_tip.lock() {
            *remembered = tip;
        }
    }

    /// The Merkle nodes at `wanted`, each computed from the kept hashes below it (see
    /// [`merkle::TILE_HEIGHT`]): leaves from the log's own `leaf_hash`, higher kept levels
    /// from `merkle_node`, read as a few ranges rather than a row per node.
    async fn load_nodes(
        &self,
        conn: &mut sqlx::AnyConnection,
        wanted: &[(u32, u64)],
    ) -> Result<HashMap<(u32, u64), Hash>, Error> {
        let wanted: HashSet<(u32, u64)> = wanted.iter().copied().collect();
        let mut ranges: BTreeMap<u32, Vec<(u64, u64)>> = BTreeMap::new();
        for &(level, index) in &wanted {
            let span = merkle::kept_span(level, index);
            ranges
                .entry(span.level)
                .or_default()
                .push((span.first, span.first + span.count));
        }
        let mut kept: HashMap<(u32, u64), Hash> = HashMap::new();
        for (level, mut spans) in ranges {
            spans.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
            for (start, end) in spans {
                match merged.last_mut() {
                    Some(last) if start <= last.1 => last.1 = last.1.max(end),
                    _ => merged.push((start, end)),
                }
            }
            for (start, end) in merged {
                let rows = if level == 0 {
                    // Leaf `i` is the entry at seq `i + 1`.
                    sqlx::query(
                        "SELECT seq - 1, leaf_hash FROM disclosure_log WHERE seq > $1 AND seq <= $2",
                    )
                    .bind(start as i64)
                    .bind(end as i64)
                    .fetch_all(&mut *conn)
                    .await
                } else {
                    sqlx::query(
                        "SELECT idx, hash FROM merkle_node WHERE level = $1 AND idx >= $2 AND idx < $3",
                    )
                    .bind(i64::from(level))
                    .bind(start as i64)
                    .bind(end as i64)
                    .fetch_all(&mut *conn)
                    .await
                }
                .map_err(database_error)?;
                for row in rows {
                    let index: i64 = row.try_get(0).map_err(database_error)?;
                    let hash: String = row.try_get(1).map_err(database_error)?;
                    kept.insert((level, index as u64), hex_hash(&hash)?);
                }
            }
        }
        let mut found = HashMap::with_capacity(wanted.len());
        for (level, index) in wanted {
            let span = merkle::kept_span(level, index);
            let below = (span.first..span.first + span.count)
                .map(|i| kept.get(&(span.level, i)).copied())
                .collect::<Option<Vec<Hash>>>()
                .ok_or_else(|| {
                    Error::internal(format!("merkle node ({level}, {index}) is missing"))
                })?;
            let hash = merkle::perfect_root(&below).ok_or_else(|| {
                Error::internal(format!("merkle node ({level}, {index}) is missing"))
            })?;
            found.insert((level, index), hash);
        }
        Ok(found)
    }

    /// The root of the first `size` leaves.
    pub async fn tree_root(&self, size: u64) -> Result<Hash, Error> {
        self.merkle(|source| merkle::subtree_root(source, 0, size))
            .await
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Error> {
        self.merkle(|source| merkle::inclusion_proof(source, index, size))
            .await
    }

    /// The consistency proof from `old_size` to `size`.
    pub async fn consistency_proof(&self, old_size: u64, size: u64) -> Result<Vec<Hash>, Error> {
        self.merkle(|source| merkle::consistency_proof(source, old_size, size))
            .await
    }

    /// Runs a Merkle computation over stored nodes: a first pass learns which nodes it
    /// needs, then exactly those are loaded for the real pass.
    async fn merkle<T>(
        &self,
        compute: impl Fn(&mut Nodes) -> Result<T, (u32, u64)>,
    ) -> Result<T, Error> {
        let mut recorder = Nodes::Recording(Vec::new());
        // Placeholder hashes make this answer meaningless; only the requests matter.
        let _ = compute(&mut recorder);
        let Nodes::Recording(wanted) = recorder else {
            return Err(Error::internal("recorder changed kind"));
        };
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        let mut nodes = Nodes::Loaded(self.load_nodes(&mut conn, &wanted).await?);
        compute(&mut nodes)
            .map_err(|missing| Error::internal(format!("merkle node {missing:?} missing")))
    }

    /// The newest checkpoint, if any entry has been written.
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, Error> {
        let row = sqlx::query(
            "SELECT tree_size, root_hash, signed_at, signature, key_id FROM checkpoint \
             ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        row.map(|row| checkpoint_from_row(&row)).transpose()
    }

    /// Entries matching `filter`, oldest first, at most `filter.limit`.
    pub async fn entries(&self, filter: &EntryFilter) -> Result<Vec<StoredEntry>, Error> {
        let mut sql = String::from(
            "SELECT l.seq, l.entry, l.leaf_hash, l.chain_hash FROM disclosure_log l WHERE l.seq > $1",
        );
        let mut binds: Vec<String> = Vec::new();
        let mut add = |clause: &str, value: &str| {
            binds.push(value.to_owned());
            sql.push_str(&clause.replace('?', &format!("${}", binds.len() + 1)));
        };
        if let Some(person) = &filter.person_id {
            let persons: Vec<&String> = std::iter::once(person)
                .chain(&filter.also_person_ids)
                .collect();
            for (i, person) in persons.iter().enumerate() {
                let open = if i == 0 {
                    " AND l.seq IN (SELECT seq FROM disclosure_person WHERE person_id IN (?"
                } else {
                    ", ?"
                };
                let close = if i + 1 == persons.len() { "))" } else { "" };
                add(&format!("{open}{close}"), person);
            }
        }
        for (column, value) in [
            ("agency", &filter.agency),
            ("system_id", &filter.system_id),
            ("practitioner_id", &filter.practitioner_id),
            ("purpose", &filter.purpose),
            ("kind", &filter.kind),
            ("decision", &filter.decision),
        ] {
            if let Some(value) = value {
                add(&format!(" AND l.{column} = ?"), value);
            }
        }
        if let Some(from) = &filter.from {
            add(" AND l.recorded_at >= ?", from);
        }
        if let Some(to) = &filter.to {
            add(" AND l.recorded_at < ?", to);
        }
        if let Some(break_glass) = filter.break_glass {
            sql.push_str(if break_glass {
                " AND l.break_glass = 1"
            } else {
                " AND l.break_glass = 0"
            });
        }
        if filter.break_glass_unreviewed {
            sql.push_str(
                " AND l.break_glass = 1 AND NOT EXISTS \
                 (SELECT 1 FROM break_glass_review r WHERE r.entry_id = l.entry_id)",
            );
        }
        if let Some(through) = filter.through_seq {
            // A number we produced, not caller text: safe to inline.
            sql.push_str(&format!(" AND l.seq <= {}", through.min(i64::MAX as u64)));
        }
        sql.push_str(&format!(" ORDER BY l.seq LIMIT {}", filter.limit.max(1)));
        let mut query = sqlx::query(&sql).bind(filter.after_seq as i64);
        for value in &binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(database_error)?;
        let mut entries = rows
            .iter()
            .map(stored_entry_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.attach_reviews(&mut entries).await?;
        Ok(entries)
    }

    /// Entries counted per day from `from_day` (`YYYY-MM-DD`, inclusive), by agency,
    /// kind, decision and break-glass: what the console's charts are drawn from.
    pub async fn daily_counts(&self, from_day: &str) -> Result<Vec<DailyCount>, Error> {
        let rows = sqlx::query(
            "SELECT substr(recorded_at, 1, 10) AS day, agency, kind, decision, break_glass, \
             COUNT(*) AS entries FROM disclosure_log WHERE recorded_at >= $1 \
             GROUP BY substr(recorded_at, 1, 10), agency, kind, decision, break_glass \
             ORDER BY day",
        )
        .bind(from_day)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        rows.iter()
            .map(|row| {
                Ok(DailyCount {
                    day: row.try_get("day").map_err(database_error)?,
                    agency: row.try_get("agency").map_err(database_error)?,
                    kind: row.try_get("kind").map_err(database_error)?,
                    decision: row.try_get("decision").map_err(database_error)?,
                    break_glass: row
                        .try_get::<i64, _>("break_glass")
                        .map_err(database_error)?
                        != 0,
                    entries: row
                        .try_get::<i64, _>("entries")
                        .map_err(database_error)?
                        .max(0) as u64,
                })
            })
            .collect()
    }

    /// One entry by id.
    pub async fn entry(&self, entry_id: &str) -> Result<Option<StoredEntry>, Error> {
        let row = sqlx::query(
            "SELECT seq, entry, leaf_hash, chain_hash FROM disclosure_log WHERE entry_id = $1",
        )
        .bind(entry_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        let mut entries = row
            .as_ref()
            .map(stored_entry_from_row)
            .transpose()?
            .into_iter()
            .collect::<Vec<_>>();
        self.attach_reviews(&mut entries).await?;
        Ok(entries.pop())
    }

    /// Fills in the latest review of each break-glass entry.
    async fn attach_reviews(&self, entries: &mut [StoredEntry]) -> Result<(), Error> {
        let ids: Vec<String> = entries
            .iter()
            .filter(|stored| stored.entry.break_glass)
            .map(|stored| stored.entry.entry_id.clone())
            .collect();
        let mut latest = self.latest_reviews(&ids).await?;
        for stored in entries {
            stored.latest_review = latest.remove(&stored.entry.entry_id);
        }
        Ok(())
    }

    /// The latest review of each of `entry_ids` that has been reviewed: the newest by
    /// time, and of two at the same instant the one logged later.
    pub async fn latest_reviews(
        &self,
        entry_ids: &[String],
    ) -> Result<HashMap<String, BreakGlassReview>, Error> {
        let mut latest: HashMap<String, (i64, BreakGlassReview)> = HashMap::new();
        for chunk in entry_ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT r.review_id, r.entry_id, r.outcome, r.note, r.reviewer_system, \
                 r.reviewer_id, r.reviewed_at, r.log_entry_id, l.seq \
                 FROM break_glass_review r JOIN disclosure_log l ON l.entry_id = r.log_entry_id \
                 WHERE r.entry_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await.map_err(database_error)? {
                let outcome: String = row.try_get(2).map_err(database_error)?;
                let review = BreakGlassReview {
                    review_id: row.try_get(0).map_err(database_error)?,
                    entry_id: row.try_get(1).map_err(database_error)?,
                    outcome: ReviewOutcome::parse(&outcome)
                        .ok_or_else(|| Error::internal("stored review outcome is unknown"))?,
                    note: row.try_get(3).map_err(database_error)?,
                    reviewer_system: row.try_get(4).map_err(database_error)?,
                    reviewer_id: row.try_get(5).map_err(database_error)?,
                    reviewed_at: row.try_get(6).map_err(database_error)?,
                    log_entry_id: row.try_get(7).map_err(database_error)?,
                };
                let seq: i64 = row.try_get(8).map_err(database_error)?;
                let newer = match latest.get(&review.entry_id) {
                    Some((old_seq, old)) => {
                        (&review.reviewed_at, seq) > (&old.reviewed_at, *old_seq)
                    }
                    None => true,
                };
                if newer {
                    latest.insert(review.entry_id.clone(), (seq, review));
                }
            }
        }
        Ok(latest
            .into_iter()
            .map(|(id, (_, review))| (id, review))
            .collect())
    }

    /// Which of `entry_ids` an IG officer has released for subject access.
    pub async fn released_for_subject_access(
        &self,
        entry_ids: &[String],
    ) -> Result<HashSet<String>, Error> {
        let mut released = HashSet::new();
        for chunk in entry_ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT DISTINCT entry_id FROM subject_access_release WHERE entry_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            released.extend(query.fetch_all(&self.pool).await.map_err(database_error)?);
        }
        Ok(released)
    }

    /// The checkpoint of exactly `tree_size` entries, if one was signed.
    pub async fn checkpoint_at(&self, tree_size: u64) -> Result<Option<Checkpoint>, Error> {
        let row = sqlx::query(
            "SELECT tree_size, root_hash, signed_at, signature, key_id FROM checkpoint \
             WHERE tree_size = $1",
        )
        .bind(tree_size as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        row.map(|row| checkpoint_from_row(&row)).transpose()
    }

    /// The first checkpoint signed for a size after `tree_size`, if any.
    pub async fn checkpoint_after(&self, tree_size: u64) -> Result<Option<Checkpoint>, Error> {
        let row = sqlx::query(
            "SELECT tree_size, root_hash, signed_at, signature, key_id FROM checkpoint \
             WHERE tree_size > $1 ORDER BY tree_size LIMIT 1",
        )
        .bind(tree_size as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(database_error)?;
        row.map(|row| checkpoint_from_row(&row)).transpose()
    }

    /// The stored rows after `after_seq` up to `through_seq`, at most `page` of them, as
    /// raw columns, for verification. The filter columns come joined into one value by
    /// the database ([`RawLogRow::filter_columns`]): five values a row instead of
    /// fourteen, which is most of the cost of reading the log back.
    pub async fn raw_log_page(
        &self,
        after_seq: u64,
        through_seq: u64,
        page: u32,
    ) -> Result<Vec<RawLogRow>, Error> {
        let joined = FILTER_COLUMNS
            .iter()
            .map(|column| match *column {
                "break_glass" => "CAST(break_glass AS TEXT)".to_owned(),
                other => other.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(&format!(" || '{COLUMN_SEPARATOR}' || "));
        let rows = sqlx::query(&format!(
            "SELECT seq, {joined}, entry, leaf_hash, chain_hash FROM disclosure_log \
             WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
        ))
        .bind(after_seq as i64)
        .bind(through_seq as i64)
        .bind(i64::from(page))
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get(0)?;
                Ok(RawLogRow {
                    seq: seq as u64,
                    filter_columns: row.try_get(1)?,
                    entry: row.try_get(2)?,
                    leaf_hash: row.try_get(3)?,
                    chain_hash: row.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(database_error)
    }
}

/// The columns kept beside each entry for filtering, in the order
/// [`RawLogRow::filter_columns`] joins them.
pub const FILTER_COLUMNS: [&str; 10] = [
    "entry_id",
    "recorded_at",
    "kind",
    "decision",
    "agency",
    "system_id",
    "practitioner_id",
    "purpose",
    "break_glass",
    "subject_person_id",
];

/// Joins the filter columns: the ASCII unit separator, which validated input never holds
/// (control characters are refused), so a value edited to hold one shows up as a wrong
/// number of columns.
pub const COLUMN_SEPARATOR: char = '\u{1f}';

/// A disclosure-log row exactly as stored, for verification.
#[derive(Debug, Clone)]
pub struct RawLogRow {
    pub seq: u64,
    /// The [`FILTER_COLUMNS`] as stored, joined with [`COLUMN_SEPARATOR`]
    /// (`break_glass` as `0` or `1`).
    pub filter_columns: String,
    pub entry: String,
    pub leaf_hash: String,
    pub chain_hash: String,
}

pub(super) fn stored_entry_from_row(row: &sqlx::any::AnyRow) -> Result<StoredEntry, Error> {
    let seq: i64 = row.try_get(0).map_err(database_error)?;
    let text: String = row.try_get(1).map_err(database_error)?;
    Ok(StoredEntry {
        seq: seq as u64,
        entry: serde_json::from_str(&text).map_err(Error::internal)?,
        text,
        leaf_hash: row.try_get(2).map_err(database_error)?,
        chain_hash: row.try_get(3).map_err(database_error)?,
        latest_review: None,
    })
}

/// One value of a row to insert: text borrowed from the entry where it can be, so a
/// batch does not copy its entries' canonical text.
enum Cell<'a> {
    Int(i64),
    Text(Cow<'a, str>),
}

impl<'a> Cell<'a> {
    fn owned(text: String) -> Self {
        Cell::Text(Cow::Owned(text))
    }

    fn borrowed(text: &'a str) -> Self {
        Cell::Text(Cow::Borrowed(text))
    }
}

/// Multi-row `INSERT … VALUES (…), (…)` statements for `rows`, each kept under both
/// backends' bind-parameter limits, with the rows each one inserts.
fn insert_statements<'r, 'a>(
    backend: Backend,
    table_and_columns: &str,
    rows: &'r [Vec<Cell<'a>>],
) -> Vec<(String, &'r [Vec<Cell<'a>>])> {
    const MAX_PARAMETERS: usize = 30_000;
    let Some(width) = rows.first().map(Vec::len) else {
        return Vec::new();
    };
    // Statements of power-of-two row counts (the set bits of the total), so a handful of
    // statement texts cover every batch size and stay prepared in the statement cache.
    let largest = (MAX_PARAMETERS / width).max(1);
    let largest = 1usize << largest.ilog2();
    let mut statements = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let size = largest.min(1usize << rest.len().ilog2());
        let (chunk, after) = rest.split_at(size);
        rest = after;
        let mut sql = format!("INSERT INTO {table_and_columns} VALUES ");
        push_values(&mut sql, backend, chunk, &mut 0);
        statements.push((sql, chunk));
    }
    statements
}

/// `(…), (…)`: one parenthesised list of placeholders per row. PostgreSQL's are numbered
/// on from `bound`, which counts the values bound so far in the statement.
fn push_values(sql: &mut String, backend: Backend, rows: &[Vec<Cell>], bound: &mut usize) {
    for (i, row) in rows.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for j in 0..row.len() {
            *bound += 1;
            if j > 0 {
                sql.push_str(", ");
            }
            // SQLite treats `$N` as a named parameter, which makes binding quadratic in
            // the parameter count (and, in a query of several statements, numbers it
            // across all of them); plain `?` binds in order.
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&bound.to_string());
                }
            }
        }
        sql.push(')');
    }
}

/// `query` with `cells` bound in order.
fn bind_all<'q, 'c: 'q, 'a: 'c>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    cells: impl IntoIterator<Item = &'c Cell<'a>>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for cell in cells {
        query = match cell {
            Cell::Int(value) => query.bind(*value),
            Cell::Text(value) => query.bind(value.as_ref()),
        };
    }
    query
}

async fn insert_annotation(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    annotation: &Annotation,
) -> Result<(), Error> {
    match annotation {
        Annotation::Review(review) => sqlx::query(
            "INSERT INTO break_glass_review (review_id, entry_id, outcome, note, \
             reviewer_system, reviewer_id, reviewed_at, log_entry_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&review.review_id)
        .bind(&review.entry_id)
        .bind(review.outcome.as_str())
        .bind(&review.note)
        .bind(&review.reviewer_system)
        .bind(&review.reviewer_id)
        .bind(&review.reviewed_at)
        .bind(&review.log_entry_id),
        Annotation::Release(release) => sqlx::query(
            "INSERT INTO subject_access_release (release_id, entry_id, note, \
             released_by_system, released_by_id, released_at, log_entry_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&release.release_id)
        .bind(&release.entry_id)
        .bind(&release.note)
        .bind(&release.released_by_system)
        .bind(&release.released_by_id)
        .bind(&release.released_at)
        .bind(&release.log_entry_id),
        Annotation::Alert { alert, notices } => {
            crate::store::notices::insert_notice_rows(
                &mut *conn,
                backend,
                &alert.alert_id,
                notices,
            )
            .await?;
            sqlx::query(
                "INSERT INTO privacy_alert (alert_id, alert_key, rule_id, rules_version, \
             raised_at, system_id, practitioner_id, summary, entry_ids, log_entry_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&alert.alert_id)
            .bind(&alert.alert_key)
            .bind(&alert.rule_id)
            .bind(&alert.rules_version)
            .bind(&alert.raised_at)
            .bind(&alert.system_id)
            .bind(&alert.practitioner_id)
            .bind(&alert.summary)
            .bind(alert.entry_ids.join(","))
            .bind(&alert.log_entry_id)
        }
        Annotation::AlertEvent(event) => sqlx::query(
            "INSERT INTO privacy_alert_event (event_id, alert_id, step, action, assignee, \
             outcome, note, by_system, by_id, at, log_entry_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&event.event_id)
        .bind(&event.alert_id)
        .bind(i64::from(event.step))
        .bind(event.action.as_str())
        .bind(&event.assignee)
        .bind(event.outcome.map(|o| o.as_str()).unwrap_or_default())
        .bind(&event.note)
        .bind(&event.by_system)
        .bind(&event.by_id)
        .bind(&event.at)
        .bind(&event.log_entry_id),
    }
    .execute(&mut *conn)
    .await
    .map_err(database_error)?;
    Ok(())
}

/// Why an annotated entry may not be committed now, if it may not: an alert whose key is
/// already raised, or a case step that is not the next one of an existing alert.
async fn guard(
    conn: &mut sqlx::AnyConnection,
    annotation: &Annotation,
) -> Result<Option<Error>, Error> {
    match annotation {
        Annotation::Review(_) | Annotation::Release(_) => Ok(None),
        Annotation::Alert { alert, .. } => {
            let raised: Option<String> =
                sqlx::query_scalar("SELECT alert_id FROM privacy_alert WHERE alert_key = $1")
                    .bind(&alert.alert_key)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(database_error)?;
            Ok(raised.map(|_| Error::FailedPrecondition {
                rule: "alerts.already_raised",
                reason: "an alert about the same thing is already raised".into(),
            }))
        }
        Annotation::AlertEvent(event) => {
            let (exists, steps): (i64, i64) = {
                let row = sqlx::query(
                    "SELECT (SELECT COUNT(*) FROM privacy_alert WHERE alert_id = $1), \
                     (SELECT COUNT(*) FROM privacy_alert_event WHERE alert_id = $1)",
                )
                .bind(&event.alert_id)
                .fetch_one(&mut *conn)
                .await
                .map_err(database_error)?;
                (
                    row.try_get(0).map_err(database_error)?,
                    row.try_get(1).map_err(database_error)?,
                )
            };
            if exists == 0 {
                return Ok(Some(Error::NotFound {
                    field: "alert_id".into(),
                    reason: "no privacy alert has this id".into(),
                }));
            }
            Ok(
                (steps != i64::from(event.step) - 1).then(|| Error::FailedPrecondition {
                    rule: "alerts.case_changed",
                    reason: "the alert's case changed since it was read (another officer acted \
                         on it): read it again and retry"
                        .into(),
                }),
            )
        }
    }
}

fn checkpoint_from_row(row: &sqlx::any::AnyRow) -> Result<Checkpoint, Error> {
    use base64::Engine;
    let size: i64 = row.try_get(0).map_err(database_error)?;
    let root: String = row.try_get(1).map_err(database_error)?;
    let signature: String = row.try_get(3).map_err(database_error)?;
    Ok(Checkpoint {
        tree_size: size as u64,
        root: hex_hash(&root)?,
        signed_at: row.try_get(2).map_err(database_error)?,
        signature: base64::engine::general_purpose::STANDARD
            .decode(signature)
            .map_err(Error::internal)?,
        key_id: row.try_get(4).map_err(database_error)?,
    })
}

fn checkpoint_cells(checkpoint: Checkpoint) -> Vec<Cell<'static>> {
    use base64::Engine;
    vec![
        Cell::Int(checkpoint.tree_size as i64),
        Cell::owned(hex::encode(checkpoint.root)),
        Cell::owned(checkpoint.signed_at),
        Cell::owned(base64::engine::general_purpose::STANDARD.encode(&checkpoint.signature)),
        Cell::owned(checkpoint.key_id),
    ]
}
