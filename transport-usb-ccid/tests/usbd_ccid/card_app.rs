//! The card behind usbd-ccid: an `apdu-dispatch` App that hands each APDU to a
//! `cardunlock_sim::SimCard` and gives its answer back in apdu-dispatch's terms (data with
//! `Ok(())` for `90 00`, the status word as `Err(Status)` otherwise; apdu-dispatch appends the
//! status word and does `61 XX` response chaining itself).

use std::cell::RefCell;
use std::rc::Rc;

use apdu_dispatch::app::{CommandView, Interface, Result as AppResult, VecView};
use apdu_dispatch::iso7816::{Aid, Status};

/// The PIV application identifier (SP 800-73); apdu-dispatch selects the app when the AID in a
/// SELECT is a prefix of it at least 5 bytes long (the truncated `A0 00 00 03 08` as well).
const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

/// An apdu-dispatch App over a shared simulated card.
pub struct CardApp {
    /// The card; the test inspects it afterwards.
    pub card: Rc<RefCell<cardunlock_sim::SimCard>>,
    /// Instruction bytes of the APDUs that reached the card, in order (no data: PINs pass here).
    pub seen_ins: Vec<u8>,
}

impl CardApp {
    /// An app over `card`.
    pub fn new(card: Rc<RefCell<cardunlock_sim::SimCard>>) -> Self {
        Self {
            card,
            seen_ins: Vec::new(),
        }
    }

    fn run(&mut self, apdu: CommandView<'_>, reply: &mut VecView<u8>) -> AppResult {
        let mut bytes = encode(&apdu);
        let ins = bytes.get(1).copied().unwrap_or(0);
        self.seen_ins.push(ins);
        let mut answer = self.card.borrow_mut().transmit(&bytes);
        // The command may carry a PIN or a PUK.
        bytes.fill(0);
        // apdu-dispatch answers GET RESPONSE itself: collect a card's own `61 XX` here.
        while answer.len() >= 2 && answer[answer.len() - 2] == 0x61 {
            let xx = answer[answer.len() - 1];
            answer.truncate(answer.len() - 2);
            let more = self
                .card
                .borrow_mut()
                .transmit(&[0x00, 0xC0, 0x00, 0x00, xx]);
            answer.extend_from_slice(&more);
        }
        let n = answer.len();
        assert!(n >= 2, "the simulated card answered {n} bytes");
        let sw = u16::from_be_bytes([answer[n - 2], answer[n - 1]]);
        let result = if sw == 0x9000 {
            reply
                .extend_from_slice(&answer[..n - 2])
                .map_err(|_| Status::UnspecifiedCheckingError)
        } else {
            // apdu-dispatch cannot carry data together with an error status word: a warning with
            // data (62 XX / 63 XX with a body) would lose its body here. PIV answers none.
            assert_eq!(n, 2, "status {sw:04X} with data cannot pass apdu-dispatch");
            Err(Status::from(sw))
        };
        answer.fill(0);
        result
    }
}

/// Re-encodes a parsed command as a short APDU where it fits (the simulated card takes short
/// APDUs; apdu-dispatch marks every buffered command "extended" whatever it was on the wire).
fn encode(apdu: &CommandView<'_>) -> Vec<u8> {
    let data = apdu.data();
    let le = apdu.expected();
    let mut out = vec![
        apdu.class().into_inner(),
        u8::from(apdu.instruction()),
        apdu.p1,
        apdu.p2,
    ];
    if data.len() <= 255 && le <= 256 {
        if !data.is_empty() {
            out.push(data.len() as u8);
            out.extend_from_slice(data);
        }
        if le > 0 {
            out.push((le % 256) as u8);
        }
    } else {
        out.push(0);
        if !data.is_empty() {
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
        }
        if le > 0 {
            out.extend_from_slice(&((le % 65536) as u16).to_be_bytes());
        }
    }
    out
}

impl apdu_dispatch::iso7816::App for CardApp {
    fn aid(&self) -> Aid {
        Aid::new_truncatable(&PIV_AID, 5)
    }
}

impl apdu_dispatch::App for CardApp {
    fn select(
        &mut self,
        _interface: Interface,
        apdu: CommandView<'_>,
        reply: &mut VecView<u8>,
    ) -> AppResult {
        self.run(apdu, reply)
    }

    fn deselect(&mut self) {}

    fn call(
        &mut self,
        _interface: Interface,
        apdu: CommandView<'_>,
        reply: &mut VecView<u8>,
    ) -> AppResult {
        self.run(apdu, reply)
    }
}
