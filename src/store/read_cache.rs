//! What queries read most, kept in memory for as long as the records have not changed.
//!
//! Every transaction that changes the records bumps one counter row in the same
//! transaction (`records_generation`, migration 0007). A query reads that counter once
//! (one small indexed read) and is then served the current facts it needs from memory if
//! they were read at the same generation, or from the database otherwise. Because the
//! counter lives in the database, a change made by another gateway process sharing the
//! database is seen by the next query here, exactly as if nothing were cached.
//!
//! Concurrent queries share generation reads, as concurrent appends share a commit: a
//! query waits for the next read that *starts* after the query arrived (one is started
//! if none is under way), so what it sees is never older than its own arrival, and a
//! burst of queries costs one or two reads instead of one each.
//!
//! Why it is exact: a value is remembered under the generation read *before* the value
//! was read, so it reflects that generation or a later one; it is served only to a query
//! that read the same generation, and a later change makes every query read a newer
//! generation and so miss. Person references are remembered apart from the generation:
//! a person is never deleted and an identifier never moves to another person. Which
//! resolved person a person belongs to changes with identity links, and every link or
//! split bumps the generation, so it is remembered under the generation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::Stored;
use crate::domain::identity::IdentityLink;
use crate::domain::notify::Notice;
use crate::domain::query::{QueryStorage, RecordsAt};
use crate::domain::records::status::LegalStatusVersion;
use crate::domain::records::{Facts, PersonRef};
use crate::error::Error;
use crate::store::{Store, unavailable};
use sqlx::AnyPool;
use tokio::sync::watch;

/// Persons whose facts (or legal statuses) are remembered before the cache starts over.
const PERSONS_MAX: usize = 20_000;
/// Person references remembered before that memory starts over.
const REFERENCES_MAX: usize = 100_000;

/// The cache a [`Store`] and its clones share.
#[derive(Debug, Default)]
pub(crate) struct ReadCache {
    generation_reads: Arc<GenerationReads>,
    by_generation: Mutex<Remembered>,
    /// Person reference (`id:` + person id, or an identifier key) to person id.
    references: Mutex<HashMap<String, String>>,
}

#[derive(Debug, Default)]
struct Remembered {
    generation: i64,
    facts: HashMap<String, Facts>,
    legal_statuses: HashMap<String, Arc<[LegalStatusVersion]>>,
    /// Person id to resolved person id: identity links change with the generation.
    resolved: HashMap<String, Arc<str>>,
    identity_links: HashMap<String, Arc<[IdentityLink]>>,
}

impl Remembered {
    /// The maps for `generation`, if this cache can serve or keep values of it: a newer
    /// generation empties the cache; an older one (a query that started before the
    /// latest change) neither reads nor writes it.
    fn at(&mut self, generation: i64) -> Option<&mut Self> {
        if generation > self.generation {
            self.generation = generation;
            self.facts.clear();
            self.legal_statuses.clear();
            self.resolved.clear();
            self.identity_links.clear();
        }
        (generation == self.generation).then_some(self)
    }
}

fn remember<T: ?Sized>(map: &mut HashMap<String, Arc<T>>, key: &str, value: &Arc<T>) {
    if map.len() >= PERSONS_MAX {
        map.clear();
    }
    map.insert(key.to_owned(), Arc::clone(value));
}

fn reference_key(person: &PersonRef) -> String {
    match person {
        PersonRef::PersonId(id) => format!("id:{id}"),
        PersonRef::Identifier(identifier) => identifier.key(),
    }
}

/// Reads of the generation counter, numbered in the order they start; at most one is
/// under way at a time.
#[derive(Debug)]
struct GenerationReads {
    state: Mutex<ReadsState>,
    finished: watch::Sender<Finished>,
}

#[derive(Debug, Default)]
struct ReadsState {
    started: u64,
    under_way: bool,
}

/// The latest read to finish: its number and what it read.
#[derive(Debug, Clone)]
struct Finished {
    number: u64,
    generation: Result<i64, SharedFailure>,
}

impl Default for GenerationReads {
    fn default() -> Self {
        GenerationReads {
            state: Mutex::default(),
            finished: watch::Sender::new(Finished {
                number: 0,
                generation: Ok(0),
            }),
        }
    }
}

/// A failed read, handed to every query that waited for it.
#[derive(Debug, Clone)]
struct SharedFailure(Arc<sqlx::Error>);

impl std::fmt::Display for SharedFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedFailure {}

impl SharedFailure {
    fn to_error(&self) -> Error {
        if unavailable(&self.0) {
            Error::Unavailable("the database is unavailable".into())
        } else {
            Error::internal(self.clone())
        }
    }
}

impl GenerationReads {
    /// Starts read number `started + 1` unless one is under way. The read runs as its
    /// own task, so a query that gives up waiting cannot leave the others stranded.
    fn start_unless_under_way(self: &Arc<Self>, pool: &AnyPool) {
        let number = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.under_way {
                return;
            }
            state.under_way = true;
            state.started += 1;
            state.started
        };
        let (reads, pool) = (Arc::clone(self), pool.clone());
        tokio::spawn(async move {
            let generation = sqlx::query_scalar::<_, i64>(
                "SELECT generation FROM records_generation WHERE id = 1",
            )
            .fetch_one(&pool)
            .await
            .map_err(|error| SharedFailure(Arc::new(error)));
            reads
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .under_way = false;
            reads.finished.send_replace(Finished { number, generation });
        });
    }

    /// The generation as read by a read that started after this call began.
    async fn read(self: &Arc<Self>, pool: &AnyPool) -> Result<i64, Error> {
        let mut finished = self.finished.subscribe();
        // Every read numbered `needed` or later starts after this point.
        let needed = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .started
            + 1;
        loop {
            self.start_unless_under_way(pool);
            {
                let latest = finished.borrow_and_update();
                if latest.number >= needed {
                    return latest.generation.clone().map_err(|f| f.to_error());
                }
            }
            finished
                .changed()
                .await
                .map_err(|_| Error::internal("generation reads: closed"))?;
        }
    }
}

