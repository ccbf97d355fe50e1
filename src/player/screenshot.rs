//! Reading back what an output shows: the texture the renderer drew into
//! (the composed frame, ticker and rotation included) copied to memory,
//! and the low-resolution PNG the agent uploads when the server asks for
//! a screenshot (SPEC §5 "Health").
//!
//! Both outputs call [`answer_from_texture`] right after a refresh was
//! drawn: headless with its offscreen texture, the window with the surface
//! texture before it is presented. The copy waits for the GPU once (a
//! screenshot is rare: on an operator's request); scaling and PNG encoding
//! run on a short-lived thread so the render loop does not wait for them.

use image::ImageEncoder as _;

use crate::agent::heartbeat::ScreenshotRequest;

/// Screenshots are at most this wide (height follows the aspect ratio):
/// enough to see what plays, small enough for a metered link.
pub const SCREENSHOT_MAX_WIDTH: u32 = 480;

/// Copies `texture` (8-bit RGBA or BGRA, created with `COPY_SRC`) to
/// memory as RGBA (rows padded to 256 bytes on the GPU side, tightly
/// packed in the result). Waits for the GPU to finish the copy.
pub fn read_texture(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
) -> Result<image::RgbaImage, String> {
    let bgra = match texture.format() {
        wgpu::TextureFormat::Rgba8Unorm | wgpu::TextureFormat::Rgba8UnormSrgb => false,
        wgpu::TextureFormat::Bgra8Unorm | wgpu::TextureFormat::Bgra8UnormSrgb => true,
        other => return Err(format!("cannot read back a {other:?} texture")),
    };
    if !texture.usage().contains(wgpu::TextureUsages::COPY_SRC) {
        return Err("the output texture cannot be copied (no COPY_SRC usage)".to_owned());
    }
    let (width, height) = (texture.width(), texture.height());
    let unpadded = width * 4;
    let padded =
        unpadded.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: u64::from(padded) * u64::from(height),
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    encoder.copy_texture_to_buffer(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::TexelCopyBufferInfo {
            buffer: &buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(padded),
                rows_per_image: Some(height),
            },
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
    queue.submit(Some(encoder.finish()));
    let slice = buffer.slice(..);
    slice.map_async(wgpu::MapMode::Read, |_| {});
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|error| format!("waiting for the readback failed: {error}"))?;
    let mut pixels = Vec::with_capacity((unpadded * height) as usize);
    {
        let mapped = slice
            .get_mapped_range()
            .map_err(|error| format!("readback not mapped: {error}"))?;
        for row in mapped.chunks(padded as usize).take(height as usize) {
            pixels.extend_from_slice(&row[..unpadded as usize]);
        }
    }
    buffer.unmap();
    if bgra {
        for pixel in pixels.chunks_exact_mut(4) {
            pixel.swap(0, 2);
        }
    }
    image::RgbaImage::from_raw(width, height, pixels)
        .ok_or_else(|| "readback shorter than the texture".to_owned())
}

/// `frame` scaled down to at most `max_width` pixels wide (never up),
/// keeping its aspect ratio, as an RGB PNG.
pub fn preview_png(frame: &image::RgbaImage, max_width: u32) -> Result<Vec<u8>, String> {
    let (width, height) = frame.dimensions();
    if width == 0 || height == 0 {
        return Err("the frame is empty".to_owned());
    }
    let target_width = width.min(max_width.max(1));
    let target_height = ((u64::from(height) * u64::from(target_width) + u64::from(width) / 2)
        / u64::from(width))
    .max(1) as u32;
    let scaled = if target_width == width {
        frame.clone()
    } else {
        image::imageops::resize(
            frame,
            target_width,
            target_height,
            image::imageops::FilterType::Triangle,
        )
    };
    // The output is opaque: alpha would only make the file larger.
    let rgb = image::DynamicImage::ImageRgba8(scaled).into_rgb8();
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(
            rgb.as_raw(),
            rgb.width(),
            rgb.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|error| format!("PNG encoding failed: {error}"))?;
    Ok(png)
}

/// Answers `request` with a preview PNG of `frame` (or the reason there is
/// none), encoding on a thread of its own.
pub fn answer(request: ScreenshotRequest, frame: Result<image::RgbaImage, String>) {
    let frame = match frame {
        Ok(frame) => frame,
        Err(reason) => {
            tracing::warn!(%reason, "screenshot not taken");
            request.answer(Err(reason));
            return;
        }
    };
    let encode = move || {
        let png = preview_png(&frame, SCREENSHOT_MAX_WIDTH);
        if let Ok(png) = &png {
            tracing::debug!(bytes = png.len(), "screenshot encoded");
        }
        request.answer(png);
    };
    // If no thread can be had, the request is dropped and the agent is
    // told so; the render loop is not made to encode.
    if let Err(error) = std::thread::Builder::new()
        .name("screenshot".into())
        .spawn(encode)
    {
        tracing::error!(%error, "cannot start the screenshot encoder thread");
    }
}

/// Reads `texture` back and answers `request` with it: what outputs call
/// after drawing a refresh.
pub fn answer_from_texture(
    request: ScreenshotRequest,
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
) {
    answer(request, read_texture(device, queue, texture));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_keep_the_aspect_and_never_grow() {
        let frame = image::RgbaImage::from_pixel(1920, 1080, image::Rgba([200, 40, 10, 255]));
        let png = preview_png(&frame, 480).unwrap();
        let decoded = image::load_from_memory(&png).unwrap().into_rgb8();
        assert_eq!(decoded.dimensions(), (480, 270));
        assert_eq!(decoded.get_pixel(240, 135).0, [200, 40, 10]);

        let portrait = image::RgbaImage::new(1080, 1920);
        let png = preview_png(&portrait, 480).unwrap();
        let decoded = image::load_from_memory(&png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (480, 853));

        let small = image::RgbaImage::new(320, 240);
        let decoded = image::load_from_memory(&preview_png(&small, 480).unwrap()).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 240));
        assert!(preview_png(&image::RgbaImage::new(0, 0), 480).is_err());
    }
}
