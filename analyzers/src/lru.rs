//! A bounded map with least-recently-used eviction: a slab of nodes threaded on an intrusive
//! doubly linked list, plus a hash index of slot numbers. O(1) insert/touch/evict; slot
//! indices stay stable while an entry lives, so callers can queue them.
//!
//! The index holds only 8-byte (slot number, 32-bit hash) pairs (the key lives once, in its
//! slot) and each node keeps its key's hash: a lookup hashes the key once, an eviction or a
//! table resize hashes nothing and a resize reads no slot, and callers can look a key up by a
//! borrowed form (`find`) without building it.
//! The slab grows by fixed-size chunks, so growing never copies the slots already there.
//!
//! The list links and hashes live apart from the nodes, in one dense array of 12-byte
//! [`Link`]s. Touching an entry relinks its two neighbours: with the links inside the nodes
//! (a few hundred bytes each, tens of thousands of them) that was two more cache misses per
//! touch; the dense array of a map of 10⁵ entries is about a megabyte and mostly stays in
//! cache.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

const NIL: u32 = u32::MAX;
/// Slots per slab chunk at most (log2): 1024 slots, a few hundred KB for the key map.
const MAX_CHUNK_BITS: u32 = 10;

/// Slots in equal chunks of `1 << bits`; a slot never moves.
struct Slab<T> {
    chunks: Vec<Vec<Option<T>>>,
    bits: u32,
    len: usize,
}

impl<T> Slab<T> {
    fn new(cap: usize) -> Self {
        Slab {
            chunks: Vec::new(),
            bits: cap.next_power_of_two().trailing_zeros().min(MAX_CHUNK_BITS),
            len: 0,
        }
    }

    fn slot(&self, idx: u32) -> Option<&Option<T>> {
        let mask = (1usize << self.bits) - 1;
        self.chunks
            .get((idx >> self.bits) as usize)?
            .get(idx as usize & mask)
    }

    fn slot_mut(&mut self, idx: u32) -> Option<&mut Option<T>> {
        let mask = (1usize << self.bits) - 1;
        self.chunks
            .get_mut((idx >> self.bits) as usize)?
            .get_mut(idx as usize & mask)
    }

    fn get(&self, idx: u32) -> Option<&T> {
        self.slot(idx)?.as_ref()
    }

    fn get_mut(&mut self, idx: u32) -> Option<&mut T> {
        self.slot_mut(idx)?.as_mut()
    }

    /// Appends a slot; returns its index.
    fn push(&mut self, v: T) -> u32 {
        let size = 1usize << self.bits;
        if self.chunks.last().is_none_or(|c| c.len() >= size) {
            self.chunks.push(Vec::with_capacity(size));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.push(Some(v));
        }
        self.len += 1;
        (self.len - 1) as u32
    }

    fn iter(&self) -> impl Iterator<Item = &Option<T>> {
        self.chunks.iter().flatten()
    }

    /// Slots allocated (used or not).
    fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }
}

struct Node<K, V> {
    key: K,
    val: V,
}

/// A slot's place in the recency list, and its key's 32-bit hash (for removal from the
/// index without hashing the key again).
#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    hash: u32,
}

/// An index entry: a slot and its key's hash (32 bits: all the index ever uses of it).
#[derive(Clone, Copy)]
struct Entry {
    idx: u32,
    hash: u32,
}

/// The table hash of a 32-bit key hash: the low bits pick the bucket, the top 7 the control
/// byte, both from the 32 bits kept.
fn spread(h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(h)
}

pub(crate) struct Lru<K, V> {
    index: HashTable<Entry>,
    hasher: foldhash::fast::RandomState,
    slots: Slab<Node<K, V>>,
    /// By slot number, as long as the slab.
    links: Vec<Link>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used (next to evict).
    tail: u32,
    cap: usize,
    evicted: u64,
}

