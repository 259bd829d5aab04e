//! ISO status words and the ISO admin card's GET CHALLENGE answer.
//!
//! The status word is a total type: every `u16` maps to a variant that maps back to itself, and
//! its helpers never panic. The ISO unblock flow, fed any answer to GET CHALLENGE, either asks
//! the responder to encrypt exactly the challenge the card sent (one cipher block, `90 00`) or
//! stops with an error, and never asks for anything else.
#![no_main]

use cardunlock_core::apdu::Response;
use cardunlock_core::crypto::Algorithm;
use cardunlock_core::flow::{Action, AdminRequest, Event, Flow, IsoUnblock};
use cardunlock_core::iso::IsoProfile;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::secret::{NewPin, PinContext};
use cardunlock_core::Status;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, answer)) = data.split_first() else {
        return;
    };
    if let [a, b, ..] = answer {
        let sw = u16::from_be_bytes([*a, *b]);
        let s = Status::from_u16(sw);
        assert_eq!(Status::from_u16(s.to_u16()), s);
        assert_eq!(Status::from_bytes(*a, *b), s);
        if let Some(n) = s.tries_left() {
            assert!(n <= 15);
        }
        let _ = (s.is_success(), s.is_unsupported(), format!("{s} {s:?}"));
    }

    let algorithm = match sel & 3 {
        0 => Algorithm::TripleDes,
        1 => Algorithm::Aes128,
        2 => Algorithm::Aes192,
        _ => Algorithm::Aes256,
    };
    let profile = IsoProfile {
        algorithm,
        ..cardunlock_sim::ISO_PROFILE
    };
    let pin =
        NewPin::confirmed(&PinPolicy::GIDS, b"Xk9w2", b"Xk9w2", PinContext::NONE).expect("policy");
    let mut flow = IsoUnblock::new(profile, &pin);
    let mut buf = [0u8; 512];
    assert!(matches!(flow.action(&mut buf), Ok(Action::Send(c)) if c.ins == 0xA4));
    let selected = Response::parse(&[0x90, 0x00]).expect("90 00");
    flow.handle(Event::Response(selected))
        .expect("SELECT accepted");
    assert!(matches!(flow.action(&mut buf), Ok(Action::Send(c)) if c.ins == 0x84));
    let Ok(resp) = Response::parse(answer) else {
        return;
    };
    match flow.handle(Event::Response(resp)) {
        Ok(()) => {
            assert!(resp.status.is_success());
            assert_eq!(resp.data.len(), algorithm.block_len());
            assert_eq!(flow.challenge(), Some(resp.data));
            match flow.action(&mut buf) {
                Ok(Action::Ask(AdminRequest::Encrypt {
                    algorithm: a,
                    block,
                })) => {
                    assert_eq!(a, algorithm);
                    assert_eq!(block, resp.data);
                }
                other => panic!("after the challenge the flow asked for {other:?}"),
            }
        }
        Err(_) => assert_eq!(flow.challenge(), None),
    }
});
