//! The web dashboard in headless Firefox (Debian `firefox-esr`, driven
//! through geckodriver, which `.ci/install-deps.sh` builds from crates.io),
//! against a real server on SQLite: an admin signs in, reads the report and
//! fetches its CSV (compared with the API's), looks at the fleet, the media
//! library and the publications, then on the venues page creates a venue,
//! is refused a bad time zone, moves a screen and sets its groups, all
//! through the page's forms, and sees the venues page at phone size.
//! Screenshots go to `target/web-screenshots/firefox-*.png`.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::server_publish::{playlist_source, publish};
use crate::web_support::{
    api_json, browser_text, check_report_and_its_csv, check_screenshot,
    server_with_a_reporting_screen, start_webdriver,
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
        let (child, url) = start_webdriver(
            geckodriver_path(),
            &["--host", "127.0.0.1", "--port", "{port}"],
            "geckodriver",
        )
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_firefox() {
    let heartbeat = json!({"agent_version": "0.1.0", "manifest_version": 1, "current_item": "clip",
        "decoder": "avdec_h264", "frames_presented": 900, "frames_dropped": 3, "stale": false});
    let (server, _device) = server_with_a_reporting_screen("rights", &heartbeat).await;
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
    check_report_and_its_csv(
        &browser,
        &server,
        &server.admin,
        "rights",
        "firefox-reports",
    )
    .await;

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
