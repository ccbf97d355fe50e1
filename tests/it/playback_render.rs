//! What reaches the screen: colours through each colorimetry, fit, cover,
//! rotation, stills, the ticker and the pairing screen, read back from the
//! headless output at known pixels (real wgpu on lavapipe).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ekran::player::headless::{HeadlessConfig, RenderedFrame, run_headless};
use ekran::player::list::FileListSource;
use ekran::player::{Control, EngineConfig, Fit, Outcome, Rotation};

use crate::playback_media::{self as media, near, rgb};

/// Plays `file` for a moment and returns the refresh at `at`.
fn frame_at(
    file: &Path,
    fit: Fit,
    rotation: Rotation,
    size: (u32, u32),
    background: [u8; 3],
    at: Duration,
) -> image::RgbaImage {
    frames(
        vec![file.to_owned()],
        fit,
        rotation,
        size,
        background,
        Vec::new(),
        &[at],
    )
    .remove(0)
}

fn frames(
    files: Vec<PathBuf>,
    fit: Fit,
    rotation: Rotation,
    size: (u32, u32),
    background: [u8; 3],
    controls: Vec<Control>,
    times: &[Duration],
) -> Vec<image::RgbaImage> {
    let mut wanted = Vec::new();
    let mut observe = |frame: RenderedFrame<'_>| {
        if wanted.len() < times.len() && frame.clock >= times[wanted.len()] {
            wanted.push(frame.image.clone());
        }
    };
    // Stills stay up until the last requested time.
    let still_duration = times.last().copied().unwrap_or_default() + Duration::from_millis(100);
    let source = FileListSource::new(files, still_duration, fit, false).with_controls(controls);
    let engine = EngineConfig {
        rotation,
        ..EngineConfig::default()
    };
    let config = HeadlessConfig {
        size,
        background,
        max_duration: times.last().map(|t| *t + Duration::from_millis(20)),
        ..HeadlessConfig::default()
    };
    let stats =
        run_headless(Box::new(source), engine, &config, Some(&mut observe)).expect("headless run");
    assert!(
        stats.items.iter().all(|i| i.outcome != Outcome::Failed),
        "{stats:?}"
    );
    assert_eq!(
        wanted.len(),
        times.len(),
        "not every requested time was rendered"
    );
    wanted
}

const BLACK: [u8; 3] = [0, 0, 0];
const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];

#[test]
fn colours_survive_each_matrix_and_range() {
    // A saturated colour with a dark channel: the BT.601 and BT.709
    // matrices, and limited and full range, put it tens of levels apart,
    // so only the right matrix and range land within the tolerance.
    let argb = "0xFFE67828";
    let expected = [0xE6, 0x78, 0x28];
    for colorimetry in ["bt601", "bt709", "1:4:5:4", "1:3:5:1"] {
        let clip = media::colour_clip(argb, colorimetry);
        let image = frame_at(
            &clip,
            Fit::Contain,
            Rotation::R0,
            (160, 120),
            BLACK,
            Duration::ZERO,
        );
        let centre = rgb(&image, 80, 60);
        assert!(
            near(centre, expected, 6),
            "{colorimetry}: expected {expected:?}, read {centre:?}"
        );
    }
}

/// Kr and Kb of the BT.709 and BT.2020 (non-constant luminance) matrices.
const KR_KB_709: (f64, f64) = (0.2126, 0.0722);
const KR_KB_2020: (f64, f64) = (0.2627, 0.0593);

/// The 8-bit Y'CbCr an encoder writes for an 8-bit R'G'B' colour with
/// the matrix `(kr, kb)`, in limited (16–235/240) or full (0–255) range.
fn rgb_to_yuv8(rgb: [u8; 3], (kr, kb): (f64, f64), full: bool) -> [f64; 3] {
    let [r, g, b] = rgb.map(|c| f64::from(c) / 255.0);
    let y = kr * r + (1.0 - kr - kb) * g + kb * b;
    let cb = (b - y) / (2.0 * (1.0 - kb));
    let cr = (r - y) / (2.0 * (1.0 - kr));
    let (y_scale, y_offset, c_scale) = if full {
        (255.0, 0.0, 255.0)
    } else {
        (219.0, 16.0, 224.0)
    };
    [
        (y * y_scale + y_offset).round(),
        (cb * c_scale + 128.0).round(),
        (cr * c_scale + 128.0).round(),
    ]
}

/// The 8-bit R'G'B' that 8-bit Y'CbCr decodes to with the matrix `(kr, kb)`.
fn yuv8_to_rgb(yuv: [f64; 3], (kr, kb): (f64, f64), full: bool) -> [u8; 3] {
    let (y_scale, y_offset, c_scale) = if full {
        (255.0, 0.0, 255.0)
    } else {
        (219.0, 16.0, 224.0)
    };
    let y = (yuv[0] - y_offset) / y_scale;
    let cb = (yuv[1] - 128.0) / c_scale;
    let cr = (yuv[2] - 128.0) / c_scale;
    let kg = 1.0 - kr - kb;
    let r = y + 2.0 * (1.0 - kr) * cr;
    let b = y + 2.0 * (1.0 - kb) * cb;
    let g = (y - kr * r - kb * b) / kg;
    [r, g, b].map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8)
}

