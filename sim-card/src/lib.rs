//! `cardunlock-sim`: a simulated smart card that answers APDUs byte for byte like real cards.
//!
//! Three profiles ([`Profile`]): PIV (SP 800-73-4 with the YubiKey extensions that
//! yubico-piv-tool and OpenSC use), GIDS (admin-key unblock as in OpenSC's `card-gids.c`) and an
//! ISO 7816-4 admin challenge-response card (Windows-minidriver style). It is the default card of
//! the demo, the tests and the benchmarks, and it is written independently of `cardunlock-core`
//! (its own APDU parser, TLV reader and crypto glue) so that the two check each other.
//!
//! ```
//! use cardunlock_sim::{Config, PivConfig, SimCard};
//!
//! let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
//! // SELECT with the truncated 5-byte AID, as yubico-piv-tool does.
//! let r = card.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08]);
//! assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
//! // VERIFY without data: 3 tries left.
//! assert_eq!(card.transmit(&[0x00, 0x20, 0x00, 0x80]), [0x63, 0xC3]);
//! ```
//!
//! # Transport behaviour (all profiles)
//!
//! * Commands are parsed as ISO 7816-3 cases 1-4, short or extended length. Length fields that
//!   do not match the APDU length: `67 00`. CLA other than `00` / `10`: `6E 00`. An INS the
//!   profile does not know: `6D 00` (whether or not an application is selected).
//! * **Nothing selected** (after power-up or [`SimCard::reset`]): every known command other than
//!   SELECT and GET RESPONSE answers `69 85` (conditions of use not satisfied). A SELECT of an
//!   unknown AID answers `6A 82` and leaves the current selection as it was.
//! * Command chaining: CLA `10` parts are buffered and answered `90 00`; the final CLA `00` part
//!   of the same INS executes the concatenated data (P1, P2 and Le of the final part are used).
//!   A different INS mid-chain: `68 83`, chain dropped. A chain longer than 65536 bytes: `6A 84`,
//!   chain dropped.
//! * Responses: data is returned even when Le is absent. Data above
//!   [`Options::max_response_data`] comes back as the first part and `61 XX` (XX = bytes left,
//!   `00` for 256 or more); GET RESPONSE `00 C0 00 00 Le` returns the next min(Le, max) bytes.
//!   GET RESPONSE with nothing pending: `69 85`; with P1-P2 other than `00 00`: `6A 86`. Any
//!   other command drops pending response data. With [`Options::strict_le`], a short non-zero
//!   Le smaller than the data (of at most 256 bytes) answers `6C XX` and no data.
//! * Retry counters: a wrong PIN / PUK / admin key decrements the counter and answers `63 CX`;
//!   the attempt that uses the last try answers `69 83` (so `63 C0` is never sent), and so does
//!   every later attempt. A correct value resets the counter to its maximum. Counters and keys
//!   persist across [`SimCard::reset`]; selection, security status, pending challenges, chains and
//!   pending response data do not.
//! * A pending challenge (PIV witness/challenge, GIDS randoms, ISO challenge) is single use and is
//!   dropped by any other command received in between — SELECT, a malformed APDU or a command
//!   chain part of another INS included — except GET RESPONSE, which only continues the previous
//!   response.
//!
//! # Profile specifics and the choices made
//!
//! * **PIV**: SELECT accepts any prefix of at least 5 bytes of `A0 00 00 03 08 00 00 10 00 01 00`
//!   (the 5-byte truncated AID, the 9-byte PIX form and the 11-byte form with version); P2 `0C`
//!   selects without returning the template. VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER
//!   check the format of *every* PIN/PUK field (6-8 bytes then `FF` padding only) before any
//!   comparison, so a malformed request answers `6A 80` and never costs a try. PIN complexity
//!   (when enabled) applies to the new PIN of CHANGE REFERENCE DATA (`80`) and RESET RETRY
//!   COUNTER: `69 85`. A successful PIN change leaves the PIN verified; a successful RESET RETRY
//!   COUNTER leaves it unverified. Management-key authentication: wrong response `69 82`, no
//!   pending challenge `69 85`, algorithm mismatch or bad template `6A 80`, key reference other
//!   than `9B` `6A 86`; a failed attempt clears the authenticated status. GET METADATA for a
//!   reference other than `80`/`81`/`9B`: `6A 88`. GET VERSION answers `05 07 01`, or `04 03 07`
//!   when `supports_metadata` is false (a card without F7 cannot be a 5.7 YubiKey).
//!   The discovery object (`5C 01 7E`) is returned as the bare `7E` TLV, as SP 800-73-4 and
//!   OpenSC's parser expect (no `53` wrapper).
//! * **GIDS**: SELECT accepts 9 to 11 byte prefixes of `A0 00 00 03 97 42 54 46 59 02 01` and
//!   answers `61 0D 4F 0B <AID>`. VERIFY P2 `82` without data de-authenticates (OpenSC's logout).
//!   PINs are 4-15 raw bytes: VERIFY or RESET RETRY COUNTER with another length answers `6A 80`
//!   without costing a try. GET DATA of any other data object: `6A 82`. The admin status lasts
//!   until SELECT or reset. A read-only minidriver file system, as a card freshly initialised by
//!   the Windows minidriver (or `gids-tool -X`) holds it, so that OpenSC's PKCS#15 emulation
//!   binds: GET DATA `00 CB A0 00 04 5C 02 DF 1F` returns the masterfile (version `01`, then the
//!   `mscp` directory, `cardid`, `cardapps`, `cardcf` and `mscp/cmapfile` records, 28 bytes each),
//!   `A0 12 / DF 20` the card serial (cardid), `A0 10 / DF 21` `mscp` (cardapps), `A0 10 / DF 22`
//!   six zero bytes (cardcf), `A0 10 / DF 23` an empty container map (no keys). No PUT DATA.
//! * **ISO admin**: the sim's application AID is [`ISO_ADMIN_AID`]; SELECT of the MF (`3F 00`, or
//!   P1 `00` without data) selects the same application. PINs are 4-16 raw bytes. EXTERNAL
//!   AUTHENTICATE with a response of the wrong length answers `6A 80` (challenge consumed, no try
//!   burnt). The admin status is consumed by one successful RESET RETRY COUNTER only (a refused
//!   new PIN keeps it). GET DATA `00 CA 01 00` returns the 16-byte card serial (the identity the
//!   unlock server diversifies keys from); other P1-P2: `6A 88`.
//! * A configured key whose length does not fit its algorithm makes authentication answer `6F 00`.
//!
//! Secrets never appear in `Debug` output and are zeroized on drop.

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod apdu;
mod applet;
mod config;
mod crypto;
mod gids;
mod iso;
mod pin;
mod piv;
pub mod sw;
mod test_rng;
mod tlv;
pub mod transport;
mod virtual_card;

