//! The structured playlist form of the dashboard: over plain HTTP on both
//! backends (rows added and removed without script, errors placed at their
//! fields, nothing stored when refused, stored playlists read back, TOML the
//! form cannot hold sent to the TOML editor), and in headless Chromium,
//! where a manager fills the form, previews and publishes to a screen.

use ekran::server::auth::Role;
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::server_support::{Backend, TestDevice, TestServer, sample_mp4, sample_png, upload};
use crate::web_browser::{Driver, screenshot, sign_in, text_of};
use crate::web_support::WebSession;

both_backends!(
    form_writes_previews_publishes_and_reads_back,
    malformed_entries_are_refused_at_their_fields_and_nothing_is_stored,
    toml_the_form_cannot_hold_goes_to_the_toml_editor,
);

/// Uploads `clip.mp4` and `poster.png` and names them in the library.
async fn library(server: &TestServer, token: &str, manager: &WebSession) {
    for (name, bytes) in [("clip.mp4", sample_mp4()), ("poster.png", sample_png())] {
        let stored: serde_json::Value = upload(server, token, bytes).await.json().await.unwrap();
        let sha = stored["sha256"].as_str().unwrap().to_owned();
        let response = manager
            .post_form(
                server,
                "/media/name",
                &[("name", name), ("sha256", &sha)],
                true,
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
}

/// The manifest the server signed for `screen`, decoded, and its version header.
async fn published_manifest(server: &TestServer, screen: &str) -> (String, serde_json::Value) {
    let response = server
        .client
        .get(server.url(&format!("/api/v1/screens/{screen}/manifest")))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let version = response.headers()["x-ekran-manifest-version"]
        .to_str()
        .unwrap()
        .to_owned();
    let envelope: serde_json::Value = response.json().await.unwrap();
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        envelope["payload"].as_str().unwrap(),
    )
    .unwrap();
    (version, serde_json::from_slice(&payload).unwrap())
}

/// The error messages shown at the field named `name` (inside its label).
fn errors_at(html: &str, name: &str) -> Vec<String> {
    let Some(start) = html.find(&format!("name=\"{name}\"")) else {
        panic!("no field {name} in the page");
    };
    let rest = &html[start..];
    let label = &rest[..rest.find("</label>").unwrap_or(rest.len())];
    label
        .split("<span class=\"field-error\" role=\"alert\">")
        .skip(1)
        .map(|piece| piece[..piece.find("</span>").unwrap()].to_owned())
        .collect()
}

/// A valid campaign as posted form fields: a clip on weekday evenings, a
/// still on one date, a poster a day, a Cyrillic ticker.
fn campaign_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("campaign", "Права человека"),
        ("id", "rights"),
        ("timezone", "Europe/Kyiv"),
        ("groups", "lobbies"),
        ("flight_start", "2027-06-01"),
        ("flight_end", "2027-06-30"),
        ("item.0.daily", "0"),
        ("item.0.id", "clip"),
        ("item.0.media", "clip.mp4"),
        ("item.0.weight", "2"),
        ("item.0.fit", "cover"),
        ("item.0.window.0.day", "mon"),
        ("item.0.window.0.day", "tue"),
        ("item.0.window.0.day", "wed"),
        ("item.0.window.0.day", "thu"),
        ("item.0.window.0.day", "fri"),
        ("item.0.window.0.start", "17:00"),
        ("item.0.window.0.end", "22:00"),
        ("item.0.window.1.day", "sat"),
        ("item.0.window.1.start", "22:00"),
        ("item.0.window.1.end", "02:00"),
        ("item.1.daily", "0"),
        ("item.1.id", "poster-26"),
        ("item.1.media", "poster.png"),
        ("item.1.duration", "10s"),
        ("item.1.dates", "2027-06-26"),
        ("item.1.priority", "1"),
        ("item.1.max_plays_per_hour", "6"),
        ("item.2.daily", "1"),
        ("item.2.id", "article"),
        ("item.2.start", "2027-06-10"),
        ("item.2.media_list", "poster.png\r\nposter.png\r\n"),
        ("item.2.duration", "20"),
        (
            "ticker.0.text",
            "Телефон доверия: 98 787 66 66 «круглосуточно»",
        ),
        ("screen", "kyiv-lobby"),
        ("day", "2027-06-26"),
    ]
}

