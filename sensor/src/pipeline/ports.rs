//! Sets of TCP/UDP ports (the configured DNS and SMTP ports), asked about on every packet.

/// A set of ports as a 65,536-bit map (8 KB): one load and a bit test per question, where a
/// configured list was searched element by element for each port of each packet.
#[derive(Clone)]
pub struct PortSet {
    bits: Box<[u64]>,
}

impl PortSet {
    pub fn new(ports: &[u16]) -> Self {
        let mut bits = vec![0u64; 1 << 10].into_boxed_slice();
        for &p in ports {
            if let Some(w) = bits.get_mut(usize::from(p >> 6)) {
                *w |= 1 << (p & 63);
            }
        }
        PortSet { bits }
    }

    pub fn contains(&self, port: u16) -> bool {
        self.bits
            .get(usize::from(port >> 6))
            .is_some_and(|w| w & (1 << (port & 63)) != 0)
    }

    /// Either port of a packet is in the set.
    pub fn either(&self, a: u16, b: u16) -> bool {
        self.contains(a) || self.contains(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_exactly_the_ports_given() {
        let list = [0u16, 1, 25, 53, 63, 64, 587, 5353, 65534, 65535];
        let set = PortSet::new(&list);
        for p in 0..=u16::MAX {
            assert_eq!(set.contains(p), list.contains(&p), "{p}");
        }
        assert!(set.either(9, 53) && set.either(53, 9) && !set.either(9, 10));
        assert!(!PortSet::new(&[]).contains(53));
    }
}
