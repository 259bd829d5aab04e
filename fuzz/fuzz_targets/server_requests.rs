//! The server contract (`cardunlock-protocol`): every `/v1/unlock/*` and `/v1/operator/*` request
//! body as the server parses it, and every reply body as the client parses it. Never a panic; what parses
//! serialises to JSON that parses to the same; `Debug` never shows an answer, a PUK or a token;
//! a PIN policy from the server, whatever its numbers, checks a PIN without panicking.
#![no_main]

use cardunlock_protocol::operator::{
    self, AddOperatorRequest, AuditQuery, AuditReply, CardDetail, EnrollDone, EnrollReply,
    EnrollRequest, LiftLockRequest, OfflineReply, OfflineRequest, OperatorList, PukReadoutReply,
    PukReadoutRequest, SearchReply, SetPasswordRequest, SignInReply, SignInRequest, TotpEnrollment,
};
use cardunlock_protocol::{
    AdminAnswer, AdminBody, AnswersReply, AnswersRequest, CompleteReply, CompleteRequest,
    ErrorBody, ProveReply, ProveRequest, PukReply, PukRequest, StartReply, StartRequest,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Parses `data` as `T`; when it parses, checks the JSON round trip and returns the value.
fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let json = serde_json::to_string(&value).expect("a parsed body serialises");
    let again: T = serde_json::from_str(&json).expect("a serialised body parses");
    assert_eq!(serde_json::to_string(&again).expect("serialises"), json);
    Some(value)
}

/// `Debug` of a value holding `secret` must not show it (as a quoted string, the way a derived
/// `Debug` would print it; a non-secret field with the same text is no leak).
fn hides(debug: String, secret: &str, others: &[&str]) {
    if others.iter().any(|o| o.contains(secret)) {
        return;
    }
    let quoted = format!("{secret:?}");
    assert!(!debug.contains(&quoted), "secret in Debug: {debug}");
}

fuzz_target!(|data: &[u8]| {
    // Requests (server side).
    if let Some(r) = round_trip::<StartRequest>(data) {
        let _ = format!("{r:?}");
    }
    if let Some(r) = round_trip::<AnswersRequest>(data) {
        let debug = format!("{r:?}");
        hides(debug.clone(), r.session.expose(), &[]);
        for a in &r.answers {
            hides(debug.clone(), a.expose(), &[]);
        }
    }
    if let Some(r) = round_trip::<AdminBody>(data) {
        let debug = format!("{r:?}");
        hides(debug, r.session.expose(), &[&format!("{:?}", r.request)]);
    }
    if let Some(r) = round_trip::<PukRequest>(data) {
        hides(format!("{r:?}"), r.session.expose(), &[]);
    }
    if let Some(r) = round_trip::<CompleteRequest>(data) {
        hides(format!("{r:?}"), r.session.expose(), &[&r.detail]);
    }
    if let Some(r) = round_trip::<ProveRequest>(data) {
        let signature = String::from(r.signature.clone());
        hides(format!("{r:?}"), r.session.expose(), &[&signature]);
        // The presence digest never panics on what the client or server was sent.
        if let Some(hash) = cardunlock_protocol::presence::token_hash(&r.session) {
            let nonce = r
                .signature
                .as_der()
                .and_then(|d| <[u8; 32]>::try_from(d).ok());
            if let Some(nonce) = nonce {
                let _ = cardunlock_protocol::presence::digest(&hash, &nonce);
            }
        }
    }
    // Replies (client side).
    if let Some(r) = round_trip::<StartReply>(data) {
        let mut others: Vec<&str> = r.questions.iter().map(String::as_str).collect();
        others.extend(r.pin_policy.custom_blocklist.iter().map(String::as_str));
        hides(format!("{r:?}"), r.session.expose(), &others);
        let known = cardunlock_core::policy::PinContext::NONE
            .old_pin(b"1234")
            .puk(b"12345678");
        let _ = r.pin_policy.with_core(|p| {
            p.check(
                b"840259",
                b"840259",
                cardunlock_core::policy::PinContext::NONE,
            )
            .is_ok()
                | p.check(b"Xk9w2!", b"Xk9w2", known).is_ok()
        });
    }
    let _ = round_trip::<AnswersReply>(data);
    let _ = round_trip::<ProveReply>(data);
    if let Some(r) = round_trip::<AdminAnswer>(data) {
        hides(format!("{r:?}"), r.answer.expose(), &[]);
    }
    if let Some(r) = round_trip::<PukReply>(data) {
        let debug = format!("{r:?}");
        hides(debug.clone(), r.next_puk.expose(), &[]);
        for p in &r.puk_candidates {
            hides(debug.clone(), p.expose(), &[]);
        }
    }
    let _ = round_trip::<CompleteReply>(data);
    let _ = round_trip::<ErrorBody>(data);
    operator_bodies(data);
});

