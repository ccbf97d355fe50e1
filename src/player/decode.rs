//! Decoding: one GStreamer pipeline per clip (`filesrc → decodebin3 →
//! videoconvert → appsink`, see [`default_decodebin`]), hardware decoders
//! raised above software ones by rank, and a
//! thread per still image. Every decoder hands its pictures to the render
//! thread through a bounded channel, so a decoder runs at most one picture
//! ahead and the render thread never waits on GStreamer unless it asks to
//! (headless mode, where time is virtual).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::frame::{ColorMatrix, ColorRange, Colorimetry, Frame, Pixels, PlaneLayout};

/// Hardware decoders in order of preference: Raspberry Pi (stateful and
/// stateless V4L2), VA-API (Intel/AMD), NVDEC. Whichever is installed wins
/// over the software decoders; the rest are skipped.
pub const DEFAULT_HARDWARE_DECODERS: &[&str] = &[
    "v4l2slh265dec",
    "v4l2h264dec",
    "v4l2slh264dec",
    "v4l2h265dec",
    "v4l2slvp9dec",
    "vah264dec",
    "vah265dec",
    "vavp9dec",
    "nvh264dec",
    "nvh265dec",
    "nvvp9dec",
];

/// What goes wrong with one item's media. Each variant fails only that item.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// GStreamer itself could not start (missing system libraries).
    #[error(
        "GStreamer could not be initialised: {0}; install the GStreamer runtime (see .ci/install-deps.sh)"
    )]
    GstInit(String),
    /// The file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The item's file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A GStreamer element the pipeline needs is not installed.
    #[error("GStreamer element {0} is missing; install gstreamer1.0-plugins-base/good/bad")]
    MissingElement(&'static str),
    /// The pipeline could not be assembled or started.
    #[error("cannot start the decoding pipeline for {path}: {reason}")]
    Pipeline {
        /// The item's file.
        path: PathBuf,
        /// GStreamer's explanation.
        reason: String,
    },
    /// Demuxing or decoding failed (broken, truncated or non-media file).
    #[error("cannot decode {path}: {reason}")]
    Decode {
        /// The item's file.
        path: PathBuf,
        /// GStreamer's error, with its debug detail.
        reason: String,
    },
    /// No picture arrived for too long.
    #[error("decoding {path} stalled: no frame for {seconds:.1} s (pipeline {state})")]
    Stalled {
        /// The item's file.
        path: PathBuf,
        /// How long it waited.
        seconds: f64,
        /// The pipeline's state, for the log.
        state: String,
    },
    /// The stream ended well before the duration its container declares
    /// (an interrupted download or copy).
    #[error(
        "{path} is truncated: pictures end at {played:.2} s of the {declared:.2} s its container declares"
    )]
    Truncated {
        /// The item's file.
        path: PathBuf,
        /// Where the last picture ends, in seconds.
        played: f64,
        /// The container's duration, in seconds.
        declared: f64,
    },
    /// The stream ended without a single picture.
    #[error("{path} contains no video picture")]
    NoPicture {
        /// The item's file.
        path: PathBuf,
    },
    /// A still image could not be decoded.
    #[error("cannot decode image {path}: {source}")]
    Image {
        /// The item's file.
        path: PathBuf,
        /// The image crate's explanation.
        source: image::ImageError,
    },
}

/// Stall periods an item may take for its first picture (see
/// [`DecodeConfig::stall_timeout`]).
pub const FIRST_PICTURE_STALL_PERIODS: u32 = 3;

/// Decoder settings shared by all items.
#[derive(Debug, Clone)]
pub struct DecodeConfig {
    /// Hardware decoder element names, most preferred first; those that are
    /// installed get ranks above every software decoder.
    pub hardware_decoders: Vec<String>,
    /// An item fails when no picture arrives for this long
    /// ([`FIRST_PICTURE_STALL_PERIODS`] times as long for its first).
    pub stall_timeout: Duration,
    /// Audio volume 0.0–1.0; 0 (the default) builds no audio branch at all.
    pub volume: f64,
    /// The decoding bin: `decodebin3` (after a `filesrc`), `uridecodebin3`
    /// or `uridecodebin`; `None` picks [`default_decodebin`].
    pub decodebin: Option<String>,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            hardware_decoders: DEFAULT_HARDWARE_DECODERS
                .iter()
                .map(|name| name.to_string())
                .collect(),
            stall_timeout: Duration::from_secs(5),
            volume: 0.0,
            decodebin: None,
        }
    }
}

