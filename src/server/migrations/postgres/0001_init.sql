-- Ekran server schema, version 1. The SQLite and PostgreSQL files differ only
-- in the auto-increment column; every other type is BIGINT or TEXT so one
-- query code path (sqlx `Any`) reads both. Times are UTC milliseconds.

-- People's API tokens. Only the SHA-256 of the secret is stored.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'viewer')),
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);

CREATE TABLE venues (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE screen_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- An enrolled box. `manifest_version` is the last version published to it;
-- `pop_acked_*` is the end of its contiguous, verified proof-of-play chain.
CREATE TABLE screens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    key_id TEXT NOT NULL UNIQUE,
    public_key_pem TEXT NOT NULL,
    manifest_version BIGINT NOT NULL DEFAULT 0,
    pop_acked_seq BIGINT NOT NULL DEFAULT 0,
    pop_acked_hash TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000',
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX screens_venue ON screens (venue_id);

CREATE TABLE screen_group_members (
    screen_id TEXT NOT NULL REFERENCES screens (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES screen_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (screen_id, group_id)
);

-- Pairing codes: a box registered its key and shows `code` until an operator approves it.
CREATE TABLE pairings (
    code TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms BIGINT,
    screen_id TEXT
);
CREATE INDEX pairings_key ON pairings (key_id);

-- Nonces of signed device requests seen inside the replay window.
CREATE TABLE device_nonces (
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX device_nonces_expiry ON device_nonces (expires_at_ms);

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- Content-addressed media; the bytes live in the media store under `sha256`.
CREATE TABLE media (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    mime TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- The current playlist of each campaign, already resolved into manifest items.
CREATE TABLE playlists (
    campaign_id TEXT PRIMARY KEY REFERENCES campaigns (id),
    file_name TEXT NOT NULL,
    source TEXT NOT NULL,
    targets_json TEXT NOT NULL,
    items_json TEXT NOT NULL,
    overlays_json TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

-- Every signed manifest ever issued: which version went to which screen, when.
CREATE TABLE publications (
    screen_id TEXT NOT NULL REFERENCES screens (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    envelope TEXT NOT NULL,
    etag TEXT NOT NULL,
    published_at_ms BIGINT NOT NULL,
    PRIMARY KEY (screen_id, version)
);

-- Latest heartbeat per screen.
CREATE TABLE heartbeats (
    screen_id TEXT PRIMARY KEY REFERENCES screens (id) ON DELETE CASCADE,
    received_at_ms BIGINT NOT NULL,
    status_json TEXT NOT NULL
);

-- Proof-of-play records, stored once per (screen, seq), signature verified.
CREATE TABLE pop_records (
    screen_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    play_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    campaign TEXT NOT NULL,
    media_sha256 TEXT NOT NULL,
    manifest_version BIGINT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    frames_presented BIGINT NOT NULL,
    frames_dropped BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    stale BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    signature TEXT NOT NULL,
    venue_id TEXT NOT NULL,
    day TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (screen_id, seq)
);
CREATE INDEX pop_records_campaign_time ON pop_records (campaign, started_at_ms);

-- Airtime rollup per venue x campaign x local day x screen, maintained on
-- ingest so reports never scan pop_records. `verified_*` counts records that
-- sit in the screen's contiguous chain.
CREATE TABLE airtime_daily (
    venue_id TEXT NOT NULL,
    campaign TEXT NOT NULL,
    day TEXT NOT NULL,
    screen_id TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    plays BIGINT NOT NULL,
    completed_plays BIGINT NOT NULL,
    verified_duration_ms BIGINT NOT NULL,
    verified_plays BIGINT NOT NULL,
    PRIMARY KEY (venue_id, campaign, day, screen_id)
);
CREATE INDEX airtime_daily_day ON airtime_daily (day);

-- Gaps, forks and bad signatures found while ingesting proof of play.
CREATE TABLE audit_findings (
    id BIGSERIAL PRIMARY KEY,
    screen_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq BIGINT NOT NULL,
    detail TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    -- Set when a gap closes (the missing records arrived and linked).
    resolved_at_ms BIGINT,
    UNIQUE (screen_id, kind, seq)
);
