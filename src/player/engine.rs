//! The sequencing loop. Once per output refresh the output calls
//! [`Engine::tick`] with the refresh's time; the engine asks its
//! [`Source`] what plays, keeps the next item prerolled, picks for each
//! item the picture whose timestamp is due, switches items on the refresh
//! after the last picture's end (gapless), crossfades if configured, draws
//! through the [`Renderer`] and counts what was presented.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::decode::{self, DecodeConfig, DecodePoll, Decoder, Waker};
use super::frame::Frame;
use super::render::{LayerDraw, PictureTextures, Renderer, Rotation, Scene};
use super::text::TextRequest;
use super::{Control, EngineEvent, MediaKind, NextItem, PlayItem, PresentedAt, Source};

/// At most this many items are started within one refresh, so a source
/// that hands out only failing items cannot spin the loop forever.
const MAX_ITEMS_PER_REFRESH: usize = 8;

/// How the output's clock relates to real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Real time (window): decoders are never waited for; a picture that is
    /// not there in time is late, the one before it stays up.
    RealTime,
    /// Virtual time (headless): each refresh advances the clock by one
    /// period however long it took, and the engine waits for decoders (up
    /// to the stall timeout) so the output is the same on every run.
    Virtual,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Decoder preferences, stall timeout, volume.
    pub decode: DecodeConfig,
    /// Crossfade length between items; zero cuts.
    pub crossfade: Duration,
    /// Rotation of the whole picture (portrait screens).
    pub rotation: Rotation,
    /// The output's refresh period (a frame period at 60 Hz by default);
    /// used when a stream does not say how long its pictures last.
    pub refresh_period: Duration,
    /// How many finished items' statistics [`RunStats::items`] keeps:
    /// `None`, every play (`ekran play --stats` writes them all); `Some(n)`,
    /// about the last `n`, for a player that runs for months and would
    /// otherwise hold one entry per play forever.
    pub item_history: Option<usize>,
}

/// [`EngineConfig::item_history`] of a screen's long-running player.
pub const PLAYER_ITEM_HISTORY: usize = 64;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            decode: DecodeConfig::default(),
            crossfade: Duration::ZERO,
            rotation: Rotation::R0,
            refresh_period: Duration::from_nanos(1_000_000_000 / 60),
            item_history: None,
        }
    }
}

/// How an item's play ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Still on screen when the stats were taken.
    Playing,
    /// Played to its end or duration.
    Completed,
    /// Could not play; see `error`.
    Failed,
    /// Stopped before its end.
    Interrupted,
}

/// Per-item statistics, as `ekran play --stats` writes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemStats {
    /// The file.
    pub path: String,
    /// GStreamer decoder element (clips); `image` for stills.
    pub decoder: Option<String>,
    /// Whether the decoder is a hardware one.
    pub hardware: bool,
    /// Distinct pictures shown (a still counts one).
    pub frames_presented: u64,
    /// Pictures decoded but superseded before they were shown.
    pub frames_dropped: u64,
    /// Engine clock at the refresh showing the first picture.
    pub first_presented_ms: Option<f64>,
    /// Engine clock at the last refresh showing the item.
    pub last_presented_ms: Option<f64>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed.
    pub error: Option<String>,
}

/// Statistics of a whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Every play in order.
    pub items: Vec<ItemStats>,
    /// Refreshes that showed no picture at all (background only) between
    /// the first picture and the end.
    pub black_frames: u64,
    /// Largest time between the last refresh showing one item and the
    /// first showing the next; one refresh period means seamless.
    pub max_gap_ms: f64,
    /// Plays dropped from the front of `items` (see
    /// [`EngineConfig::item_history`]): the play numbered `i` since the
    /// start is `items[i - dropped]`.
    #[serde(skip)]
    pub dropped_items: usize,
}

impl RunStats {
    /// The statistics of play number `index` (counted from the start).
    fn item_mut(&mut self, index: usize) -> &mut ItemStats {
        &mut self.items[index - self.dropped_items]
    }

    /// Drops the oldest finished plays beyond `keep`, in bulk once twice
    /// as many have gathered (items still playing are never dropped).
    fn trim(&mut self, keep: usize) {
        if self.items.len() < 2 * keep.max(1) {
            return;
        }
        let finished = self.items[..self.items.len() - keep]
            .iter()
            .take_while(|item| item.outcome != Outcome::Playing)
            .count();
        self.items.drain(..finished);
        self.dropped_items += finished;
    }
}

