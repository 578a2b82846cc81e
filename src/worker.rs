//! A fixed pool of threads for blocking work: GDAL warps, geometry clipping, tile encoding.
//!
//! Each thread keeps its own GDAL dataset handles (see `raster::render`), so the pool size
//! bounds both the CPU work in flight and the number of open handles per source.

use std::sync::Arc;

use rayon::{ThreadPool, ThreadPoolBuilder};
use thiserror::Error;
use tokio::sync::oneshot;

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("cannot start the worker pool: {0}")]
    Build(#[from] rayon::ThreadPoolBuildError),
    #[error("a worker thread panicked while rendering; the panic is in the log")]
    Panicked,
}

/// Runs blocking closures off the async runtime and hands their results back.
#[derive(Clone, Debug)]
pub struct Workers {
    pool: Arc<ThreadPool>,
    /// Jobs queued or running, so that shutdown can wait for them.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl Workers {
    /// Starts `threads` worker threads; 0 means one per available core.
    pub fn new(threads: usize) -> Result<Self, WorkerError> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        } else {
            threads
        };
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tessera-worker-{i}"))
            .build()?;
        Ok(Self {
            pool: Arc::new(pool),
            in_flight: Arc::default(),
        })
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Waits until no job is queued or running, or `limit` has passed. Returns whether the
    /// pool is idle. The process must not exit while GDAL work runs: exit destroys GDAL's and
    /// PROJ's static objects under the running warp, which crashed the process.
    pub async fn wait_idle(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    /// Runs `work` on a worker thread and waits for its result without blocking the runtime.
    pub async fn run<T, F>(&self, work: F) -> Result<T, WorkerError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (sender, receiver) = oneshot::channel();
        let in_flight = Arc::clone(&self.in_flight);
        in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.pool.spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            if let Err(panic) = &result {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(ToString::to_string)
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(%message, "worker thread panicked");
            }
            // The receiver is gone when the request was cancelled: nothing to deliver.
            let _ = sender.send(result.ok());
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        });
        receiver.await.ok().flatten().ok_or(WorkerError::Panicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_survives_a_panic() {
        let workers = Workers::new(2).expect("pool");
        assert_eq!(workers.run(|| 6 * 7).await.expect("result"), 42);
        let panicked = workers.run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(panicked, Err(WorkerError::Panicked)));
        assert_eq!(
            workers.run(|| "still up").await.expect("result"),
            "still up"
        );
    }
}
