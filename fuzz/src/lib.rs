//! Shared helpers of the libvmmresv fuzz targets.
//!
//! The targets decode their input with [`Input`], a plain little-endian
//! reader that yields zeros once the bytes run out. It is used instead of
//! `arbitrary` so that the seed corpora (fuzz/corpus/<target>/seed-*) can be
//! written by hand, byte for byte, as fuzz/README.md describes.

/// A reader over the fuzz input: integers are little-endian and taken from
/// the front; an exhausted input reads as zeros (so every input is valid).
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes not yet consumed.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// The next byte (0 when exhausted).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// The next `N` bytes, zero-padded when the input runs out.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        out
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }

    /// An "interesting" u64: a selector byte picks an edge value, a
    /// page-aligned value, a small value, or a raw 64-bit value.
    pub fn size(&mut self) -> u64 {
        const EDGES: [u64; 12] = [
            0,
            1,
            4095,
            4096,
            4097,
            1 << 20,
            1 << 30,
            (1 << 36) - 1,
            1 << 36,
            (1 << 48) - 1,
            u64::MAX - 4095,
            u64::MAX,
        ];
        match self.u8() % 5 {
            0 => EDGES[usize::from(self.u8()) % EDGES.len()],
            1 => self.u64() & !0xfff,
            2 => u64::from(self.u16()),
            3 => u64::from(self.u32()) << 12,
            _ => self.u64(),
        }
    }
}

/// Number of lines the ARC parsers see in `input`: the pieces between
/// `'\n'`s, including the (possibly empty) piece after the last one.
pub fn line_count(input: &[u8]) -> usize {
    input.iter().filter(|b| **b == b'\n').count() + 1
}
