//! SQL for persons and facts. Every change runs in one transaction together with its
//! idempotency key and change-trail rows, so a request is stored whole or not at all.

use sqlx::{AnyConnection, Row};
use time::format_description::well_known::Rfc3339;

use crate::domain::Agency;
use crate::domain::Stored;
use crate::domain::identity::MatchRules;
use crate::domain::ledger::LinkUsed;
use crate::domain::notify::{self, Surroundings, Trigger};
use crate::domain::policy::Policy;
use crate::domain::publish::PublishStorage;
use crate::domain::records::facts::PersonDetails;
use crate::domain::records::{
    Actor, Category, Change, ChangeKind, Day, EndReason, Fact, FactAbout, FactHistory, FactVersion,
    LegalStatus, LegalStatusType, LegalStatusVersion, Part, PathedChange, PersonRef, Receipt,
};
use crate::error::Error;
use crate::store::identity;
use crate::store::notices::insert_notices;
use crate::store::{Backend, Store, database_error};

/// Attempts made when a concurrent request claimed the same identifier or request id first.
const ATTEMPTS: usize = 3;

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A failed step: a domain refusal, or a database error that may be worth retrying.
enum Failure {
    Domain(Error),
    Database(sqlx::Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Domain(error)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Failure::Database(error)
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(Error::internal)
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(Error::internal)
}

impl Store {
    /// Applies `changes` atomically for `actor`. A repeat of `client_request_id` with the
    /// same `request_sha256` returns the first receipts; with a different one it is refused.
    pub async fn apply_changes(
        &self,
        actor: &Actor,
        client_request_id: &str,
        request_sha256: &str,
        changes: &[PathedChange],
        policy: &Policy,
        rules: &MatchRules,
    ) -> Result<Vec<Receipt>, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .try_apply(
                    actor,
                    client_request_id,
                    request_sha256,
                    changes,
                    policy,
                    rules,
                )
                .await
            {
                Ok(receipts) => return Ok(receipts),
                Err(Failure::Domain(error)) => return Err(error),
                Err(Failure::Database(error))
                    if is_unique_violation(&error) && attempt < ATTEMPTS =>
                {
                    tracing::debug!("concurrent publish claimed a key first; retrying");
                }
                Err(Failure::Database(error)) => return Err(database_error(error)),
            }
        }
    }

    async fn try_apply(
        &self,
        actor: &Actor,
        client_request_id: &str,
        request_sha256: &str,
        changes: &[PathedChange],
        policy: &Policy,
        rules: &MatchRules,
    ) -> Result<Vec<Receipt>, Failure> {
        let mut tx = self.begin_write().await?;
        let earlier = sqlx::query(
            "SELECT request_sha256, response FROM client_request \
             WHERE system_id = $1 AND client_request_id = $2",
        )
        .bind(&actor.system_id)
        .bind(client_request_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = earlier {
            let sha: String = row.try_get(0)?;
            if sha != request_sha256 {
                return Err(Error::FailedPrecondition {
                    rule: "records.client_request_id_reused",
                    reason: "this client_request_id was already used by this system for a \
                             different request; use a new id for a new request"
                        .into(),
                }
                .into());
            }
            let response: String = row.try_get(1)?;
            return Ok(decode(&response)?);
        }

        let matches_persons = changes.iter().any(|(_, change)| {
            matches!(
                change,
                Change::Publish(Fact::Person(_))
                    | Change::Update {
                        fact: Fact::Person(_),
                        ..
                    }
            )
        });
        if matches_persons && self.backend == Backend::Postgres {
            // One matcher at a time across processes, so two agencies publishing the same
            // person together do not each miss the other (SQLite has one writer anyway).
            // Taken before any notice lock, always in this order.
            identity::lock_matching(&mut tx).await?;
        }
        let at = now();
        let decided = std::sync::atomic::AtomicBool::new(false);
        let mut receipts = Vec::with_capacity(changes.len());
        let mut notices_added = false;
        for (path, change) in changes {
            let (receipt, stored) = match change {
                Change::Publish(fact) => {
                    let context = Context {
                        actor,
                        rules,
                        decided: &decided,
                        at: &at,
                        client_request_id,
                    };
                    publish(&mut tx, &context, path, fact.clone()).await?
                }
                Change::Update { record_id, fact } => {
                    let context = Context {
                        actor,
                        rules,
                        decided: &decided,
                        at: &at,
                        client_request_id,
                    };
                    update(&mut tx, &context, path, record_id, fact.clone()).await?
                }
                Change::End {
                    record_id,
                    day,
                    reason,
                } => {
                    end(
                        &mut tx,
                        actor,
                        record_id,
                        *day,
                        *reason,
                        &at,
                        client_request_id,
                    )
                    .await?
                }
            };
            if notify::may_notify(stored.category()) {
                let kind = match change {
                    Change::Publish(_) => ChangeKind::Published,
                    Change::Update { .. } => ChangeKind::Updated,
                    Change::End { .. } => ChangeKind::Ended,
                };
                notices_added |=
                    raise_notices(&mut tx, self.backend, actor, &receipt, stored, kind, policy)
                        .await?;
            }
            receipts.push(receipt);
        }
        sqlx::query(
            "INSERT INTO client_request \
             (system_id, client_request_id, request_sha256, response, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&actor.system_id)
        .bind(client_request_id)
        .bind(request_sha256)
        .bind(encode(&receipts)?)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        // Last before the commit, so the counter's row lock is held for no longer than
        // the commit: queries in every process see that what they remember is stale.
        sqlx::query("UPDATE records_generation SET generation = generation + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if notices_added {
            self.notices_committed.notify_waiters();
        }
        if decided.into_inner() {
            self.identity_pending
                .store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(receipts)
    }

    /// Every version of a record, oldest first, with its owner.
    pub async fn fact_history(&self, record_id: &str) -> Result<Option<FactHistory>, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        let Some(head) = load_head(&mut conn, record_id)
            .await
            .map_err(database_error)?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT version, change_kind, payload, valid_from, recorded_by_system, \
             recorded_by_practitioner, end_reason, end_date \
             FROM record_version WHERE record_id = $1 ORDER BY version",
        )
        .bind(record_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(database_error)?;
        let mut versions: Vec<FactVersion> = Vec::with_capacity(rows.len());
        for row in rows {
            let change: String = row.try_get(1).map_err(database_error)?;
            let payload: String = row.try_get(2).map_err(database_error)?;
            let end_reason: Option<String> = row.try_get(6).map_err(database_error)?;
            let end_date: Option<String> = row.try_get(7).map_err(database_error)?;
            let valid_from: String = row.try_get(3).map_err(database_error)?;
            if let Some(previous) = versions.last_mut() {
                previous.valid_to = Some(valid_from.clone());
            }
            versions.push(FactVersion {
                version: row.try_get(0).map_err(database_error)?,
                change: ChangeKind::parse(&change)
                    .ok_or_else(|| Error::internal(format!("unknown change kind {change}")))?,
                valid_from,
                valid_to: None,
                recorded_by_system: row.try_get(4).map_err(database_error)?,
                recorded_by_practitioner: row.try_get(5).map_err(database_error)?,
                fact: decode(&payload)?,
                end_reason: end_reason.as_deref().and_then(EndReason::parse),
                end_date: end_date.as_deref().and_then(Day::parse),
            });
        }
        Ok(Some(FactHistory {
            record_id: record_id.to_owned(),
            owner: head.owner,
            versions,
        }))
    }

    /// Resolves a person reference without creating anything.
    pub(crate) async fn lookup_person(&self, person: &PersonRef) -> Result<Option<String>, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        lookup_person(&mut conn, person)
            .await
            .map_err(database_error)
    }

    /// The latest version of each legal-status fact naming `person_id` as the child.
    pub async fn legal_statuses(&self, person_id: &str) -> Result<Vec<LegalStatusVersion>, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        let rows = sqlx::query(
            "SELECT r.record_id, v.payload, v.end_reason, r.ended \
             FROM record r \
             JOIN record_version v ON v.record_id = r.record_id AND v.version = r.current_version \
             JOIN record_person p ON p.record_id = r.record_id AND p.version = r.current_version \
             JOIN person_resolution pr ON pr.person_id = p.person_id \
             WHERE pr.resolved_id = $1 AND p.part = $2 AND r.category = $3 \
             ORDER BY r.created_at, r.record_id",
        )
        .bind(person_id)
        .bind(Part::Child.as_str())
        .bind(Category::LegalStatus.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(database_error)?;
        let mut versions = Vec::with_capacity(rows.len());
        for row in rows {
            let payload: String = row.try_get(1).map_err(database_error)?;
            let mut fact = decode::<Fact>(&payload)?;
            let named = fact.person_ids();
            let named: Vec<&str> = named.iter().map(String::as_str).collect();
            let resolved = identity::resolutions(&mut conn, &named)
                .await
                .map_err(database_error)?;
            identity::rewrite(&mut fact, &resolved);
            let Fact::LegalStatus(status) = fact else {
                return Err(Error::internal(
                    "legal_status record holds another category",
                ));
            };
            let end_reason: Option<String> = row.try_get(2).map_err(database_error)?;
            let ended: i64 = row.try_get(3).map_err(database_error)?;
            versions.push(LegalStatusVersion {
                record_id: row.try_get(0).map_err(database_error)?,
                status,
                ended: (ended != 0).then(|| {
                    end_reason
                        .as_deref()
                        .and_then(EndReason::parse)
                        .unwrap_or(EndReason::Closed)
                }),
            });
        }
        Ok(versions)
    }
}