use core::fmt;

use rand::rngs::StdRng;
use rand::SeedableRng;
use zeroize::{Zeroize, Zeroizing};

use apdu::{with_sw, Command, Le, Reply};
use applet::{Access, Applet};
pub use config::{
    Algorithm, Config, GidsConfig, IsoConfig, Options, PivConfig, Profile, DEFAULT_ADMIN_CARD_PIN,
    DEFAULT_MGMT_KEY, DEFAULT_PIV_PIN, DEFAULT_PIV_PUK,
};
pub use gids::GIDS_AID;
pub use iso::{ISO_ADMIN_AID, ISO_PROFILE};
pub use piv::PIV_AID;
pub use test_rng::TestRng;
pub use transport::SharedCard;
pub use virtual_card::VirtualCard;

/// A YubiKey 5 ATR (T=1, historical bytes "YubiKey").
pub const ATR_PIV: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];
/// ATR of the GIDS profile (T=1, historical bytes ending "SimGIDS").
pub const ATR_GIDS: [u8; 18] = [
    0x3B, 0x8D, 0x80, 0x01, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x53, 0x69, 0x6D, 0x47, 0x49, 0x44,
    0x53, 0xC7,
];
/// ATR of the ISO admin profile (T=1, historical bytes ending "SimAdmn").
pub const ATR_ISO_ADMIN: [u8; 18] = [
    0x3B, 0x8D, 0x80, 0x01, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x53, 0x69, 0x6D, 0x41, 0x64, 0x6D,
    0x6E, 0xF8,
];

