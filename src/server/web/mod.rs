//! The web dashboard served by `ekran server` at `/`: server-rendered HTML
//! (minijinja templates embedded in the binary), Fluent translations, one
//! stylesheet and one small script, no build step.
//!
//! # Layout
//! - [`i18n`]: languages, translations, number and date formatting.
//! - [`session`]: sign-in sessions, cookies, CSRF tokens.
//! - [`chart`]: the report chart, drawn server-side as SVG (plotters).
//! - [`pages`]: sign-in and the report page (every role).
//! - [`fleet`]: screens, pairing approvals, screenshots, tokens (admin).
//! - [`venues`]: venues, their time zones, screens' venues and groups (admin).
//! - [`library`]: the media library (manager).
//! - [`campaigns`]: playlist editor, schedule preview, publishing (manager).
//! - [`playlist_form`]: the structured playlist form that writes the TOML (manager).
//!
//! Every page goes through [`Web`] (the request's language and session)
//! and [`Web::render`]; every POST passes [`csrf_guard`] first, so no form
//! can be posted without its session's CSRF token.

pub mod campaigns;
pub mod chart;
pub mod fleet;
pub mod i18n;
pub mod library;
pub mod pages;
pub mod playlist_form;
pub mod session;
pub mod venues;

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use fluent_templates::LanguageIdentifier;
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, State};

use super::AppState;
use super::auth::Role;
use super::db::DbError;
use super::error::AppError;
use session::Session;

/// The stylesheet, served at `/static/app.css`.
const APP_CSS: &str = include_str!("static/app.css");
/// The upload-progress and file-loading script, served at `/static/app.js`.
const APP_JS: &str = include_str!("static/app.js");
/// Largest form body the CSRF check reads (the playlist editor's TOML).
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("error.html", include_str!("templates/error.html")),
    ("signin.html", include_str!("templates/signin.html")),
    ("reports.html", include_str!("templates/reports.html")),
    ("fleet.html", include_str!("templates/fleet.html")),
    ("tokens.html", include_str!("templates/tokens.html")),
    ("media.html", include_str!("templates/media.html")),
    ("playlists.html", include_str!("templates/playlists.html")),
    ("editor.html", include_str!("templates/editor.html")),
    ("outcome.html", include_str!("templates/outcome.html")),
    (
        "playlist_form.html",
        include_str!("templates/playlist_form.html"),
    ),
    (
        "playlist_form_unsupported.html",
        include_str!("templates/playlist_form_unsupported.html"),
    ),
    ("venues.html", include_str!("templates/venues.html")),
];

/// The template environment: built once, with the translation function
/// `t(key, **args)` and the formatting filters `num`, `pct`, `bytes`,
/// `date` and `when`, all in the language the page's context names in `lang`.
static TEMPLATES_ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        if let Err(error) = env.add_template(name, source) {
            // A broken embedded template is a build mistake the tests catch.
            tracing::error!(template = name, %error, "dashboard template does not parse");
        }
    }
    env.add_function("t", translate);
    env.add_filter(
        "num",
        |state: &State, value: f64, decimals: Option<usize>| {
            i18n::number(&page_lang(state), value, decimals.unwrap_or(0))
        },
    );
    env.add_filter("pct", |state: &State, value: f64| {
        i18n::percent(&page_lang(state), value)
    });
    env.add_filter("bytes", |state: &State, value: u64| {
        i18n::bytes(&page_lang(state), value)
    });
    env.add_filter(
        "date",
        |state: &State, value: String| match value.parse::<jiff::civil::Date>() {
            Ok(day) => i18n::date(&page_lang(state), day),
            Err(_) => value,
        },
    );
    env.add_filter(
        "when",
        |state: &State, millis: i64, zone: Option<String>| -> String {
            let zone = zone
                .and_then(|name| jiff::tz::TimeZone::get(&name).ok())
                .unwrap_or(jiff::tz::TimeZone::UTC);
            match jiff::Timestamp::from_millisecond(millis) {
                Ok(at) => i18n::date_time(&page_lang(state), at, &zone),
                Err(_) => millis.to_string(),
            }
        },
    );
    env
});

fn page_lang(state: &State) -> LanguageIdentifier {
    state
        .lookup("lang")
        .and_then(|value| value.as_str().and_then(i18n::find))
        .unwrap_or_else(i18n::fallback)
}

/// `t("key", name=value, …)`: the message in the page's language.
fn translate(state: &State, key: &str, kwargs: Kwargs) -> Result<String, minijinja::Error> {
    let lang = page_lang(state);
    let mut args = i18n::Args::new();
    for name in kwargs.args() {
        let value: Value = kwargs.get(name)?;
        // Numbers stay numbers, so Fluent can pick plural forms by them.
        let fluent = match f64::try_from(value.clone()) {
            Ok(n) if value.kind() == ValueKind::Number => n.into(),
            _ => value.to_string().into(),
        };
        args.insert(name.to_owned().into(), fluent);
    }
    kwargs.assert_all_used()?;
    Ok(if args.is_empty() {
        i18n::text(&lang, key)
    } else {
        i18n::text_with(&lang, key, &args)
    })
}

