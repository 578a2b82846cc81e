//! Revisions of PostGIS sources: a number that changes when a source's data changes.
//!
//! A task per database reads each source's revision query every `revision_interval` seconds,
//! and at once when a notification arrives on `notify_channel`. The revision is the XXH3 hash
//! of the query's text output, so every Tessera process that reads the same database computes
//! the same revision. A query that fails keeps the last revision and is logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use super::database::{Database, error_reason};

/// The revision of one source and the query that computes it.
#[derive(Debug)]
pub(super) struct Tracked {
    pub id: String,
    pub query: String,
    pub revision: Arc<AtomicU64>,
}

/// Reads the revision of every tracked source once, and returns how many queries failed.
pub(super) async fn refresh(database: &Database, tracked: &[Tracked]) -> usize {
    let client = match database.client().await {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(database = %database.description, %error, "revisions not read; retrying");
            return tracked.len();
        }
    };
    let mut failed = 0;
    for source in tracked {
        match client.query_opt(source.query.as_str(), &[]).await {
            Ok(row) => {
                let text = row
                    .and_then(|row| row.try_get::<_, Option<String>>(0).ok().flatten())
                    .unwrap_or_default();
                let revision = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
                let previous = source.revision.swap(revision, Ordering::SeqCst);
                if previous != revision {
                    tracing::debug!(source = %source.id, revision, "data changed");
                }
            }
            Err(error) => {
                failed += 1;
                tracing::warn!(source = %source.id, error = %error_reason(&error), "revision query failed; keeping the last revision");
            }
        }
    }
    failed
}

/// Starts the task that keeps the revisions of `tracked` current. It ends when no source
/// keeps its revision any more.
pub(super) fn spawn(database: Arc<Database>, tracked: Vec<Tracked>) {
    if tracked.is_empty() {
        return;
    }
    let changed = Arc::new(Notify::new());
    if let Some(channel) = database.settings.notify_channel.clone() {
        tokio::spawn(listen(Arc::clone(&database), channel, Arc::clone(&changed)));
    }
    let interval = Duration::from_secs_f64(database.settings.revision_interval);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = changed.notified() => {}
            }
            if tracked
                .iter()
                .all(|source| Arc::strong_count(&source.revision) == 1)
            {
                tracing::debug!(database = %database.description, "no source left; revisions no longer read");
                return;
            }
            refresh(&database, &tracked).await;
        }
    });
}

/// Listens on `channel` and wakes the revision task on every notification. A lost connection
/// is logged and opened again after a pause.
async fn listen(database: Arc<Database>, channel: String, changed: Arc<Notify>) {
    let mut pause = Duration::from_millis(500);
    loop {
        if Arc::strong_count(&changed) == 1 {
            return;
        }
        match database.connection.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |context| connection.poll_message(context));
                let listening = async {
                    // The channel name is checked to be a plain identifier, so it needs no quotes.
                    client.batch_execute(&format!("LISTEN {channel}")).await
                };
                // The connection must be driven for LISTEN to complete, so both run together.
                let mut listening = std::pin::pin!(listening);
                let mut ready = false;
                tracing::info!(database = %database.description, %channel, "listening for data changes");
                pause = Duration::from_millis(500);
                loop {
                    tokio::select! {
                        result = &mut listening, if !ready => {
                            ready = true;
                            if let Err(error) = result {
                                tracing::warn!(%channel, error = %error_reason(&error), "LISTEN failed");
                                break;
                            }
                            changed.notify_one();
                        }
                        message = messages.next() => match message {
                            Some(Ok(AsyncMessage::Notification(_))) => changed.notify_one(),
                            Some(Ok(_)) => {}
                            Some(Err(error)) => {
                                tracing::warn!(%channel, error = %error_reason(&error), "notification connection lost; reconnecting");
                                break;
                            }
                            None => {
                                tracing::warn!(%channel, "notification connection closed; reconnecting");
                                break;
                            }
                        },
                    }
                }
            }
            Err(error) => {
                tracing::warn!(database = %database.description, %channel, error = %error_reason(&error), "cannot listen for data changes; retrying");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}
