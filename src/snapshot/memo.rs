//! A bounded memo table: at most `cap` entries; when full, it is emptied before the next insert
//! (clear-on-full: O(1), no bookkeeping per read, and a working set that fits refills at once).
use std::collections::HashMap;
use std::hash::Hash;

pub struct Memo<K, V> {
    map: HashMap<K, V>,
    cap: usize,
}

impl<K: Eq + Hash, V> Memo<K, V> {
    pub fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map.get(k)
    }

    pub fn insert(&mut self, k: K, v: V) {
        if self.map.len() >= self.cap && !self.map.contains_key(&k) {
            self.map.clear();
        }
        self.map.insert(k, v);
    }

    pub fn remove<Q>(&mut self, k: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map.remove(k);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_holds_more_than_its_cap() {
        let mut m = Memo::new(3);
        for i in 0..100 {
            m.insert(i, i * 2);
            assert!(m.len() <= 3);
            assert_eq!(m.get(&i), Some(&(i * 2)), "the entry just inserted is kept");
        }
        // Replacing an existing key at the cap keeps the others.
        let mut m = Memo::new(2);
        m.insert("a", 1);
        m.insert("b", 2);
        m.insert("a", 3);
        assert_eq!((m.get("a"), m.get("b")), (Some(&3), Some(&2)));
    }
}
