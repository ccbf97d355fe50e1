//! Helpers of the web dashboard tests: signing in over HTTP like a browser
//! (cookies by hand, no redirects followed) and sealing proof-of-play
//! records so reports have something to show.

use ekran::pop::{GENESIS_HASH, Outcome, PlayBody, PlayRecord, seal};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};

use crate::server_support::{TestDevice, TestServer};

/// A client that shows redirects instead of following them.
pub fn browser_like_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of cookie `name` among the response's `Set-Cookie` headers, with its attributes.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of the cookie in a `Set-Cookie` line.
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.to_owned())
        .unwrap_or_default()
}

/// The `value` of the hidden/meta field named `name` in an HTML page.
pub fn html_attr_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let rest = &html[start..];
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

/// A signed-in browser session: the session cookie and the page's CSRF token.
pub struct WebSession {
    pub cookie: String,
    pub csrf: String,
}

impl WebSession {
    /// Signs in with `token` through the sign-in form.
    pub async fn sign_in(server: &TestServer, token: &str) -> Self {
        let client = browser_like_client();
        let form = client.get(server.url("/signin")).send().await.unwrap();
        assert_eq!(form.status(), StatusCode::OK);
        let signin_cookie =
            set_cookie(form.headers(), "ekran_signin_csrf").expect("sign-in cookie");
        let html = form.text().await.unwrap();
        let field = html_attr_after(&html, "name=\"csrf\" value=\"").expect("csrf field");
        assert_eq!(cookie_value(&signin_cookie), field);
        let response = client
            .post(server.url("/signin"))
            .header(COOKIE, format!("ekran_signin_csrf={field}"))
            .form(&[("token", token), ("csrf", &field), ("next", "/reports")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let session = set_cookie(response.headers(), "ekran_session").expect("session cookie");
        let cookie = format!("ekran_session={}", cookie_value(&session));
        let page = client
            .get(server.url("/reports"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        let status = page.status();
        let html = page.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{html}");
        let csrf = html_attr_after(&html, "name=\"csrf-token\" content=\"").expect("csrf meta");
        Self { cookie, csrf }
    }

    /// GET `path` with the session.
    pub async fn get(&self, server: &TestServer, path: &str) -> reqwest::Response {
        browser_like_client()
            .get(server.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// POSTs a form with the session, adding the CSRF field when `with_csrf`.
    pub async fn post_form(
        &self,
        server: &TestServer,
        path: &str,
        fields: &[(&str, &str)],
        with_csrf: bool,
    ) -> reqwest::Response {
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        if with_csrf {
            fields.push(("csrf", &self.csrf));
        }
        browser_like_client()
            .post(server.url(path))
            .header(COOKIE, &self.cookie)
            .form(&fields)
            .send()
            .await
            .unwrap()
    }
}

/// Sealed records `1..=count` of one screen for `campaign`, each
/// `duration_ms` long, back to back from `start_ms`.
pub fn pop_chain(
    device: &TestDevice,
    campaign: &str,
    count: u64,
    start_ms: i64,
    duration_ms: u64,
) -> Vec<PlayRecord> {
    let screen_id = device.screen_id.clone().unwrap();
    let mut prev = GENESIS_HASH.to_owned();
    (1..=count)
        .map(|seq| {
            let started = start_ms + (seq as i64 - 1) * duration_ms as i64;
            let body = PlayBody {
                screen_id: screen_id.clone(),
                seq,
                play_id: format!("play-{seq}"),
                item_id: "clip".into(),
                campaign: campaign.into(),
                media_sha256: "ab".repeat(32),
                manifest_version: 1,
                started_at_ms: started,
                ended_at_ms: started + duration_ms as i64,
                duration_ms,
                frames_presented: duration_ms / 40,
                frames_dropped: 0,
                outcome: Outcome::Completed,
                stale: false,
            };
            let record = seal(body, &prev, &device.key).unwrap();
            prev = record.hash.clone();
            record
        })
        .collect()
}

/// Uploads records as the device and expects them accepted.
pub async fn upload_pop(server: &TestServer, device: &TestDevice, records: &[PlayRecord]) {
    let body = serde_json::to_vec(records).unwrap();
    let response = device
        .send(server, "POST", "/api/v1/device/pop", &body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// The API's CSV report.
pub async fn api_csv(server: &TestServer, token: &str, query: &str) -> String {
    let response = server
        .client
        .get(server.url(&format!("/api/v1/reports/airtime?{query}&format=csv")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// GETs an API path with a bearer token and returns its JSON body, after
/// checking it answered 200 (what the dashboard stored, seen through the API).
pub async fn api_json(server: &TestServer, token: &str, path: &str) -> serde_json::Value {
    let response = server
        .client
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

/// Where browser tests write screenshots of the pages they walk.
pub fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a browser's PNG screenshot as `<name>.png` and checks it is a
/// real, non-blank picture.
pub fn check_screenshot(png: &[u8], name: &str) {
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8();
    assert!(
        image.width() >= 300 && image.height() >= 300,
        "{name}: {}x{}",
        image.width(),
        image.height()
    );
    let colours: std::collections::HashSet<[u8; 3]> =
        image.pixels().step_by(7).map(|pixel| pixel.0).collect();
    assert!(
        colours.len() > 20,
        "{name}: only {} colours, the page looks blank",
        colours.len()
    );
}

/// The text of the element matched by `css`, once it is on the page.
pub async fn browser_text(browser: &fantoccini::Client, css: &str) -> String {
    browser
        .wait()
        .for_element(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
        .text()
        .await
        .unwrap()
}

/// `html` with the entities the templates' auto-escaping writes turned back
/// into characters (`&#x2f;` → `/`, `&quot;` → `"`, …), for text checks.
pub fn unescape_html(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Opens the airtime report for 28–29 November 2026 in `browser` (signed in
/// as `token`'s holder): the table names `campaign` and 29 November, the
/// chart is drawn, a screenshot `shot` is saved, and the page's CSV link,
/// fetched by the browser with its session, is byte for byte the API's CSV.
pub async fn check_report_and_its_csv(
    browser: &fantoccini::Client,
    server: &TestServer,
    token: &str,
    campaign: &str,
    shot: &str,
) {
    let query = "from=2026-11-28&to=2026-11-29";
    browser
        .goto(&server.url(&format!("/reports?{query}")))
        .await
        .unwrap();
    let table = browser_text(browser, "#report-table").await;
    assert!(
        table.contains(campaign) && table.contains("Nov 29, 2026"),
        "{table}"
    );
    assert!(
        browser
            .find(fantoccini::Locator::Css("svg.chart"))
            .await
            .is_ok()
    );
    check_screenshot(&browser.screenshot().await.unwrap(), shot);
    let href = browser
        .find(fantoccini::Locator::Css("#csv-link"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let csv = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(done, e => done('ERROR ' + e));",
            vec![serde_json::json!(href)],
        )
        .await
        .unwrap();
    assert_eq!(csv.as_str().unwrap(), api_csv(server, token, query).await);
}

/// 2026-11-28T21:30:00Z: 23:30 in Kyiv, so a day's plays straddle two
/// local days there.
pub const EVENING_MS: i64 = 1_795_901_400_000;

/// A server on SQLite with one approved screen `kyiv-lobby` (venue
/// `kyiv-1`, group `lobbies`) that has uploaded 90 one-minute plays of
/// `campaign` from [`EVENING_MS`] on and sent `heartbeat` as its status.
pub async fn server_with_a_reporting_screen(
    campaign: &str,
    heartbeat: &serde_json::Value,
) -> (TestServer, TestDevice) {
    let server = TestServer::start(crate::server_support::Backend::Sqlite).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &["lobbies"], "kyiv-lobby").await;
    upload_pop(
        &server,
        &device,
        &pop_chain(&device, campaign, 90, EVENING_MS, 60_000),
    )
    .await;
    let response = device
        .send(
            &server,
            "POST",
            "/api/v1/device/heartbeat",
            &serde_json::to_vec(heartbeat).unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    (server, device)
}

/// Starts a WebDriver server (`program` with `args`, where `{port}` stands
/// for a free loopback port), killed when the child is dropped, and waits
/// until it answers `GET /status`. Returns the child and its base URL.
pub async fn start_webdriver(
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    name: &str,
) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let child = tokio::process::Command::new(program)
        .args(args.iter().map(|arg| arg.replace("{port}", &port)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} must be installed: {e}"));
    let url = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(response) = probe.get(format!("{url}/status")).send().await
            && response.status().is_success()
        {
            return (child, url);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Posts each of `forms` as `session` without its CSRF token, then with a
/// forged one: every post must be refused with 403 (the first naming CSRF).
pub async fn assert_forms_refused_without_csrf(
    server: &TestServer,
    session: &WebSession,
    forms: &[(&str, &[(&str, &str)])],
) {
    for (path, fields) in forms {
        let response = session.post_form(server, path, fields, false).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} without token"
        );
        assert!(response.text().await.unwrap().contains("CSRF"), "{path}");
        let mut forged = fields.to_vec();
        forged.push(("csrf", "forged-token"));
        let response = session.post_form(server, path, &forged, false).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} with a forged token"
        );
    }
}
