//! How a run writes its position: through the offset store (at-least-once), or in the sink's
//! Kafka transaction with the records it covers (exactly-once).

use std::time::Instant;

use super::{PipelineError, Run};
use crate::offsets::OffsetError;
use crate::position::SourcePosition;
use crate::runtime::ack::CommitKind;
use crate::sink::SinkError;

impl Run {
    /// Commits the acknowledged position when it moved.
    /// Writes what is acknowledged and waits for it (the end of a run; a write under way
    /// is waited for first).
    pub(super) async fn commit(&mut self) -> Result<(), PipelineError> {
        if let Some((pos, write)) = self.committing.take() {
            let written = write.await;
            self.commit_done(pos, written)?;
        }
        self.start_commit()?;
        if let Some((pos, write)) = self.committing.take() {
            let written = write.await;
            self.commit_done(pos, written)?;
        }
        Ok(())
    }

    /// Exactly-once: whether reading waits for the transaction's commit (it must hold only
    /// records its position covers).
    pub(super) fn transaction_holds(&self) -> bool {
        self.transaction
            .as_ref()
            .is_some_and(|t| t.due() || self.committing.is_some())
    }

    /// Starts writing what is acknowledged, if it changed, on a blocking thread: the records
    /// keep flowing while the store makes it durable. Exactly-once: commits the transaction
    /// once every record in it is acknowledged (reading waits meanwhile).
    pub(super) fn start_commit(&mut self) -> Result<(), PipelineError> {
        // Buffered records become durable (and held deliveries resolve) before a position
        // that covers them is written.
        self.sink.flush_buffered()?;
        if self.transaction.is_some() {
            return self.start_transaction_commit();
        }
        let Some((pos, kind)) = self.tracker.to_commit() else {
            return Ok(());
        };
        let pos = pos.clone();
        let store = self.offsets.clone();
        let name = self.connector.clone();
        let p = pos.clone();
        let write = tokio::task::spawn_blocking(move || match kind {
            CommitKind::Reset => store.reset(&name, &p),
            CommitKind::Advance => store.commit(&name, &p),
        });
        let path = format!("{}.json", self.connector);
        self.committing = Some((
            Some(pos),
            Box::pin(async move {
                write
                    .await
                    .map_err(|e| OffsetError::Io {
                        path: path.into(),
                        source: std::io::Error::other(e.to_string()),
                    })?
                    .map_err(PipelineError::from)
            }),
        ));
        Ok(())
    }

    /// Exactly-once: commits the open transaction with the position record of everything
    /// sent, once every record in flight is acknowledged (until then the commit stays due
    /// and reading waits).
    fn start_transaction_commit(&mut self) -> Result<(), PipelineError> {
        let to_commit = self.tracker.to_commit().map(|(p, kind)| (p.clone(), kind));
        let Some(txn) = self.transaction.as_mut() else {
            return Ok(());
        };
        if !txn.has_records() && to_commit.is_none() {
            return Ok(());
        }
        txn.ask();
        if !self.in_flight.is_empty() {
            return Ok(());
        }
        txn.committing();
        let record = match &to_commit {
            Some((pos, kind)) => Some(
                self.offsets
                    .position_record(&self.connector, pos, *kind == CommitKind::Reset)
                    .ok_or_else(|| SinkError::Transaction {
                        reason: "the offset store cannot join a Kafka transaction (exactly_once needs [offsets] store = \"kafka\")".into(),
                    })??,
            ),
            None => None,
        };
        let commit = self.sink.commit_transaction(record);
        let store = self.offsets.clone();
        let name = self.connector.clone();
        let pos = to_commit.map(|(p, _)| p);
        let p = pos.clone();
        let metrics = self.observer.metrics.clone();
        let started = Instant::now();
        self.committing = Some((
            pos,
            Box::pin(async move {
                let outcome = commit.await;
                let c = name.as_str();
                let label = if outcome.is_ok() {
                    "committed"
                } else {
                    "aborted"
                };
                metrics.transactions.with_label_values(&[c, label]).inc();
                metrics
                    .transaction_commit_seconds
                    .with_label_values(&[c])
                    .observe(started.elapsed().as_secs_f64());
                outcome?;
                if let Some(p) = &p {
                    store.committed_in_transaction(&name, p);
                }
                Ok(())
            }),
        ));
        Ok(())
    }

    /// An offset write ended: on success the position is the committed one (reported to
    /// the source, the status and the metrics).
    pub(super) fn commit_done(
        &mut self,
        pos: Option<SourcePosition>,
        written: Result<(), PipelineError>,
    ) -> Result<(), PipelineError> {
        written?;
        let Some(pos) = pos else {
            return Ok(());
        };
        tracing::debug!(position = %pos, "offset committed");
        self.observer
            .metrics
            .offset_commits
            .with_label_values(&[&*self.observer.connector])
            .inc();
        self.observer.update(|s| {
            s.committed_offset = Some(pos.to_string());
            s.committed_position = Some(pos.clone());
            // Progress: the failures before it are over.
            s.retry = None;
        });
        self.tracker.committed(pos.clone());
        let _ = self.committed_tx.send(Some(pos));
        Ok(())
    }
}
