-- Web dashboard (schema version 2): sign-in sessions, the names media were
-- uploaded under, and screenshots taken on request. Same types as 0001.

-- A browser session: the cookie holds a random secret, only its SHA-256 is
-- stored. It lives no longer than `expires_at_ms` and dies with its token.
CREATE TABLE web_sessions (
    secret_sha256 TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at_ms);

-- The file names media were uploaded under from the dashboard; a playlist
-- written there names its media by these (the bytes stay content-addressed).
CREATE TABLE media_names (
    name TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL REFERENCES media (sha256),
    created_at_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX media_names_sha ON media_names (sha256);

-- Screenshot on request: an operator sets `requested_at_ms`; the box sees
-- it in its heartbeat answer, uploads a PNG, and the request is cleared.
CREATE TABLE screen_screenshots (
    screen_id TEXT PRIMARY KEY REFERENCES screens (id) ON DELETE CASCADE,
    requested_at_ms BIGINT,
    png_base64 TEXT,
    taken_at_ms BIGINT
);
