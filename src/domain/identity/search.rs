//! A search for one person by demographics, as a trace by someone who must not be shown
//! a list: the unique person at the auto-link level, or nobody. Queries and the IG
//! console's search of the log by person both ask this way.

use crate::domain::identity::storage::IdentityStorage;
use crate::domain::identity::{Demographics, MatchRules, Resolution};
use crate::domain::records::facts::PersonDetails;
use crate::error::Error;

/// What a search by demographics found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The one person the details name at the auto-link level, if there is one.
    pub person_id: Option<String>,
    /// Every person the search considered (recorded in the log, as a trace records
    /// every person it matched).
    pub candidates: Vec<String>,
}

/// Searches the persons on record for the one `details` describe.
pub async fn unique_match(
    store: &dyn IdentityStorage,
    rules: &MatchRules,
    details: &PersonDetails,
) -> Result<Found, Error> {
    let demographics = Demographics::from_details(details);
    let (candidates, shares) = store.search_candidates(rules, &demographics).await?;
    let considered = candidates.iter().map(|c| c.person_id.clone()).collect();
    let person_id = match rules.resolve(&[], &demographics, &candidates, &shares) {
        Resolution::Link { person_id, .. } => Some(person_id),
        Resolution::Review { .. } | Resolution::New { .. } => None,
    };
    Ok(Found {
        person_id,
        candidates: considered,
    })
}
