//! Screenshots on request: the whole player (agent + headless engine on
//! lavapipe) against a small device server on loopback whose heartbeat
//! answer asks for a screenshot. The player must read back the frame it
//! shows (poster and ticker band), scale it down to a small PNG and `PUT`
//! it, signed like every device request; `204` answers ask for nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, Verifier as _};
use ekran::agent::boot::{ManifestStore, Slot};
use ekran::agent::cache::MediaCache;
use ekran::agent::client::{SCREENSHOT_PATH, ServerClock};
use ekran::agent::config::PlayerConfig;
use ekran::agent::run::{manifest_dir, run_with_clock};
use ekran::manifest::Overlay;
use ekran::player::EngineConfig;
use ekran::player::agent_source::{RealTimeHeadless, bridge, run_headless_realtime};
use ekran::trust::{Acceptance, TrustState, accept_in_dir};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::agent_boot::{SCREEN, clock, envelope, manifest, media, root};

/// The poster's colour: the screenshot's content must show it.
const POSTER: [u8; 3] = [230, 120, 20];

/// One request as the device server saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What the device server has seen.
#[derive(Debug, Default)]
struct Seen {
    heartbeats: usize,
    asked: bool,
    screenshots: Vec<Request>,
}

/// A device server: the first heartbeat reporting an item on screen is
/// answered with `{"screenshot_requested": true}`, all others with `204`; screenshots
/// are stored; manifest long-polls are held open (nothing new);
/// proof-of-play uploads get `503`. Each request is sent to `events`.
async fn device_server(seen: Arc<Mutex<Seen>>, events: mpsc::UnboundedSender<Request>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (seen, events) = (seen.clone(), events.clone());
            tokio::spawn(async move {
                let _ = answer(stream, seen, events).await;
            });
        }
    });
    url
}

async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let mut start = lines.next().unwrap_or_default().split(' ');
    let method = start.next().unwrap_or_default().to_owned();
    let path = start.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

async fn answer(
    mut stream: TcpStream,
    seen: Arc<Mutex<Seen>>,
    events: mpsc::UnboundedSender<Request>,
) -> std::io::Result<()> {
    while let Some(request) = read_request(&mut stream).await? {
        let _ = events.send(request.clone());
        let reply: String = match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/api/v1/device/heartbeat") => {
                let report: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                let ask = {
                    let mut seen = seen.lock().unwrap();
                    seen.heartbeats += 1;
                    let ask = !seen.asked && !report["current_item"].is_null();
                    seen.asked |= ask;
                    ask
                };
                if ask {
                    let body = r#"{"screenshot_requested": true}"#;
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
                }
            }
            ("PUT", SCREENSHOT_PATH) => {
                seen.lock().unwrap().screenshots.push(request.clone());
                "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
            }
            ("GET", path) if path.starts_with("/api/v1/device/manifest") => {
                // Nothing new: the long-poll stays open until the agent stops.
                std::future::pending::<()>().await;
                unreachable!()
            }
            _ => "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_owned(),
        };
        stream.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// An enrolled box playing one full-screen poster with a ticker.
fn enrolled_box(config: &PlayerConfig, screen_key: &SigningKey) {
    let clock = clock();
    let trust = config.trust_dir();
    std::fs::create_dir_all(&trust).unwrap();
    TrustState::enroll(SCREEN, root(), &clock)
        .unwrap()
        .save(&trust)
        .unwrap();
    ekran::keys::write_signing_key(&config.screen_key_path(), screen_key).unwrap();

    let poster = image::RgbImage::from_pixel(64, 36, image::Rgb(POSTER));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(poster)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    let poster_media = media(&bytes, "poster");
    let mut plan = manifest(5, &[&poster_media]);
    plan.overlays.push(
        serde_json::from_value::<Overlay>(serde_json::json!({
            "kind": "ticker", "campaign": "udhr-2026", "text": "Горячая линия 1313",
            "flight": {"start": "2026-12-01", "end": "2026-12-31"},
        }))
        .unwrap(),
    );
    let (envelope, payload) = envelope(&plan);
    let Acceptance::New {
        manifest: accepted, ..
    } = accept_in_dir(&trust, &envelope, &clock).unwrap()
    else {
        panic!("a new manifest");
    };
    ManifestStore::new(&manifest_dir(config))
        .save(Slot::Active, &envelope, &payload, &accepted)
        .unwrap();
    let cache = MediaCache::open(&config.cache_dir(), config.cache.quota_bytes).unwrap();
    std::fs::write(cache.temp_path(&poster_media.sha256).unwrap(), &bytes).unwrap();
    cache.commit(&poster_media).unwrap();
}