/// The decoding bins a clip pipeline can be built with.
pub const DECODEBINS: [&str; 3] = ["decodebin3", "uridecodebin3", "uridecodebin"];

/// `decodebin3` fed by a `filesrc`: the same decoder selection and stream
/// selection as `uridecodebin3`, without its source bin. GStreamer
/// 1.22.0's `uridecodebin3` (Debian 12) now and then never leaves READY
/// when several pipelines start at once in one process (4 pipelines
/// started together, 240 times: 8 stuck with 0 pictures); `filesrc !
/// decodebin3` never did (480 times: none), nor did `uridecodebin`.
pub fn default_decodebin() -> &'static str {
    DECODEBINS[0]
}

/// Initialises GStreamer once per process.
pub fn init_gstreamer() -> Result<(), MediaError> {
    static INIT: Once = Once::new();
    static RESULT: Mutex<Option<String>> = Mutex::new(None);
    INIT.call_once(|| {
        if let Err(error) = gst::init() {
            *RESULT.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        }
    });
    match RESULT.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        Some(error) => Err(MediaError::GstInit(error)),
        None => Ok(()),
    }
}

/// Raises the rank of the installed decoders named in `preferred` above
/// every other decoder (first name highest), so `decodebin3` picks them.
/// Returns the names that were found and raised.
pub fn prefer_hardware_decoders(preferred: &[String]) -> Result<Vec<String>, MediaError> {
    init_gstreamer()?;
    let count = preferred.len() as i32;
    let mut raised = Vec::new();
    for (position, name) in preferred.iter().enumerate() {
        if let Some(factory) = gst::ElementFactory::find(name) {
            // PRIMARY is the highest rank software decoders use; stay above
            // it and keep the list's order among ourselves.
            factory.set_rank(gst::Rank::PRIMARY + 100 + (count - position as i32));
            raised.push(name.clone());
        }
    }
    tracing::info!(hardware_decoders = ?raised, "preferred hardware decoders installed");
    Ok(raised)
}

/// Wakes whoever renders when a new picture is ready (the winit event loop
/// through its proxy; nothing in headless mode, which waits on the channel).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// What a decoder has for the render thread.
#[derive(Debug)]
pub enum DecodePoll {
    /// The next picture, in presentation order.
    Frame(Frame),
    /// No picture yet; ask again later.
    Pending,
    /// The stream ended after its last picture.
    Eos,
    /// The item cannot play.
    Failed(MediaError),
}

/// The element that decoded a clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderUsed {
    /// GStreamer factory name, e.g. `avdec_h264` or `v4l2h264dec`.
    pub element: String,
    /// Whether it runs on dedicated hardware.
    pub hardware: bool,
    /// The decoder's output format when it was neither NV12 nor I420 and
    /// had to be converted on the CPU (the slow path, logged).
    pub converted_from: Option<String>,
}

enum StreamMessage {
    Frame(Frame),
    Eos,
    Error(MediaError),
}

/// Decodes one item's media: a clip through GStreamer or a still through
/// the `image` crate on its own thread.
pub struct Decoder {
    path: PathBuf,
    frames: Option<Receiver<StreamMessage>>,
    pipeline: Option<ClipPipeline>,
    last_progress: Instant,
    stall_timeout: Duration,
    frames_received: u64,
    /// End time (pts + duration) of the latest picture, for the
    /// truncation check.
    last_picture_end: Duration,
    finished: bool,
}

/// A clip whose pictures stop this much before its declared duration is
/// truncated (container durations and last timestamps differ by a frame
/// or two in healthy files).
const TRUNCATION_TOLERANCE: Duration = Duration::from_millis(250);

