//! A bounded MSB-first bit reader with exp-Golomb codes, for SPS and AudioSpecificConfig.

use crate::FlvError;

/// Reads bits most-significant first from a byte slice. Every read is checked: reading past
/// the end returns [`FlvError::Truncated`], never panics.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
    what: &'static str,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Self {
        BitReader { data, pos: 0, what }
    }

    pub(crate) fn bits_left(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    fn truncated(&self) -> FlvError {
        FlvError::truncated(self.what, self.pos / 8 + 1, self.data.len())
    }

    pub(crate) fn read_bit(&mut self) -> Result<bool, FlvError> {
        let byte = *self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| self.truncated())?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` bits (at most 32) as an unsigned number.
    pub(crate) fn read_bits(&mut self, n: u32) -> Result<u32, FlvError> {
        if n > 32 {
            return Err(FlvError::invalid(self.what, "bit field wider than 32 bits"));
        }
        if self.bits_left() < n as usize {
            return Err(self.truncated());
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.read_bit()?);
        }
        // n <= 32 so v fits.
        Ok(v as u32)
    }

    pub(crate) fn read_u8(&mut self, n: u32) -> Result<u8, FlvError> {
        Ok(self.read_bits(n.min(8))? as u8)
    }

    pub(crate) fn skip_bits(&mut self, n: usize) -> Result<(), FlvError> {
        if self.bits_left() < n {
            return Err(self.truncated());
        }
        self.pos += n;
        Ok(())
    }

    /// Unsigned exp-Golomb code `ue(v)`. More than 31 leading zero bits is invalid (the value
    /// would not fit in 32 bits).
    pub(crate) fn read_ue(&mut self) -> Result<u32, FlvError> {
        let mut zeros = 0u32;
        while !self.read_bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(FlvError::invalid(self.what, "exp-Golomb code too long"));
            }
        }
        if zeros == 0 {
            return Ok(0);
        }
        let rest = self.read_bits(zeros)?;
        // (2^zeros - 1) + rest <= 2^32 - 2 for zeros <= 31.
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// `ue(v)` with an inclusive upper bound; larger values are invalid.
    pub(crate) fn read_ue_max(&mut self, max: u32, field: &'static str) -> Result<u32, FlvError> {
        let v = self.read_ue()?;
        if v > max {
            return Err(FlvError::Invalid {
                what: field,
                reason: "value out of range",
            });
        }
        Ok(v)
    }

    /// Signed exp-Golomb code `se(v)`.
    pub(crate) fn read_se(&mut self) -> Result<i32, FlvError> {
        let k = i64::from(self.read_ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        // |v| <= 2^31 - 1 since k <= 2^32 - 2.
        Ok(v as i32)
    }
}

/// Removes H.264/H.265 emulation-prevention bytes (`00 00 03` -> `00 00`), giving the RBSP.
pub fn nal_to_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        if b == 0 {
            zeros += 1;
        } else {
            zeros = 0;
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_values() {
        // 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3, 00111 -> 6
        let data = [0b1010_0110, 0b0100_0011, 0b1000_0000];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.read_ue().unwrap(), 0);
        assert_eq!(r.read_ue().unwrap(), 1);
        assert_eq!(r.read_ue().unwrap(), 2);
        assert_eq!(r.read_ue().unwrap(), 3);
        assert_eq!(r.read_ue().unwrap(), 6);
    }

    #[test]
    fn signed_exp_golomb() {
        // ue 1 -> +1, ue 2 -> -1, ue 3 -> +2
        let data = [0b0100_1100, 0b1000_0000];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.read_se().unwrap(), 1);
        assert_eq!(r.read_se().unwrap(), -1);
        assert_eq!(r.read_se().unwrap(), 2);
    }

    #[test]
    fn all_zero_input_is_an_error_not_a_hang() {
        let data = [0u8; 16];
        let mut r = BitReader::new(&data, "test");
        assert!(r.read_ue().is_err());
        let mut r = BitReader::new(&data[..2], "test");
        assert!(matches!(r.read_ue(), Err(FlvError::Truncated { .. })));
    }

    #[test]
    fn max_length_code_fits() {
        // 31 zeros, a one, then 31 ones: 2^31 - 1 + 2^31 - 1.
        let mut bits = vec![false; 31];
        bits.push(true);
        bits.extend(std::iter::repeat_n(true, 31));
        let mut data = vec![0u8; bits.len().div_ceil(8)];
        for (i, b) in bits.iter().enumerate() {
            if *b {
                data[i / 8] |= 0x80 >> (i % 8);
            }
        }
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.read_ue().unwrap(), u32::MAX - 1);
    }

    #[test]
    fn read_bits_past_end() {
        let mut r = BitReader::new(&[0xAB], "test");
        assert_eq!(r.read_bits(4).unwrap(), 0xA);
        assert!(r.read_bits(5).is_err());
        assert_eq!(r.read_bits(4).unwrap(), 0xB);
    }

    #[test]
    fn emulation_prevention_removed() {
        assert_eq!(
            nal_to_rbsp(&[0x67, 0, 0, 3, 1, 0, 0, 3, 0, 3]),
            vec![0x67, 0, 0, 1, 0, 0, 0, 3]
        );
    }
}
