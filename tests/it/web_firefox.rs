//! The web dashboard in headless Firefox (Debian `firefox-esr`, driven
//! through geckodriver, which `.ci/install-deps.sh` builds from crates.io),
//! against a real server on SQLite: an admin signs in, reads the report and
//! fetches its CSV (compared with the API's), looks at the fleet, the media
//! library and the publications, then on the venues page creates a venue,
//! is refused a bad time zone, moves a screen and sets its groups, all
//! through the page's forms, and sees the venues page at phone size.
//! Screenshots go to `target/web-screenshots/firefox-*.png`.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::server_publish::{playlist_source, publish};
use crate::server_support::{Backend, TestDevice, TestServer};
use crate::web_support::{
    api_csv, api_json, browser_text, check_screenshot, pop_chain, upload_pop,
};

/// Where geckodriver is: `$GECKODRIVER`, else the first `geckodriver` on
/// `PATH`, else where `cargo install` puts it.
fn geckodriver_path() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("GECKODRIVER") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("geckodriver"))
            .find(|candidate| candidate.is_file())
    });
    on_path
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(std::path::Path::new(&home).join(".cargo/bin/geckodriver"))
                .filter(|path| path.is_file())
        })
        .expect("geckodriver must be installed (.ci/install-deps.sh: cargo install --locked geckodriver)")
}

/// geckodriver on a free loopback port, ended when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(geckodriver_path())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("geckodriver starts");
        let url = format!("http://127.0.0.1:{port}");
        // Ready when it answers its status endpoint.
        let probe = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = probe.get(format!("{url}/status")).send().await
                && response.status().is_success()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "geckodriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url }
    }

    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "moz:firefoxOptions".into(),
            json!({
                "binary": "/usr/bin/firefox-esr",
                "args": ["-headless"],
                "prefs": {
                    "intl.accept_languages": "en-US",
                    "browser.shell.checkDefaultBrowser": false,
                    "app.update.enabled": false,
                    "datareporting.policy.dataSubmissionEnabled": false,
                    "toolkit.telemetry.enabled": false,
                },
            }),
        );
        let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a WebDriver session in headless Firefox");
        browser.set_window_size(1280, 1000).await.unwrap();
        browser
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn screenshot(browser: &Client, name: &str) {
    check_screenshot(
        &browser.screenshot().await.unwrap(),
        &format!("firefox-{name}"),
    );
}

