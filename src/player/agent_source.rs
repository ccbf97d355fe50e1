//! The bridge between the sync agent and the playback engine: the agent's
//! push-style [`PlaybackPort`] on one side (called from its tokio task),
//! the engine's pull-style [`Source`] on the other (called on the render
//! thread), joined by a channel.
//!
//! Gapless switching: when a play starts, the agent commits to the one
//! after it and says so with [`PlaybackPort::preroll`]; the source hands
//! that item to the engine at once, so it is prerolled and switched to
//! without a gap. The agent journals the finished play durably before it
//! calls [`PlaybackPort::play`] for the committed one; until that call
//! the source holds the committed play's events (started, progress,
//! even finished), so no record of it is made before its predecessor's is
//! durable. With nothing committed, the source answers
//! [`NextItem::NotYet`] until `play` arrives. A [`PlaybackPort::stop`]
//! (pre-emption) drops the events of the current and committed plays; the
//! engine cannot take back an item it has prerolled, so those still show.
//!
//! The engine reports no per-frame progress, so the source sends the
//! agent's [`PlayEvent::Progress`] checkpoint about once a second from the
//! render thread while a play is on screen: the refresh about to be drawn
//! is the play's last presented moment so far.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;

use super::{Control, EngineEvent, MediaKind, NextItem, PlayId, PlayItem, Source};
use crate::agent::enroll::PairingEvent;
use crate::agent::heartbeat::{ScreenshotRequest, Screenshots, screenshot_channel};
use crate::agent::run::{PlayEvent, PlayEvents, PlayRequest, PlaybackPort};
use crate::manifest::Overlay;

/// How often a play on screen is checkpointed through the agent.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What the agent asks of the engine, in order.
#[derive(Debug)]
enum PortCall {
    Preroll(Box<PlayRequest>),
    Play(Box<PlayRequest>, PlayEvents),
    Fallback,
    Pairing(Option<String>),
    Stop,
}

/// The agent's side: a [`PlaybackPort`] that forwards to an [`AgentSource`].
/// Dropping it (the agent stopped) ends the engine.
#[derive(Debug)]
pub struct AgentPort {
    calls: mpsc::Sender<PortCall>,
    screenshots: Screenshots,
}

/// The engine's side: a [`Source`] fed by an [`AgentPort`].
#[derive(Debug)]
pub struct AgentSource {
    calls: mpsc::Receiver<PortCall>,
    screenshots: mpsc::Receiver<ScreenshotRequest>,
    ready: VecDeque<PlayItem>,
    plays: HashMap<PlayId, Play>,
    /// Committed plays handed to the engine before the agent's `play`, by
    /// the agent's play id.
    unclaimed: HashMap<String, PlayId>,
    on_screen: Option<OnScreen>,
    controls: VecDeque<Control>,
    ticker: Option<String>,
    next_play: u64,
    ended: bool,
}

/// A play handed to the engine.
#[derive(Debug)]
struct Play {
    /// The agent's channel; `None` until the agent's `play` claims a
    /// committed play.
    events: Option<PlayEvents>,
    /// Events held until then.
    held: Vec<PlayEvent>,
    /// The ticker to show while it is on screen.
    ticker: Option<String>,
}

impl Play {
    fn report(&mut self, event: PlayEvent) {
        match &self.events {
            Some(events) => events.send(event),
            None => self.held.push(event),
        }
    }
}

#[derive(Debug)]
struct OnScreen {
    play: PlayId,
    last_progress: Instant,
}

/// A connected port and source.
pub fn bridge() -> (AgentPort, AgentSource) {
    let (sender, receiver) = mpsc::channel();
    let (screenshots, screenshot_requests) = screenshot_channel();
    (
        AgentPort {
            calls: sender,
            screenshots,
        },
        AgentSource {
            calls: receiver,
            screenshots: screenshot_requests,
            ready: VecDeque::new(),
            plays: HashMap::new(),
            unclaimed: HashMap::new(),
            on_screen: None,
            controls: VecDeque::new(),
            ticker: None,
            next_play: 1,
            ended: false,
        },
    )
}

impl AgentPort {
    fn send(&self, call: PortCall) {
        // A closed channel means the engine is gone; the agent is told by
        // its shutdown signal, nothing to do here.
        let _ = self.calls.send(call);
    }
}

impl PlaybackPort for AgentPort {
    fn preroll(&mut self, next: &PlayRequest) {
        self.send(PortCall::Preroll(Box::new(next.clone())));
    }

    fn play(&mut self, request: PlayRequest, events: PlayEvents) {
        self.send(PortCall::Play(Box::new(request), events));
    }

    fn show_fallback(&mut self) {
        self.send(PortCall::Fallback);
    }

    fn show_pairing(&mut self, event: &PairingEvent) {
        let code = match event {
            PairingEvent::Show(pairing) => {
                tracing::info!(code = %pairing.code, "pairing code on screen; approve it with `ekran screen approve CODE --venue VENUE`");
                Some(pairing.code.clone())
            }
            PairingEvent::Approved { .. } => None,
        };
        self.send(PortCall::Pairing(code));
    }

