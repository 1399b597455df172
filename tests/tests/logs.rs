//! Logs that last: EVE rotation by size, gzip of rotated files, nothing lost.

use kizuki_tests::harness;
use std::io::{BufRead, Read};

#[test]
fn rotated_and_compressed_files_hold_every_event() {
    let root = harness::workspace_root();
    let cfg_dir = harness::tempdir("rotate-cfg");
    let cfg = cfg_dir.join("rotate.toml");
    // 1 MiB files: the demo capture's EVE output spans several.
    std::fs::write(
        &cfg,
        "[output]\nrotate_size_mb = 1\nrotate_interval_s = 600.0\ncompress = \"gzip\"\n",
    )
    .unwrap();
    let r = harness::replay(
        &[&root.join("pcaps/demo.pcap")],
        &["-c", cfg.to_str().unwrap()],
    );
    let written = r.summary["eve_events"]
        .as_u64()
        .expect("eve_events in summary");
    let mut files = 0;
    let mut lines = 0u64;
    for e in std::fs::read_dir(&r.dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("eve.json") {
            continue;
        }
        files += 1;
        let f = std::fs::File::open(&p).unwrap();
        let rd: Box<dyn Read> = if name.ends_with(".gz") {
            Box::new(flate2::read::GzDecoder::new(f))
        } else {
            assert!(name == "eve.json", "uncompressed rotated file left: {name}");
            Box::new(f)
        };
        for l in std::io::BufReader::new(rd).lines() {
            let l = l.unwrap();
            serde_json::from_str::<serde_json::Value>(&l)
                .unwrap_or_else(|e| panic!("{name}: invalid line {l:?}: {e}"));
            lines += 1;
        }
    }
    assert!(
        files >= 3,
        "expected several files by size and time, got {files}"
    );
    assert_eq!(lines, written, "events across all files vs events written");
    let _ = std::fs::remove_dir_all(&cfg_dir);
}
