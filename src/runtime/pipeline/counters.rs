//! A run's counters: metric handles cached per table and the status figures.

use std::sync::Arc;

use prometheus::{IntCounter, IntGauge};

use super::Delivered;
use crate::event::TableId;
use crate::position::SourcePosition;
use crate::status::Observer;

/// Per-run counters: metric handles cached per table (no label lookup per event) and the
/// status figures, pushed to the shared status on each commit tick rather than per event.
pub(super) struct Counters {
    observer: Observer,
    tables: rustc_hash::FxHashMap<TableId, TableCounters>,
    topics: rustc_hash::FxHashMap<Arc<str>, IntCounter>,
    bytes: IntCounter,
    lag: IntGauge,
    events_read: u64,
    records_published: u64,
    pub(super) lag_ms: Option<i64>,
    /// Source time of the last acknowledged event, not yet turned into a lag.
    acked_ts_us: Option<i64>,
    /// Commit time of the last acknowledged event (ms since the epoch).
    acked_source_ms: Option<i64>,
    /// Events read at the last refresh, and when the last of them was read (ms).
    read_at_refresh: u64,
    last_event_at_ms: Option<i64>,
    pub(super) position: Option<SourcePosition>,
    /// The table version of the last event read and its counters.
    last: Option<(Arc<crate::event::TableSchema>, TableCounters)>,
}

#[derive(Clone)]
struct TableCounters {
    label: Arc<str>,
    read: IntCounter,
    published: IntCounter,
}

impl Counters {
    pub(super) fn new(observer: Observer) -> Self {
        // The counts go on from the last run's (restarts and retries keep them).
        let before = observer.snapshot();
        let c = &*observer.connector;
        Counters {
            bytes: observer.metrics.bytes_published.with_label_values(&[c]),
            lag: observer.metrics.source_lag_ms.with_label_values(&[c]),
            observer,
            tables: Default::default(),
            topics: Default::default(),
            events_read: before.events_read,
            records_published: before.records_published,
            lag_ms: None,
            acked_ts_us: None,
            acked_source_ms: None,
            read_at_refresh: before.events_read,
            last_event_at_ms: None,
            position: None,
            last: None,
        }
    }

    /// Counts an event read; returns its table's label.
    pub(super) fn read(
        &mut self,
        table: Option<&Arc<crate::event::TableSchema>>,
    ) -> Option<Arc<str>> {
        self.events_read += 1;
        let table = table?;
        // The same table version as the last event (the common case): no lookup.
        if let Some((last, t)) = &self.last {
            if Arc::ptr_eq(last, table) {
                t.read.inc();
                return Some(t.label.clone());
            }
        }
        let id = &table.id;
        if !self.tables.contains_key(id) {
            let label: Arc<str> = Arc::from(id.to_string());
            let m = &self.observer.metrics;
            let c = &*self.observer.connector;
            self.tables.insert(
                id.clone(),
                TableCounters {
                    read: m.events_read.with_label_values(&[c, &label]),
                    published: m.records_published.with_label_values(&[c, &label]),
                    label,
                },
            );
        }
        let t = &self.tables[id];
        t.read.inc();
        let label = t.label.clone();
        self.last = Some((table.clone(), t.clone()));
        Some(label)
    }

    /// Counts an acknowledged record.
    pub(super) fn delivered(&mut self, d: &Delivered) {
        let Some(label) = &d.table else {
            return;
        };
        match self.tables.values().find(|t| Arc::ptr_eq(&t.label, label)) {
            Some(t) => t.published.inc(),
            None => {
                let m = &self.observer.metrics;
                let c = &*self.observer.connector;
                self.topics
                    .entry(label.clone())
                    .or_insert_with(|| m.records_published.with_label_values(&[c, label]))
                    .inc();
            }
        }
        self.records_published += 1;
        self.bytes.inc_by(d.bytes as u64);
        if d.source_ts_us.is_some() {
            self.acked_ts_us = d.source_ts_us;
        }
    }

    /// Updates the lag from the last acknowledged event (one clock read per batch or tick,
    /// not per record).
    pub(super) fn refresh_lag(&mut self) {
        let now_us = crate::source::now_us();
        if self.events_read != self.read_at_refresh {
            self.read_at_refresh = self.events_read;
            self.last_event_at_ms = Some(now_us / 1000);
        }
        if let Some(ts) = self.acked_ts_us.take() {
            let lag = (now_us - ts) / 1000;
            self.lag.set(lag);
            self.lag_ms = Some(lag);
            self.acked_source_ms = Some(ts / 1000);
        }
    }

    /// Pushes the figures to the shared status.
    pub(super) fn publish(&self) {
        self.observer.update(|s| {
            s.events_read = self.events_read;
            s.records_published = self.records_published;
            s.lag_ms = self.lag_ms;
            s.last_event_at_ms = self.last_event_at_ms.or(s.last_event_at_ms);
            s.acked_source_ms = self.acked_source_ms.or(s.acked_source_ms);
            if let Some(p) = &self.position {
                s.source_position = Some(p.to_string());
                s.read_position = Some(p.clone());
            }
        });
    }
}
