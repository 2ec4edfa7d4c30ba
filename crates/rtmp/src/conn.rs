//! The connection core shared by [`crate::ServerSession`] and [`crate::ClientSession`]:
//! chunk decoding, the outbound queue, protocol control messages and acknowledgements.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::amf0::Amf0Value;
use crate::chunk::{encode_message, validate_chunk_size, ChunkDecoder, ChunkLimits};
use crate::message::{csid, msg_type, BandwidthLimit, Command, Message, UserControl};
use crate::RtmpError;

/// Counters a driver can export as metrics or use to detect a stalled peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionStats {
    /// Chunk-stream bytes received (after the handshake).
    pub bytes_received: u64,
    /// Chunk-stream bytes handed out by `poll_transmit` (after the handshake).
    pub bytes_sent: u64,
    /// The peer's last Acknowledgement sequence number (bytes it received, mod 2^32).
    pub last_ack_received: Option<u32>,
    /// Acknowledgements received. A driver that sees `bytes_sent` grow by several windows
    /// while this stays still knows the peer stopped acknowledging.
    pub acks_received: u64,
    /// Window Acknowledgement Size we announced (the peer should ack at this interval).
    pub our_window_ack_size: Option<u32>,
    /// Window Acknowledgement Size the peer announced (we ack at this interval).
    pub peer_window_ack_size: Option<u32>,
    /// Set Peer Bandwidth the peer sent: how many unacknowledged bytes it allows us.
    pub peer_bandwidth: Option<u32>,
    /// Acknowledgements we sent.
    pub acks_sent: u64,
    /// Media/data messages dropped: their stream was not publishing/playing, or they were
    /// empty.
    pub dropped_messages: u64,
}