/// The records as of one generation; see the module documentation.
#[derive(Debug)]
pub struct RecordsNow<'a> {
    store: &'a Store,
    generation: i64,
}

impl Store {
    /// Reads the records' generation: reads through the result are served from memory
    /// where they were already read at this generation.
    pub async fn records_now(&self) -> Result<RecordsNow<'_>, Error> {
        let generation = self.read_cache.generation_reads.read(&self.pool).await?;
        Ok(RecordsNow {
            store: self,
            generation,
        })
    }

    /// The person a reference names, if any; found persons are remembered.
    pub async fn find_person(&self, person: &PersonRef) -> Result<Option<String>, Error> {
        let key = reference_key(person);
        let known = self
            .read_cache
            .references
            .lock()
            .ok()
            .and_then(|references| references.get(&key).cloned());
        if known.is_some() {
            return Ok(known);
        }
        let found = self.lookup_person(person).await?;
        if let (Some(person_id), Ok(mut references)) = (&found, self.read_cache.references.lock()) {
            if references.len() >= REFERENCES_MAX {
                references.clear();
            }
            references.insert(key, person_id.clone());
        }
        Ok(found)
    }
}

impl RecordsNow<'_> {
    /// The generation these reads are served at.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// Every current fact naming `person_id`, as [`Store::current_facts_naming`].
    pub async fn facts_naming(&self, person_id: &str) -> Result<Facts, Error> {
        if let Some(facts) = self.cached(|r| r.facts.get(person_id).cloned()) {
            return Ok(facts);
        }
        let facts: Facts = self.store.current_facts_naming(person_id).await?.into();
        self.keep(|r| remember(&mut r.facts, person_id, &facts));
        Ok(facts)
    }

    /// The latest version of each legal-status fact about the child `person_id`, as
    /// [`Store::legal_statuses`].
    pub async fn legal_statuses(
        &self,
        person_id: &str,
    ) -> Result<Arc<[LegalStatusVersion]>, Error> {
        if let Some(versions) = self.cached(|r| r.legal_statuses.get(person_id).cloned()) {
            return Ok(versions);
        }
        let versions: Arc<[LegalStatusVersion]> =
            self.store.legal_statuses(person_id).await?.into();
        self.keep(|r| remember(&mut r.legal_statuses, person_id, &versions));
        Ok(versions)
    }

    /// The resolved person of `person_id`, as [`Store::resolved_person`].
    pub async fn resolved(&self, person_id: &str) -> Result<String, Error> {
        if let Some(resolved) = self.cached(|r| r.resolved.get(person_id).cloned()) {
            return Ok(resolved.to_string());
        }
        let resolved = self.store.resolved_person(person_id).await?;
        let shared: Arc<str> = resolved.as_str().into();
        self.keep(|r| remember(&mut r.resolved, person_id, &shared));
        Ok(resolved)
    }

    /// The active identity links joining the persons resolved to `resolved_id`.
    pub async fn identity_links(&self, resolved_id: &str) -> Result<Arc<[IdentityLink]>, Error> {
        if let Some(links) = self.cached(|r| r.identity_links.get(resolved_id).cloned()) {
            return Ok(links);
        }
        let links: Arc<[IdentityLink]> =
            self.store.active_identity_links(resolved_id).await?.into();
        self.keep(|r| remember(&mut r.identity_links, resolved_id, &links));
        Ok(links)
    }

    fn cached<T>(&self, get: impl FnOnce(&mut Remembered) -> Option<T>) -> Option<T> {
        let mut remembered = self.store.read_cache.by_generation.lock().ok()?;
        remembered.at(self.generation).and_then(get)
    }

    fn keep(&self, put: impl FnOnce(&mut Remembered)) {
        if let Ok(mut remembered) = self.store.read_cache.by_generation.lock()
            && let Some(remembered) = remembered.at(self.generation)
        {
            put(remembered);
        }
    }
}

impl RecordsAt for RecordsNow<'_> {
    fn facts_naming<'a>(&'a self, person_id: &'a str) -> Stored<'a, Facts> {
        Box::pin(self.facts_naming(person_id))
    }

    fn legal_statuses<'a>(&'a self, person_id: &'a str) -> Stored<'a, Arc<[LegalStatusVersion]>> {
        Box::pin(self.legal_statuses(person_id))
    }

    fn resolved<'a>(&'a self, person_id: &'a str) -> Stored<'a, String> {
        Box::pin(self.resolved(person_id))
    }

    fn identity_links<'a>(&'a self, resolved_id: &'a str) -> Stored<'a, Arc<[IdentityLink]>> {
        Box::pin(self.identity_links(resolved_id))
    }
}

impl QueryStorage for Store {
    fn records_now(&self) -> Stored<'_, Box<dyn RecordsAt + '_>> {
        Box::pin(async move {
            let records: Box<dyn RecordsAt + '_> = Box::new(self.records_now().await?);
            Ok(records)
        })
    }

    fn resolved_person<'a>(&'a self, person_id: &'a str) -> Stored<'a, String> {
        Box::pin(self.resolved_person(person_id))
    }

    fn add_notices<'a>(
        &'a self,
        trigger_record_id: &'a str,
        notices: &'a [Notice],
    ) -> Stored<'a, ()> {
        Box::pin(self.add_notices(trigger_record_id, notices))
    }
}
