//! What the identity room needs from storage: the candidates a search considers, the
//! steward's review tasks, cards and links, the identity decisions still to be logged,
//! and the record of which reached the log. The store implements [`IdentityStorage`]
//! (the only place with SQL); the steward holds it as a trait object, so the room
//! imports nothing of the store.

use crate::domain::Stored;
use crate::domain::identity::{
    Candidate, Demographics, IdentityCard, IdentityLink, IdentityLogItem, MatchRules, NameShares,
    ReviewTask,
};
use crate::domain::ledger::bound::BoundRow;
use crate::domain::ledger::{EntryFilter, StoredEntry};
use crate::domain::records::{Actor, PersonRef};

/// The storage operations the identity room uses, with the store's names and meanings.
pub trait IdentityStorage: std::fmt::Debug + Send + Sync {
    /// The persons on record that may be the one `demographics` describe, and the
    /// frequencies of its names: what a search by demographics compares.
    fn search_candidates<'a>(
        &'a self,
        rules: &'a MatchRules,
        demographics: &'a Demographics,
    ) -> Stored<'a, (Vec<Candidate>, NameShares)>;

    /// Review tasks, oldest first; only open ones unless `include_closed`.
    fn review_tasks(&self, include_closed: bool) -> Stored<'_, Vec<ReviewTask>>;

    /// One review task.
    fn review_task<'a>(&'a self, task_id: &'a str) -> Stored<'a, Option<ReviewTask>>;

    /// What each agency published about the persons resolved with `person_id`, but
    /// `except` (the other side of a review task, once the two are one person).
    fn identity_card<'a>(
        &'a self,
        person_id: &'a str,
        except: Option<&'a str>,
    ) -> Stored<'a, IdentityCard>;

    /// What the one agency record `person_id` says (the record that raised a task).
    fn record_card<'a>(&'a self, person_id: &'a str) -> Stored<'a, IdentityCard>;

    /// Closes an open review task as confirmed (the persons are linked) or rejected (never
    /// proposed again), in one transaction; returns the decision id.
    fn decide_task<'a>(
        &'a self,
        task_id: &'a str,
        confirm: bool,
        actor: &'a Actor,
        note: &'a str,
        at: &'a str,
    ) -> Stored<'a, String>;

    /// Undoes an active link in one transaction; each side resolves on its own again.
    /// Returns the split decision and the link undone.
    fn split_link<'a>(
        &'a self,
        link_id: &'a str,
        actor: &'a Actor,
        note: &'a str,
        at: &'a str,
    ) -> Stored<'a, (String, IdentityLink)>;

    /// Every identity link (active or split) touching a person resolved with `person_id`.
    fn identity_links<'a>(&'a self, person_id: &'a str) -> Stored<'a, Vec<IdentityLink>>;

    /// The newest identity links (automatic and steward, active and split), newest
    /// first, at most `limit`.
    fn recent_identity_links(&self, limit: u32) -> Stored<'_, Vec<IdentityLink>>;

    /// The person a reference names, if any.
    fn find_person<'a>(&'a self, person: &'a PersonRef) -> Stored<'a, Option<String>>;

    /// The log's entries matching `filter`.
    fn entries<'a>(&'a self, filter: &'a EntryFilter) -> Stored<'a, Vec<StoredEntry>>;

    /// Identity decisions not yet in the disclosure log, oldest first.
    fn unlogged_identity_decisions(&self) -> Stored<'_, Vec<IdentityLogItem>>;

    /// Records that a decision reached the disclosure log as `entry_id`.
    fn mark_identity_logged<'a>(
        &'a self,
        decision_id: &'a str,
        entry_id: &'a str,
    ) -> Stored<'a, ()>;

    /// Every stored row of `identity_decision_logged`, each with the entry it names (see
    /// [`super::bound::LoggedDecisions`]).
    fn identity_bound_rows(&self) -> Stored<'_, Vec<BoundRow>>;
}