/// Timing of the picture currently up for an item.
#[derive(Debug, Clone, Copy)]
struct Shown {
    end: Duration,
    presented: bool,
}

/// An item being decoded and shown.
struct Playing {
    item: PlayItem,
    /// `None` when the pipeline could not even start (`failure` says why).
    decoder: Option<Decoder>,
    /// A failure found before the item's turn, reported when it comes.
    failure: Option<String>,
    textures: PictureTextures,
    stats_index: usize,
    started_at: Option<Duration>,
    first_pts: Duration,
    shown: Option<Shown>,
    pending: Option<Frame>,
    eos: bool,
}

enum Advance {
    /// A picture of the item is up; `first` on the refresh it started.
    Showing { first: bool },
    /// The first picture is not decoded yet (real-time pacing only).
    Waiting,
    /// Its end has passed: the next item shows on this refresh.
    Ended,
    /// It cannot play.
    Failed(String),
}

/// Whether the engine has more to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickOutcome {
    /// Keep calling [`Engine::tick`].
    Running,
    /// The source ended and the last item is done (or a stop was asked).
    Finished,
}

/// The playback engine; see the module docs of [`super`] for its interface.
pub struct Engine {
    config: EngineConfig,
    pacing: Pacing,
    renderer: Renderer,
    source: Box<dyn Source>,
    waker: Waker,
    current: Option<Playing>,
    next: Option<Playing>,
    /// The item before `current`: crossfaded out, or held on screen while
    /// `current` waits for its first picture.
    previous: Option<Playing>,
    source_ended: bool,
    stopped: bool,
    ticker: Option<String>,
    pairing_code: Option<String>,
    stats: RunStats,
    /// Engine clock of the last refresh that showed a (non-held) item.
    last_item_presented: Option<Duration>,
    started_wall: SystemTime,
}

impl Engine {
    /// An engine drawing with `renderer` what `source` hands out. `waker`
    /// is called from decoder threads when a picture is ready.
    pub fn new(
        renderer: Renderer,
        source: Box<dyn Source>,
        config: EngineConfig,
        pacing: Pacing,
        waker: Waker,
    ) -> Result<Self, super::PlayerError> {
        decode::prefer_hardware_decoders(&config.decode.hardware_decoders)?;
        Ok(Engine {
            config,
            pacing,
            renderer,
            source,
            waker,
            current: None,
            next: None,
            previous: None,
            source_ended: false,
            stopped: false,
            ticker: None,
            pairing_code: None,
            stats: RunStats::default(),
            last_item_presented: None,
            started_wall: SystemTime::now(),
        })
    }

    /// Statistics so far.
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// The renderer (for outputs that read back what was drawn).
    pub fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    /// A screenshot the source asks for: outputs call this after
    /// [`Self::tick`] and answer it with the refresh just drawn.
    pub fn screenshot_request(&mut self) -> Option<crate::agent::heartbeat::ScreenshotRequest> {
        self.source.poll_screenshot()
    }

    /// Ends the run: items on screen are marked interrupted; items that
    /// were only prerolled never played and are left out.
    pub fn finish(mut self) -> RunStats {
        for playing in [self.current.take(), self.next.take()]
            .into_iter()
            .flatten()
        {
            let stats = self.stats.item_mut(playing.stats_index);
            if stats.outcome == Outcome::Playing && playing.started_at.is_some() {
                stats.outcome = Outcome::Interrupted;
            }
        }
        self.stats
            .items
            .retain(|item| item.outcome != Outcome::Playing);
        self.stats
    }

    fn presented_at(&self, clock: Duration) -> PresentedAt {
        PresentedAt {
            clock,
            wall: self.started_wall + clock,
        }
    }

