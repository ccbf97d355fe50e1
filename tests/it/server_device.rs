//! Enrollment with pairing codes and signed device requests, on both backends.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::server_support::{Backend, TestDevice, TestServer, ensure_venue, error_message};

both_backends!(
    enrollment_then_signed_requests,
    replayed_tampered_and_unknown_requests_are_401,
    pairing_codes_expire_and_are_single_use,
    heartbeat_is_stored_as_latest_status,
);

async fn approve(server: &TestServer, code: &str, body: serde_json::Value) -> reqwest::Response {
    server
        .client
        .post(server.url(&format!("/api/v1/pairings/{code}/approve")))
        .bearer_auth(&server.admin)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn enrollment_then_signed_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    ensure_venue(&server, "dushanbe-1", "Asia/Dushanbe").await;
    let device = TestDevice::new();
    let code = device.enroll(&server).await;
    assert_eq!(code.len(), 9, "{code}");
    // A retrying box gets the same code while it is valid.
    assert_eq!(device.enroll(&server).await, code);

    // Not approved yet: the box is told so.
    let response = device
        .send(&server, "GET", "/api/v1/device/self", b"")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        error_message(response)
            .await
            .contains("waiting for approval")
    );

    // Only an admin approves.
    let manager = server.token(ekran::server::auth::Role::Manager).await;
    let response = server
        .client
        .post(server.url(&format!("/api/v1/pairings/{code}/approve")))
        .bearer_auth(manager)
        .json(&json!({"venue": "dushanbe-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Typed in lower case without the dash still works.
    let typed = code.replace('-', " ").to_lowercase();
    let response = approve(
        &server,
        &typed,
        json!({"venue": "dushanbe-1", "groups": ["supermarkets"], "screen_id": "dyu-korvon-1"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let screen: serde_json::Value = response.json().await.unwrap();
    assert_eq!(screen["id"], "dyu-korvon-1");
    assert_eq!(screen["groups"], json!(["supermarkets"]));
    assert_eq!(
        screen["key_id"],
        ekran::keys::key_id(&device.key.verifying_key())
    );

    let response = device
        .send(&server, "GET", "/api/v1/device/self", b"")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: serde_json::Value = response.json().await.unwrap();
    assert_eq!(me["screen_id"], "dyu-korvon-1");
    assert_eq!(me["timezone"], "Asia/Dushanbe");
    assert_eq!(me["server_key_id"], server.state.signer().key_id);

    // Enrolling an enrolled key again is a conflict, not a new code.
    let body = serde_json::to_vec(&json!({"public_key": device.public_pem()})).unwrap();
    let response = device.send(&server, "POST", "/api/v1/enroll", &body).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    server.stop().await;
}

async fn replayed_tampered_and_unknown_requests_are_401(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-lobby").await;
    let heartbeat = br#"{"uptime_s": 5}"#;

    let header = device.authorization("POST", "/api/v1/device/heartbeat", heartbeat);
    let send = |header: String, path: &'static str, body: &'static [u8]| {
        server
            .client
            .post(server.url(path))
            .header("authorization", header)
            .body(body.to_vec())
            .send()
    };
    assert_eq!(
        send(header.clone(), "/api/v1/device/heartbeat", heartbeat)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // The same signed request again: replay.
    let response = send(header, "/api/v1/device/heartbeat", heartbeat)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(error_message(response).await.contains("replayed"));

    // Body changed after signing.
    let header = device.authorization("POST", "/api/v1/device/heartbeat", heartbeat);
    let response = send(header, "/api/v1/device/heartbeat", br#"{"uptime_s": 6}"#)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(error_message(response).await.contains("does not verify"));

    // Signed for another path.
    let header = device.authorization("POST", "/api/v1/device/pop", heartbeat);
    let response = send(header, "/api/v1/device/heartbeat", heartbeat)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Signed ten minutes ago.
    let old = jiff::Timestamp::now().as_millisecond() - 10 * 60 * 1000;
    let header = ekran::server::device::sign_request(
        &device.key,
        "POST",
        "/api/v1/device/heartbeat",
        heartbeat,
        old,
    );
    let response = send(header, "/api/v1/device/heartbeat", heartbeat)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(error_message(response).await.contains("clock"));

    // A key the server never saw.
    let stranger = TestDevice::new();
    let response = stranger
        .send(&server, "POST", "/api/v1/device/heartbeat", heartbeat)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(error_message(response).await.contains("unknown screen key"));

    // A person's token is not a device credential.
    let response = server
        .client
        .get(server.url("/api/v1/device/self"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Enrollment must be signed by the key it registers.
    let other = TestDevice::new();
    let body = serde_json::to_vec(&json!({"public_key": other.public_pem()})).unwrap();
    let response = stranger
        .send(&server, "POST", "/api/v1/enroll", &body)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

async fn pairing_codes_expire_and_are_single_use(backend: Backend) {
    let server = TestServer::start(backend).await;
    ensure_venue(&server, "kyiv-1", "Europe/Kyiv").await;
    let response = approve(&server, "ZZZZ-ZZZZ", json!({"venue": "kyiv-1"})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let device = TestDevice::new();
    let code = device.enroll(&server).await;
    let response = approve(&server, &code, json!({"venue": "nowhere"})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "unknown venue");
    assert_eq!(
        approve(&server, &code, json!({"venue": "kyiv-1"}))
            .await
            .status(),
        StatusCode::CREATED
    );
    let response = approve(
        &server,
        &code,
        json!({"venue": "kyiv-1", "screen_id": "second"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert!(error_message(response).await.contains("already used"));

    let late = TestDevice::new();
    let code = late.enroll(&server).await;
    // Age the code past its 15 minutes.
    sqlx::query("UPDATE pairings SET expires_at_ms = $1 WHERE code = $2")
        .bind(jiff::Timestamp::now().as_millisecond() - 1000)
        .bind(&code)
        .execute(server.state.db().pool())
        .await
        .unwrap();
    let response = approve(&server, &code, json!({"venue": "kyiv-1"})).await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert!(error_message(response).await.contains("expired"));
    // The box asking again gets a fresh code.
    assert_ne!(late.enroll(&server).await, code);
    server.stop().await;
}

async fn heartbeat_is_stored_as_latest_status(backend: Backend) {
    let server = TestServer::start(backend).await;
    let device = TestDevice::enroll_approved(&server, "kyiv-1", &[], "kyiv-lobby").await;
    for uptime in [10, 20] {
        let body = serde_json::to_vec(
            &json!({"uptime_s": uptime, "decoder": "avdec_h264", "stale": false}),
        )
        .unwrap();
        let response = device
            .send(&server, "POST", "/api/v1/device/heartbeat", &body)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer, json!({"screenshot_requested": false}));
    }
    let response = device
        .send(&server, "POST", "/api/v1/device/heartbeat", b"[1,2]")
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let screen: serde_json::Value = server
        .client
        .get(server.url("/api/v1/screens/kyiv-lobby"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(screen["status"]["uptime_s"], 20);
    assert_eq!(screen["status"]["decoder"], "avdec_h264");
    assert!(screen["last_heartbeat_ms"].as_i64().unwrap() > 0);

    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("ekran_screens_online 1"), "{metrics}");
    server.stop().await;
}
