//! Virtual time shared by the session and the simulated reader.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::task::Poll;

use cardunlock_ccid::clock::Clock;

#[derive(Debug, Default)]
struct ClockState {
    now: Cell<u64>,
    events: RefCell<BTreeSet<u64>>,
}

/// Virtual milliseconds shared by the session and the simulated reader. A sleep completes at
/// once, moving time to its deadline, unless a reply is due earlier: then time moves to that
/// reply and the sleep stays pending, so the racing read takes the reply.
#[derive(Clone, Debug, Default)]
pub struct TestClock {
    state: Rc<ClockState>,
}

impl TestClock {
    /// A clock at 0 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Virtual now.
    pub fn now(&self) -> u64 {
        self.state.now.get()
    }

    /// Moves time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.state.now.set(self.now().saturating_add(ms));
    }

    /// Registers something due at `at` (a sleep will stop there).
    pub(crate) fn schedule(&self, at: u64) {
        self.state.events.borrow_mut().insert(at);
    }
}

impl Clock for TestClock {
    fn now_ms(&mut self) -> u64 {
        self.now()
    }

    async fn sleep_until_ms(&mut self, deadline_ms: u64) {
        core::future::poll_fn(|cx| {
            let now = self.now();
            if now >= deadline_ms {
                return Poll::Ready(());
            }
            let next = {
                let mut events = self.state.events.borrow_mut();
                while events.first().is_some_and(|&e| e <= now) {
                    events.pop_first();
                }
                events.first().copied()
            };
            match next {
                Some(at) if at < deadline_ms => {
                    self.state.now.set(at);
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                _ => {
                    self.state.now.set(deadline_ms);
                    Poll::Ready(())
                }
            }
        })
        .await
    }
}
