//! `kizuki-gen`: deterministic pcap generator for Kizuki's tests and benchmarks.
//!
//! ```text
//! kizuki-gen scenarios --out DIR [--only NAME[,NAME...]]
//! kizuki-gen demo      --out FILE [--seed N]
//! kizuki-gen bench     --out FILE [--packets N] [--seed N]
//! kizuki-gen flows     --out FILE [--flows N] [--seed N]
//! kizuki-gen list
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  kizuki-gen scenarios --out DIR [--only NAME[,NAME...]]
      scenario pcaps + <name>.expected.json (see `kizuki-gen list`)
  kizuki-gen demo --out FILE [--seed N]
      ~1.5 MB small-office capture (DNS, TLS/HTTP, NTP, NXDOMAIN, a periodic callback)
  kizuki-gen bench --out FILE [--packets N] [--seed N]
      throughput capture, N packets (default 2000000), streamed to disk
  kizuki-gen flows --out FILE [--flows N] [--seed N]
      N concurrent long-lived TCP flows (default 100000), all still open at the end
  kizuki-gen list
      scenario names";

struct Args {
    cmd: String,
    out: Option<PathBuf>,
    only: Option<Vec<String>>,
    packets: u64,
    flows: u64,
    seed: u64,
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
        other => return Err(format!("unknown command {other:?}")),
    }
    Ok(())
}

fn main() -> ExitCode {
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
