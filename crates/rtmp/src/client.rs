//! [`ClientSession`]: Lunora connecting out, to publish (restream to YouTube, nginx-rtmp,
//! ...) or to play (tests, pulls).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::amf0::{Amf0Decoder, Amf0Value};
use crate::chunk::ChunkLimits;
use crate::conn::{number_to_u32, status_info, ConnectionStats, Core};
use crate::handshake::{ClientHandshake, HandshakeMode};
use crate::message::{
    csid, msg_type, split_aggregate, strip_amf3_marker, Command, Message, UserControl,
};
use crate::RtmpError;

/// What the client does once connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRole {
    /// releaseStream, FCPublish, createStream, publish(`stream_key`, "live").
    Publish {
        /// The stream key.
        stream_key: String,
    },
    /// createStream, play(`stream_name`).
    Play {
        /// The stream name.
        stream_name: String,
    },
}

/// Settings of a [`ClientSession`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Application (path of the server URL, e.g. `live2` for YouTube).
    pub app: String,
    /// The server URL without the stream key (`rtmp://host/app`).
    pub tc_url: String,
    /// `flashVer` in the connect command.
    pub flash_ver: String,
    /// Enhanced RTMP `fourCcList` to announce (e.g. `["hvc1"]`); empty to omit.
    pub fourcc_list: Vec<String>,
    /// Outbound chunk size, announced right after the handshake (default 4096).
    pub chunk_size: u32,
    /// Window Acknowledgement Size announced to the server (default 2,500,000).
    pub window_ack_size: u32,
    /// Inbound memory bounds.
    pub limits: ChunkLimits,
    /// Use the digest (Flash Player 9) handshake (default true).
    pub digest_handshake: bool,
    /// Seed for handshake filler; the driver should pass random bytes.
    pub seed: [u8; 32],
    /// The C1 time field, in milliseconds.
    pub epoch: u32,
}

impl ClientConfig {
    /// Defaults for connecting to `tc_url` with application `app`.
    pub fn new(app: impl Into<String>, tc_url: impl Into<String>) -> Self {
        ClientConfig {
            app: app.into(),
            tc_url: tc_url.into(),
            flash_ver: "FMLE/3.0 (compatible; Lunora)".into(),
            fourcc_list: Vec::new(),
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            limits: ChunkLimits::default(),
            digest_handshake: true,
            seed: [0; 32],
            epoch: 0,
        }
    }
}

