//! `kizuki-gen`: deterministic pcap generator for Kizuki's tests and benchmarks.
//!
//! ```text
//! kizuki-gen scenarios --out DIR [--only NAME[,NAME...]]
//! kizuki-gen jcrat     --out DIR
//! kizuki-gen demo      --out FILE [--seed N]
//! kizuki-gen bench     --out FILE [--packets N] [--seed N]
//! kizuki-gen flows     --out FILE [--flows N] [--seed N]
//! kizuki-gen list
//! kizuki-gen floods --kind syn|water-torture|fragments|mixed --out FILE [--packets N] [--seed N]
//! kizuki-gen floods-check --expected FILE.expected.json --eve-dir DIR [--summary FILE]
//! kizuki-gen beacon-eval --out DIR [--seed N] [--scale small|full]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  kizuki-gen scenarios --out DIR [--only NAME[,NAME...]]
      scenario pcaps + <name>.expected.json (see `kizuki-gen list`)
  kizuki-gen jcrat --out DIR
      J-CRAT detector scenarios: jcrat-<detector>-{pos,neg}.pcap + .alerts.json + jcrat.toml
  kizuki-gen demo --out FILE [--seed N]
      ~1.5 MB small-office capture (DNS, TLS/HTTP, NTP, NXDOMAIN, a periodic callback)
  kizuki-gen bench --out FILE [--packets N] [--seed N]
      throughput capture, N packets (default 2000000), streamed to disk
  kizuki-gen flows --out FILE [--flows N] [--seed N]
      N concurrent long-lived TCP flows (default 100000), all still open at the end
  kizuki-gen list
      scenario names
  kizuki-gen floods --kind syn|water-torture|fragments|mixed --out FILE [--packets N] [--seed N]
      flood capture (default 10000000 packets, streamed) with legitimate flows and DNS mixed
      in; their records are listed in FILE.expected.json
  kizuki-gen floods-check --expected FILE.expected.json --eve-dir DIR [--summary FILE]
      checks a replay of a flood capture: legitimate records in DIR/eve.json*, overflow
      counters in the --summary-json file
  kizuki-gen beacon-eval --out DIR [--seed N] [--scale small|full]
      labeled beaconing corpus: DIR/beacon-*.pcap + DIR/labels.json (default scale full)";

struct Args {
    cmd: String,
    out: Option<PathBuf>,
    only: Option<Vec<String>>,
    packets: u64,
    flows: u64,
    seed: u64,
    scale: String,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().ok_or("missing command")?;
    let mut a = Args {
        cmd,
        out: None,
        only: None,
        packets: 2_000_000,
        flows: 100_000,
        seed: kizuki_tests::generate::DEFAULT_SEED,
        scale: "full".to_string(),
    };
    while let Some(flag) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let num = |s: String, name: &str| {
            s.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match flag.as_str() {
            "--out" | "-o" => a.out = Some(PathBuf::from(val("--out")?)),
            "--only" => a.only = Some(val("--only")?.split(',').map(str::to_string).collect()),
            "--packets" => a.packets = num(val("--packets")?, "--packets")?,
            "--flows" => a.flows = num(val("--flows")?, "--flows")?,
            "--seed" => a.seed = num(val("--seed")?, "--seed")?,
            "--scale" => a.scale = val("--scale")?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn run(a: Args) -> Result<(), String> {
    let out = || a.out.clone().ok_or_else(|| "--out is required".to_string());
    match a.cmd.as_str() {
        "list" => {
            for n in kizuki_tests::scenarios::NAMES {
                println!("{n}");
            }
        }
        "scenarios" => {
            let dir = out()?;
            let names: Vec<String> = match &a.only {
                Some(v) => v.clone(),
                None => kizuki_tests::scenarios::NAMES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            };
            for n in names {
                let sc =
                    kizuki_tests::scenarios::build(&n).ok_or(format!("unknown scenario {n:?}"))?;
                sc.write_to(&dir)
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                let e = sc.expected();
                println!(
                    "{:<14} {:>5} frames  {:>3} flows  {:>3} dns",
                    n,
                    sc.frame_count(),
                    e.flows.len(),
                    e.dns.len()
                );
            }
        }
        "jcrat" => {
            let dir = out()?;
            let list = kizuki_tests::jcrat_scenarios::write_all(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            for (n, frames) in list {
                println!("{n:<28} {frames:>5} frames");
            }
        }
        "demo" => {
            let path = out()?;
            let st = kizuki_tests::generate::write_demo(&path, a.seed)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            println!("{}: {st}", path.display());
        }
        "bench" => {
            let path = out()?;
            let st = kizuki_tests::generate::write_bench(&path, a.packets, a.seed)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            println!("{}: {st}", path.display());
        }
        "flows" => {
            let path = out()?;
            let st = kizuki_tests::generate::write_flows(&path, a.flows, a.seed)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            println!("{}: {st}", path.display());
        }
        "beacon-eval" => {
            let dir = out()?;
            let scale: kizuki_tests::beacon_corpus::Scale = a.scale.parse()?;
            let t0 = std::time::Instant::now();
            let st = kizuki_tests::beacon_corpus::write_corpus(&dir, a.seed, scale)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            for s in &st {
                println!(
                    "{:<18} {:>8} packets {:>7.2} MB {:>6.1} h  {:>3} beacons  {:>4} benign pairs",
                    s.file,
                    s.packets,
                    s.bytes as f64 / 1e6,
                    s.duration_s as f64 / 3600.0,
                    s.beacons,
                    s.benign_pairs
                );
            }
            println!(
                "{}/labels.json written in {:.1} s",
                dir.display(),
                t0.elapsed().as_secs_f64()
            );
        }
        other => return Err(format!("unknown command {other:?}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    // Flood commands parse their own flags (tests/src/floods.rs).
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(cmd @ ("floods" | "floods-check")) = argv.first().map(String::as_str) {
        return match kizuki_tests::floods::cli(cmd, &argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kizuki-gen {cmd}: error: {e}");
                ExitCode::from(if cmd == "floods-check" { 1 } else { 2 })
            }
        };
    }
    match parse().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("kizuki-gen: error: {e}");
            }
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
