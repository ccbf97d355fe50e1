//! The bridge between the sync agent and the playback engine: the agent's
//! push-style [`PlaybackPort`] on one side (called from its tokio task),
//! the engine's pull-style [`Source`] on the other (called on the render
//! thread), joined by a channel.
//!
//! The agent journals each finished play durably before it calls
//! [`PlaybackPort::play`] for the next one, so the source answers
//! [`NextItem::NotYet`] until that call arrives: a `preroll` hint is not
//! handed to the engine, because the engine plays whatever it is given and
//! the agent's later choice may differ. The cost is that the next item is
//! prerolled only once it is committed (a short hold of the last picture
//! between items, never a black frame).
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
use crate::agent::run::{PlayEvent, PlayEvents, PlayRequest, PlaybackPort};
use crate::manifest::Overlay;

/// How often a play on screen is checkpointed through the agent.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What the agent asks of the engine, in order.
#[derive(Debug)]
enum PortCall {
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
}

/// The engine's side: a [`Source`] fed by an [`AgentPort`].
#[derive(Debug)]
pub struct AgentSource {
    calls: mpsc::Receiver<PortCall>,
    ready: VecDeque<PlayItem>,
    plays: HashMap<PlayId, PlayEvents>,
    on_screen: Option<OnScreen>,
    controls: VecDeque<Control>,
    ticker: Option<String>,
    next_play: u64,
    ended: bool,
}

#[derive(Debug)]
struct OnScreen {
    play: PlayId,
    last_progress: Instant,
}

/// A connected port and source.
pub fn bridge() -> (AgentPort, AgentSource) {
    let (sender, receiver) = mpsc::channel();
    (
        AgentPort { calls: sender },
        AgentSource {
            calls: receiver,
            ready: VecDeque::new(),
            plays: HashMap::new(),
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
                Ok(PortCall::Play(request, events)) => self.enqueue(*request, events),
                Ok(PortCall::Fallback) => {
                    // Nothing is handed out until the agent plays again; the
                    // engine holds the last picture or its background.
                    self.ready.clear();
                    self.set_ticker(None);
                }
                Ok(PortCall::Pairing(code)) => self.controls.push_back(Control::PairingCode(code)),
                Ok(PortCall::Stop) => {
                    // The agent ended the play (pre-emption, shutdown): its
                    // events are no longer wanted; items not yet started go.
                    self.ready.clear();
                    if let Some(on_screen) = self.on_screen.take() {
                        self.plays.remove(&on_screen.play);
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

    fn enqueue(&mut self, request: PlayRequest, events: PlayEvents) {
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
        self.set_ticker(ticker_text(&request.overlays));
        self.plays.insert(play, events);
        self.ready.push_back(PlayItem {
            play,
            item_id: request.item.id.clone(),
            path: request.media_path,
            kind,
            fit: request.item.fit,
        });
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
                if let Some(events) = self.plays.get(&play) {
                    self.on_screen = Some(OnScreen {
                        play,
                        last_progress: Instant::now(),
                    });
                    events.send(PlayEvent::Started {
                        presented_at: timestamp(presented_at.wall),
                        decoder: decoder.map(|decoder| decoder.element),
                    });
                }
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
                if let Some(events) = self.plays.remove(&play) {
                    events.send(PlayEvent::Finished {
                        first_presented_at: timestamp(first_presented.wall),
                        last_presented_at: timestamp(last_presented.wall),
                        frames_presented,
                        frames_dropped,
                    });
                }
            }
            EngineEvent::Failed { play, reason } => {
                let was_on_screen = self.on_screen.as_ref().is_some_and(|s| s.play == play);
                if was_on_screen {
                    self.on_screen = None;
                }
                if let Some(events) = self.plays.remove(&play) {
                    events.send(PlayEvent::Failed {
                        reason,
                        frames_presented: 0,
                        frames_dropped: 0,
                        last_presented_at: was_on_screen.then(|| timestamp(SystemTime::now())),
                    });
                }
            }
        }
    }

    fn poll_control(&mut self) -> Option<Control> {
        self.drain();
        if let Some(on_screen) = self.on_screen.as_mut()
            && on_screen.last_progress.elapsed() >= PROGRESS_EVERY
        {
            on_screen.last_progress = Instant::now();
            if let Some(events) = self.plays.get(&on_screen.play) {
                events.send(PlayEvent::Progress {
                    last_presented_at: timestamp(SystemTime::now()),
                    frames_presented: 0,
                    frames_dropped: 0,
                });
            }
        }
        self.controls.pop_front()
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
}

/// Plays `source` offscreen in real time until it ends.
pub fn run_headless_realtime(
    source: Box<dyn Source>,
    engine_config: super::EngineConfig,
    config: &RealTimeHeadless,
) -> Result<super::RunStats, super::PlayerError> {
    use super::engine::{Engine, Pacing, TickOutcome};
    use super::headless::{HEADLESS_FORMAT, OffscreenTarget};

    let target = OffscreenTarget::new(config.size)?;
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
