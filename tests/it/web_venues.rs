//! The dashboard's venues page over plain HTTP, on both backends: creating,
//! editing and deleting venues, moving screens and setting their groups,
//! each refusal named on the page with nothing half-stored, every change
//! seen through the JSON API, and the admin role and CSRF token that every
//! form needs.

use ekran::server::auth::Role;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::Value;

use crate::both_backends;
use crate::server_support::{Backend, TestDevice, TestServer, error_message};
use crate::web_support::{WebSession, api_json, assert_forms_refused_without_csrf, unescape_html};

both_backends!(
    venues_are_created_edited_and_deleted_from_the_page,
    screens_move_and_change_groups_from_the_page,
    venue_forms_need_the_admin_role_and_csrf,
);

/// Posts a form and expects the page back with `status` and `needle` in
/// the refusal; returns the page.
async fn refused(
    admin: &WebSession,
    server: &TestServer,
    path: &str,
    fields: &[(&str, &str)],
    status: StatusCode,
    needle: &str,
) -> String {
    let response = admin.post_form(server, path, fields, true).await;
    let got = response.status();
    let html = unescape_html(&response.text().await.unwrap());
    assert_eq!(got, status, "{path} {fields:?}: {html}");
    let alert = html
        .split("id=\"venues-error\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no refusal on the page for {path} {fields:?}: {html}"));
    assert!(
        alert.contains(needle),
        "{needle:?} not in the refusal: {alert}"
    );
    html
}

/// Posts a form and expects the redirect back to the page.
async fn accepted(admin: &WebSession, server: &TestServer, path: &str, fields: &[(&str, &str)]) {
    let response = admin.post_form(server, path, fields, true).await;
    let status = response.status();
    let location = response.headers().get(LOCATION).cloned();
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::SEE_OTHER, "{path} {fields:?}: {html}");
    assert_eq!(location.unwrap(), "/venues");
}

/// A page's HTML, entities decoded.
async fn page(session: &WebSession, server: &TestServer, path: &str) -> String {
    unescape_html(&session.get(server, path).await.text().await.unwrap())
}

