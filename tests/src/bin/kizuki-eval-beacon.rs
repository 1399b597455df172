//! `kizuki-eval-beacon`: replays the labeled beacon corpus through `kizuki` and reports recall
//! per condition and precision (matching rules in `kizuki_tests::beacon_eval`).
//!
//! ```text
//! kizuki-eval-beacon DIR [--kizuki PATH] [-c CONFIG] [--work DIR] [--json]
//!                        [--min-recall X] [--min-precision Y]
//! ```
//! Exit 0 whatever the score (it is reported, not asserted) unless `--min-recall` /
//! `--min-precision` are given and not met (exit 1). Harness failures exit 2.

use kizuki_tests::beacon_eval::{self, Labels};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str =
    "usage: kizuki-eval-beacon DIR [--kizuki PATH] [-c CONFIG] [--work DIR] [--json]
                          [--min-recall X] [--min-precision Y]
  DIR        output of `kizuki-gen beacon-eval` (pcaps + labels.json)
  --kizuki   kizuki binary (default: $KIZUKI_BIN, else next to this binary, else
             target/release/kizuki)
  -c         config file passed to `kizuki replay`
  --work     keep each replay's output in WORK/<pcap>/ (default: a temp dir, removed)
  --json     print the full report as JSON instead of the table
  --min-recall / --min-precision   exit 1 when overall recall / precision is below";

struct Args {
    dir: PathBuf,
    kizuki: Option<PathBuf>,
    config: Option<PathBuf>,
    work: Option<PathBuf>,
    json: bool,
    min_recall: Option<f64>,
    min_precision: Option<f64>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut dir = None;
    let mut a = Args {
        dir: PathBuf::new(),
        kizuki: None,
        config: None,
        work: None,
        json: false,
        min_recall: None,
        min_precision: None,
    };
    while let Some(arg) = it.next() {
        let mut val = |n: &str| it.next().ok_or(format!("{n} needs a value"));
        let frac = |s: String, n: &str| -> Result<f64, String> {
            let x: f64 = s.parse().map_err(|e| format!("{n}: {e}"))?;
            if !(0.0..=1.0).contains(&x) {
                return Err(format!("{n}: {x} not in [0, 1]"));
            }
            Ok(x)
        };
        match arg.as_str() {
            "--kizuki" => a.kizuki = Some(val("--kizuki")?.into()),
            "-c" | "--config" => a.config = Some(val("--config")?.into()),
            "--work" => a.work = Some(val("--work")?.into()),
            "--json" => a.json = true,
            "--min-recall" => a.min_recall = Some(frac(val("--min-recall")?, "--min-recall")?),
            "--min-precision" => {
                a.min_precision = Some(frac(val("--min-precision")?, "--min-precision")?)
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown argument {s:?}")),
            s => {
                if dir.replace(PathBuf::from(s)).is_some() {
                    return Err("only one DIR".into());
                }
            }
        }
    }
    a.dir = dir.ok_or("missing DIR")?;
    Ok(a)
}

fn kizuki_path(a: &Args) -> PathBuf {
    if let Some(p) = &a.kizuki {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("KIZUKI_BIN") {
        return p.into();
    }
    if let Some(sib) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("kizuki")))
        .filter(|p| p.is_file())
    {
        return sib;
    }
    PathBuf::from("target/release/kizuki")
}

struct Run {
    file: String,
    eve: String,
    secs: f64,
}

