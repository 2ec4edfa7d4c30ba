//! Unwrapping 33-bit PTS/DTS values onto a continuous 64-bit timeline.

use crate::pes::TS_MASK;

const WRAP: i64 = 1 << 33;
const HALF: i64 = 1 << 32;

/// Turns 33-bit 90 kHz timestamps, which wrap every 26.5 hours, into an `i64` timeline that
/// keeps going: each value is placed in the 2^33 period that puts it nearest to the value
/// before it.
///
/// One unwrapper serves every stream of a program, so audio and video stay on the same
/// timeline across a wrap. Values of one program lie within seconds of each other, far less
/// than the 13 hours (2^32 ticks) this needs. The first value is taken as it is (0..2^33).
#[derive(Debug, Clone, Default)]
pub struct TimestampUnwrapper {
    last: Option<i64>,
}

impl TimestampUnwrapper {
    /// An unwrapper that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The unwrapped value of the 33-bit timestamp `raw` (higher bits are ignored).
    pub fn unwrap(&mut self, raw: u64) -> i64 {
        let raw = (raw & TS_MASK) as i64;
        let value = match self.last {
            None => raw,
            Some(last) => {
                let mut v = last
                    .saturating_sub(last.rem_euclid(WRAP))
                    .saturating_add(raw);
                if v - last > HALF {
                    v = v.saturating_sub(WRAP);
                } else if last - v > HALF {
                    v = v.saturating_add(WRAP);
                }
                v
            }
        };
        self.last = Some(value);
        value
    }

    /// The last value returned, if any.
    pub fn last(&self) -> Option<i64> {
        self.last
    }

    /// Forgets the history: the next value is taken as it is.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_across_the_wrap() {
        let mut u = TimestampUnwrapper::new();
        let start = WRAP - 3 * 3600;
        let mut expected = start;
        assert_eq!(u.unwrap(start as u64), start);
        for _ in 0..10 {
            expected += 3600;
            assert_eq!(u.unwrap((expected % WRAP) as u64), expected);
        }
        assert!(expected > WRAP);
    }

    #[test]
    fn backward_values_near_the_wrap_stay_behind() {
        let mut u = TimestampUnwrapper::new();
        assert_eq!(u.unwrap(100), 100);
        // A B-frame or audio value slightly earlier, from before the wrap.
        assert_eq!(u.unwrap((WRAP - 50) as u64), -50);
        assert_eq!(u.unwrap(200), 200);
    }

    #[test]
    fn several_wraps_and_high_bits_ignored() {
        let mut u = TimestampUnwrapper::new();
        let step = 1i64 << 31;
        let mut t = 0i64;
        for _ in 0..20 {
            t += step;
            assert_eq!(u.unwrap((t % WRAP) as u64 | (1 << 40)), t);
        }
        assert_eq!(u.last(), Some(t));
        u.reset();
        assert_eq!(u.unwrap(5), 5);
    }
}
