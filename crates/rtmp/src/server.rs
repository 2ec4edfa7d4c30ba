//! [`ServerSession`]: one RTMP connection accepted by Lunora (an encoder publishing, or a
//! player playing).

use std::collections::{BTreeMap, VecDeque};

use bytes::{Buf, Bytes, BytesMut};

use crate::amf0::{Amf0Decoder, Amf0Value};
use crate::chunk::ChunkLimits;
use crate::conn::{number_to_u32, ConnectionStats, Core};
use crate::handshake::{HandshakeMode, ServerHandshake};
use crate::message::{
    csid, msg_type, split_aggregate, strip_amf3_marker, Command, Message, UserControl,
};
use crate::RtmpError;

/// Settings of a [`ServerSession`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Outbound chunk size announced after `connect` (default 4096).
    pub chunk_size: u32,
    /// Window Acknowledgement Size announced to the client (default 2,500,000).
    pub window_ack_size: u32,
    /// Set Peer Bandwidth sent to the client (default 2,500,000).
    pub peer_bandwidth: u32,
    /// Inbound memory bounds.
    pub limits: ChunkLimits,
    /// Most message streams a connection may create (default 8).
    pub max_streams: u32,
    /// Seed for handshake filler; the driver should pass random bytes.
    pub seed: [u8; 32],
    /// The S1 time field, in milliseconds.
    pub epoch: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            limits: ChunkLimits::default(),
            max_streams: 8,
            seed: [0; 32],
            epoch: 0,
        }
    }
}

/// What a [`ServerSession`] reports to its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The client connected to an application (answered automatically).
    Connected {
        /// Application name (`app` of the connect command object).
        app: String,
        /// `tcUrl`, if sent.
        tc_url: Option<String>,
        /// The whole connect command object.
        command_object: Amf0Value,
    },
    /// The client asks to publish; answer with [`ServerSession::accept_publish`] or
    /// [`ServerSession::reject_publish`].
    PublishRequested {
        /// Message stream id.
        stream_id: u32,
        /// Application name.
        app: String,
        /// Stream key / name as sent (may carry a `?query`).
        stream_key: String,
        /// Publishing type (`live`, `record`, `append`).
        publish_type: String,
    },
    /// The client asks to play; answer with [`ServerSession::accept_play`] or
    /// [`ServerSession::reject_play`].
    PlayRequested {
        /// Message stream id.
        stream_id: u32,
        /// Application name.
        app: String,
        /// Stream name as sent.
        stream_name: String,
        /// Requested start (-2 live or recorded, -1 live only, >= 0 recorded from there).
        start: f64,
    },
    /// The client sent `FCUnpublish` for a stream key.
    FcUnpublish {
        /// The stream key named.
        stream_key: String,
    },
    /// An accepted publication ended (closeStream or deleteStream).
    PublishStopped {
        /// Message stream id.
        stream_id: u32,
        /// Its stream key.
        stream_key: String,
    },
    /// An accepted playback ended (closeStream or deleteStream).
    PlayStopped {
        /// Message stream id.
        stream_id: u32,
        /// Its stream name.
        stream_name: String,
    },
    /// The client sent `closeStream` on a stream.
    StreamClosed {
        /// Message stream id.
        stream_id: u32,
    },
    /// The client deleted a stream.
    StreamDeleted {
        /// Message stream id.
        stream_id: u32,
    },
    /// `@setDataFrame onMetaData` / `onMetaData` on a publishing stream.
    Metadata {
        /// Message stream id.
        stream_id: u32,
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The metadata object (usually an ECMA array).
        metadata: Amf0Value,
    },
    /// An audio message (FLV audio tag body) on a publishing stream.
    Audio {
        /// Message stream id.
        stream_id: u32,
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The payload.
        payload: Bytes,
    },
    /// A video message (FLV video tag body) on a publishing stream.
    Video {
        /// Message stream id.
        stream_id: u32,
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The payload.
        payload: Bytes,
    },
    /// The client answered a Ping Request.
    PingResponse {
        /// The timestamp of our request.
        timestamp: u32,
    },
    /// A command this session does not handle (logged by the driver, otherwise ignored).
    UnhandledCommand {
        /// Message stream id.
        stream_id: u32,
        /// Command name.
        name: String,
    },
}