/// What the record table says about a fact.
struct Head {
    category: Category,
    owner: Agency,
    current_version: i64,
    ended: bool,
}

async fn load_head(conn: &mut AnyConnection, record_id: &str) -> Result<Option<Head>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT category, owner_agency, current_version, ended FROM record WHERE record_id = $1",
    )
    .bind(record_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let category: String = row.try_get(0)?;
    let owner: String = row.try_get(1)?;
    let corrupt = |what: &str| sqlx::Error::Decode(format!("unknown {what} in record").into());
    Ok(Some(Head {
        category: Category::parse(&category).ok_or_else(|| corrupt("category"))?,
        owner: Agency::parse(&owner).ok_or_else(|| corrupt("agency"))?,
        current_version: row.try_get(2)?,
        ended: row.try_get::<i64, _>(3)? != 0,
    }))
}

async fn current_payload(
    conn: &mut AnyConnection,
    record_id: &str,
    version: i64,
) -> Result<Fact, Failure> {
    let payload: String = sqlx::query_scalar(
        "SELECT payload FROM record_version WHERE record_id = $1 AND version = $2",
    )
    .bind(record_id)
    .bind(version)
    .fetch_one(&mut *conn)
    .await?;
    Ok(decode(&payload)?)
}

async fn lookup_person(
    conn: &mut AnyConnection,
    person: &PersonRef,
) -> Result<Option<String>, sqlx::Error> {
    match person {
        PersonRef::PersonId(id) => {
            sqlx::query_scalar("SELECT person_id FROM person WHERE person_id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
        }
        PersonRef::Identifier(identifier) => {
            sqlx::query_scalar("SELECT person_id FROM person_identifier WHERE identifier_key = $1")
                .bind(identifier.key())
                .fetch_optional(&mut *conn)
                .await
        }
    }
}

/// Resolves every person reference of a fact to a person id, in place.
async fn resolve_refs(
    conn: &mut AnyConnection,
    actor: &Actor,
    path: &str,
    fact: &mut Fact,
    at: &str,
) -> Result<Vec<String>, Failure> {
    if let Fact::Person(details) = fact {
        let person_id = resolve_person_details(conn, actor, path, details, at).await?;
        details.person = Some(PersonRef::PersonId(person_id.clone()));
        return Ok(vec![person_id]);
    }
    let category = fact.category();
    let mut ids = Vec::new();
    for (part, person) in fact.person_refs_mut() {
        let Some(id) = lookup_person(conn, person).await? else {
            return Err(Error::NotFound {
                field: format!("{path}.{category}.{part}"),
                reason: format!("no {person} is known; publish their person details first"),
            }
            .into());
        };
        *person = PersonRef::PersonId(id.clone());
        ids.push(id);
    }
    Ok(ids)
}

/// Finds the one person the identifiers belong to, or creates them; attaches any new
/// identifiers. Identifiers of two different (resolved) persons are never merged.
async fn resolve_person_details(
    conn: &mut AnyConnection,
    actor: &Actor,
    path: &str,
    details: &PersonDetails,
    at: &str,
) -> Result<String, Failure> {
    let mut known: Vec<(usize, String, String)> = Vec::new();
    for (i, identifier) in details.identifiers.iter().enumerate() {
        if let Some(id) = lookup_person(conn, &PersonRef::Identifier(identifier.clone())).await? {
            let resolved = identity::resolved_id(conn, &id).await?;
            known.push((i, id, resolved));
        }
    }
    if let Some((first, _, first_resolved)) = known.first()
        && let Some((clash, _, _)) = known.iter().find(|(_, _, r)| r != first_resolved)
    {
        return Err(Error::FailedPrecondition {
            rule: "records.identifier_clash",
            reason: format!(
                "{path}.person.identifiers[{clash}] ({}) already belongs to a different person \
                 than {path}.person.identifiers[{first}] ({}); persons are never merged silently",
                details.identifiers[*clash].scheme_name(),
                details.identifiers[*first].scheme_name(),
            ),
        }
        .into());
    }
    let person_id = match known.first() {
        Some((_, id, _)) => id.clone(),
        None => {
            let id = new_id();
            sqlx::query(
                "INSERT INTO person (person_id, created_at, created_by_system) VALUES ($1, $2, $3)",
            )
            .bind(&id)
            .bind(at)
            .bind(&actor.system_id)
            .execute(&mut *conn)
            .await?;
            identity::add_person(conn, &id).await?;
            id
        }
    };
    for (i, identifier) in details.identifiers.iter().enumerate() {
        if known.iter().any(|(k, _, _)| *k == i) {
            continue;
        }
        sqlx::query(
            "INSERT INTO person_identifier \
             (identifier_key, scheme, person_id, added_by_system, added_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(identifier.key())
        .bind(identifier.scheme_name())
        .bind(&person_id)
        .bind(&actor.system_id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(person_id)
}

/// Rules that need other stored facts: links join two different persons; a breach names
/// a court order; a care order replaces a current CP plan of the same child.
async fn check_references(
    conn: &mut AnyConnection,
    actor: &Actor,
    path: &str,
    fact: &Fact,
    at: &str,
    client_request_id: &str,
) -> Result<(), Failure> {
    match fact {
        Fact::Link(link) if link.from == link.to => Err(Error::invalid(
            format!("{path}.link.to"),
            "must be a different person from link.from",
        )
        .into()),
        Fact::PoliceEvent(event) => {
            if let Some(order_id) = &event.court_order_record_id {
                let head = load_head(conn, order_id).await?;
                if head.is_none_or(|h| h.category != Category::CourtOrder) {
                    return Err(Error::NotFound {
                        field: format!("{path}.police_event.court_order_record_id"),
                        reason: "no court order has this record id".into(),
                    }
                    .into());
                }
            }
            Ok(())
        }
        Fact::LegalStatus(status) => match &status.replaces_record_id {
            Some(plan_id) => {
                replace_cp_plan(conn, actor, path, status, plan_id, at, client_request_id).await
            }
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

async fn replace_cp_plan(
    conn: &mut AnyConnection,
    actor: &Actor,
    path: &str,
    order: &LegalStatus,
    plan_id: &str,
    at: &str,
    client_request_id: &str,
) -> Result<(), Failure> {
    let field = format!("{path}.legal_status.replaces_record_id");
    let not_a_plan = || Error::FailedPrecondition {
        rule: "records.replaces_current_cp_plan",
        reason: format!("{field} must name a current child protection plan of the same child"),
    };
    let Some(head) = load_head(conn, plan_id).await? else {
        return Err(Error::NotFound {
            field,
            reason: "no record has this id".into(),
        }
        .into());
    };
    if head.category != Category::LegalStatus || head.ended {
        return Err(not_a_plan().into());
    }
    actor.check_owns(head.owner)?;
    let Fact::LegalStatus(plan) = current_payload(conn, plan_id, head.current_version).await?
    else {
        return Err(not_a_plan().into());
    };
    if plan.status_type != LegalStatusType::ChildProtectionPlan || plan.child != order.child {
        return Err(not_a_plan().into());
    }
    end(
        conn,
        actor,
        plan_id,
        order.start,
        EndReason::ReplacedByCareOrder,
        at,
        client_request_id,
    )
    .await
    .map(|_| ())
}

struct NewVersion<'a> {
    record_id: &'a str,
    version: i64,
    change: ChangeKind,
    fact: &'a Fact,
    end: Option<(Day, EndReason)>,
    changed_fields: String,
}

async fn insert_version(
    conn: &mut AnyConnection,
    actor: &Actor,
    new: NewVersion<'_>,
    at: &str,
    client_request_id: &str,
) -> Result<(), Failure> {
    sqlx::query(
        "INSERT INTO record_version (record_id, version, change_kind, payload, valid_from, \
         recorded_by_system, recorded_by_practitioner, end_reason, end_date) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new.record_id)
    .bind(new.version)
    .bind(new.change.as_str())
    .bind(encode(new.fact)?)
    .bind(at)
    .bind(&actor.system_id)
    .bind(&actor.practitioner_id)
    .bind(new.end.map(|(_, reason)| reason.as_str()))
    .bind(new.end.map(|(day, _)| day.to_string()))
    .execute(&mut *conn)
    .await?;
    let mut fact = new.fact.clone();
    for (part, person) in fact.person_refs_mut() {
        let Some(person_id) = person.person_id() else {
            return Err(Error::internal("storing a fact with an unresolved person").into());
        };
        // A person may play the same part twice in one fact (listed twice as protected).
        sqlx::query(
            "INSERT INTO record_person (record_id, version, person_id, part) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(new.record_id)
        .bind(new.version)
        .bind(person_id)
        .bind(part.as_str())
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "INSERT INTO change_trail (recorded_at, system_id, agency, practitioner_id, role, \
         change_kind, record_id, version, category, client_request_id, changed_fields) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(at)
    .bind(&actor.system_id)
    .bind(actor.agency.as_str())
    .bind(&actor.practitioner_id)
    .bind(actor.role.as_str())
    .bind(new.change.as_str())
    .bind(new.record_id)
    .bind(new.version)
    .bind(new.fact.category().as_str())
    .bind(client_request_id)
    .bind(new.changed_fields)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What every change of one request shares.
struct Context<'a> {
    actor: &'a Actor,
    rules: &'a MatchRules,
    /// Set when a change made an identity decision, which is logged after the commit.
    decided: &'a std::sync::atomic::AtomicBool,
    at: &'a str,
    client_request_id: &'a str,
}

/// Keeps a person-details record's demographics for matching and, for a person who is
/// new or still stands alone, matches them against everyone else on record.
async fn match_details(
    conn: &mut AnyConnection,
    context: &Context<'_>,
    record_id: &str,
    fact: &Fact,
) -> Result<(), Failure> {
    let Fact::Person(details) = fact else {
        return Ok(());
    };
    let Some(person_id) = details.person.as_ref().and_then(PersonRef::person_id) else {
        return Err(Error::internal("person details stored unresolved").into());
    };
    let demographics =
        identity::record_demographics(conn, record_id, person_id, details, context.rules).await?;
    // Matched when new or still standing alone (match_person checks which).
    let decided = identity::match_person(
        conn,
        context.actor,
        person_id,
        &details.identifiers,
        &demographics,
        context.rules,
        context.at,
    )
    .await?;
    if decided {
        context
            .decided
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

async fn publish(
    conn: &mut AnyConnection,
    context: &Context<'_>,
    path: &str,
    mut fact: Fact,
) -> Result<(Receipt, Fact), Failure> {
    let (actor, at, client_request_id) = (context.actor, context.at, context.client_request_id);
    let person_ids = resolve_refs(conn, actor, path, &mut fact, at).await?;
    check_references(conn, actor, path, &fact, at, client_request_id).await?;
    let record_id = new_id();
    sqlx::query(
        "INSERT INTO record (record_id, category, owner_agency, owner_system, current_version, \
         ended, created_at, owner_contact) VALUES ($1, $2, $3, $4, 1, 0, $5, $6)",
    )
    .bind(&record_id)
    .bind(fact.category().as_str())
    .bind(actor.agency.as_str())
    .bind(&actor.system_id)
    .bind(at)
    .bind(&actor.contact_route)
    .execute(&mut *conn)
    .await?;
    let new = NewVersion {
        record_id: &record_id,
        version: 1,
        change: ChangeKind::Published,
        fact: &fact,
        end: None,
        changed_fields: "*".into(),
    };
    insert_version(conn, actor, new, at, client_request_id).await?;
    match_details(conn, context, &record_id, &fact).await?;
    Ok((
        Receipt {
            record_id,
            version: 1,
            person_ids,
        },
        fact,
    ))
}

/// Loads a record the actor's agency owns and may still change.
async fn changeable_head(
    conn: &mut AnyConnection,
    actor: &Actor,
    record_id: &str,
) -> Result<Head, Failure> {
    let Some(head) = load_head(conn, record_id).await? else {
        return Err(Error::NotFound {
            field: "record_id".into(),
            reason: "no record has this id".into(),
        }
        .into());
    };
    actor.check_owns(head.owner)?;
    if head.ended {
        return Err(Error::FailedPrecondition {
            rule: "records.ended_is_final",
            reason: "the record has ended; publish a new fact instead".into(),
        }
        .into());
    }
    Ok(head)
}

async fn update(
    conn: &mut AnyConnection,
    context: &Context<'_>,
    path: &str,
    record_id: &str,
    mut fact: Fact,
) -> Result<(Receipt, Fact), Failure> {
    let (actor, at, client_request_id) = (context.actor, context.at, context.client_request_id);
    let head = changeable_head(conn, actor, record_id).await?;
    if head.category != fact.category() {
        return Err(Error::invalid(
            format!("{path}.{}", fact.category()),
            format!(
                "the record is a `{}` fact; an update keeps its category",
                head.category
            ),
        )
        .into());
    }
    let person_ids = resolve_refs(conn, actor, path, &mut fact, at).await?;
    check_references(conn, actor, path, &fact, at, client_request_id).await?;
    let previous = current_payload(conn, record_id, head.current_version).await?;
    let version = head.current_version + 1;
    let new = NewVersion {
        record_id,
        version,
        change: ChangeKind::Updated,
        fact: &fact,
        end: None,
        changed_fields: changed_fields(&previous, &fact)?,
    };
    insert_version(conn, actor, new, at, client_request_id).await?;
    set_head(conn, record_id, version, false).await?;
    match_details(conn, context, record_id, &fact).await?;
    Ok((
        Receipt {
            record_id: record_id.to_owned(),
            version,
            person_ids,
        },
        fact,
    ))
}

async fn end(
    conn: &mut AnyConnection,
    actor: &Actor,
    record_id: &str,
    day: Day,
    reason: EndReason,
    at: &str,
    client_request_id: &str,
) -> Result<(Receipt, Fact), Failure> {
    let head = changeable_head(conn, actor, record_id).await?;
    let mut fact = current_payload(conn, record_id, head.current_version).await?;
    fact.end(day, reason)
        .map_err(|violation| Error::InvalidArgument(vec![violation]))?;
    let version = head.current_version + 1;
    let new = NewVersion {
        record_id,
        version,
        change: ChangeKind::Ended,
        fact: &fact,
        end: Some((day, reason)),
        changed_fields: "end_date,end_reason".into(),
    };
    insert_version(conn, actor, new, at, client_request_id).await?;
    set_head(conn, record_id, version, true).await?;
    let person_ids = fact.person_ids();
    Ok((
        Receipt {
            record_id: record_id.to_owned(),
            version,
            person_ids,
        },
        fact,
    ))
}

async fn set_head(
    conn: &mut AnyConnection,
    record_id: &str,
    version: i64,
    ended: bool,
) -> Result<(), Failure> {
    sqlx::query("UPDATE record SET current_version = $1, ended = $2 WHERE record_id = $3")
        .bind(version)
        .bind(i64::from(ended))
        .bind(record_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The top-level fields whose values differ between two versions, comma-separated.
fn changed_fields(previous: &Fact, next: &Fact) -> Result<String, Error> {
    let before = serde_json::to_value(previous).map_err(Error::internal)?;
    let after = serde_json::to_value(next).map_err(Error::internal)?;
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return Ok("*".into());
    };
    let mut fields: Vec<&str> = after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(*value))
        .map(|(key, _)| key.as_str())
        .collect();
    fields.sort_unstable();
    Ok(fields.join(","))
}

impl Store {
    /// Every current (not ended) fact that names `person_id` in any part, oldest first:
    /// a link is found from either side.
    pub async fn current_facts_naming(&self, person_id: &str) -> Result<Vec<FactAbout>, Error> {
        let mut conn = self.pool.acquire().await.map_err(database_error)?;
        facts_naming(&mut conn, person_id).await
    }
}

/// [`Store::current_facts_naming`] on a given connection (inside a transaction).
pub(crate) async fn facts_naming(
    conn: &mut AnyConnection,
    person_id: &str,
) -> Result<Vec<FactAbout>, Error> {
    let rows = sqlx::query(
        "SELECT r.record_id, r.current_version, r.owner_agency, r.owner_system, p.part, \
             v.payload, r.owner_contact \
             FROM person_resolution pr \
             JOIN record_person p ON p.person_id = pr.person_id \
             JOIN record r ON r.record_id = p.record_id AND r.current_version = p.version \
             JOIN record_version v ON v.record_id = r.record_id AND v.version = r.current_version \
             WHERE pr.resolved_id = $1 AND r.ended = 0 \
             ORDER BY r.created_at, r.record_id, p.part",
    )
    .bind(person_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(database_error)?;
    let mut facts: Vec<FactAbout> = Vec::new();
    for row in rows {
        let record_id: String = row.try_get(0).map_err(database_error)?;
        let part: String = row.try_get(4).map_err(database_error)?;
        let part =
            Part::parse(&part).ok_or_else(|| Error::internal(format!("unknown part {part}")))?;
        if let Some(last) = facts.last_mut().filter(|f| f.record_id == record_id) {
            // Two persons resolved to one may play the same part in one fact.
            if !last.parts.contains(&part) {
                last.parts.push(part);
            }
            continue;
        }
        let owner: String = row.try_get(2).map_err(database_error)?;
        let payload: String = row.try_get(5).map_err(database_error)?;
        facts.push(FactAbout {
            record_id,
            version: row.try_get(1).map_err(database_error)?,
            owner: Agency::parse(&owner)
                .ok_or_else(|| Error::internal(format!("unknown agency {owner}")))?,
            owner_system: row.try_get(3).map_err(database_error)?,
            owner_contact: row.try_get(6).map_err(database_error)?,
            parts: vec![part],
            fact: decode(&payload)?,
        });
    }
    // Facts name the persons each agency published; a reader sees resolved persons.
    let named: Vec<String> = facts.iter().flat_map(|f| f.fact.person_ids()).collect();
    let named: Vec<&str> = named.iter().map(String::as_str).collect();
    let resolved = identity::resolutions(conn, &named)
        .await
        .map_err(database_error)?;
    if !resolved.is_empty() {
        for about in &mut facts {
            identity::rewrite(&mut about.fact, &resolved);
        }
    }
    Ok(facts)
}

/// Plans the notices a stored fact raises and writes them in the same transaction, so a
/// crash after commit loses none. Returns whether any were written.
async fn raise_notices(
    conn: &mut AnyConnection,
    backend: Backend,
    actor: &Actor,
    receipt: &Receipt,
    fact: Fact,
    change: ChangeKind,
    policy: &Policy,
) -> Result<bool, Failure> {
    // Notices are planned over resolved persons, as queries see them.
    let mut fact = fact;
    identity::resolve_fact(conn, &mut fact).await?;
    let mut world: Surroundings = Surroundings::new();
    for person in &fact.person_ids() {
        if world.contains_key(person) {
            continue;
        }
        let facts = facts_naming(conn, person).await?;
        let linked: Vec<String> = facts
            .iter()
            .filter_map(|about| match &about.fact {
                Fact::Link(link) => Some([link.from.clone(), link.to.clone()]),
                _ => None,
            })
            .flatten()
            .filter_map(|p| p.person_id().map(str::to_owned))
            .collect();
        world.insert(person.clone(), facts.into());
        for other in linked {
            if let std::collections::hash_map::Entry::Vacant(slot) = world.entry(other) {
                let facts = facts_naming(conn, slot.key()).await?;
                slot.insert(facts.into());
            }
        }
    }
    let trigger = Trigger {
        about: FactAbout {
            record_id: receipt.record_id.clone(),
            version: receipt.version,
            owner: actor.agency,
            owner_system: actor.system_id.clone(),
            owner_contact: actor.contact_route.clone(),
            parts: Vec::new(),
            fact,
        },
        change,
    };
    let mut notices = notify::plan(&trigger, &world, policy);
    if !notices.is_empty() {
        // The persons planned over may join several agencies' records: each delivery's
        // log entry names the links, so a later split shows what crossed it.
        let mut links = Vec::new();
        for person in world.keys() {
            for link in identity::active_links_within(conn, person).await? {
                if !links.iter().any(|l: &LinkUsed| l.link_id == link.link_id) {
                    links.push(link.used());
                }
            }
        }
        links.sort_by(|a, b| a.link_id.cmp(&b.link_id));
        for notice in &mut notices {
            notice.identity_links = links.clone();
        }
    }
    insert_notices(conn, backend, &receipt.record_id, &notices).await?;
    Ok(!notices.is_empty())
}

impl PublishStorage for Store {
    fn apply_changes<'a>(
        &'a self,
        actor: &'a Actor,
        client_request_id: &'a str,
        request_sha256: &'a str,
        changes: &'a [PathedChange],
        policy: &'a Policy,
        rules: &'a MatchRules,
    ) -> Stored<'a, Vec<Receipt>> {
        Box::pin(self.apply_changes(
            actor,
            client_request_id,
            request_sha256,
            changes,
            policy,
            rules,
        ))
    }

    fn take_identity_pending(&self) -> bool {
        self.take_identity_pending()
    }

    fn keep_identity_pending(&self) {
        self.keep_identity_pending();
    }

    fn fact_history<'a>(&'a self, record_id: &'a str) -> Stored<'a, Option<FactHistory>> {
        Box::pin(self.fact_history(record_id))
    }

    fn resolved_person<'a>(&'a self, person_id: &'a str) -> Stored<'a, String> {
        Box::pin(self.resolved_person(person_id))
    }

    fn legal_statuses<'a>(&'a self, person_id: &'a str) -> Stored<'a, Vec<LegalStatusVersion>> {
        Box::pin(self.legal_statuses(person_id))
    }
}
