//! The venues page (admin): every venue with its IANA time zone, its local
//! time now and its screens; creating, renaming, re-zoning and deleting
//! venues; moving a screen to another venue and setting its groups; and
//! the groups (what playlists target) with their screens.
//!
//! Every change goes through the same functions as the JSON API
//! (`api::admin::{insert_venue, change_venue, remove_venue, patch_screen}`),
//! so the page and the API check and store exactly alike. A refused change
//! re-renders the page with the API's message and the form as typed.

use axum::Form;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{OrPage, Web, WebError, zone_names};
use crate::server::api::admin::{self, ScreenPatch, load_screens};
use crate::server::auth::Role;
use crate::server::db::now_ms;
use crate::server::error::AppError;

/// A screen as the venue and group lists show it.
#[derive(Debug, Clone, Serialize)]
struct ScreenEntry {
    id: String,
    name: String,
    venue: String,
    groups: Vec<String>,
}

/// A venue with its screens.
#[derive(Debug, Serialize)]
struct VenueEntry {
    id: String,
    name: String,
    timezone: String,
    screens: Vec<ScreenEntry>,
}

/// A group with its member screens.
#[derive(Debug, Serialize)]
struct GroupEntry {
    id: String,
    name: String,
    screens: Vec<ScreenEntry>,
}

/// What a refused form leaves on the page: the message, which form it came
/// from (`create`, `venue-<id>` or `screen-<id>`), and the create form's
/// values as typed.
#[derive(Debug, Default, Serialize)]
struct Refusal {
    message: String,
    form: String,
    id: String,
    name: String,
    timezone: String,
}

/// `GET /venues` (admin).
pub async fn venues(web: Web) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    venues_page(&web, None, StatusCode::OK)
        .await
        .map_err(IntoResponse::into_response)
}

