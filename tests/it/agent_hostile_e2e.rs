//! The whole agent against a hostile network path: a proxy in front of the
//! real server passes every request through untouched (device signatures
//! included) except the download of one chosen media file, which it turns
//! into an attack a real server never makes: an endless body, a 1 byte per
//! tick trickle, or a connection that goes silent. Each attack leaves the
//! playing manifest and the cache as they were, the reason reaches the
//! server in the next heartbeat, and once the path is honest again the new
//! manifest activates.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use ekran::agent::boot::Slot;
use ekran::agent::config::PlayerConfig;

use crate::agent_e2e::{Agent, heartbeat_error_containing, manifest_store};
use crate::agent_e2e_support::{Rig, eventually, png};

/// What the proxy does to the download of one media file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// `200` and bytes forever, no length announced.
    Endless,
    /// One byte every 100 ms: alive, far below any throughput floor.
    Trickle,
    /// Headers, then nothing: the connection stays open and silent.
    Silent,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    /// Media SHA-256 → the attack served instead of its bytes.
    attacks: Arc<Mutex<HashMap<String, Attack>>>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a loopback port; returns it and its base URL.
    async fn start(upstream: &str) -> (Self, String) {
        let proxy = Self {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            attacks: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (proxy, base)
    }

    fn attack(&self, sha256: &str, attack: Attack) {
        self.attacks
            .lock()
            .unwrap()
            .insert(sha256.to_owned(), attack);
    }
}

/// Passes a request through to the server, or answers a media download
/// with the attack set for it.
async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let attack = path
        .strip_prefix("/api/v1/media/")
        .and_then(|sha| proxy.attacks.lock().unwrap().get(sha).copied());
    if let Some(attack) = attack {
        return hostile(attack);
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let mut upstream = proxy
        .client
        .request(parts.method, format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(error) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(error.to_string()))
                .unwrap();
        }
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap()
}

fn hop_by_hop(name: &HeaderName) -> bool {
    [
        "connection",
        "transfer-encoding",
        "keep-alive",
        "content-length",
    ]
    .contains(&name.as_str())
}

fn hostile(attack: Attack) -> Response {
    let body = match attack {
        Attack::Endless => Body::from_stream(futures_util::stream::repeat_with(|| {
            Ok::<_, Infallible>(Bytes::from_static(&[0x5a; 16 * 1024]))
        })),
        Attack::Trickle => Body::from_stream(futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((Ok::<_, Infallible>(Bytes::from_static(b"x")), ()))
        })),
        Attack::Silent => {
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, Infallible>>())
        }
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "image/png")
        .body(body)
        .unwrap()
}

/// A config through the proxy, with limits a test can trip quickly.
fn config_through(rig: &Rig, proxy_base: &str) -> PlayerConfig {
    let mut config = rig.config();
    config.server_url = proxy_base.to_owned();
    config.download.min_throughput_bytes_per_s = 4096;
    config.download.throughput_window = Duration::from_millis(400);
    config.download.stall_timeout = Duration::from_millis(600);
    config.download.max_attempts = 2;
    config
}

/// Files in the cache's media dir (verified media only; temp files live elsewhere).
fn cached(config: &PlayerConfig, sha256: &str) -> bool {
    config.cache_dir().join("media").join(sha256).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_downloads_leave_the_playing_manifest_and_cache_untouched_and_are_reported() {
    let rig = Rig::start().await;
    let (proxy, proxy_base) = Proxy::start(&rig.server.base).await;
    let config = config_through(&rig, &proxy_base);
    let screen = "scr-hostile";
    rig.enroll_box(&config, screen).await;
    let first = rig.upload_media(&png("first")).await;
    let old = rig
        .publish("hostile", screen, &[("first", "media/first.png", &first)])
        .await;
    let mut agent = Agent::start(config.clone());
    let (request, mut events) = agent.next_play().await;
    assert_eq!(request.manifest_version, old);

    // Why each attack is refused, as the heartbeat says it (silence trips
    // the throughput floor or the stall timeout, whichever watches first).
    let attacks: [(Attack, &[&str]); 3] = [
        (Attack::Endless, &["more than the declared 4"]),
        (Attack::Trickle, &["below the 4096 bytes/s floor"]),
        (Attack::Silent, &["no data for", " 0 bytes/s is below"]),
    ];
    let mut version = old;
    let mut newest = String::new();
    for (round, (attack, reasons)) in attacks.into_iter().enumerate() {
        let name = format!("new-{round}");
        let sha = rig.upload_media(&png(&name)).await;
        proxy.attack(&sha, attack);
        let media_path = format!("media/{name}.png");
        version = rig
            .publish("hostile", screen, &[(&name, &media_path, &sha)])
            .await;

        let beat = heartbeat_error_containing(&rig, screen, &sha).await;
        let error = beat["last_error"].as_str().unwrap();
        eprintln!("{attack:?}: heartbeat last_error = {error}");
        assert!(
            reasons.iter().any(|reason| error.contains(reason)),
            "{attack:?}: {error}"
        );
        assert_eq!(beat["manifest_version"], old, "{attack:?}: {beat}");
        assert!(!cached(&config, &sha), "{attack:?}: attacked bytes cached");
        let store = manifest_store(&config);
        assert_eq!(
            store.load(Slot::Active).unwrap().unwrap().manifest.version,
            old,
            "{attack:?}: the playing manifest changed"
        );
        // The screen plays on from the old manifest meanwhile.
        agent.play_through(&events, 10, 3).await;
        let (next, next_events) = agent.next_play().await;
        assert_eq!(next.manifest_version, old, "{attack:?}");
        assert!(next.media_path.exists());
        events = next_events;
        newest = sha;
    }
    // The path turns honest: the newest manifest activates.
    proxy.attacks.lock().unwrap().clear();
    eventually(
        Duration::from_secs(20),
        "the newest manifest active once the path is honest",
        || async {
            let active = manifest_store(&config).load(Slot::Active).ok()??;
            (active.manifest.version == version).then_some(())
        },
    )
    .await;
    assert!(
        cached(&config, &newest),
        "the newest media verified in the cache"
    );
    drop(events);
    agent.stop().await;
    rig.server.stop().await;
}
