//! The demuxer fed arbitrary bytes in arbitrary chunks: it must never panic, keep its memory
//! bounded by its configuration, and report what it drops as events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lunora_mpegts::{Demuxer, DemuxerConfig, TsEvent, TS_PACKET_LEN};

const CONFIG: DemuxerConfig = DemuxerConfig {
    max_pes_size: 256 * 1024,
    max_streams: 4,
};

fuzz_target!(|data: &[u8]| {
    let Some((&chunking, data)) = data.split_first() else {
        return;
    };
    // Chunk sizes: one SRT payload (1316), one packet, or the input's own choice (1..=255).
    let chunk = match chunking {
        0 => 7 * TS_PACKET_LEN,
        1 => TS_PACKET_LEN,
        n => usize::from(n),
    };
    let mut demux = Demuxer::new(CONFIG);
    for piece in data.chunks(chunk) {
        demux.push(piece);
        // Every stream's partial PES plus a partial packet and the PSI sections.
        let bound = CONFIG.max_streams * (CONFIG.max_pes_size + TS_PACKET_LEN) + 2 * 65_536 + chunk;
        assert!(demux.buffered_bytes() <= bound, "{} > {bound}", demux.buffered_bytes());
        drain(&mut demux);
    }
    demux.flush();
    drain(&mut demux);
    let _ = demux.stats();
});

fn drain(demux: &mut Demuxer) {
    while let Some(event) = demux.poll_event() {
        match &event {
            TsEvent::Video { data, .. } | TsEvent::Audio { data, .. } => {
                assert!(data.len() <= CONFIG.max_pes_size);
            }
            _ => {}
        }
    }
}