/// Fills the fields of the form matched by `form` and submits it.
async fn submit(browser: &Client, form: &str, fields: &[(&str, &str)]) {
    let form = browser.find(Locator::Css(form)).await.unwrap();
    for (name, value) in fields {
        let input = form
            .find(Locator::Css(&format!("[name='{name}']")))
            .await
            .unwrap();
        if input.prop("tagName").await.unwrap().as_deref() == Some("SELECT") {
            input.select_by_value(value).await.unwrap();
        } else {
            input.clear().await.unwrap();
            input.send_keys(value).await.unwrap();
        }
    }
    form.find(Locator::Css("button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// A venue name long enough that the venue picker must shrink to fit a phone.
const LONG_NAME: &str = "Tokyo Shibuya Station, East Exit Concourse, Level B2 (north side)";

/// 2026-11-28T21:30:00Z: 23:30 in Kyiv.
const EVENING_MS: i64 = 1_795_901_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_firefox() {
    let server = TestServer::start(Backend::Sqlite).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &["lobbies"], "kyiv-lobby").await;
    upload_pop(
        &server,
        &device,
        &pop_chain(&device, "rights", 90, EVENING_MS, 60_000),
    )
    .await;
    let heartbeat = json!({"agent_version": "0.1.0", "manifest_version": 1, "current_item": "clip",
        "decoder": "avdec_h264", "frames_presented": 900, "frames_dropped": 3, "stale": false});
    let response = device
        .send(
            &server,
            "POST",
            "/api/v1/device/heartbeat",
            &serde_json::to_vec(&heartbeat).unwrap(),
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let response = publish(
        &server,
        &server.admin,
        &playlist_source("rights", &["lobbies"]),
    )
    .await;
    assert!(
        response.status().is_success(),
        "publish: {}",
        response.status()
    );

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let user_agent = browser
        .execute("return navigator.userAgent;", vec![])
        .await
        .unwrap();
    assert!(
        user_agent.as_str().unwrap().contains("Firefox/"),
        "{user_agent}"
    );

    // Sign in through the form.
    browser.goto(&server.url("/signin")).await.unwrap();
    browser
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(&server.admin)
        .await
        .unwrap();
    browser
        .find(Locator::Css("#signin-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("form[action='/signout']"))
        .await
        .unwrap();

    // The report, its chart and its CSV.
    let query = "from=2026-11-28&to=2026-11-29";
    browser
        .goto(&server.url(&format!("/reports?{query}")))
        .await
        .unwrap();
    let table = browser_text(&browser, "#report-table").await;
    assert!(
        table.contains("rights") && table.contains("Nov 29, 2026"),
        "{table}"
    );
    assert!(browser.find(Locator::Css("svg.chart")).await.is_ok());
    screenshot(&browser, "reports").await;
    let href = browser
        .find(Locator::Css("#csv-link"))
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
            vec![json!(href)],
        )
        .await
        .unwrap();
    assert_eq!(
        csv.as_str().unwrap(),
        api_csv(&server, &server.admin, query).await
    );

    // The fleet, the media library, the publications.
    browser.goto(&server.url("/fleet")).await.unwrap();
    let fleet = browser_text(&browser, "#screen-kyiv-lobby").await;
    assert!(
        fleet.contains("avdec_h264") && fleet.contains("lobbies"),
        "{fleet}"
    );
    screenshot(&browser, "fleet").await;
    browser.goto(&server.url("/media")).await.unwrap();
    let library = browser_text(&browser, "#media-table").await;
    assert!(library.contains("avc1"), "{library}");
    screenshot(&browser, "media").await;
    browser.goto(&server.url("/playlists")).await.unwrap();
    let publications = browser_text(&browser, "#publications-table").await;
    assert!(publications.contains("kyiv-lobby"), "{publications}");
    screenshot(&browser, "playlists").await;

    // Venues: create one through the form, be refused a bad zone, move the screen.
    browser.goto(&server.url("/venues")).await.unwrap();
    submit(
        &browser,
        "#venue-create",
        &[
            ("id", "tokyo-1"),
            ("name", LONG_NAME),
            ("timezone", "Asia/Tokyo"),
        ],
    )
    .await;
    let card = browser_text(&browser, "#venue-tokyo-1").await;
    assert!(card.contains(LONG_NAME) && card.contains("JST"), "{card}");
    submit(
        &browser,
        "#venue-create",
        &[("id", "mars-1"), ("timezone", "Mars/Olympus_Mons")],
    )
    .await;
    let refusal = browser_text(&browser, "#venues-error").await;
    assert!(
        refusal.contains("unknown time zone") && refusal.contains("Mars/Olympus_Mons"),
        "{refusal}"
    );
    submit(
        &browser,
        "#screen-kyiv-lobby form",
        &[("venue", "tokyo-1"), ("groups", "lobbies, windows")],
    )
    .await;
    let card = browser_text(&browser, "#venue-tokyo-1").await;
    assert!(card.contains("kyiv-lobby"), "{card}");
    let screen = api_json(&server, &server.admin, "/api/v1/screens/kyiv-lobby").await;
    assert_eq!(screen["venue"], "tokyo-1");
    assert_eq!(screen["groups"], json!(["lobbies", "windows"]));
    let venues = api_json(&server, &server.admin, "/api/v1/venues").await;
    assert!(!venues.to_string().contains("mars-1"), "{venues}");
    screenshot(&browser, "venues").await;

    // Phone-sized: the venue cards fill the viewport's width, one column,
    // and nothing makes the page scroll sideways. (Firefox keeps a window
    // at least 500 CSS px wide, so this is 500 px, under the 760 px
    // breakpoint; the Chromium test sizes its phone at 390 px.)
    browser.set_window_size(390, 844).await.unwrap();
    browser.refresh().await.unwrap();
    browser_text(&browser, "#venue-tokyo-1").await;
    let layout = browser
        .execute(
            "const card = (id) => document.getElementById(id).getBoundingClientRect();
             return { viewport: document.documentElement.clientWidth,
                      scroll: document.documentElement.scrollWidth,
                      card: card('venue-tokyo-1').width,
                      left: [card('venue-kyiv-1').left, card('venue-tokyo-1').left] };",
            vec![],
        )
        .await
        .unwrap();
    let viewport = layout["viewport"].as_f64().unwrap();
    assert!(viewport < 760.0, "not a phone-sized viewport: {layout}");
    assert!(
        layout["scroll"].as_f64().unwrap() <= viewport,
        "the page scrolls sideways: {layout}"
    );
    assert!(
        layout["card"].as_f64().unwrap() > viewport * 0.8,
        "venue card not full width: {layout}"
    );
    assert_eq!(layout["left"][0], layout["left"][1], "one column: {layout}");
    screenshot(&browser, "venues-phone").await;

    browser.close().await.unwrap();
    drop(driver);
    server.stop().await;
}
