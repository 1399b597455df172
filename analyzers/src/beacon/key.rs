//! What a beacon is keyed by.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use crate::proto_name;

/// Which of the three key kinds a candidate is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// (src, dst IP, dst port, proto): connection starts and bursts to one service.
    Pair,
    /// (src, name): the SNI / Host / resolved name, whatever address it points to.
    Name,
    /// (client, qname): DNS lookups answered by a sinkhole or NXDOMAIN.
    Dns,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Pair => "pair",
            KeyKind::Name => "name",
            KeyKind::Dns => "dns",
        }
    }
    pub fn detector(self) -> &'static str {
        match self {
            KeyKind::Dns => "dns_sinkhole_periodic",
            _ => "beacon",
        }
    }
}

/// `Hash` is [`KeyRef`]'s, so a key can be looked up by its borrowed form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BeaconKey {
    Pair {
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        proto: u8,
    },
    Name {
        src: IpAddr,
        name: Arc<str>,
    },
    Dns {
        client: IpAddr,
        qname: Arc<str>,
    },
}

/// A [`BeaconKey`] with borrowed names: what the per-event path looks keys up by, so a key
/// that already exists costs no allocation. Hashes exactly as the owned key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum KeyRef<'a> {
    Pair {
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        proto: u8,
    },
    Name {
        src: IpAddr,
        name: &'a str,
    },
    Dns {
        client: IpAddr,
        qname: &'a str,
    },
}

impl Hash for BeaconKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state);
    }
}

/// `name` as an `Arc`: the caller's one shared copy when it holds this name, else a new one
/// (kept in `shared` for the next use).
pub(crate) fn share(shared: &mut Option<Arc<str>>, name: &str) -> Arc<str> {
    match shared {
        Some(a) if **a == *name => a.clone(),
        _ => shared.insert(Arc::from(name)).clone(),
    }
}

impl KeyRef<'_> {
    /// The owned key (names through [`share`]).
    pub fn to_key(self, shared: &mut Option<Arc<str>>) -> BeaconKey {
        match self {
            KeyRef::Pair {
                src,
                dst,
                port,
                proto,
            } => BeaconKey::Pair {
                src,
                dst,
                port,
                proto,
            },
            KeyRef::Name { src, name } => BeaconKey::Name {
                src,
                name: share(shared, name),
            },
            KeyRef::Dns { client, qname } => BeaconKey::Dns {
                client,
                qname: share(shared, qname),
            },
        }
    }
}

/// The destination side of a key, for prevalence (how many sources beacon to it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DestId {
    Pair(IpAddr, u16, u8),
    Name(Arc<str>),
    Dns(Arc<str>),
}

impl BeaconKey {
    pub fn as_ref(&self) -> KeyRef<'_> {
        match self {
            BeaconKey::Pair {
                src,
                dst,
                port,
                proto,
            } => KeyRef::Pair {
                src: *src,
                dst: *dst,
                port: *port,
                proto: *proto,
            },
            BeaconKey::Name { src, name } => KeyRef::Name { src: *src, name },
            BeaconKey::Dns { client, qname } => KeyRef::Dns {
                client: *client,
                qname,
            },
        }
    }
    pub fn kind(&self) -> KeyKind {
        match self {
            BeaconKey::Pair { .. } => KeyKind::Pair,
            BeaconKey::Name { .. } => KeyKind::Name,
            BeaconKey::Dns { .. } => KeyKind::Dns,
        }
    }
    pub fn src(&self) -> IpAddr {
        match self {
            BeaconKey::Pair { src, .. } | BeaconKey::Name { src, .. } => *src,
            BeaconKey::Dns { client, .. } => *client,
        }
    }
    pub fn name(&self) -> Option<&Arc<str>> {
        match self {
            BeaconKey::Pair { .. } => None,
            BeaconKey::Name { name, .. } => Some(name),
            BeaconKey::Dns { qname, .. } => Some(qname),
        }
    }
    pub fn dest_id(&self) -> DestId {
        match self {
            BeaconKey::Pair {
                dst, port, proto, ..
            } => DestId::Pair(*dst, *port, *proto),
            BeaconKey::Name { name, .. } => DestId::Name(name.clone()),
            BeaconKey::Dns { qname, .. } => DestId::Dns(qname.clone()),
        }
    }
    /// Stable alert dedupe key.
    pub fn dedupe_key(&self) -> String {
        format!("{}:{}", self.kind().detector(), self)
    }
    /// Heap bytes owned by this key (names are shared between the index and the slot).
    pub fn heap_bytes(&self) -> usize {
        // Arc<str>: two counters + the bytes.
        self.name().map_or(0, |n| 16 + n.len())
    }
}

fn host(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

impl fmt::Display for BeaconKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BeaconKey::Pair {
                src,
                dst,
                port,
                proto,
            } => write!(
                f,
                "{} -> {}:{}/{}",
                src,
                host(dst),
                port,
                proto_name(*proto)
            ),
            BeaconKey::Name { src, name } => write!(f, "{src} -> {name}"),
            BeaconKey::Dns { client, qname } => write!(f, "{client} dns {qname}"),
        }
    }
}
