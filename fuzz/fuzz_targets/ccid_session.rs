//! The CCID session against an arbitrary reader: a scripted reader whose every reply is the next
//! frame of the fuzz input (first byte: bit 0 copies the command's `bSlot`/`bSeq` in, bit 1 fixes
//! `dwLength`; then the bytes, valid or not), behind a reader descriptor at TPDU, short-APDU or
//! extended-APDU level, running a whole PIV unblock through the core's driver, with virtual time
//! (a reader that stops answering times out).
//!
//! Never a panic, never a hang; RESET RETRY COUNTER reaches the reader at most once more than
//! the busy resends allow (a reader's "slot busy" says the command did not run).
#![no_main]

use cardunlock_ccid::codec::{msg_type, Request, RequestKind};
use cardunlock_ccid::descriptor::{features, ClassDescriptor, ExchangeLevel};
use cardunlock_ccid::session::{Config, NoControl, Session};
use cardunlock_ccid_sim::{ScriptPipe, ScriptReply, TestClock};
use cardunlock_core::driver::Driver;
use cardunlock_core::policy::PinPolicy;
use cardunlock_core::unlock;
use cardunlock_fuzz::{Frame, Frames};
use embassy_futures::block_on;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [level, feat, max, rest @ ..] = data else {
        return;
    };
    let level = match level % 3 {
        0 => ExchangeLevel::Tpdu,
        1 => ExchangeLevel::ShortApdu,
        _ => ExchangeLevel::ShortExtendedApdu,
    };
    let mut desc = ClassDescriptor::TYPICAL;
    desc.features = [
        0,
        features::AUTO_VOLTAGE,
        features::AUTO_PARAMETERS_FROM_ATR | features::AUTO_VOLTAGE,
        features::AUTO_PARAMETERS_FROM_ATR
            | features::AUTO_VOLTAGE
            | features::AUTO_NEGOTIATION
            | features::AUTO_PPS
            | features::AUTO_IFSD,
    ][usize::from(feat & 3)];
    let desc = desc.with_level(level);
    let mut desc = desc;
    desc.max_message_length = [271, 64, 20, 65_544][usize::from(max & 3)];
    let script = Frames::new(rest).map(|f| match f {
        Frame::Fail => ScriptReply::default(),
        Frame::Bytes(b) => match b.split_first() {
            Some((&flags, bytes)) => ScriptReply {
                bytes: bytes.to_vec(),
                answer: flags & 1 != 0,
                fix_length: flags & 2 != 0,
            },
            None => ScriptReply::default(),
        },
    });
    let pipe = ScriptPipe::new(script.collect::<Vec<_>>());
    let Ok(session) = Session::<_, _, _>::with_config(
        pipe,
        TestClock::new(),
        NoControl,
        &desc,
        0,
        Config::DEFAULT,
    ) else {
        return;
    };
    let mut driver = Driver::new(session);
    let (puk, pin) =
        unlock::piv_input(&PinPolicy::PIV, b"12345678", b"840259", b"840259").expect("input");
    let result = block_on(unlock::piv_unblock(&mut driver, &puk, &pin));
    let _ = format!("{result:?}");
    let (pipe, _, _) = driver.into_inner().into_parts();
    // At APDU level and for T=0 TPDUs the instruction is the second byte of an XfrBlock; T=1
    // blocks have their PCB there, never 2C (T=1 resends an I-block by design, the card
    // drops the copy by its N(S)).
    let rrc = pipe
        .written
        .iter()
        .filter(|m| {
            m.first() == Some(&msg_type::XFR_BLOCK)
                && matches!(
                    Request::parse(m),
                    Ok(Request { kind: RequestKind::XfrBlock { data, .. }, .. })
                        if data.get(1) == Some(&0x2C)
                )
        })
        .count();
    assert!(
        rrc <= 1 + usize::from(Config::DEFAULT.busy_retries),
        "RESET RETRY COUNTER sent {rrc} times"
    );
});
