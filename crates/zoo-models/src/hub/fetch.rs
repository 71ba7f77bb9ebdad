//! A local cache of weight files (cargo feature `download`): downloads through HTTP(S),
//! verifies the SHA-256, resumes partial downloads, and serves what is cached without the
//! network.
//!
//! Layout: `<cache>/<weight name>/<file name of the URL>` (a `/` in the name becomes `--`),
//! with `<cache>` = `$ZOO_HOME/weights`, else the platform cache directory's
//! `burn-zoo/weights` (`~/.cache/burn-zoo/weights` on Linux). A download goes to
//! `<file>.part` and is renamed to `<file>` only once complete and verified, so the cache
//! never holds a half-written file under its final name. A cut connection leaves the
//! `.part`, which the next fetch resumes with an HTTP `Range` request (or restarts, if the
//! server ignores ranges); a checksum mismatch deletes it.
//!
//! `ZOO_WEIGHTS_MIRROR=http://host:port[/prefix]` replaces the scheme and host of every URL
//! (for mirrors, and for tests on the loopback address).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::{Checksum, WeightFile, find};

/// Environment variable naming burn-zoo's home; weights are cached in its `weights/`.
pub const ZOO_HOME: &str = "ZOO_HOME";
/// Environment variable replacing the scheme and host of every weight URL.
pub const ZOO_WEIGHTS_MIRROR: &str = "ZOO_WEIGHTS_MIRROR";