/// Checks the `Ekran-Device` signature of `request` with `key`.
fn assert_signed_by(request: &Request, key: &SigningKey) {
    let authorization = request.header("authorization").expect("signed request");
    let field = |name: &str| {
        let start = authorization
            .find(&format!("{name}=\""))
            .unwrap_or_else(|| panic!("{name} in {authorization}"))
            + name.len()
            + 2;
        let end = start + authorization[start..].find('"').unwrap();
        authorization[start..end].to_owned()
    };
    assert!(
        authorization.starts_with("Ekran-Device "),
        "{authorization}"
    );
    assert_eq!(field("keyid"), ekran::keys::key_id(&key.verifying_key()));
    let message = format!(
        "ekran-device-request-v1\n{}\n{}\n{}\n{}\n{}",
        request.method,
        request.path,
        hex::encode(Sha256::digest(&request.body)),
        field("ts"),
        field("nonce"),
    );
    let signature = base64::engine::general_purpose::STANDARD
        .decode(field("sig"))
        .unwrap();
    key.verifying_key()
        .verify(
            message.as_bytes(),
            &Signature::from_slice(&signature).unwrap(),
        )
        .expect("the screenshot upload verifies with the screen key");
}

fn close(actual: [u8; 3], expected: [u8; 3], tolerance: u8) -> bool {
    actual
        .iter()
        .zip(expected)
        .all(|(a, e)| a.abs_diff(e) <= tolerance)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_asking_for_a_screenshot_gets_a_small_png_of_the_frame_on_screen() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (events, mut requests) = mpsc::unbounded_channel();
    let url = device_server(seen.clone(), events).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = PlayerConfig {
        server_url: url,
        data_dir: dir.path().to_owned(),
        ..PlayerConfig::default()
    };
    config.sync.heartbeat_interval = Duration::from_millis(100);
    config.sync.backoff_base = Duration::from_millis(50);
    config.sync.backoff_cap = Duration::from_millis(200);
    let screen_key = SigningKey::from_bytes(&[42; 32]);
    enrolled_box(&config, &screen_key);

    let (port, source) = bridge();
    let engine = std::thread::spawn(move || {
        run_headless_realtime(
            Box::new(source),
            EngineConfig::default(),
            &RealTimeHeadless {
                size: (640, 360),
                refresh_hz: 10.0,
                snapshot_dir: None,
                snapshot_every: Duration::from_secs(1),
                backends: wgpu::Backends::all(),
            },
        )
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let box_clock = Arc::new(ServerClock::new(Arc::new(clock())));
    let agent = tokio::spawn(run_with_clock(config, port, box_clock, async move {
        let _ = stopped.await;
    }));

    // The first heartbeat with the poster on screen asks; the upload follows.
    let upload = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let request = requests.recv().await.expect("server running");
            if request.method == "PUT" {
                return request;
            }
        }
    })
    .await
    .expect("a screenshot was uploaded");
    assert_eq!(upload.path, SCREENSHOT_PATH);
    assert_eq!(upload.header("content-type"), Some("image/png"));
    assert_signed_by(&upload, &screen_key);
    let png = image::load_from_memory_with_format(&upload.body, image::ImageFormat::Png)
        .expect("a valid PNG")
        .into_rgb8();
    // 640×360 scaled to 480 wide, aspect kept.
    assert_eq!(png.dimensions(), (480, 270));
    // The poster fills the frame…
    let middle = png.get_pixel(240, 100).0;
    assert!(close(middle, POSTER, 4), "poster pixel {middle:?}");
    // …under the ticker band (black at 75 % over the poster), whose text
    // has not yet scrolled to the left edge.
    let band = png.get_pixel(2, 266).0;
    let dimmed = POSTER.map(|c| (f32::from(c) * 0.25).round() as u8);
    assert!(close(band, dimmed, 12), "ticker band pixel {band:?}");

    // Later heartbeats answered 204 ask for nothing: no second upload.
    let heartbeats_then = seen.lock().unwrap().heartbeats;
    tokio::time::timeout(Duration::from_secs(30), async {
        while seen.lock().unwrap().heartbeats < heartbeats_then + 3 {
            requests.recv().await.expect("server running");
        }
    })
    .await
    .expect("heartbeats go on");
    assert_eq!(seen.lock().unwrap().screenshots.len(), 1);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), agent)
        .await
        .expect("the agent stops")
        .unwrap()
        .unwrap();
    let stats = tokio::task::spawn_blocking(move || engine.join().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stats.items.is_empty()
            && stats
                .items
                .iter()
                .all(|item| item.outcome != ekran::player::Outcome::Failed),
        "{stats:?}"
    );
}