struct ClipPipeline {
    pipeline: gst::Pipeline,
    decoder_used: Option<DecoderUsed>,
    hardware_names: Vec<String>,
    /// Set when the decoder's output needed a CPU conversion.
    converted_from: Arc<Mutex<Option<String>>>,
    needs_play: bool,
}

impl Decoder {
    /// Starts decoding a clip. The pipeline runs ahead by one picture and
    /// then waits, which is what prerolling the next item means.
    pub fn start_clip(
        path: &Path,
        config: &DecodeConfig,
        waker: Waker,
    ) -> Result<Self, MediaError> {
        init_gstreamer()?;
        let absolute = std::fs::canonicalize(path).map_err(|source| MediaError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        let uri =
            gst::glib::filename_to_uri(&absolute, None).map_err(|error| MediaError::Pipeline {
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
        let pipeline_error = |reason: String| MediaError::Pipeline {
            path: path.to_owned(),
            reason,
        };

        let pipeline = gst::Pipeline::builder().name("ekran-clip").build();
        let bin_name = config
            .decodebin
            .as_deref()
            .unwrap_or_else(|| default_decodebin());
        // decodebin3 and uridecodebin3 choose streams by the select-stream
        // signal; uridecodebin by its caps.
        let is_decodebin3 = bin_name != "uridecodebin";
        let play_audio = config.volume > 0.0;
        let (file, source) = match bin_name {
            "decodebin3" => {
                let file = gst::ElementFactory::make("filesrc")
                    .property("location", absolute.to_string_lossy().as_ref())
                    .build()
                    .map_err(|_| MediaError::MissingElement("filesrc"))?;
                let bin = gst::ElementFactory::make("decodebin3")
                    .build()
                    .map_err(|_| MediaError::MissingElement("decodebin3"))?;
                (Some(file), bin)
            }
            "uridecodebin3" => (
                None,
                gst::ElementFactory::make("uridecodebin3")
                    .property("uri", uri.as_str())
                    .build()
                    .map_err(|_| MediaError::MissingElement("uridecodebin3"))?,
            ),
            "uridecodebin" => {
                let mut builder =
                    gst::ElementFactory::make("uridecodebin").property("uri", uri.as_str());
                if !play_audio {
                    // Stop at raw video: audio stays undecoded (and unlinked).
                    builder = builder.property(
                        "caps",
                        gst::Caps::builder("video/x-raw").any_features().build(),
                    );
                }
                (
                    None,
                    builder
                        .build()
                        .map_err(|_| MediaError::MissingElement("uridecodebin"))?,
                )
            }
            other => {
                return Err(pipeline_error(format!(
                    "unknown decoding bin {other:?}: expected one of {}",
                    DECODEBINS.join(", ")
                )));
            }
        };
        // Passthrough (no CPU work) when the decoder already gives NV12 or
        // I420; converts only the rare other formats, which is logged.
        let convert = gst::ElementFactory::make("videoconvert")
            .build()
            .map_err(|_| MediaError::MissingElement("videoconvert"))?;
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", gst::List::new(["NV12", "I420"]))
            .build();

        let (sender, receiver) = mpsc::sync_channel::<StreamMessage>(1);
        let eos_sender = sender.clone();
        let sample_waker = waker.clone();
        let eos_waker = waker;
        let appsink = gst_app::AppSink::builder()
            .caps(&caps)
            .max_buffers(1)
            .drop(false)
            // The render loop paces pictures by their timestamps itself.
            .sync(false)
            .callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let message = match frame_from_sample(&sample) {
                            Ok(frame) => StreamMessage::Frame(frame),
                            Err(reason) => {
                                tracing::warn!(%reason, "unusable decoded picture");
                                return Ok(gst::FlowSuccess::Ok);
                            }
                        };
                        // Blocks the streaming thread while the render side
                        // holds an unshown picture: that is the backpressure.
                        sender.send(message).map_err(|_| gst::FlowError::Flushing)?;
                        sample_waker();
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .eos(move |_| {
                        let _ = eos_sender.send(StreamMessage::Eos);
                        eos_waker();
                    })
                    .build(),
            )
            .build();

        pipeline
            .add_many([&source, &convert, appsink.upcast_ref()])
            .map_err(|e| pipeline_error(e.to_string()))?;
        if let Some(file) = &file {
            pipeline
                .add(file)
                .map_err(|e| pipeline_error(e.to_string()))?;
            file.link(&source)
                .map_err(|e| pipeline_error(e.to_string()))?;
        }
        convert
            .link(&appsink)
            .map_err(|e| pipeline_error(e.to_string()))?;

        // Only the first video stream, and audio only when it will be heard:
        // a deselected stream is neither demuxed further nor decoded.
        if is_decodebin3 {
            source.connect("select-stream", false, move |args| {
                let collection = args[1].get::<gst::StreamCollection>().ok()?;
                let stream = args[2].get::<gst::Stream>().ok()?;
                let kind = stream.stream_type();
                let first_of_kind = |wanted: gst::StreamType| {
                    collection
                        .iter()
                        .find(|s| s.stream_type().contains(wanted))
                        .map(|s| s.stream_id() == stream.stream_id())
                        .unwrap_or(false)
                };
                let selected = if kind.contains(gst::StreamType::VIDEO) {
                    first_of_kind(gst::StreamType::VIDEO)
                } else if kind.contains(gst::StreamType::AUDIO) {
                    play_audio && first_of_kind(gst::StreamType::AUDIO)
                } else {
                    false
                };
                Some(i32::from(selected).to_value())
            });
        }

        let converted_from = Arc::new(Mutex::new(None));
        let convert_sink = convert
            .static_pad("sink")
            .ok_or_else(|| pipeline_error("videoconvert has no sink pad".into()))?;
        let noted = converted_from.clone();
        convert_sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(event)) = &info.data
                && let gst::EventView::Caps(caps_event) = event.view()
                && let Ok(video_info) = gst_video::VideoInfo::from_caps(caps_event.caps())
            {
                let format = video_info.format();
                if !matches!(
                    format,
                    gst_video::VideoFormat::Nv12 | gst_video::VideoFormat::I420
                ) {
                    tracing::warn!(
                        format = %format.to_str(),
                        "decoder gives neither NV12 nor I420: converting on the CPU (slow path)"
                    );
                    *noted.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(format.to_str().to_string());
                }
            }
            gst::PadProbeReturn::Ok
        });

