//! Running the analyzers over an epoch, on more than one thread when configured.
//!
//! The analyzers are independent of each other: each sees every event. So they are split
//! into groups of about equal cost and each group runs over the epoch on its own scoped
//! thread. Their alerts are then put in the order one thread would have raised them (event
//! by event and analyzer by analyzer, then the tick's alerts analyzer by analyzer), so the
//! output does not depend on the thread count. The analyzers stay owned by the analyze
//! thread; state saving, views and reports see them as before.

use super::merge::Epoch;
use analyzers::{Alert, Analyzer, TsNanos};

/// Epochs smaller than this run on one thread: a thread start is not worth a few events
/// (a quiet live link ticks every second with a handful).
const PARALLEL_MIN_EVENTS: usize = 512;

/// Relative cost of each analyzer per event (instructions on the bench capture, in M per
/// 300 k packets, rounded), for splitting them into groups. Unknown names count as 5.
fn weight(name: &str) -> u32 {
    match name {
        "direct_ip" => 85,
        "dns_tunnel" => 76,
        "beacon" => 69,
        "inventory" => 62,
        "ddns" | "paas" => 25,
        "volume" => 21,
        _ => 5,
    }
}

/// Work the analyze thread does besides its group: writing the EVE file and the analyzers'
/// records and alerts (same units as [`weight`]).
const WRITER_WEIGHT: u32 = 100;

/// The group (0 = the analyze thread itself) of each analyzer: greedily, heaviest first, to
/// the least loaded group. Deterministic for a given list.
pub(super) fn groups(analyzers: &[Box<dyn Analyzer>], threads: usize) -> Vec<usize> {
    let threads = threads.max(1);
    let mut load = vec![0u32; threads];
    load[0] = WRITER_WEIGHT;
    let mut order: Vec<usize> = (0..analyzers.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weight(analyzers[i].name())));
    let mut group = vec![0; analyzers.len()];
    for i in order {
        let g = (0..threads).min_by_key(|&g| (load[g], g)).unwrap_or(0);
        load[g] += weight(analyzers[i].name());
        group[i] = g;
    }
    group
}

/// Threads for the epochs left once the sink is done: every core (at most 4), and never
/// fewer than configured.
pub(super) fn tail_threads(cfg: &crate::config::PipelineConfig) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(4).max(cfg.analyze_threads)
}

/// An alert with where it was raised: (phase: 0 events, 1 tick; event index; analyzer index).
type Tagged = ((u8, u32, u32), Alert);

/// Runs every analyzer over the epoch's events, then ticks them to `tick`; appends the
/// alerts to `alerts` in the order of a single thread.
pub(super) fn run_epoch(
    analyzers: &mut [Box<dyn Analyzer>],
    group_of: &[usize],
    epoch: &Epoch,
    tick: Option<TsNanos>,
    alerts: &mut Vec<Alert>,
) {
    let threads = group_of.iter().max().map_or(1, |g| g + 1);
    if threads <= 1 || epoch.len() < PARALLEL_MIN_EVENTS || group_of.len() != analyzers.len() {
        run_chunked(analyzers, epoch, alerts);
        if let Some(t) = tick {
            for a in analyzers.iter_mut() {
                a.on_tick(t, alerts);
            }
        }
        return;
    }
    run_split(analyzers, group_of, threads, epoch, tick, alerts);
}

/// Events per chunk of [`run_events`].
const CHUNK_EVENTS: usize = 128;

/// Runs the analyzers of `part` (each with its index in the full list) over the epoch a
/// chunk of events at a time: each analyzer over the whole chunk, then the next. Event by
/// event, every event ran through all the analyzers' code and hot state (more than the core's
/// first-level caches hold) before the next; this way one analyzer's stay in cache across the
/// chunk, and the chunk's events (a few tens of KB) stay in cache for all of them. Each alert
/// goes to `raised` with its event's index and its analyzer's index: sorted by the two
/// (stably), they are in the order one event at a time raised them.
fn run_events(
    part: &mut [(u32, &mut Box<dyn Analyzer>)],
    epoch: &Epoch,
    mut raised: impl FnMut(u32, u32, Alert),
) {
    let mut events = epoch.iter();
    let mut chunk: Vec<&analyzers::Event> = Vec::with_capacity(CHUNK_EVENTS);
    let mut out = Vec::new();
    let mut base = 0u32;
    loop {
        chunk.clear();
        chunk.extend(events.by_ref().take(CHUNK_EVENTS));
        if chunk.is_empty() {
            return;
        }
        for (i, a) in part.iter_mut() {
            for (e, ev) in (base..).zip(chunk.iter()) {
                a.on_event(ev, &mut out);
                for al in out.drain(..) {
                    raised(e, *i, al);
                }
            }
        }
        base += chunk.len() as u32;
    }
}

