//! What a front end (the unlock window, the login-screen tile) and the unlock worker say to each
//! other.
//!
//! The unlock (card commands, server calls) runs on a worker thread ([`crate::worker`]), so the
//! front end's thread never blocks. The worker [`report`](WorkerEnd::report)s what happened and
//! [`ask`](WorkerEnd::ask)s for what it needs (answers, the new PIN, the operator's response),
//! then blocks until the front end replies. After each report the worker calls the front end's
//! wake-up ([`Wake`]: a repaint request for the window; for the tile a message posted to
//! LogonUI's thread, which then drains the reports there: the worker never touches the front
//! end's objects). Secrets travel as [`Zeroizing`] strings and are never printed: no type here
//! derives `Debug` over them.

use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};

use zeroize::Zeroizing;

mod front;
mod words;

pub use front::{busy_text, secret, Front, Screen, SECRET_CAPACITY};
pub use words::{
    attempts_left_line, explain, group, next_steps, ANSWER_QUESTIONS, ENTER_NEW_PIN, UNLOCKED,
};

pub use cardunlock_protocol::{PinPolicy, User};

/// What the card shows for offline unlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// An admin-key card's challenge, read out to the operator.
    Admin {
        /// The challenge in hex.
        challenge_hex: String,
        /// The admin key's algorithm ("3DES", "AES-128", ...).
        algorithm: String,
    },
    /// A PIV card: the operator reads out the PUK.
    Puk,
}

/// What the worker needs from the person in front of the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// One answer per question, in order.
    Answers(Vec<String>),
    /// The new PIN and its confirmation, checked against this policy as typed.
    NewPin(PinPolicy),
    /// The operator's response to the challenge (or the PUK).
    Response(Challenge),
}

/// How an unlock failed, for the front end to pick its screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Wrong answers, more attempts left.
    WrongAnswers {
        /// Attempts left before online unlock is locked.
        attempts_left: u32,
    },
    /// Online unlock is locked for this card.
    Locked,
    /// No security questions enrolled: offline unlock is offered.
    NoQuestions,
    /// The server cannot be reached (or answered nonsense); the card is untouched.
    ServerUnreachable,
    /// The card was removed, or the link to it failed, during the unlock.
    CardRemoved,
    /// No reader, no card or no smart-card service.
    NoCard,
    /// The card or the server refused (wrong PUK or response, blocked).
    Refused,
    /// The new PIN broke the policy.
    Policy,
    /// Bad input (e.g. a response that is not hex).
    Usage,
    /// The user cancelled.
    Cancelled,
}

/// A failed unlock: its kind and the message that names what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What went wrong.
    pub kind: ProblemKind,
    /// The details, for the small print.
    pub message: String,
}

/// What the worker tells the front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Waiting for a card; the text says what to do ("Insert your card.").
    Waiting(String),
    /// Work under way that needs no input ("Reading the card...").
    Busy(String),
    /// The card was read (profile, id, PIN state).
    Card(String),
    /// The answers were verified; the server released the user's name and e-mail.
    User(User),
    /// The answers were wrong; they are asked again.
    WrongAnswers {
        /// Attempts left.
        attempts_left: u32,
    },
    /// The new PIN was refused by the policy (one line per violation); asked again.
    PinRefused(Vec<String>),
    /// The card is being unlocked.
    Unlocking,
    /// Something the user should know that did not stop the unlock.
    Warning(String),
    /// The worker needs input: the front end replies with the matching [`Reply`].
    Ask(Ask),
    /// "The smart card has been unlocked successfully."
    Unlocked,
    /// The unlock stopped; the front end replies [`Reply::Retry`], [`Reply::Offline`] or
    /// [`Reply::Cancel`].
    Failed(Problem),
}

/// What the front end answers.
pub enum Reply {
    /// The answers, one per question.
    Answers(Vec<Zeroizing<String>>),
    /// The new PIN and its confirmation.
    NewPin(Zeroizing<String>, Zeroizing<String>),
    /// The operator's response (hex) or the PUK.
    Response(Zeroizing<String>),
    /// Start again from the card (after a failure).
    Retry,
    /// Unlock offline (after [`ProblemKind::NoQuestions`]).
    Offline,
    /// The user gave up (closed the window, or LogonUI released the tile).
    Cancel,
}

/// Called by the worker after each report, on the worker's thread: wakes the front end.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// The wake-up, shared by both ends: set once by the front end (or at [`channel_waking`]).
#[derive(Clone, Default)]
struct Waker(Arc<OnceLock<Wake>>);

/// The worker's end.
pub struct WorkerEnd {
    reports: Sender<Report>,
    replies: Receiver<Reply>,
    waker: Waker,
}

/// The front end is gone (closed, released): the worker stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl WorkerEnd {
    /// Tells the front end `report` and wakes it. `Err(Closed)` when the front end is gone.
    pub fn report(&self, report: Report) -> Result<(), Closed> {
        self.reports.send(report).map_err(|_| Closed)?;
        if let Some(wake) = self.waker.0.get() {
            wake();
        }
        Ok(())
    }

    /// Asks the front end and waits for its reply.
    pub fn ask(&self, ask: Ask) -> Result<Reply, Closed> {
        self.report(Report::Ask(ask))?;
        self.wait()
    }

    /// Waits for the front end's next reply.
    pub fn wait(&self) -> Result<Reply, Closed> {
        self.replies.recv().map_err(|_| Closed)
    }

    /// A reply, if the front end sent one (for a worker that polls, e.g. while waiting for a
    /// card).
    pub fn poll(&self) -> Result<Option<Reply>, Closed> {
        match self.replies.try_recv() {
            Ok(r) => Ok(Some(r)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(Closed),
        }
    }
}

/// The front end's end.
pub struct UiEnd {
    reports: Receiver<Report>,
    replies: Sender<Reply>,
    waker: Waker,
}

impl UiEnd {
    /// Sets the wake-up the worker calls after each report, the first time only (a window
    /// learns its context when it first draws).
    pub fn set_wake(&self, wake: impl FnOnce() -> Wake) {
        self.waker.0.get_or_init(wake);
    }

    /// The next report, if any. `Err(Closed)` when the worker ended.
    pub fn next(&self) -> Result<Option<Report>, Closed> {
        match self.reports.try_recv() {
            Ok(r) => Ok(Some(r)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(Closed),
        }
    }

    /// Sends `reply` to the worker (ignored when the worker already ended).
    pub fn reply(&self, reply: Reply) {
        let _ = self.replies.send(reply);
    }
}

/// A connected pair of ends; the front end sets its wake-up later ([`UiEnd::set_wake`]).
pub fn channel() -> (UiEnd, WorkerEnd) {
    let (report_tx, report_rx) = mpsc::channel();
    let (reply_tx, reply_rx) = mpsc::channel();
    let waker = Waker::default();
    (
        UiEnd {
            reports: report_rx,
            replies: reply_tx,
            waker: waker.clone(),
        },
        WorkerEnd {
            reports: report_tx,
            replies: reply_rx,
            waker,
        },
    )
}

/// A connected pair of ends whose worker calls `wake` after each report.
pub fn channel_waking(wake: Wake) -> (UiEnd, WorkerEnd) {
    let (ui, worker) = channel();
    ui.set_wake(|| wake);
    (ui, worker)
}
