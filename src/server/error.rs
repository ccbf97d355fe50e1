//! The one error type every HTTP handler returns, and the JSON body
//! extractor whose rejections use it: clients get a status and a message
//! naming what was wrong with their request; server faults are logged with
//! their cause and answered with a generic 500.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::db::DbError;

/// A failed request. The message of every 4xx variant is sent to the client.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed or invalid input (400).
    #[error("{0}")]
    BadRequest(String),
    /// Missing, unknown or revoked credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the needed role (403).
    #[error("{0}")]
    Forbidden(String),
    /// An id that names nothing (404).
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with what is stored (409).
    #[error("{0}")]
    Conflict(String),
    /// A single-use or short-lived thing that is no longer valid (410).
    #[error("{0}")]
    Gone(String),
    /// The body is over the configured limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body's type is not one the endpoint takes (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A byte range outside the file (416); carries the file length.
    #[error("requested range is outside the {0}-byte file")]
    RangeNotSatisfiable(u64),
    /// An extractor rejection, passed on with its status.
    #[error("{1}")]
    Rejected(StatusCode, String),
    /// Storage failure (500, logged).
    #[error(transparent)]
    Db(#[from] DbError),
    /// Any other server-side failure (500, logged).
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// Wraps an unexpected failure as a 500 with its description for the log.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        Self::Internal(what.to_string())
    }

    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Rejected(status, _) => *status,
            Self::Db(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        Self::Db(DbError::Query(error))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "internal server error (see the server log)".to_owned()
        } else {
            self.to_string()
        };
        let mut response =
            (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        match self {
            Self::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ekran\""),
                );
            }
            Self::RangeNotSatisfiable(len) => {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
            }
            _ => {}
        }
        response
    }
}

/// `axum::Json` whose rejections (wrong content type, malformed JSON,
/// missing fields) become [`AppError`]s with serde's description of the problem.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(AppError::UnsupportedMediaType(
                "expected a JSON body with Content-Type: application/json".into(),
            )),
            Err(rejection) => Err(AppError::Rejected(
                rejection.status(),
                rejection.body_text(),
            )),
        }
    }
}

/// `axum::extract::Query` whose rejections (unknown or malformed
/// parameters) become [`AppError`]s.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(AppError::BadRequest(rejection.body_text())),
        }
    }
}
