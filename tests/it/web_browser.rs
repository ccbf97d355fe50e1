//! The web dashboard in a real browser: headless Chromium from Debian
//! driven through chromedriver (WebDriver, fantoccini), against a real
//! server on SQLite. A manager uploads a clip and a poster, writes a
//! playlist with a per-date poster and a Cyrillic ticker, previews the
//! schedule and publishes it to an approved screen; an admin looks at the
//! fleet; a viewer reads the report and its CSV (compared with the API's),
//! is refused a manager page, and a form without its CSRF token is refused.
//! Screenshots of the main pages go to `target/web-screenshots/`.

use std::path::Path;
use std::time::Duration;

use ekran::server::auth::Role;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::server_support::{TestServer, sample_mp4, sample_png};
use crate::web_support::{
    browser_text, check_report_and_its_csv, check_screenshot, server_with_a_reporting_screen,
    start_webdriver,
};

/// chromedriver on a free loopback port, ended when dropped (also used by `web_form`).
pub(crate) struct Driver {
    child: tokio::process::Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Driver {
    pub(crate) async fn start() -> Self {
        let (child, url) = start_webdriver(
            "/usr/bin/chromedriver",
            &["--port={port}"],
            "chromedriver (Debian chromium-driver)",
        )
        .await;
        Self {
            child,
            url,
            profile: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) async fn browser(&self) -> Client {
        let profile = self.profile.path();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    "--lang=en-US",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a WebDriver session in headless Chromium")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Saves a screenshot and checks it is a real, non-blank picture.
pub(crate) async fn screenshot(browser: &Client, name: &str) {
    check_screenshot(&browser.screenshot().await.unwrap(), name);
}

pub(crate) async fn sign_in(browser: &Client, server: &TestServer, token: &str) {
    browser.goto(&server.url("/signin")).await.unwrap();
    browser
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(token)
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
}

async fn sign_out(browser: &Client) {
    browser
        .find(Locator::Css("form[action='/signout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("#signin-form"))
        .await
        .unwrap();
}

/// The text of the element matched by `css`, once it is on the page.
pub(crate) async fn text_of(browser: &Client, css: &str) -> String {
    browser_text(browser, css).await
}

/// Uploads a file through the media page's form and waits for it in the list.
async fn upload_through_page(browser: &Client, server: &TestServer, path: &Path) {
    browser.goto(&server.url("/media")).await.unwrap();
    browser
        .find(Locator::Css("#upload-file"))
        .await
        .unwrap()
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    browser
        .find(Locator::Css("#upload-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::XPath(&format!(
            "//table[@id='media-table']//td[contains(., '{name}')]"
        )))
        .await
        .unwrap_or_else(|e| panic!("{name} never appeared in the library: {e}"));
}

const PLAYLIST: &str = r#"campaign = "Права человека"
id = "rights"
timezone = "Europe/Kyiv"
[targets]
groups = ["lobbies"]
[flight]
start = 2027-06-01
end = 2027-06-30
[[item]]
id = "clip"
media = "clip.mp4"
weight = 2
[[item]]
id = "poster-26"
media = "poster.png"
duration = "10s"
dates = [2027-06-26]
priority = 1
max_plays_per_hour = 6
[[ticker]]
text = "Телефон доверия, круглосуточно: 98 787 66 66"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_from_upload_to_report_in_the_browser() {
    let heartbeat = json!({"agent_version": "0.1.0", "manifest_version": 1, "current_item": "clip",
        "decoder": "avdec_h264", "graphics": "Vulkan · V3D 7.1 · integrated GPU · Mesa 23.2.1",
        "frames_presented": 900, "frames_dropped": 3,
        "disk_free_bytes": 12_000_000_000u64, "cache_bytes": 150_000_000u64, "stale": false});
    let (server, _device) = server_with_a_reporting_screen("Права человека", &heartbeat).await;
    let manager = server.token(Role::Manager).await;
    let viewer = server.token(Role::Viewer).await;

    let files = tempfile::tempdir().unwrap();
    let clip = files.path().join("clip.mp4");
    std::fs::write(&clip, sample_mp4()).unwrap();
    let poster = files.path().join("poster.png");
    std::fs::write(&poster, sample_png()).unwrap();

    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // Manager: upload, write the playlist, preview, publish.
    sign_in(&browser, &server, &manager).await;
    upload_through_page(&browser, &server, &clip).await;
    upload_through_page(&browser, &server, &poster).await;
    let library = text_of(&browser, "#media-table").await;
    assert!(library.contains("avc1"), "{library}");
    // The clip's thumbnail is the browser's own picture of it at 0.5 s
    // (the server decodes no video): wait until it has a frame.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ready = browser
            .execute(
                "const v = document.querySelector('video.thumb'); \
                 return v ? [v.readyState, v.videoWidth] : [-1, 0];",
                vec![],
            )
            .await
            .unwrap();
        if ready[0].as_i64() >= Some(2) {
            assert_eq!(ready[1], 160, "the clip's width: {ready}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the clip thumbnail never showed a frame: {ready}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    screenshot(&browser, "media").await;

    browser.goto(&server.url("/playlists/edit")).await.unwrap();
    let file_name = browser.find(Locator::Css("#file-name")).await.unwrap();
    file_name.clear().await.unwrap();
    file_name.send_keys("rights.toml").await.unwrap();
    let source = browser.find(Locator::Css("#source")).await.unwrap();
    source.clear().await.unwrap();
    source.send_keys(PLAYLIST).await.unwrap();
    // Date inputs take typed text in the browser's locale format; set the value itself.
    browser
        .execute(
            "document.getElementById('preview-day').value = '2027-06-26';",
            vec![],
        )
        .await
        .unwrap();
    browser
        .find(Locator::Css("#action-preview"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let preview = text_of(&browser, "#preview").await;
    assert!(
        preview.contains("poster-26") && preview.contains("clip"),
        "{preview}"
    );
    assert!(
        preview.contains("kyiv-lobby") && preview.contains("Europe/Kyiv"),
        "{preview}"
    );
    let valid = text_of(&browser, "#editor-valid").await;
    assert!(
        valid.contains("Телефон доверия"),
        "the Cyrillic ticker survived typing: {valid}"
    );
    screenshot(&browser, "editor-preview").await;

    browser
        .find(Locator::Css("#action-publish"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let published = text_of(&browser, "#published").await;
    assert!(
        published.contains("kyiv-lobby: manifest version 2"),
        "{published}"
    );
    let envelope: serde_json::Value = server
        .client
        .get(server.url("/api/v1/screens/kyiv-lobby/manifest"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        envelope["payload"].as_str().unwrap(),
    )
    .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(manifest["version"], 2);
    assert_eq!(manifest["items"][1]["dates"], json!(["2027-06-26"]));
    assert_eq!(
        manifest["overlays"][0]["text"],
        "Телефон доверия, круглосуточно: 98 787 66 66"
    );
    browser.goto(&server.url("/playlists")).await.unwrap();
    let publications = text_of(&browser, "#publications-table").await;
    assert!(publications.contains("kyiv-lobby"), "{publications}");
    screenshot(&browser, "playlists").await;
    sign_out(&browser).await;

    // Admin: the fleet, in Russian.
    sign_in(&browser, &server, &server.admin).await;
    browser.goto(&server.url("/fleet?lang=ru")).await.unwrap();
    let fleet = text_of(&browser, "#screen-kyiv-lobby").await;
    assert!(
        fleet.contains("в сети")
            && fleet.contains("avdec_h264")
            && fleet.contains("программный")
            && fleet.contains("Графика")
            && fleet.contains("Vulkan · V3D 7.1"),
        "{fleet}"
    );
    screenshot(&browser, "fleet-ru").await;
    browser.goto(&server.url("/fleet?lang=en")).await.unwrap();
    sign_out(&browser).await;

    // Viewer: the report and its CSV, then a manager page and a forged form.
    sign_in(&browser, &server, &viewer).await;
    check_report_and_its_csv(&browser, &server, &viewer, "Права человека", "reports").await;
    browser.set_window_size(390, 844).await.unwrap();
    browser.refresh().await.unwrap();
    text_of(&browser, "#report-table").await;
    screenshot(&browser, "reports-phone").await;
    browser.set_window_size(1280, 1000).await.unwrap();

    browser.goto(&server.url("/playlists/edit")).await.unwrap();
    let refused = text_of(&browser, "#error-message").await;
    assert!(refused.contains("needs the manager role"), "{refused}");
    assert!(text_of(&browser, "h1").await.contains("403"));
    screenshot(&browser, "forbidden").await;

    browser.goto(&server.url("/reports")).await.unwrap();
    browser
        .execute(
            "const form = document.querySelector(\"form[action='/signout']\");
             form.querySelector(\"input[name='csrf']\").remove();
             form.submit();",
            vec![],
        )
        .await
        .unwrap();
    let refused = text_of(&browser, "#error-message").await;
    assert!(refused.contains("CSRF"), "{refused}");
    // The refused sign-out did nothing: the session still works.
    browser.goto(&server.url("/reports")).await.unwrap();
    text_of(&browser, "#report-filters").await;

    browser.close().await.unwrap();
    drop(driver);
    server.stop().await;
}
