//! Reading a card's status without spending any try: which profile answers, its identity, PIN
//! (and PUK) tries left, the admin key algorithm.

use super::{response, Action, Event, Flow, FlowError};
use crate::apdu::Response;
use crate::crypto::Algorithm;
use crate::gids;
use crate::iso::IsoProfile;
use crate::piv::{self, CardId, IdKind};
use crate::sw::Status;

/// The card profiles the core speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Profile {
    /// PIV: the PUK unblocks the PIN.
    Piv,
    /// GIDS: the admin key unblocks the PIN (mutual authentication).
    Gids,
    /// ISO 7816-4 admin challenge-response.
    IsoAdmin,
}

impl Profile {
    /// Short lowercase name: `piv`, `gids`, `iso`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Piv => "piv",
            Self::Gids => "gids",
            Self::IsoAdmin => "iso",
        }
    }
}

/// Proof that a flow left a profile's application selected in the current exclusive session,
/// so the next flow may skip its SELECT (`GidsUnblock::after`, `IsoUnblock::after`,
/// `PivMgmtAuth::after`). Made only by [`ReadStatus::into_selected`], consumed by the flow it
/// lets skip the SELECT. Use it over the same driver, in the same exclusive session (PC/SC
/// transaction): another program's SELECT in between would be missed.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a selection token is only useful to the flow that follows it"]
pub struct Selected {
    profile: Profile,
}

impl Selected {
    /// The profile whose application is selected.
    pub fn profile(&self) -> Profile {
        self.profile
    }
}

/// What [`ReadStatus`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CardStatus {
    /// Which application answered.
    pub profile: Profile,
    /// The card identity (CHUID GUID / FASC-N, vendor serial, card serial), when readable.
    pub identity: Option<CardId>,
    /// PIN tries left (`Some(0)`: blocked); `None` when the card does not say (PIN verified).
    pub pin_tries_left: Option<u8>,
    /// PIN tries allowed, when the card says.
    pub pin_max_tries: Option<u8>,
    /// Whether the PIN is verified in the current session.
    pub pin_verified: bool,
    /// PUK tries left (PIV cards with GET METADATA only).
    pub puk_tries_left: Option<u8>,
    /// The admin key algorithm, when known.
    pub admin_algorithm: Option<Algorithm>,
    /// ISO admin cards: the position, in the list [`ReadStatus`] probed, of the profile whose
    /// application answered. `None` for PIV and GIDS.
    pub iso_profile: Option<usize>,
}

impl CardStatus {
    /// Whether the PIN is blocked.
    pub fn pin_blocked(&self) -> bool {
        self.pin_tries_left == Some(0)
    }

    fn new(profile: Profile) -> Self {
        Self {
            profile,
            identity: None,
            pin_tries_left: None,
            pin_max_tries: None,
            pin_verified: false,
            puk_tries_left: None,
            admin_algorithm: None,
            iso_profile: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    SelectPiv,
    PivChuid,
    PivSerial,
    PivPin,
    PivPukMeta,
    PivMgmtMeta,
    SelectGids,
    GidsPin,
    SelectIso(usize),
    IsoPin,
    Serial,
    Done,
}

/// The ISO admin profiles a status read probes after PIV and GIDS, in order.
#[derive(Clone, Copy, Debug)]
enum Probes<'p> {
    One(IsoProfile<'p>),
    List(&'p [IsoProfile<'p>]),
}

impl<'p> Probes<'p> {
    fn get(&self, i: usize) -> Option<IsoProfile<'p>> {
        match self {
            Self::One(p) => (i == 0).then_some(*p),
            Self::List(l) => l.get(i).copied(),
        }
    }
}

/// Reads the card status: tries PIV, then GIDS, then each ISO admin profile given, in order (one
/// SELECT each, up to the first that answers). Only status queries are sent (VERIFY without data,
/// GET DATA, GET METADATA): no try is spent.
#[derive(Debug)]
pub struct ReadStatus<'p> {
    iso: Probes<'p>,
    status: CardStatus,
    state: State,
    /// Read a PIV card's admin key algorithm (GET METADATA 9B).
    admin_key: bool,
}

impl<'p> ReadStatus<'p> {
    /// A status read; `iso` addresses the ISO admin card if neither PIV nor GIDS answer.
    pub fn new(iso: IsoProfile<'p>) -> Self {
        Self::probing(Probes::One(iso))
    }

