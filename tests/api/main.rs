//! Integration tests: the real gateway, served in-process over mutual TLS on
//! 127.0.0.1:0, on SQLite by default or on PostgreSQL when `SAFEGATE_TEST_DATABASE_URL`
//! names a server. Set `TEST_LOG=1` to see the gateway's logs.

mod helpers;

mod case;
mod configuration;
mod health;
mod identity;
mod ledger;
mod query;
mod records;
mod reflection;
mod transport;
