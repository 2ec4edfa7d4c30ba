//! Encoded frames placed once in shared memory, so a fan-out sends them without copying.
//!
//! Writing a frame's bytes to a socket copies them into the kernel once per socket: for one
//! stream to 500 players that copy was a third of the server's CPU. A frame placed here is
//! written once into an in-memory file (`memfd`), and each player's socket gets it with
//! `sendfile`, which hands the kernel references to the file's pages instead of copies.
//!
//! Invariants:
//! - A region's bytes are never written again: the pool only appends, and a segment that is
//!   full is replaced by a new file, never rewritten. Pages a socket still holds (sent but not
//!   yet read by the peer) therefore keep the bytes they were sent with.
//! - A segment lives as long as a region of it does (each region holds its segment); when the
//!   last one goes, the file is closed and its pages are freed once the sockets let go of them.
//!   Nothing is ever cut out of a live file (a punched hole may zero partial pages that are
//!   still in flight).
//! - Placing is an optimisation: when it is not possible (another OS, no memfd, a frame larger
//!   than a segment, [`MAX_SEGMENTS`] segments alive) [`place`] answers `None` and the caller
//!   sends the bytes themselves.
//! - Only frames that live briefly are placed (not a channel's codec configuration, which lives
//!   as long as the channel): one long-lived frame keeps its whole segment alive.

use std::sync::Arc;

/// Size of one segment. Large enough that a segment holds many frames (one per 4 MiB at
/// 16 Mb/s is every two seconds), small enough that a channel's few live segments are little
/// memory.
const SEGMENT_BYTES: u64 = 4 << 20;

/// Most segments alive at once (256 MiB of shared memory); beyond, frames are copied.
const MAX_SEGMENTS: usize = 64;

/// Segments alive now.
static LIVE_SEGMENTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A frame's bytes in shared memory: `len` bytes at `offset` of one segment.
#[derive(Clone)]
pub struct WireRegion {
    segment: Arc<Segment>,
    offset: u64,
    len: usize,
}

impl std::fmt::Debug for WireRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireRegion")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

impl WireRegion {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops the first `n` bytes (after a partial send).
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.len);
        self.offset += n as u64;
        self.len -= n;
    }

    /// Appends `next` if it starts where this region ends in the same segment, so both go out
    /// with one system call. Answers whether it did.
    pub fn try_extend(&mut self, next: &WireRegion) -> bool {
        if Arc::ptr_eq(&self.segment, &next.segment) && self.offset + self.len as u64 == next.offset
        {
            self.len += next.len;
            true
        } else {
            false
        }
    }

    /// The same bytes of the same segment (not merely equal bytes).
    #[cfg(test)]
    pub(crate) fn same_place(&self, other: &WireRegion) -> bool {
        Arc::ptr_eq(&self.segment, &other.segment)
            && self.offset == other.offset
            && self.len == other.len
    }

    /// Copies the bytes out (for a sink that cannot send from the file).
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        imp::read(&self.segment.0, self.offset, self.len)
    }

    /// Sends as much of the region as the socket takes without blocking; answers the number of
    /// bytes sent, or `WouldBlock`.
    #[cfg(target_os = "linux")]
    pub fn send_to(&self, socket: std::os::fd::BorrowedFd<'_>) -> std::io::Result<usize> {
        imp::send(&self.segment.0, self.offset, self.len, socket)
    }
}

/// Places `bytes` in shared memory, or answers `None` when that is not possible here (the
/// caller then sends the bytes themselves).
pub fn place(bytes: &[u8]) -> Option<WireRegion> {
    if bytes.is_empty() || bytes.len() as u64 > SEGMENT_BYTES {
        return None;
    }
    let (segment, offset) = POOL.reserve(bytes.len() as u64)?;
    match imp::write(&segment.0, offset, bytes) {
        Ok(()) => Some(WireRegion {
            segment,
            offset,
            len: bytes.len(),
        }),
        Err(e) => {
            POOL.disable(&e);
            None
        }
    }
}

static POOL: Pool = Pool {
    state: parking_lot::Mutex::new(PoolState {
        current: None,
        head: 0,
        disabled: false,
    }),
};

struct Pool {
    state: parking_lot::Mutex<PoolState>,
}

struct PoolState {
    current: Option<Arc<Segment>>,
    head: u64,
    disabled: bool,
}