/// A failed page: rendered as an HTML page in the request's language.
#[derive(Debug)]
pub struct WebError {
    status: StatusCode,
    message: String,
    lang: LanguageIdentifier,
}

impl WebError {
    /// An error with a status and a message already in the page's language.
    pub fn new(web: &Web, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            lang: web.lang.clone(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(error = %self.message, "dashboard page failed");
        }
        let message = if self.status.is_server_error() {
            i18n::text(&self.lang, "error-internal")
        } else {
            self.message
        };
        let context = minijinja::context! {
            lang => self.lang.to_string(),
            status => self.status.as_u16(),
            message => message,
            languages => language_list(),
        };
        let body = TEMPLATES_ENV
            .get_template("error.html")
            .and_then(|template| template.render(context))
            .unwrap_or_else(|_| format!("{} {message}", self.status.as_u16()));
        (self.status, Html(body)).into_response()
    }
}

/// The page's view of an API-side failure (its 4xx message is shown as is).
pub trait OrPage<T> {
    /// Converts the error into a page in `web`'s language.
    fn or_page(self, web: &Web) -> Result<T, WebError>;
}

impl<T> OrPage<T> for Result<T, AppError> {
    fn or_page(self, web: &Web) -> Result<T, WebError> {
        self.map_err(|error| WebError::new(web, error.status(), error.to_string()))
    }
}

impl<T> OrPage<T> for Result<T, DbError> {
    fn or_page(self, web: &Web) -> Result<T, WebError> {
        self.map_err(|error| {
            WebError::new(web, StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
        })
    }
}

impl<T> OrPage<T> for Result<T, sqlx::Error> {
    fn or_page(self, web: &Web) -> Result<T, WebError> {
        self.map_err(|error| {
            WebError::new(web, StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
        })
    }
}

/// What every page knows about its request: the state, the language, the
/// session (if signed in), the path, and whether it came over TLS.
pub struct Web {
    /// Shared server state.
    pub state: AppState,
    /// The negotiated language.
    pub lang: LanguageIdentifier,
    /// The signed-in session, if any.
    pub session: Option<Session>,
    /// Request path (for the nav's current page and sign-in redirects).
    pub path: String,
    /// Whether cookies must be `Secure`.
    pub secure: bool,
    /// `Set-Cookie` to send with the page (the language picked with `?lang=`).
    lang_cookie: Option<String>,
}

impl FromRequestParts<AppState> for Web {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let query_lang = parts.uri.query().and_then(|query| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == "lang")
                .map(|(_, value)| value.to_owned())
        });
        let lang = i18n::negotiate(
            query_lang.as_deref(),
            session::cookie(&parts.headers, i18n::LANG_COOKIE),
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        let secure = session::is_secure(parts);
        let lang_cookie = query_lang.is_some().then(|| {
            session::set_cookie(
                i18n::LANG_COOKIE,
                &lang.to_string(),
                365 * 24 * 3600,
                secure,
            )
        });
        let session = session::from_headers(state.db(), &parts.headers)
            .await
            .map_err(|error| WebError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: error.to_string(),
                lang: lang.clone(),
            })?;
        Ok(Self {
            state: state.clone(),
            lang,
            session,
            path: parts.uri.path().to_owned(),
            secure,
            lang_cookie,
        })
    }
}

impl Web {
    /// The message `key` in this page's language.
    pub fn t(&self, key: &str) -> String {
        i18n::text(&self.lang, key)
    }

