use super::*;

fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0,
        0,
        64,
        17,
        0,
        0,
    ];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

#[test]
fn ethernet_qinq_udp() {
    let ip = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53, b"hello");
    let mut tagged = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00];
    tagged.extend_from_slice(&ip);
    let f = eth(0x88a8, &tagged);
    match decode(LinkType::Ethernet, &f) {
        Decoded::Packet(p) => {
            assert_eq!(p.ctx.vlan.outer, Some(10));
            assert_eq!(p.ctx.vlan.inner, Some(20));
            assert_eq!(p.ip_len, 33);
            match p.transport {
                Transport::Udp(u) => {
                    assert_eq!((u.sport, u.dport), (1234, 53));
                    assert_eq!(u.payload, b"hello");
                }
                t => panic!("{t:?}"),
            }
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn vxlan_inner_flow_and_outer_udp() {
    let inner = eth(
        0x0800,
        &ipv4_udp([192, 168, 1, 1], [192, 168, 1, 2], 5000, 53, b"q"),
    );
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vx.extend_from_slice(&inner);
    let outer = eth(
        0x0800,
        &ipv4_udp([1, 1, 1, 1], [2, 2, 2, 2], 40000, 4789, &vx),
    );
    match decode(LinkType::Ethernet, &outer) {
        Decoded::Packet(p) => {
            assert_eq!(p.ctx.tunnel_depth, 1);
            assert_eq!(p.src, "192.168.1.1".parse::<IpAddr>().unwrap());
            let o = p.ctx.outer.first().copied().expect("outer udp");
            assert_eq!(o.dport, 4789);
        }
        d => panic!("{d:?}"),
    }
}

/// VXLAN inside Geneve (how some cloud mirrors nest them): both UDP tunnel layers are
/// reported, outermost first, so both of their flows are logged (as Zeek does).
#[test]
fn nested_udp_tunnels_report_both_layers() {
    let inner = eth(
        0x0800,
        &ipv4_udp([192, 168, 1, 1], [192, 168, 1, 2], 5000, 53, b"q"),
    );
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vx.extend_from_slice(&inner);
    let vx_ip = ipv4_udp([10, 9, 9, 1], [10, 9, 9, 2], 26383, 4789, &vx);
    // Geneve: version 0, no options, protocol IPv4.
    let mut gen = vec![0, 0, 0x08, 0x00, 0, 0x10, 0x92, 0];
    gen.extend_from_slice(&vx_ip);
    let frame = eth(
        0x0800,
        &ipv4_udp([127, 0, 0, 1], [127, 0, 0, 1], 11803, 6081, &gen),
    );
    let layers = |d: Decoded<'_>| match d {
        Decoded::Packet(p) => {
            assert_eq!(p.ctx.tunnel_depth, 2);
            p.ctx.outer
        }
        Decoded::TunnelDrop(_, o) => o,
        d => panic!("{d:?}"),
    };
    let o: Vec<u16> = layers(decode(LinkType::Ethernet, &frame))
        .iter()
        .map(|o| o.dport)
        .collect();
    assert_eq!(o, [6081, 4789]);
    // The innermost frame cut inside its IP header: that packet is a counted drop, but the
    // two tunnel layers around it were whole.
    let cut = frame.len() - (8 + 1 + 10);
    match decode(LinkType::Ethernet, &frame[..cut]) {
        Decoded::TunnelDrop(r, o) => {
            assert_eq!(r, DropReason::Truncated);
            assert_eq!(o.iter().count(), 2);
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn truncated_and_garbage_never_panic() {
    let ip = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53, b"hello world");
    let f = eth(0x0800, &ip);
    for cut in 0..f.len() {
        let _ = decode(LinkType::Ethernet, &f[..cut]);
    }
    // Deterministic pseudo-random frames on every link type.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for i in 0..20_000u32 {
        let len = (i % 200) as usize;
        let mut buf = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push(x as u8);
        }
        if len > 14 && i % 3 == 0 {
            buf[12] = 0x08;
            buf[13] = 0x00;
            buf[14] = 0x45;
        }
        for lt in [
            LinkType::Ethernet,
            LinkType::Raw,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::Null,
            LinkType::Ppp,
            LinkType::Fddi,
        ] {
            let _ = decode(lt, &buf);
        }
    }
}

#[test]
fn non_ip_is_not_an_error() {
    let arp = eth(0x0806, &[0u8; 28]);
    assert_eq!(
        decode(LinkType::Ethernet, &arp),
        Decoded::NonIp(Default::default())
    );
}

/// FDDI and 802.3 frames carry IP in 802.2 LLC/SNAP; other SAPs are not IP.
#[test]
fn llc_snap_over_fddi_and_802_3() {
    let ip = ipv4_udp([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53, b"hello");
    let snap = |et: u16| {
        let mut b = vec![0xaa, 0xaa, 0x03, 0, 0, 0];
        b.extend_from_slice(&et.to_be_bytes());
        b.extend_from_slice(&ip);
        b
    };
    let mut fddi = vec![0x50];
    fddi.extend_from_slice(&[0u8; 12]);
    fddi.extend_from_slice(&snap(0x0800));
    assert!(matches!(decode(LinkType::Fddi, &fddi), Decoded::Packet(p) if p.proto == 17));
    // 802.3: a length in place of the ethertype, then the same LLC/SNAP header.
    let dot3 = eth((8 + ip.len()) as u16, &snap(0x0800));
    assert!(matches!(
        decode(LinkType::Ethernet, &dot3),
        Decoded::Packet(_)
    ));
    // STP (DSAP/SSAP 0x42) is not IP; a cut SNAP header is a counted truncation.
    let stp = eth(38, &[0x42, 0x42, 0x03, 0, 0, 0, 0]);
    assert_eq!(
        decode(LinkType::Ethernet, &stp),
        Decoded::NonIp(Default::default())
    );
    assert_eq!(
        decode(LinkType::Fddi, &fddi[..17]),
        Decoded::Drop(DropReason::Truncated)
    );
    assert_eq!(
        decode(LinkType::Fddi, &fddi[..5]),
        Decoded::Drop(DropReason::Truncated)
    );
}

/// Batch items carry [`Detached`] headers, one per packet across the dispatcher-to-worker
/// channel: the tunnel layers (104 bytes) stay behind.
#[test]
fn detached_headers_leave_the_tunnel_layers_behind() {
    let size = std::mem::size_of::<Detached>();
    eprintln!(
        "Detached {size} Packet {}",
        std::mem::size_of::<Packet<'static>>()
    );
    assert!(
        size + 100 <= std::mem::size_of::<Packet<'static>>(),
        "{size}"
    );
}
