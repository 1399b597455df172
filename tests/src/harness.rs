//! Runs the real `kizuki` binary and reads what it wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate sits in the workspace")
        .to_path_buf()
}

/// Path of the release `kizuki` binary, built once per test process (cargo decides whether
/// it is stale). `KIZUKI_BIN` overrides it.
pub fn kizuki_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("KIZUKI_BIN") {
            return PathBuf::from(p);
        }
        let root = workspace_root();
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-q",
                "-p",
                "kizuki",
                "--bin",
                "kizuki",
            ])
            .current_dir(&root)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of kizuki failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        target.join("release").join("kizuki")
    })
    .clone()
}

/// Set (to anything) to keep every replay's output directory.
pub const KEEP_OUTPUT_ENV: &str = "KIZUKI_KEEP_TEST_OUTPUT";

/// What one `kizuki replay` wrote.
///
/// The output directory `dir` is removed when the `Replay` is dropped, unless
/// [`KEEP_OUTPUT_ENV`] is set, [`Replay::keep`] was called, or the thread is panicking (a
/// failed assertion keeps the EVE it names for inspection).
pub struct Replay {
    pub output: Output,
    pub events: Vec<serde_json::Value>,
    pub summary: serde_json::Value,
    pub dir: PathBuf,
    keep: bool,
}

impl Replay {
    pub fn of_type<'a>(&'a self, t: &'a str) -> impl Iterator<Item = &'a serde_json::Value> + 'a {
        self.events.iter().filter(move |e| e["event_type"] == t)
    }

    /// Keeps `dir` on disk after this `Replay` is dropped; returns it (for messages).
    pub fn keep(&mut self) -> &Path {
        self.keep = true;
        &self.dir
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        if self.keep || std::thread::panicking() || std::env::var_os(KEEP_OUTPUT_ENV).is_some() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `kizuki replay --out DIR --summary-json DIR/summary.json [extra...] PCAP...`; panics with
/// stderr (and keeps DIR) if it fails.
pub fn replay(pcaps: &[&Path], extra: &[&str]) -> Replay {
    let mut r = replay_raw(pcaps, extra);
    if !r.output.status.success() {
        let dir = r.keep().display().to_string();
        panic!(
            "kizuki replay failed (output kept in {dir}): {}",
            String::from_utf8_lossy(&r.output.stderr)
        );
    }
    r
}

/// Like [`replay`] but returns whatever happened (the directory is removed on drop, as for
/// [`replay`]).
pub fn replay_raw(pcaps: &[&Path], extra: &[&str]) -> Replay {
    let dir = tempdir("replay");
    let summary_path = dir.join("summary.json");
    let output = Command::new(kizuki_bin())
        .arg("replay")
        .arg("--out")
        .arg(&dir)
        .arg("--summary-json")
        .arg(&summary_path)
        .args(extra)
        .args(pcaps)
        .output()
        .expect("spawn kizuki");
    let events = read_eve_all(&dir.join("eve.json"));
    let summary = std::fs::read_to_string(&summary_path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    Replay {
        output,
        events,
        summary,
        dir,
        keep: false,
    }
}

/// Parses `eve.json` and every rotated sibling (`eve.json.<stamp>[.gz]`, in rotation order,
/// then the live file): a replay of a long capture rotates by packet time.
pub fn read_eve_all(live: &Path) -> Vec<serde_json::Value> {
    let mut rotated: Vec<PathBuf> = live
        .parent()
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let live_name = live
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("eve.json");
            name.starts_with(&format!("{live_name}.")) && !name.ends_with(".tmp")
        })
        .collect();
    rotated.sort();
    let mut events = Vec::new();
    for p in rotated {
        let Ok(f) = std::fs::File::open(&p) else {
            continue;
        };
        let mut text = String::new();
        let ok = if p.extension().is_some_and(|x| x == "gz") {
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(f), &mut text).is_ok()
        } else {
            std::io::Read::read_to_string(&mut std::io::BufReader::new(f), &mut text).is_ok()
        };
        assert!(ok, "unreadable rotated EVE file {}", p.display());
        events.extend(parse_lines(&text));
    }
    events.extend(read_eve(live));
    events
}

fn parse_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid EVE line {l:?}: {e}")))
        .collect()
}

/// Parses an EVE JSON-lines file; every line must be valid JSON. Missing file: no events.
pub fn read_eve(path: &Path) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("invalid EVE line {l:?}: {e}")))
        .collect()
}

/// A fresh directory under the system temp dir, unique per call.
pub fn tempdir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kizuki-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// `../shared/pcaps` beside the checkout, if present.
pub fn shared_pcaps() -> Option<PathBuf> {
    let p = workspace_root().join("../shared/pcaps");
    p.is_dir().then_some(p)
}
