//! The [`Source`] behind `ekran play`: local files in the order given,
//! once or looped. Stills show for a fixed duration, clips to their end.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::decode::is_still_path;
use super::{Control, EngineEvent, Fit, MediaKind, NextItem, PlayId, PlayItem, Source};

/// Plays a list of files.
pub struct FileListSource {
    files: Vec<PathBuf>,
    still_duration: Duration,
    fit: Fit,
    looped: bool,
    position: usize,
    next_play: u64,
    controls: Vec<Control>,
    /// Events as they came, kept only once someone asked for them (a
    /// looped run would otherwise keep every event forever).
    events: Option<Arc<Mutex<Vec<EngineEvent>>>>,
    started_this_round: bool,
}

impl FileListSource {
    /// Plays `files` in order (looped if `looped`), stills for
    /// `still_duration`, every item with `fit`.
    pub fn new(files: Vec<PathBuf>, still_duration: Duration, fit: Fit, looped: bool) -> Self {
        FileListSource {
            files,
            still_duration,
            fit,
            looped,
            position: 0,
            next_play: 1,
            controls: Vec::new(),
            events: None,
            started_this_round: false,
        }
    }

    /// Also send these controls (ticker, pairing code) at the start.
    pub fn with_controls(mut self, controls: Vec<Control>) -> Self {
        self.controls = controls;
        self.controls.reverse();
        self
    }

    /// Starts keeping the events the engine reports; the handle reads
    /// them during or after the run.
    pub fn events(&mut self) -> Arc<Mutex<Vec<EngineEvent>>> {
        self.events.get_or_insert_with(Default::default).clone()
    }
}

impl Source for FileListSource {
    fn next_item(&mut self) -> NextItem {
        if self.position == self.files.len() {
            // Loop only if something of the last round got on screen: a list of
            // broken files would otherwise fail forever.
            if !self.looped
                || self.files.is_empty()
                || !std::mem::take(&mut self.started_this_round)
            {
                return NextItem::End;
            }
            self.position = 0;
        }
        let path = self.files[self.position].clone();
        self.position += 1;
        let kind = if is_still_path(&path) {
            MediaKind::Still {
                duration: self.still_duration,
            }
        } else {
            MediaKind::Clip { max_duration: None }
        };
        let play = PlayId(self.next_play);
        self.next_play += 1;
        NextItem::Play(PlayItem {
            play,
            item_id: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path,
            kind,
            fit: self.fit,
        })
    }

    fn on_event(&mut self, event: EngineEvent) {
        if matches!(event, EngineEvent::Started { .. }) {
            self.started_this_round = true;
        }
        if let Some(events) = &self.events {
            events.lock().unwrap_or_else(|p| p.into_inner()).push(event);
        }
    }

    fn poll_control(&mut self) -> Option<Control> {
        self.controls.pop()
    }
}
