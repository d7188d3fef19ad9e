//! SQL for contact requests and their steps; the notices each raises go into the
//! notification outbox in the same transaction.

use sqlx::Row;

use crate::domain::Stored;
use crate::domain::contact::{ContactRequest, ContactStep, ContactStore, ContactThread};
use crate::domain::ledger::Entry;
use crate::domain::ledger::bound::BoundRow;
use crate::domain::notify::{Notice, Surroundings};
use crate::domain::records::FactAbout;
use crate::error::Error;
use crate::store::notices::insert_notices;
use crate::store::{Store, database_error};

/// Most requests one listing returns (newest first).
const LIST_MAX: i64 = 500;

const THREAD_COLUMNS: &str = "r.request_id, r.payload";

impl Store {
    /// The requests the rows name, each with its steps, in the rows' order.
    async fn threads(&self, rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<ContactThread>, Error> {
        let mut threads = Vec::with_capacity(rows.len());
        for row in rows {
            let payload: String = row.try_get(1).map_err(database_error)?;
            let request: ContactRequest =
                serde_json::from_str(&payload).map_err(Error::internal)?;
            let steps =
                sqlx::query("SELECT payload FROM contact_step WHERE request_id = $1 ORDER BY seq")
                    .bind(&request.request_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(database_error)?
                    .iter()
                    .map(|row| {
                        let payload: String = row.try_get(0).map_err(database_error)?;
                        serde_json::from_str(&payload).map_err(Error::internal)
                    })
                    .collect::<Result<Vec<ContactStep>, Error>>()?;
            threads.push(ContactThread { request, steps });
        }
        Ok(threads)
    }
}

impl Store {
    pub async fn answer_entry(&self, entry_id: &str) -> Result<Option<Entry>, Error> {
        Ok(self.entry(entry_id).await?.map(|stored| stored.entry))
    }

    pub async fn current_fact(
        &self,
        person_id: &str,
        record_id: &str,
    ) -> Result<Option<(FactAbout, Surroundings)>, Error> {
        let records = self.records_now().await?;
        let Some(fact) = records
            .facts_naming(person_id)
            .await?
            .iter()
            .find(|f| f.record_id == record_id)
            .cloned()
        else {
            return Ok(None);
        };
        let mut world = Surroundings::new();
        for person in fact.fact.person_ids() {
            let facts = records.facts_naming(&person).await?;
            world.insert(person, facts);
        }
        Ok(Some((fact, world)))
    }

    pub async fn unstored_contact_entries(
        &self,
        after_seq: u64,
    ) -> Result<(Vec<Entry>, u64), Error> {
        let through: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM disclosure_log")
            .fetch_one(&self.pool)
            .await
            .map_err(database_error)?;
        let through = through.map_or(after_seq, |s| s as u64).max(after_seq);
        let rows = sqlx::query(
            "SELECT l.seq, l.entry, l.leaf_hash, l.chain_hash FROM disclosure_log l \
             WHERE l.seq > $1 AND l.seq <= $2 AND l.kind = 'contact' AND l.decision = 'recorded' \
             AND NOT EXISTS (SELECT 1 FROM contact_request r WHERE r.log_entry_id = l.entry_id) \
             AND NOT EXISTS (SELECT 1 FROM contact_step s WHERE s.log_entry_id = l.entry_id) \
             ORDER BY l.seq",
        )
        .bind(after_seq as i64)
        .bind(through as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        let entries = rows
            .iter()
            .map(|row| crate::store::ledger::stored_entry_from_row(row).map(|s| s.entry))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((entries, through))
    }

    pub async fn claim_escalations(
        &self,
        holder: &str,
        now: &str,
        until: &str,
    ) -> Result<bool, Error> {
        let claimed = sqlx::query(
            "UPDATE contact_sweep_lease SET holder = $1, until = $2 \
             WHERE lease = 'escalation' AND (until < $3 OR holder = $1)",
        )
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(database_error)?;
        Ok(claimed.rows_affected() == 1)
    }

    pub async fn release_escalations(&self, holder: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE contact_sweep_lease SET holder = '', until = '' \
             WHERE lease = 'escalation' AND holder = $1",
        )
        .bind(holder)
        .execute(&self.writer)
        .await
        .map_err(database_error)?;
        Ok(())
    }

    pub async fn add_contact_request(
        &self,
        request: &ContactRequest,
        notices: &[Notice],
    ) -> Result<(), Error> {
        let mut tx = self.begin_write().await.map_err(database_error)?;
        sqlx::query(
            "INSERT INTO contact_request (request_id, requester_system, requester_practitioner, \
             client_request_id, owner_system, created_at, due_at, payload, log_entry_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(&request.request_id)
        .bind(&request.requester_system)
        .bind(&request.requester_practitioner)
        .bind(&request.client_request_id)
        .bind(&request.owner_system)
        .bind(&request.created_at)
        .bind(&request.due_at)
        .bind(serde_json::to_string(request).map_err(Error::internal)?)
        .bind(&request.log_entry_id)
        .execute(&mut *tx)
        .await
        .map_err(database_error)?;
        insert_notices(&mut tx, self.backend, &request.record_id, notices).await?;
        tx.commit().await.map_err(database_error)?;
        self.notices_committed.notify_waiters();
        Ok(())
    }

    pub async fn add_contact_step(
        &self,
        step: &ContactStep,
        notices: &[Notice],
    ) -> Result<(), Error> {
        let mut tx = self.begin_write().await.map_err(database_error)?;
        sqlx::query(
            "INSERT INTO contact_step (step_id, request_id, kind, outcome, to_system, payload, \
             recorded_at, log_entry_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (step_id) DO NOTHING",
        )
        .bind(&step.step_id)
        .bind(&step.request_id)
        .bind(step.kind.as_str())
        .bind(step.outcome.map_or("", |o| o.as_str()))
        .bind(step.passed_to())
        .bind(serde_json::to_string(step).map_err(Error::internal)?)
        .bind(&step.recorded_at)
        .bind(&step.log_entry_id)
        .execute(&mut *tx)
        .await
        .map_err(database_error)?;
        insert_notices(&mut tx, self.backend, &step.request_id, notices).await?;
        tx.commit().await.map_err(database_error)?;
        self.notices_committed.notify_waiters();
        Ok(())
    }

    pub async fn contact_thread(&self, request_id: &str) -> Result<Option<ContactThread>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {THREAD_COLUMNS} FROM contact_request r WHERE r.request_id = $1"
        ))
        .bind(request_id)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        Ok(self.threads(rows).await?.pop())
    }