    /// Advances to the refresh at `now` (engine clock), draws it into
    /// `view` (an output of `size` pixels) and submits the GPU work.
    pub fn tick(
        &mut self,
        now: Duration,
        view: &wgpu::TextureView,
        size: (u32, u32),
    ) -> TickOutcome {
        while let Some(control) = self.source.poll_control() {
            match control {
                Control::Ticker(text) => self.ticker = text,
                Control::PairingCode(code) => self.pairing_code = code,
                Control::Blank => {
                    if self.current.is_none() && self.next.is_none() {
                        self.previous = None;
                    }
                }
                Control::Stop => self.stopped = true,
            }
        }
        if self.stopped {
            return TickOutcome::Finished;
        }
        self.step(now);
        self.preroll_next();
        self.draw(now, view, size);
        if self.current.is_none() && self.next.is_none() && self.source_ended {
            TickOutcome::Finished
        } else {
            TickOutcome::Running
        }
    }

    /// Moves the current item forward, replacing it with the next one as
    /// often as items end or fail on this refresh.
    fn step(&mut self, now: Duration) {
        for _ in 0..MAX_ITEMS_PER_REFRESH {
            if self.current.is_none() {
                self.current = self.next.take().or_else(|| self.start_from_source());
                if self.current.is_none() {
                    return;
                }
            }
            let Some(playing) = self.current.as_mut() else {
                return;
            };
            let advance = playing.advance(
                now,
                self.pacing,
                &self.renderer,
                &self.config,
                &mut self.stats,
            );
            match advance {
                Advance::Showing { first } => {
                    if first {
                        self.on_first_picture(now);
                    }
                    return;
                }
                Advance::Waiting => return,
                Advance::Ended => {
                    let Some(ended) = self.current.take() else {
                        return;
                    };
                    self.finish_item(ended, None);
                }
                Advance::Failed(reason) => {
                    let Some(failed) = self.current.take() else {
                        return;
                    };
                    self.finish_item(failed, Some(reason));
                }
            }
        }
    }

    fn on_first_picture(&mut self, now: Duration) {
        let Some(playing) = self.current.as_ref() else {
            return;
        };
        let decoder = playing
            .decoder
            .as_ref()
            .and_then(|d| d.decoder_used().cloned());
        let play = playing.item.play;
        {
            let stats = self.stats.item_mut(playing.stats_index);
            match &decoder {
                Some(used) => {
                    stats.decoder = Some(used.element.clone());
                    stats.hardware = used.hardware;
                }
                None if matches!(playing.item.kind, MediaKind::Still { .. }) => {
                    stats.decoder = Some("image".into());
                }
                None => {}
            }
        }
        if let Some(last) = self.last_item_presented {
            let gap = now.saturating_sub(last).as_secs_f64() * 1000.0;
            self.stats.max_gap_ms = self.stats.max_gap_ms.max(round_ms(gap));
        }
        // The crossfade starts now; without one the previous item is gone.
        if self.config.crossfade.is_zero() {
            self.previous = None;
        }
        let presented_at = self.presented_at(now);
        self.source.on_event(EngineEvent::Started {
            play,
            presented_at,
            decoder,
        });
    }

    fn finish_item(&mut self, playing: Playing, failure: Option<String>) {
        let play = playing.item.play;
        let stats = self.stats.item_mut(playing.stats_index);
        match failure {
            Some(reason) => {
                tracing::warn!(path = %playing.item.path.display(), %reason, "item failed");
                stats.outcome = Outcome::Failed;
                stats.error = Some(reason.clone());
                self.source.on_event(EngineEvent::Failed { play, reason });
            }
            None => {
                // A picture picked on the refresh the item ended on never
                // reached the screen.
                if playing.shown.is_some_and(|shown| !shown.presented) {
                    stats.frames_dropped += 1;
                }
                stats.outcome = Outcome::Completed;
                let (frames_presented, frames_dropped) =
                    (stats.frames_presented, stats.frames_dropped);
                let first =
                    Duration::from_secs_f64(stats.first_presented_ms.unwrap_or(0.0) / 1000.0);
                let last = Duration::from_secs_f64(stats.last_presented_ms.unwrap_or(0.0) / 1000.0);
                tracing::info!(path = %playing.item.path.display(), frames_presented, frames_dropped, "item completed");
                let event = EngineEvent::Finished {
                    play,
                    frames_presented,
                    frames_dropped,
                    first_presented: self.presented_at(first),
                    last_presented: self.presented_at(last),
                };
                self.source.on_event(event);
            }
        }
        // Keep its last picture: held until the next item has one, or
        // crossfaded out.
        if playing.shown.is_some() {
            self.previous = Some(playing);
        }
    }