async fn form_writes_previews_publishes_and_reads_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let _device = TestDevice::enroll_approved(&server, "kyiv-1", &["lobbies"], "kyiv-lobby").await;
    let token = server.token(Role::Manager).await;
    let manager = WebSession::sign_in(&server, &token).await;
    library(&server, &token, &manager).await;

    // A new form: one empty item, the library's files to choose from.
    let response = manager.get(&server, "/playlists/form").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("name=\"item.0.media\"") && html.contains("<option value=\"clip.mp4\""),
        "{html}"
    );
    assert!(!html.contains("name=\"item.1.media\""));
    // In Russian, down to the labels drawn by the template's macros.
    let html = manager
        .get(&server, "/playlists/form?lang=ru")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Форма плейлиста") && html.contains("Добавить окно времени"),
        "{html}"
    );

    // Rows are added and removed by buttons, keeping what was typed.
    let mut fields = campaign_fields();
    fields.push(("action", "add:item.1.window"));
    let response = manager
        .post_form(&server, "/playlists/form", &fields, true)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("name=\"item.1.window.0.start\""), "{html}");
    assert!(html.contains("value=\"Телефон доверия: 98 787 66 66 «круглосуточно»\""));
    fields.pop();
    fields.push(("action", "remove:item.0.window.1"));
    let html = manager
        .post_form(&server, "/playlists/form", &fields, true)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"item.0.window.0.start\"") && !html.contains("item.0.window.1"));
    fields.pop();
    fields.push(("action", "add:ticker"));
    let html = manager
        .post_form(&server, "/playlists/form", &fields, true)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"ticker.1.text\""));
    fields.pop();
    fields.push(("action", "remove:item.9"));
    let response = manager
        .post_form(&server, "/playlists/form", &fields, true)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Preview: the form's TOML goes through the editor's check and scheduler.
    fields.pop();
    fields.push(("action", "preview"));
    let response = manager
        .post_form(&server, "/playlists/form", &fields, true)
        .await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"preview\"") && html.contains("class=\"timeline\""));
    // Saturday the 26th: the still of that date plays; the clip's weekday window is closed.
    assert!(html.contains("poster-26</td>"), "{html}");
    assert!(html.contains("ticker on screen 1440 min"), "{html}");
    assert!(html.contains("[[daily.windows]]") || html.contains("[[item.windows]]"));

    // Publish: stored and signed for the screen, with what was entered.
    fields.pop();
    fields.push(("action", "publish"));
    let response = manager
        .post_form(&server, "/playlists/form", &fields, true)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("kyiv-lobby: manifest version 2"), "{html}");
    let (version, manifest) = published_manifest(&server, "kyiv-lobby").await;
    assert_eq!(version, "2");
    let items = manifest["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "rights/clip",
            "rights/poster-26",
            "rights/article-day-01",
            "rights/article-day-02"
        ]
    );
    assert_eq!(items[0]["campaign"], "Права человека");
    assert_eq!(items[0]["weight"], 2);
    assert_eq!(items[0]["fit"], "cover");
    assert_eq!(
        items[0]["windows"],
        json!([
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "17:00:00", "end": "22:00:00"},
            {"days": ["sat"], "start": "22:00:00", "end": "02:00:00"},
        ])
    );
    assert_eq!(items[1]["dates"], json!(["2027-06-26"]));
    assert_eq!(items[1]["priority"], 1);
    assert_eq!(items[1]["max_plays_per_hour"], 6);
    assert_eq!(items[1]["duration_ms"], 10_000);
    assert_eq!(items[2]["dates"], json!(["2027-06-10"]));
    assert_eq!(items[3]["dates"], json!(["2027-06-11"]));
    assert_eq!(items[3]["duration_ms"], 20_000);
    assert_eq!(
        manifest["overlays"][0]["text"],
        "Телефон доверия: 98 787 66 66 «круглосуточно»"
    );

    // The stored playlist opens in the form with every value, and in the editor as TOML.
    let response = manager
        .get(&server, "/playlists/form?campaign=rights")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    for expected in [
        "value=\"Права человека\"",
        "<option value=\"clip.mp4\" selected>",
        "name=\"item.0.window.0.day\" value=\"fri\" checked",
        "name=\"item.0.window.1.day\" value=\"sat\" checked",
        "name=\"item.0.window.1.end\" value=\"02:00\"",
        "name=\"item.1.dates\" value=\"2027-06-26\"",
        "poster.png\nposter.png</textarea>",
        "value=\"Телефон доверия: 98 787 66 66 «круглосуточно»\"",
    ] {
        assert!(html.contains(expected), "{expected} in {html}");
    }
    assert!(!html.contains("name=\"item.0.window.0.day\" value=\"sat\" checked"));
    // Written by the form: nothing to warn about.
    assert!(!html.contains("id=\"form-comments\""));
    let editor = manager
        .get(&server, "/playlists/edit?campaign=rights")
        .await
        .text()
        .await
        .unwrap();
    assert!(editor.contains("[[daily]]") && editor.contains("id=\"action-open-form\""));

    // The form's TOML button opens the editor on what the form says.
    fields.pop();
    fields.push(("action", "toml"));
    let html = manager
        .post_form(&server, "/playlists/form", &fields, true)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"source\"") && html.contains("max_plays_per_hour = 6"),
        "{html}"
    );
    server.stop().await;
}