async fn venue_ids(server: &TestServer) -> Vec<String> {
    api_json(server, &server.admin, "/api/v1/venues")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|venue| venue["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn venues_are_created_edited_and_deleted_from_the_page(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = WebSession::sign_in(&server, &server.admin).await;

    let html = page(&admin, &server, "/venues").await;
    assert!(html.contains("No venues yet."), "{html}");
    // The zone list offers the IANA names.
    assert!(html.contains("<option value=\"Europe/Kyiv\">"), "{html}");

    accepted(
        &admin,
        &server,
        "/venues",
        &[
            ("id", "mall-1"),
            ("name", "Mall One"),
            ("timezone", "Asia/Tokyo"),
        ],
    )
    .await;
    let venue = api_json(&server, &server.admin, "/api/v1/venues/mall-1").await;
    assert_eq!(venue["name"], "Mall One");
    assert_eq!(venue["timezone"], "Asia/Tokyo");
    // A blank name is the id, as in the API.
    accepted(
        &admin,
        &server,
        "/venues",
        &[("id", "kiosk-2"), ("name", " "), ("timezone", "UTC")],
    )
    .await;
    assert_eq!(
        api_json(&server, &server.admin, "/api/v1/venues/kiosk-2").await["name"],
        "kiosk-2"
    );

    // The page lists it with its local time in its own zone (Tokyo has no DST).
    let html = page(&admin, &server, "/venues").await;
    let card = html.split("id=\"venue-mall-1\"").nth(1).unwrap();
    let card = card.split("</article>").next().unwrap();
    assert!(
        card.contains("Mall One") && card.contains("Asia/Tokyo"),
        "{card}"
    );
    let local = card.split("class=\"local-time\">").nth(1).unwrap();
    assert!(
        local.split("</dd>").next().unwrap().ends_with(" JST"),
        "{local}"
    );
    assert!(card.contains("no screens"), "{card}");

    // Refusals name the problem, keep what was typed, store nothing.
    let html = refused(
        &admin,
        &server,
        "/venues",
        &[
            ("id", "mall-2"),
            ("name", "Mall Two"),
            ("timezone", "Mars/Olympus_Mons"),
        ],
        StatusCode::BAD_REQUEST,
        "unknown time zone",
    )
    .await;
    assert!(html.contains("Mars/Olympus_Mons") && html.contains("value=\"Mall Two\""));
    refused(
        &admin,
        &server,
        "/venues",
        &[("id", "../etc"), ("timezone", "UTC")],
        StatusCode::BAD_REQUEST,
        "invalid venue id",
    )
    .await;
    refused(
        &admin,
        &server,
        "/venues",
        &[("id", "mall-1"), ("name", "Other"), ("timezone", "UTC")],
        StatusCode::CONFLICT,
        "already exists",
    )
    .await;
    assert_eq!(venue_ids(&server).await, ["kiosk-2", "mall-1"]);
    let venue = api_json(&server, &server.admin, "/api/v1/venues/mall-1").await;
    assert_eq!(
        (venue["name"].as_str(), venue["timezone"].as_str()),
        (Some("Mall One"), Some("Asia/Tokyo"))
    );

    // Edit: name and zone; a bad zone or an unknown venue changes nothing.
    accepted(
        &admin,
        &server,
        "/venues/edit",
        &[
            ("id", "mall-1"),
            ("name", "Mall Uno"),
            ("timezone", "America/Sao_Paulo"),
        ],
    )
    .await;
    refused(
        &admin,
        &server,
        "/venues/edit",
        &[
            ("id", "mall-1"),
            ("name", "Broken"),
            ("timezone", "Europe/Atlantis"),
        ],
        StatusCode::BAD_REQUEST,
        "Europe/Atlantis",
    )
    .await;
    refused(
        &admin,
        &server,
        "/venues/edit",
        &[("id", "nowhere"), ("name", "x"), ("timezone", "UTC")],
        StatusCode::NOT_FOUND,
        "unknown venue",
    )
    .await;
    let venue = api_json(&server, &server.admin, "/api/v1/venues/mall-1").await;
    assert_eq!(venue["name"], "Mall Uno");
    assert_eq!(venue["timezone"], "America/Sao_Paulo");

    // Delete a venue without screens.
    accepted(&admin, &server, "/venues/delete", &[("id", "kiosk-2")]).await;
    assert_eq!(venue_ids(&server).await, ["mall-1"]);
    refused(
        &admin,
        &server,
        "/venues/delete",
        &[("id", "kiosk-2")],
        StatusCode::NOT_FOUND,
        "unknown venue",
    )
    .await;
    server.stop().await;
}

/// `(venue, groups)` of a screen as `GET /api/v1/screens` shows it.
fn placement(screens: &Value, id: &str) -> (String, Vec<String>) {
    let screen = screens
        .as_array()
        .unwrap()
        .iter()
        .find(|screen| screen["id"] == id)
        .unwrap_or_else(|| panic!("screen {id} not listed: {screens}"));
    let groups = screen["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group.as_str().unwrap().to_owned())
        .collect();
    (screen["venue"].as_str().unwrap().to_owned(), groups)
}

async fn screens_move_and_change_groups_from_the_page(backend: Backend) {
    let server = TestServer::start(backend).await;
    TestDevice::enroll_approved(&server, "shop-a", &["lobby"], "scr-1").await;
    TestDevice::enroll_approved(&server, "shop-a", &["lobby", "tills"], "scr-2").await;
    let admin = WebSession::sign_in(&server, &server.admin).await;
    accepted(
        &admin,
        &server,
        "/venues",
        &[("id", "shop-b"), ("timezone", "Europe/Kyiv")],
    )
    .await;

    // The venue lists its screens with their groups; the groups list their screens.
    let html = page(&admin, &server, "/venues").await;
    let card = html.split("id=\"venue-shop-a\"").nth(1).unwrap();
    let card = card.split("</article>").next().unwrap();
    assert!(
        card.contains("2 screens")
            && card.contains("id=\"screen-scr-1\"")
            && card.contains("id=\"screen-scr-2\""),
        "{card}"
    );
    assert!(card.contains("value=\"lobby, tills\""), "{card}");
    let tills = html
        .split("id=\"group-tills\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        tills.contains("scr-2") && !tills.contains("scr-1"),
        "{tills}"
    );

    // A venue with screens is not deleted; the refusal names them (page and API alike).
    refused(
        &admin,
        &server,
        "/venues/delete",
        &[("id", "shop-a")],
        StatusCode::CONFLICT,
        "scr-1, scr-2",
    )
    .await;
    let response = server
        .client
        .delete(server.url("/api/v1/venues/shop-a"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(error_message(response).await.contains("scr-1, scr-2"));
    assert_eq!(venue_ids(&server).await, ["shop-a", "shop-b"]);

    // Move a screen and replace its groups; the API sees it.
    accepted(
        &admin,
        &server,
        "/venues/screen",
        &[
            ("screen", "scr-1"),
            ("venue", "shop-b"),
            ("groups", "windows, lobby windows"),
        ],
    )
    .await;
    let screens = api_json(&server, &server.admin, "/api/v1/screens").await;
    assert_eq!(
        placement(&screens, "scr-1"),
        (
            "shop-b".to_owned(),
            vec!["lobby".to_owned(), "windows".to_owned()]
        )
    );
    let html = page(&admin, &server, "/venues").await;
    let windows = html
        .split("id=\"group-windows\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        windows.contains("scr-1") && windows.contains("(shop-b)"),
        "{windows}"
    );

    // A bad group id, an unknown venue or screen: refused, nothing stored,
    // not even the good group named beside the bad one.
    refused(
        &admin,
        &server,
        "/venues/screen",
        &[
            ("screen", "scr-2"),
            ("venue", "shop-b"),
            ("groups", "fresh, bad/id"),
        ],
        StatusCode::BAD_REQUEST,
        "invalid group id",
    )
    .await;
    refused(
        &admin,
        &server,
        "/venues/screen",
        &[
            ("screen", "scr-2"),
            ("venue", "nowhere"),
            ("groups", "fresh"),
        ],
        StatusCode::NOT_FOUND,
        "unknown venue",
    )
    .await;
    refused(
        &admin,
        &server,
        "/venues/screen",
        &[
            ("screen", "scr-9"),
            ("venue", "shop-b"),
            ("groups", "fresh"),
        ],
        StatusCode::NOT_FOUND,
        "unknown screen",
    )
    .await;
    let screens = api_json(&server, &server.admin, "/api/v1/screens").await;
    assert_eq!(
        placement(&screens, "scr-2"),
        (
            "shop-a".to_owned(),
            vec!["lobby".to_owned(), "tills".to_owned()]
        )
    );
    let groups = api_json(&server, &server.admin, "/api/v1/groups").await;
    assert!(!groups.to_string().contains("fresh"), "{groups}");

    // The API's PATCH checks every group id before storing any, like the page.
    let response = server
        .client
        .patch(server.url("/api/v1/screens/scr-2"))
        .bearer_auth(&server.admin)
        .json(&serde_json::json!({ "groups": ["fresh", "bad/id"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let groups = api_json(&server, &server.admin, "/api/v1/groups").await;
    assert!(!groups.to_string().contains("fresh"), "{groups}");

    // Blank groups: the screen leaves every group; the emptied group stays listed.
    accepted(
        &admin,
        &server,
        "/venues/screen",
        &[("screen", "scr-2"), ("venue", "shop-a"), ("groups", "")],
    )
    .await;
    let screens = api_json(&server, &server.admin, "/api/v1/screens").await;
    assert_eq!(placement(&screens, "scr-2"), ("shop-a".to_owned(), vec![]));
    let html = page(&admin, &server, "/venues").await;
    let tills = html
        .split("id=\"group-tills\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(tills.contains("no screens"), "{tills}");
    server.stop().await;
}

async fn venue_forms_need_the_admin_role_and_csrf(backend: Backend) {
    let server = TestServer::start(backend).await;
    TestDevice::enroll_approved(&server, "shop-a", &["lobby"], "scr-1").await;
    let forms: &[(&str, &[(&str, &str)])] = &[
        ("/venues", &[("id", "new-1"), ("timezone", "UTC")]),
        (
            "/venues/edit",
            &[("id", "shop-a"), ("name", "Renamed"), ("timezone", "UTC")],
        ),
        ("/venues/delete", &[("id", "shop-a")]),
        (
            "/venues/screen",
            &[
                ("screen", "scr-1"),
                ("venue", "shop-a"),
                ("groups", "other"),
            ],
        ),
    ];

    // A viewer and a manager get the 403 page, for the page and every form.
    for role in [Role::Viewer, Role::Manager] {
        let session = WebSession::sign_in(&server, &server.token(role).await).await;
        let response = session.get(&server, "/venues").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("needs the admin role")
        );
        let nav = page(&session, &server, "/reports").await;
        assert!(!nav.contains("href=\"/venues\""), "{role}");
        for (path, fields) in forms {
            let response = session.post_form(&server, path, fields, true).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role} {path}");
        }
    }

    // The admin without the CSRF token, or with a forged one: refused too.
    let admin = WebSession::sign_in(&server, &server.admin).await;
    assert_forms_refused_without_csrf(&server, &admin, forms).await;
    // Nothing was stored by any refused form.
    assert_eq!(venue_ids(&server).await, ["shop-a"]);
    let venue = api_json(&server, &server.admin, "/api/v1/venues/shop-a").await;
    assert_eq!(
        (venue["name"].as_str(), venue["timezone"].as_str()),
        (Some("shop-a"), Some("Europe/Kyiv"))
    );
    let screens = api_json(&server, &server.admin, "/api/v1/screens").await;
    assert_eq!(
        placement(&screens, "scr-1"),
        ("shop-a".to_owned(), vec!["lobby".to_owned()])
    );

    // The admin's nav links the page, which also speaks Russian.
    let html = page(&admin, &server, "/venues").await;
    assert!(
        html.contains("href=\"/venues\" aria-current=\"page\""),
        "{html}"
    );
    let html = admin
        .get(&server, "/venues?lang=ru")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Площадки и группы") && html.contains("1 экран<"),
        "{html}"
    );
    server.stop().await;
}
