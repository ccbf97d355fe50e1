//! The content-addressed media cache on the box (SPEC §4, §5): verified
//! files named by their SHA-256 under `cache/media/`, downloads in progress
//! under `cache/tmp/`.
//!
//! A file enters `media/` only by [`MediaCache::commit`]: fsync the temp
//! file, check its size and SHA-256 against the manifest, rename, fsync the
//! directory. So a name in `media/` is a promise that the bytes are the
//! ones the manifest pinned, and a power cut leaves either the old state or
//! the verified file, never a half-written one. This module owns that
//! promise, eviction and the disk quota; fetching is [`super::download`]'s.
//!
//! Eviction spares what the playback loop holds ([`MediaCache::hold`]: the
//! play on screen and the one committed to follow it, which the engine may
//! already have prerolled). A file no manifest needs but still held is
//! deferred and goes once the loop lets go of it
//! ([`MediaCache::evict_released`]): after a new manifest is activated, the
//! old media leave at the item boundary where the new manifest takes over.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};

use crate::manifest::Media;

/// Why media could not be cached. Each says what the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A filesystem operation failed.
    #[error("media cache: {op} {path} failed: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A manifest names media by something that is not a SHA-256.
    #[error(
        "media cache: {sha256:?} is not a lowercase hex SHA-256; refusing to use it as a file name"
    )]
    BadSha {
        /// What the manifest said.
        sha256: String,
    },
    /// The bytes do not hash to what the manifest pinned (substituted or
    /// corrupted on the way); they were deleted.
    #[error("media {sha256}: downloaded bytes hash to {actual}; substituted or corrupted, deleted")]
    HashMismatch {
        /// What the manifest pinned.
        sha256: String,
        /// What the bytes hash to.
        actual: String,
    },
    /// The server's file is not the size the manifest declared.
    #[error("media {sha256}: the manifest declares {declared} bytes but the server has {actual}")]
    SizeMismatch {
        /// The media.
        sha256: String,
        /// The manifest's size.
        declared: u64,
        /// What the server announced or sent.
        actual: u64,
    },
    /// The server kept sending past the declared size ("endless data"); the
    /// download was cut at the size and deleted.
    #[error(
        "media {sha256}: the server sent more than the declared {declared} bytes; download aborted"
    )]
    BodyTooLong {
        /// The media.
        sha256: String,
        /// The manifest's size.
        declared: u64,
    },
    /// The transfer fell below the minimum throughput (a trickling server).
    #[error(
        "media {sha256}: {bytes_per_s} bytes/s is below the {floor} bytes/s floor; aborted, retried later"
    )]
    TooSlow {
        /// The media.
        sha256: String,
        /// Measured over the last window.
        bytes_per_s: u64,
        /// `download.min_throughput_bytes_per_s`.
        floor: u64,
    },
    /// Nothing arrived for `download.stall_timeout`.
    #[error("media {sha256}: no data for {seconds} s; aborted, retried later")]
    Stalled {
        /// The media.
        sha256: String,
        /// The stall timeout.
        seconds: u64,
    },
    /// The connection broke or the body ended early; the bytes so far are kept for resuming.
    #[error("media {sha256}: transfer interrupted after {bytes} of {size} bytes: {reason}")]
    Interrupted {
        /// The media.
        sha256: String,
        /// Bytes in the temp file.
        bytes: u64,
        /// Declared size.
        size: u64,
        /// What happened.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("media {sha256}: the server answered {status} for {url}")]
    Http {
        /// The media.
        sha256: String,
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The media URL cannot be fetched.
    #[error("media {sha256}: bad URL {url:?}: {reason}")]
    BadUrl {
        /// The media.
        sha256: String,
        /// The URL from the manifest.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Caching it would exceed `cache.quota_bytes`, even after evicting every
    /// file no accepted or pending manifest needs.
    #[error(
        "media cache quota exceeded: {needed} more bytes needed, {used} of {quota} used by media still in use; raise cache.quota_bytes or shorten the playlist"
    )]
    QuotaExceeded {
        /// Bytes the missing media need.
        needed: u64,
        /// Bytes in use after eviction.
        used: u64,
        /// `cache.quota_bytes`.
        quota: u64,
    },
    /// The disk filled up while writing; the partial file was removed, the
    /// cache is as before.
    #[error(
        "media {sha256}: disk full while downloading; partial file removed (free space or lower cache.quota_bytes)"
    )]
    DiskFull {
        /// The media.
        sha256: String,
    },
    /// Outside `download.allowed_hours`.
    #[error("downloads are not allowed now (download.allowed_hours); retried in the next window")]
    OutsideDownloadHours,
}

