//! Bad input anywhere gets a 4xx naming the problem, stores nothing and
//! leaves the server serving: one table of cases, run on both backends.

use ekran::server::auth::Role;
use reqwest::StatusCode;

use crate::both_backends;
use crate::server_support::{Backend, TestDevice, TestServer};

both_backends!(bad_input_is_refused_with_a_reason);

/// Who sends a case.
#[derive(Clone, Copy)]
enum As {
    Nobody,
    Viewer,
    Admin,
}

struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    who: As,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// A fragment the error message must contain.
    says: &'static str,
}

fn json_case(
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: &str,
    status: u16,
    says: &'static str,
) -> Case {
    Case {
        what,
        method,
        path,
        who: As::Admin,
        content_type: Some("application/json"),
        body: body.as_bytes().to_vec(),
        status,
        says,
    }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        json_case(
            "malformed JSON",
            "POST",
            "/api/v1/venues",
            r#"{"id": "x", "timezone": "#,
            400,
            "EOF",
        ),
        json_case(
            "unknown field",
            "POST",
            "/api/v1/venues",
            r#"{"id":"x","timezone":"UTC","colour":"red"}"#,
            422,
            "colour",
        ),
        json_case(
            "wrong field type",
            "POST",
            "/api/v1/venues",
            r#"{"id":"x","timezone":7}"#,
            422,
            "timezone",
        ),
        json_case(
            "path trick in an id",
            "POST",
            "/api/v1/venues",
            r#"{"id":"../../etc","timezone":"UTC"}"#,
            400,
            "invalid venue id",
        ),
        json_case(
            "unknown time zone",
            "POST",
            "/api/v1/venues",
            r#"{"id":"x","timezone":"Europe/Atlantis"}"#,
            400,
            "Europe/Atlantis",
        ),
        json_case(
            "unknown venue",
            "GET",
            "/api/v1/venues/nowhere",
            "",
            404,
            "nowhere",
        ),
        json_case(
            "unknown screen",
            "PATCH",
            "/api/v1/screens/ghost",
            r#"{"name":"x"}"#,
            404,
            "ghost",
        ),
        json_case(
            "unknown pairing code",
            "POST",
            "/api/v1/pairings/ABCD-EFGH/approve",
            r#"{"venue":"kyiv-1"}"#,
            404,
            "ABCD-EFGH",
        ),
        json_case(
            "venue with screens",
            "DELETE",
            "/api/v1/venues/kyiv-1",
            "",
            409,
            "screen",
        ),
        json_case(
            "unknown role",
            "POST",
            "/api/v1/tokens",
            r#"{"role":"root","name":"x"}"#,
            422,
            "root",
        ),
        json_case(
            "malformed playlist TOML",
            "POST",
            "/api/v1/playlists",
            r#"{"file_name":"bad.toml","source":"campaign = \"x\"\n[targets\n","media":{}}"#,
            400,
            "bad.toml:",
        ),
        json_case(
            "invalid playlist",
            "POST",
            "/api/v1/playlists",
            r#"{"file_name":"p.toml","source":"campaign = \"x\"\ntimezone = \"UTC\"\nwieght = 1\n","media":{}}"#,
            400,
            "wieght",
        ),
        json_case(
            "unknown report parameter",
            "GET",
            "/api/v1/audit/findings?bogus=1",
            "",
            400,
            "bogus",
        ),
        json_case(
            "impossible date",
            "GET",
            "/api/v1/reports/airtime?from=2026-02-30&to=2026-03-01",
            "",
            400,
            "from",
        ),
        json_case(
            "unknown report format",
            "GET",
            "/api/v1/reports/airtime?from=2026-01-01&to=2026-01-02&format=xml",
            "",
            400,
            "xml",
        ),
        json_case(
            "media id that is not a hash",
            "GET",
            "/api/v1/media/..%2Fekran.db",
            "",
            400,
            "SHA-256",
        ),
        json_case(
            "unknown media",
            "GET",
            "/api/v1/media/0000000000000000000000000000000000000000000000000000000000000000",
            "",
            404,
            "no media",
        ),
        json_case(
            "unknown endpoint",
            "GET",
            "/api/v2/everything",
            "",
            404,
            "/api/v2/everything",
        ),
    ];
    cases.push(Case {
        what: "JSON body without its content type",
        content_type: None,
        ..json_case(
            "",
            "POST",
            "/api/v1/venues",
            r#"{"id":"x","timezone":"UTC"}"#,
            415,
            "Content-Type",
        )
    });
    cases.push(Case {
        what: "oversize JSON body",
        body: format!(
            r#"{{"file_name":"x.toml","source":"{}","media":{{}}}}"#,
            "#".repeat(3 * 1024 * 1024)
        )
        .into_bytes(),
        ..json_case("", "POST", "/api/v1/playlists", "", 413, "")
    });
    cases.push(Case {
        what: "wrong media type",
        content_type: Some("video/mp4"),
        body: b"<html>not a video</html>".to_vec(),
        ..json_case(
            "",
            "POST",
            "/api/v1/media",
            "",
            415,
            "not a supported media file",
        )
    });
    cases.push(Case {
        what: "wrong role",
        who: As::Viewer,
        ..json_case(
            "",
            "POST",
            "/api/v1/campaigns",
            r#"{"id":"c"}"#,
            403,
            "manager",
        )
    });
    cases.push(Case {
        what: "no token",
        who: As::Nobody,
        ..json_case("", "GET", "/api/v1/screens", "", 401, "Bearer")
    });
    cases.push(Case {
        what: "unsigned device request",
        who: As::Nobody,
        ..json_case("", "POST", "/api/v1/device/pop", "[]", 401, "Ekran-Device")
    });
    cases.push(Case {
        what: "enrollment without a signature",
        who: As::Nobody,
        ..json_case(
            "",
            "POST",
            "/api/v1/enroll",
            r#"{"public_key":"-----BEGIN PUBLIC KEY-----"}"#,
            400,
            "public key",
        )
    });
    cases
}

async fn table_counts(server: &TestServer) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "venues",
        "screens",
        "campaigns",
        "playlists",
        "media",
        "api_tokens",
        "publications",
        "pairings",
    ] {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(server.state.db().pool())
            .await
            .unwrap();
        counts.push(count);
    }
    counts
}

async fn bad_input_is_refused_with_a_reason(backend: Backend) {
    let server = TestServer::start(backend).await;
    TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-silpo-1").await;
    let viewer = server.token(Role::Viewer).await;
    let before = table_counts(&server).await;

    for case in cases() {
        let mut request = server
            .client
            .request(case.method.parse().unwrap(), server.url(case.path));
        match case.who {
            As::Nobody => {}
            As::Viewer => request = request.bearer_auth(&viewer),
            As::Admin => request = request.bearer_auth(&server.admin),
        }
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.body(case.body.clone()).send().await.unwrap();
        assert_eq!(response.status().as_u16(), case.status, "{}", case.what);
        let body: serde_json::Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: error body is not JSON: {e}", case.what));
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error message", case.what));
        assert!(
            message.contains(case.says),
            "{}: {message:?} should mention {:?}",
            case.what,
            case.says
        );
    }

    assert_eq!(table_counts(&server).await, before, "nothing was stored");
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK, "still serving");
    server.stop().await;
}
