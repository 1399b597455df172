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

/// What one `kizuki replay` wrote.
pub struct Replay {
    pub output: Output,
    pub events: Vec<serde_json::Value>,
    pub summary: serde_json::Value,
    pub dir: PathBuf,
}

impl Replay {
    pub fn of_type<'a>(&'a self, t: &'a str) -> impl Iterator<Item = &'a serde_json::Value> + 'a {
        self.events.iter().filter(move |e| e["event_type"] == t)
    }
}

/// `kizuki replay --out DIR --summary-json DIR/summary.json [extra...] PCAP...`; panics with
/// stderr if it fails.
pub fn replay(pcaps: &[&Path], extra: &[&str]) -> Replay {
    let r = replay_raw(pcaps, extra);
    assert!(
        r.output.status.success(),
        "kizuki replay failed: {}",
        String::from_utf8_lossy(&r.output.stderr)
    );
    r
}

/// Like [`replay`] but returns whatever happened.
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
    let events = read_eve(&dir.join("eve.json"));
    let summary = std::fs::read_to_string(&summary_path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    Replay {
        output,
        events,
        summary,
        dir,
    }
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