impl CacheError {
    /// Whether trying the same download again soon may succeed (network
    /// trouble) rather than needing a new manifest or an operator.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::TooSlow { .. } | Self::Stalled { .. } | Self::Interrupted { .. } => true,
            Self::Http { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }
}

/// Whether `error` means the disk (or the filesystem's quota) is full.
pub(crate) fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Checks that `sha256` is 64 lowercase hex digits: it becomes a file name,
/// so anything else (`../`, `/`) would be a path trick.
pub fn check_sha(sha256: &str) -> Result<(), CacheError> {
    if sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(CacheError::BadSha {
            sha256: sha256.to_owned(),
        })
    }
}

/// What [`MediaCache::evict`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eviction {
    /// Files removed.
    pub files: usize,
    /// Bytes freed.
    pub bytes: u64,
}

/// The media cache directory.
#[derive(Debug, Clone)]
pub struct MediaCache {
    media_dir: PathBuf,
    tmp_dir: PathBuf,
    quota_bytes: u64,
    /// Shared by every clone: the sync task evicts, the playback loop holds.
    holds: Arc<Mutex<Holds>>,
}

/// Media the playback loop uses, and media eviction left for it.
#[derive(Debug, Default)]
struct Holds {
    /// SHA-256s of the play on screen and the one committed to follow it.
    held: HashSet<String>,
    /// SHA-256s no manifest needs any more, kept only because they were held.
    deferred: HashSet<String>,
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CacheError + use<> {
    let path = path.to_owned();
    move |source| CacheError::Io { op, path, source }
}

impl MediaCache {
    /// Opens the cache under `dir` (creating `media/` and `tmp/`), sweeping
    /// leftover temp files of downloads a restart cut short and stray files
    /// in `media/` that are not named by a SHA-256.
    pub fn open(dir: &Path, quota_bytes: u64) -> Result<Self, CacheError> {
        let cache = Self {
            media_dir: dir.join("media"),
            tmp_dir: dir.join("tmp"),
            quota_bytes,
            holds: Arc::default(),
        };
        for sub in [&cache.media_dir, &cache.tmp_dir] {
            std::fs::create_dir_all(sub).map_err(io_error("create", sub))?;
        }
        let mut swept = 0;
        for entry in std::fs::read_dir(&cache.tmp_dir).map_err(io_error("list", &cache.tmp_dir))? {
            let path = entry.map_err(io_error("list", &cache.tmp_dir))?.path();
            remove_file(&path)?;
            swept += 1;
        }
        for entry in
            std::fs::read_dir(&cache.media_dir).map_err(io_error("list", &cache.media_dir))?
        {
            let path = entry.map_err(io_error("list", &cache.media_dir))?.path();
            let named_by_sha = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| check_sha(name).is_ok());
            if !named_by_sha {
                tracing::warn!(path = %path.display(), "media cache: removing a file not named by a SHA-256");
                remove_file(&path)?;
                swept += 1;
            }
        }
        if swept > 0 {
            tracing::info!(swept, "media cache: leftover temp files removed");
        }
        Ok(cache)
    }

    /// `cache.quota_bytes`.
    pub fn quota_bytes(&self) -> u64 {
        self.quota_bytes
    }

    /// Where the verified file for `sha256` lives (whether or not it is there).
    pub fn media_path(&self, sha256: &str) -> Result<PathBuf, CacheError> {
        check_sha(sha256)?;
        Ok(self.media_dir.join(sha256))
    }

    /// The temp file a download of `sha256` writes to.
    pub fn temp_path(&self, sha256: &str) -> Result<PathBuf, CacheError> {
        check_sha(sha256)?;
        Ok(self.tmp_dir.join(format!("{sha256}.part")))
    }

