//! `kizuki`: the sensor's command line.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use sensor::capture::live::{LiveOptions, LiveSource};
use sensor::capture::offline::OfflineSource;
use sensor::capture::PacketSource;
use sensor::config::Config;
use sensor::output::alertmanager::AlertmanagerClient;
use sensor::output::eve::EveWriter;
use sensor::output::http::{HttpSecurity, MetricsServer};
use sensor::output::metrics::Metrics;
use sensor::output::summary::{print_human, summary_json};
use sensor::pipeline::{self, Mode};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

// The pipeline allocates and frees many small event records across threads; glibc malloc
// spent ~10 % of the sink thread in free/consolidate on the bench capture.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kizuki",
    version,
    about = "Streaming DNS/flow monitoring sensor"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Configuration file (TOML).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Directory for eve.json (default: output.dir of the config).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker shards (default: pipeline.workers, 0 = number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Serve Prometheus metrics at ADDR (/metrics, /healthz).
    #[arg(long = "metrics-listen", value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Write the final counters as JSON to FILE.
    #[arg(long = "summary-json", value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// BPF filter expression.
    #[arg(long)]
    bpf: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Capture live from an interface until SIGINT/SIGTERM.
    Run {
        #[arg(short = 'i', long = "interface")]
        interface: Option<String>,
        #[arg(long)]
        snaplen: Option<i32>,
        /// Kernel capture buffer in MiB.
        #[arg(long = "buffer-mb")]
        buffer_mb: Option<i32>,
        /// Do not put the interface in promiscuous mode.
        #[arg(long = "no-promisc")]
        no_promisc: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Replay capture files (pcap, pcapng, gzip), merged in timestamp order.
    Replay {
        /// `max` (as fast as possible) or `1x` (the capture's own pace).
        #[arg(long, default_value = "max")]
        speed: String,
        /// After the replay, keep serving /metrics (and pushing/resolving alerts) for SECONDS
        /// or until SIGINT/SIGTERM: lets Prometheus scrape the final counters.
        #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
        linger: f64,
        #[command(flatten)]
        common: Common,
        #[arg(required = true, value_name = "PCAP")]
        files: Vec<PathBuf>,
    },
    /// An analyst's view of capture files: alerts and top beacon candidates.
    Report {
        /// Print JSON instead of the terminal view.
        #[arg(long)]
        json: bool,
        /// Candidates shown per analyzer.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Print the passive inventory snapshot (JSON) instead.
        #[arg(long)]
        inventory: bool,
        #[command(flatten)]
        common: Common,
        #[arg(required = true, value_name = "PCAP")]
        files: Vec<PathBuf>,
    },
    /// Validate a configuration file.
    CheckConfig { file: PathBuf },
}

/// A failure: message (one line) and exit code.
struct Fail(String, u8);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::CheckConfig { file } => Config::load(&file)
            .map(|_| println!("{}: ok", file.display()))
            .map_err(|e| Fail(e.to_string(), 2)),
        Cmd::Replay {
            speed,
            linger,
            common,
            files,
        } => replay(&speed, linger, &common, &files),
        Cmd::Report {
            json,
            top,
            inventory,
            common,
            files,
        } => report(json, top, inventory, common, &files),
        Cmd::Run {
            interface,
            snaplen,
            buffer_mb,
            no_promisc,
            common,
        } => run_live(interface, snaplen, buffer_mb, no_promisc, &common),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(msg, code)) => {
            eprintln!("kizuki: error: {}", msg.replace('\n', " "));
            ExitCode::from(code)
        }
    }
}

fn load_config(path: &Option<PathBuf>) -> Result<Config, Fail> {
    match path {
        Some(p) => Config::load(p).map_err(|e| Fail(e.to_string(), 2)),
        None => Ok(Config::default()),
    }
}

fn worker_count(common: &Common, cfg: &Config) -> usize {
    let w = common.workers.unwrap_or(cfg.pipeline.workers);
    if w == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        w.min(256)
    }
}

fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    stop
}

struct Prepared {
    cfg: Config,
    eve: Option<EveWriter>,
    metrics: Metrics,
    server: Option<MetricsServer>,
    /// Alertmanager push (`[alertmanager] url`); dropped last so queued alerts get sent.
    am: Option<AlertmanagerClient>,
}