async fn malformed_entries_are_refused_at_their_fields_and_nothing_is_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let _device = TestDevice::enroll_approved(&server, "kyiv-1", &["lobbies"], "kyiv-lobby").await;
    let token = server.token(Role::Manager).await;
    let manager = WebSession::sign_in(&server, &token).await;
    library(&server, &token, &manager).await;
    let (version_before, _) = published_manifest(&server, "kyiv-lobby").await;

    let broken: Vec<(&str, &str)> = campaign_fields()
        .into_iter()
        .map(|(name, value)| match name {
            "flight_end" => (name, "2027-05-01"),
            "item.1.media" => (name, "nowhere.png"),
            "item.0.window.0.start" => (name, "25:00"),
            "item.0.weight" => (name, "heavy"),
            _ => (name, value),
        })
        .collect();
    for action in ["check", "publish"] {
        let mut fields = broken.clone();
        fields.push(("action", action));
        let response = manager
            .post_form(&server, "/playlists/form", &fields, true)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{action}"
        );
        let html = response.text().await.unwrap();
        let end = errors_at(&html, "flight_end");
        assert!(
            end.iter()
                .any(|e| e.contains("ends on 2027-05-01, before it starts")),
            "{end:?}"
        );
        let time = errors_at(&html, "item.0.window.0.start");
        assert!(time.iter().any(|e| e.contains("25:00")), "{time:?}");
        let weight = errors_at(&html, "item.0.weight");
        assert!(
            weight.iter().any(|e| e.contains("whole number")),
            "{weight:?}"
        );
        assert!(errors_at(&html, "item.0.window.0.end").is_empty());
        assert!(errors_at(&html, "flight_start").is_empty());
        // What was typed stays in the form.
        assert!(html.contains("value=\"25:00\"") && html.contains("value=\"heavy\""));
        assert!(!html.contains("id=\"published\""));
    }
    // With the other problems fixed, the unknown media file is named at its field.
    let mut fields: Vec<(&str, &str)> = campaign_fields()
        .into_iter()
        .map(|(name, value)| match name {
            "item.1.media" => (name, "nowhere.png"),
            _ => (name, value),
        })
        .collect();
    fields.push(("action", "publish"));
    let response = manager
        .post_form(&server, "/playlists/form", &fields, true)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    let media = errors_at(&html, "item.1.media");
    assert!(
        media
            .iter()
            .any(|e| e.contains("nowhere.png") && e.contains("not in the library")),
        "{media:?}"
    );
    assert!(
        html.contains("nowhere.png (not in the library)"),
        "kept as chosen"
    );

    // Nothing was stored or published.
    let list = manager
        .get(&server, "/playlists")
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains("rights"), "{list}");
    let (version_after, _) = published_manifest(&server, "kyiv-lobby").await;
    assert_eq!(version_before, version_after);
    let response = manager
        .get(&server, "/playlists/form?campaign=rights")
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Every form post needs its CSRF token and the manager role.
    let mut fields = campaign_fields();
    fields.push(("action", "publish"));
    let response = manager
        .post_form(&server, "/playlists/form", &fields, false)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("CSRF"));
    let viewer = WebSession::sign_in(&server, &server.token(Role::Viewer).await).await;
    assert_eq!(
        viewer.get(&server, "/playlists/form").await.status(),
        StatusCode::FORBIDDEN
    );
    let response = viewer
        .post_form(&server, "/playlists/form", &fields, true)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (version_after, _) = published_manifest(&server, "kyiv-lobby").await;
    assert_eq!(version_before, version_after);
    // A field the form never writes is a bad request, not ignored.
    let response = manager
        .post_form(
            &server,
            "/playlists/form",
            &[("item.0.colour", "red"), ("action", "check")],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("item.0.colour"));
    server.stop().await;
}