/// The operator API's bodies: round trips, and no password, code, token, PUK, key, answer or
/// response in `Debug`.
fn operator_bodies(data: &[u8]) {
    if let Some(r) = round_trip::<SignInRequest>(data) {
        let debug = format!("{r:?}");
        hides(debug.clone(), r.password.expose(), &[&r.name]);
        hides(debug, r.totp.expose(), &[&r.name]);
    }
    if let Some(r) = round_trip::<SignInReply>(data) {
        let roles = format!("{:?}", r.operator);
        hides(format!("{r:?}"), r.token.expose(), &[&roles]);
    }
    if let Some(r) = round_trip::<EnrollRequest>(data) {
        let debug = format!("{r:?}");
        let identity = r.card.identity.to_hex();
        let mut others: Vec<&str> = vec![&r.user.name, &r.user.email, &identity];
        others.extend(r.questions.iter().map(|q| q.question.as_str()));
        for q in &r.questions {
            hides(debug.clone(), q.answer.expose(), &others);
        }
    }
    if let Some(r) = round_trip::<EnrollReply>(data) {
        let debug = format!("{r:?}");
        for s in r.current.iter().chain([&r.next]) {
            hides(debug.clone(), s.admin_key.expose(), &[&r.enrollment]);
            if let Some(puk) = &s.puk {
                hides(debug.clone(), puk.expose(), &[&r.enrollment]);
            }
        }
    }
    if let Some(r) = round_trip::<OfflineReply>(data) {
        let debug = format!("{r:?}");
        hides(debug.clone(), r.response.expose(), &[]);
        hides(debug, r.grouped.expose(), &[]);
    }
    if let Some(r) = round_trip::<PukReadoutReply>(data) {
        hides(format!("{r:?}"), r.puk.expose(), &[]);
    }
    if let Some(r) = round_trip::<AddOperatorRequest>(data) {
        hides(format!("{r:?}"), r.password.expose(), &[&r.name]);
    }
    if let Some(r) = round_trip::<SetPasswordRequest>(data) {
        hides(format!("{r:?}"), r.password.expose(), &[]);
    }
    if let Some(r) = round_trip::<TotpEnrollment>(data) {
        hides(format!("{r:?}"), r.totp_uri.expose(), &[]);
    }
    if let Some(r) = round_trip::<OfflineRequest>(data) {
        // A challenge that parsed is 8 or 16 bytes (3DES or AES), read aloud as its hex.
        assert!(matches!(r.challenge.as_bytes().len(), 8 | 16));
        let _ = operator::group_for_reading(&r.challenge.to_hex());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = operator::check_operator_name(text);
        let _ = operator::paths::fill(text, &["a", "b"]);
    }
    let _ = round_trip::<LiftLockRequest>(data);
    let _ = round_trip::<PukReadoutRequest>(data);
    let _ = round_trip::<EnrollDone>(data);
    let _ = round_trip::<AuditQuery>(data);
    let _ = round_trip::<AuditReply>(data);
    let _ = round_trip::<CardDetail>(data);
    let _ = round_trip::<SearchReply>(data);
    let _ = round_trip::<OperatorList>(data);
}