/// Longest command chain the card buffers.
const MAX_CHAIN: usize = 65_536;
const INS_GET_RESPONSE: u8 = 0xC0;

enum App {
    Piv(piv::Piv),
    Gids(gids::Gids),
    Iso(iso::Iso),
}

impl App {
    fn applet(&mut self) -> &mut dyn Applet {
        match self {
            App::Piv(a) => a,
            App::Gids(a) => a,
            App::Iso(a) => a,
        }
    }

    fn access(&self) -> Access {
        match self {
            App::Piv(a) => a.access(),
            App::Gids(a) => a.access(),
            App::Iso(a) => a.access(),
        }
    }

    fn process(&mut self, cmd: &Command<'_>, rng: &mut StdRng) -> Reply {
        self.applet().process(cmd, rng)
    }

    /// A command arrived: drop pending challenges unless it continues them. `None` = unparsable.
    fn note_command(&mut self, ins: Option<u8>) {
        // INS 00 is never an authentication command.
        self.applet().note_command(ins.unwrap_or(0x00));
    }

    fn reset_session(&mut self) {
        self.applet().reset_session();
    }
}

struct Chain {
    ins: u8,
    data: Zeroizing<Vec<u8>>,
}

/// The simulated card. Feed it command APDUs with [`SimCard::transmit`].
pub struct SimCard {
    app: App,
    options: Options,
    rng: StdRng,
    chain: Option<Chain>,
    pending_response: Zeroizing<Vec<u8>>,
    pending_sw: u16,
    commands_seen: usize,
}

impl SimCard {
    /// A card with the default [`Options`].
    pub fn new(config: Config) -> Self {
        Self::with_options(config, Options::default())
    }

    /// A card with the given transport options.
    pub fn with_options(config: Config, options: Options) -> Self {
        let (app, seed) = match config {
            Config::Piv(c) => {
                let seed = c.seed;
                (App::Piv(piv::Piv::new(c)), seed)
            }
            Config::Gids(c) => {
                let seed = c.seed;
                (App::Gids(gids::Gids::new(c)), seed)
            }
            Config::Iso(c) => {
                let seed = c.seed;
                (App::Iso(iso::Iso::new(c)), seed)
            }
        };
        SimCard {
            app,
            options,
            rng: StdRng::seed_from_u64(seed),
            chain: None,
            pending_response: Zeroizing::new(Vec::new()),
            pending_sw: sw::OK,
            commands_seen: 0,
        }
    }

    /// Response data followed by SW1 SW2, always >= 2 bytes. Never panics.
    pub fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.commands_seen = self.commands_seen.saturating_add(1);
        let Some(cmd) = Command::parse(apdu) else {
            self.interrupt(None);
            return with_sw(Vec::new(), sw::WRONG_LENGTH);
        };
        if cmd.cla & !0x10 != 0 {
            self.interrupt(Some(cmd.ins));
            return with_sw(Vec::new(), sw::CLA_NOT_SUPPORTED);
        }
        if cmd.ins == INS_GET_RESPONSE && cmd.cla == 0x00 && self.chain.is_none() {
            return self.get_response(&cmd);
        }
        self.pending_response.zeroize();
        self.app.note_command(Some(cmd.ins));