/// [`run_events`] on this thread for all the analyzers, the alerts appended in order.
fn run_chunked(analyzers: &mut [Box<dyn Analyzer>], epoch: &Epoch, alerts: &mut Vec<Alert>) {
    let mut all: Vec<(u32, &mut Box<dyn Analyzer>)> = (0u32..).zip(analyzers.iter_mut()).collect();
    let mut tagged: Vec<((u32, u32), Alert)> = Vec::new();
    run_events(&mut all, epoch, |e, i, al| tagged.push(((e, i), al)));
    // Stable: alerts of one analyzer at one event keep their order.
    tagged.sort_by_key(|t| t.0);
    alerts.extend(tagged.into_iter().map(|t| t.1));
}

/// The last tick of a replay (or of a shutdown), split over the groups like an epoch: it
/// judges everything still waiting (all the flows of the final flush), with every core
/// free by then.
pub(super) fn run_final_tick(
    analyzers: &mut [Box<dyn Analyzer>],
    group_of: &[usize],
    now: TsNanos,
    alerts: &mut Vec<Alert>,
) {
    let threads = group_of.iter().max().map_or(1, |g| g + 1);
    if threads <= 1 || group_of.len() != analyzers.len() {
        for a in analyzers.iter_mut() {
            a.on_tick(now, alerts);
        }
        return;
    }
    run_split(
        analyzers,
        group_of,
        threads,
        &Epoch::default(),
        Some(now),
        alerts,
    );
}

