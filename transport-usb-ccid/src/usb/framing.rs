//! Message boundaries in the bulk IN stream.
//!
//! On USB a CCID message ends with a short packet (or a zero-length one): a bulk IN transfer that
//! completes short ends the message in progress. Bytes past the message's `dwLength` in such a
//! transfer are not part of any message. QEMU's reader sends them: its reply to GetParameters
//! says `dwLength` 0 and carries 7 bytes of parameters anyway. A byte pipe would hand them to the
//! session as the start of the next reply, so the pipe drops them here.

/// Tracks where the current CCID message ends in the bulk IN stream.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Framer {
    /// Bytes of the current message still to come; 0 at a message boundary.
    left: usize,
    /// Trailing bytes dropped so far.
    dropped: u64,
}

/// Length of a CCID message header.
const HEADER: usize = 10;

impl Framer {
    /// Takes the bytes of one completed IN transfer (`short`: it ended with a short packet) and
    /// returns how many leading bytes belong to messages; the rest is dropped.
    pub(crate) fn accept(&mut self, data: &[u8], short: bool) -> usize {
        let mut pos = 0;
        let keep = loop {
            let rest = data.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                break data.len();
            }
            if self.left == 0 {
                // A message starts here; without a whole header there is nothing to go by.
                let Some(h) = rest.get(..HEADER) else {
                    break data.len();
                };
                let dw = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
                self.left = HEADER.saturating_add(usize::try_from(dw).unwrap_or(usize::MAX));
            }
            let take = self.left.min(rest.len());
            self.left -= take;
            pos += take;
            if self.left == 0 && pos < data.len() && short {
                self.dropped = self
                    .dropped
                    .saturating_add(u64::try_from(data.len() - pos).unwrap_or(u64::MAX));
                break pos;
            }
        };
        if short {
            // A short packet ends the message, complete or not: the next transfer starts anew.
            self.left = 0;
        }
        keep
    }

    /// Forgets the message in progress (after a halt was cleared).
    pub(crate) fn reset(&mut self) {
        self.left = 0;
    }

    /// Trailing bytes dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use proptest::prelude::*;

    #[test]
    fn qemus_get_parameters_reply_loses_its_stray_bytes() {
        // RDR_to_PC_Parameters, dwLength 0, slot 0, seq 3, status 0, error 0, protocol 0, then
        // the 7 T=0 parameter bytes QEMU sends anyway.
        let reply = hex!("82 00000000 00 03 00 00 00  11 00 00 0a 00 00 00");
        let mut f = Framer::default();
        assert_eq!(f.accept(&reply, true), 10);
        assert_eq!(f.dropped(), 7);
        // The next reply is whole.
        let status = hex!("81 00000000 00 04 00 00 00");
        assert_eq!(f.accept(&status, true), 10);
    }

    #[test]
    fn a_message_over_several_transfers_is_kept_whole() {
        let mut msg = std::vec![0x80, 90, 0, 0, 0, 0, 1, 0, 0, 0];
        msg.extend(std::iter::repeat_n(0xAB, 90));
        let mut f = Framer::default();
        assert_eq!(f.accept(&msg[..64], false), 64);
        assert_eq!(f.accept(&msg[64..], true), 36);
        assert_eq!(f.dropped(), 0);
    }

    #[test]
    fn a_message_of_a_packet_multiple_then_a_zlp() {
        let mut msg = std::vec![0x80, 54, 0, 0, 0, 0, 1, 0, 0, 0];
        msg.extend(std::iter::repeat_n(0x11, 54));
        let mut f = Framer::default();
        assert_eq!(f.accept(&msg, false), 64);
        assert_eq!(f.accept(&[], true), 0);
        assert_eq!(f.accept(&msg[..10], true), 10);
    }

    #[test]
    fn two_messages_in_one_full_transfer_are_both_kept() {
        let a = hex!("81 00000000 00 01 00 00 00");
        let b = hex!("80 02000000 00 02 00 00 00 90 00");
        let mut both = std::vec::Vec::new();
        both.extend_from_slice(&a);
        both.extend_from_slice(&b);
        let mut f = Framer::default();
        assert_eq!(f.accept(&both, false), both.len());
    }

    #[test]
    fn a_truncated_message_does_not_swallow_the_next_one() {
        let mut f = Framer::default();
        // Announces 100 bytes, the transfer ends after 20.
        let head = hex!("80 64000000 00 01 00 00 00 01 02 03 04 05 06 07 08 09 0a");
        assert_eq!(f.accept(&head, true), 20);
        let next = hex!("81 00000000 00 02 00 00 00 ff ff");
        assert_eq!(f.accept(&next, true), 10);
    }

    proptest! {
        #[test]
        fn never_panics_and_never_keeps_more_than_given(
            transfers in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..200), any::<bool>()), 0..8),
        ) {
            let mut f = Framer::default();
            for (data, short) in transfers {
                let keep = f.accept(&data, short);
                prop_assert!(keep <= data.len());
            }
        }
    }
}
