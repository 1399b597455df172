//! A bounded map with least-recently-used eviction: a slab of nodes threaded on an intrusive
//! doubly linked list, plus a hash index. O(1) insert/touch/evict; slot indices stay stable
//! while an entry lives, so callers can queue them.

use std::collections::HashMap;
use std::hash::Hash;

const NIL: u32 = u32::MAX;

struct Node<K, V> {
    key: K,
    val: V,
    prev: u32,
    next: u32,
}

pub(crate) struct Lru<K, V> {
    map: HashMap<K, u32, foldhash::fast::RandomState>,
    slots: Vec<Option<Node<K, V>>>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used (next to evict).
    tail: u32,
    cap: usize,
    evicted: u64,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    pub fn new(cap: usize) -> Self {
        Lru {
            map: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            cap: cap.max(1),
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Entries pushed out to make room (not counting explicit removals).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn index_of(&self, k: &K) -> Option<u32> {
        self.map.get(k).copied()
    }

    pub fn get(&self, idx: u32) -> Option<(&K, &V)> {
        self.slots
            .get(idx as usize)
            .and_then(|s| s.as_ref())
            .map(|n| (&n.key, &n.val))
    }

    pub fn get_mut(&mut self, idx: u32) -> Option<(&K, &mut V)> {
        self.slots
            .get_mut(idx as usize)
            .and_then(|s| s.as_mut())
            .map(|n| (&n.key, &mut n.val))
    }

    fn node(&mut self, idx: u32) -> &mut Node<K, V> {
        self.slots[idx as usize].as_mut().expect("live LRU slot")
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let n = self.node(idx);
            (n.prev, n.next)
        };
        if prev != NIL {
            self.node(prev).next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.node(next).prev = prev;
        } else {
            self.tail = prev;
        }
    }

    fn push_front(&mut self, idx: u32) {
        let old = self.head;
        {
            let n = self.node(idx);
            n.prev = NIL;
            n.next = old;
        }
        if old != NIL {
            self.node(old).prev = idx;
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
        if let Some(&idx) = self.map.get(&key) {
            self.touch(idx);
            return (idx, false);
        }
        if self.map.len() >= self.cap && self.tail != NIL {
            let victim = self.tail;
            self.remove(victim);
            self.evicted += 1;
        }
        let node = Node {
            key: key.clone(),
            val: make(),
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(node);
                i
            }
            None => {
                self.slots.push(Some(node));
                (self.slots.len() - 1) as u32
            }
        };
        self.push_front(idx);
        self.map.insert(key, idx);
        (idx, true)
    }

    pub fn remove(&mut self, idx: u32) -> Option<(K, V)> {
        self.slots.get(idx as usize)?.as_ref()?;
        self.unlink(idx);
        let node = self.slots[idx as usize].take().expect("live LRU slot");
        self.map.remove(&node.key);
        self.free.push(idx);
        Some((node.key, node.val))
    }

    /// Slots of all live entries (any order).
    pub fn indices(&self) -> Vec<u32> {
        self.map.values().copied().collect()
    }

    /// Bytes of the index and slab themselves (not of heap data owned by keys/values).
    pub fn table_bytes(&self) -> usize {
        let slot = std::mem::size_of::<Option<Node<K, V>>>();
        let entry = std::mem::size_of::<(K, u32)>() + 1; // + hashbrown control byte
        self.slots.capacity() * slot
            + self.map.capacity() * entry
            + self.free.capacity() * std::mem::size_of::<u32>()
    }
}

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
}