async fn toml_the_form_cannot_hold_goes_to_the_toml_editor(backend: Backend) {
    let server = TestServer::start(backend).await;
    let _device = TestDevice::enroll_approved(&server, "kyiv-1", &["lobbies"], "kyiv-lobby").await;
    let token = server.token(Role::Manager).await;
    let manager = WebSession::sign_in(&server, &token).await;
    library(&server, &token, &manager).await;

    // From the TOML editor's text: a typo'd key the form has no field for.
    let typo = "campaign = \"x\"\ntimezone = \"UTC\"\n[targets]\nscreens = [\"*\"]\n\
                [flight]\nstart = 2027-01-01\nend = 2027-01-31\n[[item]]\nmedia = \"clip.mp4\"\nwieght = 2\n";
    let response = manager
        .post_form(
            &server,
            "/playlists/form",
            &[
                ("file_name", "x.toml"),
                ("source", typo),
                ("action", "load-toml"),
            ],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"form-unsupported\""), "{html}");
    assert!(html.contains("`item[0].wieght`"), "{html}");
    // …with a button that takes the same text to the TOML editor.
    assert!(html.contains("action=\"/playlists/edit\"") && html.contains("wieght = 2"));

    // Text the form can hold opens in it, every value in its field.
    let fixed = typo.replace("wieght", "weight");
    let response = manager
        .post_form(
            &server,
            "/playlists/form",
            &[
                ("file_name", "x.toml"),
                ("source", &fixed),
                ("action", "load-toml"),
            ],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("name=\"item.0.weight\" value=\"2\"")
            && html.contains("name=\"screens\" id=\"f-screens\" value=\"*\""),
        "{html}"
    );

    // A stored playlist with comments opens in the form, with a warning
    // that the form drops them.
    let commented = "# Lobby loop\ncampaign = \"Lobby\"\nid = \"lobby\"\ntimezone = \"Europe/Kyiv\"\n\
                     [targets]\ngroups = [\"lobbies\"]  # every lobby\n[flight]\nstart = 2027-01-01\nend = 2027-12-31\n\
                     [[item]]\nmedia = \"clip.mp4\"\nwindows = [{ days = [\"weekdays\"], start = \"08:00\", end = \"24:00\" }]\n";
    let response = manager
        .post_form(
            &server,
            "/playlists/edit",
            &[
                ("file_name", "lobby.toml"),
                ("source", commented),
                ("action", "publish"),
            ],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = manager
        .get(&server, "/playlists/form?campaign=lobby")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"form-comments\""), "{html}");
    assert!(html.contains("name=\"item.0.window.0.day\" value=\"fri\" checked"));
    assert!(!html.contains("name=\"item.0.window.0.day\" value=\"sat\" checked"));
    assert!(
        html.contains("name=\"item.0.window.0.end\" value=\"24:00\""),
        "{html}"
    );
    server.stop().await;
}

/// Sets an input's value through the DOM (date inputs take typed text in
/// the browser's locale format).
async fn set_value(browser: &Client, name: &str, value: &str) {
    browser
        .execute(
            "document.querySelector(`[name='${arguments[0]}']`).value = arguments[1];",
            vec![json!(name), json!(value)],
        )
        .await
        .unwrap();
}