    /// Whether `media` is in the cache. Files enter `media/` only verified,
    /// so this checks presence and size, not the hash (see [`Self::verify`]).
    pub fn contains(&self, media: &Media) -> bool {
        self.media_path(&media.sha256)
            .ok()
            .and_then(|path| std::fs::metadata(path).ok())
            .is_some_and(|meta| meta.is_file() && meta.len() == media.size)
    }

    /// Re-hashes a cached file (e.g. after suspected storage damage); a
    /// mismatching file is deleted so it is fetched again.
    pub fn verify(&self, media: &Media) -> Result<bool, CacheError> {
        let path = self.media_path(&media.sha256)?;
        match hash_file(&path) {
            Ok((actual, len)) if actual == media.sha256 && len == media.size => Ok(true),
            Ok((actual, _)) => {
                tracing::error!(sha = %media.sha256, %actual, "media cache: cached file damaged, deleted");
                remove_file(&path)?;
                Ok(false)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(CacheError::Io {
                op: "read",
                path,
                source,
            }),
        }
    }

    /// Bytes used by verified media and downloads in progress.
    pub fn usage(&self) -> Result<u64, CacheError> {
        let mut total = 0;
        for dir in [&self.media_dir, &self.tmp_dir] {
            for entry in std::fs::read_dir(dir).map_err(io_error("list", dir))? {
                let entry = entry.map_err(io_error("list", dir))?;
                total += entry
                    .metadata()
                    .map_err(io_error("stat", &entry.path()))?
                    .len();
            }
        }
        Ok(total)
    }

    /// Removes every cached file whose SHA-256 is not in `keep` (the media
    /// of the accepted and pending manifests), and temp files of downloads
    /// nobody needs any more. Files the playback loop holds stay until it
    /// lets go of them (see [`Self::hold`]).
    pub fn evict(&self, keep: &HashSet<String>) -> Result<Eviction, CacheError> {
        let mut holds = self.holds();
        holds.deferred.retain(|sha| !keep.contains(sha));
        let mut eviction = Eviction::default();
        for (dir, suffix) in [(&self.media_dir, ""), (&self.tmp_dir, ".part")] {
            for entry in std::fs::read_dir(dir).map_err(io_error("list", dir))? {
                let entry = entry.map_err(io_error("list", dir))?;
                let name = entry.file_name();
                let sha = name
                    .to_str()
                    .and_then(|name| name.strip_suffix(suffix))
                    .unwrap_or_default();
                if keep.contains(sha) {
                    continue;
                }
                if suffix.is_empty() && holds.held.contains(sha) {
                    tracing::info!(sha, "media cache: on screen or next; evicted once played");
                    holds.deferred.insert(sha.to_owned());
                    continue;
                }
                self.remove_evicted(&entry.path(), sha, &mut eviction)?;
            }
        }
        Ok(eviction)
    }

    /// The playback loop's media now: the play on screen and the one
    /// committed to follow (its file may already be open in the engine).
    /// Eviction leaves these alone; returns whether media it deferred are
    /// now free to go ([`Self::evict_released`]).
    pub fn hold(&self, sha256s: HashSet<String>) -> bool {
        let mut holds = self.holds();
        holds.held = sha256s;
        holds.deferred.iter().any(|sha| !holds.held.contains(sha))
    }

    /// Media a manifest needs again (a new pending one) are no longer due
    /// for eviction.
    pub fn cancel_eviction(&self, needed: &HashSet<String>) {
        self.holds().deferred.retain(|sha| !needed.contains(sha));
    }

    /// Removes the media eviction deferred while they were held, now that
    /// they are not.
    pub fn evict_released(&self) -> Result<Eviction, CacheError> {
        let mut holds = self.holds();
        let released: Vec<String> = holds
            .deferred
            .iter()
            .filter(|sha| !holds.held.contains(*sha))
            .cloned()
            .collect();
        let mut eviction = Eviction::default();
        for sha in released {
            let path = self.media_path(&sha)?;
            if path.exists() {
                self.remove_evicted(&path, &sha, &mut eviction)?;
            }
            holds.deferred.remove(&sha);
        }
        Ok(eviction)
    }

    fn holds(&self) -> MutexGuard<'_, Holds> {
        // The sets stay consistent even if a holder panicked.
        self.holds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove_evicted(
        &self,
        path: &Path,
        sha: &str,
        eviction: &mut Eviction,
    ) -> Result<(), CacheError> {
        let len = std::fs::metadata(path)
            .map_err(io_error("stat", path))?
            .len();
        remove_file(path)?;
        tracing::info!(sha, bytes = len, "media cache: evicted");
        eviction.files += 1;
        eviction.bytes += len;
        Ok(())
    }

    /// Checks that `needed` more bytes fit in the quota, evicting media
    /// outside `keep` first if they do not.
    pub fn make_room(&self, needed: u64, keep: &HashSet<String>) -> Result<(), CacheError> {
        if self.usage()?.saturating_add(needed) <= self.quota_bytes {
            return Ok(());
        }
        self.evict(keep)?;
        let used = self.usage()?;
        if used.saturating_add(needed) <= self.quota_bytes {
            Ok(())
        } else {
            Err(CacheError::QuotaExceeded {
                needed,
                used,
                quota: self.quota_bytes,
            })
        }
    }

    /// Moves a complete temp file into `media/`: fsync, check size and
    /// SHA-256, rename, fsync the directory. A mismatching file is deleted.
    pub fn commit(&self, media: &Media) -> Result<PathBuf, CacheError> {
        let temp = self.temp_path(&media.sha256)?;
        let target = self.media_path(&media.sha256)?;
        let synced = std::fs::File::open(&temp).and_then(|file| file.sync_all());
        if let Err(source) = synced {
            remove_file(&temp)?;
            return Err(if is_disk_full(&source) {
                CacheError::DiskFull {
                    sha256: media.sha256.clone(),
                }
            } else {
                CacheError::Io {
                    op: "fsync",
                    path: temp,
                    source,
                }
            });
        }
        let (actual, len) = hash_file(&temp).map_err(io_error("read", &temp))?;
        if len != media.size {
            remove_file(&temp)?;
            return Err(CacheError::SizeMismatch {
                sha256: media.sha256.clone(),
                declared: media.size,
                actual: len,
            });
        }
        if actual != media.sha256 {
            remove_file(&temp)?;
            return Err(CacheError::HashMismatch {
                sha256: media.sha256.clone(),
                actual,
            });
        }
        std::fs::rename(&temp, &target).map_err(io_error("rename", &temp))?;
        std::fs::File::open(&self.media_dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("fsync", &self.media_dir))?;
        Ok(target)
    }
}

/// Removes a file; a file already gone is fine.
pub(crate) fn remove_file(path: &Path) -> Result<(), CacheError> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(CacheError::Io {
            op: "remove",
            path: path.to_owned(),
            source: error,
        }),
        _ => Ok(()),
    }
}

