//! Media storage: the [`MediaStore`] trait (content-addressed objects named
//! by their SHA-256) with its on-disk implementation [`DiskStore`], and the
//! content sniffing that decides which uploads are media at all.
//!
//! Uploads are staged in a temp file inside the store (same file system, so
//! the final rename is atomic), fsynced, then renamed to their hash. A
//! staged upload that is dropped without commit removes its temp file:
//! nothing half-written ever carries a hash name.

use std::future::Future;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use axum::body::Bytes;
use futures_util::Stream;
use rand::RngCore;
use tokio::fs::File;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// A boxed future, so the store traits stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A stream of file bytes for a response body.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Media types the server accepts, by sniffed content.
pub const ACCEPTED_TYPES: &str = "MP4, Matroska, WebM video or PNG, JPEG images";

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A file-system operation failed.
    #[error("media store: cannot {what} {path}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The file it was applied to.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A name that is not a lowercase hex SHA-256 (never touches the disk).
    #[error("{0:?} is not a lowercase hex SHA-256")]
    BadHash(String),
}

/// Where media bytes live: on disk today, object storage later.
pub trait MediaStore: Send + Sync + 'static {
    /// Starts an upload into a staging area.
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn StagedUpload>, MediaError>>;
    /// Length of the stored object, if there is one.
    fn stat<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<u64>, MediaError>>;
    /// Streams `range` (byte offsets, end exclusive) of a stored object.
    fn read<'a>(
        &'a self,
        sha256: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<ByteStream, MediaError>>;
}

/// An upload in progress. Dropping it without [`StagedUpload::commit`] discards it.
pub trait StagedUpload: Send {
    /// Appends bytes.
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, Result<(), MediaError>>;
    /// Makes the staged bytes durable under `sha256` (the caller computed
    /// it while writing). If that object already exists it is kept and the
    /// staged copy discarded.
    fn commit(self: Box<Self>, sha256: String) -> BoxFuture<'static, Result<(), MediaError>>;
}

/// True for a 64-character lowercase hex string: the only names the store takes.
pub fn is_sha256_hex(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Content-addressed files under `root`: `root/ab/abcdef…` plus `root/tmp/`.
#[derive(Debug, Clone)]
pub struct DiskStore {
    root: PathBuf,
}

impl DiskStore {
    /// A store rooted at `root` (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, MediaError> {
        let root = root.into();
        let staging = root.join("tmp");
        std::fs::create_dir_all(&staging).map_err(|source| MediaError::Io {
            what: "create",
            path: staging,
            source,
        })?;
        Ok(Self { root })
    }

    /// The path of an object; refuses anything but a hex hash, so no name
    /// can walk out of the store.
    pub fn object_path(&self, sha256: &str) -> Result<PathBuf, MediaError> {
        if !is_sha256_hex(sha256) {
            return Err(MediaError::BadHash(sha256.to_owned()));
        }
        Ok(self.root.join(&sha256[..2]).join(sha256))
    }
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MediaError + 'a {
    move |source| MediaError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

impl MediaStore for DiskStore {
    fn begin(&self) -> BoxFuture<'_, Result<Box<dyn StagedUpload>, MediaError>> {
        Box::pin(async move {
            let mut raw = [0u8; 12];
            rand::rngs::OsRng.fill_bytes(&mut raw);
            let path = self
                .root
                .join("tmp")
                .join(format!("upload-{}", hex::encode(raw)));
            let file = File::create(&path)
                .await
                .map_err(io_error("create", &path))?;
            Ok(Box::new(DiskUpload {
                file: Some(file),
                path,
                root: self.root.clone(),
            }) as Box<dyn StagedUpload>)
        })
    }

    fn stat<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<u64>, MediaError>> {
        Box::pin(async move {
            let path = self.object_path(sha256)?;
            match tokio::fs::metadata(&path).await {
                Ok(meta) => Ok(Some(meta.len())),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(io_error("stat", &path)(error)),
            }
        })
    }

    fn read<'a>(
        &'a self,
        sha256: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<ByteStream, MediaError>> {
        Box::pin(async move {
            use tokio::io::AsyncReadExt;
            let path = self.object_path(sha256)?;
            let mut file = File::open(&path).await.map_err(io_error("open", &path))?;
            file.seek(io::SeekFrom::Start(range.start))
                .await
                .map_err(io_error("seek in", &path))?;
            let limited = file.take(range.end.saturating_sub(range.start));
            Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
                limited,
                64 * 1024,
            )) as ByteStream)
        })
    }
}