fn distance(a: [u8; 3], b: [u8; 3]) -> u8 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(y))
        .max()
        .unwrap_or(0)
}

#[test]
fn bt2020_colours_convert_with_the_bt2020_matrix_in_both_ranges() {
    // x264 tags the stream BT.2020 (matrix 6) and the decoder's caps carry
    // it, limited ("bt2020") and full ("1:6:5:9": full range, BT.2020
    // matrix, BT.709 transfer, BT.2020 primaries) range.
    // A saturated red and cyan: where BT.2020 and BT.709 differ most.
    for (argb, colour) in [
        ("0xFFF01020", [0xF0, 0x10, 0x20]),
        ("0xFF10F0E0", [0x10, 0xF0, 0xE0]),
    ] {
        for (colorimetry, full) in [("bt2020", false), ("1:6:5:9", true)] {
            let yuv = rgb_to_yuv8(colour, KR_KB_2020, full);
            let reference = yuv8_to_rgb(yuv, KR_KB_2020, full);
            // The test can tell the matrices apart: the same samples read
            // as BT.709 land far outside the tolerance.
            let as_709 = yuv8_to_rgb(yuv, KR_KB_709, full);
            assert!(
                distance(reference, as_709) >= 11,
                "{argb} {colorimetry}: BT.2020 {reference:?} vs BT.709 {as_709:?}"
            );
            let clip = media::colour_clip(argb, colorimetry);
            let image = frame_at(
                &clip,
                Fit::Contain,
                Rotation::R0,
                (160, 120),
                BLACK,
                Duration::ZERO,
            );
            for (x, y) in [(80, 60), (20, 20), (140, 100)] {
                let read = rgb(&image, x, y);
                assert!(
                    near(read, reference, 5),
                    "{argb} {colorimetry} at ({x}, {y}): expected {reference:?} (BT.2020 of {yuv:?}), read {read:?}"
                );
            }
        }
    }
}

fn half_red_half_blue() -> PathBuf {
    media::still("half-red-half-blue", 200, 100, RED, BLUE)
}

#[test]
fn contain_letterboxes_a_wide_still() {
    // 200x100 on 320x240: scaled to 320x160, black bars of 40 rows.
    let image = frame_at(
        &half_red_half_blue(),
        Fit::Contain,
        Rotation::R0,
        (320, 240),
        BLACK,
        Duration::ZERO,
    );
    assert_eq!(rgb(&image, 80, 120), RED);
    assert_eq!(rgb(&image, 240, 120), BLUE);
    assert_eq!(rgb(&image, 160, 20), BLACK);
    assert_eq!(rgb(&image, 160, 225), BLACK);
    assert_eq!(
        rgb(&image, 5, 45),
        RED,
        "picture starts right below the bar"
    );
}

#[test]
fn jpeg_stills_show_like_png_ones() {
    let jpeg = media::still_as("half-red-half-blue", "jpg", 200, 100, RED, BLUE);
    let image = frame_at(
        &jpeg,
        Fit::Contain,
        Rotation::R0,
        (320, 240),
        BLACK,
        Duration::ZERO,
    );
    // JPEG is lossy: near, not equal, away from the colour edge.
    assert!(
        near(rgb(&image, 60, 120), RED, 10),
        "{:?}",
        rgb(&image, 60, 120)
    );
    assert!(
        near(rgb(&image, 260, 120), BLUE, 10),
        "{:?}",
        rgb(&image, 260, 120)
    );
    assert_eq!(rgb(&image, 160, 20), BLACK);
}

#[test]
fn cover_fills_the_screen_and_crops() {
    // 200x100 scaled to 480x240, 80 columns cut on each side.
    let image = frame_at(
        &half_red_half_blue(),
        Fit::Cover,
        Rotation::R0,
        (320, 240),
        BLACK,
        Duration::ZERO,
    );
    assert_eq!(rgb(&image, 5, 5), RED);
    assert_eq!(rgb(&image, 314, 234), BLUE);
    assert_eq!(rgb(&image, 150, 120), RED);
    assert_eq!(rgb(&image, 170, 120), BLUE);
}