async fn venues_page(
    web: &Web,
    refusal: Option<Refusal>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let db = web.state.db();
    let screens: Vec<ScreenEntry> = load_screens(db, None)
        .await
        .or_page(web)?
        .into_iter()
        .map(|screen| ScreenEntry {
            id: screen.id,
            name: screen.name,
            venue: screen.venue,
            groups: screen.groups,
        })
        .collect();
    let venues = sqlx::query("SELECT id, name, timezone FROM venues ORDER BY id")
        .fetch_all(db.pool())
        .await
        .or_page(web)?
        .iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            Ok(VenueEntry {
                screens: screens.iter().filter(|s| s.venue == id).cloned().collect(),
                name: row.try_get("name")?,
                timezone: row.try_get("timezone")?,
                id,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .or_page(web)?;
    let groups = sqlx::query("SELECT id, name FROM screen_groups ORDER BY id")
        .fetch_all(db.pool())
        .await
        .or_page(web)?
        .iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            Ok(GroupEntry {
                screens: screens
                    .iter()
                    .filter(|s| s.groups.contains(&id))
                    .cloned()
                    .collect(),
                name: row.try_get("name")?,
                id,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .or_page(web)?;
    let mut response = web.render(
        "venues.html",
        minijinja::context! {
            venues => venues,
            groups => groups,
            zones => zone_names(),
            now_ms => now_ms(),
            refusal => refusal,
        },
    );
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    Ok(response)
}

/// The outcome of a form: back to the page on success, or the page again
/// with the refusal and the API's status.
async fn finish(web: &Web, outcome: Result<(), AppError>, refusal: Refusal) -> Response {
    match outcome {
        Ok(()) => Redirect::to("/venues").into_response(),
        Err(error) => {
            let status = error.status();
            if status.is_server_error() {
                return WebError::new(web, status, error.to_string()).into_response();
            }
            tracing::info!(form = %refusal.form, %error, "venue page form refused");
            let refusal = Refusal {
                message: error.to_string(),
                ..refusal
            };
            venues_page(web, Some(refusal), status)
                .await
                .unwrap_or_else(IntoResponse::into_response)
        }
    }
}

/// `Some(trimmed)` unless blank.
fn nonempty(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The new-venue and edit-venue forms.
#[derive(Debug, Deserialize)]
pub struct VenueForm {
    id: String,
    #[serde(default)]
    name: String,
    timezone: String,
}

/// `POST /venues` (admin): creates a venue (the name defaults to the id).
pub async fn create_venue(web: Web, Form(form): Form<VenueForm>) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    let id = form.id.trim();
    let name = nonempty(&form.name);
    let outcome = admin::insert_venue(web.state.db(), id, name.as_deref(), form.timezone.trim())
        .await
        .map(drop);
    let refusal = Refusal {
        form: "create".into(),
        id: form.id.clone(),
        name: form.name.clone(),
        timezone: form.timezone.clone(),
        ..Refusal::default()
    };
    Ok(finish(&web, outcome, refusal).await)
}

/// `POST /venues/edit` (admin): renames a venue (a blank name keeps it)
/// and sets its time zone.
pub async fn edit_venue(web: Web, Form(form): Form<VenueForm>) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    let outcome = admin::change_venue(
        web.state.db(),
        &form.id,
        nonempty(&form.name),
        form.timezone.trim(),
    )
    .await
    .map(drop);
    let refusal = Refusal {
        form: format!("venue-{}", form.id),
        ..Refusal::default()
    };
    Ok(finish(&web, outcome, refusal).await)
}

/// The delete-venue form.
#[derive(Debug, Deserialize)]
pub struct DeleteVenueForm {
    id: String,
}

/// `POST /venues/delete` (admin): deletes a venue without screens.
pub async fn delete_venue(
    web: Web,
    Form(form): Form<DeleteVenueForm>,
) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    let outcome = admin::remove_venue(web.state.db(), &form.id).await;
    let refusal = Refusal {
        form: format!("venue-{}", form.id),
        ..Refusal::default()
    };
    Ok(finish(&web, outcome, refusal).await)
}

/// The screen form: its venue and its groups.
#[derive(Debug, Deserialize)]
pub struct ScreenForm {
    screen: String,
    venue: String,
    /// Comma- or space-separated group ids; blank leaves the screen in no group.
    #[serde(default)]
    groups: String,
}

/// Group ids from a comma- or space-separated list, each once, in order.
fn group_list(text: &str) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for group in text.split([',', ' ']).map(str::trim) {
        if !group.is_empty() && !groups.iter().any(|known| known == group) {
            groups.push(group.to_owned());
        }
    }
    groups
}

/// `POST /venues/screen` (admin): moves a screen to a venue and replaces
/// its groups, as `PATCH /api/v1/screens/{id}` does.
pub async fn edit_screen(web: Web, Form(form): Form<ScreenForm>) -> Result<Response, Response> {
    web.require(Role::Admin)?;
    let patch = ScreenPatch {
        venue: Some(form.venue.trim().to_owned()),
        groups: Some(group_list(&form.groups)),
        ..ScreenPatch::default()
    };
    let outcome = admin::patch_screen(&web.state, &form.screen, &patch)
        .await
        .map(drop);
    let refusal = Refusal {
        form: format!("screen-{}", form.screen),
        ..Refusal::default()
    };
    Ok(finish(&web, outcome, refusal).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_lists_are_split_trimmed_and_deduplicated() {
        assert_eq!(
            group_list(" lobby, supermarkets  lobby,,"),
            vec!["lobby".to_owned(), "supermarkets".to_owned()]
        );
        assert!(group_list(" , ").is_empty());
    }

    #[test]
    fn the_zone_list_holds_iana_names() {
        let zones = zone_names();
        assert!(zones.iter().any(|zone| zone == "Europe/Kyiv"), "{zones:?}");
        assert!(zones.windows(2).all(|pair| pair[0] <= pair[1]));
    }
}
