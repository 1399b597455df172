//! Analyzer state across restarts: `[output] state_file` in the output directory, written
//! atomically (temp file, fsync, rename) at exit and every `state_save_interval_s`, read at
//! start. A missing file is a first start; a corrupt or incompatible one is one warning line
//! and ignored, never a failure.

use analyzers::{Analyzer, TsNanos};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Format version; another value is ignored with a warning.
pub const STATE_VERSION: u64 = 1;
/// A state file larger than this is not read (the analyzers' own caps keep it far smaller).
const MAX_STATE_BYTES: u64 = 512 << 20;

/// The state file for output directory `dir`, if enabled.
pub fn path(file: &str, dir: &Path) -> Option<PathBuf> {
    (!file.is_empty()).then(|| dir.join(file))
}

/// Loads `path` into the analyzers (by name). Returns how many analyzers got a state.
pub fn load(path: &Path, analyzers: &mut [Box<dyn Analyzer>]) -> usize {
    match read(path) {
        Ok(None) => 0,
        Ok(Some(v)) => {
            let mut n = 0;
            for a in analyzers.iter_mut() {
                if let Some(s) = v["analyzers"].get(a.name()) {
                    a.load_state(s);
                    n += 1;
                }
            }
            n
        }
        Err(e) => {
            eprintln!(
                "kizuki: warning: state file {} ignored: {}",
                path.display(),
                e.replace('\n', " ")
            );
            0
        }
    }
}

fn read(path: &Path) -> Result<Option<serde_json::Value>, String> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if f.metadata().map(|m| m.len()).unwrap_or(0) > MAX_STATE_BYTES {
        return Err(format!("larger than {} MiB", MAX_STATE_BYTES >> 20));
    }
    let v: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(f))
        .map_err(|e| format!("not valid JSON ({e})"))?;
    match v["kizuki_state"].as_u64() {
        Some(STATE_VERSION) => {}
        Some(other) => return Err(format!("format version {other}, expected {STATE_VERSION}")),
        None => return Err("not a Kizuki state file".into()),
    }
    if !v["analyzers"].is_object() {
        return Err("no analyzers object".into());
    }
    Ok(Some(v))
}

/// Writes every analyzer's state (atomically). `now`: the last packet time seen.
///
/// Streamed: each analyzer serialises its own tables ([`Analyzer::write_state`]), no JSON
/// `Value` tree of the whole state is built. The text is what serialising the document
/// `{"analyzers": {name: state...}, "kizuki_state", "packet_ts"}` as a `Value` gives: keys
/// sorted, analyzers by name.
pub fn save(path: &Path, analyzers: &[Box<dyn Analyzer>], now: TsNanos) -> Result<(), String> {
    // By name, as a JSON object's keys sort (a later analyzer of the same name wins).
    let mut states: std::collections::BTreeMap<&str, Vec<u8>> = Default::default();
    for a in analyzers {
        let mut s = Vec::new();
        if a.write_state(&mut s) {
            states.insert(a.name(), s);
        }
    }
    let packet_ts = (now > TsNanos::MIN).then_some(now);
    let write_doc = |w: &mut dyn Write| -> std::io::Result<()> {
        w.write_all(b"{\"analyzers\":{")?;
        for (i, (name, s)) in states.iter().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut *w, name)?;
            w.write_all(b":")?;
            w.write_all(s)?;
        }
        write!(w, "}},\"kizuki_state\":{STATE_VERSION},\"packet_ts\":")?;
        serde_json::to_writer(&mut *w, &packet_ts)?;
        w.write_all(b"}")
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let write = || -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".kizuki-state")
            .tempfile_in(dir)?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            write_doc(&mut w)?;
            w.write_all(b"\n")?;
            w.flush()?;
        }
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(serde_json::Value);
    impl Analyzer for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn on_event(&mut self, _: &analyzers::Event, _: &mut Vec<analyzers::Alert>) {}
        fn on_tick(&mut self, _: TsNanos, _: &mut Vec<analyzers::Alert>) {}
        fn save_state(&self) -> serde_json::Value {
            self.0.clone()
        }
        fn load_state(&mut self, s: &serde_json::Value) {
            self.0 = s.clone();
        }
    }

    #[test]
    fn streamed_file_is_the_value_document() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json");
        let a: Vec<Box<dyn Analyzer>> = vec![
            Box::new(Fake(serde_json::json!({"z": [1, "x\""], "a": null}))),
            Box::new(Fake(serde_json::Value::Null)),
        ];
        for now in [TsNanos::MIN, 5] {
            save(&p, &a, now).unwrap();
            let want = serde_json::json!({
                "kizuki_state": STATE_VERSION,
                "packet_ts": (now > TsNanos::MIN).then_some(now),
                "analyzers": {"fake": {"z": [1, "x\""], "a": null}},
            });
            let want = format!("{}\n", serde_json::to_string(&want).unwrap());
            assert_eq!(std::fs::read_to_string(&p).unwrap(), want);
        }
    }

    #[test]
    fn round_trip_and_bad_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.json");
        let mut a: Vec<Box<dyn Analyzer>> = vec![Box::new(Fake(serde_json::json!({"k": 1})))];
        assert_eq!(load(&p, &mut a), 0, "missing file: first start");
        save(&p, &a, 5).unwrap();
        let mut b: Vec<Box<dyn Analyzer>> = vec![Box::new(Fake(serde_json::Value::Null))];
        assert_eq!(load(&p, &mut b), 1);
        assert_eq!(b[0].save_state(), serde_json::json!({"k": 1}));
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        for junk in [
            &b"{\"kizuki_state\": 1, \"analyzers\": {\"fake\": "[..],
            b"\x00\xff garbage",
            b"{\"kizuki_state\": 99, \"analyzers\": {}}",
            b"[1, 2]",
            b"",
        ] {
            std::fs::write(&p, junk).unwrap();
            let mut c: Vec<Box<dyn Analyzer>> = vec![Box::new(Fake(serde_json::json!("kept")))];
            assert_eq!(load(&p, &mut c), 0);
            assert_eq!(c[0].save_state(), serde_json::json!("kept"));
        }
    }
}