    fn stop(&mut self) {
        self.send(PortCall::Stop);
    }

    fn screenshots(&self) -> Option<Screenshots> {
        Some(self.screenshots.clone())
    }

    fn graphics(&self) -> Option<crate::agent::heartbeat::GraphicsProbe> {
        Some(super::graphics_in_use)
    }
}

/// The ticker text of a play's overlays, one line.
fn ticker_text(overlays: &[Overlay]) -> Option<String> {
    let texts: Vec<&str> = overlays
        .iter()
        .map(|overlay| match overlay {
            Overlay::Ticker { text, .. } => text.as_str(),
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("   ·   "))
}

fn timestamp(at: SystemTime) -> Timestamp {
    Timestamp::try_from(at).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl AgentSource {
    /// Takes everything the agent asked since the last refresh.
    fn drain(&mut self) {
        loop {
            match self.calls.try_recv() {
                Ok(PortCall::Preroll(request)) => {
                    let play = self.enqueue(&request, None);
                    self.unclaimed.insert(request.play_id.clone(), play);
                }
                Ok(PortCall::Play(request, events)) => {
                    match self.unclaimed.remove(&request.play_id) {
                        Some(play) => self.claim(play, events),
                        None => {
                            self.enqueue(&request, Some(events));
                        }
                    }
                }
                Ok(PortCall::Fallback) => {
                    // Nothing is handed out until the agent plays again; the
                    // engine shows its (black) background.
                    self.ready.clear();
                    self.set_ticker(None);
                    self.controls.push_back(Control::Blank);
                }
                Ok(PortCall::Pairing(code)) => self.controls.push_back(Control::PairingCode(code)),
                Ok(PortCall::Stop) => {
                    // The agent ended the play (pre-emption, shutdown): its
                    // events are no longer wanted; items not yet started go.
                    self.ready.clear();
                    if let Some(on_screen) = self.on_screen.take() {
                        self.plays.remove(&on_screen.play);
                    }
                    for (_, play) in self.unclaimed.drain() {
                        self.plays.remove(&play);
                    }
                }
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => {
                    if !self.ended {
                        self.ended = true;
                        self.controls.push_back(Control::Stop);
                    }
                    return;
                }
            }
        }
    }

    fn set_ticker(&mut self, text: Option<String>) {
        if self.ticker != text {
            self.ticker = text.clone();
            self.controls.push_back(Control::Ticker(text));
        }
    }

    /// The agent's `play` for a committed play: its held events go out,
    /// and it is forgotten if it already ended.
    fn claim(&mut self, play: PlayId, events: PlayEvents) {
        let Some(entry) = self.plays.get_mut(&play) else {
            return;
        };
        let mut ended = false;
        for event in entry.held.drain(..) {
            ended |= matches!(event, PlayEvent::Finished { .. } | PlayEvent::Failed { .. });
            events.send(event);
        }
        entry.events = Some(events);
        if ended {
            self.plays.remove(&play);
        }
    }

    fn enqueue(&mut self, request: &PlayRequest, events: Option<PlayEvents>) -> PlayId {
        let play = PlayId(self.next_play);
        self.next_play += 1;
        let duration = request.item.duration_ms.map(Duration::from_millis);
        let kind = if request.item.media.is_still() {
            MediaKind::Still {
                // The manifest requires a duration for stills; 10 s if absent.
                duration: duration.unwrap_or(Duration::from_secs(10)),
            }
        } else {
            MediaKind::Clip {
                max_duration: duration,
            }
        };
        self.plays.insert(
            play,
            Play {
                events,
                held: Vec::new(),
                ticker: ticker_text(&request.overlays),
            },
        );
        self.ready.push_back(PlayItem {
            play,
            item_id: request.item.id.clone(),
            path: request.media_path.clone(),
            kind,
            fit: request.item.fit,
        });
        play
    }

    /// Reports `event` of `play`; a play that ended is forgotten once its
    /// events reached the agent.
    fn report(&mut self, play: PlayId, event: PlayEvent, ends: bool) {
        let Some(entry) = self.plays.get_mut(&play) else {
            return;
        };
        entry.report(event);
        if ends && entry.events.is_some() {
            self.plays.remove(&play);
        }
    }
}

impl Source for AgentSource {
    fn next_item(&mut self) -> NextItem {
        self.drain();
        match self.ready.pop_front() {
            Some(item) => NextItem::Play(item),
            None if self.ended => NextItem::End,
            None => NextItem::NotYet,
        }
    }

    fn on_event(&mut self, event: EngineEvent) {
        match event {
            EngineEvent::Started {
                play,
                presented_at,
                decoder,
            } => {
                let Some(entry) = self.plays.get(&play) else {
                    return;
                };
                let ticker = entry.ticker.clone();
                self.set_ticker(ticker);
                self.on_screen = Some(OnScreen {
                    play,
                    last_progress: Instant::now(),
                });
                let event = PlayEvent::Started {
                    presented_at: timestamp(presented_at.wall),
                    decoder: decoder.map(|decoder| decoder.element),
                };
                self.report(play, event, false);
            }
            EngineEvent::Finished {
                play,
                frames_presented,
                frames_dropped,
                first_presented,
                last_presented,
            } => {
                if self.on_screen.as_ref().is_some_and(|s| s.play == play) {
                    self.on_screen = None;
                }
                let event = PlayEvent::Finished {
                    first_presented_at: timestamp(first_presented.wall),
                    last_presented_at: timestamp(last_presented.wall),
                    frames_presented,
                    frames_dropped,
                };
                self.report(play, event, true);
            }
            EngineEvent::Failed { play, reason } => {
                let was_on_screen = self.on_screen.as_ref().is_some_and(|s| s.play == play);
                if was_on_screen {
                    self.on_screen = None;
                }
                let event = PlayEvent::Failed {
                    reason,
                    frames_presented: 0,
                    frames_dropped: 0,
                    last_presented_at: was_on_screen.then(|| timestamp(SystemTime::now())),
                };
                self.report(play, event, true);
            }
        }
    }

    fn poll_control(&mut self) -> Option<Control> {
        self.drain();
        if let Some(on_screen) = self.on_screen.as_mut()
            && on_screen.last_progress.elapsed() >= PROGRESS_EVERY
        {
            on_screen.last_progress = Instant::now();
            let play = on_screen.play;
            let event = PlayEvent::Progress {
                last_presented_at: timestamp(SystemTime::now()),
                frames_presented: 0,
                frames_dropped: 0,
            };
            self.report(play, event, false);
        }
        self.controls.pop_front()
    }

    fn poll_screenshot(&mut self) -> Option<ScreenshotRequest> {
        self.screenshots.try_recv().ok()
    }
}

/// Headless output for the player daemon: like [`super::headless`], but
/// paced by the wall clock (the agent schedules by real time and journals
/// the engine's presented times), with a PNG snapshot every
/// `snapshot_every` when `snapshot_dir` is set.
#[derive(Debug, Clone)]
pub struct RealTimeHeadless {
    /// Output size in pixels.
    pub size: (u32, u32),
    /// Refreshes per second.
    pub refresh_hz: f64,
    /// Where snapshots go, if anywhere.
    pub snapshot_dir: Option<std::path::PathBuf>,
    /// Time between snapshots.
    pub snapshot_every: Duration,
    /// The graphics APIs wgpu may use (`output.backend`).
    pub backends: wgpu::Backends,
}

/// Plays `source` offscreen in real time until it ends.
pub fn run_headless_realtime(
    source: Box<dyn Source>,
    engine_config: super::EngineConfig,
    config: &RealTimeHeadless,
) -> Result<super::RunStats, super::PlayerError> {
    use super::engine::{Engine, Pacing, TickOutcome};
    use super::headless::{HEADLESS_FORMAT, OffscreenTarget};

    let target = OffscreenTarget::with_backends(config.size, config.backends)?;
    let text =
        super::text::TextOverlay::new(target.device(), target.queue(), HEADLESS_FORMAT, None);
    let renderer = super::render::Renderer::new(
        target.device(),
        target.queue(),
        HEADLESS_FORMAT,
        [0, 0, 0],
        text,
    );
    let period = Duration::from_secs_f64(1.0 / config.refresh_hz.clamp(1.0, 240.0));
    let engine_config = super::EngineConfig {
        refresh_period: period,
        ..engine_config
    };
    let mut engine = Engine::new(
        renderer,
        source,
        engine_config,
        Pacing::RealTime,
        std::sync::Arc::new(|| {}),
    )?;
    if let Some(dir) = &config.snapshot_dir {
        std::fs::create_dir_all(dir).map_err(|e| super::PlayerError::Write {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
    }
    let started = Instant::now();
    let mut next_snapshot = Duration::ZERO;
    for index in 1u32.. {
        let clock = started.elapsed();
        if engine.tick(clock, target.view(), target.size()) == TickOutcome::Finished {
            break;
        }
        if let Some(request) = engine.screenshot_request() {
            target.answer_screenshot(request);
        }
        // One frame in flight: the software rasterizer draws it before the next.
        let _ = target.device().poll(wgpu::PollType::wait_indefinitely());
        if let Some(dir) = &config.snapshot_dir
            && clock >= next_snapshot
        {
            let path = dir.join(format!("snapshot-{:08}.png", clock.as_millis()));
            target
                .read_back()
                .save(&path)
                .map_err(|e| super::PlayerError::Write {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            next_snapshot = clock + config.snapshot_every.max(period);
        }
        let due = period * index;
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    Ok(engine.finish())
}