#[test]
fn rotation_turns_the_whole_picture_clockwise() {
    // Composed on a 240x320 portrait canvas (picture 240x120 in the
    // middle, red left), then turned a quarter clockwise onto 320x240:
    // red ends up on top, blue below, bars left and right.
    let grey = [40, 40, 40];
    let image = frame_at(
        &half_red_half_blue(),
        Fit::Contain,
        Rotation::R90,
        (320, 240),
        grey,
        Duration::ZERO,
    );
    assert_eq!(rgb(&image, 160, 60), RED);
    assert_eq!(rgb(&image, 160, 180), BLUE);
    assert_eq!(rgb(&image, 20, 120), grey);
    assert_eq!(rgb(&image, 300, 120), grey);

    let upside_down = frame_at(
        &half_red_half_blue(),
        Fit::Contain,
        Rotation::R180,
        (320, 240),
        grey,
        Duration::ZERO,
    );
    assert_eq!(rgb(&upside_down, 80, 120), BLUE);
    assert_eq!(rgb(&upside_down, 240, 120), RED);

    let counter = frame_at(
        &half_red_half_blue(),
        Fit::Contain,
        Rotation::R270,
        (320, 240),
        grey,
        Duration::ZERO,
    );
    assert_eq!(rgb(&counter, 160, 60), BLUE);
    assert_eq!(rgb(&counter, 160, 180), RED);
}

#[test]
fn a_portrait_clip_on_a_landscape_output_is_pillarboxed() {
    // 240x320 clip (red top half, black bottom) on 320x240: 180x240 in
    // the middle, the letterbox colour left and right.
    let green = [0, 64, 0];
    let image = frame_at(
        &media::clip("portrait-h264"),
        Fit::Contain,
        Rotation::R0,
        (320, 240),
        green,
        Duration::ZERO,
    );
    assert!(
        near(rgb(&image, 160, 60), RED, 12),
        "{:?}",
        rgb(&image, 160, 60)
    );
    assert!(
        near(rgb(&image, 160, 180), BLACK, 12),
        "{:?}",
        rgb(&image, 160, 180)
    );
    assert_eq!(rgb(&image, 20, 60), green);
    assert_eq!(rgb(&image, 300, 180), green);
}

const TAJIK: &str = "Телефони боварӣ: 98 787 66 66";

fn grey_still() -> PathBuf {
    media::still("grey", 64, 36, [90, 90, 90], [90, 90, 90])
}

#[test]
fn the_ticker_scrolls_cyrillic_text_in_its_band() {
    let size = (480, 270);
    let times = [Duration::from_millis(4000), Duration::from_millis(4500)];
    let controls = vec![Control::Ticker(Some(TAJIK.into()))];
    let shots = frames(
        vec![grey_still()],
        Fit::Cover,
        Rotation::R0,
        size,
        BLACK,
        controls,
        &times,
    );
    let band_top = 270 - (270.0_f32 * 0.08) as u32;
    // Above the band: the still, untouched.
    assert_eq!(rgb(&shots[0], 240, 100), [90, 90, 90]);
    // In the band: bright glyph pixels on the dark band.
    let bright = |image: &image::RgbaImage| {
        (band_top..270)
            .flat_map(|y| (0..480).map(move |x| (x, y)))
            .filter(|&(x, y)| rgb(image, x, y).iter().all(|&c| c > 200))
            .count()
    };
    assert!(
        bright(&shots[0]) > 100,
        "no text in the band: {} bright pixels",
        bright(&shots[0])
    );
    // It moves: the band differs half a second later.
    let band = |image: &image::RgbaImage| image.view(0, band_top, 480, 270 - band_top).to_image();
    use image::GenericImageView;
    assert_ne!(band(&shots[0]), band(&shots[1]), "ticker did not move");

    let reference =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/playback/ticker-tajik.png");
    if std::env::var_os("EKRAN_UPDATE_REFERENCES").is_some() {
        shots[0].save(&reference).unwrap();
    }
    let expected = image::open(&reference)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (EKRAN_UPDATE_REFERENCES=1 writes it)",
                reference.display()
            )
        })
        .to_rgba8();
    let differing = shots[0]
        .pixels()
        .zip(expected.pixels())
        .filter(|(a, b)| a.0.iter().zip(b.0).any(|(x, y)| x.abs_diff(y) > 24))
        .count();
    assert!(
        differing < 200,
        "{differing} pixels differ from {}",
        reference.display()
    );
}

#[test]
fn the_pairing_screen_shows_the_code_over_everything() {
    let controls = vec![Control::PairingCode(Some("K7Q-93X".into()))];
    let shots = frames(
        vec![half_red_half_blue()],
        Fit::Contain,
        Rotation::R0,
        (320, 180),
        BLACK,
        controls,
        &[Duration::from_millis(100)],
    );
    let image = &shots[0];
    let colours: Vec<[u8; 3]> = image.pixels().map(|p| [p.0[0], p.0[1], p.0[2]]).collect();
    assert!(
        !colours.iter().any(|&c| c == RED || c == BLUE),
        "content must be hidden"
    );
    let bright = colours
        .iter()
        .filter(|c| c.iter().all(|&v| v > 200))
        .count();
    assert!(
        bright > 300,
        "big code text expected, {bright} bright pixels"
    );
    assert!(
        near(rgb(image, 2, 2), [13, 13, 20], 3),
        "{:?}",
        rgb(image, 2, 2)
    );
}
