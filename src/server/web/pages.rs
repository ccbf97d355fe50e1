//! Sign-in, sign-out, the start page, and the report page every role sees:
//! airtime per venue × campaign × day as a chart and a table, the CSV
//! download (byte for byte the API's), and per screen the verified share
//! and the audit findings.

use axum::Form;
use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sqlx::Row;

use super::session::{self, SESSION_COOKIE, SIGNIN_CSRF_COOKIE};
use super::{OrPage, Web, WebError, chart};
use crate::server::auth::Role;
use crate::server::db::get_u64;
use crate::server::reports::{self, AirtimeQuery, AirtimeRow};

/// `/`: the signed-in person's main page.
pub async fn home(web: Web) -> Response {
    let target = match &web.session {
        None => "/signin",
        Some(s) if s.caller.role >= Role::Admin => "/fleet",
        Some(s) if s.caller.role >= Role::Manager => "/playlists",
        Some(_) => "/reports",
    };
    Redirect::to(target).into_response()
}

/// Query of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct SigninQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /signin`: the token form. Its CSRF token is also set as a cookie,
/// so a form posted from another site (which cannot read it) is refused.
pub async fn signin_form(web: Web, Query(query): Query<SigninQuery>) -> Response {
    signin_page(&web, query.next.unwrap_or_default(), None, StatusCode::OK)
}

/// A `venues` row (`id, name, timezone`) as the templates show it.
pub(super) fn venue_context(row: &sqlx::any::AnyRow) -> Result<minijinja::Value, sqlx::Error> {
    Ok(minijinja::context! {
        id => row.try_get::<String, _>("id")?,
        name => row.try_get::<String, _>("name")?,
        timezone => row.try_get::<String, _>("timezone")?,
    })
}

