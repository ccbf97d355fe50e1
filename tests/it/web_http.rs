//! The web dashboard over plain HTTP, on both backends: sign-in sessions
//! and their cookies, roles, CSRF on every form, languages, the report
//! page and its CSV, the playlist editor, and the screenshot-on-request
//! contract between operator, server and box.

use ekran::server::auth::Role;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};

use crate::both_backends;
use crate::server_support::{Backend, TestDevice, TestServer, sample_mp4, sample_png, upload};
use crate::web_support::{
    EVENING_MS, WebSession, api_csv, assert_forms_refused_without_csrf, browser_like_client,
    pop_chain, set_cookie, upload_pop,
};

both_backends!(
    signin_gives_a_strict_session_cookie_and_roles_gate_pages,
    every_form_needs_its_csrf_token,
    sessions_end_at_sign_out_expiry_and_revocation,
    pages_speak_the_chosen_language,
    report_page_csv_is_the_apis_csv,
    editor_validates_previews_and_publishes,
    screenshot_on_request,
);

async fn signin_gives_a_strict_session_cookie_and_roles_gate_pages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = browser_like_client();

    // Not signed in: every page sends the browser to sign-in, remembering where it was.
    let response = client.get(server.url("/reports")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/signin?next=/reports");

    // The sign-in form's token must match its cookie.
    let form = client.get(server.url("/signin")).send().await.unwrap();
    let signin_cookie = set_cookie(form.headers(), "ekran_signin_csrf").unwrap();
    assert!(signin_cookie.contains("HttpOnly") && signin_cookie.contains("SameSite=Strict"));
    let viewer = server.token(Role::Viewer).await;
    let response = client
        .post(server.url("/signin"))
        .header(COOKIE, "ekran_signin_csrf=forged")
        .form(&[("token", viewer.as_str()), ("csrf", "other")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("CSRF"));

    // A wrong token is named as such.
    let response = client
        .post(server.url("/signin"))
        .header(COOKIE, "ekran_signin_csrf=abc")
        .form(&[("token", "ekran_nope"), ("csrf", "abc")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("unknown or revoked")
    );

    // A good token: HttpOnly, SameSite=Strict, not Secure over plain HTTP…
    let response = client
        .post(server.url("/signin"))
        .header(COOKIE, "ekran_signin_csrf=abc")
        .form(&[
            ("token", viewer.as_str()),
            ("csrf", "abc"),
            ("next", "/reports"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/reports");
    let cookie = set_cookie(response.headers(), "ekran_session").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    // …and Secure behind a TLS-terminating proxy; an off-site `next` is ignored.
    let response = client
        .post(server.url("/signin"))
        .header(COOKIE, "ekran_signin_csrf=abc")
        .header("x-forwarded-proto", "https")
        .form(&[
            ("token", viewer.as_str()),
            ("csrf", "abc"),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[LOCATION], "/");
    let cookie = set_cookie(response.headers(), "ekran_session").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Roles: a viewer reads reports only.
    let viewer = WebSession::sign_in(&server, &viewer).await;
    for (path, status) in [
        ("/reports", StatusCode::OK),
        ("/media", StatusCode::FORBIDDEN),
        ("/playlists", StatusCode::FORBIDDEN),
        ("/playlists/edit", StatusCode::FORBIDDEN),
        ("/fleet", StatusCode::FORBIDDEN),
        ("/tokens", StatusCode::FORBIDDEN),
    ] {
        let response = viewer.get(&server, path).await;
        assert_eq!(response.status(), status, "viewer {path}");
        if status == StatusCode::FORBIDDEN {
            let html = response.text().await.unwrap();
            assert!(
                html.contains("needs the manager role") || html.contains("needs the admin role"),
                "{html}"
            );
        }
    }
    // The viewer's nav shows no manager or admin pages.
    let html = viewer.get(&server, "/reports").await.text().await.unwrap();
    assert!(html.contains("href=\"/reports\"") && !html.contains("href=\"/media\""));
    // …and cannot post a manager form even with the right CSRF token.
    let response = viewer
        .post_form(
            &server,
            "/media/name",
            &[("name", "a.mp4"), ("sha256", &"0".repeat(64))],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let manager = WebSession::sign_in(&server, &server.token(Role::Manager).await).await;
    for (path, status) in [
        ("/reports", StatusCode::OK),
        ("/media", StatusCode::OK),
        ("/playlists", StatusCode::OK),
        ("/playlists/edit", StatusCode::OK),
        ("/fleet", StatusCode::FORBIDDEN),
        ("/tokens", StatusCode::FORBIDDEN),
    ] {
        assert_eq!(
            manager.get(&server, path).await.status(),
            status,
            "manager {path}"
        );
    }
    let admin = WebSession::sign_in(&server, &server.admin).await;
    for path in ["/reports", "/media", "/playlists", "/fleet", "/tokens"] {
        assert_eq!(
            admin.get(&server, path).await.status(),
            StatusCode::OK,
            "admin {path}"
        );
    }
    // The start page sends each role to its main page.
    assert_eq!(admin.get(&server, "/").await.headers()[LOCATION], "/fleet");
    assert_eq!(
        manager.get(&server, "/").await.headers()[LOCATION],
        "/playlists"
    );
    assert_eq!(
        viewer.get(&server, "/").await.headers()[LOCATION],
        "/reports"
    );
    server.stop().await;
}

async fn every_form_needs_its_csrf_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = WebSession::sign_in(&server, &server.admin).await;
    let forms: &[(&str, &[(&str, &str)])] = &[
        ("/tokens", &[("name", "x"), ("role", "viewer")]),
        ("/tokens/revoke", &[("id", "tok_x")]),
        ("/fleet/approve", &[("code", "ABCD-EFGH"), ("venue", "v")]),
        ("/fleet/screenshot", &[("screen", "s")]),
        ("/media/name", &[("name", "a.mp4"), ("sha256", "x")]),
        ("/playlists/edit", &[("source", "x"), ("action", "check")]),
        ("/signout", &[]),
    ];
    assert_forms_refused_without_csrf(&server, &admin, forms).await;
    // Nothing was done: no token was created.
    let tokens = ekran::server::auth::list_tokens(server.state.db())
        .await
        .unwrap();
    assert!(tokens.iter().all(|t| t.name != "x"));
    // With the token the same form works.
    let response = admin
        .post_form(
            &server,
            "/tokens",
            &[("name", "partner"), ("role", "viewer")],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("id=\"token-created\"") && html.contains("ekran_"),
        "{html}"
    );

    // The API called with the session cookie: reads need nothing more,
    // writes need the X-CSRF-Token header.
    let client = browser_like_client();
    let response = client
        .get(server.url("/api/v1/screens"))
        .header(COOKIE, &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .post(server.url("/api/v1/media"))
        .header(COOKIE, &admin.cookie)
        .body(sample_png().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = client
        .post(server.url("/api/v1/media"))
        .header(COOKIE, &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .body(sample_png().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    server.stop().await;
}

async fn sessions_end_at_sign_out_expiry_and_revocation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let session = WebSession::sign_in(&server, &server.token(Role::Viewer).await).await;
    let response = session.post_form(&server, "/signout", &[], true).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookie(response.headers(), "ekran_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(
        session.get(&server, "/reports").await.status(),
        StatusCode::SEE_OTHER
    );

    let expiring = WebSession::sign_in(&server, &server.token(Role::Viewer).await).await;
    sqlx::query("UPDATE web_sessions SET expires_at_ms = 0")
        .execute(server.state.db().pool())
        .await
        .unwrap();
    assert_eq!(
        expiring.get(&server, "/reports").await.status(),
        StatusCode::SEE_OTHER
    );

    let token = ekran::server::auth::create_token(server.state.db(), Role::Manager, "leaving")
        .await
        .unwrap();
    let revoked = WebSession::sign_in(&server, &token.secret).await;
    assert_eq!(
        revoked.get(&server, "/media").await.status(),
        StatusCode::OK
    );
    ekran::server::auth::revoke_token(server.state.db(), "leaving")
        .await
        .unwrap();
    assert_eq!(
        revoked.get(&server, "/media").await.status(),
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}

async fn pages_speak_the_chosen_language(backend: Backend) {
    let server = TestServer::start(backend).await;
    let session = WebSession::sign_in(&server, &server.token(Role::Viewer).await).await;
    let english = session.get(&server, "/reports").await.text().await.unwrap();
    assert!(english.contains("Airtime reports") && english.contains("lang=\"en\""));

    let response = session.get(&server, "/reports?lang=ru").await;
    let remembered = set_cookie(response.headers(), "ekran_lang").unwrap();
    assert!(remembered.starts_with("ekran_lang=ru"), "{remembered}");
    let russian = response.text().await.unwrap();
    assert!(
        russian.contains("Отчёты об эфире") && russian.contains("lang=\"ru\""),
        "{russian:.400}"
    );

    // The cookie keeps the choice; the browser's Accept-Language is the default.
    let client = browser_like_client();
    let page = client
        .get(server.url("/reports"))
        .header(COOKIE, format!("{}; ekran_lang=ru", session.cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Скачать CSV"));
    let page = client
        .get(server.url("/signin"))
        .header("accept-language", "de-DE, ru;q=0.9, en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("API-токен"), "{page:.400}");
    server.stop().await;
}

async fn report_page_csv_is_the_apis_csv(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-lobby").await;
    upload_pop(
        &server,
        &device,
        &pop_chain(&device, "Права человека", 90, EVENING_MS, 60_000),
    )
    .await;
    let viewer_token = server.token(Role::Viewer).await;
    let viewer = WebSession::sign_in(&server, &viewer_token).await;

    let query = "from=2026-11-28&to=2026-11-29&venue=kyiv-1&campaign=";
    let page = viewer.get(&server, &format!("/reports?{query}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    // Table rows per local day (Kyiv): 30 plays before midnight, 60 after.
    assert!(
        html.contains("Nov 28, 2026") && html.contains("Nov 29, 2026"),
        "{html}"
    );
    assert!(html.contains("Права человека"));
    assert!(
        html.contains("5,400"),
        "total seconds formatted for English"
    );
    assert!(
        html.contains("<svg") && html.contains("class=\"chart\""),
        "server-side SVG chart"
    );
    assert!(html.contains("id=\"proof-table\"") && html.contains("kyiv-lobby"));
    assert!(html.contains("100.0%"), "verified share");
    let csv_link = crate::web_support::html_attr_after(&html, "id=\"csv-link\" href=\"")
        .unwrap()
        .replace("&amp;", "&");

    let from_page = viewer.get(&server, &csv_link).await;
    assert_eq!(from_page.status(), StatusCode::OK);
    assert!(
        from_page.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let from_page = from_page.text().await.unwrap();
    let from_api = api_csv(
        &server,
        &viewer_token,
        "from=2026-11-28&to=2026-11-29&venue=kyiv-1",
    )
    .await;
    assert_eq!(from_page, from_api);
    assert_eq!(from_page.lines().count(), 3, "{from_page}");

    // Russian: the same numbers, Russian separators and month names.
    let html = viewer
        .get(&server, &format!("/reports?{query}&lang=ru"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("5\u{a0}400") && html.contains("28 ноября 2026"),
        "{html}"
    );

    // A bad date is a 400 naming it.
    let response = viewer.get(&server, "/reports?from=2026-13-40").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("2026-13-40"));
    server.stop().await;
}

async fn editor_validates_previews_and_publishes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let _device = TestDevice::enroll_approved(&server, "kyiv-1", &["lobbies"], "kyiv-lobby").await;
    let manager_token = server.token(Role::Manager).await;
    let manager = WebSession::sign_in(&server, &manager_token).await;
    for (name, bytes) in [("clip.mp4", sample_mp4()), ("poster.png", sample_png())] {
        let stored: serde_json::Value = upload(&server, &manager_token, bytes)
            .await
            .json()
            .await
            .unwrap();
        let sha = stored["sha256"].as_str().unwrap().to_owned();
        let response = manager
            .post_form(
                &server,
                "/media/name",
                &[("name", name), ("sha256", &sha)],
                true,
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let library = manager.get(&server, "/media").await.text().await.unwrap();
    assert!(library.contains("clip.mp4") && library.contains("poster.png"));
    assert!(
        library.contains("avc1"),
        "codec read from the MP4 header: {library}"
    );
    assert!(library.contains("1.0 s"), "15 frames at 15 fps: {library}");
    // A WebM clip: duration and codec from its Matroska header.
    let stored: serde_json::Value = upload(&server, &manager_token, &sample_webm())
        .await
        .json()
        .await
        .unwrap();
    let webm_sha = stored["sha256"].as_str().unwrap().to_owned();
    let library = manager.get(&server, "/media").await.text().await.unwrap();
    let row = library
        .split("<tr")
        .find(|row| row.contains(&webm_sha))
        .unwrap_or_else(|| panic!("no row for the WebM clip: {library}"));
    assert!(
        row.contains("vp9") && row.contains("2.0 s"),
        "codec and duration read from the WebM header: {row}"
    );

    // Errors come with line and column.
    let broken = "campaign = \"x\"\nid = \"x\"\ntimezone = \"Mars/Olympus\"\n";
    let response = manager
        .post_form(
            &server,
            "/playlists/edit",
            &[
                ("file_name", "x.toml"),
                ("source", broken),
                ("action", "check"),
            ],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("line 3, column"), "{html}");
    assert!(html.contains("unknown time zone"), "{html}");

    let source = r#"campaign = "Права"
id = "rights"
timezone = "Europe/Kyiv"
[targets]
groups = ["lobbies"]
[flight]
start = 2027-06-01
end = 2027-06-30
[[item]]
id = "clip"
media = "media/clip.mp4"
[[item]]
id = "poster-26"
media = "poster.png"
duration = "10s"
dates = [2027-06-26]
priority = 1
max_plays_per_hour = 6
[[item]]
id = "missing"
media = "nowhere.mp4"
[[ticker]]
text = "Телефон доверия: 98 787 66 66"
"#;
    let response = manager
        .post_form(
            &server,
            "/playlists/edit",
            &[
                ("file_name", "rights.toml"),
                ("source", source),
                ("action", "preview"),
                ("screen", "kyiv-lobby"),
                ("day", "2027-06-26"),
            ],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("nowhere.mp4") && html.contains("not in the library"),
        "{html}"
    );

    let source = source.replace("[[item]]\nid = \"missing\"\nmedia = \"nowhere.mp4\"\n", "");
    let response = manager
        .post_form(
            &server,
            "/playlists/edit",
            &[
                ("file_name", "rights.toml"),
                ("source", &source),
                ("action", "preview"),
                ("screen", "kyiv-lobby"),
                ("day", "2027-06-26"),
            ],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"preview\""), "{html}");
    assert!(html.contains("class=\"timeline\""));
    // On the 26th the poster pre-empts, at most 6 times in each of 24 hours.
    let poster_row = html.split("poster-26</td>").nth(1).unwrap();
    assert!(
        poster_row.contains("<td class=\"n\">144</td>"),
        "{poster_row:.200}"
    );
    assert!(html.contains("ticker on screen 1440 min"));
    // The day before, no poster.
    let response = manager
        .post_form(
            &server,
            "/playlists/edit",
            &[
                ("file_name", "rights.toml"),
                ("source", &source),
                ("action", "preview"),
                ("screen", "kyiv-lobby"),
                ("day", "2027-06-25"),
            ],
            true,
        )
        .await;
    let html = response.text().await.unwrap();
    assert!(!html.contains("poster-26</td>") && html.contains("clip</td>"));

    let response = manager
        .post_form(
            &server,
            "/playlists/edit",
            &[
                ("file_name", "rights.toml"),
                ("source", &source),
                ("action", "publish"),
            ],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("id=\"published\"") && html.contains("kyiv-lobby: manifest version 2"),
        "{html}"
    );
    let manifest = server
        .client
        .get(server.url("/api/v1/screens/kyiv-lobby/manifest"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.headers()["x-ekran-manifest-version"], "2");
    let list = manager
        .get(&server, "/playlists")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("rights.toml")
            && list.contains("/playlists/edit?campaign=rights")
            && list.contains("/playlists/form?campaign=rights")
    );
    let edit = manager
        .get(&server, "/playlists/edit?campaign=rights")
        .await
        .text()
        .await
        .unwrap();
    assert!(edit.contains("Телефон доверия"));
    let library = manager.get(&server, "/media").await.text().await.unwrap();
    assert!(library.contains("rights"), "used-by column");
    server.stop().await;
}

/// Sends a heartbeat; returns whether the server wants a screenshot.
async fn heartbeat(server: &TestServer, device: &TestDevice) -> bool {
    let response = device
        .send(
            server,
            "POST",
            "/api/v1/device/heartbeat",
            br#"{"uptime_s":1}"#,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: serde_json::Value = response.json().await.unwrap();
    answer["screenshot_requested"].as_bool().unwrap()
}

async fn screenshot_on_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-lobby").await;
    assert!(!heartbeat(&server, &device).await);
    let shot_url = server.url("/api/v1/screens/kyiv-lobby/screenshot");
    let response = server
        .client
        .get(&shot_url)
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Viewers may not ask; managers and admins may; unknown screens are 404.
    let request_url = server.url("/api/v1/screens/kyiv-lobby/screenshot-request");
    let viewer = server.token(Role::Viewer).await;
    let response = server
        .client
        .post(&request_url)
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = server
        .client
        .post(server.url("/api/v1/screens/nope/screenshot-request"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let manager = server.token(Role::Manager).await;
    let response = server
        .client
        .post(&request_url)
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["screen_id"], "kyiv-lobby");
    assert!(heartbeat(&server, &device).await);
    assert!(
        heartbeat(&server, &device).await,
        "still wanted until one arrives"
    );

    // The upload is a signed device request; not a PNG → 415, over 4 MiB → 413.
    let response = device
        .send(
            &server,
            "PUT",
            "/api/v1/device/screenshot",
            b"GIF89a not a png",
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut huge = sample_png().to_vec();
    huge.resize(4 * 1024 * 1024 + 1, 0);
    let response = device
        .send(&server, "PUT", "/api/v1/device/screenshot", &huge)
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Unsigned (a person's token) is not accepted.
    let response = server
        .client
        .put(server.url("/api/v1/device/screenshot"))
        .bearer_auth(&server.admin)
        .body(sample_png().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        heartbeat(&server, &device).await,
        "failed uploads leave the request standing"
    );

    let before = jiff::Timestamp::now();
    let response = device
        .request(&server, "PUT", "/api/v1/device/screenshot", sample_png())
        .header("content-type", "image/png")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(!heartbeat(&server, &device).await, "the request is cleared");

    let response = server
        .client
        .get(&shot_url)
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    let taken: jiff::Timestamp = response.headers()["x-ekran-taken-at"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        taken
            >= before
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .unwrap()
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), sample_png());
    let response = server
        .client
        .get(&shot_url)
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The fleet page shows it with its time, and asks through its own form.
    let admin = WebSession::sign_in(&server, &server.admin).await;
    let html = admin.get(&server, "/fleet").await.text().await.unwrap();
    assert!(
        html.contains("/api/v1/screens/kyiv-lobby/screenshot?t="),
        "{html}"
    );
    assert!(html.contains("Taken "));
    let response = admin
        .post_form(
            &server,
            "/fleet/screenshot",
            &[("screen", "kyiv-lobby")],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(heartbeat(&server, &device).await);
    // The session may call the API too, with its CSRF header.
    let client = browser_like_client();
    let response = client
        .post(&request_url)
        .header(COOKIE, &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    server.stop().await;
}

/// A 2 s VP9 WebM clip made by GStreamer.
fn sample_webm() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.webm");
    let status = std::process::Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "num-buffers=20", "!"])
        .args([
            "video/x-raw,width=160,height=90,framerate=10/1",
            "!",
            "vp9enc",
        ])
        .args(["!", "webmmux", "!", "filesink"])
        .arg(format!("location={}", path.display()))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "gst-launch-1.0 failed to make the WebM clip"
    );
    std::fs::read(&path).unwrap()
}
