//! Command and response APDU parsing: never a panic; a parsed command encodes back to a command
//! that parses to the same thing; a parsed response keeps the card's status word; redacted
//! traces of any command never fail.
#![no_main]

use cardunlock_core::apdu::{Command, RedactedCommand, Response};
use cardunlock_core::Status;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Response::parse(data) {
        assert_eq!(r.data.len() + 2, data.len());
        let sw = u16::from_be_bytes([data[data.len() - 2], data[data.len() - 1]]);
        assert_eq!(r.status, Status::from_u16(sw));
        assert_eq!(Status::from_u16(r.status.to_u16()), r.status);
    } else {
        assert!(data.len() < 2);
    }

    if let Ok(cmd) = Command::parse(data) {
        let mut buf = vec![0u8; data.len() + 16];
        let n = cmd.encode(&mut buf).expect("a parsed command encodes");
        let again = Command::parse(&buf[..n]).expect("an encoded command parses");
        assert_eq!(again, cmd);
        // A buffer one byte short is refused, never overrun.
        if n > 0 {
            assert!(cmd.encode(&mut buf[..n - 1]).is_err());
        }
    }
    let _ = format!("{}", RedactedCommand(data));
});
