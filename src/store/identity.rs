//! SQL for identity across agencies: each person-details record's demographics and
//! blocking keys, name frequencies, the append-only identity decisions, and each
//! person's resolved person derived from the active links.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::{AnyConnection, Row};

use crate::domain::identity::storage::IdentityStorage;
use crate::domain::identity::{
    Candidate, Demographics, IdentityCard, IdentityLink, IdentityLogItem, LinkMethod, MatchRules,
    NameField, NameShares, PublishedDetails, Resolution, ReviewState, ReviewTask, Score,
};
use crate::domain::ledger::bound::BoundRow;
use crate::domain::ledger::{EntryFilter, StoredEntry};
use crate::domain::records::PersonRef;
use crate::domain::records::facts::PersonDetails;
use crate::domain::records::{Actor, Fact, Identifier};
use crate::domain::{Agency, Stored};
use crate::error::Error;
use crate::store::{Store, database_error};

/// Most candidate persons compared with one record: blocking keys shared by more
/// persons than this are too common to tell anyone apart.
const CANDIDATES_MAX: i64 = 200;
/// The name-frequency row that counts every person-details record.
const TOTAL: (&str, &str) = ("*", "*");
/// Person-details records on record before name frequencies are used: in a small
/// population every name looks common (one Dean among three persons is a third of
/// them), so below this the rules' average weights stand instead.
const TF_MIN_RECORDS: i64 = 1_000;

/// Decision kinds, as stored.
const AUTO_LINK: &str = "auto_link";
const REVIEW_RAISED: &str = "review_raised";
const CONFIRMED: &str = "confirmed";
const REJECTED: &str = "rejected";
const SPLIT: &str = "split";

fn field_word(field: NameField) -> &'static str {
    match field {
        NameField::Given => "given",
        NameField::Family => "family",
    }
}

/// `$first, $first+1, ...` for `count` binds.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one identity decision stores.
pub(crate) struct NewDecision<'a> {
    pub kind: &'static str,
    pub person_id: &'a str,
    pub other_person_id: &'a str,
    pub task_id: &'a str,
    pub link_id: &'a str,
    pub probability: Option<f64>,
    pub rules_version: &'a str,
    pub detail: serde_json::Value,
    pub system_id: &'a str,
    pub practitioner_id: &'a str,
    pub note: &'a str,
    pub at: &'a str,
}

pub(crate) async fn insert_decision(
    conn: &mut AnyConnection,
    new: NewDecision<'_>,
) -> Result<String, sqlx::Error> {
    let decision_id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO identity_decision (decision_id, kind, person_id, other_person_id, task_id, \
         link_id, probability, rules_version, detail, system_id, practitioner_id, note, \
         decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&decision_id)
    .bind(new.kind)
    .bind(new.person_id)
    .bind(new.other_person_id)
    .bind(new.task_id)
    .bind(new.link_id)
    .bind(
        new.probability
            .map(|p| format!("{p:.6}"))
            .unwrap_or_default(),
    )
    .bind(new.rules_version)
    .bind(new.detail.to_string())
    .bind(new.system_id)
    .bind(new.practitioner_id)
    .bind(new.note)
    .bind(new.at)
    .execute(&mut *conn)
    .await?;
    Ok(decision_id)
}

/// PostgreSQL advisory lock taken by a transaction that matches persons.
const MATCHING_LOCK: i64 = 0x5AFE_1D00;

