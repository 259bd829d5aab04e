//! [`PcscTransport`]: core's [`Transport`] over a PC/SC card connection, and
//! [`PcscSession`], the exclusive transaction a flow runs in.

use std::ffi::CString;
use std::time::{Duration, Instant};

use cardunlock_core::apdu::RedactedCommand;
use cardunlock_core::driver::{self, Driver};
use cardunlock_core::flow::{AdminResponder, Flow};
use cardunlock_core::Transport;
use pcsc::{Card, Disposition, Protocols, ReaderState, State};

use crate::context::c_name;
use crate::PcscError;

/// How long a failed exchange waits for pcscd to notice that the card left, to tell a removed
/// card from other communication errors.
const REMOVAL_PROBE: Duration = Duration::from_millis(1500);

/// How the connection shares the card with other applications.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShareMode {
    /// Others may connect too; flows still run alone inside a [`PcscSession`] (a PC/SC
    /// transaction). The default.
    #[default]
    Shared,
    /// Nobody else may connect while this connection is open.
    Exclusive,
}

impl ShareMode {
    fn to_pcsc(self) -> pcsc::ShareMode {
        match self {
            Self::Shared => pcsc::ShareMode::Shared,
            Self::Exclusive => pcsc::ShareMode::Exclusive,
        }
    }
}

/// A function that receives APDU trace lines (commands redacted, responses as SW only).
pub type TraceFn = fn(&str);

/// What a transmit needs besides the card handle.
struct Link {
    ctx: pcsc::Context,
    reader: String,
    share: ShareMode,
    trace: Option<TraceFn>,
}

impl Link {
    fn tracing(&self) -> bool {
        self.trace.is_some()
            || log::log_enabled!(target: "cardunlock_pcsc::apdu", log::Level::Trace)
    }

    fn emit(&self, line: &str) {
        log::trace!(target: "cardunlock_pcsc::apdu", "{line}");
        if let Some(hook) = self.trace {
            hook(line);
        }
    }

    fn err(&self, call: &'static str, e: pcsc::Error) -> PcscError {
        PcscError::from_pcsc(call, e, &self.reader)
    }

    /// One `SCardTransmit`, with reset recovery and removal diagnosis.
    fn exchange<H: Handle>(
        &self,
        handle: &mut H,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, PcscError> {
        let tracing = self.tracing();
        let started = Instant::now();
        if tracing {
            self.emit(&format!("> {}", RedactedCommand(command)));
        }
        let result = handle.card().transmit(command, response).map(<[u8]>::len);
        let result = match result {
            Ok(n) if n >= 2 => Ok(n),
            // No status word: the reader's driver lost the card mid-exchange and still called it
            // a success (vpcd does when the card's connection closes cleanly under a command).
            Ok(_) => Err(self.diagnose(pcsc::Error::CommError)),
            Err(pcsc::Error::ResetCard) => {
                // The card lost its state. Reconnect (leaving the card as it is) so the next flow
                // can run, and report the reset: the command was *not* executed and is never
                // resent here.
                handle
                    .reconnect(self.share.to_pcsc(), Protocols::ANY, Disposition::LeaveCard)
                    .map_err(|e| self.err("SCardReconnect", e))?;
                Err(PcscError::CardReset)
            }
            Err(e) => Err(self.diagnose(e)),
        };
        if tracing {
            let ms = started.elapsed().as_secs_f64() * 1e3;
            match &result {
                Ok(n) => {
                    let sw = response.get(n - 2..*n).unwrap_or(&[]);
                    self.emit(&format!(
                        "< {} ({} data bytes, {ms:.2} ms)",
                        cardunlock_core::apdu::Hex(sw),
                        n - 2
                    ));
                }
                Err(e) => self.emit(&format!("< error: {e} ({ms:.2} ms)")),
            }
        }
        result
    }

    /// Classifies a transmit failure. pcscd reports a card pulled mid-exchange as a generic
    /// communication error (`SCARD_E_NOT_TRANSACTED`, `SCARD_F_COMM_ERROR`) until its reader
    /// poll notices; asking for the reader state (briefly waiting for the change) turns that into
    /// [`PcscError::CardRemoved`].
    fn diagnose(&self, e: pcsc::Error) -> PcscError {
        use pcsc::Error as E;
        let generic = matches!(
            e,
            E::NotTransacted
                | E::CommError
                | E::UnknownError
                | E::UnresponsiveCard
                | E::CommDataLost
        );
        if generic && self.card_gone(REMOVAL_PROBE) {
            return PcscError::CardRemoved;
        }
        match self.err("SCardTransmit", e) {
            PcscError::NoCard { .. } => PcscError::CardRemoved,
            other => other,
        }
    }

    /// Whether the card leaves (or left) the reader within `wait`.
    fn card_gone(&self, wait: Duration) -> bool {
        let Ok(name) = CString::new(self.reader.as_str()) else {
            return false;
        };
        let deadline = Instant::now() + wait;
        let mut states = [ReaderState::new(name, State::UNAWARE)];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.ctx.get_status_change(left, &mut states).is_err() {
                return false;
            }
            let s = states[0].event_state();
            if s.intersects(State::EMPTY | State::UNKNOWN | State::UNAVAILABLE) {
                return true;
            }
            if left.is_zero() {
                return false;
            }
            states[0].sync_current_state();
        }
    }
}

