//! Browser sessions: an API token is exchanged once for a session cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` behind TLS) naming a row of
//! `web_sessions`; the row carries the session's CSRF token, which every
//! form posts back in a hidden field (or scripts in `X-CSRF-Token`).
//! A session ends at sign-out, at its expiry, or when its token is revoked.

use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use rand::RngCore;
use sqlx::Row;

use crate::server::auth::{Caller, Role, UnknownRole, authenticate, hash_secret};
use crate::server::db::{Db, DbError, now_ms};

/// Cookie holding the session secret.
pub const SESSION_COOKIE: &str = "ekran_session";
/// Cookie holding the sign-in form's CSRF token (before a session exists).
pub const SIGNIN_CSRF_COOKIE: &str = "ekran_signin_csrf";
/// Header scripts send the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field forms send the CSRF token in.
pub const CSRF_FIELD: &str = "csrf";
/// How long a session lasts after sign-in: one working day.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The person, as their token describes them.
    pub caller: Caller,
    /// The token forms must post back.
    pub csrf: String,
    /// SHA-256 of the cookie secret (the row's key).
    secret_sha256: String,
}

/// 256 random bits, URL-safe base64.
pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// Whether the browser reached us over TLS (directly or through a proxy
/// that says so), so cookies get `Secure`.
pub fn is_secure(parts: &Parts) -> bool {
    parts.uri.scheme_str() == Some("https")
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value with the dashboard's attributes.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Exchanges a live API token for a new session; `None` for an unknown or revoked token.
pub async fn sign_in(db: &Db, token_secret: &str) -> Result<Option<(String, Session)>, DbError> {
    let Some(caller) = authenticate(db, token_secret.trim()).await? else {
        return Ok(None);
    };
    let secret = random_token();
    let csrf = random_token();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO web_sessions (secret_sha256, token_id, csrf_token, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash_secret(&secret))
    .bind(&caller.token_id)
    .bind(&csrf)
    .bind(now)
    .bind(now + SESSION_TTL_MS)
    .execute(db.pool())
    .await?;
    // Expired sessions are swept at each sign-in: they are few and small.
    sqlx::query("DELETE FROM web_sessions WHERE expires_at_ms < $1")
        .bind(now)
        .execute(db.pool())
        .await?;
    tracing::info!(token = %caller.name, role = %caller.role, "dashboard sign-in");
    Ok(Some((
        secret.clone(),
        Session {
            caller,
            csrf,
            secret_sha256: hash_secret(&secret),
        },
    )))
}

/// The live session named by the request's cookie, if any.
pub async fn from_headers(db: &Db, headers: &HeaderMap) -> Result<Option<Session>, DbError> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let secret_sha256 = hash_secret(secret);
    let row = sqlx::query(
        "SELECT t.id, t.name, t.role, s.csrf_token FROM web_sessions s JOIN api_tokens t ON t.id = s.token_id \
         WHERE s.secret_sha256 = $1 AND s.expires_at_ms > $2 AND t.revoked_at_ms IS NULL",
    )
    .bind(&secret_sha256)
    .bind(now_ms())
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        let role: String = row.try_get("role")?;
        Ok(Session {
            caller: Caller {
                token_id: row.try_get("id")?,
                name: row.try_get("name")?,
                role: role
                    .parse::<Role>()
                    .map_err(|e: UnknownRole| DbError::Corrupt(e.to_string()))?,
            },
            csrf: row.try_get("csrf_token")?,
            secret_sha256,
        })
    })
    .transpose()
}

/// Ends a session.
pub async fn sign_out(db: &Db, session: &Session) -> Result<(), DbError> {
    sqlx::query("DELETE FROM web_sessions WHERE secret_sha256 = $1")
        .bind(&session.secret_sha256)
        .execute(db.pool())
        .await?;
    tracing::info!(token = %session.caller.name, "dashboard sign-out");
    Ok(())
}

impl Session {
    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_matches(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|token| same_secret(token, &self.csrf))
    }
}