    /// Asks the source for an item and starts decoding it.
    fn start_from_source(&mut self) -> Option<Playing> {
        if self.source_ended {
            return None;
        }
        match self.source.next_item() {
            NextItem::Play(item) => Some(self.start_item(item)),
            NextItem::NotYet => None,
            NextItem::End => {
                self.source_ended = true;
                None
            }
        }
    }

    /// The next item starts decoding as soon as the current one is up, so
    /// its first picture waits ready at the switch.
    fn preroll_next(&mut self) {
        let current_started = self
            .current
            .as_ref()
            .is_some_and(|c| c.started_at.is_some());
        if current_started && self.next.is_none() {
            self.next = self.start_from_source();
        }
        if let Some(next) = self.next.as_mut()
            && next.pending.is_none()
            && next.failure.is_none()
            && let Some(decoder) = next.decoder.as_mut()
        {
            // Take the first picture off the channel early (no wait); a
            // failure is reported when the item's turn comes, in order.
            match decoder.poll(Duration::ZERO) {
                DecodePoll::Frame(frame) => next.pending = Some(frame),
                DecodePoll::Pending | DecodePoll::Eos => {}
                DecodePoll::Failed(error) => next.failure = Some(error.to_string()),
            }
        }
    }

    fn start_item(&mut self, item: PlayItem) -> Playing {
        tracing::info!(path = %item.path.display(), play = item.play.0, "preparing");
        if let Some(keep) = self.config.item_history {
            self.stats.trim(keep);
        }
        self.stats.items.push(ItemStats {
            path: item.path.display().to_string(),
            decoder: None,
            hardware: false,
            frames_presented: 0,
            frames_dropped: 0,
            first_presented_ms: None,
            last_presented_ms: None,
            outcome: Outcome::Playing,
            error: None,
        });
        let stats_index = self.stats.dropped_items + self.stats.items.len() - 1;
        let (decoder, failure) = match item.kind {
            MediaKind::Still { .. } => (
                Some(Decoder::start_still(
                    &item.path,
                    self.waker.clone(),
                    self.config.decode.stall_timeout,
                )),
                None,
            ),
            MediaKind::Clip { .. } => {
                match Decoder::start_clip(&item.path, &self.config.decode, self.waker.clone()) {
                    Ok(decoder) => (Some(decoder), None),
                    Err(error) => (None, Some(error.to_string())),
                }
            }
        };
        Playing {
            item,
            decoder,
            failure,
            textures: PictureTextures::new(),
            stats_index,
            started_at: None,
            first_pts: Duration::ZERO,
            shown: None,
            pending: None,
            eos: false,
        }
    }

    fn draw(&mut self, now: Duration, view: &wgpu::TextureView, size: (u32, u32)) {
        let mut layers = Vec::with_capacity(2);
        let current_up = self.current.as_ref().filter(|c| c.shown.is_some());
        let mut fading_in = 1.0;
        if let Some(current) = current_up
            && let Some(started) = current.started_at
            && !self.config.crossfade.is_zero()
        {
            fading_in = (now.saturating_sub(started).as_secs_f32()
                / self.config.crossfade.as_secs_f32())
            .min(1.0);
            if fading_in >= 1.0 {
                self.previous = None;
            }
        }
        let current_up = self.current.as_ref().filter(|c| c.shown.is_some());
        // Below the current item: the previous one while it fades out, or
        // held while the current one has no picture yet.
        if let Some(previous) = &self.previous
            && (current_up.is_none() || fading_in < 1.0)
        {
            layers.push(LayerDraw {
                picture: &previous.textures,
                fit: previous.item.fit,
                opacity: 1.0,
            });
        }
        if let Some(current) = current_up {
            layers.push(LayerDraw {
                picture: &current.textures,
                fit: current.item.fit,
                opacity: if self.previous.is_some() {
                    fading_in
                } else {
                    1.0
                },
            });
        }
        let text = TextRequest {
            ticker: self.ticker.as_deref(),
            pairing_code: self.pairing_code.as_deref(),
        };
        if layers.is_empty() && self.last_item_presented.is_some() && self.pairing_code.is_none() {
            self.stats.black_frames += 1;
        }
        let scene = Scene {
            layers: &layers,
            text,
        };
        self.renderer
            .render(view, size, self.config.rotation, &scene, now.as_secs_f64());

        if let Some(current) = self.current.as_mut()
            && let Some(shown) = current.shown.as_mut()
        {
            let stats = self.stats.item_mut(current.stats_index);
            if !shown.presented {
                shown.presented = true;
                stats.frames_presented += 1;
            }
            let ms = round_ms(now.as_secs_f64() * 1000.0);
            stats.first_presented_ms.get_or_insert(ms);
            stats.last_presented_ms = Some(ms);
            self.last_item_presented = Some(now);
        }
    }
}

