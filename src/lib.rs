//! Sluice: change data capture from PostgreSQL logical replication to Kafka, in Debezium's
//! envelope.
//!
//! Layers (see ARCHITECTURE.md): [`config`] → [`source`] produces [`event::ChangeEvent`]s →
//! [`encode`] makes records → [`sink`] publishes them → [`offsets`] stores positions, all
//! driven by [`runtime`].

pub mod api;
pub mod calendar;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod encode;
pub mod event;
pub mod failure;
#[cfg(test)]
mod fuzzing;
pub mod metrics;
pub mod offsets;
pub mod position;
pub mod runtime;
pub mod signal;
pub mod sink;
pub mod source;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod transform;