        let convert_weak = convert.downgrade();
        let pipeline_weak = pipeline.downgrade();
        let volume = config.volume;
        source.connect_pad_added(move |_, pad| {
            let media_type = pad
                .current_caps()
                .unwrap_or_else(|| pad.query_caps(None))
                .structure(0)
                .map(|s| s.name().to_string())
                .unwrap_or_default();
            let is_audio = pad.name().starts_with("audio")
                || media_type.starts_with("audio/")
                || pad
                    .stream()
                    .is_some_and(|s| s.stream_type().contains(gst::StreamType::AUDIO));
            if !is_audio
                && !media_type.starts_with("video/x-raw")
                && !pad.name().starts_with("video")
            {
                // Undecoded streams (muted audio, subtitles) stay unlinked.
                return;
            }
            if is_audio {
                if let Some(pipeline) = pipeline_weak.upgrade()
                    && let Err(error) = link_audio(&pipeline, pad, volume)
                {
                    tracing::warn!(%error, "audio not played");
                }
                return;
            }
            if let Some(convert) = convert_weak.upgrade()
                && let Some(sink) = convert.static_pad("sink")
                && !sink.is_linked()
                && let Err(error) = pad.link(&sink)
            {
                tracing::warn!(?error, "cannot link the decoded video");
            }
        });

        // Muted clips start playing at once (the appsink's backpressure
        // holds the first picture); with audio the pipeline waits in PAUSED
        // so the sound does not start before the picture is on screen.
        let needs_play = play_audio;
        let target = if needs_play {
            gst::State::Paused
        } else {
            gst::State::Playing
        };
        if let Err(error) = pipeline.set_state(target) {
            let _ = pipeline.set_state(gst::State::Null);
            // The bus usually holds the real reason (e.g. no such file type).
            let reason = first_bus_error(&pipeline).unwrap_or_else(|| error.to_string());
            return Err(MediaError::Decode {
                path: path.to_owned(),
                reason,
            });
        }