/// What a [`ClientSession`] reports to its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `connect` succeeded.
    Connected,
    /// `connect` failed (`_error`), e.g. `NetConnection.Connect.Rejected`.
    ConnectFailed {
        /// Status code.
        code: String,
        /// Server's description.
        description: String,
    },
    /// The server created our stream.
    StreamCreated {
        /// Message stream id.
        stream_id: u32,
    },
    /// `NetStream.Publish.Start`: media can be sent.
    PublishStarted {
        /// Message stream id.
        stream_id: u32,
    },
    /// Publishing was refused.
    PublishFailed {
        /// Status code (e.g. `NetStream.Publish.BadName`).
        code: String,
        /// Server's description.
        description: String,
        /// Whether the code means the stream key was refused (BadName, Rejected, Denied).
        key_rejected: bool,
    },
    /// `NetStream.Play.Start`.
    PlayStarted {
        /// Message stream id.
        stream_id: u32,
    },
    /// Playing was refused (`NetStream.Play.StreamNotFound`, `NetStream.Play.Failed`).
    PlayFailed {
        /// Status code.
        code: String,
        /// Server's description.
        description: String,
    },
    /// Any other `onStatus` (e.g. `NetStream.Play.Reset`, `NetStream.Play.UnpublishNotify`).
    Status {
        /// Message stream id.
        stream_id: u32,
        /// `status`, `warning` or `error`.
        level: String,
        /// Status code.
        code: String,
        /// Description.
        description: String,
    },
    /// `onMetaData` received while playing.
    Metadata {
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The metadata object.
        metadata: Amf0Value,
    },
    /// Audio received while playing.
    Audio {
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// FLV audio tag body.
        payload: Bytes,
    },
    /// Video received while playing.
    Video {
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// FLV video tag body.
        payload: Bytes,
    },
    /// User Control Stream Begin.
    StreamBegin {
        /// Message stream id.
        stream_id: u32,
    },
    /// User Control Stream EOF.
    StreamEof {
        /// Message stream id.
        stream_id: u32,
    },
    /// The server answered our Ping Request.
    PingResponse {
        /// The timestamp of our request.
        timestamp: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tx {
    Connect,
    CreateStream,
    Publish,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Connecting,
    Connected,
    CreatingStream,
    Requested(u32),
    Active(u32),
    Failed,
    Closed,
}

/// The client side of one RTMP connection, sans IO.
///
/// C0+C1 are queued on creation: drain [`poll_transmit`](Self::poll_transmit), feed what
/// the server sends to [`handle_input`](Self::handle_input), and watch
/// [`poll_event`](Self::poll_event). The connect / createStream / publish (or play) sequence
/// runs by itself.
#[derive(Debug, Clone)]
pub struct ClientSession {
    config: ClientConfig,
    role: ClientRole,
    core: Core,
    handshake: ClientHandshake,
    state: State,
    next_tx: u32,
    transactions: HashMap<u32, Tx>,
    events: VecDeque<ClientEvent>,
}

impl ClientSession {
    /// A client that will connect and then publish or play as `role` says.
    pub fn new(config: ClientConfig, role: ClientRole) -> Self {
        let mut handshake =
            ClientHandshake::new(config.seed, config.epoch, config.digest_handshake);
        let mut core = Core::new(config.limits);
        if let Some(c0c1) = handshake.start() {
            core.queue_raw(c0c1, false);
        }
        ClientSession {
            config,
            role,
            core,
            handshake,
            state: State::Handshaking,
            next_tx: 1,
            transactions: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// Processes received bytes. On error the connection should be closed; later calls
    /// return [`RtmpError::Closed`].
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

    fn handle_input_inner(&mut self, mut data: &[u8]) -> Result<(), RtmpError> {
        if !self.handshake.is_done() {
            let mut out = Vec::new();
            let used = self.handshake.handle(data, &mut out)?;
            for b in out {
                self.core.queue_raw(b, false);
            }
            data = &data[used..];
            if !self.handshake.is_done() {
                return Ok(());
            }
            self.send_connect()?;
        }
        if data.is_empty() {
            return Ok(());
        }
        self.core.receive(data);
        while let Some(msg) = self.core.next_message()? {
            self.on_message(msg, true)?;
        }
        self.core.maybe_ack()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
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

    /// The handshake mode the server answered with.
    pub fn handshake_mode(&self) -> HandshakeMode {
        self.handshake.mode()
    }

    /// Byte counters and acknowledgement state: compare
    /// [`ConnectionStats::unacknowledged_bytes`] with the window to tell whether the server
    /// still acknowledges.
    pub fn stats(&self) -> ConnectionStats {
        self.core.stats
    }

    /// Chunk-stream bytes handed out by `poll_transmit` so far.
    pub fn bytes_sent(&self) -> u64 {
        self.core.stats.bytes_sent
    }

    /// The server's last Acknowledgement sequence number.
    pub fn last_ack_sequence(&self) -> Option<u32> {
        self.core.stats.last_ack_received
    }

    /// Outbound chunk size (for [`crate::encode_message`] + `send_preencoded`).
    pub fn out_chunk_size(&self) -> u32 {
        self.core.out_chunk_size()
    }

    /// The message stream id once publishing or playing has started.
    pub fn stream_id(&self) -> Option<u32> {
        match self.state {
            State::Active(id) => Some(id),
            _ => None,
        }
    }

    fn tx(&mut self, kind: Tx) -> f64 {
        let id = self.next_tx;
        self.next_tx = self.next_tx.wrapping_add(1).max(1);
        if kind != Tx::Other {
            self.transactions.insert(id, kind);
        }
        f64::from(id)
    }

    fn send_connect(&mut self) -> Result<(), RtmpError> {
        self.core.set_out_chunk_size(self.config.chunk_size)?;
        self.core
            .send_window_ack_size(self.config.window_ack_size)?;
        let mut props = vec![
            (
                "app".to_string(),
                Amf0Value::string(self.config.app.clone()),
            ),
            ("type".to_string(), Amf0Value::string("nonprivate")),
            (
                "flashVer".to_string(),
                Amf0Value::string(self.config.flash_ver.clone()),
            ),
            (
                "tcUrl".to_string(),
                Amf0Value::string(self.config.tc_url.clone()),
            ),
        ];
        if matches!(self.role, ClientRole::Play { .. }) {
            props.extend([
                ("fpad".to_string(), Amf0Value::Boolean(false)),
                ("capabilities".to_string(), Amf0Value::Number(15.0)),
                ("audioCodecs".to_string(), Amf0Value::Number(4071.0)),
                ("videoCodecs".to_string(), Amf0Value::Number(252.0)),
                ("videoFunction".to_string(), Amf0Value::Number(1.0)),
            ]);
        }
        if !self.config.fourcc_list.is_empty() {
            props.push((
                "fourCcList".to_string(),
                Amf0Value::StrictArray(
                    self.config
                        .fourcc_list
                        .iter()
                        .map(|f| Amf0Value::string(f.clone()))
                        .collect(),
                ),
            ));
        }
        let tx = self.tx(Tx::Connect);
        self.core.send_command(
            0,
            &Command {
                name: "connect".into(),
                transaction_id: tx,
                command_object: Amf0Value::Object(props),
                args: vec![],
            },
        )?;
        self.state = State::Connecting;
        Ok(())
    }

    fn on_message(&mut self, msg: Message, allow_aggregate: bool) -> Result<(), RtmpError> {
        match msg.type_id {
            msg_type::USER_CONTROL => match UserControl::parse(&msg.payload)? {
                UserControl::PingResponse(timestamp) => self
                    .events
                    .push_back(ClientEvent::PingResponse { timestamp }),
                UserControl::StreamBegin(stream_id) => self
                    .events
                    .push_back(ClientEvent::StreamBegin { stream_id }),
                UserControl::StreamEof(stream_id) => {
                    self.events.push_back(ClientEvent::StreamEof { stream_id })
                }
                _ => {}
            },
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let cmd = Command::parse(&msg.payload, msg.type_id == msg_type::COMMAND_AMF3)?;
                self.on_command(msg.stream_id, cmd)?;
            }
            msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
                if !self.is_playing(msg.stream_id) {
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
                    self.events.push_back(ClientEvent::Metadata {
                        timestamp: msg.timestamp,
                        metadata,
                    });
                }
            }
            msg_type::AUDIO | msg_type::VIDEO => {
                if !self.is_playing(msg.stream_id) || msg.payload.is_empty() {
                    self.core.stats.dropped_messages += 1;
                    return Ok(());
                }
                self.events.push_back(if msg.type_id == msg_type::AUDIO {
                    ClientEvent::Audio {
                        timestamp: msg.timestamp,
                        payload: msg.payload,
                    }
                } else {
                    ClientEvent::Video {
                        timestamp: msg.timestamp,
                        payload: msg.payload,
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

    fn is_playing(&self, stream_id: u32) -> bool {
        matches!(self.role, ClientRole::Play { .. })
            && matches!(self.state, State::Active(id) | State::Requested(id) if id == stream_id)
    }

    fn on_command(&mut self, stream_id: u32, cmd: Command) -> Result<(), RtmpError> {
        match cmd.name.as_str() {
            "_result" | "_error" => {
                let is_error = cmd.name == "_error";
                let tx =
                    number_to_u32(cmd.transaction_id).and_then(|id| self.transactions.remove(&id));
                match tx {
                    Some(Tx::Connect) => self.on_connect_result(&cmd, is_error)?,
                    Some(Tx::CreateStream) => self.on_create_stream_result(&cmd, is_error)?,
                    Some(Tx::Publish) if is_error => {
                        let (_, code, description) = status_info(&cmd);
                        self.publish_failed(code, description);
                    }
                    _ => {}
                }
            }
            "onStatus" => self.on_status(stream_id, &cmd),
            _ => {}
        }
        Ok(())
    }

    fn on_connect_result(&mut self, cmd: &Command, is_error: bool) -> Result<(), RtmpError> {
        if is_error {
            let (_, code, description) = status_info(cmd);
            self.state = State::Failed;
            self.events
                .push_back(ClientEvent::ConnectFailed { code, description });
            return Ok(());
        }
        self.state = State::Connected;
        self.events.push_back(ClientEvent::Connected);
        if let ClientRole::Publish { stream_key } = &self.role {
            let key = Amf0Value::string(stream_key.clone());
            let tx = self.tx(Tx::Other);
            self.core
                .send_command(0, &Command::new("releaseStream", tx, vec![key.clone()]))?;
            let tx = self.tx(Tx::Other);
            self.core
                .send_command(0, &Command::new("FCPublish", tx, vec![key]))?;
        }
        let tx = self.tx(Tx::CreateStream);
        self.core
            .send_command(0, &Command::new("createStream", tx, vec![]))?;
        self.state = State::CreatingStream;
        Ok(())
    }

    fn on_create_stream_result(&mut self, cmd: &Command, is_error: bool) -> Result<(), RtmpError> {
        let stream_id = cmd.arg_f64(0).and_then(number_to_u32);
        let Some(stream_id) = stream_id.filter(|_| !is_error) else {
            let (_, code, description) = status_info(cmd);
            self.state = State::Failed;
            match self.role {
                ClientRole::Publish { .. } => self.publish_failed(code, description),
                ClientRole::Play { .. } => self
                    .events
                    .push_back(ClientEvent::PlayFailed { code, description }),
            }
            return Ok(());
        };
        self.events
            .push_back(ClientEvent::StreamCreated { stream_id });
        match self.role.clone() {
            ClientRole::Publish { stream_key } => {
                let tx = self.tx(Tx::Publish);
                self.core.send_command(
                    stream_id,
                    &Command::new(
                        "publish",
                        tx,
                        vec![Amf0Value::string(stream_key), Amf0Value::string("live")],
                    ),
                )?;
            }
            ClientRole::Play { stream_name } => {
                let tx = self.tx(Tx::Other);
                self.core.send_command(
                    stream_id,
                    &Command::new(
                        "play",
                        tx,
                        vec![Amf0Value::string(stream_name), Amf0Value::Number(-2.0)],
                    ),
                )?;
                self.core.send_user_control(UserControl::SetBufferLength {
                    stream_id,
                    buffer_ms: 1000,
                })?;
            }
        }
        self.state = State::Requested(stream_id);
        Ok(())
    }

    fn publish_failed(&mut self, code: String, description: String) {
        let key_rejected = matches!(
            code.as_str(),
            "NetStream.Publish.BadName" | "NetStream.Publish.Rejected" | "NetStream.Publish.Denied"
        );
        self.state = State::Failed;
        self.events.push_back(ClientEvent::PublishFailed {
            code,
            description,
            key_rejected,
        });
    }

    fn on_status(&mut self, stream_id: u32, cmd: &Command) {
        let (level, code, description) = status_info(cmd);
        let requested = matches!(self.state, State::Requested(id) if id == stream_id);
        match (&self.role, code.as_str()) {
            (ClientRole::Publish { .. }, "NetStream.Publish.Start") if requested => {
                self.state = State::Active(stream_id);
                self.events
                    .push_back(ClientEvent::PublishStarted { stream_id });
            }
            (ClientRole::Publish { .. }, c)
                if requested
                    && (level == "error"
                        || c.starts_with("NetStream.Publish.")
                            && c != "NetStream.Publish.Start") =>
            {
                self.publish_failed(code, description);
            }
            (ClientRole::Play { .. }, "NetStream.Play.Start") if requested => {
                self.state = State::Active(stream_id);
                self.events
                    .push_back(ClientEvent::PlayStarted { stream_id });
            }
            (ClientRole::Play { .. }, _) if requested && level == "error" => {
                self.state = State::Failed;
                self.events
                    .push_back(ClientEvent::PlayFailed { code, description });
            }
            _ => self.events.push_back(ClientEvent::Status {
                stream_id,
                level,
                code,
                description,
            }),
        }
    }

    fn publishing(&self) -> Result<u32, RtmpError> {
        match (&self.role, self.state) {
            (ClientRole::Publish { .. }, State::Active(id)) => Ok(id),
            _ => Err(RtmpError::InvalidState("not publishing")),
        }
    }

    /// Sends a video message (an FLV video tag body). Only after `PublishStarted`.
    pub fn send_video(&mut self, timestamp: u32, payload: Bytes) -> Result<(), RtmpError> {
        let stream_id = self.publishing()?;
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

    /// Sends an audio message (an FLV audio tag body). Only after `PublishStarted`.
    pub fn send_audio(&mut self, timestamp: u32, payload: Bytes) -> Result<(), RtmpError> {
        let stream_id = self.publishing()?;
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

    /// Sends `@setDataFrame onMetaData` with `metadata`. Only after `PublishStarted`.
    pub fn send_metadata(&mut self, metadata: &Amf0Value) -> Result<(), RtmpError> {
        let stream_id = self.publishing()?;
        let msg = Message::data(
            stream_id,
            0,
            &[
                Amf0Value::string("@setDataFrame"),
                Amf0Value::string("onMetaData"),
                metadata.clone(),
            ],
        )?;
        self.core.send(&msg, csid::STREAM)
    }

    /// Queues bytes already chunked by [`crate::encode_message`] with this session's
    /// [`out_chunk_size`](Self::out_chunk_size) and [`stream_id`](Self::stream_id).
    pub fn send_preencoded(&mut self, chunks: Bytes) -> Result<(), RtmpError> {
        self.publishing()?;
        self.core.queue_raw(chunks, true);
        Ok(())
    }

    /// Sends a Ping Request; the answer is reported as [`ClientEvent::PingResponse`].
    pub fn send_ping(&mut self, timestamp: u32) -> Result<(), RtmpError> {
        self.core
            .send_user_control(UserControl::PingRequest(timestamp))
    }

    /// Ends the publication or playback politely (FCUnpublish when publishing, then
    /// deleteStream). The driver closes the socket once the bytes are written.
    pub fn close(&mut self) -> Result<(), RtmpError> {
        let stream_id = match self.state {
            State::Active(id) | State::Requested(id) => id,
            _ => {
                self.state = State::Closed;
                return Ok(());
            }
        };
        if let ClientRole::Publish { stream_key } = &self.role {
            let key = Amf0Value::string(stream_key.clone());
            let tx = self.tx(Tx::Other);
            self.core
                .send_command(0, &Command::new("FCUnpublish", tx, vec![key]))?;
        }
        let tx = self.tx(Tx::Other);
        self.core.send_command(
            0,
            &Command::new(
                "deleteStream",
                tx,
                vec![Amf0Value::Number(f64::from(stream_id))],
            ),
        )?;
        self.state = State::Closed;
        Ok(())
    }
}
