//! The [`Source`] behind `ekran play`: local files (or a playlist's
//! items) in the order given, once or looped. Stills show for their
//! duration, clips to their end or their cap.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::decode::is_still_path;
use super::{Control, EngineEvent, Fit, MediaKind, NextItem, PlayId, PlayItem, Source};

/// One entry of the list: a file and how to show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListEntry {
    /// The local file.
    pub path: PathBuf,
    /// Names the item in stats and events (the file name, or a playlist item id).
    pub item_id: String,
    /// Clip or still, with its duration or cap.
    pub kind: MediaKind,
    /// How it fills the screen.
    pub fit: Fit,
}

impl ListEntry {
    /// A file shown as its extension says: a still for `still_duration`,
    /// anything else as a clip to its end.
    pub fn file(path: PathBuf, still_duration: Duration, fit: Fit) -> Self {
        let kind = if is_still_path(&path) {
            MediaKind::Still {
                duration: still_duration,
            }
        } else {
            MediaKind::Clip { max_duration: None }
        };
        ListEntry {
            item_id: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path,
            kind,
            fit,
        }
    }
}

/// Plays a list of files.
pub struct FileListSource {
    entries: Vec<ListEntry>,
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
        let entries = files
            .into_iter()
            .map(|path| ListEntry::file(path, still_duration, fit))
            .collect();
        Self::from_entries(entries, looped)
    }

    /// Plays `entries` in order (looped if `looped`).
    pub fn from_entries(entries: Vec<ListEntry>, looped: bool) -> Self {
        FileListSource {
            entries,
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
        if self.position == self.entries.len() {
            // Loop only if something of the last round got on screen: a list of
            // broken files would otherwise fail forever.
            if !self.looped
                || self.entries.is_empty()
                || !std::mem::take(&mut self.started_this_round)
            {
                return NextItem::End;
            }
            self.position = 0;
        }
        let entry = self.entries[self.position].clone();
        self.position += 1;
        let play = PlayId(self.next_play);
        self.next_play += 1;
        NextItem::Play(PlayItem {
            play,
            item_id: entry.item_id,
            path: entry.path,
            kind: entry.kind,
            fit: entry.fit,
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
