//! Replays every crash input in `fuzz/regressions/<target>/` (and, as a smoke test, every seed
//! in `fuzz/corpus/<target>/`) through the same entry points the fuzz targets use
//! (`fuzz/src/entry.rs`, compiled in here), asserting that none panics.

#[path = "../../fuzz/src/entry.rs"]
#[allow(dead_code)]
mod entry;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Runs every file of `dir/<target>/` through its target; returns (files run, failures).
fn replay_dir(dir: &Path) -> (usize, Vec<String>) {
    let mut n = 0;
    let mut failures = Vec::new();
    for (target, run) in entry::TARGETS {
        let d = dir.join(target);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut files: Vec<_> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|f| f.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        for p in files {
            let data = std::fs::read(&p).expect("read input");
            n += 1;
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{target}: {}: {msg}", p.display()));
            }
        }
    }
    (n, failures)
}

#[test]
fn fuzz_regressions_do_not_panic() {
    let root = kizuki_tests::harness::workspace_root();
    let (n, failures) = replay_dir(&root.join("fuzz/regressions"));
    eprintln!("replayed {n} regression inputs");
    assert!(
        failures.is_empty(),
        "{} input(s) panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn fuzz_seed_corpus_does_not_panic() {
    let root = kizuki_tests::harness::workspace_root();
    let (n, failures) = replay_dir(&root.join("fuzz/corpus"));
    eprintln!("replayed {n} seeds");
    assert!(
        failures.is_empty(),
        "{} seed(s) panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