fn prepare(common: &Common, default_metrics: bool) -> Result<Prepared, Fail> {
    let cfg = load_config(&common.config)?;
    let dir = common
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(&cfg.output.dir));
    let eve = EveWriter::create(&dir, &cfg.output.eve_file, cfg.output.rotate_policy())
        .map_err(|e| Fail(e, 1))?;
    let metrics = Metrics::new();
    let listen = match &common.metrics_listen {
        Some(a) => Some(a.clone()),
        None if default_metrics && !cfg.metrics.listen.is_empty() => {
            Some(cfg.metrics.listen.clone())
        }
        None => None,
    };
    let server = match listen {
        Some(addr) => {
            // Certificate, key and password are read now, while still root.
            let sec = HttpSecurity::from_config(&cfg.metrics).map_err(|e| Fail(e, 2))?;
            Some(MetricsServer::start_with(&addr, metrics.clone(), sec).map_err(|e| Fail(e, 1))?)
        }
        None => None,
    };
    let am = AlertmanagerClient::start(&cfg.alertmanager, &metrics).map_err(|e| Fail(e, 2))?;
    Ok(Prepared {
        cfg,
        eve: Some(eve),
        metrics,
        server,
        am,
    })
}

fn finish(
    report: pipeline::RunReport,
    p: &Prepared,
    common: &Common,
    inputs: Vec<String>,
    quiet: bool,
) -> Result<(serde_json::Value, pipeline::RunReport), Fail> {
    let s = summary_json(&report, &p.metrics, &inputs);
    if let Some(path) = &common.summary_json {
        let text = serde_json::to_string_pretty(&s).unwrap_or_default();
        std::fs::write(path, text + "\n")
            .map_err(|e| Fail(format!("{}: {e}", path.display()), 1))?;
    }
    if !quiet {
        print_human(&s);
    }
    if let Some(first) = report.source_errors.first() {
        // Everything before the problem was processed and reported above.
        return Err(Fail(first.clone(), 1));
    }
    Ok((s, report))
}

type Replayed = (serde_json::Value, pipeline::RunReport);

fn replay(speed: &str, linger: f64, common: &Common, files: &[PathBuf]) -> Result<(), Fail> {
    if !(linger.is_finite() && linger >= 0.0) {
        return Err(Fail(
            format!("--linger {linger}: use a number of seconds >= 0"),
            2,
        ));
    }
    replay_inner(speed, common, files, false, linger).map(|_| ())
}

fn replay_inner(
    speed: &str,
    common: &Common,
    files: &[PathBuf],
    quiet: bool,
    linger: f64,
) -> Result<Replayed, Fail> {
    let mode = match speed {
        "max" => Mode::ReplayMax,
        "1x" => Mode::ReplayRealtime,
        other => return Err(Fail(format!("--speed {other:?}: use max or 1x"), 2)),
    };
    for f in files {
        if !f.exists() {
            return Err(Fail(format!("{}: no such file", f.display()), 1));
        }
    }
    let mut p = prepare(common, false)?;
    let bpf = common
        .bpf
        .clone()
        .unwrap_or_else(|| p.cfg.capture.bpf.clone());
    let mut src = OfflineSource::open(files, &bpf).map_err(|e| Fail(e.to_string(), 1))?;
    let workers = worker_count(common, &p.cfg);
    let eve = p
        .eve
        .take()
        .ok_or_else(|| Fail("internal: no EVE writer".into(), 1))?;
    let out = pipeline::Outputs {
        metrics: p.metrics.clone(),
        eve,
        alerts: p.am.as_ref().map(|c| c.sender()),
        stop: stop_flag(),
        keep_alert_log: quiet,
    };
    let report = pipeline::run(&mut src, &p.cfg, mode, workers, out);
    let inputs = files.iter().map(|f| f.display().to_string()).collect();
    let done = finish(report, &p, common, inputs, quiet);
    if linger > 0.0 {
        // The metrics server and the Alertmanager client keep running meanwhile.
        let stop = stop_flag();
        let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(linger);
        while std::time::Instant::now() < end && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    done
}

fn report(
    json: bool,
    top: usize,
    inventory: bool,
    mut common: Common,
    files: &[PathBuf],
) -> Result<(), Fail> {
    use sensor::output::report::{render, report_json};
    // Without --out the EVE lines go to a temporary directory removed afterwards.
    let tmp = match common.out {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| Fail(format!("temp dir: {e}"), 1))?),
    };
    if let Some(t) = &tmp {
        common.out = Some(t.path().to_path_buf());
    }
    let (summary, run) = replay_inner("max", &common, files, true, 0.0)?;
    let analyzers = serde_json::to_value(&run.sink.analyzers).unwrap_or_default();
    if inventory {
        let inv = analyzers.get("inventory").cloned().unwrap_or_default();
        println!("{}", serde_json::to_string_pretty(&inv).unwrap_or_default());
        return Ok(());
    }
    if json {
        let v = report_json(&summary, &run.sink.alert_log, &analyzers);
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print!("{}", render(&summary, &run.sink.alert_log, &analyzers, top));
    }
    Ok(())
}

