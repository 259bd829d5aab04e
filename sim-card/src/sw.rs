//! The status words the simulated card answers (ISO/IEC 7816-4 section 5.6).

/// `90 00`: success.
pub const OK: u16 = 0x9000;
/// `61 XX`: more response data available (the low byte is added when used).
pub const MORE_DATA: u16 = 0x6100;
/// `63 CX`: verification failed, X tries left (the low nibble is added when used).
pub const TRIES_LEFT: u16 = 0x63C0;
/// `67 00`: wrong length (malformed Lc/Le, or an Le the command cannot honour).
pub const WRONG_LENGTH: u16 = 0x6700;
/// `68 83`: last command of the chain expected (a different INS arrived mid-chain).
pub const LAST_COMMAND_EXPECTED: u16 = 0x6883;
/// `69 82`: security status not satisfied (wrong management-key response, admin not
/// authenticated).
pub const SECURITY_NOT_SATISFIED: u16 = 0x6982;
/// `69 83`: authentication method blocked (retry counter at 0).
pub const AUTH_BLOCKED: u16 = 0x6983;
/// `69 85`: conditions of use not satisfied (nothing selected, no pending challenge, trivial
/// PIN under YubiKey PIN complexity, no GET RESPONSE data pending).
pub const CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
/// `6A 80`: incorrect parameters in the command data field.
pub const WRONG_DATA: u16 = 0x6A80;
/// `6A 82`: file or application not found.
pub const NOT_FOUND: u16 = 0x6A82;
/// `6A 84`: not enough memory space (command chain too long).
pub const NOT_ENOUGH_MEMORY: u16 = 0x6A84;
/// `6A 86`: incorrect parameters P1-P2.
pub const WRONG_P1P2: u16 = 0x6A86;
/// `6A 88`: referenced data or reference data not found.
pub const REF_NOT_FOUND: u16 = 0x6A88;
/// `6C XX`: wrong Le, XX is the exact length (the low byte is added when used).
pub const WRONG_LE: u16 = 0x6C00;
/// `6D 00`: instruction code not supported.
pub const INS_NOT_SUPPORTED: u16 = 0x6D00;
/// `6E 00`: class not supported.
pub const CLA_NOT_SUPPORTED: u16 = 0x6E00;
/// `6F 00`: no precise diagnosis (the configured key does not fit its algorithm).
pub const NO_DIAGNOSIS: u16 = 0x6F00;

/// `63 CX` for `left` tries left (X saturates at 15), or `69 83` when `left` is 0.
pub(crate) fn tries_left(left: u8) -> u16 {
    if left == 0 {
        AUTH_BLOCKED
    } else {
        TRIES_LEFT | u16::from(left.min(15))
    }
}

/// A wrong verification: decrement the counter and answer `63 CX`, or `69 83` when this attempt
/// used the last try.
pub(crate) fn wrong_try(left: &mut u8) -> u16 {
    *left = left.saturating_sub(1);
    tries_left(*left)
}
