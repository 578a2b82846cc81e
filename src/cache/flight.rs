//! One computation for many concurrent requests of the same key (single-flight).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// Runs at most one computation per key at a time; callers that arrive while it runs wait
/// for its result. A finished result is forgotten, so a later call computes again (the disk
/// cache, checked inside the computation, then answers it). If the caller running the
/// computation is dropped (its client went away), one of the waiting callers starts it again.
#[derive(Debug)]
pub struct SingleFlight<V> {
    calls: Mutex<HashMap<String, Arc<OnceCell<V>>>>,
}

impl<V> Default for SingleFlight<V> {
    fn default() -> Self {
        Self {
            calls: Mutex::default(),
        }
    }
}

impl<V: Clone> SingleFlight<V> {
    /// Returns the result of `work` for `key`, computed once for all concurrent callers.
    pub async fn run<F, Fut>(&self, key: &str, work: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = {
            let mut calls = self.lock();
            Arc::clone(calls.entry(key.to_owned()).or_default())
        };
        let value = cell.get_or_init(work).await.clone();
        let mut calls = self.lock();
        if calls
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, &cell))
        {
            calls.remove(key);
        }
        value
    }

    /// Returns the number of keys being computed now.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OnceCell<V>>>> {
        // The map stays consistent whatever panicked while it was held.
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_calls_share_one_computation() {
        let flight = Arc::new(SingleFlight::<u32>::default());
        let computations = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let flight = Arc::clone(&flight);
            let computations = Arc::clone(&computations);
            tasks.push(tokio::spawn(async move {
                flight
                    .run("tile", || async {
                        computations.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        42
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("task ends"), 42);
        }
        assert_eq!(computations.load(Ordering::SeqCst), 1);
        assert_eq!(flight.in_flight(), 0, "finished keys are forgotten");
    }

    #[tokio::test]
    async fn later_call_computes_again() {
        let flight = SingleFlight::<usize>::default();
        let first = flight.run("k", || async { 1 }).await;
        let second = flight.run("k", || async { 2 }).await;
        assert_eq!((first, second), (1, 2));
    }
}