/// Serialises matching across gateway processes until the transaction ends.
pub(crate) async fn lock_matching(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MATCHING_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A new person resolves to themself until a link joins them to someone.
pub(crate) async fn add_person(
    conn: &mut AnyConnection,
    person_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO person_resolution (person_id, resolved_id) VALUES ($1, $2)")
        .bind(person_id)
        .bind(person_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The resolved person of `person_id` (itself when it was never linked).
pub(crate) async fn resolved_id(
    conn: &mut AnyConnection,
    person_id: &str,
) -> Result<String, sqlx::Error> {
    let resolved: Option<String> =
        sqlx::query_scalar("SELECT resolved_id FROM person_resolution WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(resolved.unwrap_or_else(|| person_id.to_owned()))
}

/// The resolved person of each of `person_ids` that is not its own.
pub(crate) async fn resolutions(
    conn: &mut AnyConnection,
    person_ids: &[&str],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let mut resolved = HashMap::new();
    for chunk in person_ids.chunks(500) {
        let sql = format!(
            "SELECT person_id, resolved_id FROM person_resolution \
             WHERE person_id IN ({}) AND resolved_id <> person_id",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            resolved.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    Ok(resolved)
}

/// Every person resolved to the same person as `person_id`, itself included.
pub(crate) async fn members(
    conn: &mut AnyConnection,
    person_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let resolved = resolved_id(conn, person_id).await?;
    let mut members: Vec<String> = sqlx::query_scalar(
        "SELECT person_id FROM person_resolution WHERE resolved_id = $1 ORDER BY person_id",
    )
    .bind(&resolved)
    .fetch_all(&mut *conn)
    .await?;
    if !members.iter().any(|m| m == person_id) {
        members.push(person_id.to_owned());
    }
    Ok(members)
}

/// Rewrites every person id in `fact` to its resolved person.
pub(crate) async fn resolve_fact(
    conn: &mut AnyConnection,
    fact: &mut Fact,
) -> Result<(), sqlx::Error> {
    let ids = fact.person_ids();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let resolved = resolutions(conn, &refs).await?;
    rewrite(fact, &resolved);
    Ok(())
}

/// Replaces each person id that `resolved` maps.
pub(crate) fn rewrite(fact: &mut Fact, resolved: &HashMap<String, String>) {
    for (_, person) in fact.person_refs_mut() {
        if let Some(to) = person.person_id().and_then(|id| resolved.get(id)) {
            *person = crate::domain::records::PersonRef::PersonId(to.clone());
        }
    }
}

/// Stores the demographics of a person-details record (replacing those of its previous
/// version), its person's blocking keys and the name counts. Returns the demographics.
pub(crate) async fn record_demographics(
    conn: &mut AnyConnection,
    record_id: &str,
    person_id: &str,
    details: &PersonDetails,
    rules: &MatchRules,
) -> Result<Demographics, Error> {
    let demographics = Demographics::from_details(details);
    let json = serde_json::to_string(&demographics).map_err(Error::internal)?;
    let existed: Option<String> =
        sqlx::query_scalar("SELECT record_id FROM person_demographics WHERE record_id = $1")
            .bind(record_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(database_error)?;
    let statement = if existed.is_some() {
        "UPDATE person_demographics SET person_id = $2, demographics = $3 WHERE record_id = $1"
    } else {
        "INSERT INTO person_demographics (record_id, person_id, demographics) VALUES ($1, $2, $3)"
    };
    sqlx::query(statement)
        .bind(record_id)
        .bind(person_id)
        .bind(&json)
        .execute(&mut *conn)
        .await
        .map_err(database_error)?;
    for key in rules.blocking_keys(&demographics) {
        sqlx::query(
            "INSERT INTO person_blocking_key (blocking_key, person_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&key)
        .bind(person_id)
        .execute(&mut *conn)
        .await
        .map_err(database_error)?;
    }
    if existed.is_none() {
        let terms = demographics.tf_terms();
        let counted = terms
            .iter()
            .map(|(field, value)| (field_word(*field), value.as_str()))
            .chain(std::iter::once(TOTAL));
        for (field, value) in counted {
            sqlx::query(
                "INSERT INTO name_frequency (field, value, count) VALUES ($1, $2, 1) \
                 ON CONFLICT (field, value) DO UPDATE SET count = name_frequency.count + 1",
            )
            .bind(field)
            .bind(value)
            .execute(&mut *conn)
            .await
            .map_err(database_error)?;
        }
    }
    Ok(demographics)
}

/// The shares of the record's names among all person-details records.
pub(crate) async fn name_shares(
    conn: &mut AnyConnection,
    demographics: &Demographics,
) -> Result<NameShares, sqlx::Error> {
    let count = |field: &'static str, value: String| {
        sqlx::query_scalar::<_, i64>(
            "SELECT count FROM name_frequency WHERE field = $1 AND value = $2",
        )
        .bind(field)
        .bind(value)
    };
    let total = count(TOTAL.0, TOTAL.1.to_owned())
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or(0);
    let mut shares = NameShares::default();
    if total < TF_MIN_RECORDS {
        return Ok(shares);
    }
    for (field, value) in demographics.tf_terms() {
        if let Some(n) = count(field_word(field), value.clone())
            .fetch_optional(&mut *conn)
            .await?
        {
            shares.insert(field, value, n as f64 / total as f64);
        }
    }
    Ok(shares)
}

/// The resolved persons that share a blocking key with `demographics`, with every
/// identifier and demographics record of each; never `exclude`'s own resolved person,
/// nor anyone a steward rejected as `exclude`.
pub(crate) async fn candidates(
    conn: &mut AnyConnection,
    rules: &MatchRules,
    demographics: &Demographics,
    exclude: Option<&str>,
) -> Result<Vec<Candidate>, sqlx::Error> {
    let keys = rules.blocking_keys(demographics);
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT DISTINCT pr.resolved_id FROM person_blocking_key k \
         JOIN person_resolution pr ON pr.person_id = k.person_id \
         WHERE k.blocking_key IN ({}) ORDER BY pr.resolved_id LIMIT {CANDIDATES_MAX}",
        placeholders(1, keys.len())
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for key in &keys {
        query = query.bind(key);
    }
    let mut resolved: BTreeSet<String> = query.fetch_all(&mut *conn).await?.into_iter().collect();
    if let Some(person) = exclude {
        resolved.remove(&resolved_id(conn, person).await?);
        for rejected in rejected_with(conn, person).await? {
            resolved.remove(&resolved_id(conn, &rejected).await?);
        }
    }
    // Two reads for all candidates (demographics, identifiers), not two per candidate.
    let mut found: Vec<Candidate> = resolved
        .into_iter()
        .map(|person_id| Candidate {
            person_id,
            identifiers: Vec::new(),
            records: Vec::new(),
        })
        .collect();
    let ids: Vec<&str> = found.iter().map(|c| c.person_id.as_str()).collect();
    let mut records: HashMap<String, Vec<Demographics>> = HashMap::new();
    let mut identifiers: HashMap<String, Vec<Identifier>> = HashMap::new();
    for chunk in ids.chunks(500) {
        for (resolved, json) in
            by_resolved(conn, "person_demographics", "demographics", chunk).await?
        {
            let demographics =
                serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            records.entry(resolved).or_default().push(demographics);
        }
        for (resolved, key) in
            by_resolved(conn, "person_identifier", "identifier_key", chunk).await?
        {
            if let Some(identifier) = Identifier::from_key(&key) {
                identifiers.entry(resolved).or_default().push(identifier);
            }
        }
    }
    for candidate in &mut found {
        candidate.records = records.remove(&candidate.person_id).unwrap_or_default();
        candidate.identifiers = identifiers.remove(&candidate.person_id).unwrap_or_default();
    }
    Ok(found)
}

/// (resolved person, `column`) for each row of `table` (keyed by person id) whose person
/// resolves to one of `resolved`, ordered by that column.
async fn by_resolved(
    conn: &mut AnyConnection,
    table: &'static str,
    column: &'static str,
    resolved: &[&str],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT pr.resolved_id, t.{column} FROM person_resolution pr \
         JOIN {table} t ON t.person_id = pr.person_id \
         WHERE pr.resolved_id IN ({}) ORDER BY t.{column}",
        placeholders(1, resolved.len())
    );
    let mut query = sqlx::query(&sql);
    for id in resolved {
        query = query.bind(*id);
    }
    let mut rows = Vec::new();
    for row in query.fetch_all(&mut *conn).await? {
        rows.push((row.try_get(0)?, row.try_get(1)?));
    }
    Ok(rows)
}

/// Everyone a steward rejected as the same person as `person_id`.
async fn rejected_with(
    conn: &mut AnyConnection,
    person_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT other_person_id FROM identity_decision WHERE kind = $1 AND person_id = $2 \
         UNION SELECT person_id FROM identity_decision WHERE kind = $1 AND other_person_id = $2",
    )
    .bind(REJECTED)
    .bind(person_id)
    .fetch_all(&mut *conn)
    .await
}

/// Matches a person who has no linked persons yet against everyone else on record, and
/// stores what the rules decide: a link, a review task, or nothing (a new person).
pub(crate) async fn match_person(
    conn: &mut AnyConnection,
    actor: &Actor,
    person_id: &str,
    identifiers: &[Identifier],
    demographics: &Demographics,
    rules: &MatchRules,
    at: &str,
) -> Result<bool, sqlx::Error> {
    if members(conn, person_id).await?.len() > 1 || has_open_task(conn, person_id).await? {
        return Ok(false);
    }
    let candidates = candidates(conn, rules, demographics, Some(person_id)).await?;
    if candidates.is_empty() {
        return Ok(false);
    }
    let shares = name_shares(conn, demographics).await?;
    let decision = |kind, other, probability, detail| NewDecision {
        kind,
        person_id,
        other_person_id: other,
        task_id: "",
        link_id: "",
        probability,
        rules_version: rules.version(),
        detail,
        system_id: &actor.system_id,
        practitioner_id: &actor.practitioner_id,
        note: "",
        at,
    };
    match rules.resolve(identifiers, demographics, &candidates, &shares) {
        Resolution::Link {
            person_id: other,
            score,
        } => {
            let detail = serde_json::json!({ "score": score });
            insert_decision(
                conn,
                decision(AUTO_LINK, &other, Some(score.probability), detail),
            )
            .await?;
            recompute(conn, &[person_id]).await?;
            Ok(true)
        }
        Resolution::Review {
            candidates,
            reasons,
        } => {
            let Some((best, score)) = candidates.first() else {
                return Ok(false);
            };
            let detail = serde_json::json!({ "candidates": candidates, "reasons": reasons });
            insert_decision(
                conn,
                decision(REVIEW_RAISED, best, Some(score.probability), detail),
            )
            .await?;
            Ok(true)
        }
        Resolution::New { .. } => Ok(false),
    }
}

async fn has_open_task(conn: &mut AnyConnection, person_id: &str) -> Result<bool, sqlx::Error> {
    let open: Option<String> = sqlx::query_scalar(
        "SELECT t.decision_id FROM identity_decision t WHERE t.kind = $1 AND t.person_id = $2 \
         AND NOT EXISTS (SELECT 1 FROM identity_decision d WHERE d.task_id = t.decision_id)",
    )
    .bind(REVIEW_RAISED)
    .bind(person_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(open.is_some())
}

/// Recomputes the resolved person of everyone connected to `seeds` by active links:
/// each connected component is named by its earliest person.
pub(crate) async fn recompute(conn: &mut AnyConnection, seeds: &[&str]) -> Result<(), sqlx::Error> {
    let mut done: HashSet<String> = HashSet::new();
    for seed in seeds {
        if done.contains(*seed) {
            continue;
        }
        let mut component: Vec<String> = vec![(*seed).to_owned()];
        let mut seen: HashSet<String> = component.iter().cloned().collect();
        let mut next = 0;
        while next < component.len() {
            let person = component[next].clone();
            next += 1;
            for other in active_neighbours(conn, &person).await? {
                if seen.insert(other.clone()) {
                    component.push(other);
                }
            }
        }
        let sql = format!(
            "SELECT person_id FROM person WHERE person_id IN ({}) \
             ORDER BY created_at, person_id LIMIT 1",
            placeholders(1, component.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for person in &component {
            query = query.bind(person);
        }
        let canonical = query.fetch_one(&mut *conn).await?;
        for person in &component {
            sqlx::query("UPDATE person_resolution SET resolved_id = $1 WHERE person_id = $2")
                .bind(&canonical)
                .bind(person)
                .execute(&mut *conn)
                .await?;
        }
        done.extend(component);
    }
    Ok(())
}

/// The persons `person_id` is joined to by a link not undone by a split.
async fn active_neighbours(
    conn: &mut AnyConnection,
    person_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CASE WHEN d.person_id = $1 THEN d.other_person_id ELSE d.person_id END \
         FROM identity_decision d \
         WHERE d.kind IN ($2, $3) AND (d.person_id = $1 OR d.other_person_id = $1) \
         AND NOT EXISTS (SELECT 1 FROM identity_decision s WHERE s.kind = $4 \
                         AND s.link_id = d.decision_id)",
    )
    .bind(person_id)
    .bind(AUTO_LINK)
    .bind(CONFIRMED)
    .bind(SPLIT)
    .fetch_all(&mut *conn)
    .await
}

/// One stored decision row, as the steward's views read it.
struct DecisionRow {
    decision_id: String,
    kind: String,
    person_id: String,
    other_person_id: String,
    task_id: String,
    link_id: String,
    probability: String,
    rules_version: String,
    detail: String,
    system_id: String,
    practitioner_id: String,
    note: String,
    decided_at: String,
}

const DECISION_COLUMNS: &str = "decision_id, kind, person_id, other_person_id, task_id, link_id, \
     probability, rules_version, detail, system_id, practitioner_id, note, decided_at";

fn decision_row(row: &sqlx::any::AnyRow) -> Result<DecisionRow, sqlx::Error> {
    Ok(DecisionRow {
        decision_id: row.try_get(0)?,
        kind: row.try_get(1)?,
        person_id: row.try_get(2)?,
        other_person_id: row.try_get(3)?,
        task_id: row.try_get(4)?,
        link_id: row.try_get(5)?,
        probability: row.try_get(6)?,
        rules_version: row.try_get(7)?,
        detail: row.try_get(8)?,
        system_id: row.try_get(9)?,
        practitioner_id: row.try_get(10)?,
        note: row.try_get(11)?,
        decided_at: row.try_get(12)?,
    })
}

impl DecisionRow {
    fn probability(&self) -> Option<f64> {
        self.probability.parse().ok()
    }

    fn method(&self) -> LinkMethod {
        if self.kind == AUTO_LINK {
            LinkMethod::Automatic
        } else {
            LinkMethod::Steward
        }
    }
}

async fn decision(
    conn: &mut AnyConnection,
    decision_id: &str,
) -> Result<Option<DecisionRow>, sqlx::Error> {
    let sql = format!("SELECT {DECISION_COLUMNS} FROM identity_decision WHERE decision_id = $1");
    let row = sqlx::query(&sql)
        .bind(decision_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(decision_row).transpose()
}

fn decode_detail(detail: &str) -> serde_json::Value {
    serde_json::from_str(detail).unwrap_or(serde_json::Value::Null)
}

/// The best candidate's score stored with a review task or link.
fn stored_score(detail: &serde_json::Value) -> Option<Score> {
    let score = detail
        .get("score")
        .cloned()
        .or_else(|| detail.get("candidates")?.get(0)?.get(1).cloned())?;
    serde_json::from_value(score).ok()
}

impl Store {
    /// The resolved person of `person_id`.
    pub async fn resolved_person(&self, person_id: &str) -> Result<String, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        resolved_id(&mut conn, person_id)
            .await
            .map_err(database_error)
    }

    /// The active identity links joining the persons resolved to `resolved_id`.
    pub async fn active_identity_links(
        &self,
        resolved_id: &str,
    ) -> Result<Vec<IdentityLink>, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        active_links_within(&mut conn, resolved_id)
            .await
            .map_err(database_error)
    }

    /// Every person resolved to the same person as `person_id`, itself included.
    pub async fn identity_members(&self, person_id: &str) -> Result<Vec<String>, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        members(&mut conn, person_id).await.map_err(database_error)
    }

    /// The persons on record that may be the one `demographics` describe, and the
    /// frequencies of its names: what a search by demographics compares.
    pub async fn search_candidates(
        &self,
        rules: &MatchRules,
        demographics: &Demographics,
    ) -> Result<(Vec<Candidate>, NameShares), Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        let found = candidates(&mut conn, rules, demographics, None)
            .await
            .map_err(database_error)?;
        let shares = name_shares(&mut conn, demographics)
            .await
            .map_err(database_error)?;
        Ok((found, shares))
    }

    /// Every person-details record's demographics, for re-estimating the rules offline
    /// (a full read: never on a request path).
    pub async fn all_demographics(&self) -> Result<Vec<Demographics>, Error> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT demographics FROM person_demographics ORDER BY record_id")
                .fetch_all(&self.pool)
                .await
                .map_err(database_error)?;
        rows.iter()
            .map(|json| serde_json::from_str(json).map_err(Error::internal))
            .collect()
    }

    /// Review tasks, oldest first; only open ones unless `include_closed`.
    pub async fn review_tasks(&self, include_closed: bool) -> Result<Vec<ReviewTask>, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        let sql = format!(
            "SELECT {DECISION_COLUMNS} FROM identity_decision WHERE kind = $1 ORDER BY seq"
        );
        let rows = sqlx::query(&sql)
            .bind(REVIEW_RAISED)
            .fetch_all(&mut *conn)
            .await
            .map_err(database_error)?;
        let mut tasks = Vec::new();
        for row in rows {
            let raised = decision_row(&row).map_err(database_error)?;
            let task = review_task(&mut conn, raised)
                .await
                .map_err(database_error)?;
            if include_closed || task.state == ReviewState::Open {
                tasks.push(task);
            }
        }
        Ok(tasks)
    }

    /// One review task.
    pub async fn review_task(&self, task_id: &str) -> Result<Option<ReviewTask>, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        let Some(raised) = decision(&mut conn, task_id)
            .await
            .map_err(database_error)?
            .filter(|d| d.kind == REVIEW_RAISED)
        else {
            return Ok(None);
        };
        review_task(&mut conn, raised)
            .await
            .map(Some)
            .map_err(database_error)
    }

    /// What each agency published about the persons resolved with `person_id`, but
    /// `except` (the other side of a review task, once the two are one person).
    pub async fn identity_card(
        &self,
        person_id: &str,
        except: Option<&str>,
    ) -> Result<IdentityCard, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        let mut persons = members(&mut conn, person_id)
            .await
            .map_err(database_error)?;
        persons.retain(|p| Some(p.as_str()) != except);
        identity_card(&mut conn, person_id, &persons)
            .await
            .map_err(database_error)
    }

    /// What the one agency record `person_id` says (the record that raised a task).
    pub async fn record_card(&self, person_id: &str) -> Result<IdentityCard, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        identity_card(&mut conn, person_id, &[person_id.to_owned()])
            .await
            .map_err(database_error)
    }

    /// Closes an open review task as confirmed (the persons are linked) or rejected (never
    /// proposed again), in one transaction; returns the decision id.
    pub async fn decide_task(
        &self,
        task_id: &str,
        confirm: bool,
        actor: &Actor,
        note: &str,
        at: &str,
    ) -> Result<String, Error> {
        let mut tx = self.begin_write().await.map_err(database_error)?;
        let task = match decision(&mut tx, task_id).await.map_err(database_error)? {
            Some(row) if row.kind == REVIEW_RAISED => {
                review_task(&mut tx, row).await.map_err(database_error)?
            }
            _ => {
                return Err(Error::NotFound {
                    field: "task_id".into(),
                    reason: "no review task has this id".into(),
                });
            }
        };
        if task.state != ReviewState::Open {
            return Err(Error::FailedPrecondition {
                rule: "identity.task_closed",
                reason: format!("the review task was already {}", task.state.as_str()),
            });
        }
        let kind = if confirm { CONFIRMED } else { REJECTED };
        let detail = serde_json::json!({ "score": task.score });
        let decision_id = insert_decision(
            &mut tx,
            NewDecision {
                kind,
                person_id: &task.person_id,
                other_person_id: &task.candidate_id,
                task_id,
                link_id: "",
                probability: task.score.as_ref().map(|s| s.probability),
                rules_version: &task.rules_version,
                detail,
                system_id: &actor.system_id,
                practitioner_id: &actor.practitioner_id,
                note,
                at,
            },
        )
        .await
        .map_err(database_error)?;
        if confirm {
            recompute(&mut tx, &[&task.person_id])
                .await
                .map_err(database_error)?;
        }
        self.commit_identity(tx).await?;
        Ok(decision_id)
    }

    /// Undoes an active link in one transaction; each side resolves on its own again.
    /// Returns the split decision and the link undone.
    pub async fn split_link(
        &self,
        link_id: &str,
        actor: &Actor,
        note: &str,
        at: &str,
    ) -> Result<(String, IdentityLink), Error> {
        let mut tx = self.begin_write().await.map_err(database_error)?;
        let link = match decision(&mut tx, link_id).await.map_err(database_error)? {
            Some(row) if row.kind == AUTO_LINK || row.kind == CONFIRMED => {
                identity_link(&mut tx, row).await.map_err(database_error)?
            }
            _ => {
                return Err(Error::NotFound {
                    field: "link_id".into(),
                    reason: "no identity link has this id".into(),
                });
            }
        };
        if !link.active {
            return Err(Error::FailedPrecondition {
                rule: "identity.link_already_split",
                reason: "this identity link was already split".into(),
            });
        }
        let decision_id = insert_decision(
            &mut tx,
            NewDecision {
                kind: SPLIT,
                person_id: &link.person_id,
                other_person_id: &link.other_person_id,
                task_id: "",
                link_id,
                probability: None,
                rules_version: &link.rules_version,
                detail: serde_json::json!({}),
                system_id: &actor.system_id,
                practitioner_id: &actor.practitioner_id,
                note,
                at,
            },
        )
        .await
        .map_err(database_error)?;
        recompute(&mut tx, &[&link.person_id, &link.other_person_id])
            .await
            .map_err(database_error)?;
        self.commit_identity(tx).await?;
        let link = IdentityLink {
            active: false,
            split_at: Some(at.to_owned()),
            ..link
        };
        Ok((decision_id, link))
    }

    /// Every identity link (active or split) touching a person resolved with `person_id`.
    pub async fn identity_links(&self, person_id: &str) -> Result<Vec<IdentityLink>, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        let members = members(&mut conn, person_id)
            .await
            .map_err(database_error)?;
        links_touching(&mut conn, &members)
            .await
            .map_err(database_error)
    }

    /// The newest identity links (automatic and steward, active and split), newest
    /// first, at most `limit`.
    pub async fn recent_identity_links(&self, limit: u32) -> Result<Vec<IdentityLink>, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        let sql = format!(
            "SELECT {DECISION_COLUMNS} FROM identity_decision WHERE kind IN ($1, $2) \
             ORDER BY seq DESC LIMIT {limit}"
        );
        let rows = sqlx::query(&sql)
            .bind(AUTO_LINK)
            .bind(CONFIRMED)
            .fetch_all(&mut *conn)
            .await
            .map_err(database_error)?;
        let mut links = Vec::with_capacity(rows.len());
        for row in rows {
            let row = decision_row(&row).map_err(database_error)?;
            links.push(
                identity_link(&mut conn, row)
                    .await
                    .map_err(database_error)?,
            );
        }
        Ok(links)
    }

    /// Whether this process committed identity decisions since the last call: their log
    /// entries are written then, without looking for pending ones after every publish.
    pub fn take_identity_pending(&self) -> bool {
        self.identity_pending
            .swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    /// Marks decisions as still to be logged, after a failed attempt.
    pub fn keep_identity_pending(&self) {
        self.identity_pending
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Identity decisions not yet in the disclosure log, oldest first.
    pub async fn unlogged_identity_decisions(&self) -> Result<Vec<IdentityLogItem>, Error> {
        let sql = format!(
            "SELECT {DECISION_COLUMNS} FROM identity_decision d WHERE NOT EXISTS \
             (SELECT 1 FROM identity_decision_logged l WHERE l.decision_id = d.decision_id) \
             ORDER BY d.seq LIMIT 1000"
        );
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        let rows = sqlx::query(&sql)
            .fetch_all(&mut *conn)
            .await
            .map_err(database_error)?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let d = decision_row(&row).map_err(database_error)?;
            let detail = decode_detail(&d.detail);
            items.push(IdentityLogItem {
                probability: d.probability(),
                explanation: stored_score(&detail)
                    .map(|s| s.explain())
                    .unwrap_or_default(),
                decision_id: d.decision_id,
                kind: d.kind,
                person_id: d.person_id,
                other_person_id: d.other_person_id,
                task_id: d.task_id,
                link_id: d.link_id,
                rules_version: d.rules_version,
                system_id: d.system_id,
                practitioner_id: d.practitioner_id,
                note: d.note,
            });
        }
        Ok(items)
    }

    /// Records that a decision reached the disclosure log as `entry_id`.
    pub async fn mark_identity_logged(
        &self,
        decision_id: &str,
        entry_id: &str,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO identity_decision_logged (decision_id, entry_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(decision_id)
        .bind(entry_id)
        .execute(&self.writer)
        .await
        .map_err(database_error)?;
        Ok(())
    }

    /// Commits an identity change, bumping the records generation so every process's
    /// remembered facts are read again under the new resolution.
    async fn commit_identity(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE records_generation SET generation = generation + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(database_error)?;
        tx.commit().await.map_err(database_error)
    }
}

async fn review_task(
    conn: &mut AnyConnection,
    raised: DecisionRow,
) -> Result<ReviewTask, sqlx::Error> {
    let closing = sqlx::query_scalar::<_, String>(
        "SELECT kind FROM identity_decision WHERE task_id = $1 ORDER BY seq LIMIT 1",
    )
    .bind(&raised.decision_id)
    .fetch_optional(&mut *conn)
    .await?;
    let state = match closing.as_deref() {
        Some(CONFIRMED) => ReviewState::Confirmed,
        Some(REJECTED) => ReviewState::Rejected,
        _ => ReviewState::Open,
    };
    let detail = decode_detail(&raised.detail);
    let reasons = detail
        .get("reasons")
        .and_then(|r| serde_json::from_value::<Vec<String>>(r.clone()).ok())
        .unwrap_or_default();
    let score = stored_score(&detail);
    Ok(ReviewTask {
        task_id: raised.decision_id,
        person_id: raised.person_id,
        candidate_id: raised.other_person_id,
        probability: raised.probability.parse().ok(),
        rules_version: raised.rules_version,
        reasons,
        score,
        raised_at: raised.decided_at,
        state,
    })
}

async fn identity_link(
    conn: &mut AnyConnection,
    row: DecisionRow,
) -> Result<IdentityLink, sqlx::Error> {
    let split: Option<String> = sqlx::query_scalar(
        "SELECT decided_at FROM identity_decision WHERE kind = $1 AND link_id = $2 LIMIT 1",
    )
    .bind(SPLIT)
    .bind(&row.decision_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(IdentityLink {
        method: row.method(),
        probability: row.probability(),
        link_id: row.decision_id,
        person_id: row.person_id,
        other_person_id: row.other_person_id,
        rules_version: row.rules_version,
        decided_by_system: row.system_id,
        decided_by_practitioner: row.practitioner_id,
        decided_at: row.decided_at,
        active: split.is_none(),
        split_at: split,
        note: row.note,
        task_id: row.task_id,
    })
}

async fn links_touching(
    conn: &mut AnyConnection,
    persons: &[String],
) -> Result<Vec<IdentityLink>, sqlx::Error> {
    if persons.is_empty() {
        return Ok(Vec::new());
    }
    let list = placeholders(3, persons.len());
    let sql = format!(
        "SELECT {DECISION_COLUMNS} FROM identity_decision WHERE kind IN ($1, $2) \
         AND (person_id IN ({list}) OR other_person_id IN ({list})) ORDER BY seq"
    );
    let mut query = sqlx::query(&sql).bind(AUTO_LINK).bind(CONFIRMED);
    for person in persons {
        query = query.bind(person);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut links = Vec::with_capacity(rows.len());
    for row in rows {
        links.push(identity_link(conn, decision_row(&row)?).await?);
    }
    Ok(links)
}

/// The active links within the resolved person `resolved_id`.
pub(crate) async fn active_links_within(
    conn: &mut AnyConnection,
    resolved_id: &str,
) -> Result<Vec<IdentityLink>, sqlx::Error> {
    let members: Vec<String> =
        sqlx::query_scalar("SELECT person_id FROM person_resolution WHERE resolved_id = $1")
            .bind(resolved_id)
            .fetch_all(&mut *conn)
            .await?;
    if members.len() < 2 {
        return Ok(Vec::new());
    }
    let mut links = links_touching(conn, &members).await?;
    links.retain(|l| l.active);
    Ok(links)
}

/// The person-details records of `members`, on the card of `person_id`'s resolved person.
async fn identity_card(
    conn: &mut AnyConnection,
    person_id: &str,
    members: &[String],
) -> Result<IdentityCard, sqlx::Error> {
    let resolved = resolved_id(conn, person_id).await?;
    if members.is_empty() {
        return Ok(IdentityCard {
            person_id: resolved,
            records: Vec::new(),
        });
    }
    let list = placeholders(1, members.len());
    let sql = format!(
        "SELECT r.owner_agency, r.owner_system, v.payload, d.person_id, d.record_id \
         FROM person_demographics d \
         JOIN record r ON r.record_id = d.record_id \
         JOIN record_version v ON v.record_id = r.record_id AND v.version = r.current_version \
         WHERE d.person_id IN ({list}) ORDER BY r.created_at, r.record_id"
    );
    let mut query = sqlx::query(&sql);
    for member in members {
        query = query.bind(member);
    }
    let mut records = Vec::new();
    for row in query.fetch_all(&mut *conn).await? {
        let agency: String = row.try_get(0)?;
        let payload: String = row.try_get(2)?;
        let Ok(Fact::Person(details)) = serde_json::from_str::<Fact>(&payload) else {
            continue;
        };
        records.push(PublishedDetails {
            agency: Agency::parse(&agency)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown agency {agency}").into()))?,
            system_id: row.try_get(1)?,
            person_id: row.try_get(3)?,
            record_id: row.try_get(4)?,
            details,
        });
    }
    Ok(IdentityCard {
        person_id: resolved,
        records,
    })
}

impl IdentityStorage for Store {
    fn search_candidates<'a>(
        &'a self,
        rules: &'a MatchRules,
        demographics: &'a Demographics,
    ) -> Stored<'a, (Vec<Candidate>, NameShares)> {
        Box::pin(self.search_candidates(rules, demographics))
    }

    fn review_tasks(&self, include_closed: bool) -> Stored<'_, Vec<ReviewTask>> {
        Box::pin(self.review_tasks(include_closed))
    }

    fn review_task<'a>(&'a self, task_id: &'a str) -> Stored<'a, Option<ReviewTask>> {
        Box::pin(self.review_task(task_id))
    }

    fn identity_card<'a>(
        &'a self,
        person_id: &'a str,
        except: Option<&'a str>,
    ) -> Stored<'a, IdentityCard> {
        Box::pin(self.identity_card(person_id, except))
    }

    fn record_card<'a>(&'a self, person_id: &'a str) -> Stored<'a, IdentityCard> {
        Box::pin(self.record_card(person_id))
    }

    fn decide_task<'a>(
        &'a self,
        task_id: &'a str,
        confirm: bool,
        actor: &'a Actor,
        note: &'a str,
        at: &'a str,
    ) -> Stored<'a, String> {
        Box::pin(self.decide_task(task_id, confirm, actor, note, at))
    }

    fn split_link<'a>(
        &'a self,
        link_id: &'a str,
        actor: &'a Actor,
        note: &'a str,
        at: &'a str,
    ) -> Stored<'a, (String, IdentityLink)> {
        Box::pin(self.split_link(link_id, actor, note, at))
    }

    fn identity_links<'a>(&'a self, person_id: &'a str) -> Stored<'a, Vec<IdentityLink>> {
        Box::pin(self.identity_links(person_id))
    }

    fn recent_identity_links(&self, limit: u32) -> Stored<'_, Vec<IdentityLink>> {
        Box::pin(self.recent_identity_links(limit))
    }

    fn find_person<'a>(&'a self, person: &'a PersonRef) -> Stored<'a, Option<String>> {
        Box::pin(self.find_person(person))
    }

    fn entries<'a>(&'a self, filter: &'a EntryFilter) -> Stored<'a, Vec<StoredEntry>> {
        Box::pin(self.entries(filter))
    }

    fn unlogged_identity_decisions(&self) -> Stored<'_, Vec<IdentityLogItem>> {
        Box::pin(self.unlogged_identity_decisions())
    }

    fn mark_identity_logged<'a>(
        &'a self,
        decision_id: &'a str,
        entry_id: &'a str,
    ) -> Stored<'a, ()> {
        Box::pin(self.mark_identity_logged(decision_id, entry_id))
    }

    fn identity_bound_rows(&self) -> Stored<'_, Vec<BoundRow>> {
        Box::pin(self.identity_bound_rows())
    }
}
