//! A checked big-endian bit cursor over base64url text: the encoding of IAB
//! TC strings and GPP sections. Each decoder wraps it with its own error
//! context (segment, section, field).

/// The value of a base64url character.
pub(crate) fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Reads bits from base64url text, most significant first.
#[derive(Debug)]
pub(crate) struct BitCursor<'a> {
    text: &'a [u8],
    /// Bits read so far.
    pub(crate) pos: usize,
}

impl<'a> BitCursor<'a> {
    /// A cursor at bit 0; `Err(i)` names the first byte outside the
    /// base64url alphabet, so a bad character is reported as such rather
    /// than as a later decoding error.
    pub(crate) fn new(text: &'a str) -> Result<Self, usize> {
        match text.bytes().position(|c| sextet(c).is_none()) {
            Some(at) => Err(at),
            None => Ok(BitCursor {
                text: text.as_bytes(),
                pos: 0,
            }),
        }
    }

    /// The next `n` ≤ 64 bits as an unsigned integer; `None` (and the cursor
    /// unmoved) when fewer remain.
    pub(crate) fn take(&mut self, n: u8) -> Option<u64> {
        let end = self.pos.checked_add(usize::from(n.min(64)))?;
        if end > self.text.len().saturating_mul(6) {
            return None;
        }
        let mut value = 0u64;
        for p in self.pos..end {
            let c = self.text.get(p / 6).and_then(|c| sextet(*c))?;
            value = (value << 1) | u64::from((c >> (5 - p % 6)) & 1);
        }
        self.pos = end;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_across_sextets_and_stops_at_the_end() {
        // "BA" = 000001 000000
        let mut c = BitCursor::new("BA").unwrap();
        assert_eq!(c.take(5), Some(0));
        assert_eq!(c.take(2), Some(0b10));
        assert_eq!(c.take(6), None, "only 5 bits left");
        assert_eq!(c.pos, 7, "a failed read does not move the cursor");
        assert_eq!(c.take(5), Some(0));
        assert_eq!(BitCursor::new("ab+c").err(), Some(2));
    }
}