    /// A status read that tries each of `isos` in order if neither PIV nor GIDS answer (none:
    /// a card that is neither is [`FlowError::UnknownCard`]). [`CardStatus::iso_profile`] says
    /// which one answered.
    pub fn with_iso_profiles(isos: &'p [IsoProfile<'p>]) -> Self {
        Self::probing(Probes::List(isos))
    }

    fn probing(iso: Probes<'p>) -> Self {
        Self {
            iso,
            status: CardStatus::new(Profile::Piv),
            state: State::SelectPiv,
            admin_key: true,
        }
    }

    /// Leaves out a PIV card's admin key algorithm (GET METADATA `00 F7 00 9B`, one APDU less):
    /// for an unlock with the PUK, which never uses the admin key. `admin_algorithm` then stays
    /// `None` for a PIV card.
    pub fn without_admin_key(self) -> Self {
        Self {
            admin_key: false,
            ..self
        }
    }

    /// After a completed read: the token saying the found profile's application is still
    /// selected (no command of the read selects anything else). `None` before the read ended.
    pub fn into_selected(self) -> Option<Selected> {
        (self.state == State::Done).then_some(Selected {
            profile: self.status.profile,
        })
    }
}

impl<'p> ReadStatus<'p> {
    /// The ISO profile whose application answered.
    fn answered(&self) -> Option<IsoProfile<'p>> {
        self.status.iso_profile.and_then(|i| self.iso.get(i))
    }

    /// SELECT the `i`-th ISO profile, or give up: no profile left.
    fn next_iso(&self, i: usize) -> Result<State, FlowError> {
        match self.iso.get(i) {
            Some(_) => Ok(State::SelectIso(i)),
            None => Err(FlowError::UnknownCard),
        }
    }
}

fn pin_status(status: &mut CardStatus, r: Response<'_>) {
    match r.status {
        Status::Success => status.pin_verified = true,
        s => status.pin_tries_left = s.tries_left(),
    }
}