fn run_live(
    interface: Option<String>,
    snaplen: Option<i32>,
    buffer_mb: Option<i32>,
    no_promisc: bool,
    common: &Common,
) -> Result<(), Fail> {
    let mut p = prepare(common, true)?;
    let iface = interface
        .or_else(|| p.cfg.capture.interface.clone())
        .ok_or_else(|| Fail("no interface: use -i IFACE or capture.interface".into(), 2))?;
    let opts = LiveOptions {
        interface: iface.clone(),
        snaplen: snaplen.unwrap_or(p.cfg.capture.snaplen),
        promisc: !no_promisc && p.cfg.capture.promisc,
        buffer_mb: buffer_mb.unwrap_or(p.cfg.capture.buffer_mb),
        bpf: common
            .bpf
            .clone()
            .unwrap_or_else(|| p.cfg.capture.bpf.clone()),
    };
    let mut src = LiveSource::open(&opts).map_err(|e| Fail(e.to_string(), 1))?;
    // Capture and metrics socket are open: give up root before reading any packet.
    let eve_path = p.eve.as_ref().map(|e| e.path().to_path_buf());
    // The analyzer state file of an earlier run (rewritten by the user after the switch).
    let state_path = eve_path
        .as_ref()
        .and_then(|e| e.parent())
        .and_then(|d| pipeline::state::path(&p.cfg.output.state_file, d));
    let mut own: Vec<&std::path::Path> = Vec::new();
    if let Some(s) = &state_path {
        own.push(s.as_path());
    }
    if let Some(e) = &eve_path {
        own.push(e.as_path());
        // Rotation creates files in the directory; a shared sticky directory (/tmp) already
        // allows that and is never handed over.
        if let Some(dir) = e.parent().filter(|d| !sensor::privdrop::is_sticky(d)) {
            own.push(dir);
        }
    }
    // The summary is written at exit: create it now and hand over the file itself.
    if let Some(s) = &common.summary_json {
        std::fs::write(s, b"").map_err(|e| Fail(format!("{}: {e}", s.display()), 1))?;
        own.push(s.as_path());
    }
    if let Some(who) =
        sensor::privdrop::drop_to(&p.cfg.capture.user, &own).map_err(|e| Fail(e, 1))?
    {
        eprintln!("kizuki: running as {who}");
    }
    if let Some(s) = &p.server {
        let scheme = if p.cfg.metrics.tls_cert.is_empty() {
            "http"
        } else {
            "https"
        };
        eprintln!("kizuki: metrics on {scheme}://{}/metrics", s.local_addr());
    }
    eprintln!("kizuki: capturing on {iface}");
    let workers = worker_count(common, &p.cfg);
    let eve = p
        .eve
        .take()
        .ok_or_else(|| Fail("internal: no EVE writer".into(), 1))?;
    let stop = stop_flag();
    let src: &mut dyn PacketSource = &mut src;
    let alerts = p.am.as_ref().map(|c| c.sender());
    let out = pipeline::Outputs {
        metrics: p.metrics.clone(),
        eve,
        alerts,
        stop,
        keep_alert_log: false,
    };
    let report = pipeline::run(src, &p.cfg, Mode::Live, workers, out);
    finish(report, &p, common, vec![iface], false).map(|_| ())
}