/// A card handle: the connection itself or a transaction on it.
trait Handle {
    fn card(&self) -> &Card;
    fn reconnect(
        &mut self,
        share: pcsc::ShareMode,
        protocols: Protocols,
        init: Disposition,
    ) -> Result<(), pcsc::Error>;
}

impl Handle for Card {
    fn card(&self) -> &Card {
        self
    }

    fn reconnect(
        &mut self,
        share: pcsc::ShareMode,
        protocols: Protocols,
        init: Disposition,
    ) -> Result<(), pcsc::Error> {
        Card::reconnect(self, share, protocols, init)
    }
}

impl Handle for pcsc::Transaction<'_> {
    fn card(&self) -> &Card {
        self
    }

    fn reconnect(
        &mut self,
        share: pcsc::ShareMode,
        protocols: Protocols,
        init: Disposition,
    ) -> Result<(), pcsc::Error> {
        pcsc::Transaction::reconnect(self, share, protocols, init)
    }
}

/// A connection to the card in one reader, usable as core's [`Transport`].
///
/// # Blocking
/// PC/SC calls block the calling thread. [`Transport::transmit`] calls `SCardTransmit` directly
/// and completes in its first poll, so drive it with a simple executor
/// (`embassy_futures::block_on`) on a thread that may block: `PcscTransport` is `Send`, so an
/// async host moves it to a blocking thread (`tokio::task::spawn_blocking`).
///
/// # Exclusive access
/// A flow is several APDUs (and for online unlock a server round trip in between): run it in a
/// [`PcscSession`] ([`PcscTransport::begin`]) or with [`PcscTransport::run_exclusive`], so no
/// other application's commands (a SELECT of another applet, a VERIFY) land in between. Using
/// the `PcscTransport` itself as the transport sends every APDU on its own.
///
/// On Windows a transaction left idle for more than 5 seconds makes the system reset the
/// card; a slow responder (a person typing an operator code) then ends in
/// [`PcscError::CardReset`].
///
/// # Card reset
/// When the card was reset since the last command (`SCARD_W_RESET_CARD`), the connection is
/// re-established with `SCardReconnect(LeaveCard)` and the command fails with
/// [`PcscError::CardReset`] ([`cardunlock_core::ErrorKind::CardReset`]); it is never resent, so
/// a PIN or PUK is never sent twice behind the caller's back. Start the flow again.
///
/// # Disconnect
/// Dropping the transport disconnects with `SCARD_RESET_CARD`, so a PIN verified or an admin key
/// authenticated by a flow does not stay usable by other applications. Use
/// [`PcscTransport::disconnect`] to choose otherwise.
///
/// # Trace
/// APDUs are traced at `log` level trace (target `cardunlock_pcsc::apdu`) and to the hook set
/// with [`PcscTransport::with_trace`]: commands through [`RedactedCommand`] (the data of VERIFY,
/// CHANGE REFERENCE DATA, RESET RETRY COUNTER is replaced by its length), responses as the
/// status word and data length only.
pub struct PcscTransport {
    card: Card,
    link: Link,
}

impl core::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.link.reader)
            .field("share", &self.link.share)
            .finish_non_exhaustive()
    }
}

impl PcscTransport {
    /// Connects to the card in `reader` through a new PC/SC context. `T=0` or `T=1`, whichever
    /// the card offers.
    pub fn connect(reader: &str, share: ShareMode) -> Result<Self, PcscError> {
        let ctx = pcsc::Context::establish(pcsc::Scope::User)
            .map_err(|e| PcscError::from_pcsc("SCardEstablishContext", e, reader))?;
        Self::with_context(ctx, reader, share)
    }

