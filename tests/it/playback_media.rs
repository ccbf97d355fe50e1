//! Test media for the playback tests, made by GStreamer (and the `image`
//! crate for stills) on first use and cached under Cargo's target tmp dir,
//! so each clip is encoded once however many tests use it. A clip's file
//! name carries a hash of its pipeline: editing a recipe re-encodes it.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Solid-colour H.264 clip, 320x240, 25 fps, 1 s (BT.601 limited).
pub const RED_H264: &str = "red-h264";
/// Solid green HEVC clip, 256x256 (another size), 1 s.
pub const GREEN_HEVC: &str = "green-hevc";
/// Solid blue VP9 clip, 352x288, 1 s.
pub const BLUE_VP9: &str = "blue-vp9";
/// Solid blue H.264 clip, 320x240, 1 s.
pub const BLUE_H264: &str = "blue-h264";

const SOLID: &str = "videotestsrc pattern=solid-color";

/// `(name, extension, gst-launch pipeline without the filesink)`.
fn recipe(name: &str) -> (&'static str, String) {
    let solid = |argb: &str, w: u32, h: u32, frames: u32, fps: u32, tail: &str| {
        format!(
            "{SOLID} foreground-color={argb} num-buffers={frames} ! video/x-raw,width={w},height={h},framerate={fps}/1 \
             ! videoconvert ! video/x-raw,format=I420,colorimetry=bt601 ! {tail}"
        )
    };
    match name {
        RED_H264 => ("mp4", solid("0xFFFF0000", 320, 240, 25, 25, "x264enc ! mp4mux")),
        BLUE_H264 => ("mp4", solid("0xFF0000FF", 320, 240, 25, 25, "x264enc ! mp4mux")),
        GREEN_HEVC => ("mp4", solid("0xFF00FF00", 256, 256, 25, 25, "x265enc ! h265parse ! mp4mux")),
        BLUE_VP9 => ("webm", solid("0xFF0000FF", 352, 288, 25, 25, "vp9enc ! webmmux")),
        "red-h264-50fps" => ("mp4", solid("0xFFFF0000", 320, 240, 50, 50, "x264enc ! mp4mux")),
        "portrait-h264" => (
            "mp4",
            // Top half red, bottom half blue: which way up it lands shows.
            "videotestsrc pattern=solid-color foreground-color=0xFFFF0000 num-buffers=25 \
             ! video/x-raw,width=240,height=160,framerate=25/1 ! videobox bottom=-160 fill=black \
             ! videoconvert ! video/x-raw,format=I420 ! x264enc ! mp4mux"
                .into(),
        ),
        "faststart-h264" => (
            "mp4",
            "videotestsrc pattern=ball num-buffers=50 ! video/x-raw,format=I420,width=320,height=240,framerate=25/1 \
             ! x264enc ! mp4mux faststart=true"
                .into(),
        ),
        "with-audio-vp9" => (
            "webm",
            // Two branches into one muxer: the file sink goes right after
            // the muxer, where OUTPUT stands.
            "webmmux name=mux ! filesink location=OUTPUT \
             videotestsrc pattern=solid-color foreground-color=0xFF00FF00 num-buffers=25 \
             ! video/x-raw,format=I420,width=160,height=120,framerate=25/1 ! vp9enc ! mux. \
             audiotestsrc num-buffers=50 samplesperbuffer=960 ! audio/x-raw,rate=48000 ! opusenc ! mux."
                .into(),
        ),
        "y444-h264" => (
            "mp4",
            solid("0xFFFF0000", 160, 120, 10, 25, "videoconvert ! video/x-raw,format=Y444 ! x264enc ! mp4mux"),
        ),
        other => panic!("no recipe for test clip {other}"),
    }
}

/// A clip in a given colorimetry: solid `argb` generated as RGB, so that
/// `videoconvert` must apply the target matrix and range, encoded as I420
/// with the colorimetry in caps (Matroska carries it to the decoder).
pub fn colour_clip(argb: &str, colorimetry: &str) -> PathBuf {
    let pipeline = format!(
        "{SOLID} foreground-color={argb} num-buffers=5 ! video/x-raw,format=RGBx,width=160,height=120,framerate=25/1 \
         ! videoconvert ! video/x-raw,format=I420,colorimetry={colorimetry} ! x264enc ! matroskamux"
    );
    encode(
        &format!("colour-{argb}-{}", colorimetry.replace(':', "_")),
        "mkv",
        &pipeline,
    )
}