/// When a picture with timestamp `pts` is due on the engine clock, for an
/// item whose first picture (`first_pts`) went up at `started`.
fn due(started: Duration, first_pts: Duration, pts: Duration) -> Duration {
    started + pts.saturating_sub(first_pts)
}

fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

impl Playing {
    /// Moves the item to the refresh at `now`: starts it, picks the due
    /// picture (counting the ones superseded unseen as dropped), and says
    /// whether it has ended.
    fn advance(
        &mut self,
        now: Duration,
        pacing: Pacing,
        renderer: &Renderer,
        config: &EngineConfig,
        stats: &mut RunStats,
    ) -> Advance {
        if let Some(reason) = self.failure.take() {
            return Advance::Failed(reason);
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return Advance::Failed("no decoder".into());
        };
        let wait = match pacing {
            Pacing::Virtual => config.decode.stall_timeout,
            Pacing::RealTime => Duration::ZERO,
        };

        let Some(started) = self.started_at else {
            // An audible clip waits in PAUSED until its turn: start it now
            // (a no-op for muted clips, which run from the preroll on).
            decoder.play();
            let first = match self.pending.take() {
                Some(frame) => frame,
                // Virtual time waits out the first picture's whole allowance.
                None => match decoder.poll(wait * decode::FIRST_PICTURE_STALL_PERIODS) {
                    DecodePoll::Frame(frame) => frame,
                    DecodePoll::Pending => return Advance::Waiting,
                    DecodePoll::Eos => {
                        return Advance::Failed("ended before its first picture".into());
                    }
                    DecodePoll::Failed(error) => return Advance::Failed(error.to_string()),
                },
            };
            self.started_at = Some(now);
            self.first_pts = first.pts;
            self.show(first, now, renderer, config);
            return Advance::Showing { first: true };
        };

        let on_screen = now.saturating_sub(started);
        let cut = match self.item.kind {
            MediaKind::Still { duration } => Some(duration),
            MediaKind::Clip { max_duration } => max_duration,
        };
        if cut.is_some_and(|limit| on_screen >= limit) {
            return Advance::Ended;
        }

        let mut newest: Option<Frame> = None;
        let mut dropped = 0;
        loop {
            if self.pending.is_none() && !self.eos {
                match decoder.poll(wait) {
                    DecodePoll::Frame(frame) => self.pending = Some(frame),
                    DecodePoll::Eos => self.eos = true,
                    DecodePoll::Pending => break,
                    DecodePoll::Failed(error) => return Advance::Failed(error.to_string()),
                }
            }
            match self.pending.take() {
                Some(frame) if due(started, self.first_pts, frame.pts) <= now => {
                    if newest.replace(frame).is_some() {
                        dropped += 1;
                    }
                }
                other => {
                    self.pending = other;
                    break;
                }
            }
        }
        stats.item_mut(self.stats_index).frames_dropped += dropped;
        if let Some(frame) = newest {
            let due = due(started, self.first_pts, frame.pts);
            self.show(frame, due, renderer, config);
        }

        let is_clip = matches!(self.item.kind, MediaKind::Clip { .. });
        let last_picture_over = self.shown.is_some_and(|shown| now >= shown.end);
        if is_clip && self.eos && self.pending.is_none() && last_picture_over {
            return Advance::Ended;
        }
        Advance::Showing { first: false }
    }

    fn show(&mut self, frame: Frame, due: Duration, renderer: &Renderer, config: &EngineConfig) {
        let length = frame.duration.unwrap_or(config.refresh_period);
        renderer.upload(&mut self.textures, &frame);
        self.shown = Some(Shown {
            end: due + length,
            presented: false,
        });
    }
}
