//! Integration tests: the real gateway, served in-process over mutual TLS on
//! 127.0.0.1:0, on SQLite by default or on PostgreSQL when `SAFEGATE_TEST_DATABASE_URL`
//! names a server. Set `TEST_LOG=1` to see the gateway's logs.

mod helpers;
mod ig_support;

mod alerts;
mod audit_cli;
mod bound_contact;
mod bound_tables;
mod break_glass_review;
mod case;
mod configuration;
mod console;
mod console_steward;
mod contact;
mod durability;
mod health;
mod identity;
mod key_rotation;
mod ledger;
mod log_export;
mod metrics;
mod notifications;
mod query;
mod records;
mod reflection;
mod resolution;
mod rotation;
mod subject_access;
mod transport;
mod witness;
