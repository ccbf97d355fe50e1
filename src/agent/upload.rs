//! Proof-of-play upload (SPEC §6): batches of unacknowledged records from
//! the journal go to `POST /api/v1/device/pop`; the server answers with the
//! highest contiguous seq it holds, and only then do records leave the
//! journal ([`Journal::acknowledge`](super::journal::Journal::acknowledge)).
//!
//! Retried forever with capped exponential backoff and full jitter: a box
//! offline for a month delivers everything when the server returns. The
//! server's ingest is idempotent on (screen, seq), so a crash between the
//! server's acknowledgement and the journal's durable `ack` only means the
//! batch is sent again and counted once.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use super::backoff::Backoff;
use super::client::{ClientError, DeviceClient, UploadAck};
use super::heartbeat::{Health, SharedJournal, lock};
use super::journal::JournalError;
use crate::pop::PlayRecord;
use crate::trust::Clock;

/// Why one upload attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The journal could not be read or the acknowledgement not recorded.
    #[error("proof-of-play journal: {0}")]
    Journal(#[from] JournalError),
    /// The server could not take the batch.
    #[error("proof-of-play upload: {0}")]
    Client(#[from] ClientError),
    /// The server acknowledged nothing of a batch it was sent, so the same
    /// batch would be sent for ever (the server lacks earlier records).
    #[error(
        "proof-of-play upload: the server acknowledges only up to seq {acked} but the journal \
         starts after {journal_acked}; it is missing records the box no longer has (see the server's audit findings)"
    )]
    Stuck {
        /// What the server acknowledged.
        acked: u64,
        /// What the journal had acknowledged already.
        journal_acked: u64,
    },
    /// A blocking journal task died.
    #[error("proof-of-play upload: background task failed: {0}")]
    Task(String),
}

/// What one [`upload_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Records sent.
    pub sent: usize,
    /// The acknowledged seq now recorded in the journal.
    pub acked_seq: u64,
}

/// Sends the oldest batch of up to `batch_size` unacknowledged records and
/// records the acknowledgement. `Ok(None)` when nothing is pending.
pub async fn upload_once(
    client: &DeviceClient,
    journal: &SharedJournal,
    batch_size: usize,
) -> Result<Option<Uploaded>, UploadError> {
    let reading = journal.clone();
    let batch: Vec<PlayRecord> =
        tokio::task::spawn_blocking(move || lock(&reading).pending(batch_size))
            .await
            .map_err(|error| UploadError::Task(error.to_string()))??;
    let Some(last) = batch.last() else {
        return Ok(None);
    };
    let last_sent = last.body.seq;
    let ack: UploadAck = client.upload_pop(&batch).await?;
    if ack.rejected > 0 {
        tracing::error!(
            rejected = ack.rejected,
            "the server refused records of this box (bad hash, signature or fork); see its audit findings"
        );
    }
    let writing = journal.clone();
    let (acked_seq, journal_acked) = tokio::task::spawn_blocking(move || {
        let mut journal = lock(&writing);
        let head = journal.head().seq;
        if ack.acked_seq > head {
            // The server holds records this journal never wrote (the box's
            // data were restored from an old copy): acknowledge what exists.
            tracing::error!(
                server = ack.acked_seq,
                head,
                "the server acknowledges records past the journal's head"
            );
        }
        let up_to = ack.acked_seq.min(head);
        journal.acknowledge(up_to)?;
        Ok::<_, JournalError>((journal.acknowledged_seq(), up_to))
    })
    .await
    .map_err(|error| UploadError::Task(error.to_string()))??;
    if acked_seq < batch[0].body.seq {
        return Err(UploadError::Stuck {
            acked: journal_acked,
            journal_acked: acked_seq,
        });
    }
    tracing::debug!(
        sent = batch.len(),
        last_sent,
        acked_seq,
        "proof-of-play batch acknowledged"
    );
    Ok(Some(Uploaded {
        sent: batch.len(),
        acked_seq,
    }))
}

/// Uploads until `shutdown` turns true: batch after batch while records are
/// pending, then waits for `appended` (the playback loop signals each new
/// record). Failures back off (capped, with jitter) and are retried for ever.
pub async fn run_uploads(
    client: DeviceClient,
    journal: SharedJournal,
    batch_size: usize,
    appended: Arc<Notify>,
    health: Arc<Health>,
    mut backoff: Backoff,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        // Registered before looking, so a record appended meanwhile still wakes us.
        let notified = appended.notified();
        let attempt = tokio::select! {
            attempt = upload_once(&client, &journal, batch_size) => attempt,
            () = super::run::stopped(&mut shutdown) => return,
        };
        match attempt {
            Ok(Some(_)) => {
                backoff.reset();
                continue;
            }
            Ok(None) => {
                backoff.reset();
                tokio::select! {
                    () = notified => {}
                    () = super::run::stopped(&mut shutdown) => return,
                }
            }
            Err(error) => {
                tracing::warn!(%error, "proof-of-play upload failed; retrying");
                health.set_error(client.clock().now(), error.to_string());
                let delay = backoff.next_delay();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = super::run::stopped(&mut shutdown) => return,
                }
            }
        }
    }
}
