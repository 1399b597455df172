#!/usr/bin/env python3
"""Derives the expected Kizuki results of a small capture with tshark.

Usage: loopback_expected.py FILE.pcap > FILE.expected.json

Output: {"pcap", "packets", "dns": [transactions], "flows": [flows]} where
- a DNS transaction is a port-53 query matched with its response (same client/server/port/
  transport/id): src (client) and dest (server) 5-tuple, proto, id, rrname, rrtype, rcode,
  aa/tc/rd/ra, answers [{rrname, rrtype, ttl, rdata}] (answer section only; names without the
  trailing dot; rdata: address, target name, "PREF exchange" for MX, the text for TXT);
- a flow is a 5-tuple with the originator (sender of its first packet) as src, packet and IP
  byte counts per direction, Zeek's conn_state, and server_name (HTTP Host without port).
"""
import json
import subprocess
import sys

RRTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
           33: "SRV", 41: "OPT", 64: "SVCB", 65: "HTTPS", 255: "ANY"}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
PROTOS = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "IPv6-ICMP"}


def rrtype(n):
    n = int(n)
    return RRTYPES.get(n, f"TYPE{n}")


def tshark_json(path):
    out = subprocess.run(
        ["tshark", "-r", path, "-T", "json", "--no-duplicate-keys",
         "-o", "tcp.desegment_tcp_streams:TRUE"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def first(v):
    return v[0] if isinstance(v, list) else v


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def walk_answers(dns):
    """Yields the answer-section records of a dissected DNS message, in order."""
    ans = dns.get("Answers")
    if not ans:
        return
    for _, rec in ans.items():
        for r in as_list(rec):
            yield r


def rdata(t, r):
    g = lambda k: first(r.get(k))
    if t == "A":
        return g("dns.a")
    if t == "AAAA":
        return g("dns.aaaa")
    if t == "CNAME":
        return g("dns.cname")
    if t == "NS":
        return g("dns.ns")
    if t == "PTR":
        return g("dns.ptr.domain_name")
    if t == "MX":
        return f'{g("dns.mx.preference")} {g("dns.mx.mail_exchange")}'
    if t == "TXT":
        return "".join(as_list(r.get("dns.txt")))
    return None


def dns_messages(pkts):
    for p in pkts:
        layers = p["_source"]["layers"]
        if "dns" not in layers:
            continue
        ip = layers.get("ip") or layers.get("ipv6")
        src = first(ip.get("ip.src") or ip.get("ipv6.src"))
        dst = first(ip.get("ip.dst") or ip.get("ipv6.dst"))
        if "udp" in layers:
            proto, l4 = "UDP", layers["udp"]
            sport, dport = int(l4["udp.srcport"]), int(l4["udp.dstport"])
        else:
            proto, l4 = "TCP", layers["tcp"]
            sport, dport = int(l4["tcp.srcport"]), int(l4["tcp.dstport"])
        for dns in as_list(layers["dns"]):
            yield float(layers["frame"]["frame.time_epoch"]), src, sport, dst, dport, proto, dns


def flag(dns, name):
    flags = dns.get("dns.flags_tree", {})
    return flags.get(name) == "1"


def dns_transactions(pkts):
    pending = {}
    txns = []
    for ts, src, sport, dst, dport, proto, dns in dns_messages(pkts):
        if 53 not in (sport, dport):
            continue
        txid = int(dns["dns.id"], 16)
        is_resp = flag(dns, "dns.flags.response")
        queries = dns.get("Queries", {})
        q = next(iter(queries.values()), {}) if queries else {}
        q = first(q) if q else {}
        if not is_resp:
            t = {
                "src_ip": src, "src_port": sport, "dest_ip": dst, "dest_port": dport,
                "proto": proto, "id": txid,
                "rrname": q.get("dns.qry.name", "").rstrip(".") or ".",
                "rrtype": rrtype(q.get("dns.qry.type", 0)),
                "rd": flag(dns, "dns.flags.recdesired"),
                "answered": False,
                "_ts": ts,
            }
            pending[(src, sport, dst, dport, proto, txid)] = t
            txns.append(t)
            continue
        t = pending.pop((dst, dport, src, sport, proto, txid), None)
        if t is None:
            continue
        flags = dns.get("dns.flags_tree", {})
        t["answered"] = True
        t["rcode"] = RCODES.get(int(flags.get("dns.flags.rcode", 0)), str(flags.get("dns.flags.rcode")))
        t["aa"] = flag(dns, "dns.flags.authoritative")
        t["tc"] = flag(dns, "dns.flags.truncated")
        t["ra"] = flag(dns, "dns.flags.recavail")
        answers = []
        for r in walk_answers(dns):
            ty = rrtype(r["dns.resp.type"])
            answers.append({
                "rrname": r["dns.resp.name"].rstrip(".") or ".",
                "rrtype": ty,
                "ttl": int(r["dns.resp.ttl"]),
                "rdata": rdata(ty, r),
            })
        t["answers"] = answers
    for t in txns:
        del t["_ts"]
    return txns


def flows(pkts):
    table = {}
    order = []
    for p in pkts:
        layers = p["_source"]["layers"]
        ip = layers.get("ip") or layers.get("ipv6")
        if ip is None:
            continue
        if "ip" in layers:
            src, dst = ip["ip.src"], ip["ip.dst"]
            proto, iplen = int(ip["ip.proto"]), int(ip["ip.len"])
        else:
            src, dst = ip["ipv6.src"], ip["ipv6.dst"]
            proto, iplen = int(ip["ipv6.nxt"]), 40 + int(ip["ipv6.plen"])
        sport = dport = 0
        tflags = 0
        if "tcp" in layers:
            sport, dport = int(layers["tcp"]["tcp.srcport"]), int(layers["tcp"]["tcp.dstport"])
            tflags = int(layers["tcp"]["tcp.flags"], 16)
        elif "udp" in layers:
            sport, dport = int(layers["udp"]["udp.srcport"]), int(layers["udp"]["udp.dstport"])
        key = (src, sport, dst, dport, proto)
        rkey = (dst, dport, src, sport, proto)
        if key in table:
            f, d = table[key], "ts"
        elif rkey in table:
            f, d = table[rkey], "tc"
        else:
            f = {"key": key, "pkts_ts": 0, "pkts_tc": 0, "bytes_ts": 0, "bytes_tc": 0,
                 "flags_ts": [], "flags_tc": [], "http_host": None}
            table[key] = f
            order.append(f)
            d = "ts"
        f["pkts_" + d] += 1
        f["bytes_" + d] += iplen
        f["flags_" + d].append(tflags)
        http = layers.get("http")
        if http and f["http_host"] is None:
            for h in as_list(http):
                host = h.get("http.host") if isinstance(h, dict) else None
                if host:
                    f["http_host"] = first(host).rsplit(":", 1)[0] if ":" in first(host) and not first(host).startswith("[") else first(host)
                    break
    result = []
    for f in order:
        src, sport, dst, dport, proto = f["key"]
        r = {
            "src_ip": src, "src_port": sport, "dest_ip": dst, "dest_port": dport,
            "proto": PROTOS.get(proto, str(proto)),
            "pkts_toserver": f["pkts_ts"], "pkts_toclient": f["pkts_tc"],
            "bytes_toserver": f["bytes_ts"], "bytes_toclient": f["bytes_tc"],
            "conn_state": conn_state(proto, f),
        }
        if f["http_host"]:
            r["server_name"] = f["http_host"]
            r["server_name_source"] = "http_host"
        result.append(r)
    return result


SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10


def conn_state(proto, f):
    """Zeek's conn_state for the simple cases these captures hold."""
    if proto != 6:
        return "SF" if f["pkts_tc"] else "S0"
    ts, tc = f["flags_ts"], f["flags_tc"]
    syn = any(x & SYN and not x & ACK for x in ts)
    synack = any(x & SYN and x & ACK for x in tc)
    fin_o, fin_r = any(x & FIN for x in ts), any(x & FIN for x in tc)
    rst_o, rst_r = any(x & RST for x in ts), any(x & RST for x in tc)
    if syn and not tc:
        return "S0"
    if syn and rst_r and not synack:
        return "REJ"
    if syn and synack:
        if rst_o:
            return "RSTO"
        if rst_r:
            return "RSTR"
        if fin_o and fin_r:
            return "SF"
        if fin_o:
            return "S2"
        if fin_r:
            return "S3"
        return "S1"
    return "OTH"


def main():
    path = sys.argv[1]
    pkts = tshark_json(path)
    out = {
        "pcap": path.rsplit("/", 1)[-1],
        "note": "recorded by scripts/capture-loopback.sh; expectations derived with tshark by "
                "scripts/loopback_expected.py",
        "packets": len(pkts),
        "dns": dns_transactions(pkts),
        "flows": flows(pkts),
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
