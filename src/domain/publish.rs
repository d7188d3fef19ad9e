//! Publishing, updating and ending facts: checks that need no database, then one atomic
//! store call. A room of its own beside `records` (the facts and their vocabulary), since
//! publishing also matches persons (`identity`) and logs decisions (`ledger`), and the
//! identity room is built on the records room's types: kept inside `records`, the two
//! rooms would import each other.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::domain::Stored;
use crate::domain::identity::steward::log_pending;
use crate::domain::identity::{IdentityStorage, MatchRules};
use crate::domain::ledger::Ledger;
use crate::domain::policy::{Policy, PolicyHolder};

use crate::domain::Agency;
use crate::domain::records::Day;
use crate::domain::records::PathedChange;
use crate::domain::records::{
    Actor, Category, Change, FactHistory, LegalStatusVersion, PersonRef, Receipt,
    SafeguardingStatus, status,
};
use crate::error::{Error, FieldViolation};

/// The most facts one batch may carry.
pub const BATCH_MAX: usize = 10_000;
/// Longest client request id accepted.
const CLIENT_REQUEST_ID_MAX: usize = 128;

/// What publishing needs from storage, with the store's names and meanings: what the
/// identity room needs to log the decisions a change made, and the records themselves.
/// The store implements it (the only place with SQL).
pub trait PublishStorage: IdentityStorage {
    /// Applies `changes` atomically for `actor`. A repeat of `client_request_id` with the
    /// same `request_sha256` returns the first receipts; with a different one it is refused.
    fn apply_changes<'a>(
        &'a self,
        actor: &'a Actor,
        client_request_id: &'a str,
        request_sha256: &'a str,
        changes: &'a [PathedChange],
        policy: &'a Policy,
        rules: &'a MatchRules,
    ) -> Stored<'a, Vec<Receipt>>;

    /// Whether this process committed identity decisions since the last call: their log
    /// entries are written then, without looking for pending ones after every publish.
    fn take_identity_pending(&self) -> bool;

    /// Marks decisions as still to be logged, after a failed attempt.
    fn keep_identity_pending(&self);

    /// Every version of a record, oldest first, with its owner.
    fn fact_history<'a>(&'a self, record_id: &'a str) -> Stored<'a, Option<FactHistory>>;

    /// The resolved person of `person_id`.
    fn resolved_person<'a>(&'a self, person_id: &'a str) -> Stored<'a, String>;

    /// The latest version of each legal-status fact naming `person_id` as the child.
    fn legal_statuses<'a>(&'a self, person_id: &'a str) -> Stored<'a, Vec<LegalStatusVersion>>;
}

/// The agency-records service.
#[derive(Debug, Clone)]
pub struct Records {
    store: Arc<dyn PublishStorage>,
    policy: Arc<PolicyHolder>,
    rules: Arc<MatchRules>,
    ledger: Ledger,
}

impl Records {
    /// Notices raised by stored facts are shaped by `policy`; persons are matched across
    /// agencies by `rules`, and each identity decision is written to `ledger`.
    pub fn new(
        store: Arc<dyn PublishStorage>,
        policy: Arc<PolicyHolder>,
        rules: Arc<MatchRules>,
        ledger: Ledger,
    ) -> Self {
        Records {
            store,
            policy,
            rules,
            ledger,
        }
    }

    /// Applies the changes of one request atomically. Every fact is validated first, and
    /// every violation reported at once; nothing of a bad request is stored.
    pub async fn apply(
        &self,
        actor: &Actor,
        client_request_id: &str,
        changes: Vec<PathedChange>,
    ) -> Result<Vec<Receipt>, Error> {
        check_changes(actor, client_request_id, &changes, Day::today())?;
        let id = client_request_id.trim();
        let digest = request_digest(&changes)?;
        let policy = self.policy.current();
        let receipts = self
            .store
            .apply_changes(actor, id, &digest, &changes, &policy, &self.rules)
            .await?;
        // The identity decisions the changes made are committed; their log entries follow.
        // One that cannot be written now stays pending and is written at the next chance.
        if self.store.take_identity_pending()
            && let Err(error) = log_pending(&*self.store, &self.ledger, None).await
        {
            self.store.keep_identity_pending();
            tracing::warn!(%error, "identity decisions not yet in the disclosure log");
        }
        Ok(receipts)
    }

    /// Every version of a fact, for the agency that owns it.
    pub async fn history(&self, actor: &Actor, record_id: &str) -> Result<FactHistory, Error> {
        let history = self
            .store
            .fact_history(record_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                field: "record_id".into(),
                reason: "no record has this id".into(),
            })?;
        actor.check_owns(history.owner)?;
        Ok(history)
    }

    /// A child's derived status, for Children's Services, who own legal-status facts. Other
    /// agencies see it through the policy-checked query.
    pub async fn safeguarding_status(
        &self,
        actor: &Actor,
        child: &PersonRef,
    ) -> Result<SafeguardingStatus, Error> {
        if !Category::LegalStatus.may_be_published_by(actor.agency) {
            return Err(Error::PermissionDenied {
                rule: "records.status_for_owner",
                reason: format!(
                    "the derived status is read here by `{}` only; other agencies see it through \
                     a policy-checked query",
                    Agency::ChildrensServices
                ),
            });
        }
        let person_id = self
            .store
            .find_person(child)
            .await?
            .ok_or_else(|| Error::NotFound {
                field: "child".into(),
                reason: format!("no {child} is known"),
            })?;
        let person_id = self.store.resolved_person(&person_id).await?;
        let versions = self.store.legal_statuses(&person_id).await?;
        Ok(status::derive(&person_id, &versions, Day::today()))
    }
}

/// The checks of a records request that need no database, in the order [`Records::apply`]
/// runs them: the client request id, the batch size, the actor's right to publish each
/// category and every field of every fact (all violations at once), and each end date.
pub fn check_changes(
    actor: &Actor,
    client_request_id: &str,
    changes: &[PathedChange],
    today: Day,
) -> Result<(), Error> {
    let mut violations = Vec::new();
    let id = client_request_id.trim();
    if id.is_empty()
        || id.chars().count() > CLIENT_REQUEST_ID_MAX
        || id.chars().any(char::is_control)
    {
        violations.push(FieldViolation::new(
            "client_request_id",
            format!("must be 1-{CLIENT_REQUEST_ID_MAX} printable characters, unique per request"),
        ));
    }
    if changes.is_empty() || changes.len() > BATCH_MAX {
        violations.push(FieldViolation::new(
            "facts",
            format!("must hold 1 to {BATCH_MAX} facts"),
        ));
    }
    for (path, change) in changes {
        match change {
            Change::Publish(fact) => {
                actor.check_may_publish(fact.category())?;
                violations.extend(fact.validate(path, today));
            }
            Change::Update { fact, .. } => violations.extend(fact.validate(path, today)),
            Change::End { day, .. } => {
                if *day > today {
                    violations.push(FieldViolation::new("end_date", "must not be in the future"));
                }
            }
        }
    }
    if !violations.is_empty() {
        return Err(Error::InvalidArgument(violations));
    }
    Ok(())
}

/// A digest of what the request asks for, so a reused client request id with other
/// content is caught.
fn request_digest(changes: &[PathedChange]) -> Result<String, Error> {
    let canonical = serde_json::to_vec(changes).map_err(Error::internal)?;
    Ok(hex::encode(Sha256::digest(canonical)))
}
