//! A [`Clock`] for hosts: `std::time::Instant` and one shared timer thread, so it works under any
//! executor, including a bare `futures_lite::future::block_on`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::clock::Clock;

/// The host's monotonic clock in milliseconds since the clock was made.
///
/// `sleep_until_ms` registers the task's waker with one timer thread shared by all clocks of the
/// process (started on first use); dropping the sleep (the session's read won the race)
/// unregisters it, so cancelled sleeps cost nothing.
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    origin: Instant,
}

impl StdClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    fn instant(&self, ms: u64) -> Instant {
        // Beyond what Instant can hold: a year from the origin is as good as never.
        self.origin
            .checked_add(Duration::from_millis(ms))
            .or_else(|| {
                self.origin
                    .checked_add(Duration::from_secs(365 * 24 * 3600))
            })
            .unwrap_or(self.origin)
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now_ms(&mut self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn sleep_until_ms(&mut self, deadline_ms: u64) {
        Sleep {
            deadline: self.instant(deadline_ms),
            key: None,
        }
        .await
    }
}

/// Waits until `deadline` on the shared timer thread.
pub(crate) fn sleep_until(deadline: Instant) -> impl Future<Output = ()> {
    Sleep {
        deadline,
        key: None,
    }
}

struct Sleep {
    deadline: Instant,
    /// Our entry in the timer, once registered.
    key: Option<(Instant, u64)>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(key) = self.key.take() {
                timer().remove(key);
            }
            return Poll::Ready(());
        }
        let key = timer().register(self.deadline, self.key, cx.waker());
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            timer().remove(key);
        }
    }
}

#[derive(Default)]
struct TimerState {
    /// Pending wake-ups by (deadline, registration number).
    wakers: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
}

struct Timer {
    state: Mutex<TimerState>,
    changed: Condvar,
}

impl Timer {
    fn register(
        &self,
        deadline: Instant,
        key: Option<(Instant, u64)>,
        waker: &Waker,
    ) -> (Instant, u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(k) = key {
            if let Some(waiting) = state.wakers.get_mut(&k) {
                if !waiting.will_wake(waker) {
                    waiting.clone_from(waker);
                }
                return k;
            }
        }
        let id = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        let key = (deadline, id);
        let earliest = state.wakers.keys().next().is_none_or(|first| key < *first);
        state.wakers.insert(key, waker.clone());
        drop(state);
        if earliest {
            self.changed.notify_one();
        }
        key
    }

    fn remove(&self, key: (Instant, u64)) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.wakers.remove(&key);
    }

    fn run(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            while let Some(entry) = state.wakers.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                entry.remove().wake();
            }
            state = match state.wakers.keys().next().map(|k| k.0) {
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(next) => {
                    self.changed
                        .wait_timeout(state, next.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer = std::boxed::Box::leak(std::boxed::Box::new(Timer {
            state: Mutex::new(TimerState::default()),
            changed: Condvar::new(),
        }));
        // If the thread cannot be spawned, sleeps never fire: the session then waits as long as
        // the reader does, as with `NoTimeout`.
        let _ = std::thread::Builder::new()
            .name("cardunlock-ccid-timer".into())
            .spawn(move || timer.run());
        timer
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, or};

    #[test]
    fn sleep_wakes_a_plain_block_on() {
        let mut clock = StdClock::new();
        let start = clock.now_ms();
        block_on(clock.sleep_until_ms(start + 30));
        let slept = clock.now_ms() - start;
        assert!((30..1000).contains(&slept), "slept {slept} ms");
    }

    #[test]
    fn a_deadline_in_the_past_is_ready_at_once() {
        let mut clock = StdClock::new();
        block_on(clock.sleep_until_ms(0));
    }

    #[test]
    fn an_absurd_deadline_does_not_panic() {
        let clock = StdClock::new();
        assert!(clock.instant(u64::MAX) > clock.origin);
    }

    #[test]
    fn a_cancelled_sleep_leaves_nothing_behind_and_later_sleeps_still_fire() {
        let mut clock = StdClock::new();
        // The read wins the race: the long sleep is dropped while registered.
        for _ in 0..100 {
            let now = clock.now_ms();
            let won = block_on(or(async { Some(1) }, async {
                let mut c = clock;
                c.sleep_until_ms(now + 60_000).await;
                None
            }));
            assert_eq!(won, Some(1));
        }
        let far = Instant::now() + Duration::from_secs(50);
        let left = timer()
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .wakers
            .keys()
            .filter(|k| k.0 > far)
            .count();
        assert_eq!(left, 0, "cancelled sleeps stayed registered");
        let now = clock.now_ms();
        let fired = block_on(or(
            async {
                clock.sleep_until_ms(now + 20).await;
                true
            },
            async {
                futures_lite::future::pending::<()>().await;
                false
            },
        ));
        assert!(fired);
    }

    #[test]
    fn sleeps_fire_in_deadline_order_from_several_threads() {
        let threads: std::vec::Vec<_> = (0..4u64)
            .map(|i| {
                std::thread::spawn(move || {
                    let mut clock = StdClock::new();
                    let t = clock.now_ms() + 10 * (4 - i);
                    block_on(clock.sleep_until_ms(t));
                    clock.now_ms() >= t
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().ok(), Some(true));
        }
    }
}