/// Lowercase hex SHA-256 and length of a file.
fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut len = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok((hex::encode(hasher.finalize()), len));
        }
        hasher.update(&buffer[..read]);
        len += read as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(bytes: &[u8]) -> Media {
        Media {
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
            mime: "image/png".to_owned(),
            url: "/media/x".to_owned(),
        }
    }

    fn put(cache: &MediaCache, bytes: &[u8]) -> Media {
        let media = media(bytes);
        std::fs::write(cache.temp_path(&media.sha256).unwrap(), bytes).unwrap();
        cache.commit(&media).unwrap();
        media
    }

    #[test]
    fn path_tricks_are_not_file_names() {
        for bad in [
            "../../etc/passwd",
            "",
            &"A".repeat(64),
            &"0".repeat(63),
            &format!("{}/", "0".repeat(63)),
        ] {
            assert!(
                matches!(check_sha(bad), Err(CacheError::BadSha { .. })),
                "{bad:?}"
            );
        }
        check_sha(&"0a".repeat(32)).unwrap();
    }

    #[test]
    fn commit_verifies_size_and_hash_then_renames() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MediaCache::open(dir.path(), 1 << 20).unwrap();
        let good = put(&cache, b"poster of day 1");
        assert!(cache.contains(&good));
        assert!(cache.verify(&good).unwrap());

        let substituted = media(b"the real poster");
        std::fs::write(
            cache.temp_path(&substituted.sha256).unwrap(),
            b"the fake poster",
        )
        .unwrap();
        let error = cache.commit(&substituted).unwrap_err();
        assert!(
            matches!(&error, CacheError::HashMismatch { sha256, .. } if *sha256 == substituted.sha256),
            "{error}"
        );
        assert!(error.to_string().contains(&substituted.sha256));
        assert!(!cache.contains(&substituted));
        assert!(
            !cache.temp_path(&substituted.sha256).unwrap().exists(),
            "the bad bytes are deleted"
        );

        let short = media(b"twelve bytes");
        std::fs::write(cache.temp_path(&short.sha256).unwrap(), b"twelve").unwrap();
        assert!(matches!(
            cache.commit(&short),
            Err(CacheError::SizeMismatch {
                declared: 12,
                actual: 6,
                ..
            })
        ));
    }

    #[test]
    fn open_sweeps_temp_files_and_strays() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MediaCache::open(dir.path(), 1 << 20).unwrap();
        let kept = put(&cache, b"clip");
        std::fs::write(
            dir.path()
                .join("tmp")
                .join(format!("{}.part", "ab".repeat(32))),
            b"half",
        )
        .unwrap();
        std::fs::write(dir.path().join("media").join("notes.txt"), b"stray").unwrap();
        let cache = MediaCache::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("media")).unwrap().count(),
            1
        );
        assert!(cache.contains(&kept));
    }

    #[test]
    fn eviction_keeps_what_manifests_need_and_quota_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MediaCache::open(dir.path(), 100).unwrap();
        let active = put(&cache, &[1; 40]);
        let old = put(&cache, &[2; 40]);
        let keep: HashSet<String> = [active.sha256.clone()].into();
        // 40 more bytes fit only after the old file goes.
        cache.make_room(40, &keep).unwrap();
        assert!(cache.contains(&active));
        assert!(!cache.contains(&old));
        // 70 more bytes never fit beside the active manifest's media: reported, nothing deleted.
        let error = cache.make_room(70, &keep).unwrap_err();
        assert!(
            matches!(
                error,
                CacheError::QuotaExceeded {
                    needed: 70,
                    used: 40,
                    quota: 100
                }
            ),
            "{error}"
        );
        assert!(cache.contains(&active));
        let eviction = cache.evict(&HashSet::new()).unwrap();
        assert_eq!(
            eviction,
            Eviction {
                files: 1,
                bytes: 40
            }
        );
    }

    #[test]
    fn held_media_outlive_eviction_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MediaCache::open(dir.path(), 1 << 20).unwrap();
        let on_screen = put(&cache, b"clip on screen");
        let next = put(&cache, b"clip prerolled next");
        let idle = put(&cache, b"clip nobody plays");
        let new = put(&cache, b"clip of the new manifest");
        let held = |media: &[&Media]| media.iter().map(|m| m.sha256.clone()).collect();
        assert!(!cache.hold(held(&[&on_screen, &next])));

        // A new manifest needs only `new`: what is not held goes at once.
        let keep: HashSet<String> = [new.sha256.clone()].into();
        let eviction = cache.evict(&keep).unwrap();
        assert_eq!(eviction.files, 1);
        assert!(!cache.contains(&idle));
        assert!(cache.contains(&on_screen) && cache.contains(&next));

        // The committed play starts: the finished one is released.
        assert!(cache.hold(held(&[&next])));
        assert_eq!(cache.evict_released().unwrap().files, 1);
        assert!(!cache.contains(&on_screen));
        assert!(cache.contains(&next));
        assert_eq!(cache.evict_released().unwrap(), Eviction::default());

        // A newer manifest needs `next` again: it is no longer due to go.
        cache.cancel_eviction(&[next.sha256.clone()].into());
        assert!(!cache.hold(held(&[&new])));
        assert_eq!(cache.evict_released().unwrap(), Eviction::default());
        assert!(cache.contains(&next) && cache.contains(&new));
    }

    #[test]
    fn damaged_cached_file_is_deleted_by_verify() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MediaCache::open(dir.path(), 1 << 20).unwrap();
        let media = put(&cache, b"clip bytes");
        std::fs::write(cache.media_path(&media.sha256).unwrap(), b"clip bytez").unwrap();
        assert!(!cache.verify(&media).unwrap());
        assert!(!cache.contains(&media));
    }
}
