//! The rules that keep a workstation to what an unlock needs: one admin answer per session, a
//! daily cap of admin answers per card, cards whose secrets diverged from the store stopped
//! (a GIDS card failing its admin-key check, a PIV card refusing every PUK on record, as after
//! a workstation that reported a rotation it did not make), re-enrollment past every generation
//! handed out, at most one unconfirmed PUK candidate when the card's tries are unknown, and
//! per-card limits shared by instances on one database.

mod common;

use cardunlock_core::crypto::{AdminKey, Algorithm};
use cardunlock_server::protocol::Role;
use cardunlock_server::{kdf, Rate};
use common::*;
use serde_json::{json, Value};

const ISO: &str = "0a0b0c0d";
const GIDS: &str = "a1b2c3d4";
const PIV: &str = "00112233445566778899aabbccddeeff";

fn admin(env: &Env, session: &str, request: Value) -> (u16, Value) {
    env.post(
        "/v1/unlock/admin",
        &json!({ "session": session, "request": request }),
    )
}

fn encrypt(block: &str) -> Value {
    json!({ "kind": "encrypt", "algorithm": "3des", "block": block })
}

fn puk_of(identity: &str, generation: u32) -> String {
    kdf::piv_puk(&master(), &hex::decode(identity).unwrap(), generation).to_string()
}

fn release(env: &Env, session: &str, tries: Option<u32>) -> (u16, Value) {
    let mut body = json!({ "session": session });
    if let Some(t) = tries {
        body["puk_tries_left"] = json!(t);
    }
    env.post("/v1/unlock/puk", &body)
}

fn complete(
    env: &Env,
    session: &str,
    unlocked: bool,
    rotated: bool,
    rejected: u32,
) -> (u16, Value) {
    let body = json!({
        "session": session,
        "outcome": if unlocked { "unlocked" } else { "failed" },
        "puk_rotated": rotated,
        "puk_rejected": rejected,
        "detail": "",
    });
    env.post("/v1/unlock/complete", &body)
}

fn alerts(env: &Env, event: &str) -> usize {
    env.server
        .store()
        .audit()
        .unwrap()
        .iter()
        .filter(|e| e.event == event && e.outcome == "alert")
        .count()
}

/// The GIDS host cryptogram's randoms and the card's cryptogram under `key`.
fn card_cryptogram(key: &AdminKey, r1: &[u8; 16], r2: &[u8; 16]) -> String {
    let mut c = vec![0u8; 40];
    c[..16].copy_from_slice(r1);
    c[16..32].copy_from_slice(r2);
    c[39] = 0x80;
    key.cbc_encrypt(&[0; 8], &mut c).unwrap();
    hex::encode(c)
}

fn gids_key(generation: u32) -> AdminKey {
    kdf::admin_key(
        &master(),
        "gids",
        &hex::decode(GIDS).unwrap(),
        Algorithm::TripleDes,
        generation,
    )
}

fn enroll_request(profile: &str, identity: &str) -> Value {
    json!({
        "card": {"profile": profile, "identity": identity},
        "algorithm": "3des",
        "user": {"name": "Michael Benson", "email": "Michael.Benson@demo.local"},
        "questions": [
            {"question": QUESTIONS[0], "answer": ANSWERS[0]},
            {"question": QUESTIONS[1], "answer": ANSWERS[1]},
        ],
    })
}

fn begin(env: &Env, token: &str, profile: &str, identity: &str) -> Value {
    let (status, reply) = env.call(
        "POST",
        "/v1/operator/enrollments",
        token,
        Some(&enroll_request(profile, identity)),
    );
    assert_eq!(status, 200, "{reply}");
    reply
}

fn done(env: &Env, token: &str, reply: &Value, personalised: bool) {
    let path = format!(
        "/v1/operator/enrollments/{}",
        reply["enrollment"].as_str().unwrap()
    );
    let mut report = json!({ "personalised": personalised });
    if reply["next"].get("puk_generation").is_some() {
        // A PIV card: its Card Authentication key, so it can prove its presence.
        report["card_auth_key"] = json!(hex::encode(card_auth_public()));
    }
    let (status, body) = env.call("POST", &path, token, Some(&report));
    assert_eq!(status, 200, "{body}");
}