        let chained = match self.chain.take() {
            Some(chain) if chain.ins != cmd.ins => {
                return with_sw(Vec::new(), sw::LAST_COMMAND_EXPECTED)
            }
            Some(chain) => Some(chain.data),
            None => None,
        };
        let mut buffer = chained.unwrap_or_default();
        if buffer.len().saturating_add(cmd.data.len()) > MAX_CHAIN {
            return with_sw(Vec::new(), sw::NOT_ENOUGH_MEMORY);
        }
        if cmd.cla & 0x10 != 0 {
            buffer.extend_from_slice(cmd.data);
            self.chain = Some(Chain {
                ins: cmd.ins,
                data: buffer,
            });
            return with_sw(Vec::new(), sw::OK);
        }
        let reply = if buffer.is_empty() {
            self.app.process(&cmd, &mut self.rng)
        } else {
            buffer.extend_from_slice(cmd.data);
            let full = Command {
                data: &buffer,
                ..cmd
            };
            self.app.process(&full, &mut self.rng)
        };
        self.respond(reply, cmd.le)
    }

    /// Power cycle / reset: persistent state (PINs, counters, keys) kept; selection, security
    /// status (PIN verified, admin authenticated), pending challenges and chaining state dropped.
    pub fn reset(&mut self) {
        self.app.reset_session();
        self.chain = None;
        self.pending_response.zeroize();
    }

    /// The card's ATR: [`ATR_PIV`], [`ATR_GIDS`] or [`ATR_ISO_ADMIN`].
    pub fn atr(&self) -> &'static [u8] {
        match self.app {
            App::Piv(_) => &ATR_PIV,
            App::Gids(_) => &ATR_GIDS,
            App::Iso(_) => &ATR_ISO_ADMIN,
        }
    }

    /// The profile this card simulates.
    pub fn profile(&self) -> Profile {
        match self.app {
            App::Piv(_) => Profile::Piv,
            App::Gids(_) => Profile::Gids,
            App::Iso(_) => Profile::IsoAdmin,
        }
    }

    /// The transport options in force.
    pub fn options(&self) -> Options {
        self.options
    }

    /// PIN tries left (inspection for tests; not reachable over APDUs).
    pub fn pin_tries_left(&self) -> u8 {
        match &self.app {
            App::Piv(a) => a.cfg.pin_tries_left,
            App::Gids(a) => a.cfg.pin_tries_left,
            App::Iso(a) => a.cfg.pin_tries_left,
        }
    }

    /// PUK tries left; `None` for profiles without a PUK (GIDS, ISO admin).
    pub fn puk_tries_left(&self) -> Option<u8> {
        match &self.app {
            App::Piv(a) => Some(a.cfg.puk_tries_left),
            _ => None,
        }
    }

    /// Admin-key tries left; `None` for PIV (the management key has no retry counter).
    pub fn admin_tries_left(&self) -> Option<u8> {
        match &self.app {
            App::Piv(_) => None,
            App::Gids(a) => Some(a.cfg.admin_tries_left),
            App::Iso(a) => Some(a.cfg.admin_tries_left),
        }
    }

    /// Whether the stored PIN is `pin` (unpadded; constant-time compare).
    pub fn pin_is(&self, pin: &[u8]) -> bool {
        let stored = match &self.app {
            App::Piv(a) => &a.cfg.pin,
            App::Gids(a) => &a.cfg.pin,
            App::Iso(a) => &a.cfg.pin,
        };
        crypto::ct_eq(stored, pin)
    }

    /// Whether the stored PUK is `puk` (unpadded); always false without a PUK.
    pub fn puk_is(&self, puk: &[u8]) -> bool {
        match &self.app {
            App::Piv(a) => crypto::ct_eq(&a.cfg.puk, puk),
            _ => false,
        }
    }

    /// PIV: the Card Authentication public key (9E) now on the card, as an uncompressed SEC1
    /// point; `None` for an empty slot or another profile.
    pub fn card_auth_public_key(&self) -> Option<[u8; 65]> {
        match &self.app {
            App::Piv(a) => a.cfg.card_auth_public_key(),
            _ => None,
        }
    }

    /// Whether the card's management key (PIV 9B) or admin key (GIDS, ISO) is `key` with
    /// algorithm `alg` (GIDS admin keys are always 3DES).
    pub fn mgmt_key_is(&self, alg: Algorithm, key: &[u8]) -> bool {
        match &self.app {
            App::Piv(a) => a.cfg.mgmt_algorithm == alg && crypto::ct_eq(&a.cfg.mgmt_key, key),
            App::Gids(a) => alg == Algorithm::TripleDes && crypto::ct_eq(&a.cfg.admin_key, key),
            App::Iso(a) => a.cfg.admin_algorithm == alg && crypto::ct_eq(&a.cfg.admin_key, key),
        }
    }

    /// Whether an application is selected.
    pub fn is_selected(&self) -> bool {
        self.app.access().selected
    }

    /// Whether the PIN is verified in the current session.
    pub fn pin_verified(&self) -> bool {
        self.app.access().pin_verified
    }

    /// Whether the management key (PIV) or admin key (GIDS, ISO) is authenticated in the current
    /// session.
    pub fn admin_authenticated(&self) -> bool {
        self.app.access().admin_authenticated
    }

    /// Number of APDUs passed to [`SimCard::transmit`] (malformed ones, chain parts and GET
    /// RESPONSE included), across resets.
    pub fn commands_seen(&self) -> usize {
        self.commands_seen
    }

    /// Drop everything transient after an unusable command.
    fn interrupt(&mut self, ins: Option<u8>) {
        self.pending_response.zeroize();
        self.chain = None;
        self.app.note_command(ins);
    }

    fn get_response(&mut self, cmd: &Command<'_>) -> Vec<u8> {
        if cmd.p1p2() != 0 {
            return with_sw(Vec::new(), sw::WRONG_P1P2);
        }
        if self.pending_response.is_empty() {
            return with_sw(Vec::new(), sw::CONDITIONS_NOT_SATISFIED);
        }
        let want = cmd.le.map_or(256, Le::ne);
        let n = want
            .min(self.options.max_response_data.max(1))
            .min(self.pending_response.len());
        let part: Vec<u8> = self.pending_response.drain(..n).collect();
        let sw = self.more_or(self.pending_sw);
        with_sw(part, sw)
    }

    /// `61 XX` when response data is still pending, else `sw`.
    fn more_or(&self, sw: u16) -> u16 {
        match self.pending_response.len() {
            0 => sw,
            n => sw::MORE_DATA | u16::from(u8::try_from(n).unwrap_or(0)),
        }
    }

    fn respond(&mut self, reply: Reply, le: Option<Le>) -> Vec<u8> {
        let Reply { data, sw } = reply;
        if data.is_empty() {
            return with_sw(Vec::new(), sw);
        }
        if let (true, Some(Le::Short(n))) = (self.options.strict_le, le) {
            if n != 0 && usize::from(n) < data.len() && data.len() <= 256 {
                let exact = u8::try_from(data.len()).unwrap_or(0);
                return with_sw(Vec::new(), sw::WRONG_LE | u16::from(exact));
            }
        }
        let max = self.options.max_response_data.max(1);
        if data.len() <= max {
            return with_sw(data.to_vec(), sw);
        }
        let (first, rest) = data.split_at(max);
        self.pending_response.extend_from_slice(rest);
        self.pending_sw = sw;
        let sw = self.more_or(sw);
        with_sw(first.to_vec(), sw)
    }
}