        Ok(Decoder {
            path: path.to_owned(),
            frames: Some(receiver),
            pipeline: Some(ClipPipeline {
                pipeline,
                decoder_used: None,
                hardware_names: config.hardware_decoders.clone(),
                converted_from,
                needs_play,
            }),
            last_progress: Instant::now(),
            stall_timeout: config.stall_timeout,
            frames_received: 0,
            last_picture_end: Duration::ZERO,
            finished: false,
        })
    }

    /// Starts decoding a still (PNG/JPEG) on its own thread; it yields one
    /// picture, then end of stream.
    pub fn start_still(path: &Path, waker: Waker, stall_timeout: Duration) -> Self {
        let (sender, receiver) = mpsc::sync_channel::<StreamMessage>(2);
        let owned = path.to_owned();
        let spawned = std::thread::Builder::new()
            .name("ekran-still".into())
            .spawn(move || {
                let message = match load_still(&owned) {
                    Ok(frame) => StreamMessage::Frame(frame),
                    Err(error) => StreamMessage::Error(error),
                };
                let _ = sender.send(message);
                let _ = sender.send(StreamMessage::Eos);
                waker();
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a thread to decode a still");
        }
        Decoder {
            path: path.to_owned(),
            frames: Some(receiver),
            pipeline: None,
            last_progress: Instant::now(),
            stall_timeout,
            frames_received: 0,
            last_picture_end: Duration::ZERO,
            finished: false,
        }
    }

    /// Called when the item goes on screen: a clip with audio starts now.
    pub fn play(&mut self) {
        if let Some(clip) = &mut self.pipeline
            && clip.needs_play
        {
            clip.needs_play = false;
            // The stall clock starts with the turn, not with the preroll.
            self.last_progress = Instant::now();
            if let Err(error) = clip.pipeline.set_state(gst::State::Playing) {
                tracing::warn!(%error, path = %self.path.display(), "cannot start playing");
            }
        }
    }

    /// The next picture, waiting up to `wait` for it (zero: just look).
    /// Reports a stall once no picture has arrived for the stall timeout.
    pub fn poll(&mut self, wait: Duration) -> DecodePoll {
        if self.finished {
            return DecodePoll::Eos;
        }
        let deadline = Instant::now() + wait;
        loop {
            if let Some(failure) = self.bus_error() {
                self.finished = true;
                return DecodePoll::Failed(failure);
            }
            let Some(frames) = &self.frames else {
                return DecodePoll::Eos;
            };
            // Short slices so a bus error is seen while waiting.
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20));
            let received = if slice.is_zero() {
                frames.try_recv().map_err(|e| match e {
                    mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                frames.recv_timeout(slice)
            };
            match received {
                Ok(StreamMessage::Frame(frame)) => {
                    self.last_progress = Instant::now();
                    self.frames_received += 1;
                    self.last_picture_end = frame.pts + frame.duration.unwrap_or_default();
                    if self.frames_received == 1 {
                        self.note_decoder();
                    }
                    return DecodePoll::Frame(frame);
                }
                Ok(StreamMessage::Eos) => {
                    self.finished = true;
                    if self.frames_received == 0 {
                        return DecodePoll::Failed(MediaError::NoPicture {
                            path: self.path.clone(),
                        });
                    }
                    if let Some(truncated) = self.truncation() {
                        return DecodePoll::Failed(truncated);
                    }
                    return DecodePoll::Eos;
                }
                Ok(StreamMessage::Error(error)) => {
                    self.finished = true;
                    return DecodePoll::Failed(error);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.finished = true;
                    return DecodePoll::Eos;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.pipeline.as_ref().is_some_and(|clip| clip.needs_play) {
                // An audible clip waits in PAUSED for its turn (possibly a
                // long still): no picture is due yet, so nothing has stalled.
                self.last_progress = Instant::now();
            }
            // The first picture also waits for the file to open, the
            // decoder's plugin to load and a hardware decoder to set up
            // (seconds on some boxes), and on a busy machine for the CPU:
            // it gets several stall periods. The previous picture stays on
            // screen meanwhile.
            let limit = if self.frames_received == 0 {
                self.stall_timeout * FIRST_PICTURE_STALL_PERIODS
            } else {
                self.stall_timeout
            };
            if self.last_progress.elapsed() >= limit {
                self.finished = true;
                let state = match &self.pipeline {
                    Some(clip) => {
                        let (_, current, pending) = clip.pipeline.state(gst::ClockTime::ZERO);
                        format!(
                            "{current:?}, pending {pending:?}, {} pictures so far",
                            self.frames_received
                        )
                    }
                    None => "still image thread".into(),
                };
                return DecodePoll::Failed(MediaError::Stalled {
                    path: self.path.clone(),
                    seconds: self.last_progress.elapsed().as_secs_f64(),
                    state,
                });
            }
            if Instant::now() >= deadline {
                return DecodePoll::Pending;
            }
        }
    }

    /// The element that decoded the clip (known after its first picture);
    /// `None` for stills, which the `image` crate decodes.
    pub fn decoder_used(&self) -> Option<&DecoderUsed> {
        self.pipeline.as_ref()?.decoder_used.as_ref()
    }

    /// Compares where the pictures ended with the container's duration.
    fn truncation(&self) -> Option<MediaError> {
        let clip = self.pipeline.as_ref()?;
        let declared = clip.pipeline.query_duration::<gst::ClockTime>()?;
        let declared = Duration::from_nanos(declared.nseconds());
        (declared > self.last_picture_end + TRUNCATION_TOLERANCE).then(|| MediaError::Truncated {
            path: self.path.clone(),
            played: self.last_picture_end.as_secs_f64(),
            declared: declared.as_secs_f64(),
        })
    }

    fn bus_error(&self) -> Option<MediaError> {
        let clip = self.pipeline.as_ref()?;
        first_bus_error(&clip.pipeline).map(|reason| MediaError::Decode {
            path: self.path.clone(),
            reason,
        })
    }

    fn note_decoder(&mut self) {
        let Some(clip) = &mut self.pipeline else {
            return;
        };
        let found = clip
            .pipeline
            .iterate_recurse()
            .into_iter()
            .flatten()
            .find_map(|element| {
                let factory = element.factory()?;
                // "Codec/Decoder/Video[/Hardware]" or "Decoder/Video"; not the
                // "Generic/Bin/Decoder" bins around it, not audio decoders.
                let klass: Vec<&str> = factory.klass().split('/').collect();
                let is_picture_decoder = klass.contains(&"Decoder")
                    && !klass.contains(&"Bin")
                    && (klass.contains(&"Video") || klass.contains(&"Image"));
                is_picture_decoder.then(|| {
                    let name = factory.name().to_string();
                    DecoderUsed {
                        hardware: klass.contains(&"Hardware")
                            || clip.hardware_names.contains(&name),
                        element: name,
                        converted_from: None,
                    }
                })
            });
        // The caps reached videoconvert before this first picture did.
        let converted_from = clip
            .converted_from
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let found = found.map(|used| DecoderUsed {
            converted_from,
            ..used
        });
        tracing::info!(path = %self.path.display(), decoder = ?found, "decoding");
        clip.decoder_used = found;
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // Close the channel first: a streaming thread blocked on sending a
        // picture returns with "flushing" and lets the state change finish.
        self.frames = None;
        if let Some(clip) = &self.pipeline {
            let _ = clip.pipeline.set_state(gst::State::Null);
        }
    }
}

/// The first error waiting on the pipeline's bus, as one line with detail.
fn first_bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    let message = bus.pop_filtered(&[gst::MessageType::Error])?;
    match message.view() {
        gst::MessageView::Error(error) => Some(match error.debug() {
            Some(debug) => format!("{} ({})", error.error(), first_line(&debug)),
            None => error.error().to_string(),
        }),
        _ => None,
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Audio branch for an audible clip: convert, resample, volume, default sink.
fn link_audio(pipeline: &gst::Pipeline, pad: &gst::Pad, volume: f64) -> Result<(), String> {
    let make = |name: &str| {
        gst::ElementFactory::make(name)
            .build()
            .map_err(|e| e.to_string())
    };
    let convert = make("audioconvert")?;
    let resample = make("audioresample")?;
    let gain = make("volume")?;
    gain.set_property("volume", volume.clamp(0.0, 1.0));
    let sink = make("autoaudiosink")?;
    let chain = [&convert, &resample, &gain, &sink];
    pipeline.add_many(chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(chain).map_err(|e| e.to_string())?;
    for element in chain {
        element
            .sync_state_with_parent()
            .map_err(|e| e.to_string())?;
    }
    let sink_pad = convert
        .static_pad("sink")
        .ok_or("audioconvert has no sink pad")?;
    pad.link(&sink_pad)
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

/// Wraps a decoded sample without copying its planes.
fn frame_from_sample(sample: &gst::Sample) -> Result<Frame, String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
    let buffer = sample.buffer_owned().ok_or("sample without buffer")?;
    let layout = match info.format() {
        gst_video::VideoFormat::Nv12 => PlaneLayout::Nv12,
        gst_video::VideoFormat::I420 => PlaneLayout::I420,
        other => return Err(format!("unexpected format {}", other.to_str())),
    };
    let pts = buffer
        .pts()
        .map(|t| Duration::from_nanos(t.nseconds()))
        .unwrap_or_default();
    let duration = buffer
        .duration()
        .map(|t| Duration::from_nanos(t.nseconds()))
        .or_else(|| {
            let fps = info.fps();
            (fps.numer() > 0 && fps.denom() > 0)
                .then(|| Duration::from_secs_f64(fps.denom() as f64 / fps.numer() as f64))
        });
    let colorimetry = colorimetry_of(&info);
    let (width, height) = (info.width(), info.height());
    let mapped = gst_video::VideoFrame::from_buffer_readable(buffer, &info)
        .map_err(|_| "cannot map the decoded buffer".to_string())?;
    Ok(Frame {
        pts,
        duration,
        width,
        height,
        layout,
        colorimetry,
        pixels: Pixels::Video(Box::new(mapped)),
    })
}

/// The stream's matrix and range from its caps; unknown values get
/// GStreamer's defaults for the picture size (BT.601 for SD, BT.709 above).
fn colorimetry_of(info: &gst_video::VideoInfo) -> Colorimetry {
    let caps_colorimetry = info.colorimetry();
    let matrix = match caps_colorimetry.matrix() {
        gst_video::VideoColorMatrix::Bt709 => ColorMatrix::Bt709,
        gst_video::VideoColorMatrix::Bt2020 => ColorMatrix::Bt2020,
        gst_video::VideoColorMatrix::Bt601
        | gst_video::VideoColorMatrix::Smpte240m
        | gst_video::VideoColorMatrix::Fcc => ColorMatrix::Bt601,
        _ if info.height() > 576 => ColorMatrix::Bt709,
        _ => ColorMatrix::Bt601,
    };
    let range = match caps_colorimetry.range() {
        gst_video::VideoColorRange::Range0_255 => ColorRange::Full,
        _ => ColorRange::Limited,
    };
    Colorimetry { matrix, range }
}

/// Decodes a PNG or JPEG into RGBA.
fn load_still(path: &Path) -> Result<Frame, MediaError> {
    let decoded = image::ImageReader::open(path)
        .map_err(|source| MediaError::Unreadable {
            path: path.to_owned(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| MediaError::Unreadable {
            path: path.to_owned(),
            source,
        })?
        .decode()
        .map_err(|source| MediaError::Image {
            path: path.to_owned(),
            source,
        })?
        .into_rgba8();
    Ok(Frame {
        pts: Duration::ZERO,
        duration: None,
        width: decoded.width(),
        height: decoded.height(),
        layout: PlaneLayout::Rgba,
        colorimetry: Colorimetry::default(),
        pixels: Pixels::Still(decoded),
    })
}

/// Whether a path names a still image (by extension).
pub fn is_still_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        .unwrap_or(false)
}