async fn type_into(browser: &Client, name: &str, text: &str) {
    let field = browser
        .wait()
        .for_element(Locator::Css(&format!("[name='{name}']")))
        .await
        .unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(browser: &Client, css: &str) {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn choose(browser: &Client, name: &str, value: &str) {
    browser
        .find(Locator::Css(&format!("select[name='{name}']")))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_fills_the_form_previews_and_publishes_in_the_browser() {
    let server = TestServer::start(Backend::Sqlite).await;
    let _device = TestDevice::enroll_approved(&server, "kyiv-1", &["lobbies"], "kyiv-lobby").await;
    let token = server.token(Role::Manager).await;
    library(&server, &token, &WebSession::sign_in(&server, &token).await).await;

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    sign_in(&browser, &server, &token).await;
    browser.goto(&server.url("/playlists/form")).await.unwrap();

    type_into(&browser, "campaign", "Права человека").await;
    type_into(&browser, "id", "rights").await;
    type_into(&browser, "timezone", "Europe/Kyiv").await;
    type_into(&browser, "groups", "lobbies").await;
    set_value(&browser, "flight_start", "2027-06-01").await;
    // A last day before the first: refused at the field, the rest kept.
    set_value(&browser, "flight_end", "2027-05-01").await;
    choose(&browser, "item.0.media", "clip.mp4").await;
    type_into(&browser, "item.0.weight", "2").await;
    click(&browser, "#action-check").await;
    let error = text_of(&browser, "[name='flight_end'] + .field-error").await;
    assert!(error.contains("before it starts"), "{error}");
    screenshot(&browser, "playlist-form-error").await;
    set_value(&browser, "flight_end", "2027-06-30").await;

    // A window for the clip, weekday evenings (a row added without script).
    click(&browser, "button[value='add:item.0.window']").await;
    for day in ["mon", "tue", "wed", "thu", "fri"] {
        click(
            &browser,
            &format!("input[name='item.0.window.0.day'][value='{day}']"),
        )
        .await;
    }
    type_into(&browser, "item.0.window.0.start", "17:00").await;
    type_into(&browser, "item.0.window.0.end", "22:00").await;

    // A still on one date, pre-empting the clip.
    click(&browser, "#add-item").await;
    browser
        .wait()
        .for_element(Locator::Css("[name='item.1.media']"))
        .await
        .unwrap();
    choose(&browser, "item.1.media", "poster.png").await;
    type_into(&browser, "item.1.duration", "10s").await;
    type_into(&browser, "item.1.dates", "2027-06-26").await;
    type_into(&browser, "item.1.priority", "1").await;
    type_into(&browser, "item.1.max_plays_per_hour", "6").await;

    // A poster a day, its files picked from the library with the script's picker.
    click(&browser, "#add-daily").await;
    browser
        .wait()
        .for_element(Locator::Css("[name='item.2.media_list']"))
        .await
        .unwrap();
    type_into(&browser, "item.2.id", "article").await;
    set_value(&browser, "item.2.start", "2027-06-25").await;
    type_into(&browser, "item.2.duration", "20s").await;
    let picker = browser
        .find(Locator::Css("select.append-media"))
        .await
        .unwrap();
    assert!(
        picker.is_displayed().await.unwrap(),
        "the script shows the picker"
    );
    for _ in 0..2 {
        picker.select_by_value("poster.png").await.unwrap();
    }

    // A Cyrillic ticker.
    click(&browser, "#add-ticker").await;
    type_into(
        &browser,
        "ticker.0.text",
        "Телефон доверия, круглосуточно: 98 787 66 66",
    )
    .await;

    choose(&browser, "screen", "kyiv-lobby").await;
    set_value(&browser, "day", "2027-06-26").await;
    click(&browser, "#action-preview").await;
    let preview = text_of(&browser, "#preview").await;
    // Saturday the 26th: the dated still, and the second day's poster; the
    // clip's weekday window is closed.
    assert!(
        preview.contains("rights/item-02")
            && preview.contains("rights/article-day-02")
            && !preview.contains("rights/item-01")
            && !preview.contains("rights/article-day-01"),
        "{preview}"
    );
    let valid = text_of(&browser, "#editor-valid").await;
    assert!(valid.contains("Телефон доверия, круглосуточно"), "{valid}");
    // Tall enough to show the whole form in one picture.
    browser.set_window_size(1280, 2600).await.unwrap();
    browser
        .execute("window.scrollTo(0, 0);", vec![])
        .await
        .unwrap();
    screenshot(&browser, "playlist-form").await;
    browser.set_window_size(390, 844).await.unwrap();
    browser
        .execute(
            "document.getElementById('item-0').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
    screenshot(&browser, "playlist-form-phone").await;
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, json!(0), "no sideways scrolling on a phone");
    browser.set_window_size(1280, 1000).await.unwrap();

    click(&browser, "#action-publish").await;
    let published = text_of(&browser, "#published").await;
    assert!(
        published.contains("kyiv-lobby: manifest version 2"),
        "{published}"
    );
    let (_, manifest) = published_manifest(&server, "kyiv-lobby").await;
    let items = manifest["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "rights/item-01",
            "rights/item-02",
            "rights/article-day-01",
            "rights/article-day-02"
        ]
    );
    assert_eq!(items[0]["media"]["mime"], "video/mp4");
    assert_eq!(items[0]["weight"], 2);
    assert_eq!(
        items[0]["windows"],
        json!([{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "17:00:00", "end": "22:00:00"}])
    );
    assert_eq!(items[1]["media"]["mime"], "image/png");
    assert_eq!(items[1]["dates"], json!(["2027-06-26"]));
    assert_eq!(items[1]["priority"], 1);
    assert_eq!(items[1]["max_plays_per_hour"], 6);
    assert_eq!(items[2]["dates"], json!(["2027-06-25"]));
    assert_eq!(items[3]["dates"], json!(["2027-06-26"]));
    assert_eq!(items[3]["duration_ms"], 20_000);
    assert_eq!(
        manifest["overlays"][0]["text"],
        "Телефон доверия, круглосуточно: 98 787 66 66"
    );

    browser.close().await.unwrap();
    drop(driver);
    server.stop().await;
}