impl fmt::Debug for SimCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SimCard");
        match &self.app {
            App::Piv(a) => d.field("config", &a.cfg),
            App::Gids(a) => d.field("config", &a.cfg),
            App::Iso(a) => d.field("config", &a.cfg),
        };
        d.field("options", &self.options)
            .field("selected", &self.is_selected())
            .field("pin_verified", &self.pin_verified())
            .field("admin_authenticated", &self.admin_authenticated())
            .field("chain_pending", &self.chain.is_some())
            .field("response_bytes_pending", &self.pending_response.len())
            .field("commands_seen", &self.commands_seen)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_data_byte_is_00_from_256_bytes_on() {
        let mut card = SimCard::new(Config::Piv(PivConfig::factory()));
        card.pending_response.extend_from_slice(&[0xAB; 300]);
        assert_eq!(card.more_or(sw::OK), 0x6100);
        let r = card.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00]);
        assert_eq!(r.len(), 258);
        assert_eq!(&r[256..], &[0x61, 44]);
        let r = card.transmit(&[0x00, 0xC0, 0x00, 0x00, 44]);
        assert_eq!(&r[44..], &[0x90, 0x00]);
        card.pending_response.extend_from_slice(&[0xAB; 256]);
        assert_eq!(card.more_or(sw::OK), 0x6100);
        card.pending_response.truncate(255);
        assert_eq!(card.more_or(sw::OK), 0x61FF);
    }

    #[test]
    fn long_response_is_chunked_with_61_00() {
        let mut card = SimCard::with_options(
            Config::Piv(PivConfig::factory()),
            Options {
                max_response_data: 10,
                strict_le: true,
            },
        );
        let r = card.respond(Reply::ok(vec![1; 400]), Some(Le::Short(5)));
        // Longer than 256: 6C cannot express it, chunking applies.
        assert_eq!(r.len(), 12);
        assert_eq!(&r[10..], &[0x61, 0x00]);
        assert_eq!(card.pending_response.len(), 390);
    }
}