    /// The message `key` with arguments.
    pub fn t_with(&self, key: &str, args: &[(&'static str, String)]) -> String {
        let args: i18n::Args = args
            .iter()
            .map(|(name, value)| ((*name).into(), value.clone().into()))
            .collect();
        i18n::text_with(&self.lang, key, &args)
    }

    /// The signed-in session with at least `role`: otherwise a redirect to
    /// sign-in (not signed in) or a 403 page (too small a role).
    // The rejection is the finished response the handler returns as is;
    // boxing it would only add an allocation to every refused page.
    #[allow(clippy::result_large_err)]
    pub fn require(&self, role: Role) -> Result<&Session, Response> {
        let Some(session) = &self.session else {
            let target = format!("/signin?next={}", urlencode(&self.path));
            return Err(Redirect::to(&target).into_response());
        };
        if session.caller.role < role {
            let message = self.t_with(
                "error-forbidden-role",
                &[
                    ("needed", self.t(&format!("role-{}", role.as_str()))),
                    (
                        "has",
                        self.t(&format!("role-{}", session.caller.role.as_str())),
                    ),
                ],
            );
            return Err(WebError::new(self, StatusCode::FORBIDDEN, message).into_response());
        }
        Ok(session)
    }

    /// Renders `template` with `context` plus the layout's own values.
    pub fn render(&self, template: &str, context: Value) -> Response {
        let layout = minijinja::context! {
            lang => self.lang.to_string(),
            languages => language_list(),
            path => self.path.clone(),
            user => self.session.as_ref().map(|s| minijinja::context! {
                name => s.caller.name.clone(),
                role => s.caller.role.as_str(),
                is_manager => s.caller.role >= Role::Manager,
                is_admin => s.caller.role >= Role::Admin,
            }),
            csrf => self.session.as_ref().map(|s| s.csrf.clone()),
        };
        let rendered = TEMPLATES_ENV
            .get_template(template)
            .and_then(|t| t.render(minijinja::context! { ..context, ..layout }));
        match rendered {
            Ok(html) => {
                let mut response = Html(html).into_response();
                if let Some(cookie) = &self.lang_cookie
                    && let Ok(value) = HeaderValue::from_str(cookie)
                {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
                response
            }
            Err(error) => WebError::new(
                self,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("template {template}: {error:#}"),
            )
            .into_response(),
        }
    }
}

/// The languages for the language switcher: tag and own name.
fn language_list() -> Vec<Value> {
    i18n::available()
        .iter()
        .map(|lang| {
            minijinja::context! {
                tag => lang.to_string(),
                name => i18n::text(lang, "language-name"),
            }
        })
        .collect()
}

/// Every IANA time zone name the server knows, sorted: the zone lists of
/// the venue and playlist forms (read from the zone database once).
pub fn zone_names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|name| name.to_string())
            .collect();
        names.sort();
        names
    })
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The dashboard's routes, merged into the server's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/signin", get(pages::signin_form).post(pages::signin))
        .route("/signout", post(pages::signout))
        .route("/reports", get(pages::reports))
        .route("/reports.csv", get(pages::reports_csv))
        .route("/fleet", get(fleet::fleet))
        .route("/fleet/approve", post(fleet::approve))
        .route("/fleet/screenshot", post(fleet::request_screenshot))
        .route("/tokens", get(fleet::tokens).post(fleet::create_token))
        .route("/tokens/revoke", post(fleet::revoke_token))
        .route("/venues", get(venues::venues).post(venues::create_venue))
        .route("/venues/edit", post(venues::edit_venue))
        .route("/venues/delete", post(venues::delete_venue))
        .route("/venues/screen", post(venues::edit_screen))
        .route("/media", get(library::media))
        .route("/media/name", post(library::name_media))
        .route("/playlists", get(campaigns::playlists))
        .route(
            "/playlists/edit",
            get(campaigns::editor).post(campaigns::submit),
        )
        .route(
            "/playlists/form",
            get(playlist_form::form).post(playlist_form::submit),
        )
        .route(
            "/static/app.css",
            get(|| static_asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route(
            "/static/app.js",
            get(|| static_asset("text/javascript; charset=utf-8", APP_JS)),
        )
}

async fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Refuses every dashboard POST whose form (or `X-CSRF-Token` header) does
/// not carry the session's CSRF token, before any handler runs. Sign-in,
/// where no session exists yet, checks its own token against a cookie.
pub async fn csrf_guard(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST
        || request.uri().path().starts_with("/api/")
        || request.uri().path() == "/signin"
    {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let lang = i18n::negotiate(
        None,
        session::cookie(&parts.headers, i18n::LANG_COOKIE),
        parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let refuse = |status: StatusCode, key: &str| {
        WebError {
            status,
            message: i18n::text(&lang, key),
            lang: lang.clone(),
        }
        .into_response()
    };
    let session = match session::from_headers(state.db(), &parts.headers).await {
        Ok(Some(session)) => session,
        // Not signed in: the page itself sends the browser to sign-in.
        Ok(None) => return next.run(Request::from_parts(parts, body)).await,
        Err(error) => {
            tracing::error!(%error, "cannot read the dashboard session");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "error-internal");
        }
    };
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "error-form-too-large"),
    };
    let from_header = parts
        .headers
        .get(session::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let from_form = form_field(&bytes, session::CSRF_FIELD);
    if !session.csrf_matches(from_header.as_deref().or(from_form.as_deref())) {
        tracing::warn!(path = %parts.uri.path(), token = %session.caller.name, "dashboard POST without its CSRF token refused");
        return refuse(StatusCode::FORBIDDEN, "error-csrf");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// One field of an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(
            form_field(b"a=1&csrf=x%2By&b=", "csrf").as_deref(),
            Some("x+y")
        );
        assert_eq!(form_field(b"a=1", "csrf"), None);
    }
}
