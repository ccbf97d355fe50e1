//! The one integration test binary: one module per area.

#[cfg(feature = "player")]
mod playback;
#[cfg(feature = "player")]
mod playback_media;
#[cfg(feature = "player")]
mod playback_render;
#[cfg(feature = "player")]
mod playback_window;