impl Pool {
    /// Reserves `len` bytes: the segment and offset they go to. The bytes are written outside
    /// the lock; nobody reads a reserved range before its writer hands out the region.
    fn reserve(&self, len: u64) -> Option<(Arc<Segment>, u64)> {
        let mut state = self.state.lock();
        if state.disabled {
            return None;
        }
        let segment = match &state.current {
            Some(segment) if state.head + len <= SEGMENT_BYTES => segment.clone(),
            _ if LIVE_SEGMENTS.load(Ordering::Relaxed) >= MAX_SEGMENTS => return None,
            _ => match imp::create() {
                Ok(segment) => {
                    let segment = Arc::new(Segment::new(segment));
                    state.current = Some(segment.clone());
                    state.head = 0;
                    segment
                }
                Err(e) => {
                    drop(state);
                    self.disable(&e);
                    return None;
                }
            },
        };
        let offset = state.head;
        state.head += len;
        Some((segment, offset))
    }

    fn disable(&self, e: &std::io::Error) {
        let mut state = self.state.lock();
        if !state.disabled {
            tracing::warn!(error = %e, "frames are copied to each player: shared memory is not available");
        }
        state.disabled = true;
        state.current = None;
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsFd, BorrowedFd};
    use std::os::unix::fs::FileExt;

    pub struct Segment(File);

    pub fn create() -> io::Result<Segment> {
        use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
        let fd = memfd_create(c"lunora-wire", MemFdCreateFlag::MFD_CLOEXEC)?;
        Ok(Segment(File::from(fd)))
    }

    pub fn write(segment: &Segment, offset: u64, bytes: &[u8]) -> io::Result<()> {
        segment.0.write_all_at(bytes, offset)
    }

    pub fn read(segment: &Segment, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        segment.0.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    pub fn send(
        segment: &Segment,
        offset: u64,
        len: usize,
        socket: BorrowedFd<'_>,
    ) -> io::Result<usize> {
        let mut off = offset as libc::off64_t;
        let n = nix::sys::sendfile::sendfile64(socket, segment.0.as_fd(), Some(&mut off), len)?;
        if n == 0 && len > 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        Ok(n)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    pub struct Segment;

    pub fn create() -> io::Result<Segment> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn write(_: &Segment, _: u64, _: &[u8]) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn read(_: &Segment, _: u64, _: usize) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

use std::sync::atomic::Ordering;

/// One memfd, counted while alive.
struct Segment(imp::Segment);

impl Segment {
    fn new(inner: imp::Segment) -> Self {
        let live = LIVE_SEGMENTS.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("lunora_wire_segments").set(live as f64);
        Segment(inner)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let live = LIVE_SEGMENTS.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("lunora_wire_segments").set(live as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placed_bytes_read_back_and_neighbours_merge() {
        let a = place(b"first frame").expect("memfd is available on Linux");
        let b = place(b"+second").expect("placed");
        assert_eq!(a.to_vec().unwrap(), b"first frame");
        let mut both = a.clone();
        // Consecutive placements are adjacent unless a segment boundary falls between them
        // (other tests place concurrently, so only check when they are).
        if both.try_extend(&b) {
            assert_eq!(both.to_vec().unwrap(), b"first frame+second");
        }
        assert!(
            !b.clone().try_extend(&a),
            "a region never merges with an earlier one"
        );
        let mut tail = a.clone();
        tail.advance(6);
        assert_eq!(tail.to_vec().unwrap(), b"frame");
        assert_eq!(tail.len(), 5);
    }

    #[test]
    fn nothing_too_large_or_empty_is_placed() {
        assert!(place(b"").is_none());
        assert!(place(&vec![0u8; SEGMENT_BYTES as usize + 1]).is_none());
    }

    #[test]
    fn a_full_segment_is_replaced_and_the_old_bytes_stay() {
        let chunk = vec![7u8; (SEGMENT_BYTES / 3) as usize];
        let first = place(&chunk).expect("placed");
        let mut regions = Vec::new();
        for i in 0..4u8 {
            let mut bytes = chunk.clone();
            bytes[0] = i;
            regions.push((i, place(&bytes).expect("placed")));
        }
        assert!(regions
            .iter()
            .any(|(_, r)| !Arc::ptr_eq(&r.segment, &first.segment)));
        assert_eq!(first.to_vec().unwrap(), chunk);
        for (i, r) in &regions {
            let got = r.to_vec().unwrap();
            assert_eq!(got[0], *i);
            assert_eq!(got.len(), chunk.len());
        }
    }
}