fn signin_page(web: &Web, next: String, error: Option<String>, status: StatusCode) -> Response {
    let csrf = session::random_token();
    let mut response = web.render(
        "signin.html",
        minijinja::context! { signin_csrf => csrf, next => next, error => error },
    );
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(&session::set_cookie(
        SIGNIN_CSRF_COOKIE,
        &csrf,
        3600,
        web.secure,
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SigninForm {
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// `POST /signin`: exchanges the token for a session cookie.
pub async fn signin(
    web: Web,
    headers: axum::http::HeaderMap,
    Form(form): Form<SigninForm>,
) -> Result<Response, WebError> {
    let cookie = session::cookie(&headers, SIGNIN_CSRF_COOKIE).unwrap_or_default();
    if cookie.is_empty() || !session::same_secret(cookie, &form.csrf) {
        return Err(WebError::new(
            &web,
            StatusCode::FORBIDDEN,
            web.t("error-csrf"),
        ));
    }
    let Some((secret, session)) = session::sign_in(web.state.db(), &form.token)
        .await
        .or_page(&web)?
    else {
        return Ok(signin_page(
            &web,
            form.next,
            Some(web.t("signin-bad-token")),
            StatusCode::UNAUTHORIZED,
        ));
    };
    // Only local paths: an open redirect would let a link sign people in elsewhere.
    let next = if form.next.starts_with('/') && !form.next.starts_with("//") {
        form.next
    } else {
        "/".to_owned()
    };
    let mut response = Redirect::to(&next).into_response();
    let max_age = session::SESSION_TTL_MS / 1000;
    for cookie in [
        session::set_cookie(SESSION_COOKIE, &secret, max_age, web.secure),
        session::set_cookie(SIGNIN_CSRF_COOKIE, "", 0, web.secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    tracing::debug!(token = %session.caller.name, "session cookie set");
    Ok(response)
}

/// `POST /signout`.
pub async fn signout(web: Web) -> Result<Response, WebError> {
    if let Some(session) = &web.session {
        session::sign_out(web.state.db(), session)
            .await
            .or_page(&web)?;
    }
    let mut response = Redirect::to("/signin").into_response();
    if let Ok(value) =
        HeaderValue::from_str(&session::set_cookie(SESSION_COOKIE, "", 0, web.secure))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Filters of the report page (strings: an empty select means "all").
#[derive(Debug, Default, Deserialize)]
pub struct ReportFilters {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    venue: Option<String>,
    #[serde(default)]
    campaign: Option<String>,
}

impl ReportFilters {
    /// The report query: the last 7 days (UTC) unless dates are given.
    fn query(&self, web: &Web) -> Result<AirtimeQuery, WebError> {
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let parse = |value: &Option<String>, default: jiff::civil::Date| match value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => Ok(default),
            Some(text) => text.parse::<jiff::civil::Date>().map_err(|_| {
                WebError::new(
                    web,
                    StatusCode::BAD_REQUEST,
                    web.t_with("error-bad-date", &[("value", text.to_owned())]),
                )
            }),
        };
        let week_ago = today
            .checked_sub(jiff::Span::new().days(6))
            .unwrap_or(today);
        let nonempty = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        Ok(AirtimeQuery {
            from: parse(&self.from, week_ago)?,
            to: parse(&self.to, today)?,
            venue: nonempty(&self.venue),
            campaign: nonempty(&self.campaign),
        })
    }
}

/// Per-screen proof: how much of its airtime rests on verified records,
/// and its audit findings.
#[derive(Debug, serde::Serialize)]
struct ScreenProof {
    screen_id: String,
    venue: String,
    seconds: f64,
    verified_share: f64,
    open_findings: Vec<FindingView>,
    resolved_findings: u64,
}

#[derive(Debug, serde::Serialize)]
struct FindingView {
    kind: String,
    seq: u64,
    detail: String,
    created_at_ms: i64,
}

/// `GET /reports` (viewer).
pub async fn reports(web: Web, Query(filters): Query<ReportFilters>) -> Result<Response, Response> {
    web.require(Role::Viewer)?;
    let query = filters.query(&web).map_err(IntoResponse::into_response)?;
    let page = report_page(&web, &query)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(page)
}

async fn report_page(web: &Web, query: &AirtimeQuery) -> Result<Response, WebError> {
    let db = web.state.db();
    let rows = reports::airtime(db, query).await.or_page(web)?;
    let venues = sqlx::query("SELECT id, name, timezone FROM venues ORDER BY id")
        .fetch_all(db.pool())
        .await
        .or_page(web)?
        .iter()
        .map(venue_context)
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .or_page(web)?;
    let campaigns: Vec<String> = sqlx::query(
        "SELECT DISTINCT campaign FROM airtime_daily UNION SELECT name FROM campaigns ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .or_page(web)?
    .iter()
    .map(|row| row.try_get::<String, _>(0))
    .collect::<Result<_, _>>()
    .or_page(web)?;
    let svg = chart::airtime_svg(&rows, &web.t("chart-seconds"), |day| {
        day.parse::<jiff::civil::Date>()
            .map(|d| format!("{:02}.{:02}", d.day(), d.month()))
            .unwrap_or_else(|_| day.to_owned())
    })
    .map_err(|error| WebError::new(web, StatusCode::INTERNAL_SERVER_ERROR, error))?;
    let proofs = screen_proofs(web, query).await?;
    let totals = Totals::of(&rows);
    let csv_query = format!(
        "from={}&to={}&venue={}&campaign={}",
        query.from,
        query.to,
        super::urlencode(query.venue.as_deref().unwrap_or("")),
        super::urlencode(query.campaign.as_deref().unwrap_or("")),
    );
    Ok(web.render(
        "reports.html",
        minijinja::context! {
            rows => rows,
            from => query.from.to_string(),
            to => query.to.to_string(),
            venue => query.venue.clone().unwrap_or_default(),
            campaign => query.campaign.clone().unwrap_or_default(),
            venues => venues,
            campaigns => campaigns,
            chart_svg => minijinja::Value::from_safe_string(svg),
            proofs => proofs,
            totals => totals,
            csv_query => csv_query,
        },
    ))
}

#[derive(Debug, serde::Serialize)]
struct Totals {
    seconds: f64,
    plays: u64,
    completed_plays: u64,
    verified_share: f64,
}

impl Totals {
    fn of(rows: &[AirtimeRow]) -> Self {
        let seconds: f64 = rows.iter().map(|r| r.seconds).sum();
        let verified: f64 = rows.iter().map(|r| r.verified_seconds).sum();
        Self {
            seconds,
            plays: rows.iter().map(|r| r.plays).sum(),
            completed_plays: rows.iter().map(|r| r.completed_plays).sum(),
            verified_share: if seconds > 0.0 {
                verified / seconds
            } else {
                1.0
            },
        }
    }
}

async fn screen_proofs(web: &Web, query: &AirtimeQuery) -> Result<Vec<ScreenProof>, WebError> {
    let db = web.state.db();
    let rows = sqlx::query(
        "SELECT screen_id, venue_id, CAST(SUM(duration_ms) AS BIGINT) AS duration_ms, \
         CAST(SUM(verified_duration_ms) AS BIGINT) AS verified_ms FROM airtime_daily \
         WHERE day >= $1 AND day <= $2 AND ($3 = '' OR venue_id = $3) AND ($4 = '' OR campaign = $4) \
         GROUP BY screen_id, venue_id ORDER BY screen_id",
    )
    .bind(query.from.to_string())
    .bind(query.to.to_string())
    .bind(query.venue.as_deref().unwrap_or(""))
    .bind(query.campaign.as_deref().unwrap_or(""))
    .fetch_all(db.pool())
    .await
    .or_page(web)?;
    let findings = sqlx::query(
        "SELECT screen_id, kind, seq, detail, created_at_ms, resolved_at_ms FROM audit_findings ORDER BY screen_id, seq, kind",
    )
    .fetch_all(db.pool())
    .await
    .or_page(web)?;
    let mut proofs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for row in &rows {
        let screen_id: String = row.try_get("screen_id").or_page(web)?;
        let duration = get_u64(row, "duration_ms").or_page(web)?;
        let verified = get_u64(row, "verified_ms").or_page(web)?;
        seen.insert(screen_id.clone());
        proofs.push(ScreenProof {
            venue: row.try_get("venue_id").or_page(web)?,
            seconds: duration as f64 / 1000.0,
            verified_share: if duration == 0 {
                1.0
            } else {
                verified as f64 / duration as f64
            },
            open_findings: Vec::new(),
            resolved_findings: 0,
            screen_id,
        });
    }
    // Screens with findings but no airtime in range still show their findings.
    for row in &findings {
        let screen_id: String = row.try_get("screen_id").or_page(web)?;
        if query.venue.is_none() && seen.insert(screen_id.clone()) {
            proofs.push(ScreenProof {
                screen_id: screen_id.clone(),
                venue: String::new(),
                seconds: 0.0,
                verified_share: 1.0,
                open_findings: Vec::new(),
                resolved_findings: 0,
            });
        }
        let Some(proof) = proofs.iter_mut().find(|p| p.screen_id == screen_id) else {
            continue;
        };
        let resolved: Option<i64> = row.try_get("resolved_at_ms").or_page(web)?;
        if resolved.is_some() {
            proof.resolved_findings += 1;
        } else if proof.open_findings.len() < 20 {
            proof.open_findings.push(FindingView {
                kind: row.try_get("kind").or_page(web)?,
                seq: get_u64(row, "seq").or_page(web)?,
                detail: row.try_get("detail").or_page(web)?,
                created_at_ms: row.try_get("created_at_ms").or_page(web)?,
            });
        }
    }
    Ok(proofs)
}

/// `GET /reports.csv` (viewer): the same bytes as
/// `GET /api/v1/reports/airtime?format=csv` and `ekran report --format csv`.
pub async fn reports_csv(
    web: Web,
    Query(filters): Query<ReportFilters>,
) -> Result<Response, Response> {
    web.require(Role::Viewer)?;
    let query = filters.query(&web).map_err(IntoResponse::into_response)?;
    let rows = reports::airtime(web.state.db(), &query)
        .await
        .or_page(&web)
        .map_err(IntoResponse::into_response)?;
    let csv = reports::to_csv(&rows)
        .or_page(&web)
        .map_err(IntoResponse::into_response)?;
    let file_name = format!("ekran-airtime-{}-{}.csv", query.from, query.to);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        csv,
    )
        .into_response())
}
