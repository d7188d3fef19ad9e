//! The gateway's domain: who may ask, and on whose behalf. Knows nothing of tonic or SQL.

mod practitioner;
mod vocabulary;

pub use practitioner::{AgencySystem, Practitioner, RequestedContext};
pub use vocabulary::{Agency, Purpose, Role};
