//! The CCID codec in both directions: bulk-OUT requests (what a device-side CCID would parse),
//! bulk-IN replies (what the host parses), interrupt messages, the protocol data structure and
//! the class descriptor. Never a panic; whatever parses encodes to bytes that parse the same;
//! a buffer one byte short is refused.
#![no_main]

use cardunlock_ccid::codec::{Header, Interrupt, ProtocolData, Request, Response};
use cardunlock_ccid::descriptor::ClassDescriptor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = vec![0u8; data.len() + 64];
    if let Ok(h) = Header::parse(data) {
        let again = Header::parse(&h.to_bytes()).expect("a header parses back");
        assert_eq!(again, h);
        let _ = h.message_len();
    }
    if let Ok(req) = Request::parse(data) {
        let n = req.encode(&mut buf).expect("a parsed request encodes");
        assert_eq!(
            Request::parse(&buf[..n]).expect("an encoded request parses"),
            req
        );
        assert!(req.encode(&mut buf[..n - 1]).is_err());
    }
    if let Ok(resp) = Response::parse(data) {
        let n = resp.encode(&mut buf).expect("a parsed reply encodes");
        assert_eq!(
            Response::parse(&buf[..n]).expect("an encoded reply parses"),
            resp
        );
        assert!(resp.encode(&mut buf[..n - 1]).is_err());
        let _ = format!("{resp:?}");
    }
    if let Ok(int) = Interrupt::parse(data) {
        let n = int.encode(&mut buf).expect("a parsed interrupt encodes");
        assert_eq!(
            Interrupt::parse(&buf[..n]).expect("an encoded interrupt parses"),
            int
        );
        if let Interrupt::SlotChange(c) = int {
            for slot in 0..=u8::try_from(c.slots()).unwrap_or(u8::MAX) {
                let _ = (c.present(slot), c.changed(slot));
            }
        }
    }
    if let Some((&protocol, rest)) = data.split_first() {
        if let Ok(p) = ProtocolData::parse(protocol, rest) {
            let n = p.encode(&mut buf).expect("parameters encode");
            assert_eq!(ProtocolData::parse(p.protocol(), &buf[..n]), Ok(p));
        }
    }
    if let Ok(d) = ClassDescriptor::parse(data) {
        let bytes = d.encode();
        assert_eq!(ClassDescriptor::parse(&bytes), Ok(d));
        let _ = (d.exchange_level(), d.max_message_len());
    }
    let _ = ClassDescriptor::find(data);
});