/// The clip called `name` (one of the constants above), encoded on first use.
pub fn clip(name: &str) -> PathBuf {
    let (extension, pipeline) = recipe(name);
    encode(name, extension, &pipeline)
}

fn fixture_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("playback-fixtures");
    std::fs::create_dir_all(&dir).expect("create fixture dir");
    dir
}

fn encode(name: &str, extension: &str, pipeline: &str) -> PathBuf {
    static DONE: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    let done = done.get_or_insert_with(HashMap::new);
    let mut hasher = DefaultHasher::new();
    pipeline.hash(&mut hasher);
    let file = format!("{name}-{:016x}.{extension}", hasher.finish());
    if let Some(path) = done.get(&file) {
        return path.clone();
    }
    let path = fixture_dir().join(&file);
    if !path.exists() {
        // Encode to a temporary name and rename: another test process
        // never sees a half-written clip.
        let partial = fixture_dir().join(format!("{file}.{}.partial", std::process::id()));
        let mut args: Vec<String> = vec!["-q".into()];
        let location = format!("location={}", partial.display());
        args.extend(pipeline.split_whitespace().map(|word| {
            if word == "location=OUTPUT" {
                location.clone()
            } else {
                word.to_string()
            }
        }));
        if !pipeline.contains("location=OUTPUT") {
            args.extend(["!".into(), "filesink".into(), location]);
        }
        let status = Command::new("gst-launch-1.0")
            .args(&args)
            .status()
            .expect("run gst-launch-1.0");
        assert!(
            status.success(),
            "encoding {name} failed: gst-launch-1.0 {pipeline}"
        );
        std::fs::rename(&partial, &path).expect("rename encoded clip");
    }
    done.insert(file, path.clone());
    path
}

/// A PNG still: left half `left`, right half `right`.
pub fn still(name: &str, width: u32, height: u32, left: [u8; 3], right: [u8; 3]) -> PathBuf {
    still_as(name, "png", width, height, left, right)
}

/// Like [`still`], in the format the extension names (`png`, `jpg`).
pub fn still_as(
    name: &str,
    extension: &str,
    width: u32,
    height: u32,
    left: [u8; 3],
    right: [u8; 3],
) -> PathBuf {
    let path = fixture_dir().join(format!("{name}-{width}x{height}.{extension}"));
    if !path.exists() {
        let image = image::RgbImage::from_fn(width, height, |x, _| {
            image::Rgb(if x < width / 2 { left } else { right })
        });
        let partial =
            fixture_dir().join(format!("{name}.{}.partial.{extension}", std::process::id()));
        image.save(&partial).expect("write still");
        std::fs::rename(&partial, &path).expect("rename still");
    }
    path
}

/// A copy of `source` cut to `percent` of its length.
pub fn truncated(source: &Path, percent: u64) -> PathBuf {
    let bytes = std::fs::read(source).expect("read clip");
    let cut = bytes.len() * percent as usize / 100;
    let name = format!(
        "truncated-{percent}-{}",
        source
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name")
    );
    let path = fixture_dir().join(name);
    std::fs::write(&path, &bytes[..cut]).expect("write truncated clip");
    path
}

/// A file that is not media at all.
pub fn garbage() -> PathBuf {
    let path = fixture_dir().join("garbage.mp4");
    std::fs::write(
        &path,
        b"this is not a video, just text with a video extension\n".repeat(40),
    )
    .expect("write garbage");
    path
}

/// An RGBA pixel as RGB.
pub fn rgb(image: &image::RgbaImage, x: u32, y: u32) -> [u8; 3] {
    let p = image.get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

/// Whether two colours are within `tolerance` on every channel.
pub fn near(actual: [u8; 3], expected: [u8; 3], tolerance: u8) -> bool {
    actual
        .iter()
        .zip(expected)
        .all(|(a, e)| a.abs_diff(e) <= tolerance)
}