/// Why a publish request is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishRejection {
    /// `NetStream.Publish.BadName`: unknown key, or the stream is already published.
    BadName,
    /// `NetStream.Publish.Rejected`: not allowed (authorization).
    Rejected,
}

/// Why a play request is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayRejection {
    /// `NetStream.Play.StreamNotFound`.
    StreamNotFound,
    /// `NetStream.Play.Failed`: not allowed, or another failure.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StreamState {
    Idle,
    Publishing(String),
    Playing(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Publish { stream_id: u32, key: String },
    Play { stream_id: u32, name: String },
}

/// The server side of one RTMP connection, sans IO.
///
/// Feed received bytes to [`handle_input`](Self::handle_input), then drain
/// [`poll_transmit`](Self::poll_transmit) (bytes to write) and
/// [`poll_event`](Self::poll_event). Commands are answered automatically except `publish`
/// and `play`, which wait for the driver's decision.
#[derive(Debug, Clone)]
pub struct ServerSession {
    config: ServerConfig,
    core: Core,
    handshake: ServerHandshake,
    app: Option<String>,
    streams: BTreeMap<u32, StreamState>,
    next_stream_id: u32,
    pending: Option<Pending>,
    events: VecDeque<ServerEvent>,
}

impl ServerSession {
    /// A session waiting for C0+C1.
    pub fn new(config: ServerConfig) -> Self {
        let handshake = ServerHandshake::new(config.seed, config.epoch);
        ServerSession {
            core: Core::new(config.limits),
            handshake,
            config,
            app: None,
            streams: BTreeMap::new(),
            next_stream_id: 1,
            pending: None,
            events: VecDeque::new(),
        }
    }

