//! Server basics on both backends: health, errors, tokens and roles,
//! venues/groups/screens/campaigns, the `ekran server` and `ekran token`
//! processes.

use std::process::Command;

use ekran::server::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::server_support::{Backend, ServerProcess, TestDb, TestServer, error_message};

both_backends!(
    healthz_and_unknown_endpoint,
    every_endpoint_checks_its_role,
    venues_validate_time_zone_and_ids,
    groups_and_campaigns_round_trip,
    token_cli_creates_and_revokes,
    server_process_starts_and_stops_on_sigterm,
);

async fn healthz_and_unknown_endpoint(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );

    let response = server
        .client
        .get(server.url("/api/v1/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(error_message(response).await.contains("/api/v1/nope"));

    let response = server
        .client
        .get(server.url("/api/v1/openapi.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().starts_with("openapi: 3"));
    server.stop().await;
}

/// (method, path, body, least role that may call it, status on success)
const ROLE_TABLE: &[(&str, &str, Option<&str>, Role, u16)] = &[
    ("GET", "/api/v1/venues", None, Role::Viewer, 200),
    ("GET", "/api/v1/venues/v1", None, Role::Viewer, 200),
    (
        "POST",
        "/api/v1/venues",
        Some(r#"{"id":"v2","timezone":"UTC"}"#),
        Role::Admin,
        201,
    ),
    (
        "PUT",
        "/api/v1/venues/v1",
        Some(r#"{"timezone":"Europe/Kyiv"}"#),
        Role::Admin,
        200,
    ),
    ("GET", "/api/v1/groups", None, Role::Viewer, 200),
    (
        "POST",
        "/api/v1/groups",
        Some(r#"{"id":"g2"}"#),
        Role::Admin,
        201,
    ),
    ("GET", "/api/v1/screens", None, Role::Viewer, 200),
    ("GET", "/api/v1/campaigns", None, Role::Viewer, 200),
    (
        "POST",
        "/api/v1/campaigns",
        Some(r#"{"id":"c2"}"#),
        Role::Manager,
        201,
    ),
    ("GET", "/api/v1/tokens", None, Role::Admin, 200),
    (
        "POST",
        "/api/v1/tokens",
        Some(r#"{"role":"viewer","name":"x"}"#),
        Role::Admin,
        201,
    ),
    // Past the role check these answer 4xx about the input, which proves the role passed.
    ("DELETE", "/api/v1/tokens/none", None, Role::Admin, 404),
    ("DELETE", "/api/v1/venues/v2", None, Role::Admin, 204),
    ("DELETE", "/api/v1/groups/none", None, Role::Admin, 404),
    (
        "PATCH",
        "/api/v1/screens/none",
        Some(r#"{"name":"x"}"#),
        Role::Admin,
        404,
    ),
    ("DELETE", "/api/v1/screens/none", None, Role::Admin, 404),
    (
        "GET",
        "/api/v1/screens/none/manifest",
        None,
        Role::Viewer,
        404,
    ),
    (
        "POST",
        "/api/v1/pairings/ABCD-EFGH/approve",
        Some(r#"{"venue":"v1"}"#),
        Role::Admin,
        404,
    ),
    ("GET", "/api/v1/playlists", None, Role::Viewer, 200),
    (
        "POST",
        "/api/v1/playlists",
        Some(r#"{"file_name":"x.toml","source":"","media":{}}"#),
        Role::Manager,
        400,
    ),
    (
        "POST",
        "/api/v1/media",
        Some("not media"),
        Role::Manager,
        415,
    ),
    (
        "GET",
        "/api/v1/media/0000000000000000000000000000000000000000000000000000000000000000",
        None,
        Role::Viewer,
        404,
    ),
    (
        "GET",
        "/api/v1/reports/airtime?from=2026-01-01&to=2026-01-02",
        None,
        Role::Viewer,
        200,
    ),
    ("GET", "/api/v1/audit/findings", None, Role::Viewer, 200),
];

async fn every_endpoint_checks_its_role(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin.clone();
    let manager = server.token(Role::Manager).await;
    let viewer = server.token(Role::Viewer).await;
    let response = server
        .client
        .post(server.url("/api/v1/venues"))
        .bearer_auth(&admin)
        .json(&json!({"id": "v1", "timezone": "UTC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    for &(method, path, body, least, success) in ROLE_TABLE {
        let request = |token: Option<&str>| {
            let mut request = server
                .client
                .request(method.parse().unwrap(), server.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_owned());
            }
            request
        };
        let status = request(None).send().await.unwrap().status();
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without token"
        );
        let status = request(Some("ekran_not-a-token"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a bogus token"
        );
        // Lower roles first so a success does not change what later calls see.
        for (role, token) in [
            (Role::Viewer, &viewer),
            (Role::Manager, &manager),
            (Role::Admin, &admin),
        ] {
            let response = request(Some(token)).send().await.unwrap();
            let expected = if role >= least { success } else { 403 };
            assert_eq!(
                response.status().as_u16(),
                expected,
                "{method} {path} as {role}"
            );
            if role >= least {
                break;
            }
        }
    }
    server.stop().await;
}

async fn venues_validate_time_zone_and_ids(backend: Backend) {
    let server = TestServer::start(backend).await;
    let post = |body: serde_json::Value| {
        server
            .client
            .post(server.url("/api/v1/venues"))
            .bearer_auth(&server.admin)
            .json(&body)
            .send()
    };
    let response = post(json!({"id": "kyiv-1", "name": "Silpo Kyiv", "timezone": "Mars/Olympus"}))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(error_message(response).await.contains("Mars/Olympus"));

    let response = post(json!({"id": "../etc", "timezone": "UTC"}))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = post(json!({"id": "kyiv-1", "name": "Silpo Kyiv", "timezone": "Europe/Kyiv"}))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = post(json!({"id": "kyiv-1", "timezone": "UTC"}))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);

    let venue: serde_json::Value = server
        .client
        .get(server.url("/api/v1/venues/kyiv-1"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        venue,
        json!({"id": "kyiv-1", "name": "Silpo Kyiv", "timezone": "Europe/Kyiv"})
    );

    let response = server
        .client
        .get(server.url("/api/v1/venues/nowhere"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(error_message(response).await.contains("nowhere"));
    server.stop().await;
}

async fn groups_and_campaigns_round_trip(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (path, body) in [
        (
            "/api/v1/groups",
            json!({"id": "supermarkets", "name": "Supermarkets"}),
        ),
        (
            "/api/v1/campaigns",
            json!({"id": "june-26", "name": "26 June"}),
        ),
    ] {
        let response = server
            .client
            .post(server.url(path))
            .bearer_auth(&server.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{path}");
        let list: serde_json::Value = server
            .client
            .get(server.url(path))
            .bearer_auth(&server.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list, json!([body]), "{path}");
    }
    server.stop().await;
}

fn ekran() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ekran"))
}

fn with_db(command: &mut Command, db: &TestDb) {
    command.arg("--data").arg(db.data.path());
    match db.database_url() {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
}

async fn token_cli_creates_and_revokes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut create = ekran();
    create.args(["token", "create", "--role", "viewer", "--name", "partner"]);
    with_db(&mut create, &server.db);
    let output = create.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let secret = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(secret.starts_with("ekran_"), "{secret}");

    let venues = |token: String| {
        server
            .client
            .get(server.url("/api/v1/venues"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        venues(secret.clone()).await.unwrap().status(),
        StatusCode::OK
    );

    // Only the hash is stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT secret_sha256 FROM api_tokens")
        .fetch_all(server.state.db().pool())
        .await
        .unwrap();
    assert!(!stored.iter().any(|s| s.contains(&secret)));
    assert!(stored.contains(&ekran::server::auth::hash_secret(&secret)));

    let mut revoke = ekran();
    revoke.args(["token", "revoke", "partner"]);
    with_db(&mut revoke, &server.db);
    assert!(revoke.output().unwrap().status.success());
    assert_eq!(
        venues(secret).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let mut again = ekran();
    again.args(["token", "revoke", "partner"]);
    with_db(&mut again, &server.db);
    let output = again.output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no live token"));
    server.stop().await;
}

async fn server_process_starts_and_stops_on_sigterm(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = ServerProcess::spawn(&db).await;
    let response = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let status = server.terminate().await;
    assert!(
        status.success(),
        "server exit status after SIGTERM: {status:?}"
    );
    // First start made the signing key, private to its owner.
    let key = db.data.path().join("signing/ekran.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "{key:?}");
    if backend == Backend::Sqlite {
        assert!(db.data.path().join("ekran.db").exists());
    }
}
