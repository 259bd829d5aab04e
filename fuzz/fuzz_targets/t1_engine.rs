//! The T=1 engine fed arbitrary blocks: a card whose every reply block is the next frame of the
//! fuzz input (or a mute / failed exchange), under IFS negotiation and one APDU exchange with
//! random IFSC, EDC and command length. Never a panic, never a loop: the engine ends with a
//! response that fits the buffer or a typed error, and every block it sends is a valid block.
#![no_main]

use cardunlock_ccid::atr::Edc;
use cardunlock_ccid::t1::{Block, BlockIo, ExchangeError, T1Params, T1};
use cardunlock_fuzz::{Frame, Frames};
use embassy_futures::block_on;
use libfuzzer_sys::fuzz_target;

struct Card<'a> {
    frames: Frames<'a>,
    edc: Edc,
    exchanges: usize,
}

impl BlockIo for Card<'_> {
    type Error = ();

    async fn exchange(
        &mut self,
        block: &[u8],
        reply: &mut [u8],
        bwt_multiplier: u8,
    ) -> Result<usize, ExchangeError<()>> {
        self.exchanges += 1;
        assert!(bwt_multiplier >= 1);
        assert!(
            Block::parse(block, self.edc).is_ok(),
            "sent an invalid block {block:02X?}"
        );
        match self.frames.next() {
            None => Err(ExchangeError::Io(())),
            Some(Frame::Fail) => Err(ExchangeError::Mute),
            Some(Frame::Bytes(b)) => {
                let n = b.len().min(reply.len());
                reply[..n].copy_from_slice(&b[..n]);
                Ok(n)
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, ifsc, cmd_len, rest @ ..] = data else {
        return;
    };
    let edc = if flags & 1 != 0 { Edc::Crc } else { Edc::Lrc };
    let params = T1Params {
        ifsc: (*ifsc).clamp(1, 254),
        ifsd: 254,
        edc,
        nad: 0,
    };
    let mut t1 = T1::new(params);
    let mut card = Card {
        frames: Frames::new(rest),
        edc,
        exchanges: 0,
    };
    if flags & 2 != 0 {
        let _ = block_on(t1.negotiate_ifsd(&mut card));
    }
    // A RESET RETRY COUNTER-sized command, or a long one that needs chaining.
    let mut apdu = vec![0x00, 0x2C, 0x00, 0x80];
    let n = usize::from(*cmd_len) * if flags & 4 != 0 { 4 } else { 1 };
    if n > 0 {
        apdu.push(n.min(255) as u8);
        apdu.extend(vec![0x31; n]);
    }
    let mut response = [0u8; 512];
    let max_response = usize::from(flags >> 4) * 32 + 2;
    if let Ok(len) = block_on(t1.transceive(&mut card, &apdu, &mut response[..max_response])) {
        assert!(len <= max_response);
    }
    // Every exchange consumed a frame or ended the run: the engine cannot spin.
    assert!(card.exchanges <= rest.len() + 2 * 8 + 2);
});
