//! Cluster mode's part of the runtime: stopping the connectors of revoked partitions
//! (cleanly, or at once for a lost assignment) and taking a connector over (after the
//! handoff delay when its previous owner did not release it).

use std::sync::Arc;

use tokio::sync::watch;

use super::Runtime;
use crate::cluster::{Membership, Revocation};

impl Runtime {
    /// Stops the connectors of revoked partitions: cleanly (drained, committed, confirmed)
    /// when the revocation is orderly, at once and without committing when the assignment
    /// was lost. Then tells the group member.
    pub(super) async fn revoke(&self, revocation: Revocation) {
        let Some(m) = &self.membership else {
            let _ = revocation.done.send(());
            return;
        };
        let names: Vec<String> = {
            let map = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
            map.keys()
                .filter(|n| revocation.partitions.contains(&m.partition_of(n)))
                .cloned()
                .collect()
        };
        if revocation.lost {
            for name in names {
                if self.daemon.sink.exactly_once {
                    tracing::warn!(connector = %name, "cluster: assignment lost: stopping the connector at once, committing nothing; exactly-once: fenced by another owner (the new owner's transactional producer aborted this one's open transaction)");
                } else {
                    tracing::warn!(connector = %name, "cluster: assignment lost: stopping the connector at once, committing nothing");
                }
                let handle = self
                    .connectors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&name);
                if let Some(task) = handle.and_then(|h| h.task) {
                    task.abort();
                }
            }
        } else {
            // All at once: the group waits for this member while its connectors drain.
            for name in &names {
                tracing::info!(connector = %name, "cluster: partition revoked: stopping the connector cleanly");
            }
            futures_util::future::join_all(names.iter().map(|n| self.stop(n))).await;
        }
        let _ = revocation.done.send(());
        self.rescan().await;
    }
}

/// Cluster mode, before a connector starts: records this daemon as its owner, after waiting
/// `handoff_delay_ms` when the previous owner did not release it (it died or froze, and its
/// late writes must land before this daemon's). `false` when the daemon is shutting down
/// or the connector is stopped (revoked) meanwhile.
pub(super) async fn take_over(
    m: &Arc<Membership>,
    name: &str,
    shutdown: &mut watch::Receiver<bool>,
    cancel: &mut watch::Receiver<bool>,
) -> bool {
    let (mm, n) = (m.clone(), name.to_string());
    let holder = tokio::task::spawn_blocking(move || mm.holder(&n))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    let unclean = match &holder {
        Ok(Some(h)) => h.running && h.owner != m.me(),
        Ok(None) => false,
        // Unknown: assume the worst.
        Err(e) => {
            tracing::warn!(error = %e, "cluster: cannot read who held the connector; waiting handoff_delay_ms to be safe");
            true
        }
    };
    if unclean {
        let delay = m.handoff_delay();
        let previous = holder
            .ok()
            .flatten()
            .map(|h| h.owner)
            .unwrap_or_else(|| "unknown".into());
        tracing::warn!(previous_owner = %previous, delay_ms = delay.as_millis() as u64, "cluster: took the connector over without a clean handoff; waiting before publishing");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return false,
            _ = cancel.wait_for(|c| *c) => {
                tracing::info!("cluster: stopped while waiting to take the connector over");
                return false;
            }
        }
    }
    let (mm, n) = (m.clone(), name.to_string());
    match tokio::task::spawn_blocking(move || mm.mark(&n, true)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cluster: cannot record this daemon as the connector's owner")
        }
        Err(e) => {
            tracing::warn!(error = %e, "cluster: cannot record this daemon as the connector's owner")
        }
    }
    true
}
