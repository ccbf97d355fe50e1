//! People's API tokens and roles: creation (the secret is shown once, only
//! its SHA-256 is stored), listing, revocation, and the bearer-token
//! extractor [`Auth`] that checks the role each endpoint needs.
//!
//! Roles are ordered: an admin may do what a manager may, a manager what a
//! viewer may. Viewers read (reports, lists); managers upload media and
//! publish playlists; admins manage venues, screens, groups and tokens.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::AppState;
use super::db::{Db, DbError, now_ms};
use super::error::AppError;

/// Prefix of every token secret, so a leaked one is recognisable in logs and scanners.
pub const TOKEN_PREFIX: &str = "ekran_";

/// What a token may do. Ordered by privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads reports and lists.
    Viewer,
    /// Also uploads media and publishes playlists.
    Manager,
    /// Also manages venues, screens, groups, enrollment and tokens.
    Admin,
}

impl Role {
    /// The lowercase name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Manager => "manager",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of admin, manager, viewer.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, manager or viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "viewer" => Ok(Self::Viewer),
            "manager" => Ok(Self::Manager),
            "admin" => Ok(Self::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// A freshly created token. `secret` exists only here; the database keeps its hash.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    /// Public id, used to revoke it.
    pub id: String,
    /// Human label.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The bearer secret, shown once.
    pub secret: String,
}

/// A stored token as listed (never with its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// Human label.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Creation time, UTC ms.
    pub created_at_ms: i64,
    /// Revocation time, if revoked.
    pub revoked_at_ms: Option<i64>,
}

/// The SHA-256 (hex) under which a secret is stored. Secrets are 256 random
/// bits, so a fast hash is enough: there is nothing to brute-force.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a token and returns its secret (once).
pub async fn create_token(db: &Db, role: Role, name: &str) -> Result<NewToken, DbError> {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let secret = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let mut id_bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut id_bytes);
    let id = format!("tok_{}", hex::encode(id_bytes));
    sqlx::query(
        "INSERT INTO api_tokens (id, name, role, secret_sha256, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(name)
    .bind(role.as_str())
    .bind(hash_secret(&secret))
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(NewToken {
        id,
        name: name.to_owned(),
        role,
        secret,
    })
}

/// Revokes the token with this id or name. Returns how many were revoked
/// (0: none matched or already revoked).
pub async fn revoke_token(db: &Db, id_or_name: &str) -> Result<u64, DbError> {
    let result = sqlx::query(
        "UPDATE api_tokens SET revoked_at_ms = $1 WHERE (id = $2 OR name = $2) AND revoked_at_ms IS NULL",
    )
    .bind(now_ms())
    .bind(id_or_name)
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected())
}

/// All tokens, oldest first.
pub async fn list_tokens(db: &Db) -> Result<Vec<TokenInfo>, DbError> {
    let rows = sqlx::query(
        "SELECT id, name, role, created_at_ms, revoked_at_ms FROM api_tokens ORDER BY created_at_ms, id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let role: String = row.try_get("role")?;
            Ok(TokenInfo {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                role: role
                    .parse()
                    .map_err(|e: UnknownRole| DbError::Corrupt(e.to_string()))?,
                created_at_ms: row.try_get("created_at_ms")?,
                revoked_at_ms: row.try_get("revoked_at_ms")?,
            })
        })
        .collect()
}

/// The person behind an authenticated request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Token id.
    pub token_id: String,
    /// Token name (for audit columns such as `updated_by`).
    pub name: String,
    /// The token's role.
    pub role: Role,
}

/// Finds the live token for a bearer secret.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Option<Caller>, DbError> {
    let row = sqlx::query(
        "SELECT id, name, role FROM api_tokens WHERE secret_sha256 = $1 AND revoked_at_ms IS NULL",
    )
    .bind(hash_secret(secret))
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        let role: String = row.try_get("role")?;
        Ok(Caller {
            token_id: row.try_get("id")?,
            name: row.try_get("name")?,
            role: role
                .parse()
                .map_err(|e: UnknownRole| DbError::Corrupt(e.to_string()))?,
        })
    })
    .transpose()
}

/// Type-level minimum role for [`Auth`].
pub trait MinRole: Send + Sync {
    /// The least role that passes.
    const ROLE: Role;
}

/// Marker: any valid token.
pub struct Viewer;
/// Marker: manager or admin.
pub struct Manager;
/// Marker: admin only.
pub struct Admin;

impl MinRole for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl MinRole for Manager {
    const ROLE: Role = Role::Manager;
}
impl MinRole for Admin {
    const ROLE: Role = Role::Admin;
}

/// Extractor: a request bearing `Authorization: Bearer <token>` (or the
/// dashboard's session cookie, with its CSRF token on writes) whose token
/// is live and has at least role `R`. 401 without a valid token, 403 with
/// too small a role.
pub struct Auth<R: MinRole> {
    /// Who is calling.
    pub caller: Caller,
    _role: PhantomData<R>,
}

/// Pulls the bearer secret out of the `Authorization` header, if there is one.
pub fn bearer_secret(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim())
}

impl<R: MinRole> FromRequestParts<AppState> for Auth<R> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = match bearer_secret(parts) {
            Some(secret) => authenticate(state.db(), secret)
                .await?
                .ok_or_else(|| AppError::Unauthorized("unknown or revoked API token".into()))?,
            // A browser signed in to the dashboard calls the API with its
            // session cookie; anything but a read must carry the CSRF token.
            None => {
                let session = crate::server::web::session::from_headers(state.db(), &parts.headers)
                    .await?
                    .ok_or_else(|| {
                        AppError::Unauthorized(
                            "missing API token: send Authorization: Bearer <token>".into(),
                        )
                    })?;
                let safe = matches!(
                    parts.method,
                    axum::http::Method::GET | axum::http::Method::HEAD
                );
                let presented = parts
                    .headers
                    .get(crate::server::web::session::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok());
                if !safe && !session.csrf_matches(presented) {
                    return Err(AppError::Forbidden(
                        "missing or wrong X-CSRF-Token header: a request made with a dashboard session must carry its CSRF token".into(),
                    ));
                }
                session.caller
            }
        };
        if caller.role < R::ROLE {
            return Err(AppError::Forbidden(format!(
                "this endpoint needs the {} role; token {:?} has {}",
                R::ROLE,
                caller.name,
                caller.role
            )));
        }
        Ok(Self {
            caller,
            _role: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_privilege_and_parse_back() {
        assert!(Role::Admin > Role::Manager && Role::Manager > Role::Viewer);
        for role in [Role::Viewer, Role::Manager, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn secret_hash_is_hex_sha256() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