impl<K: Hash + Eq, V> Lru<K, V> {
    pub fn new(cap: usize) -> Self {
        Lru {
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            slots: Slab::new(cap.max(1)),
            links: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            cap: cap.max(1),
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Entries pushed out to make room (not counting explicit removals).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The hash `find`/`entry_by` expect for a key, or for any borrowed form of it whose
    /// `Hash` feeds the hasher exactly what the key's does.
    pub fn hash<Q: Hash + ?Sized>(&self, q: &Q) -> u64 {
        spread(self.hasher.hash_one(q) as u32)
    }

    /// The slot of the entry with hash `hash` for which `eq` holds (not touched).
    pub fn find(&self, hash: u64, mut eq: impl FnMut(&K) -> bool) -> Option<u32> {
        let slots = &self.slots;
        let h = hash as u32;
        self.index
            .find(hash, |e| {
                e.hash == h && slots.get(e.idx).is_some_and(|n| eq(&n.key))
            })
            .map(|e| e.idx)
    }

    pub fn index_of(&self, k: &K) -> Option<u32> {
        self.find(self.hash(k), |x| x == k)
    }

    pub fn get(&self, idx: u32) -> Option<(&K, &V)> {
        self.slots.get(idx).map(|n| (&n.key, &n.val))
    }

    pub fn get_mut(&mut self, idx: u32) -> Option<(&K, &mut V)> {
        self.slots.get_mut(idx).map(|n| (&n.key, &mut n.val))
    }

    fn node(&mut self, idx: u32) -> &mut Node<K, V> {
        self.slots.get_mut(idx).expect("live LRU slot")
    }

    fn link(&mut self, idx: u32) -> &mut Link {
        self.links
            .get_mut(idx as usize)
            .expect("LRU slot with a link")
    }

    fn unlink(&mut self, idx: u32) {
        let Link { prev, next, .. } = *self.link(idx);
        if prev != NIL {
            self.link(prev).next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.link(next).prev = prev;
        } else {
            self.tail = prev;
        }
    }

    fn push_front(&mut self, idx: u32) {
        let old = self.head;
        {
            let l = self.link(idx);
            l.prev = NIL;
            l.next = old;
        }
        if old != NIL {
            self.link(old).prev = idx;
        } else {
            self.tail = idx;
        }
        self.head = idx;
    }

    /// Marks an entry as most recently used.
    pub fn touch(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.push_front(idx);
        }
    }

    /// Returns the slot of `key` (touched), inserting `make()` if absent; evicts the least
    /// recently used entry when full. The bool is true when the entry was created.
    pub fn entry(&mut self, key: K, make: impl FnOnce() -> V) -> (u32, bool) {
        let hash = self.hash(&key);
        if let Some(idx) = self.find(hash, |k| *k == key) {
            self.touch(idx);
            return (idx, false);
        }
        (self.insert_new(hash, || (key, make())), true)
    }

    /// [`Lru::entry`] by a borrowed form of the key: `hash` from [`Lru::hash`], `eq` true
    /// for the key wanted; `make` builds key and value only when the entry is created.
    pub fn entry_by(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
        make: impl FnOnce() -> (K, V),
    ) -> (u32, bool) {
        if let Some(idx) = self.find(hash, eq) {
            self.touch(idx);
            return (idx, false);
        }
        (self.insert_new(hash, make), true)
    }

    /// Inserts an absent key (evicting the least recently used entry when full).
    fn insert_new(&mut self, hash: u64, make: impl FnOnce() -> (K, V)) -> u32 {
        // When full, the new entry takes the victim's slot: the old node is dropped where it
        // lies instead of moved out, and the free list is not touched.
        let victim = (self.index.len() >= self.cap && self.tail != NIL).then_some(self.tail);
        if let Some(v) = victim {
            self.unindex(v);
            self.evicted += 1;
        }
        let (key, val) = make();
        let node = Node { key, val };
        let reuse = victim.or_else(|| self.free.pop());
        let idx = match reuse {
            Some(i) => match self.slots.slot_mut(i) {
                Some(s) => {
                    *s = Some(node);
                    i
                }
                None => self.slots.push(node),
            },
            None => self.slots.push(node),
        };
        let link = Link {
            prev: NIL,
            next: NIL,
            hash: hash as u32,
        };
        match self.links.get_mut(idx as usize) {
            Some(l) => *l = link,
            None => self.links.push(link),
        }
        self.push_front(idx);
        let e = Entry {
            idx,
            hash: hash as u32,
        };
        self.index.insert_unique(hash, e, |e| spread(e.hash));
        idx
    }

    /// Takes a live slot off the recency list and out of the index (its node stays).
    fn unindex(&mut self, idx: u32) {
        let hash = spread(self.link(idx).hash);
        self.unlink(idx);
        if let Ok(e) = self.index.find_entry(hash, |e| e.idx == idx) {
            e.remove();
        }
    }

    pub fn remove(&mut self, idx: u32) -> Option<(K, V)> {
        self.slots.get(idx)?;
        self.unindex(idx);
        let node = self.slots.slot_mut(idx)?.take()?;
        self.free.push(idx);
        Some((node.key, node.val))
    }

    /// The value in a live slot (one [`Lru::entry`]/[`Lru::entry_by`] just returned).
    ///
    /// # Panics
    /// If the slot is free.
    pub fn value_mut(&mut self, idx: u32) -> &mut V {
        &mut self.node(idx).val
    }

    /// The least recently used entry's slot (the next to evict).
    pub fn oldest(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Live entries, least recently used first, most recently used last (the list walked
    /// from the tail along `prev` links).
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter {
            lru: self,
            cur: self.tail,
            left: self.len(),
        }
    }

    /// Slots of all live entries, in slot order.
    pub fn indices(&self) -> Vec<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Bytes of the index and slab themselves (not of heap data owned by keys/values).
    pub fn table_bytes(&self) -> usize {
        let slot = std::mem::size_of::<Option<Node<K, V>>>();
        self.slots.capacity() * slot
            + self.slots.chunks.capacity() * std::mem::size_of::<Vec<Option<Node<K, V>>>>()
            + self.links.capacity() * std::mem::size_of::<Link>()
            + self.index.allocation_size()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }
}

/// [`Lru::iter`]: least recently used first.
pub(crate) struct Iter<'a, K, V> {
    lru: &'a Lru<K, V>,
    cur: u32,
    left: usize,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        if self.cur == NIL {
            return None;
        }
        let n = self.lru.slots.get(self.cur)?;
        self.cur = self.lru.links.get(self.cur as usize)?.prev;
        self.left = self.left.saturating_sub(1);
        Some((&n.key, &n.val))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut l: Lru<u32, u32> = Lru::new(3);
        for k in 0..3 {
            l.entry(k, || k * 10);
        }
        let i0 = l.index_of(&0).unwrap();
        l.touch(i0); // 1 is now the oldest
        l.entry(3, || 30);
        assert_eq!(l.len(), 3);
        assert_eq!(l.evicted(), 1);
        assert!(l.index_of(&1).is_none());
        assert!(l.index_of(&0).is_some());
        let (_, v) = l.get(l.index_of(&3).unwrap()).unwrap();
        assert_eq!(*v, 30);
        let i2 = l.index_of(&2).unwrap();
        assert_eq!(l.remove(i2).map(|(k, _)| k), Some(2));
        assert_eq!(l.evicted(), 1);
        l.entry(4, || 40);
        l.entry(5, || 50);
        assert_eq!(l.len(), 3);
        assert_eq!(l.evicted(), 2);
        assert!(l.index_of(&0).is_none());
    }

    #[test]
    fn iterates_least_recently_used_first() {
        let mut l: Lru<u32, u32> = Lru::new(4);
        for k in 0..5 {
            l.entry(k, || k); // 0 is evicted
        }
        let i2 = l.index_of(&2).unwrap();
        l.touch(i2);
        let keys: Vec<u32> = l.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [1, 3, 4, 2]);
        assert_eq!(l.iter().len(), 4);
        let i3 = l.index_of(&3).unwrap();
        l.remove(i3);
        let left: Vec<u32> = l.iter().map(|(k, _)| *k).collect();
        assert_eq!(left, [1, 4, 2]);
        assert_eq!(l.evicted(), 1);
        assert_eq!(l.oldest().and_then(|i| l.get(i)).map(|(k, _)| *k), Some(1));
        for k in [1, 4, 2] {
            let i = l.index_of(&k).unwrap();
            l.remove(i);
        }
        assert!(l.oldest().is_none());
        assert_eq!(l.iter().count(), 0);
    }
}
