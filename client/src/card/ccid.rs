//! USB CCID readers driven directly (no PC/SC), through `cardunlock-ccid`'s session over its
//! `nusb` backend.

use std::time::{Duration, Instant};

use cardunlock_ccid::codec::IccStatus;
use cardunlock_ccid::session;
use cardunlock_ccid::usb::{self, ReaderInfo, StdClock, UsbControl, UsbError, UsbPipe};
use embassy_futures::block_on;

use super::ReaderState;
use crate::{Failure, Kind};

/// The CCID session the CLI runs flows over.
pub type Session = session::Session<UsbPipe, StdClock, UsbControl>;
/// Its error.
pub type SessionError = session::SessionError<UsbPipe, UsbControl>;

/// A card powered in a CCID reader's slot 0.
pub struct CcidCard {
    session: Session,
}

impl CcidCard {
    /// The session, for a driver.
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Whether the reader carries extended-length APDUs.
    pub fn supports_extended_length(&self) -> bool {
        use cardunlock_core::Transport;
        self.session.supports_extended_length()
    }

    /// Cold-resets the card (power off, power on): drops what a flow authenticated. A failure
    /// is ignored, as PC/SC ignores a failed `SCardEndTransaction`: the card went away.
    pub fn reset(&mut self) {
        let _ = block_on(async {
            self.session.power_off().await?;
            self.session.power_on().await.map(|_| ())
        });
    }
}

fn usb_failure(e: &UsbError) -> Failure {
    if let UsbError::List(_) = e {
        return Failure::new(
            Kind::NoCard,
            format!("no USB CCID reader can be reached: {e} (no USB on this machine? use the PC/SC transport)"),
        );
    }
    let code = match e {
        UsbError::Disconnected
        | UsbError::Stall
        | UsbError::WriteTimeout
        | UsbError::Transfer(_) => Kind::Communication,
        _ => Kind::NoCard,
    };
    Failure::new(code, e.to_string())
}

fn session_failure(reader: &str, e: &SessionError) -> Failure {
    let mut failure = crate::failure::transport(e);
    failure.message = format!("{reader}: {}", failure.message);
    failure
}

/// Every CCID reader, with whether a card is in it. A reader another program holds is listed
/// with that said, and no card.
pub fn list() -> Result<Vec<ReaderState>, Failure> {
    let readers = usb::list().map_err(|e| usb_failure(&e))?;
    Ok(readers
        .iter()
        .map(|info| match usb::open(info) {
            Ok(pipe) => {
                let present = session_over(info, pipe)
                    .ok()
                    .and_then(|mut s| block_on(s.slot_status()).ok())
                    .is_some_and(|st| st.icc != IccStatus::Absent);
                ReaderState {
                    name: info.name.clone(),
                    card_present: present,
                    // A slot's status has no "does not answer"; power-on says it, later.
                    mute: false,
                }
            }
            Err(UsbError::Busy { .. }) => ReaderState {
                name: format!("{} (in use by another program)", info.name),
                card_present: false,
                mute: false,
            },
            Err(_) => ReaderState {
                name: format!("{} (cannot be opened)", info.name),
                card_present: false,
                mute: false,
            },
        })
        .collect())
}

fn open_session(info: &ReaderInfo) -> Result<Session, Failure> {
    let pipe = usb::open(info).map_err(|e| usb_failure(&e))?;
    session_over(info, pipe)
}

/// The session over an opened reader's pipe.
fn session_over(info: &ReaderInfo, pipe: UsbPipe) -> Result<Session, Failure> {
    let control = pipe.control();
    let config = session::Config {
        // ICCD devices (protocol 1 and 2) are refused with a clear message.
        interface_protocol: info.interface_protocol,
        ..session::Config::DEFAULT
    };
    Session::with_config(pipe, StdClock::new(), control, &info.descriptor, 0, config)
        .map_err(|e| session_failure(&info.name, &e))
}

/// Picks the reader: by index in `cardunlock --transport ccid readers`, by (part of) its name,
/// or the first one with a card.
fn choose(readers: &[ReaderInfo], wanted: Option<&str>) -> Result<Vec<usize>, Failure> {
    let names = || {
        readers
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if readers.is_empty() {
        return Err(Failure::new(
            Kind::NoCard,
            "no USB CCID reader found (is it plugged in? without --transport ccid, PC/SC is used)",
        ));
    }
    let Some(wanted) = wanted else {
        return Ok((0..readers.len()).collect());
    };
    if let Ok(i) = wanted.parse::<usize>() {
        return if i < readers.len() {
            Ok(vec![i])
        } else {
            Err(Failure::new(
                Kind::NoCard,
                format!("no USB CCID reader {i}; readers: {}", names()),
            ))
        };
    }
    let matching: Vec<usize> = (0..readers.len())
        .filter(|&i| readers[i].name == wanted || readers[i].name.contains(wanted))
        .collect();
    match matching.len() {
        0 => Err(Failure::new(
            Kind::NoCard,
            format!(
                "no USB CCID reader matches {wanted:?}; readers: {}",
                names()
            ),
        )),
        1 => Ok(matching),
        _ => Err(Failure::new(
            Kind::Usage,
            format!("several USB CCID readers match {wanted:?}: give the index or the full name"),
        )),
    }
}

/// Connects to the card in the chosen reader (waiting for it with `--wait`) and powers it on.
pub fn connect(
    reader: Option<&str>,
    wait: Duration,
    verbose: bool,
    notice: &mut dyn FnMut(&str),
) -> Result<CcidCard, Failure> {
    let readers = usb::list().map_err(|e| usb_failure(&e))?;
    let candidates = choose(&readers, reader)?;
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        let mut last = None;
        for &i in &candidates {
            let info = &readers[i];
            let mut session = match open_session(info) {
                Ok(s) => s,
                Err(f) if candidates.len() > 1 => {
                    last = Some(f);
                    continue;
                }
                Err(f) => return Err(f),
            };
            let state =
                block_on(session.slot_status()).map_err(|e| session_failure(&info.name, &e))?;
            if state.icc == IccStatus::Absent {
                last = Some(Failure::new(
                    Kind::NoCard,
                    format!("no card in {}", info.name),
                ));
                continue;
            }
            block_on(session.power_on()).map_err(|e| session_failure(&info.name, &e))?;
            if verbose {
                eprintln!("reader: {} (USB CCID {})", info.name, info.id());
            }
            return Ok(CcidCard { session });
        }
        let failure = last.unwrap_or_else(|| Failure::new(Kind::NoCard, "no card"));
        if failure.kind != Kind::NoCard || Instant::now() >= deadline {
            return Err(failure);
        }
        if !told {
            notice(&format!(
                "Insert the smart card (waiting up to {} s) ...",
                wait.as_secs()
            ));
            told = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
