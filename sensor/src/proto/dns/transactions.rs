//! Query/response matching. A transaction is keyed by (client, server, transport, VLAN, id);
//! the response's question must match the query's (case-insensitively, for 0x20 encoding).
//! Unanswered queries are logged after a timeout; the table of pending queries is bounded,
//! the oldest flushed (unanswered) when full.

use super::parser::DnsMessage;
use crate::flow::community_id::community_id_v1;
use analyzers::{DnsTxn, TsNanos, Vlans};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// The packet's endpoints as seen on the wire.
#[derive(Clone, Copy, Debug)]
pub struct DnsEndpoints {
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub proto: u8,
    pub vlan: Vlans,
    pub flow_id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TxKey {
    client: IpAddr,
    server: IpAddr,
    cport: u16,
    sport: u16,
    id: u16,
    proto: u8,
    vlan: Vlans,
}

struct Pending {
    ts: TsNanos,
    flow_id: u64,
    msg: DnsMessage,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct DnsStats {
    pub queries: u64,
    pub responses: u64,
    pub retransmitted_queries: u64,
    pub responses_without_query: u64,
    pub unanswered: u64,
    pub pending_overflow: u64,
}

pub struct DnsTracker {
    pending: HashMap<TxKey, Pending, foldhash::fast::RandomState>,
    order: VecDeque<(TsNanos, TxKey)>,
    timeout: i64,
    max_pending: usize,
    pub stats: DnsStats,
}

impl DnsTracker {
    pub fn new(timeout: i64, max_pending: usize) -> Self {
        Self {
            pending: HashMap::default(),
            order: VecDeque::new(),
            timeout,
            max_pending: max_pending.max(1),
            stats: DnsStats::default(),
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Handles one message seen at `ts` between `ep.src` and `ep.dst`.
    pub fn on_message(
        &mut self,
        ts: TsNanos,
        ep: &DnsEndpoints,
        msg: DnsMessage,
        out: &mut Vec<DnsTxn>,
    ) {
        if !msg.response {
            self.stats.queries += 1;
            let key = TxKey {
                client: ep.src,
                server: ep.dst,
                cport: ep.sport,
                sport: ep.dport,
                id: msg.id,
                proto: ep.proto,
                vlan: ep.vlan,
            };
            if let Some(p) = self.pending.get(&key) {
                if same_question(&p.msg, &msg) {
                    // A retransmission: the transaction and its RTT start at the first copy.
                    self.stats.retransmitted_queries += 1;
                    return;
                }
                // Same id, other question: the old one will not be answered.
                if let Some(old) = self.pending.remove(&key) {
                    self.stats.unanswered += 1;
                    out.push(txn(&key, old.ts, old.flow_id, old.msg, None, None));
                }
            }
            while self.pending.len() >= self.max_pending {
                if !self.pop_oldest(out) {
                    break;
                }
                self.stats.pending_overflow += 1;
            }
            self.pending.insert(
                key,
                Pending {
                    ts,
                    flow_id: ep.flow_id,
                    msg,
                },
            );
            self.order.push_back((ts, key));
            return;
        }
        self.stats.responses += 1;
        let key = TxKey {
            client: ep.dst,
            server: ep.src,
            cport: ep.dport,
            sport: ep.sport,
            id: msg.id,
            proto: ep.proto,
            vlan: ep.vlan,
        };
        match self.pending.get(&key) {
            // A response may drop the question, and an inverse query (IQUERY, opcode 1) has
            // none: its response fills it in. Either way the id and endpoints match it.
            Some(p)
                if same_question(&p.msg, &msg) || msg.qname.is_none() || p.msg.qname.is_none() =>
            {
                if let Some(q) = self.pending.remove(&key) {
                    let rtt = ts.saturating_sub(q.ts).max(0);
                    out.push(txn(&key, q.ts, q.flow_id, q.msg, Some(msg), Some(rtt)));
                }
            }
            _ => {
                self.stats.responses_without_query += 1;
                out.push(txn(&key, ts, ep.flow_id, msg.clone(), Some(msg), None));
            }
        }
    }

    /// Logs queries unanswered for longer than the timeout at packet time `now`.
    pub fn expire(&mut self, now: TsNanos, out: &mut Vec<DnsTxn>) {
        while let Some(&(ts, key)) = self.order.front() {
            let live = self.pending.get(&key).is_some_and(|p| p.ts == ts);
            if !live {
                // Answered since: drop the stale order entry.
                self.order.pop_front();
                continue;
            }
            if now.saturating_sub(ts) <= self.timeout {
                break;
            }
            self.pop_oldest(out);
        }
    }

    /// Logs every pending query as unanswered (shutdown).
    pub fn flush(&mut self, out: &mut Vec<DnsTxn>) {
        while self.pop_oldest(out) {}
        self.order.clear();
    }

    fn pop_oldest(&mut self, out: &mut Vec<DnsTxn>) -> bool {
        while let Some((ts, key)) = self.order.pop_front() {
            if self.pending.get(&key).is_some_and(|p| p.ts == ts) {
                if let Some(q) = self.pending.remove(&key) {
                    self.stats.unanswered += 1;
                    out.push(txn(&key, q.ts, q.flow_id, q.msg, None, None));
                    return true;
                }
            }
        }
        false
    }
}

fn same_question(a: &DnsMessage, b: &DnsMessage) -> bool {
    a.qtype == b.qtype
        && match (&a.qname, &b.qname) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            (None, None) => true,
            _ => false,
        }
}

/// The transaction of `query` and its response. Both are consumed: the name and the answers
/// move into the record instead of being copied.
fn txn(
    key: &TxKey,
    ts: TsNanos,
    flow_id: u64,
    query: DnsMessage,
    resp: Option<DnsMessage>,
    rtt: Option<i64>,
) -> DnsTxn {
    let query_seen = !query.response;
    let (mut rcode, mut aa, mut tc, mut ra) = (None, false, false, false);
    let mut answers = Vec::new();
    // The question comes from the query when it was seen (and had one), else from the
    // response.
    let q = match resp {
        Some(mut r) => {
            rcode = Some(r.rcode);
            (aa, tc, ra) = (r.aa, r.tc, r.ra);
            answers = std::mem::take(&mut r.answers);
            if query.response || (query.qname.is_none() && r.qname.is_some()) {
                r
            } else {
                // An empty owner name stands for the response's question; spell it out
                // where the record's question (the query's) differs.
                if query.qname != r.qname {
                    let own = r.qname.clone().unwrap_or_default();
                    for a in answers.iter_mut().filter(|a| a.name.is_empty()) {
                        a.name.clone_from(&own);
                    }
                }
                query
            }
        }
        None => query,
    };
    DnsTxn {
        ts,
        flow_id,
        client_ip: key.client,
        client_port: key.cport,
        server_ip: key.server,
        server_port: key.sport,
        proto: key.proto,
        vlan: key.vlan,
        community_id: community_id_v1(0, key.client, key.server, key.proto, key.cport, key.sport),
        id: key.id,
        qname: q.qname.unwrap_or_default(),
        qtype: q.qtype,
        qclass: q.qclass,
        opcode: q.opcode,
        rcode,
        answers,
        authoritative: aa,
        truncated: tc,
        recursion_desired: q.rd,
        recursion_available: ra,
        rtt_ns: rtt,
        query_seen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u16, response: bool, name: &str) -> DnsMessage {
        DnsMessage {
            id,
            response,
            opcode: 0,
            rcode: if response { 3 } else { 0 },
            aa: false,
            tc: false,
            rd: true,
            ra: response,
            qname: Some(name.into()),
            qtype: 1,
            qclass: 1,
            answers: vec![],
            partial: false,
        }
    }

    fn ep(fwd: bool) -> DnsEndpoints {
        let c: IpAddr = "10.0.0.1".parse().unwrap();
        let s: IpAddr = "10.0.0.53".parse().unwrap();
        let (src, sport, dst, dport) = if fwd {
            (c, 5000, s, 53)
        } else {
            (s, 53, c, 5000)
        };
        DnsEndpoints {
            src,
            sport,
            dst,
            dport,
            proto: 17,
            vlan: Vlans::default(),
            flow_id: 1,
        }
    }

    /// An inverse query (IQUERY) carries no question; its response does. One transaction,
    /// answered, named by the response's question.
    #[test]
    fn inverse_query_matches_its_response() {
        let mut t = DnsTracker::new(10, 100);
        let mut out = Vec::new();
        let mut q = msg(34798, false, "");
        q.qname = None;
        q.qtype = 0;
        q.opcode = 1;
        let mut r = msg(34798, true, "[4.3.2.1]");
        r.opcode = 1;
        r.rcode = 0;
        t.on_message(0, &ep(true), q, &mut out);
        t.on_message(9, &ep(false), r, &mut out);
        t.expire(1_000, &mut out);
        assert_eq!(
            out.len(),
            1,
            "one transaction, not an unanswered query and a response"
        );
        assert!(out[0].query_seen);
        assert_eq!(out[0].qname, "[4.3.2.1]");
        assert_eq!(
            (out[0].opcode, out[0].qtype, out[0].rtt_ns),
            (1, 1, Some(9))
        );
        assert_eq!(t.stats.responses_without_query, 0);
    }

    #[test]
    fn match_retransmit_timeout() {
        let mut t = DnsTracker::new(10, 100);
        let mut out = Vec::new();
        t.on_message(0, &ep(true), msg(7, false, "a.example"), &mut out);
        t.on_message(2, &ep(true), msg(7, false, "a.example"), &mut out);
        t.on_message(5, &ep(false), msg(7, true, "A.Example"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rtt_ns, Some(5));
        assert_eq!(out[0].rcode, Some(3));
        assert_eq!(t.stats.retransmitted_queries, 1);
        t.on_message(20, &ep(true), msg(8, false, "b.example"), &mut out);
        t.expire(25, &mut out);
        assert_eq!(out.len(), 1);
        t.expire(31, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].rcode, None);
        // A response alone is still a transaction.
        t.on_message(40, &ep(false), msg(9, true, "c.example"), &mut out);
        assert_eq!(out[2].qname, "c.example");
        assert!(!out[2].query_seen);
        assert_eq!(out[2].client_ip.to_string(), "10.0.0.1");
    }

    /// Answers owned by the question's name carry it as the empty marker. When the
    /// record takes the query's question and the response spelled it otherwise (0x20 case
    /// randomisation), the response's spelling is written out.
    #[test]
    fn answer_owner_follows_the_response_question() {
        let answer = |name: &str| analyzers::DnsAnswer {
            name: name.into(),
            rtype: 1,
            ttl: 60,
            data: String::new(),
            addr: Some("192.0.2.7".parse().unwrap()),
        };
        for (resp_q, want) in [("a.example", "a.example"), ("A.Example", "A.Example")] {
            let mut t = DnsTracker::new(10, 100);
            let mut out = Vec::new();
            let mut r = msg(9, true, resp_q);
            r.rcode = 0;
            r.answers = vec![answer(""), answer("cdn.example")];
            t.on_message(0, &ep(true), msg(9, false, "a.example"), &mut out);
            t.on_message(1, &ep(false), r, &mut out);
            let d = &out[0];
            assert_eq!(d.qname, "a.example");
            assert_eq!(d.answer_name(&d.answers[0]), want);
            assert_eq!(d.answer_name(&d.answers[1]), "cdn.example");
        }
    }

    #[test]
    fn bounded_pending() {
        let mut t = DnsTracker::new(1_000, 3);
        let mut out = Vec::new();
        for id in 0..10 {
            t.on_message(i64::from(id), &ep(true), msg(id, false, "x"), &mut out);
        }
        assert_eq!(t.pending(), 3);
        assert_eq!(out.len(), 7);
        assert_eq!(t.stats.pending_overflow, 7);
    }
}
