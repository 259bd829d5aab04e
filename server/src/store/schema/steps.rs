//! The migration steps, written once in PostgreSQL's types: [`super::sqlite`] renders them
//! with SQLite's ([`super::SQLITE_TYPES`]). A line ending in `-- postgres` or `-- sqlite` is
//! that backend's alone.

/// Step `i` takes the database from version `i` to `i + 1`.
pub(super) const STEPS: &[&str] = &[
    "
CREATE TABLE cards (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    user_name TEXT NOT NULL,
    user_email TEXT NOT NULL,
    key_gen BIGINT NOT NULL DEFAULT 0,
    puk_gen BIGINT NOT NULL DEFAULT 0,
    pending_puk_gen BIGINT,
    locked BOOLEAN NOT NULL DEFAULT FALSE,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    enrolled_ms BIGINT NOT NULL,
    PRIMARY KEY (profile, identity)
);
CREATE TABLE questions (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    position BIGINT NOT NULL,
    question TEXT NOT NULL,
    answer_hash TEXT NOT NULL,
    PRIMARY KEY (profile, identity, position)
);
CREATE TABLE puk_denied (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    gen BIGINT NOT NULL,
    PRIMARY KEY (profile, identity, gen)
);
CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    verified BOOLEAN NOT NULL DEFAULT FALSE,
    puk_next_gen BIGINT,
    admin_answers BIGINT NOT NULL DEFAULT 0,
    closed BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX sessions_expiry ON sessions (expires_ms); -- postgres
CREATE TABLE used_challenges (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    used_ms BIGINT NOT NULL,
    PRIMARY KEY (profile, identity, kind, value)
);
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    profile TEXT,
    identity TEXT,
    session TEXT,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
",
    "
-- 2: a GIDS session remembers R1 || R2 of its host cryptogram, to check the card's.
ALTER TABLE sessions ADD COLUMN gids_randoms TEXT;
",
    "
-- 3: operators (accounts, sessions, sign-in throttles, daily counters), enrollments in
-- progress, the card's pending admin-key generation and PUK read-out flag, and who did what
-- from where in the audit log.
CREATE TABLE operators (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    totp_sealed BYTEA NOT NULL,
    totp_last_step BIGINT,
    roles TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_ms BIGINT NOT NULL
);
CREATE TABLE operator_sessions (
    token_hash BYTEA PRIMARY KEY,
    operator TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    ended BOOLEAN NOT NULL DEFAULT FALSE,
    address TEXT
);
CREATE TABLE sign_in_failures (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_failure_ms BIGINT NOT NULL,
    locked_until_ms BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE operator_daily (
    operator TEXT NOT NULL,
    day BIGINT NOT NULL,
    kind TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (operator, day, kind)
);
CREATE TABLE enrollments (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    operator TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    user_name TEXT NOT NULL,
    user_email TEXT NOT NULL,
    questions TEXT NOT NULL,
    key_gen BIGINT NOT NULL,
    puk_gen BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open'
);
CREATE INDEX enrollments_card ON enrollments (profile, identity);
ALTER TABLE cards ADD COLUMN pending_key_gen BIGINT;
ALTER TABLE cards ADD COLUMN puk_read_out BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE audit ADD COLUMN operator TEXT;
ALTER TABLE audit ADD COLUMN role TEXT;
ALTER TABLE audit ADD COLUMN address TEXT;
",
    "
ALTER TABLE audit ADD COLUMN seq BIGINT;
ALTER TABLE audit ADD COLUMN mac BYTEA;
CREATE TABLE audit_head (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    seq BIGINT NOT NULL,
    mac BYTEA NOT NULL
);
-- seq -1: the rows before the chain are not chained yet (the row exists to be locked, so
-- instances starting together chain them once).
INSERT INTO audit_head (only_row, seq, mac) VALUES (1, -1, ''); -- postgres
INSERT INTO audit_head (only_row, seq, mac) VALUES (1, -1, x''); -- sqlite
",
    "
-- 5: PIV PUK read-outs waiting for a second operator (four eyes): 'pending', 'approved',
-- 'collected'.
CREATE TABLE puk_readouts (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    requester TEXT NOT NULL,
    identity_checked TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    approver TEXT,
    state TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX puk_readouts_open ON puk_readouts (state, expires_ms);
",
    "
-- 6: what the unlock rules share between instances: per-card token buckets and daily
-- counters, cards whose secrets diverged from the store, and the PUK generations a session
-- released in the order the client tries them.
CREATE TABLE card_buckets (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    kind TEXT NOT NULL,
    tokens DOUBLE PRECISION NOT NULL,
    last_ms BIGINT NOT NULL,
    PRIMARY KEY (profile, identity, kind)
);
CREATE INDEX card_buckets_idle ON card_buckets (kind, last_ms);
CREATE TABLE card_daily (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    kind TEXT NOT NULL,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (profile, identity, kind)
);
CREATE TABLE card_diverged (
    profile TEXT NOT NULL,
    identity TEXT NOT NULL,
    reason TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    PRIMARY KEY (profile, identity)
);
CREATE TABLE released_puks (
    token_hash BYTEA PRIMARY KEY,
    generations TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX released_puks_age ON released_puks (created_ms); -- postgres
",
    "
-- 7: PIV card presence: the Card Authentication public key (9E, uncompressed SEC1 point, hex)
-- recorded at enrollment, the nonce a session's card must sign and whether it did; the
-- back-off wrong answer sets from sessions without that proof cause.
ALTER TABLE cards ADD COLUMN card_auth_key TEXT;
ALTER TABLE cards ADD COLUMN backoff_until_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN nonce TEXT;
ALTER TABLE sessions ADD COLUMN proven BOOLEAN NOT NULL DEFAULT FALSE;
",
    "
-- 8: audit chains per instance: each row names its chain; the last head of each chain, and
-- where a chain starts after its older rows were archived.
ALTER TABLE audit ADD COLUMN chain TEXT;
CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    mac BYTEA NOT NULL
);
-- Where each chain starts after its older rows were archived ('' names the global chain).
CREATE TABLE audit_starts (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    mac BYTEA NOT NULL
);
",
    "
-- row MACs (store/mac.rs): every granting row carries an HMAC under a key derived from the
-- master secret; existing rows get theirs once, audited, when the server first starts
-- (`row_mac_state.done`). The audit index serves the attempt counter's cross-check.
ALTER TABLE cards ADD COLUMN mac BYTEA;
ALTER TABLE questions ADD COLUMN mac BYTEA;
ALTER TABLE puk_denied ADD COLUMN mac BYTEA;
ALTER TABLE sessions ADD COLUMN mac BYTEA;
ALTER TABLE used_challenges ADD COLUMN mac BYTEA;
ALTER TABLE operators ADD COLUMN mac BYTEA;
ALTER TABLE operator_sessions ADD COLUMN mac BYTEA;
ALTER TABLE sign_in_failures ADD COLUMN mac BYTEA;
ALTER TABLE operator_daily ADD COLUMN mac BYTEA;
ALTER TABLE enrollments ADD COLUMN mac BYTEA;
ALTER TABLE puk_readouts ADD COLUMN mac BYTEA;
ALTER TABLE card_buckets ADD COLUMN mac BYTEA;
ALTER TABLE card_daily ADD COLUMN mac BYTEA;
ALTER TABLE card_diverged ADD COLUMN mac BYTEA;
ALTER TABLE released_puks ADD COLUMN mac BYTEA;
CREATE TABLE row_mac_state (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    done BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO row_mac_state (only_row) VALUES (1);
CREATE INDEX audit_card_rows ON audit (profile, identity, id);
",
    "
-- the workstation ISO profile an ISO admin card was enrolled with (its name; NULL for PIV,
-- GIDS and cards enrolled before), returned to the workstation at unlock.
ALTER TABLE cards ADD COLUMN iso_profile TEXT;
",
];
