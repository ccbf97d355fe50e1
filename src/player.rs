//! The screen box: playback engine (GStreamer → wgpu) and, later, the sync agent.