/// A temp file in `root/tmp`, removed on drop unless committed.
struct DiskUpload {
    file: Option<File>,
    path: PathBuf,
    root: PathBuf,
}

impl StagedUpload for DiskUpload {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, Result<(), MediaError>> {
        Box::pin(async move {
            let file = self.file.as_mut().ok_or_else(|| MediaError::Io {
                what: "write",
                path: self.path.clone(),
                source: io::Error::other("upload already committed"),
            })?;
            file.write_all(chunk)
                .await
                .map_err(io_error("write", &self.path))
        })
    }

    fn commit(mut self: Box<Self>, sha256: String) -> BoxFuture<'static, Result<(), MediaError>> {
        Box::pin(async move {
            let store = DiskStore {
                root: self.root.clone(),
            };
            let target = store.object_path(&sha256)?;
            if let Some(mut file) = self.file.take() {
                file.flush().await.map_err(io_error("flush", &self.path))?;
                // Durable before it gets a name that says "complete and verified".
                file.sync_all()
                    .await
                    .map_err(io_error("fsync", &self.path))?;
            }
            if tokio::fs::try_exists(&target).await.unwrap_or(false) {
                // Same hash, same bytes: keep the existing object (dedup).
                return Ok(());
            }
            let dir = target
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.clone());
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(io_error("create", &dir))?;
            tokio::fs::rename(&self.path, &target)
                .await
                .map_err(io_error("rename into", &target))?;
            // The rename must survive a power cut too: fsync the directory.
            if let Ok(dir_handle) = File::open(&dir).await {
                let _ = dir_handle.sync_all().await;
            }
            self.path = PathBuf::new();
            Ok(())
        })
    }
}

impl Drop for DiskUpload {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            // Aborted or deduplicated upload: the staged bytes are not needed.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// How many leading bytes [`sniff`] needs to decide.
pub const SNIFF_BYTES: usize = 4096;

/// The media type of a file, judged from its first bytes (not from what the
/// client claims): MP4/MOV-style `ftyp`, Matroska/WebM EBML, PNG, JPEG.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.len() >= 12 && &head[4..8] == b"ftyp" {
        Some("video/mp4")
    } else if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // EBML header; its DocType says which flavour.
        let window = &head[..head.len().min(64)];
        if window.windows(4).any(|w| w == b"webm") {
            Some("video/webm")
        } else {
            Some("video/x-matroska")
        }
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_accepted_type_and_refuses_others() {
        let mut mp4 = vec![0, 0, 0, 0x20];
        mp4.extend_from_slice(b"ftypisom\0\0\x02\0");
        assert_eq!(sniff(&mp4), Some("video/mp4"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some("image/jpeg")
        );
        let mut webm = vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x84];
        webm.extend_from_slice(b"webm");
        assert_eq!(sniff(&webm), Some("video/webm"));
        let mut mkv = vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x88];
        mkv.extend_from_slice(b"matroska");
        assert_eq!(sniff(&mkv), Some("video/x-matroska"));
        assert_eq!(sniff(b"#!/bin/sh\nrm -rf /"), None);
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn object_paths_take_only_hashes() {
        let store = DiskStore {
            root: PathBuf::from("/store"),
        };
        let sha = "ab".repeat(32);
        assert_eq!(
            store.object_path(&sha).unwrap(),
            PathBuf::from(format!("/store/ab/{sha}"))
        );
        for bad in ["../../etc/passwd", &"AB".repeat(32), &"ab".repeat(31), ""] {
            assert!(store.object_path(bad).is_err(), "{bad}");
        }
    }
}