/// Why a weight file could not be fetched. Every variant names the weights; those about a
/// download name the URL that was tried.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The name is not in the registry.
    #[error("unknown weights {name:?} (`zoo weights list` shows the registry)")]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// Neither `ZOO_HOME` nor a platform cache directory is available.
    #[error("no cache directory for weights: set ZOO_HOME")]
    NoCacheDir,
    /// A name or URL the cache cannot turn into a file path.
    #[error("{name}: {url}: cannot name a cache file after it")]
    BadName {
        /// The weights.
        name: String,
        /// The URL.
        url: String,
    },
    /// The server answered with an error status (404, 403, 500, …).
    #[error("{name}: {url}: the server answered HTTP {status}")]
    Status {
        /// The weights.
        name: String,
        /// The URL tried (after the mirror).
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// No answer: no network, unknown host, refused connection, TLS failure, timeout.
    #[error(
        "{name}: {url}: {message} (no network? cached files need none; a mirror can be set with ZOO_WEIGHTS_MIRROR)"
    )]
    Network {
        /// The weights.
        name: String,
        /// The URL tried.
        url: String,
        /// The client's message.
        message: String,
    },
    /// The connection ended before the whole file arrived; the partial file is kept and the
    /// next fetch resumes it.
    #[error(
        "{name}: {url}: the download stopped after {received} of {} bytes ({message}); \
         fetching again resumes it from {}",
        .expected.map_or_else(|| "?".to_string(), |e| e.to_string()),
        .part.display()
    )]
    Truncated {
        /// The weights.
        name: String,
        /// The URL tried.
        url: String,
        /// Bytes in the partial file.
        received: u64,
        /// The file's announced length, if the server gave one.
        expected: Option<u64>,
        /// What ended it.
        message: String,
        /// The partial file (`<file>.part`).
        part: PathBuf,
    },
    /// The complete download does not have the published checksum; it was deleted.
    #[error(
        "{name}: {url}: checksum mismatch: expected {expected}, got sha256 {actual}; the download was deleted"
    )]
    Checksum {
        /// The weights.
        name: String,
        /// The URL tried.
        url: String,
        /// The published checksum.
        expected: String,
        /// The SHA-256 of what arrived.
        actual: String,
    },
    /// Reading or writing the cache failed.
    #[error("{name}: {}: {source}", .path.display())]
    Io {
        /// The weights.
        name: String,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Downloads weight files into a cache directory.
#[derive(Debug, Clone)]
pub struct Fetcher {
    cache_dir: PathBuf,
    mirror: Option<String>,
    progress: bool,
}

impl Fetcher {
    /// A fetcher caching in `cache_dir`, without mirror or progress report.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            mirror: None,
            progress: false,
        }
    }

    /// The fetcher the environment describes: `$ZOO_HOME/weights` (else the platform cache
    /// directory's `burn-zoo/weights`) and `$ZOO_WEIGHTS_MIRROR`.
    ///
    /// # Errors
    /// [`FetchError::NoCacheDir`] when neither directory is known.
    pub fn from_env() -> Result<Self, FetchError> {
        Self::from_vars(
            std::env::var_os(ZOO_HOME),
            std::env::var(ZOO_WEIGHTS_MIRROR).ok(),
        )
    }

    /// [`Self::from_env`] with the variables' values given (empty values count as unset).
    ///
    /// # Errors
    /// [`FetchError::NoCacheDir`] when `zoo_home` is unset and the platform has no cache
    /// directory.
    pub fn from_vars(
        zoo_home: Option<OsString>,
        mirror: Option<String>,
    ) -> Result<Self, FetchError> {
        let cache_dir = match zoo_home.filter(|h| !h.is_empty()) {
            Some(home) => PathBuf::from(home).join("weights"),
            None => dirs::cache_dir()
                .ok_or(FetchError::NoCacheDir)?
                .join("burn-zoo")
                .join("weights"),
        };
        Ok(Self::new(cache_dir).with_mirror(mirror))
    }

    /// Replace the scheme and host of every URL with `mirror` (`http://host:port`, optionally
    /// with a path prefix); `None` or an empty string for the URLs as published.
    pub fn with_mirror(mut self, mirror: Option<String>) -> Self {
        self.mirror = mirror.filter(|m| !m.is_empty());
        self
    }

    /// Report progress on standard error while downloading (only when it is a terminal).
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The URL a download of `file` uses (the mirror applied).
    pub fn url(&self, file: &WeightFile<'_>) -> String {
        match &self.mirror {
            Some(mirror) => {
                let path = file
                    .url
                    .split_once("://")
                    .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                    .unwrap_or("/");
                format!("{}{path}", mirror.trim_end_matches('/'))
            }
            None => file.url.to_string(),
        }
    }

    /// Where `file` is (or will be) cached.
    ///
    /// # Errors
    /// [`FetchError::BadName`] for a name or URL that cannot name a file (empty, `..`).
    pub fn path(&self, file: &WeightFile<'_>) -> Result<PathBuf, FetchError> {
        let bad = || FetchError::BadName {
            name: file.name.to_string(),
            url: file.url.to_string(),
        };
        let dir = file.name.replace('/', "--");
        let url_path = file.url.split(['?', '#']).next().unwrap_or_default();
        let file_name = url_path.rsplit('/').next().unwrap_or_default();
        let usable = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && !s.contains(['/', '\\'])
                && !s.starts_with('.')
        };
        if !usable(&dir) || !usable(file_name) {
            return Err(bad());
        }
        Ok(self.cache_dir.join(dir).join(file_name))
    }

    /// The cached, verified copy of `file`, without touching the network; `None` if there is
    /// none. A cached file whose checksum no longer matches is deleted.
    ///
    /// # Errors
    /// A bad name, or the cache cannot be read.
    pub fn cached(&self, file: &WeightFile<'_>) -> Result<Option<PathBuf>, FetchError> {
        let path = self.path(file)?;
        if !path.is_file() {
            return Ok(None);
        }
        if let Checksum::Unpublished = file.checksum {
            return Ok(Some(path));
        }
        let digest = sha256_of(&path).map_err(|e| io_error(file, &path, e))?;
        if file.checksum.matches(&digest) {
            return Ok(Some(path));
        }
        fs::remove_file(&path).map_err(|e| io_error(file, &path, e))?;
        Ok(None)
    }

    /// The path of `file` in the cache, downloading it first unless a verified copy is
    /// there.
    ///
    /// # Errors
    /// See [`FetchError`]: the server's status, no network, a truncated download (kept as
    /// `.part` to resume), a checksum mismatch (nothing kept), or a cache I/O failure.
    pub fn fetch(&self, file: &WeightFile<'_>) -> Result<PathBuf, FetchError> {
        if let Some(path) = self.cached(file)? {
            return Ok(path);
        }
        let path = self.path(file)?;
        let dir = path.parent().unwrap_or(&self.cache_dir);
        fs::create_dir_all(dir).map_err(|e| io_error(file, dir, e))?;
        let mut part = path.clone().into_os_string();
        part.push(".part");
        let part = PathBuf::from(part);
        let url = self.url(file);
        // A second attempt restarts from zero, when the server's answer to a range request
        // cannot extend the partial file.
        for _ in 0..2 {
            match self.download(file, &url, &part)? {
                Download::Complete => {
                    fs::rename(&part, &path).map_err(|e| io_error(file, &path, e))?;
                    return Ok(path);
                }
                Download::Restart => {
                    remove_if_present(&part).map_err(|e| io_error(file, &part, e))?
                }
            }
        }
        Err(FetchError::Network {
            name: file.name.to_string(),
            url,
            message: "the server's range answers do not fit the partial download".into(),
        })
    }

    /// One request: resumes `part` if it exists, writes to it, verifies the whole.
    fn download(
        &self,
        file: &WeightFile<'_>,
        url: &str,
        part: &Path,
    ) -> Result<Download, FetchError> {
        let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut request = agent.get(url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let response = request.call().map_err(|e| FetchError::Network {
            name: file.name.to_string(),
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let content_range = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let offset = match status {
            200 => 0,
            206 => match content_range.as_deref().and_then(parse_content_range) {
                Some((start, _)) if start == have => have,
                _ => return Ok(Download::Restart),
            },
            // The range starts at the end: the partial file may already be whole.
            416 if have > 0 => {
                let total = content_range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes */"))
                    .and_then(|t| t.trim().parse::<u64>().ok());
                if total == Some(have) {
                    let digest = sha256_of(part).map_err(|e| io_error(file, part, e))?;
                    if file.checksum.matches(&digest) {
                        return Ok(Download::Complete);
                    }
                }
                return Ok(Download::Restart);
            }
            _ => {
                return Err(FetchError::Status {
                    name: file.name.to_string(),
                    url: url.to_string(),
                    status,
                });
            }
        };
        let body = response.into_body();
        let expected = body.content_length().map(|n| n + offset);
        let mut out = OpenOptions::new()
            .create(true)
            .write(true)
            .append(offset > 0)
            .truncate(offset == 0)
            .open(part)
            .map_err(|e| io_error(file, part, e))?;
        let mut hasher = Sha256::new();
        if offset > 0 {
            hash_into(&mut hasher, part).map_err(|e| io_error(file, part, e))?;
        }
        let progress = self.progress(file.name, expected);
        progress.set_position(offset);
        let mut reader = body.into_reader();
        let mut received = offset;
        let mut buf = vec![0u8; 1 << 16];
        let cut = loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Some(e.to_string()),
            };
            out.write_all(&buf[..n])
                .map_err(|e| io_error(file, part, e))?;
            hasher.update(&buf[..n]);
            received += n as u64;
            progress.set_position(received);
        };
        out.sync_all().map_err(|e| io_error(file, part, e))?;
        drop(out);
        progress.finish_and_clear();
        let short = expected.is_some_and(|e| received < e);
        if cut.is_some() || short {
            return Err(FetchError::Truncated {
                name: file.name.to_string(),
                url: url.to_string(),
                received,
                expected,
                message: cut.unwrap_or_else(|| "connection closed".into()),
                part: part.to_path_buf(),
            });
        }
        self.verify(file, url, part, hex(&hasher.finalize()))?;
        Ok(Download::Complete)
    }

    /// Checks the complete `part` against its digest; a mismatch deletes it.
    fn verify(
        &self,
        file: &WeightFile<'_>,
        url: &str,
        part: &Path,
        digest: String,
    ) -> Result<(), FetchError> {
        if file.checksum.matches(&digest) {
            return Ok(());
        }
        remove_if_present(part).map_err(|e| io_error(file, part, e))?;
        Err(FetchError::Checksum {
            name: file.name.to_string(),
            url: url.to_string(),
            expected: file.checksum.to_string(),
            actual: digest,
        })
    }

    /// A progress bar on standard error (indicatif: drawn on a terminal only, hidden
    /// otherwise), or a hidden one when progress is off.
    fn progress(&self, name: &str, total: Option<u64>) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let (bar, template) = match total {
            Some(t) if t > 0 => (
                ProgressBar::new(t),
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ),
            _ => (
                ProgressBar::new_spinner(),
                "{prefix} {spinner} {bytes} {bytes_per_sec}",
            ),
        };
        let style = ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(name.to_string());
        bar
    }
}