impl ConnectionStats {
    /// Bytes sent that the peer has not acknowledged yet; before any acknowledgement, every
    /// byte sent. Peers that count the handshake too (acking slightly more than we sent), or
    /// reset their counter (nginx-rtmp does at 0xF0000000), read as 0 rather than as a
    /// huge backlog.
    pub fn unacknowledged_bytes(&self) -> u64 {
        match self.last_ack_received {
            Some(seq) => {
                let diff = (self.bytes_sent as u32).wrapping_sub(seq);
                if diff >= 0x8000_0000 {
                    0
                } else {
                    u64::from(diff)
                }
            }
            None => self.bytes_sent,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Core {
    decoder: ChunkDecoder,
    out_chunk_size: u32,
    /// Bytes to send, and whether they count towards `bytes_sent` (handshake bytes do not).
    transmits: VecDeque<(Bytes, bool)>,
    last_ack_sent_at: u64,
    pub(crate) stats: ConnectionStats,
    pub(crate) failed: bool,
}

impl Core {
    pub(crate) fn new(limits: ChunkLimits) -> Self {
        Core {
            decoder: ChunkDecoder::new(limits),
            out_chunk_size: crate::chunk::DEFAULT_CHUNK_SIZE,
            transmits: VecDeque::new(),
            last_ack_sent_at: 0,
            stats: ConnectionStats::default(),
            failed: false,
        }
    }

    pub(crate) fn out_chunk_size(&self) -> u32 {
        self.out_chunk_size
    }

    pub(crate) fn in_chunk_size(&self) -> u32 {
        self.decoder.chunk_size()
    }

    /// Input bytes held: an incomplete chunk plus partially reassembled messages.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.decoder.pending_input() + self.decoder.buffered_message_bytes()
    }

    pub(crate) fn queue_raw(&mut self, bytes: Bytes, counted: bool) {
        if !bytes.is_empty() {
            self.transmits.push_back((bytes, counted));
        }
    }

    pub(crate) fn send(&mut self, msg: &Message, csid: u32) -> Result<(), RtmpError> {
        let bytes = encode_message(msg, csid, self.out_chunk_size)?;
        self.queue_raw(bytes, true);
        Ok(())
    }

    pub(crate) fn send_command(
        &mut self,
        stream_id: u32,
        command: &Command,
    ) -> Result<(), RtmpError> {
        let msg = Message::command(stream_id, command)?;
        let cs = if stream_id == 0 {
            csid::COMMAND
        } else {
            csid::STREAM
        };
        self.send(&msg, cs)
    }

    pub(crate) fn send_status(
        &mut self,
        stream_id: u32,
        level: &str,
        code: &str,
        description: &str,
    ) -> Result<(), RtmpError> {
        let info = Amf0Value::object([
            ("level", Amf0Value::string(level)),
            ("code", Amf0Value::string(code)),
            ("description", Amf0Value::string(description)),
        ]);
        self.send_command(stream_id, &Command::new("onStatus", 0.0, vec![info]))
    }

    /// Announces and switches to a new outbound chunk size.
    pub(crate) fn set_out_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        let size = validate_chunk_size(size)?;
        self.send(&Message::set_chunk_size(size), csid::CONTROL)?;
        self.out_chunk_size = size;
        Ok(())
    }

    pub(crate) fn send_window_ack_size(&mut self, size: u32) -> Result<(), RtmpError> {
        self.send(&Message::window_ack_size(size), csid::CONTROL)?;
        self.stats.our_window_ack_size = Some(size);
        Ok(())
    }

    pub(crate) fn send_user_control(&mut self, event: UserControl) -> Result<(), RtmpError> {
        self.send(&Message::user_control(event), csid::CONTROL)
    }

    pub(crate) fn send_peer_bandwidth(&mut self, size: u32) -> Result<(), RtmpError> {
        self.send(
            &Message::set_peer_bandwidth(size, BandwidthLimit::Dynamic),
            csid::CONTROL,
        )
    }

    pub(crate) fn receive(&mut self, data: &[u8]) {
        self.stats.bytes_received += data.len() as u64;
        self.decoder.push(data);
    }

    /// The decoder's input buffer, with room for `room` more bytes (see
    /// [`ChunkDecoder::input_buffer`]); count what is appended with [`Self::received`].
    pub(crate) fn input_buffer(&mut self, room: usize) -> &mut BytesMut {
        self.decoder.input_buffer(room)
    }

    /// Counts `n` bytes appended to [`Self::input_buffer`].
    pub(crate) fn received(&mut self, n: usize) {
        self.stats.bytes_received += n as u64;
    }

    /// The next message for the session. Protocol control messages are handled here
    /// (and not returned), as is answering Ping Requests.
    pub(crate) fn next_message(&mut self) -> Result<Option<Message>, RtmpError> {
        while let Some(msg) = self.decoder.next_message()? {
            match msg.type_id {
                msg_type::SET_CHUNK_SIZE | msg_type::ABORT => {}
                msg_type::ACKNOWLEDGEMENT => {
                    self.stats.last_ack_received = Some(msg.payload_u32()?);
                    self.stats.acks_received += 1;
                }
                msg_type::WINDOW_ACK_SIZE => {
                    let size = msg.payload_u32()?;
                    self.stats.peer_window_ack_size = (size > 0).then_some(size);
                }
                msg_type::SET_PEER_BANDWIDTH => {
                    // Recorded, not answered: the spec's "answer with a Window Acknowledgement
                    // Size" would replace the window we configured (FFmpeg does not answer
                    // either). A driver may use it as a limit on unacknowledged bytes.
                    self.stats.peer_bandwidth = Some(msg.payload_u32()?);
                }
                msg_type::USER_CONTROL => {
                    let event = UserControl::parse(&msg.payload)?;
                    if let UserControl::PingRequest(ts) = event {
                        self.send_user_control(UserControl::PingResponse(ts))?;
                    }
                    return Ok(Some(msg));
                }
                _ => return Ok(Some(msg)),
            }
        }
        Ok(None)
    }

    /// Sends an Acknowledgement if a window's worth of bytes arrived since the last one.
    pub(crate) fn maybe_ack(&mut self) -> Result<(), RtmpError> {
        if let Some(window) = self.stats.peer_window_ack_size {
            let received = self.stats.bytes_received;
            if received - self.last_ack_sent_at >= u64::from(window) {
                self.send(&Message::acknowledgement(received as u32), csid::CONTROL)?;
                self.last_ack_sent_at = received;
                self.stats.acks_sent += 1;
            }
        }
        Ok(())
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        let (bytes, counted) = self.transmits.pop_front()?;
        if counted {
            self.stats.bytes_sent += bytes.len() as u64;
        }
        Some(bytes)
    }

    pub(crate) fn has_transmit(&self) -> bool {
        !self.transmits.is_empty()
    }
}

/// Reads the info object of an `onStatus`/`_error`: `(level, code, description)`.
pub(crate) fn status_info(cmd: &Command) -> (String, String, String) {
    let info = cmd
        .args
        .iter()
        .find(|a| a.properties().is_some())
        .or(Some(&cmd.command_object));
    let field = |k: &str| {
        info.and_then(|i| i.get(k))
            .and_then(Amf0Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (field("level"), field("code"), field("description"))
}

/// A transaction or stream id sent as an AMF0 number, if it is a sane integer.
pub(crate) fn number_to_u32(n: f64) -> Option<u32> {
    (n.is_finite() && n >= 0.0 && n <= f64::from(u32::MAX) && n.fract() == 0.0).then_some(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unacknowledged_bytes_cases() {
        let mut s = ConnectionStats {
            bytes_sent: 10_000,
            ..ConnectionStats::default()
        };
        assert_eq!(s.unacknowledged_bytes(), 10_000);
        s.last_ack_received = Some(7_500);
        assert_eq!(s.unacknowledged_bytes(), 2_500);
        // A peer that counted our handshake acks more than we sent: nothing outstanding.
        s.last_ack_received = Some(10_000 + 3_073);
        assert_eq!(s.unacknowledged_bytes(), 0);
        // Sequence numbers wrap at 2^32.
        s.bytes_sent = (1 << 32) + 100;
        s.last_ack_received = Some(u32::MAX - 99);
        assert_eq!(s.unacknowledged_bytes(), 200);
    }

    #[test]
    fn number_conversion() {
        assert_eq!(number_to_u32(1.0), Some(1));
        assert_eq!(number_to_u32(-1.0), None);
        assert_eq!(number_to_u32(1.5), None);
        assert_eq!(number_to_u32(f64::NAN), None);
        assert_eq!(number_to_u32(1e20), None);
    }
}
