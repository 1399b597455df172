#!/usr/bin/env python3
"""Writes the Grafana dashboards in dashboards/grafana/ (run from anywhere: `python3
dashboards/generate.py`). The JSON files are committed; edit this script, not the JSON.

Conventions, checked by tests/tests/dashboards.rs:
- a `datasource` template variable (type prometheus) used by every panel and target
  (`${datasource}`, never `${DS_PROMETHEUS}`, which breaks file provisioning);
- stable uids; unique panel ids; a unit on every panel;
- `job` and `sensor` variables (the scrape config sets a `sensor` target label);
- every PromQL expression is evaluated against a live Prometheus by
  tests/tests/prometheus_e2e.rs and must return data.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", sensor=~"$sensor"'
RI = "$__rate_interval"


def variables():
    return {
        "list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "refresh": 1,
                "regex": "",
                "options": [],
            },
            {
                "name": "job",
                "label": "Job",
                "type": "query",
                "datasource": DS,
                "query": {"query": "label_values(kizuki_build_info, job)", "refId": "job"},
                "definition": "label_values(kizuki_build_info, job)",
                "refresh": 2,
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "current": {},
                "hide": 0,
                "sort": 1,
                "options": [],
                "regex": "",
            },
            {
                "name": "sensor",
                "label": "Sensor",
                "type": "query",
                "datasource": DS,
                "query": {
                    "query": 'label_values(kizuki_build_info{job=~"$job"}, sensor)',
                    "refId": "sensor",
                },
                "definition": 'label_values(kizuki_build_info{job=~"$job"}, sensor)',
                "refresh": 2,
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "current": {},
                "hide": 0,
                "sort": 1,
                "options": [],
                "regex": "",
            },
        ]
    }


class Board:
    def __init__(self, uid, title, description, tags):
        self.uid, self.title, self.description, self.tags = uid, title, description, tags
        self.panels = []
        self.next_id = 1
        self.y = 0
        self.x = 0
        self.row_h = 0

    def _place(self, w, h):
        if self.x + w > 24:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title):
        if self.x:
            self.x = 0
            self.y += self.row_h
            self.row_h = 0
        self.panels.append(
            {
                "id": self.next_id,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
                "panels": [],
            }
        )
        self.next_id += 1
        self.y += 1

    def panel(self, kind, title, targets, unit, w=12, h=8, description="", instant=False,
              stack=False, decimals=None, thresholds=None):
        tgts = []
        for i, t in enumerate(targets):
            expr, legend = t if isinstance(t, tuple) else (t, "")
            tg = {
                "datasource": DS,
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend or "__auto",
                "range": not instant,
                "instant": instant,
            }
            if instant:
                tg["format"] = "table"
            tgts.append(tg)
        defaults = {"unit": unit}
        if decimals is not None:
            defaults["decimals"] = decimals
        if thresholds:
            defaults["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}]
                + [{"color": c, "value": v} for v, c in thresholds],
            }
        if kind == "timeseries":
            defaults["custom"] = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10,
                "showPoints": "never",
                "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            }
        p = {
            "id": self.next_id,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": self._place(w, h),
            "targets": tgts,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {},
        }
        if kind == "timeseries":
            p["options"] = {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        elif kind == "stat":
            p["options"] = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value",
                "graphMode": "area",
                "textMode": "auto",
            }
        elif kind == "table":
            p["options"] = {"showHeader": True}
            p["transformations"] = [
                {"id": "organize", "options": {"excludeByName": {"Time": True}}}
            ]
        self.next_id += 1
        self.panels.append(p)

    def json(self):
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": 38,
            "version": 1,
            "time": {"from": "now-6h", "to": "now"},
            "refresh": "30s",
            "timezone": "",
            "annotations": {"list": []},
            "links": [
                {
                    "type": "dashboards",
                    "tags": ["kizuki"],
                    "asDropdown": False,
                    "title": "Kizuki",
                    "includeVars": True,
                    "keepTime": True,
                }
            ],
            "templating": variables(),
            "panels": self.panels,
        }


def overview():
    b = Board(
        "kizuki-overview",
        "Kizuki / Overview",
        "Traffic, capture health, flows, DNS and detections of Kizuki sensors.",
        ["kizuki"],
    )
    b.row("Traffic")
    b.panel("timeseries", "Packets per second",
            [(f"sum by (sensor) (rate(kizuki_packets_total{{{SEL}}}[{RI}]))", "{{sensor}}")],
            "pps", w=8)
    b.panel("timeseries", "Throughput",
            [(f"8 * sum by (sensor) (rate(kizuki_bytes_total{{{SEL}}}[{RI}]))", "{{sensor}}")],
            "bps", w=8)
    b.panel("timeseries", "Capture drops by stage",
            [(f"sum by (sensor, stage) (rate(kizuki_capture_drops_total{{{SEL}}}[{RI}]))",
              "{{sensor}} {{stage}}")],
            "pps", w=8,
            description="kernel: socket buffer full; interface: NIC; queue: workers behind.")
    b.panel("timeseries", "Drop ratio",
            [(f"sum by (sensor) (rate(kizuki_capture_drops_total{{{SEL}}}[{RI}])) / "
              f"(sum by (sensor) (rate(kizuki_packets_total{{{SEL}}}[{RI}])) + "
              f"sum by (sensor) (rate(kizuki_capture_drops_total{{{SEL}}}[{RI}])))",
              "{{sensor}}")],
            "percentunit", w=8, thresholds=[(0.01, "red")])
    b.panel("timeseries", "Packet lag (wall clock - newest packet time)",
            [(f"max by (sensor) (kizuki_packet_lag_seconds{{{SEL}}})", "{{sensor}}")],
            "s", w=8, thresholds=[(30, "red")])
    b.panel("timeseries", "Decode errors by reason",
            [(f"sum by (reason) (rate(kizuki_decode_errors_total{{{SEL}}}[{RI}]))", "{{reason}}")],
            "pps", w=8)
    b.row("Flows")
    b.panel("timeseries", "Active flows",
            [(f"sum by (sensor) (kizuki_flows_active{{{SEL}}})", "{{sensor}}")], "short", w=8)
    b.panel("timeseries", "Flows ended per second by protocol",
            [(f"sum by (proto) (rate(kizuki_flows_total{{{SEL}}}[{RI}]))", "{{proto}}")],
            "ops", w=8, stack=True)
    b.panel("timeseries", "Flow table evictions",
            [(f"sum by (sensor) (rate(kizuki_flow_evictions_total{{{SEL}}}[{RI}]))", "{{sensor}}")],
            "ops", w=8)
    b.row("DNS")
    b.panel("timeseries", "DNS transactions by query type",
            [(f"sum by (qtype) (rate(kizuki_dns_queries_total{{{SEL}}}[{RI}]))", "{{qtype}}")],
            "reqps", w=8, stack=True)
    b.panel("timeseries", "DNS responses by rcode",
            [(f"sum by (rcode) (rate(kizuki_dns_queries_total{{{SEL}}}[{RI}]))", "{{rcode}}")],
            "reqps", w=8, stack=True)
    b.panel("timeseries", "DNS unanswered queries",
            [(f"sum by (sensor) (rate(kizuki_dns_unanswered_total{{{SEL}}}[{RI}]))", "{{sensor}}")],
            "reqps", w=8)
    b.panel("timeseries", "DNS response time quantiles",
            [(f"histogram_quantile({q}, sum by (le) "
              f"(rate(kizuki_dns_response_seconds_bucket{{{SEL}}}[{RI}])))", f"p{int(q * 100)}")
             for q in (0.5, 0.9, 0.99)],
            "s", w=12)
    b.panel("timeseries", "DNS NXDOMAIN share",
            [(f"sum by (sensor) (rate(kizuki_dns_queries_total{{{SEL}, rcode=\"NXDOMAIN\"}}[{RI}])) / "
              f"sum by (sensor) (rate(kizuki_dns_queries_total{{{SEL}}}[{RI}]))", "{{sensor}}")],
            "percentunit", w=12)
    b.row("Detections")
    b.panel("timeseries", "Alerts by detector",
            [(f"sum by (detector) (increase(kizuki_alerts_total{{{SEL}}}[{RI}]))", "{{detector}}")],
            "short", w=12, stack=True,
            description="New alerts (updates of an ongoing alert are not counted).")
    b.panel("stat", "Alerts in range by severity",
            [(f"sum by (severity) (increase(kizuki_alerts_total{{{SEL}}}[$__range]))",
              "{{severity}}")],
            "short", w=12, decimals=0)
    return b


def detections():
    b = Board(
        "kizuki-detections",
        "Kizuki / Detections",
        "Alerts raised by Kizuki's analyzers and their delivery to Alertmanager. Alert details "
        "(IPs, names, evidence) are in EVE (event_type alert) and in Alertmanager.",
        ["kizuki"],
    )
    b.row("Alerts")
    b.panel("timeseries", "Alerts over time by detector",
            [(f"sum by (detector) (increase(kizuki_alerts_total{{{SEL}}}[{RI}]))", "{{detector}}")],
            "short", w=12, stack=True)
    b.panel("timeseries", "Alerts over time by severity",
            [(f"sum by (severity) (increase(kizuki_alerts_total{{{SEL}}}[{RI}]))", "{{severity}}")],
            "short", w=12, stack=True)
    b.panel("table", "Alerts in range by sensor, detector and severity",
            [f"sum by (sensor, detector, severity) (increase(kizuki_alerts_total{{{SEL}}}[$__range]))"],
            "short", w=12, instant=True, decimals=0)
    b.panel("timeseries", "Alert events written to EVE (new and updates)",
            [(f"sum by (sensor) (rate(kizuki_events_total{{{SEL}, event_type=\"alert\"}}[{RI}]))",
              "{{sensor}}")],
            "ops", w=12)
    b.row("Alertmanager push")
    b.panel("timeseries", "Alerts firing in Alertmanager (pushed by the sensor)",
            [(f"sum by (sensor) (kizuki_alertmanager_active_alerts{{{SEL}}})", "{{sensor}}")],
            "short", w=8)
    b.panel("timeseries", "Push outcomes",
            [(f"sum by (sensor) (rate(kizuki_alertmanager_alerts_sent_total{{{SEL}}}[{RI}]))",
              "{{sensor}} sent"),
             (f"sum by (sensor) (rate(kizuki_alertmanager_errors_total{{{SEL}}}[{RI}]))",
              "{{sensor}} failed POSTs"),
             (f"sum by (sensor, reason) (rate(kizuki_alertmanager_dropped_total{{{SEL}}}[{RI}]))",
              "{{sensor}} dropped {{reason}}")],
            "ops", w=8)
    b.panel("timeseries", "Push queue",
            [(f"sum by (sensor) (kizuki_alertmanager_queue_length{{{SEL}}})", "{{sensor}} queued")],
            "short", w=8)
    # Analyzer-specific gauges, when the sensor exports them (see docs/metrics.md).
    if metric_exists("kizuki_beacon_top_score"):
        b.row("Beacons")
        b.panel("table", "Top beacon scores",
                [f"topk(20, kizuki_beacon_top_score{{{SEL}}})"], "percentunit", w=24,
                instant=True)
    if metric_exists("kizuki_inventory_hosts"):
        b.row("Inventory")
        b.panel("timeseries", "Inventory by role",
                [(f"sum by (role) (kizuki_inventory_hosts{{{SEL}}})", "{{role}}")],
                "short", w=24, stack=True)
    return b


def health():
    b = Board(
        "kizuki-health",
        "Kizuki / Sensor health",
        "Is each sensor up and keeping up: scrape, process, capture, pipeline and output.",
        ["kizuki"],
    )
    b.row("Sensors")
    b.panel("stat", "Targets up",
            [(f"up{{{SEL}}}", "{{sensor}}")], "none", w=8, decimals=0,
            thresholds=[(1, "green")])
    b.panel("stat", "Uptime",
            [(f"time() - process_start_time_seconds{{{SEL}}}", "{{sensor}}")], "s", w=8)
    b.panel("table", "Build",
            [f"kizuki_build_info{{{SEL}}}"], "none", w=8, instant=True)
    b.row("Process")
    b.panel("timeseries", "CPU",
            [(f"rate(process_cpu_seconds_total{{{SEL}}}[{RI}])", "{{sensor}}")],
            "percentunit", w=6, description="1.0 = one core fully used.")
    b.panel("timeseries", "Resident memory",
            [(f"process_resident_memory_bytes{{{SEL}}}", "{{sensor}}")], "bytes", w=6)
    b.panel("timeseries", "Open file descriptors (share of limit)",
            [(f"process_open_fds{{{SEL}}} / process_max_fds{{{SEL}}}", "{{sensor}}")],
            "percentunit", w=6)
    b.panel("timeseries", "Threads",
            [(f"process_threads{{{SEL}}}", "{{sensor}}")], "short", w=6)
    b.row("Capture and pipeline")
    b.panel("timeseries", "Packet lag",
            [(f"kizuki_packet_lag_seconds{{{SEL}}}", "{{sensor}}")], "s", w=8)
    b.panel("timeseries", "Capture drops by stage",
            [(f"sum by (sensor, stage) (rate(kizuki_capture_drops_total{{{SEL}}}[{RI}]))",
              "{{sensor}} {{stage}}")], "pps", w=8)
    b.panel("timeseries", "Scrape duration",
            [(f"scrape_duration_seconds{{{SEL}}}", "{{sensor}}")], "s", w=8)
    b.panel("timeseries", "Table pressure",
            [(f"sum by (sensor) (rate(kizuki_flow_evictions_total{{{SEL}}}[{RI}]))",
              "{{sensor}} flow evictions"),
             (f"sum by (sensor) (rate(kizuki_dns_pending_overflow_total{{{SEL}}}[{RI}]))",
              "{{sensor}} DNS pending overflow"),
             (f"sum by (sensor, reason) (rate(kizuki_dns_tcp_give_ups_total{{{SEL}}}[{RI}]))",
              "{{sensor}} DNS/TCP give-up {{reason}}")],
            "ops", w=12)
    b.panel("timeseries", "Parse problems",
            [(f"sum by (sensor) (rate(kizuki_dns_parse_errors_total{{{SEL}}}[{RI}]))",
              "{{sensor}} DNS parse errors"),
             (f"sum by (sensor) (rate(kizuki_non_ip_packets_total{{{SEL}}}[{RI}]))",
              "{{sensor}} non-IP frames"),
             (f"sum by (sensor) (rate(kizuki_fragments_reassembled_total{{{SEL}}}[{RI}]))",
              "{{sensor}} datagrams reassembled")],
            "pps", w=12)
    b.row("Output")
    b.panel("timeseries", "EVE events by type",
            [(f"sum by (sensor, event_type) (rate(kizuki_events_total{{{SEL}}}[{RI}]))",
              "{{sensor}} {{event_type}}")], "ops", w=12)
    b.panel("timeseries", "Alertmanager: time since last successful push",
            [(f"time() - (kizuki_alertmanager_last_success_timestamp_seconds{{{SEL}}} > 0)",
              "{{sensor}}"),
             (f"kizuki_alertmanager_queue_capacity{{{SEL}}}", "{{sensor}} queue capacity")],
            "s", w=12,
            description="Only sensors with [alertmanager] url set and at least one push.")
    return b


def metric_exists(name):
    src = os.path.join(HERE, "..", "sensor", "src", "output", "metrics.rs")
    try:
        with open(src, encoding="utf-8") as f:
            return f'"{name}"' in f.read()
    except OSError:
        return False


def main():
    # `--out DIR` writes elsewhere (the tests compare with the committed files).
    args = sys.argv[1:]
    out = args[1] if len(args) == 2 and args[0] == "--out" else os.path.join(HERE, "grafana")
    os.makedirs(out, exist_ok=True)
    for b in (overview(), detections(), health()):
        path = os.path.join(out, b.uid + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(b.json(), f, indent=2, sort_keys=False)
            f.write("\n")
        print(f"wrote {os.path.relpath(path)} ({len(b.panels)} panels)")


if __name__ == "__main__":
    main()
