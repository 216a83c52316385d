//! Changed-block tracking: which blocks of a disk were written since a checkpoint.

/// The blocks of one disk written since its last checkpoint, as a hypervisor's CBT reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedBlocks {
    /// What the checkpoint that started this period was labelled with (the engine names the
    /// restore point whose content the disk had then).
    pub label: String,
    /// Tracking granularity in bytes.
    pub block_size: u32,
    /// Size of the disk in bytes.
    pub disk_size: u64,
    /// One bit per block, block `b` at bit `b % 64` of word `b / 64`.
    bits: Vec<u64>,
}

impl ChangedBlocks {
    /// An empty set for a disk of `disk_size` bytes at `block_size` granularity (not zero).
    pub fn new(label: &str, block_size: u32, disk_size: u64) -> ChangedBlocks {
        let blocks = disk_size.div_ceil(u64::from(block_size.max(1)));
        ChangedBlocks {
            label: label.to_string(),
            block_size: block_size.max(1),
            disk_size,
            bits: vec![0; blocks.div_ceil(64) as usize],
        }
    }

    /// Number of blocks of the disk.
    pub fn block_count(&self) -> u64 {
        self.disk_size.div_ceil(u64::from(self.block_size))
    }

    /// Marks every block overlapping `len` bytes at `offset` (clipped to the disk).
    pub fn mark(&mut self, offset: u64, len: u64) {
        if len == 0 || offset >= self.disk_size {
            return;
        }
        let bs = u64::from(self.block_size);
        let end = offset.saturating_add(len).min(self.disk_size);
        for b in offset / bs..end.div_ceil(bs) {
            self.bits[(b / 64) as usize] |= 1 << (b % 64);
        }
    }

    /// True when block `b` was written.
    pub fn is_changed(&self, b: u64) -> bool {
        self.bits
            .get((b / 64) as usize)
            .is_some_and(|w| w & (1 << (b % 64)) != 0)
    }

    /// The written blocks, ascending.
    pub fn changed(&self) -> impl Iterator<Item = u64> + '_ {
        self.bits.iter().enumerate().flat_map(|(i, &w)| {
            (0..64)
                .filter(move |bit| w & (1 << bit) != 0)
                .map(move |bit| i as u64 * 64 + bit)
        })
    }

    /// Number of written blocks.
    pub fn changed_count(&self) -> u64 {
        self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// One flag per `chunk_size`-byte range of the disk: true when a block in it was written.
    pub fn chunk_mask(&self, chunk_size: u32) -> Vec<bool> {
        let cs = u64::from(chunk_size.max(1));
        let count = self.disk_size.div_ceil(cs) as usize;
        let mut mask = vec![false; count];
        let bs = u64::from(self.block_size);
        for b in self.changed() {
            let start = b * bs;
            let end = ((b + 1) * bs).min(self.disk_size);
            for c in start / cs..end.div_ceil(cs) {
                if let Some(m) = mask.get_mut(c as usize) {
                    *m = true;
                }
            }
        }
        mask
    }

    /// The bitmap words (for persistence).
    pub(crate) fn words(&self) -> &[u64] {
        &self.bits
    }

    /// Rebuilds a set from persisted words; `None` when they do not fit the disk.
    pub(crate) fn from_words(
        label: &str,
        block_size: u32,
        disk_size: u64,
        bits: Vec<u64>,
    ) -> Option<ChangedBlocks> {
        let empty = ChangedBlocks::new(label, block_size, disk_size);
        (block_size > 0 && bits.len() == empty.bits.len())
            .then_some(ChangedBlocks { bits, ..empty })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_map_to_blocks_and_chunks() {
        let mut c = ChangedBlocks::new("p", 4096, 10 * 65536 + 100);
        c.mark(5, 1); // block 0
        c.mark(4096 * 17 - 1, 2); // blocks 16 and 17, both in chunk 1
        c.mark(10 * 65536, 100); // the short tail
        c.mark(u64::MAX - 3, 10); // past the end: ignored
        assert_eq!(c.changed().collect::<Vec<_>>(), vec![0, 16, 17, 160]);
        assert_eq!(c.changed_count(), 4);
        let mask = c.chunk_mask(65536);
        assert_eq!(mask.len(), 11);
        let set: Vec<usize> = (0..11).filter(|&i| mask[i]).collect();
        assert_eq!(set, vec![0, 1, 10]);
        let round = ChangedBlocks::from_words("p", 4096, c.disk_size, c.words().to_vec());
        assert_eq!(round, Some(c));
    }
}