fn replay(kizuki: &Path, config: Option<&Path>, pcap: &Path, out: &Path) -> Result<Run, String> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let t0 = Instant::now();
    let mut cmd = Command::new(kizuki);
    cmd.arg("replay");
    if let Some(c) = config {
        cmd.arg("-c").arg(c);
    }
    cmd.arg("--out").arg(out).arg(pcap);
    let o = cmd
        .output()
        .map_err(|e| format!("{}: {e}", kizuki.display()))?;
    if !o.status.success() {
        return Err(format!(
            "kizuki replay {} failed ({}): {}",
            pcap.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    let eve = read_eve(out)?;
    Ok(Run {
        file: pcap
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        eve,
        secs: t0.elapsed().as_secs_f64(),
    })
}

/// All EVE lines of a replay: rotated files (`eve.json.<stamp>[.gz]`, oldest first — a
/// capture longer than `rotate_interval_s` of packet time rotates), then `eve.json`.
fn read_eve(out: &Path) -> Result<String, String> {
    use std::io::Read;
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let mut rotated: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| err(out, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("eve.json."))
        .collect();
    rotated.sort();
    let mut text = String::new();
    for n in &rotated {
        let p = out.join(n);
        if let Some(plain) = n.strip_suffix(".gz") {
            if rotated.iter().any(|x| x == plain) {
                continue; // compression was not finished: the plain file is whole
            }
            let f = std::fs::File::open(&p).map_err(|e| err(&p, e))?;
            flate2::read::MultiGzDecoder::new(f)
                .read_to_string(&mut text)
                .map_err(|e| err(&p, e))?;
        } else {
            text.push_str(&std::fs::read_to_string(&p).map_err(|e| err(&p, e))?);
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    let p = out.join("eve.json");
    text.push_str(&std::fs::read_to_string(&p).map_err(|e| err(&p, e))?);
    Ok(text)
}

fn run(a: &Args) -> Result<bool, String> {
    let lp = a.dir.join("labels.json");
    let text = std::fs::read_to_string(&lp).map_err(|e| format!("{}: {e}", lp.display()))?;
    let labels: Labels =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", lp.display()))?;
    let kizuki = kizuki_path(a);
    if !kizuki.is_file() {
        return Err(format!(
            "{}: kizuki binary not found (build it, or pass --kizuki / KIZUKI_BIN)",
            kizuki.display()
        ));
    }
    let tmp;
    let work = match &a.work {
        Some(w) => w.clone(),
        None => {
            tmp = std::env::temp_dir().join(format!("kizuki-eval-beacon-{}", std::process::id()));
            tmp.clone()
        }
    };
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let files: Vec<String> = labels.pcaps.iter().map(|p| p.file.clone()).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Run, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..jobs.min(files.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        let out = work.join(f.trim_end_matches(".pcap"));
                        mine.push((
                            i,
                            replay(&kizuki, a.config.as_deref(), &a.dir.join(f), &out),
                        ));
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<(usize, Result<Run, String>)> = hs
            .into_iter()
            .flat_map(|h| h.join().expect("replay thread"))
            .collect();
        all.sort_by_key(|x| x.0);
        all.into_iter().map(|x| x.1).collect()
    });
    if a.work.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    let mut alerts = Vec::new();
    let mut others = 0;
    let mut per_pcap = Vec::new();
    for r in results {
        let r = r?;
        let (al, ot) = beacon_eval::parse_alerts(&r.file, &r.eve)?;
        per_pcap.push(serde_json::json!({
            "file": r.file,
            "alert_lines": al.len(),
            "distinct_alerts": beacon_eval::distinct(&al).len(),
            "replay_s": (r.secs * 1000.0).round() / 1000.0,
        }));
        alerts.extend(al);
        others += ot;
    }
    let rep = beacon_eval::evaluate(&labels, &alerts, others);
    let classes = beacon_eval::benign_classes(&labels);
    if a.json {
        let v = serde_json::json!({
            "corpus": {"dir": a.dir.display().to_string(), "seed": labels.seed,
                       "scale": labels.scale},
            "kizuki": kizuki.display().to_string(),
            "pcaps": per_pcap,
            "benign_classes": classes,
            "report": rep,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "Beacon evaluation: {} ({} scale, seed {}), kizuki = {}",
            a.dir.display(),
            labels.scale,
            labels.seed,
            kizuki.display()
        );
        for p in &per_pcap {
            println!(
                "  {:<18} {:>4} alert lines {:>4} distinct   replay {:>6.2} s",
                p["file"].as_str().unwrap_or(""),
                p["alert_lines"],
                p["distinct_alerts"],
                p["replay_s"].as_f64().unwrap_or(0.0)
            );
        }
        println!();
        print!("{}", beacon_eval::render(&rep, &classes));
    }
    let mut ok = true;
    if let Some(m) = a.min_recall {
        let r = rep.overall.recall.unwrap_or(0.0);
        if r < m {
            eprintln!("kizuki-eval-beacon: recall {r:.3} < --min-recall {m}");
            ok = false;
        }
    }
    if let Some(m) = a.min_precision {
        // No alerts at all: precision is vacuous (recall catches that case).
        let p = rep.precision.unwrap_or(1.0);
        if p < m {
            eprintln!("kizuki-eval-beacon: precision {p:.3} < --min-precision {m}");
            ok = false;
        }
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("kizuki-eval-beacon: error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&a) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("kizuki-eval-beacon: error: {e}");
            ExitCode::from(2)
        }
    }
}