    pub async fn contact_by_client_id(
        &self,
        system: &str,
        client_request_id: &str,
    ) -> Result<Option<ContactThread>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {THREAD_COLUMNS} FROM contact_request r \
             WHERE r.requester_system = $1 AND r.client_request_id = $2"
        ))
        .bind(system)
        .bind(client_request_id)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        Ok(self.threads(rows).await?.pop())
    }

    pub async fn contacts_requested_by(
        &self,
        system: &str,
        practitioner: &str,
    ) -> Result<Vec<ContactThread>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {THREAD_COLUMNS} FROM contact_request r \
             WHERE r.requester_system = $1 AND r.requester_practitioner = $2 \
             ORDER BY r.created_at DESC, r.request_id LIMIT $3"
        ))
        .bind(system)
        .bind(practitioner)
        .bind(LIST_MAX)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        self.threads(rows).await
    }

    pub async fn contacts_addressed_to(&self, system: &str) -> Result<Vec<ContactThread>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {THREAD_COLUMNS} FROM contact_request r \
             WHERE r.owner_system = $1 OR EXISTS (SELECT 1 FROM contact_step s \
                 WHERE s.request_id = r.request_id AND s.to_system = $1) \
             ORDER BY r.created_at DESC, r.request_id LIMIT $2"
        ))
        .bind(system)
        .bind(LIST_MAX)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        self.threads(rows).await
    }

    pub async fn contacts_due(&self, at: &str) -> Result<Vec<ContactThread>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {THREAD_COLUMNS} FROM contact_request r \
             WHERE r.due_at <= $1 AND NOT EXISTS (SELECT 1 FROM contact_step s \
                 WHERE s.request_id = r.request_id \
                 AND (s.kind = 'escalated' OR s.outcome IN ('contacted', 'declined'))) \
             ORDER BY r.due_at, r.request_id LIMIT $2"
        ))
        .bind(at)
        .bind(LIST_MAX)
        .fetch_all(&self.pool)
        .await
        .map_err(database_error)?;
        self.threads(rows).await
    }
}

impl ContactStore for Store {
    fn answer_entry<'a>(&'a self, entry_id: &'a str) -> Stored<'a, Option<Entry>> {
        Box::pin(self.answer_entry(entry_id))
    }

    fn current_fact<'a>(
        &'a self,
        person_id: &'a str,
        record_id: &'a str,
    ) -> Stored<'a, Option<(FactAbout, Surroundings)>> {
        Box::pin(self.current_fact(person_id, record_id))
    }

    fn unstored_contact_entries(&self, after_seq: u64) -> Stored<'_, (Vec<Entry>, u64)> {
        Box::pin(self.unstored_contact_entries(after_seq))
    }

    fn claim_escalations<'a>(
        &'a self,
        holder: &'a str,
        now: &'a str,
        until: &'a str,
    ) -> Stored<'a, bool> {
        Box::pin(self.claim_escalations(holder, now, until))
    }

    fn release_escalations<'a>(&'a self, holder: &'a str) -> Stored<'a, ()> {
        Box::pin(self.release_escalations(holder))
    }

    fn add_contact_request<'a>(
        &'a self,
        request: &'a ContactRequest,
        notices: &'a [Notice],
    ) -> Stored<'a, ()> {
        Box::pin(self.add_contact_request(request, notices))
    }

    fn add_contact_step<'a>(
        &'a self,
        step: &'a ContactStep,
        notices: &'a [Notice],
    ) -> Stored<'a, ()> {
        Box::pin(self.add_contact_step(step, notices))
    }

    fn contact_thread<'a>(&'a self, request_id: &'a str) -> Stored<'a, Option<ContactThread>> {
        Box::pin(self.contact_thread(request_id))
    }

    fn contact_by_client_id<'a>(
        &'a self,
        system: &'a str,
        client_request_id: &'a str,
    ) -> Stored<'a, Option<ContactThread>> {
        Box::pin(self.contact_by_client_id(system, client_request_id))
    }

    fn contacts_requested_by<'a>(
        &'a self,
        system: &'a str,
        practitioner: &'a str,
    ) -> Stored<'a, Vec<ContactThread>> {
        Box::pin(self.contacts_requested_by(system, practitioner))
    }

    fn contacts_addressed_to<'a>(&'a self, system: &'a str) -> Stored<'a, Vec<ContactThread>> {
        Box::pin(self.contacts_addressed_to(system))
    }

    fn contacts_due<'a>(&'a self, at: &'a str) -> Stored<'a, Vec<ContactThread>> {
        Box::pin(self.contacts_due(at))
    }

    fn contact_bound_rows(&self) -> Stored<'_, Vec<BoundRow>> {
        Box::pin(self.contact_bound_rows())
    }
}