backend_tests! {
    /// One admin answer per session: a second ISO `encrypt` (another challenge) is refused, and
    /// a GIDS session gets one host cryptogram and its card check, then nothing more. Fails if
    /// the per-session allowance is raised again.
    fn a_second_admin_answer_in_a_session_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server.enroll(&enrollment("iso", ISO, Algorithm::TripleDes)).unwrap();
        env.server.enroll(&enrollment("gids", GIDS, Algorithm::TripleDes)).unwrap();

        let s = env.verified_session("iso", ISO);
        assert_eq!(admin(&env, &s, encrypt("1122334455667788")).0, 200);
        let second = admin(&env, &s, encrypt("8877665544332211"));
        assert_error(&second, 429, "too_many_requests");
        assert!(second.1.get("answer").is_none());

        let s = env.verified_session("gids", GIDS);
        let (r1, r2) = ([0x11u8; 16], [0x22u8; 16]);
        let host = json!({ "kind": "gids_cryptogram", "r1": hex::encode(r1), "r2": hex::encode(r2) });
        assert_eq!(admin(&env, &s, host).0, 200);
        // The card check of that one cryptogram does not count against the allowance...
        let check = json!({ "kind": "gids_card_cryptogram", "cryptogram": card_cryptogram(&gids_key(0), &r1, &r2) });
        assert_eq!(admin(&env, &s, check).0, 200);
        // ...but a second host cryptogram is refused.
        let again = json!({ "kind": "gids_cryptogram", "r1": hex::encode([0x33u8; 16]), "r2": hex::encode([0x44u8; 16]) });
        assert_error(&admin(&env, &s, again), 429, "too_many_requests");
        // And a second card check has no host cryptogram left to check against.
        let check = json!({ "kind": "gids_card_cryptogram", "cryptogram": card_cryptogram(&gids_key(0), &[0x55; 16], &r2) });
        assert_error(&admin(&env, &s, check), 400, "bad_request");
    }

    /// The daily cap: three admin answers for a card in a day, the fourth session is refused
    /// with `cap_reached` (audited as an alert); another card is not affected. Fails if the
    /// cap is not counted per card in the store.
    fn admin_answers_are_capped_per_card_and_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.limits.admin_answers_per_card_per_day = 3;
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("iso", ISO, Algorithm::TripleDes)).unwrap();
        env.server.enroll(&enrollment("iso", "0e0f", Algorithm::TripleDes)).unwrap();
        for i in 0..3u8 {
            let s = env.verified_session("iso", ISO);
            let block = hex::encode([i; 8]);
            assert_eq!(admin(&env, &s, encrypt(&block)).0, 200);
        }
        let s = env.verified_session("iso", ISO);
        let refused = admin(&env, &s, encrypt("0909090909090909"));
        assert_error(&refused, 429, "cap_reached");
        assert!(refused.1["retry_after"].as_u64().unwrap() <= 86_400);
        assert!(refused.1.get("answer").is_none());
        assert_eq!(alerts(&env, "admin"), 1);
        let s = env.verified_session("iso", "0e0f");
        assert_eq!(admin(&env, &s, encrypt("0909090909090909")).0, 200);
    }

    /// A GIDS card whose cryptogram does not prove the admin key on record is flagged: an
    /// alert, and every later admin answer for it is refused with `card_diverged` until it is
    /// enrolled again. Fails if `card_not_authenticated` leaves no mark.
    fn a_gids_card_failing_its_key_check_is_flagged_until_reenrolled() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server.enroll(&enrollment("gids", GIDS, Algorithm::TripleDes)).unwrap();
        let s = env.verified_session("gids", GIDS);
        let (r1, r2) = ([0x11u8; 16], [0x22u8; 16]);
        let host = json!({ "kind": "gids_cryptogram", "r1": hex::encode(r1), "r2": hex::encode(r2) });
        assert_eq!(admin(&env, &s, host).0, 200);
        let other_key = gids_key(7);
        let forged = json!({ "kind": "gids_card_cryptogram", "cryptogram": card_cryptogram(&other_key, &r1, &r2) });
        assert_error(&admin(&env, &s, forged), 403, "card_not_authenticated");
        assert_eq!(alerts(&env, "diverged"), 1);

        let s = env.verified_session("gids", GIDS);
        let host = json!({ "kind": "gids_cryptogram", "r1": hex::encode([1u8; 16]), "r2": hex::encode([2u8; 16]) });
        let refused = admin(&env, &s, host.clone());
        assert_error(&refused, 409, "card_diverged");
        assert!(refused.1["message"].as_str().unwrap().contains("enrolled again"), "{}", refused.1);
        // The help desk sees why.
        let hd = env.signed_in("hd", &[Role::Helpdesk]);
        let path = format!("/v1/operator/cards/gids/{GIDS}");
        let (status, detail) = env.call("GET", &path, &hd, None);
        assert_eq!(status, 200, "{detail}");
        assert!(detail["diverged"].as_str().unwrap().contains("admin key generation 0"), "{detail}");

        env.server.enroll(&enrollment("gids", GIDS, Algorithm::TripleDes)).unwrap();
        let s = env.verified_session("gids", GIDS);
        assert_eq!(admin(&env, &s, host).0, 200);
        let (_, detail) = env.call("GET", &path, &hd, None);
        assert!(detail.get("diverged").is_none(), "{detail}");
    }

    /// A workstation reports a rotation it did not make (`puk_rotated: true`, the card still on
    /// PUK(0)): the next unlock is given PUK(1) only, the card refuses it, the client reports
    /// that, and the card is marked diverged with an alert; the unlock after that gets no PUK
    /// but a clear refusal. Fails if `complete` ignores `puk_rejected`.
    fn a_rotation_the_workstation_did_not_make_is_caught_on_the_next_unlock() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        env.server.enroll(&enrollment("piv", PIV, Algorithm::TripleDes)).unwrap();
        let s = env.verified_session("piv", PIV);
        let (status, reply) = release(&env, &s, Some(3));
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["puk_candidates"], json!([puk_of(PIV, 0)]));
        // The lie.
        assert_eq!(complete(&env, &s, true, true, 0).0, 200);

        let s = env.verified_session("piv", PIV);
        let (_, reply) = release(&env, &s, Some(3));
        assert_eq!(reply["puk_candidates"], json!([puk_of(PIV, 1)]));
        // The card (on PUK(0)) answers 63 C2 to PUK(1): the honest client reports it.
        assert_eq!(complete(&env, &s, false, false, 1).0, 200);
        assert_eq!(alerts(&env, "diverged"), 1);

        let s = env.verified_session("piv", PIV);
        let refused = release(&env, &s, Some(2));
        assert_error(&refused, 409, "card_diverged");
        assert!(refused.1.get("puk_candidates").is_none());
        assert!(refused.1["message"].as_str().unwrap().contains("enrolled again"), "{}", refused.1);
        // A client claiming a rotation after every candidate was refused is not believed.
        complete(&env, &s, false, false, 0);
    }

    /// Re-enrollment through the operator API goes past every PUK generation handed out (here
    /// one released to a session that never completed) and clears the pending candidates: the
    /// next unlock is given exactly one PUK, the one personalised, so no PUK try is burned.
    /// An enrollment whose report is lost leaves its PUK a candidate for the next unlock.
    fn reenrollment_goes_past_every_generation_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let st = env.signed_in("station", &[Role::Enroller]);
        let first = begin(&env, &st, "piv", PIV);
        assert_eq!(first["next"]["puk_generation"], 0);
        done(&env, &st, &first, true);
        // An unlock released PUK(0) and the rotation to 1, then vanished.
        let s = env.verified_session("piv", PIV);
        assert_eq!(release(&env, &s, Some(3)).0, 200);
        let card = env.server.store().card("piv", PIV).unwrap().unwrap();
        assert_eq!((card.puk_gen, card.pending_puk_gen), (0, Some(1)));

        let second = begin(&env, &st, "piv", PIV);
        assert_eq!(second["next"]["puk_generation"], 2);
        // The report is lost: the next unlock offers the new PUK first, the older ones after.
        let s = env.verified_session("piv", PIV);
        let (status, reply) = release(&env, &s, Some(3));
        assert_eq!(status, 409, "three candidates for three tries are refused: {reply}");
        assert_eq!(reply["error"], "puk_at_risk");
        complete(&env, &s, false, false, 0);

        let third = begin(&env, &st, "piv", PIV);
        assert!(third["next"]["puk_generation"].as_u64().unwrap() > 2, "{third}");
        done(&env, &st, &third, true);
        let gen = u32::try_from(third["next"]["puk_generation"].as_u64().unwrap()).unwrap();
        let card = env.server.store().card("piv", PIV).unwrap().unwrap();
        assert_eq!((card.puk_gen, card.pending_puk_gen), (gen, None));
        let s = env.verified_session("piv", PIV);
        let (status, reply) = release(&env, &s, Some(3));
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["puk_candidates"], json!([puk_of(PIV, gen)]));
        assert_eq!(reply["next_puk"], puk_of(PIV, gen + 1));
    }

    /// A lost enrollment report keeps the handed-out PUK a candidate, tried first.
    fn a_lost_enrollment_report_keeps_the_new_puk_a_candidate() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::start(&config(dir.path()));
        let st = env.signed_in("station", &[Role::Enroller]);
        let first = begin(&env, &st, "piv", PIV);
        done(&env, &st, &first, true);
        let second = begin(&env, &st, "piv", PIV);
        assert_eq!(second["next"]["puk_generation"], 1);
        let s = env.verified_session("piv", PIV);
        let (status, reply) = release(&env, &s, Some(3));
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["puk_candidates"], json!([puk_of(PIV, 1), puk_of(PIV, 0)]));
        // Reported not personalised: still possible, but offered last.
        let third = begin(&env, &st, "piv", PIV);
        done(&env, &st, &third, false);
        let _ = complete(&env, &s, true, true, 1);
        let card = env.server.store().card("piv", PIV).unwrap().unwrap();
        assert!(card.pending_puk_gen.is_some());
    }

    /// A card whose PUK tries are unknown gets at most one unconfirmed candidate, even when the
    /// server is configured for more tries; a client that read the tries gets what they allow.
    fn unknown_puk_tries_allow_one_unconfirmed_candidate() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.limits.piv_puk_tries = 10;
        let env = Env::start(&cfg);
        env.server.enroll(&enrollment("piv", PIV, Algorithm::TripleDes)).unwrap();
        // Two sessions release and vanish: the card may hold 0, 1 or 2.
        for _ in 0..2 {
            let s = env.verified_session("piv", PIV);
            assert_eq!(release(&env, &s, None).0, 200);
        }
        let s = env.verified_session("piv", PIV);
        assert_error(&release(&env, &s, None), 409, "puk_at_risk");
        let s = env.verified_session("piv", PIV);
        let (status, reply) = release(&env, &s, Some(10));
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["puk_candidates"].as_array().unwrap().len(), 3);
    }

    /// Two instances on one database share the per-card budget of `start`: two starts through
    /// one instance spend it, the third through the other is refused. Fails if per-card buckets
    /// live in each instance's memory.
    fn two_instances_share_per_card_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.limits.start_per_card = Rate::new(2, 1);
        cfg.limits.answers_per_card = Rate::new(1, 1);
        let servers = instances(&cfg, 2);
        servers[0].server.enroll(&enrollment("iso", ISO, Algorithm::TripleDes)).unwrap();
        let a = servers[0].start_session("iso", ISO)["session"].as_str().unwrap().to_owned();
        servers[0].start_session("iso", ISO);
        let refused = servers[1].post("/v1/unlock/start", &card("iso", ISO));
        assert_error(&refused, 429, "too_many_requests");
        assert!(refused.1["retry_after"].as_u64().unwrap() >= 1);
        // Another card has its own budget.
        servers[1].server.enroll(&enrollment("iso", "0e0f", Algorithm::TripleDes)).unwrap();
        servers[1].start_session("iso", "0e0f");
        // Answers: one through the first instance spends the card's budget for the second.
        let (status, _) = servers[1].post("/v1/unlock/answers", &json!({ "session": a, "answers": WRONG }));
        assert_eq!(status, 403);
        let refused = servers[0].post("/v1/unlock/answers", &json!({ "session": a, "answers": ANSWERS }));
        assert_error(&refused, 429, "too_many_requests");
    }

    /// Per-card buckets of identities nobody uses any more are forgotten once they would be
    /// full again (as good as absent), so `start` with invented identities does not grow the
    /// store without bound; a card in use keeps its bucket.
    fn full_card_buckets_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        // A token a second: a bucket is full again 2 s after its last use.
        cfg.limits.start_per_card = Rate::new(2, 60);
        let location = cfg.db_path.clone();
        let env = Env::start(&cfg);
        let count = || query_texts(&location, "SELECT CAST(COUNT(*) AS TEXT) FROM card_buckets")[0].clone();
        for i in 0..5u8 {
            let (status, _) = env.post("/v1/unlock/start", &card("iso", &hex::encode([0xee, i])));
            assert_eq!(status, 404);
        }
        assert_eq!(count(), "5");
        std::thread::sleep(std::time::Duration::from_millis(2500));
        env.post("/v1/unlock/start", &card("iso", "eeff"));
        assert_eq!(count(), "1");
    }
}
