//! Token-bucket rate limits, per key (a client address or a card), in memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Rate;

/// Keys kept before full (idle) buckets are forgotten; at four times this many, the buckets
/// used longest ago are forgotten too, down to twice this many (someone is inventing keys:
/// the keys in use now keep their buckets).
const PRUNE_AT: usize = 4096;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets of one [`Rate`], one per key.
pub(crate) struct Limiter<K> {
    rate: Rate,
    capacity: usize,
    buckets: Mutex<Buckets<K>>,
}

struct Buckets<K> {
    map: HashMap<K, Bucket>,
    next_prune: usize,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub(crate) fn new(rate: Rate) -> Self {
        Self::with_capacity(rate, PRUNE_AT)
    }

    fn with_capacity(rate: Rate, capacity: usize) -> Self {
        Self {
            rate,
            capacity,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                next_prune: capacity,
            }),
        }
    }

    fn per_second(&self) -> f64 {
        f64::from(self.rate.per_minute) / 60.0
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed * self.per_second()).min(f64::from(self.rate.burst));
        bucket.last = now;
    }

    /// Takes one request from `key`'s bucket; `Err(wait)` when it is empty (how long until
    /// one request is allowed again).
    pub(crate) fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.rate == Rate::UNLIMITED {
            return Ok(());
        }
        // A poisoned lock (a panic while counting) fails closed: refuse, never let all pass.
        let Ok(mut guard) = self.buckets.lock() else {
            return Err(Duration::from_secs(1));
        };
        let buckets = &mut *guard;
        if buckets.map.len() >= buckets.next_prune && !buckets.map.contains_key(key) {
            let burst = f64::from(self.rate.burst);
            let per_second = self.per_second();
            buckets.map.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
                b.tokens + elapsed * per_second < burst
            });
            if buckets.map.len() >= 4 * self.capacity {
                let mut ages: Vec<(Instant, K)> = buckets
                    .map
                    .iter()
                    .map(|(k, b)| (b.last, k.clone()))
                    .collect();
                let excess = buckets.map.len().saturating_sub(2 * self.capacity);
                if excess > 0 && excess < ages.len() {
                    ages.select_nth_unstable_by_key(excess, |(last, _)| *last);
                    for (_, key) in ages.iter().take(excess) {
                        buckets.map.remove(key);
                    }
                }
            }
            buckets.next_prune = (2 * buckets.map.len()).max(self.capacity);
        }
        let bucket = buckets.map.entry(key.clone()).or_insert(Bucket {
            tokens: f64::from(self.rate.burst),
            last: now,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let per_second = self.per_second();
        let wait = if per_second > 0.0 {
            (1.0 - bucket.tokens) / per_second
        } else {
            3600.0
        };
        Err(Duration::from_secs_f64(wait.clamp(0.0, 86_400.0)))
    }
}

/// Whole seconds for `Retry-After` (rounded up, at least 1).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let limiter = Limiter::new(Rate::new(2, 60));
        let t0 = Instant::now();
        assert!(limiter.check(&1, t0).is_ok());
        assert!(limiter.check(&1, t0).is_ok());
        let wait = limiter.check(&1, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(retry_after_secs(wait), 1);
        // Another key has its own bucket.
        assert!(limiter.check(&2, t0).is_ok());
        // One second later one request passes again.
        assert!(limiter.check(&1, t0 + Duration::from_secs(1)).is_ok());
        assert!(limiter.check(&1, t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn many_keys_stay_bounded() {
        let limiter = Limiter::with_capacity(Rate::new(1, 60), 16);
        let t0 = Instant::now();
        for k in 0..1000 {
            let _ = limiter.check(&k, t0);
            assert!(limiter.buckets.lock().unwrap().map.len() <= 4 * 16 + 1);
        }
        // Refilled buckets are forgotten at the next prune.
        let later = t0 + Duration::from_secs(5);
        for k in 1000..1100 {
            let _ = limiter.check(&k, later);
        }
        let buckets = limiter.buckets.lock().unwrap();
        assert!((0..1000).all(|k| !buckets.map.contains_key(&k)));
    }

    #[test]
    fn a_full_limiter_forgets_the_oldest_keys_and_keeps_recent_ones() {
        let limiter = Limiter::with_capacity(Rate::new(1, 1), 16);
        let t0 = Instant::now();
        // Key 0 empties its bucket first; then 200 other keys, each a little later (none
        // refills within the test, so no bucket is idle enough to be forgotten as full).
        assert!(limiter.check(&0, t0).is_ok());
        for k in 1..200u32 {
            let _ = limiter.check(&k, t0 + Duration::from_millis(u64::from(k)));
            let len = limiter.buckets.lock().unwrap().map.len();
            assert!(len <= 4 * 16, "{len}");
        }
        let buckets = limiter.buckets.lock().unwrap();
        // The newest keys are still there, with their empty buckets: still refused.
        assert!((190..200).all(|k| buckets.map.contains_key(&k)));
        // The oldest ones were forgotten, not everything at once.
        assert!(!buckets.map.contains_key(&0));
        assert!(buckets.map.len() > 16);
        drop(buckets);
        assert!(limiter
            .check(&199, t0 + Duration::from_millis(300))
            .is_err());
    }

    #[test]
    fn a_poisoned_limiter_refuses() {
        let limiter = std::sync::Arc::new(Limiter::new(Rate::new(100, 100)));
        let t0 = Instant::now();
        assert!(limiter.check(&1, t0).is_ok());
        let poisoner = limiter.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.buckets.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(limiter.buckets.is_poisoned());
        assert!(limiter.check(&1, t0).is_err());
        assert!(limiter.check(&2, t0).is_err());
    }
}