impl Flow for ReadStatus<'_> {
    type Output = CardStatus;

    fn action<'a>(&'a mut self, _buf: &'a mut [u8]) -> Result<Action<'a, CardStatus>, FlowError> {
        Ok(match self.state {
            State::SelectPiv => Action::Send(piv::select()),
            State::PivChuid => Action::Send(piv::get_chuid()),
            State::PivSerial => Action::Send(piv::get_serial()),
            State::PivPin => Action::Send(piv::verify_status(piv::PIN_REF)),
            State::PivPukMeta => Action::Send(piv::get_metadata(piv::PUK_REF)),
            State::PivMgmtMeta => Action::Send(piv::get_metadata(piv::MGMT_KEY_REF)),
            State::SelectGids => Action::Send(gids::select()),
            State::GidsPin => Action::Send(gids::get_pin_status()),
            State::SelectIso(i) => match self.iso.get(i) {
                Some(iso) => Action::Send(iso.select()),
                None => return Err(FlowError::UnknownCard),
            },
            State::IsoPin => match self.answered() {
                Some(iso) => Action::Send(iso.verify_status()),
                None => return Err(FlowError::UnexpectedEvent),
            },
            State::Serial => Action::Send(gids::get_serial()),
            State::Done => Action::Done(self.status),
        })
    }

    fn handle(&mut self, event: Event<'_>) -> Result<(), FlowError> {
        let r = response(event)?;
        let ok = r.status.is_success();
        let st = &mut self.status;
        self.state = match self.state {
            State::SelectPiv if ok => State::PivChuid,
            State::SelectPiv => State::SelectGids,
            State::PivChuid => {
                st.identity = if ok { piv::parse_chuid(r.data) } else { None };
                if st.identity.is_some() {
                    State::PivPin
                } else {
                    State::PivSerial
                }
            }
            State::PivSerial => {
                if ok {
                    st.identity = CardId::new(IdKind::Serial, r.data);
                }
                State::PivPin
            }
            State::PivPin => {
                pin_status(st, r);
                State::PivPukMeta
            }
            State::PivPukMeta => {
                if let Some(m) = piv::parse_metadata(r.data).filter(|_| ok) {
                    st.puk_tries_left = m.tries.map(|(_, left)| left);
                }
                if self.admin_key {
                    State::PivMgmtMeta
                } else {
                    State::Done
                }
            }
            State::PivMgmtMeta => {
                let reported = piv::parse_metadata(r.data)
                    .filter(|_| ok)
                    .and_then(|m| m.algorithm);
                st.admin_algorithm = match reported {
                    Some(id) => Algorithm::from_piv_id(id),
                    // No GET METADATA, or an empty answer (piv-authenticator): PIV's default.
                    None => Some(Algorithm::TripleDes),
                };
                State::Done
            }
            State::SelectGids if ok => {
                *st = CardStatus::new(Profile::Gids);
                st.admin_algorithm = Some(Algorithm::TripleDes);
                State::GidsPin
            }
            State::SelectGids => self.next_iso(0)?,
            State::GidsPin => {
                if let Some(p) = gids::parse_pin_status(r.data).filter(|_| ok) {
                    st.pin_tries_left = Some(p.tries_left);
                    st.pin_max_tries = p.max_tries;
                }
                State::Serial
            }
            State::SelectIso(i) if ok => {
                *st = CardStatus::new(Profile::IsoAdmin);
                st.admin_algorithm = self.iso.get(i).map(|p| p.algorithm);
                st.iso_profile = Some(i);
                State::IsoPin
            }
            State::SelectIso(i) => self.next_iso(i + 1)?,
            State::IsoPin => {
                pin_status(st, r);
                State::Serial
            }
            State::Serial => {
                if ok {
                    st.identity = CardId::new(IdKind::CardSerial, r.data);
                }
                State::Done
            }
            State::Done => return Err(FlowError::UnexpectedEvent),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    const ACME: IsoProfile<'static> = IsoProfile {
        aid: &hex!("A0 00 00 01 23 45"),
        admin_key_ref: 0x02,
        pin_ref: 0x81,
        algorithm: Algorithm::Aes128,
    };

    /// Runs `flow` against a card that answers SELECT only for `aid` (`90 00`, else `6A 82`)
    /// and every other command with `63 C0`; returns the SELECTs sent and the outcome.
    fn run(
        mut flow: ReadStatus<'_>,
        aid: &[u8],
    ) -> (
        heapless::Vec<heapless::Vec<u8, 16>, 8>,
        Result<CardStatus, FlowError>,
    ) {
        let mut selects = heapless::Vec::new();
        for _ in 0..16 {
            let mut buf = [0u8; 64];
            let mut wire = [0u8; 64];
            let n = match flow.action(&mut buf) {
                Ok(Action::Send(cmd)) => cmd.encode(&mut wire).unwrap(),
                Ok(Action::Done(s)) => return (selects, Ok(s)),
                Ok(Action::Ask(_)) => panic!("a status read asks no responder"),
                Err(e) => return (selects, Err(e)),
            };
            let apdu = &wire[..n];
            let reply: &[u8] = if apdu[1] == 0xA4 {
                let data = &apdu[5..5 + usize::from(apdu[4])];
                selects
                    .push(heapless::Vec::from_slice(data).unwrap())
                    .unwrap();
                if data == aid {
                    &[0x90, 0x00]
                } else {
                    &[0x6A, 0x82]
                }
            } else {
                &[0x63, 0xC0]
            };
            let r = Response::parse(reply).unwrap();
            if let Err(e) = flow.handle(Event::Response(r)) {
                return (selects, Err(e));
            }
        }
        panic!("the status read did not end")
    }

    /// Each configured ISO profile is tried in order, one SELECT each, up to the first that
    /// answers; its position and algorithm are reported. Fails if the probe stops at the first
    /// profile or reports the wrong one.
    #[test]
    fn iso_profiles_are_probed_in_order() {
        let isos = [crate::iso::tests::TEST_PROFILE, ACME];
        let (selects, status) = run(ReadStatus::with_iso_profiles(&isos), ACME.aid);
        let status = status.unwrap();
        assert_eq!(status.profile, Profile::IsoAdmin);
        assert_eq!(status.iso_profile, Some(1));
        assert_eq!(status.admin_algorithm, Some(Algorithm::Aes128));
        assert_eq!(status.pin_tries_left, Some(0));
        // PIV, GIDS, then the two ISO AIDs: nothing after the one that answered.
        assert_eq!(selects.len(), 4);
        assert_eq!(&selects[2][..], &SIM_AID_BYTES);
        assert_eq!(&selects[3][..], ACME.aid);
    }

    /// Without an ISO profile, a card that is neither PIV nor GIDS is unknown: no ISO SELECT is
    /// sent at all (fails if a default AID is still probed).
    #[test]
    fn no_iso_profile_probes_no_iso_aid() {
        let (selects, status) = run(ReadStatus::with_iso_profiles(&[]), ACME.aid);
        assert_eq!(status, Err(FlowError::UnknownCard));
        assert_eq!(selects.len(), 2);
        let (_, status) = run(
            ReadStatus::with_iso_profiles(&[crate::iso::tests::TEST_PROFILE]),
            ACME.aid,
        );
        assert_eq!(status, Err(FlowError::UnknownCard));
    }

    const SIM_AID_BYTES: [u8; 8] = [0xF0, 0x43, 0x55, 0x4E, 0x4C, 0x4F, 0x43, 0x4B];
}