/// What one request achieved.
enum Download {
    /// `.part` holds the whole, verified file.
    Complete,
    /// The answer cannot extend `.part`: start again from zero.
    Restart,
}

/// Downloads registry weights `name` (or a model's default weights, see
/// [`find`]) into the cache the environment names, with a progress line on a
/// terminal; returns the cached path.
///
/// # Errors
/// [`FetchError::Unknown`] for a name outside the registry, else as [`Fetcher::fetch`].
pub fn fetch(name: &str) -> Result<PathBuf, FetchError> {
    let spec = find(name).ok_or_else(|| FetchError::Unknown {
        name: name.to_string(),
    })?;
    Fetcher::from_env()?.with_progress(true).fetch(&spec.file())
}

/// `bytes START-END/TOTAL` → (START, TOTAL if known).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

fn io_error(file: &WeightFile<'_>, path: &Path, source: io::Error) -> FetchError {
    FetchError::Io {
        name: file.name.to_string(),
        path: path.to_path_buf(),
        source,
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn hash_into(hasher: &mut Sha256, path: &Path) -> io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(()),
            n => hasher.update(&buf[..n]),
        }
    }
}

/// The SHA-256 of a file, lower-case hex.
pub fn sha256_of(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    hash_into(&mut hasher, path)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(url: &str) -> WeightFile<'_> {
        WeightFile {
            name: "smp-hub/resnet18.imagenet",
            url,
            checksum: Checksum::Unpublished,
        }
    }

    #[test]
    fn mirror_replaces_scheme_and_host() {
        let f =
            file("https://huggingface.co/smp-hub/resnet18.imagenet/resolve/abc/model.safetensors");
        let fetcher = Fetcher::new("/c").with_mirror(Some("http://127.0.0.1:9/m/".into()));
        assert_eq!(
            fetcher.url(&f),
            "http://127.0.0.1:9/m/smp-hub/resnet18.imagenet/resolve/abc/model.safetensors"
        );
        assert_eq!(
            Fetcher::new("/c").with_mirror(Some(String::new())).url(&f),
            f.url
        );
        assert_eq!(
            fetcher.path(&f).unwrap(),
            Path::new("/c/smp-hub--resnet18.imagenet/model.safetensors")
        );
        assert!(matches!(
            fetcher.path(&file("https://host/")),
            Err(FetchError::BadName { .. })
        ));
        assert!(matches!(
            fetcher.path(&file("https://host/..")),
            Err(FetchError::BadName { .. })
        ));
    }

    #[test]
    fn environment_names_the_cache() {
        let f = Fetcher::from_vars(Some("/home/z".into()), Some("http://m".into())).unwrap();
        assert_eq!(f.cache_dir(), Path::new("/home/z/weights"));
        assert_eq!(f.mirror.as_deref(), Some("http://m"));
        if let Ok(f) = Fetcher::from_vars(Some(OsString::new()), None) {
            assert!(f.cache_dir().ends_with("burn-zoo/weights"));
            assert!(f.mirror.is_none());
        }
    }

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 10-99/*"), Some((10, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
