//! (client, address) → the DNS name that resolved it, bounded (LRU) and TTL-aware, so a flow
//! to an address gets the name its client looked up (a C2 rotating addresses behind one name
//! stays one name key).

use std::net::IpAddr;
use std::sync::Arc;

use crate::lru::Lru;
use crate::TsNanos;

struct Mapping {
    name: Arc<str>,
    expires: TsNanos,
}

pub(crate) struct ResolvedNames {
    map: Lru<(IpAddr, IpAddr), Mapping>,
    ttl_min_ns: i64,
    ttl_max_ns: i64,
}

impl ResolvedNames {
    pub fn new(cap: usize, ttl_min_s: f64, ttl_max_s: f64) -> Self {
        ResolvedNames {
            map: Lru::new(cap),
            ttl_min_ns: (ttl_min_s * 1e9) as i64,
            ttl_max_ns: (ttl_max_s.max(ttl_min_s) * 1e9) as i64,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Records that `client` resolved `name` to `addr` at `ts` with `ttl` seconds. `shared`
    /// holds the caller's one `Arc` of the name, made here the first time a mapping needs it
    /// (a repeated lookup of the same name allocates nothing).
    pub fn learn(
        &mut self,
        client: IpAddr,
        addr: IpAddr,
        name: &str,
        shared: &mut Option<Arc<str>>,
        ts: TsNanos,
        ttl: u32,
    ) {
        let hold = (i64::from(ttl) * 1_000_000_000).clamp(self.ttl_min_ns, self.ttl_max_ns);
        let expires = ts.saturating_add(hold);
        let mut arc = || shared.get_or_insert_with(|| Arc::from(name)).clone();
        let (idx, created) = self.map.entry((client, addr), || Mapping {
            name: arc(),
            expires,
        });
        if created {
            return;
        }
        if let Some((_, m)) = self.map.get_mut(idx) {
            if &*m.name != name {
                m.name = arc();
                m.expires = expires;
            } else {
                m.expires = m.expires.max(expires);
            }
        }
    }

    /// The name `client` resolved `addr` from, if still valid at `ts`.
    pub fn lookup(&mut self, client: IpAddr, addr: IpAddr, ts: TsNanos) -> Option<Arc<str>> {
        let idx = self.map.index_of(&(client, addr))?;
        let (_, m) = self.map.get(idx)?;
        if m.expires < ts {
            return None;
        }
        let name = m.name.clone();
        self.map.touch(idx);
        Some(name)
    }

    /// Drops mappings expired before `now`.
    pub fn prune(&mut self, now: TsNanos) {
        for idx in self.map.indices() {
            if self.map.get(idx).is_some_and(|(_, m)| m.expires < now) {
                self.map.remove(idx);
            }
        }
    }

    pub fn approx_bytes(&self) -> usize {
        // names are shared with keys or short; count 48 bytes each
        self.map.table_bytes() + self.map.len() * 48
    }
}
