//! Operators' second factor: TOTP (RFC 6238) with HMAC-SHA1, 30-second steps and 6 digits,
//! as every authenticator app does it by default; the enrolment URI (`otpauth://`) and its
//! QR code for a terminal.
//!
//! A code is accepted for the current step and one step either side (clock drift), and only
//! for a step later than the operator's last accepted one, so each code signs in once.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a new seed (160 bits, RFC 4226's recommendation for HMAC-SHA1).
pub const SEED_LEN: usize = 20;
/// Steps accepted either side of the current one.
pub const WINDOW: u64 = 1;
/// The issuer in the URI and the label.
pub const ISSUER: &str = "cardunlock";

/// A fresh random seed from the operating system.
pub fn new_seed() -> Zeroizing<Vec<u8>> {
    let mut seed = Zeroizing::new(vec![0u8; SEED_LEN]);
    rand::rngs::OsRng.fill_bytes(&mut seed);
    seed
}

/// The step a Unix time falls in.
pub fn step_of(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// HOTP (RFC 4226) of `seed` at counter `step`, `digits` long (6 to 9), as a number.
pub fn hotp(seed: &[u8], step: u64, digits: u32) -> u32 {
    // HMAC accepts a key of any length: `new_from_slice` cannot fail.
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(seed) else {
        return 0;
    };
    mac.update(&step.to_be_bytes());
    let mut digest = Zeroizing::new([0u8; 20]);
    digest.copy_from_slice(mac.finalize().into_bytes().as_slice());
    let offset = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    binary % 10u32.pow(digits.clamp(6, 9))
}

/// The 6-digit code of `seed` at a Unix time, zero-padded.
pub fn code(seed: &[u8], unix_secs: u64) -> Zeroizing<String> {
    Zeroizing::new(format!("{:06}", hotp(seed, step_of(unix_secs), DIGITS)))
}

/// Checks `code` against the steps around `unix_secs` that are later than `last_step`, in
/// constant time per step. Returns the step it matched (to record as the last accepted one).
pub fn verify(seed: &[u8], code: &str, unix_secs: u64, last_step: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_secs);
    let mut matched = None;
    for step in now.saturating_sub(WINDOW)..=now.saturating_add(WINDOW) {
        let expected = Zeroizing::new(format!("{:06}", hotp(seed, step, DIGITS)));
        let fresh = last_step.is_none_or(|last| step > last);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && fresh && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// `otpauth://totp/cardunlock:NAME?secret=BASE32&issuer=cardunlock&algorithm=SHA1&digits=6&period=30`.
/// `name` must be an operator name (`[a-z0-9._-]`, nothing to escape).
pub fn uri(name: &str, seed: &[u8]) -> Zeroizing<String> {
    let secret = Zeroizing::new(BASE32_NOPAD.encode(seed));
    Zeroizing::new(format!(
        "otpauth://totp/{ISSUER}:{name}?secret={}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        secret.as_str()
    ))
}

/// The seed in an `otpauth://` URI's `secret` parameter (for tests and scripts that compute
/// codes themselves).
pub fn seed_from_uri(uri: &str) -> Option<Zeroizing<Vec<u8>>> {
    let query = uri.split_once('?')?.1;
    let secret = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("secret="))?;
    let upper = Zeroizing::new(secret.trim_end_matches('=').to_ascii_uppercase());
    BASE32_NOPAD
        .decode(upper.as_bytes())
        .ok()
        .map(Zeroizing::new)
}

/// The URI as a QR code drawn with Unicode half blocks (two modules per character row), dark
/// modules light-on-dark so it scans from a dark terminal too; `None` if it does not fit a QR
/// code.
pub fn qr_text(uri: &str) -> Option<Zeroizing<String>> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(Zeroizing::new(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 column (seed "12345678901234567890", 8 digits).
    const RFC_VECTORS: [(u64, u32); 6] = [
        (59, 94_287_082),
        (1_111_111_109, 7_081_804),
        (1_111_111_111, 14_050_471),
        (1_234_567_890, 89_005_924),
        (2_000_000_000, 69_279_037),
        (20_000_000_000, 65_353_130),
    ];
    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_vectors() {
        for (time, expected) in RFC_VECTORS {
            assert_eq!(hotp(RFC_SEED, step_of(time), 8), expected, "T = {time}");
            // Six digits are the last six of the same truncation.
            assert_eq!(
                *code(RFC_SEED, time),
                format!("{:06}", expected % 1_000_000),
                "T = {time}"
            );
        }
    }

    #[test]
    fn window_and_replay() {
        let t = 1_111_111_111;
        let now = step_of(t);
        let c = code(RFC_SEED, t);
        assert_eq!(verify(RFC_SEED, &c, t, None), Some(now));
        // The same code once its step was accepted: refused.
        assert_eq!(verify(RFC_SEED, &c, t, Some(now)), None);
        // One step late or early: accepted; two: refused.
        let prev = code(RFC_SEED, t - STEP_SECS);
        assert_eq!(verify(RFC_SEED, &prev, t, None), Some(now - 1));
        let next = code(RFC_SEED, t + STEP_SECS);
        assert_eq!(verify(RFC_SEED, &next, t, Some(now)), Some(now + 1));
        let old = code(RFC_SEED, t - 2 * STEP_SECS);
        assert_eq!(verify(RFC_SEED, &old, t, None), None);
        // An older step than the last accepted one is refused even inside the window.
        assert_eq!(verify(RFC_SEED, &prev, t, Some(now)), None);
        assert_eq!(verify(RFC_SEED, "12345", t, None), None);
        assert_eq!(verify(RFC_SEED, "abcdef", t, None), None);
    }

    #[test]
    fn uri_round_trips_the_seed_and_draws_a_qr_code() {
        let seed = new_seed();
        let u = uri("alice", &seed);
        assert!(
            u.starts_with("otpauth://totp/cardunlock:alice?secret="),
            "{}",
            *u
        );
        assert!(u.ends_with("&issuer=cardunlock&algorithm=SHA1&digits=6&period=30"));
        assert_eq!(seed_from_uri(&u).as_deref(), Some(&*seed));
        let qr = qr_text(&u).unwrap();
        assert!(qr.lines().count() > 10 && qr.contains('█'), "{}", *qr);
        assert_eq!(seed_from_uri("otpauth://totp/x?issuer=y"), None);
    }
}