/// [`run_epoch`] on one scoped thread per group (the analyze thread runs the first).
fn run_split(
    analyzers: &mut [Box<dyn Analyzer>],
    group_of: &[usize],
    threads: usize,
    epoch: &Epoch,
    tick: Option<TsNanos>,
    alerts: &mut Vec<Alert>,
) {
    let mut parts: Vec<Vec<(u32, &mut Box<dyn Analyzer>)>> =
        (0..threads).map(|_| Vec::new()).collect();
    for (i, a) in analyzers.iter_mut().enumerate() {
        if let Some(p) = parts.get_mut(group_of[i]) {
            p.push((i as u32, a));
        }
    }
    let run = |part: &mut Vec<(u32, &mut Box<dyn Analyzer>)>| -> Vec<Tagged> {
        let mut out = Vec::new();
        run_events(part, epoch, |e, i, al| out.push(((0, e, i), al)));
        let mut raised = Vec::new();
        if let Some(t) = tick {
            for (i, a) in part.iter_mut() {
                a.on_tick(t, &mut raised);
                out.extend(raised.drain(..).map(|al| ((1, 0, *i), al)));
            }
        }
        out
    };
    let run = &run;
    let mut tagged = std::thread::scope(|s| {
        let mut rest = parts.iter_mut().filter(|p| !p.is_empty());
        let mine = rest.next();
        let others: Vec<_> = rest.map(|p| s.spawn(move || run(p))).collect();
        let mut all = mine.map(run).unwrap_or_default();
        for h in others {
            match h.join() {
                Ok(v) => all.extend(v),
                // An analyzer's panic is the analyze thread's, as on one thread.
                Err(e) => std::panic::resume_unwind(e),
            }
        }
        all
    });
    // Stable: alerts of one analyzer at one event keep their order.
    tagged.sort_by_key(|t| t.0);
    alerts.extend(tagged.into_iter().map(|t| t.1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::merge::{tests::dns, EpochMerger};
    use analyzers::detectors::{new_alert, Hit};
    use analyzers::{Event, Severity};

    /// Raises alerts at every `every`-th event and one per tick, named after itself.
    struct Noisy {
        name: &'static str,
        every: usize,
        seen: usize,
    }

    fn alert(detector: &'static str, signature: String) -> Alert {
        let hit = Hit {
            update: false,
            count: 1,
            first_ts: 0,
        };
        new_alert(0, detector, Severity::Low, signature, String::new(), hit)
    }

    impl Analyzer for Noisy {
        fn name(&self) -> &'static str {
            self.name
        }
        fn on_event(&mut self, _ev: &Event, out: &mut Vec<Alert>) {
            self.seen += 1;
            if self.seen.is_multiple_of(self.every) {
                // Two at once, so their order within one analyzer and event matters too.
                out.push(alert(self.name, format!("{} a", self.seen)));
                out.push(alert(self.name, format!("{} b", self.seen)));
            }
        }
        fn on_tick(&mut self, now: TsNanos, out: &mut Vec<Alert>) {
            out.push(alert(self.name, format!("tick {now}")));
        }
    }

    fn analyzers() -> Vec<Box<dyn Analyzer>> {
        [
            ("beacon", 7),
            ("dns_tunnel", 5),
            ("inventory", 3),
            ("x", 2),
            ("direct_ip", 11),
        ]
        .into_iter()
        .map(|(name, every)| {
            Box::new(Noisy {
                name,
                every,
                seen: 0,
            }) as Box<dyn Analyzer>
        })
        .collect()
    }

    fn epoch(n: usize) -> Epoch {
        let mut m = EpochMerger::new(1);
        m.events(0, (0..n as i64).map(|t| dns(t / 3)).collect());
        m.watermark(0, n as i64);
        m.next().expect("an epoch")
    }

    fn alerts_with(threads: usize) -> Vec<(&'static str, String)> {
        let mut a = analyzers();
        let groups = groups(&a, threads);
        assert_eq!(
            groups.iter().max().map_or(1, |g| g + 1),
            threads.min(a.len())
        );
        let ep = epoch(2000);
        let mut out = Vec::new();
        run_epoch(&mut a, &groups, &ep, Some(5), &mut out);
        out.into_iter().map(|a| (a.detector, a.signature)).collect()
    }

    #[test]
    fn alerts_come_in_one_threads_order_whatever_the_thread_count() {
        let one = alerts_with(1);
        assert!(one.len() > 2000, "{} alerts", one.len());
        assert_eq!(alerts_with(2), one);
        assert_eq!(alerts_with(3), one);
    }

    /// One thread runs chunk by chunk; its alerts are those of the plain event-by-event
    /// loop, in that loop's order (2000 events: many chunks and a partial last one).
    #[test]
    fn chunked_run_raises_the_event_by_event_order() {
        let ep = epoch(2000);
        let mut plain = Vec::new();
        let mut a = analyzers();
        for ev in ep.iter() {
            for an in a.iter_mut() {
                an.on_event(ev, &mut plain);
            }
        }
        for an in a.iter_mut() {
            an.on_tick(5, &mut plain);
        }
        let plain: Vec<_> = plain
            .into_iter()
            .map(|a| (a.detector, a.signature))
            .collect();
        const { assert!(2000 % CHUNK_EVENTS != 0 && 2000 > 3 * CHUNK_EVENTS) };
        assert_eq!(alerts_with(1), plain);
    }

    /// The final tick, split or not: the tick alerts in analyzer order, after the same
    /// events.
    #[test]
    fn final_tick_alerts_come_in_analyzer_order_whatever_the_thread_count() {
        let run = |threads: usize| {
            let mut a = analyzers();
            let groups = groups(&a, threads);
            let mut out = Vec::new();
            run_epoch(&mut a, &groups, &epoch(600), None, &mut out);
            run_final_tick(&mut a, &groups, 9, &mut out);
            out.into_iter()
                .map(|a| (a.detector, a.signature))
                .collect::<Vec<_>>()
        };
        let one = run(1);
        let ticks: Vec<_> = one.iter().filter(|(_, s)| s == "tick 9").collect();
        assert_eq!(ticks.len(), 5);
        assert_eq!(ticks[0].0, "beacon");
        assert_eq!(ticks[4].0, "direct_ip");
        assert_eq!(run(2), one);
        assert_eq!(run(3), one);
    }

    #[test]
    fn groups_balance_by_weight_with_the_writer_in_group_zero() {
        let a = analyzers();
        // Heaviest first to the lighter group: direct_ip (85) and dns_tunnel (76) to the
        // helper (the writer's own 100 is on the analyze thread), beacon (69) here,
        // inventory (62) there, the light one here.
        assert_eq!(groups(&a, 2), vec![0, 1, 1, 0, 1]);
        assert_eq!(groups(&a, 1), vec![0; 5]);
    }
}