    pub(crate) fn with_context(
        ctx: pcsc::Context,
        reader: &str,
        share: ShareMode,
    ) -> Result<Self, PcscError> {
        let name = c_name(reader)?;
        let card = ctx
            .connect(&name, share.to_pcsc(), Protocols::ANY)
            .map_err(|e| PcscError::from_pcsc("SCardConnect", e, reader))?;
        Ok(Self {
            card,
            link: Link {
                ctx,
                reader: reader.to_owned(),
                share,
                trace: None,
            },
        })
    }

    /// Sends every APDU trace line to `hook` as well as to `log`.
    pub fn with_trace(mut self, hook: TraceFn) -> Self {
        self.link.trace = Some(hook);
        self
    }

    /// The reader name.
    pub fn reader(&self) -> &str {
        &self.link.reader
    }

    /// The protocol in use (`T=0` or `T=1`).
    pub fn protocol(&self) -> Option<pcsc::Protocol> {
        self.card.status2_owned().ok().and_then(|s| s.protocol2())
    }

    /// The card's ATR.
    pub fn atr(&self) -> Result<Vec<u8>, PcscError> {
        self.card
            .status2_owned()
            .map(|s| s.atr().to_vec())
            .map_err(|e| self.link.err("SCardStatus", e))
    }

    /// Starts an exclusive transaction (`SCardBeginTransaction`): until the session ends, no
    /// other application reaches the card. If the card was reset since the last use the
    /// connection is re-established first (nothing was in flight, so nothing is lost).
    pub fn begin(&mut self) -> Result<PcscSession<'_>, PcscError> {
        let reset = match self.card.status2_owned() {
            Err(pcsc::Error::ResetCard) => true,
            Err(e) => return Err(self.link.err("SCardStatus", e)),
            Ok(_) => false,
        };
        if reset {
            self.card
                .reconnect(
                    self.link.share.to_pcsc(),
                    Protocols::ANY,
                    Disposition::LeaveCard,
                )
                .map_err(|e| self.link.err("SCardReconnect", e))?;
        }
        let tx = self
            .card
            .transaction()
            .map_err(|e| PcscError::from_pcsc("SCardBeginTransaction", e, &self.link.reader))?;
        Ok(PcscSession {
            tx,
            link: &self.link,
        })
    }

    /// Runs `flow` to its end inside one exclusive transaction, which is ended (leaving the card
    /// as it is) whatever the outcome. Errors of ending the transaction after a successful flow
    /// are ignored: the card did what the flow asked.
    pub async fn run_exclusive<F: Flow, R: AdminResponder>(
        &mut self,
        flow: &mut F,
        responder: &mut R,
    ) -> Result<F::Output, driver::Error<PcscError, R::Error>> {
        let mut session = self.begin().map_err(driver::Error::Transport)?;
        let result = Driver::new(&mut session).run(flow, responder).await;
        // Ending can only fail if the card or reader went away; the transaction is gone then.
        let _ = session.end(Disposition::LeaveCard);
        result
    }

    /// Disconnects, doing `disposition` to the card (`LeaveCard` keeps its security state for
    /// the next application; `ResetCard`, the default on drop, clears it).
    pub fn disconnect(self, disposition: Disposition) -> Result<(), PcscError> {
        let reader = self.link.reader;
        self.card
            .disconnect(disposition)
            .map_err(|(_, e)| PcscError::from_pcsc("SCardDisconnect", e, &reader))
    }
}

impl Transport for PcscTransport {
    type Error = PcscError;

    /// One APDU, on its own (see [`PcscTransport`] for flows). Blocks the thread.
    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, PcscError> {
        self.link.exchange(&mut self.card, command, response)
    }
}

/// An exclusive PC/SC transaction on a [`PcscTransport`]: a [`Transport`] whose APDUs no other
/// application can interleave with. Ends when dropped (`LeaveCard`) or with
/// [`PcscSession::end`].
pub struct PcscSession<'t> {
    tx: pcsc::Transaction<'t>,
    link: &'t Link,
}

impl core::fmt::Debug for PcscSession<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PcscSession")
            .field("reader", &self.link.reader)
            .finish_non_exhaustive()
    }
}

impl PcscSession<'_> {
    /// Ends the transaction, doing `disposition` to the card (`LeaveCard` to keep its state,
    /// `ResetCard` to clear what the flow authenticated).
    pub fn end(self, disposition: Disposition) -> Result<(), PcscError> {
        let link = self.link;
        self.tx
            .end(disposition)
            .map_err(|(_, e)| link.err("SCardEndTransaction", e))
    }
}

impl Transport for PcscSession<'_> {
    type Error = PcscError;

    /// One APDU inside the transaction. Blocks the thread.
    async fn transmit(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, PcscError> {
        self.link.exchange(&mut self.tx, command, response)
    }
}
