//! Delivering proof-of-play records to the server (SPEC §6): batches from
//! the [`Journal`], retried for ever with capped backoff and jitter, so a
//! box offline for a month still delivers everything. Records leave the
//! journal only after the server acknowledged them; a crash between the
//! server's acknowledgement and the journal's means the batch is sent
//! again, which the server treats idempotently (same seq, same record).
//!
//! The transport, the device API's upload request, is behind
//! [`PopTransport`]; this module owns the delivery loop.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::backoff::Backoff;
use super::journal::{Journal, JournalError, Storage};
use crate::pop::PlayRecord;

/// Sends one batch of records to the server.
pub trait PopTransport: Send + Sync {
    /// Uploads `batch` (contiguous seqs, oldest first) and returns the
    /// highest seq the server now holds contiguously for this screen.
    fn upload(&self, batch: &[PlayRecord])
    -> impl Future<Output = Result<u64, UploadError>> + Send;
}

/// Why a delivery round stopped.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The request failed (network, server down, rejected); retried later.
    #[error("proof-of-play upload failed: {0}")]
    Transport(String),
    /// The server acknowledged records the box never sent.
    #[error(
        "the server acknowledged seq {acknowledged}, past the last record sent ({last_sent}); ignored"
    )]
    AckBeyondBatch {
        /// What the server said.
        acknowledged: u64,
        /// The batch's last seq.
        last_sent: u64,
    },
    /// The server took the batch but acknowledged nothing of it (it holds a
    /// gap before it); the records stay and are sent again later.
    #[error(
        "the server acknowledged only up to seq {acknowledged}, before the batch starting at {first_sent}"
    )]
    NoProgress {
        /// What the server said.
        acknowledged: u64,
        /// The batch's first seq.
        first_sent: u64,
    },
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// The delivery loop's handle on the shared journal.
pub struct Uploader<S: Storage> {
    journal: Arc<Mutex<Journal<S>>>,
    batch_size: usize,
}

impl<S: Storage + Send + 'static> Uploader<S> {
    /// Delivers from `journal` in batches of `batch_size` (`sync.upload_batch_size`).
    pub fn new(journal: Arc<Mutex<Journal<S>>>, batch_size: usize) -> Self {
        Self {
            journal,
            batch_size: batch_size.max(1),
        }
    }

    /// Runs a journal operation off the async threads (it fsyncs).
    async fn with_journal<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&mut Journal<S>) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let journal = self.journal.clone();
        tokio::task::spawn_blocking(move || {
            let mut journal = journal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            operation(&mut journal)
        })
        .await
        .expect("journal operations do not panic")
    }

    /// Uploads batches until nothing is pending; returns how many records
    /// the server acknowledged.
    pub async fn deliver_pending(&self, transport: &impl PopTransport) -> Result<u64, UploadError> {
        let mut delivered = 0;
        loop {
            let limit = self.batch_size;
            let batch = self
                .with_journal(move |journal| journal.pending(limit))
                .await?;
            let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
                return Ok(delivered);
            };
            let (first_sent, last_sent) = (first.body.seq, last.body.seq);
            let acknowledged = transport.upload(&batch).await?;
            if acknowledged > last_sent {
                return Err(UploadError::AckBeyondBatch {
                    acknowledged,
                    last_sent,
                });
            }
            if acknowledged < first_sent {
                return Err(UploadError::NoProgress {
                    acknowledged,
                    first_sent,
                });
            }
            self.with_journal(move |journal| journal.acknowledge(acknowledged))
                .await?;
            delivered += acknowledged - first_sent + 1;
            tracing::debug!(up_to = acknowledged, "proof-of-play records acknowledged");
        }
    }

    /// Delivers for ever: after a failure waits `backoff`'s next delay;
    /// once everything is delivered waits for `wake` (a new record) or
    /// `idle` (to retry anything a failure left), whichever comes first.
    pub async fn run(
        self,
        transport: impl PopTransport,
        mut backoff: Backoff,
        wake: Arc<Notify>,
        idle: Duration,
    ) {
        loop {
            match self.deliver_pending(&transport).await {
                Ok(delivered) => {
                    if delivered > 0 {
                        tracing::info!(delivered, "proof-of-play records delivered");
                    }
                    backoff.reset();
                    let _ = tokio::time::timeout(idle, wake.notified()).await;
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, failures = backoff.failures(), delay_ms = delay.as_millis() as u64, "proof-of-play upload failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}
