//! safegate: the cross-agency safeguarding information-sharing gateway.
//!
//! Agency systems call it over mutual TLS; the agency registry turns each client
//! certificate into an agency system identity; the domain decides what may be shared.

pub mod api;
pub mod cli;
pub mod config;
pub mod console;
pub mod demo;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod pki;
pub mod registry;
pub mod reload;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod witness;