    /// Processes received bytes. On error the connection should be closed (after sending
    /// what `poll_transmit` still holds, if wanted); later calls return
    /// [`RtmpError::Closed`].
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        if self.core.failed {
            return Err(RtmpError::Closed);
        }
        let r = self.handle_input_inner(data);
        if r.is_err() {
            self.core.failed = true;
        }
        r
    }

    fn handle_input_inner(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        self.core.input_buffer(data.len()).extend_from_slice(data);
        self.handle_received_inner(data.len())
    }

    /// Where the driver may read received bytes directly (sparing [`handle_input`]'s copy):
    /// the input buffer with room for at least `room` more bytes. Append to it (e.g. tokio's
    /// `read_buf`), then call [`handle_received`](Self::handle_received) with the count.
    pub fn input_buffer(&mut self, room: usize) -> &mut BytesMut {
        self.core.input_buffer(room)
    }

    /// Processes `n` bytes the driver appended to [`input_buffer`](Self::input_buffer), as
    /// [`handle_input`](Self::handle_input) would have.
    pub fn handle_received(&mut self, n: usize) -> Result<(), RtmpError> {
        if self.core.failed {
            return Err(RtmpError::Closed);
        }
        let r = self.handle_received_inner(n);
        if r.is_err() {
            self.core.failed = true;
        }
        r
    }

    /// The input buffer holds `n` new bytes after what earlier calls left in it (at most an
    /// incomplete chunk; nothing while the handshake runs, as it takes all it is given).
    fn handle_received_inner(&mut self, mut n: usize) -> Result<(), RtmpError> {
        if !self.handshake.is_done() {
            let mut out = Vec::new();
            let input = self.core.input_buffer(0);
            let used = self.handshake.handle(input, &mut out)?;
            input.advance(used);
            n = input.len();
            for b in out {
                self.core.queue_raw(b, false);
            }
            if !self.handshake.is_done() {
                return Ok(());
            }
        }
        if n == 0 {
            return Ok(());
        }
        self.core.received(n);
        while let Some(msg) = self.core.next_message()? {
            self.on_message(msg, true)?;
        }
        self.core.maybe_ack()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The next bytes to write to the socket.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.core.poll_transmit()
    }

    /// Received bytes held in memory (an incomplete chunk and partial messages); bounded
    /// by the configured [`ChunkLimits`].
    pub fn buffered_bytes(&self) -> usize {
        self.core.buffered_bytes()
    }

    /// Whether bytes are waiting in [`poll_transmit`](Self::poll_transmit).
    pub fn has_transmit(&self) -> bool {
        self.core.has_transmit()
    }

    /// Whether the handshake is complete.
    pub fn is_handshake_done(&self) -> bool {
        self.handshake.is_done()
    }

    /// The handshake mode used (digest or simple).
    pub fn handshake_mode(&self) -> HandshakeMode {
        self.handshake.mode()
    }

    /// The application name, once connected.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// Byte counters and acknowledgement state.
    pub fn stats(&self) -> ConnectionStats {
        self.core.stats
    }

    /// Outbound chunk size (what [`crate::encode_message`] must use for
    /// [`send_preencoded`](Self::send_preencoded)).
    pub fn out_chunk_size(&self) -> u32 {
        self.core.out_chunk_size()
    }

    /// Inbound chunk size set by the peer.
    pub fn in_chunk_size(&self) -> u32 {
        self.core.in_chunk_size()
    }

    /// The stream id of the accepted playback, if any.
    pub fn play_stream_id(&self) -> Option<u32> {
        self.streams
            .iter()
            .find(|(_, s)| matches!(s, StreamState::Playing(_)))
            .map(|(id, _)| *id)
    }

    /// The stream id of the accepted publication, if any.
    pub fn publish_stream_id(&self) -> Option<u32> {
        self.streams
            .iter()
            .find(|(_, s)| matches!(s, StreamState::Publishing(_)))
            .map(|(id, _)| *id)
    }

    fn on_message(&mut self, msg: Message, allow_aggregate: bool) -> Result<(), RtmpError> {
        match msg.type_id {
            msg_type::USER_CONTROL => {
                if let UserControl::PingResponse(timestamp) = UserControl::parse(&msg.payload)? {
                    self.events
                        .push_back(ServerEvent::PingResponse { timestamp });
                }
            }
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let cmd = Command::parse(&msg.payload, msg.type_id == msg_type::COMMAND_AMF3)?;
                self.on_command(msg.stream_id, cmd)?;
            }
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => self.on_data(&msg)?,
            msg_type::AUDIO | msg_type::VIDEO => {
                // Empty media carries nothing and would let one header byte make one event.
                if !self.is_publishing(msg.stream_id) || msg.payload.is_empty() {
                    self.core.stats.dropped_messages += 1;
                    return Ok(());
                }
                let Message {
                    timestamp,
                    stream_id,
                    payload,
                    type_id,
                } = msg;
                self.events.push_back(if type_id == msg_type::AUDIO {
                    ServerEvent::Audio {
                        stream_id,
                        timestamp,
                        payload,
                    }
                } else {
                    ServerEvent::Video {
                        stream_id,
                        timestamp,
                        payload,
                    }
                });
            }
            msg_type::AGGREGATE if allow_aggregate => {
                for sub in split_aggregate(&msg)? {
                    self.on_message(sub, false)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn is_publishing(&self, stream_id: u32) -> bool {
        matches!(
            self.streams.get(&stream_id),
            Some(StreamState::Publishing(_))
        )
    }

    fn on_data(&mut self, msg: &Message) -> Result<(), RtmpError> {
        if !self.is_publishing(msg.stream_id) {
            self.core.stats.dropped_messages += 1;
            return Ok(());
        }
        let payload = if msg.type_id == msg_type::DATA_AMF3 {
            strip_amf3_marker(&msg.payload)
        } else {
            &msg.payload[..]
        };
        let mut d = Amf0Decoder::new(payload);
        let mut name = d.next_value()?;
        if name.as_ref().and_then(Amf0Value::as_str) == Some("@setDataFrame") {
            name = d.next_value()?;
        }
        if name.as_ref().and_then(Amf0Value::as_str) == Some("onMetaData") {
            let metadata = d.next_value()?.unwrap_or(Amf0Value::Null);
            self.events.push_back(ServerEvent::Metadata {
                stream_id: msg.stream_id,
                timestamp: msg.timestamp,
                metadata,
            });
        }
        Ok(())
    }

    fn on_command(&mut self, stream_id: u32, cmd: Command) -> Result<(), RtmpError> {
        if cmd.name == "connect" {
            return self.on_connect(cmd);
        }
        let Some(app) = self.app.clone() else {
            return Err(RtmpError::protocol(format!(
                "command {:?} before connect",
                cmd.name
            )));
        };
        let tx = cmd.transaction_id;
        match cmd.name.as_str() {
            "createStream" => {
                if self.streams.len() >= self.config.max_streams as usize {
                    let info = Amf0Value::object([
                        ("level", Amf0Value::string("error")),
                        ("code", Amf0Value::string("NetConnection.Call.Failed")),
                        ("description", Amf0Value::string("too many streams")),
                    ]);
                    return self
                        .core
                        .send_command(0, &Command::new("_error", tx, vec![info]));
                }
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.saturating_add(1);
                self.streams.insert(id, StreamState::Idle);
                self.core.send_command(
                    0,
                    &Command::new("_result", tx, vec![Amf0Value::Number(f64::from(id))]),
                )?;
            }
            "releaseStream" | "FCPublish" => {
                if tx != 0.0 {
                    self.core.send_command(
                        0,
                        &Command::new("_result", tx, vec![Amf0Value::Undefined]),
                    )?;
                }
            }
            "FCUnpublish" => {
                let stream_key = cmd.arg_str(0).unwrap_or_default().to_string();
                self.events
                    .push_back(ServerEvent::FcUnpublish { stream_key });
                if tx != 0.0 {
                    self.core.send_command(
                        0,
                        &Command::new("_result", tx, vec![Amf0Value::Undefined]),
                    )?;
                }
            }
            "publish" => self.on_publish(stream_id, app, &cmd)?,
            "play" => self.on_play(stream_id, app, &cmd)?,
            "closeStream" => {
                self.end_stream(stream_id, false);
                self.events
                    .push_back(ServerEvent::StreamClosed { stream_id });
            }
            "deleteStream" => {
                let target = cmd.arg_f64(0).and_then(number_to_u32).unwrap_or(stream_id);
                if self.streams.contains_key(&target) {
                    self.end_stream(target, true);
                    self.events
                        .push_back(ServerEvent::StreamDeleted { stream_id: target });
                }
            }
            _ => self.events.push_back(ServerEvent::UnhandledCommand {
                stream_id,
                name: cmd.name,
            }),
        }
        Ok(())
    }

    fn on_connect(&mut self, cmd: Command) -> Result<(), RtmpError> {
        if self.app.is_some() {
            return Err(RtmpError::protocol("second connect on one connection"));
        }
        let obj = &cmd.command_object;
        let app = obj
            .get("app")
            .and_then(Amf0Value::as_str)
            .unwrap_or_default()
            .trim_matches('/')
            .to_string();
        let tc_url = obj
            .get("tcUrl")
            .and_then(Amf0Value::as_str)
            .map(str::to_string);
        self.core
            .send_window_ack_size(self.config.window_ack_size)?;
        self.core.send_peer_bandwidth(self.config.peer_bandwidth)?;
        self.core.set_out_chunk_size(self.config.chunk_size)?;
        let props = Amf0Value::object([
            ("fmsVer", Amf0Value::string("FMS/3,0,1,123")),
            ("capabilities", Amf0Value::Number(31.0)),
        ]);
        let info = Amf0Value::object([
            ("level", Amf0Value::string("status")),
            ("code", Amf0Value::string("NetConnection.Connect.Success")),
            ("description", Amf0Value::string("Connection succeeded.")),
            ("objectEncoding", Amf0Value::Number(0.0)),
        ]);
        self.core.send_command(
            0,
            &Command {
                name: "_result".into(),
                transaction_id: cmd.transaction_id,
                command_object: props,
                args: vec![info],
            },
        )?;
        self.core
            .send_command(0, &Command::new("onBWDone", 0.0, vec![]))?;
        self.app = Some(app.clone());
        self.events.push_back(ServerEvent::Connected {
            app,
            tc_url,
            command_object: cmd.command_object,
        });
        Ok(())
    }

    fn check_stream_request(&mut self, stream_id: u32, what: &str) -> Result<bool, RtmpError> {
        match self.streams.get(&stream_id) {
            None => Err(RtmpError::protocol(format!(
                "{what} on stream {stream_id}, which was not created"
            ))),
            Some(StreamState::Idle) if self.pending.is_none() => Ok(true),
            Some(_) => Ok(false),
        }
    }

    fn on_publish(&mut self, stream_id: u32, app: String, cmd: &Command) -> Result<(), RtmpError> {
        let stream_key = cmd.arg_str(0).unwrap_or_default().to_string();
        let publish_type = cmd.arg_str(1).unwrap_or("live").to_string();
        if !self.check_stream_request(stream_id, "publish")? {
            return self.core.send_status(
                stream_id,
                "error",
                "NetStream.Publish.BadName",
                "A publish or play request is already active on this connection.",
            );
        }
        if stream_key.is_empty() {
            return self.core.send_status(
                stream_id,
                "error",
                "NetStream.Publish.BadName",
                "No stream key given.",
            );
        }
        self.pending = Some(Pending::Publish {
            stream_id,
            key: stream_key.clone(),
        });
        self.events.push_back(ServerEvent::PublishRequested {
            stream_id,
            app,
            stream_key,
            publish_type,
        });
        Ok(())
    }

    fn on_play(&mut self, stream_id: u32, app: String, cmd: &Command) -> Result<(), RtmpError> {
        let stream_name = cmd.arg_str(0).unwrap_or_default().to_string();
        let start = cmd.arg_f64(1).unwrap_or(-2.0);
        if !self.check_stream_request(stream_id, "play")? || stream_name.is_empty() {
            return self.core.send_status(
                stream_id,
                "error",
                "NetStream.Play.Failed",
                "Invalid play request.",
            );
        }
        self.pending = Some(Pending::Play {
            stream_id,
            name: stream_name.clone(),
        });
        self.events.push_back(ServerEvent::PlayRequested {
            stream_id,
            app,
            stream_name,
            start,
        });
        Ok(())
    }

    fn end_stream(&mut self, stream_id: u32, delete: bool) {
        if matches!(&self.pending, Some(Pending::Publish { stream_id: s, .. } | Pending::Play { stream_id: s, .. }) if *s == stream_id)
        {
            self.pending = None;
        }
        let old = if delete {
            self.streams.remove(&stream_id)
        } else {
            self.streams
                .get_mut(&stream_id)
                .map(|s| std::mem::replace(s, StreamState::Idle))
        };
        match old {
            Some(StreamState::Publishing(stream_key)) => {
                self.events.push_back(ServerEvent::PublishStopped {
                    stream_id,
                    stream_key,
                })
            }
            Some(StreamState::Playing(stream_name)) => {
                self.events.push_back(ServerEvent::PlayStopped {
                    stream_id,
                    stream_name,
                })
            }
            _ => {}
        }
    }

    /// Accepts the pending publish request: sends `NetStream.Publish.Start`; audio, video
    /// and metadata on that stream are reported from now on.
    pub fn accept_publish(&mut self) -> Result<(), RtmpError> {
        let Some(Pending::Publish { stream_id, key }) = self.pending.clone() else {
            return Err(RtmpError::InvalidState("no publish request pending"));
        };
        self.pending = None;
        self.streams
            .insert(stream_id, StreamState::Publishing(key.clone()));
        self.core.send_status(
            stream_id,
            "status",
            "NetStream.Publish.Start",
            &format!("{key} is now published."),
        )
    }

    /// Rejects the pending publish request with `NetStream.Publish.BadName` or
    /// `NetStream.Publish.Rejected` and `description`. The driver usually closes the
    /// connection once the answer is written.
    pub fn reject_publish(
        &mut self,
        reason: PublishRejection,
        description: &str,
    ) -> Result<(), RtmpError> {
        let Some(Pending::Publish { stream_id, .. }) = self.pending.clone() else {
            return Err(RtmpError::InvalidState("no publish request pending"));
        };
        self.pending = None;
        let code = match reason {
            PublishRejection::BadName => "NetStream.Publish.BadName",
            PublishRejection::Rejected => "NetStream.Publish.Rejected",
        };
        self.core.send_status(stream_id, "error", code, description)
    }

    /// Accepts the pending play request: Stream Begin, `NetStream.Play.Reset`,
    /// `NetStream.Play.Start`, `|RtmpSampleAccess` and `NetStream.Data.Start`. Media can
    /// then be sent with [`send_video`](Self::send_video) and friends.
    pub fn accept_play(&mut self) -> Result<(), RtmpError> {
        let Some(Pending::Play { stream_id, name }) = self.pending.clone() else {
            return Err(RtmpError::InvalidState("no play request pending"));
        };
        self.pending = None;
        self.streams
            .insert(stream_id, StreamState::Playing(name.clone()));
        self.core
            .send_user_control(UserControl::StreamBegin(stream_id))?;
        self.core.send_status(
            stream_id,
            "status",
            "NetStream.Play.Reset",
            &format!("Playing and resetting {name}."),
        )?;
        self.core.send_status(
            stream_id,
            "status",
            "NetStream.Play.Start",
            &format!("Started playing {name}."),
        )?;
        let access = Message::data(
            stream_id,
            0,
            &[
                Amf0Value::string("|RtmpSampleAccess"),
                Amf0Value::Boolean(true),
                Amf0Value::Boolean(true),
            ],
        )?;
        self.core.send(&access, csid::STREAM)?;
        let data_start = Message::data(
            stream_id,
            0,
            &[
                Amf0Value::string("onStatus"),
                Amf0Value::object([("code", Amf0Value::string("NetStream.Data.Start"))]),
            ],
        )?;
        self.core.send(&data_start, csid::STREAM)
    }

    /// Rejects the pending play request (`NetStream.Play.StreamNotFound` or
    /// `NetStream.Play.Failed`).
    pub fn reject_play(
        &mut self,
        reason: PlayRejection,
        description: &str,
    ) -> Result<(), RtmpError> {
        let Some(Pending::Play { stream_id, .. }) = self.pending.clone() else {
            return Err(RtmpError::InvalidState("no play request pending"));
        };
        self.pending = None;
        let code = match reason {
            PlayRejection::StreamNotFound => "NetStream.Play.StreamNotFound",
            PlayRejection::Failed => "NetStream.Play.Failed",
        };
        self.core.send_status(stream_id, "error", code, description)
    }

    fn playing(&self) -> Result<u32, RtmpError> {
        self.play_stream_id().ok_or(RtmpError::InvalidState(
            "no accepted play on this connection",
        ))
    }

    /// Sends a video message (an FLV video tag body) to the player.
    pub fn send_video(&mut self, timestamp: u32, payload: Bytes) -> Result<(), RtmpError> {
        let stream_id = self.playing()?;
        self.core.send(
            &Message {
                timestamp,
                type_id: msg_type::VIDEO,
                stream_id,
                payload,
            },
            csid::VIDEO,
        )
    }

    /// Sends an audio message (an FLV audio tag body) to the player.
    pub fn send_audio(&mut self, timestamp: u32, payload: Bytes) -> Result<(), RtmpError> {
        let stream_id = self.playing()?;
        self.core.send(
            &Message {
                timestamp,
                type_id: msg_type::AUDIO,
                stream_id,
                payload,
            },
            csid::AUDIO,
        )
    }

    /// Sends `onMetaData` with `metadata` to the player.
    pub fn send_metadata(&mut self, metadata: &Amf0Value) -> Result<(), RtmpError> {
        let stream_id = self.playing()?;
        let msg = Message::data(
            stream_id,
            0,
            &[Amf0Value::string("onMetaData"), metadata.clone()],
        )?;
        self.core.send(&msg, csid::STREAM)
    }

    /// Queues bytes already chunked by [`crate::encode_message`] with this session's
    /// [`out_chunk_size`](Self::out_chunk_size) and [`play_stream_id`](Self::play_stream_id)
    /// (encode once, send to many players).
    pub fn send_preencoded(&mut self, chunks: Bytes) -> Result<(), RtmpError> {
        self.playing()?;
        self.core.queue_raw(chunks, true);
        Ok(())
    }

    /// Tells the player the publication ended: `NetStream.Play.UnpublishNotify` and Stream
    /// EOF. The playback stays accepted (a new publication can resume it).
    pub fn notify_unpublished(&mut self) -> Result<(), RtmpError> {
        let stream_id = self.playing()?;
        self.core.send_status(
            stream_id,
            "status",
            "NetStream.Play.UnpublishNotify",
            "The stream is no longer published.",
        )?;
        self.core
            .send_user_control(UserControl::StreamEof(stream_id))
    }

    /// Sends a Ping Request; the answer is reported as [`ServerEvent::PingResponse`].
    pub fn send_ping(&mut self, timestamp: u32) -> Result<(), RtmpError> {
        self.core
            .send_user_control(UserControl::PingRequest(timestamp))
    }
}
