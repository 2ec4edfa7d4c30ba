//! The RTMP server: one driver task per connection owns the socket, the timers and a sans-IO
//! [`ServerSession`]; publishers feed their channel's input, players subscribe to its bus.
//!
//! Whether a stream key may publish, and a player may watch, is decided by an [`Authorizer`]
//! the control plane provides (the engine knows nothing of the database).

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use lunora_rtmp::{
    PlayRejection, PublishRejection, RtmpError, ServerConfig, ServerEvent, ServerSession,
};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{sleep_until, Instant};
use uuid::Uuid;

use crate::channel::{AttachMode, AudioInfo, InputHandle, SendError, VideoInfo};
use crate::flv::{frame_from_audio, frame_from_video, TagError};
use crate::frame::{Codec, Frame, Track, WireForm};
use crate::wire_file::WireRegion;
use crate::{Engine, Subscription};

/// Boxed future returned by the [`Authorizer`].
pub type AuthFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A publish attempt to judge.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub app: String,
    /// The stream key without any `?query`.
    pub key: String,
    pub peer: SocketAddr,
}

/// Where an accepted publisher's media goes.
#[derive(Debug, Clone)]
pub struct PublishGrant {
    pub channel_id: Uuid,
    /// Input name within the channel (`primary`, `secondary`).
    pub input: String,
}

/// A play attempt to judge.
#[derive(Debug, Clone)]
pub struct PlayRequest {
    pub app: String,
    /// The stream name as sent, `?query` included (it may carry a play token).
    pub name: String,
    pub peer: SocketAddr,
}

/// A refusal, in words safe to send to the client and to log (never a secret).
#[derive(Debug, Clone)]
pub struct Denied(pub String);

/// Something the control plane may want to record.
#[derive(Debug, Clone)]
pub enum IngestEvent {
    PublishStarted {
        channel_id: Uuid,
        input: String,
        peer: SocketAddr,
    },
    PublishStopped {
        channel_id: Uuid,
        input: String,
        peer: SocketAddr,
        reason: String,
    },
}

/// The control plane's say on who may publish and play.
pub trait Authorizer: Send + Sync + 'static {
    fn authorize_publish(&self, req: PublishRequest) -> AuthFuture<Result<PublishGrant, Denied>>;
    fn authorize_play(&self, req: PlayRequest) -> AuthFuture<Result<Uuid, Denied>>;
    fn event(&self, _event: IngestEvent) {}
    /// Judges an SRT publisher (the key comes from its stream id; see
    /// [`crate::srt_server`]). Refused unless implemented.
    fn authorize_srt_publish(
        &self,
        _req: crate::srt_server::SrtPublishRequest,
    ) -> AuthFuture<Result<crate::srt_server::SrtGrant, Denied>> {
        crate::srt_server::srt_not_enabled()
    }
}

/// Limits of the RTMP server.
#[derive(Debug, Clone)]
pub struct RtmpServerConfig {
    /// Most concurrent connections; more are closed at once.
    pub max_connections: usize,
    /// Time a new connection has to finish the handshake and ask to publish or play.
    pub setup_timeout: Duration,
    /// A publisher that sends nothing for this long is disconnected.
    pub publisher_idle_timeout: Duration,
    /// Outbound chunk size.
    pub chunk_size: u32,
}

impl Default for RtmpServerConfig {
    fn default() -> Self {
        RtmpServerConfig {
            max_connections: 4096,
            setup_timeout: Duration::from_secs(10),
            publisher_idle_timeout: Duration::from_secs(30),
            chunk_size: 4096,
        }
    }
}

struct Ctx {
    engine: Arc<Engine>,
    auth: Arc<dyn Authorizer>,
    config: RtmpServerConfig,
    shutdown: watch::Receiver<bool>,
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    auth: Arc<dyn Authorizer>,
    config: RtmpServerConfig,
    shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let ctx = Arc::new(Ctx {
        engine,
        auth,
        config,
        shutdown: shutdown.clone(),
    });
    let mut shutdown = shutdown;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "RTMP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "RTMP connection refused: connection limit reached");
            drop(stream);
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let result = Connection::new(ctx, peer).run(stream).await;
            match result {
                Ok(()) => tracing::debug!(%peer, "RTMP connection closed"),
                Err(reason) => tracing::info!(%peer, %reason, "RTMP connection closed"),
            }
        });
    }
}

enum Role {
    Setup,
    Publishing {
        handle: InputHandle,
        grant: PublishGrant,
    },
    Playing {
        sub: Subscription,
        stream_id: u32,
        sent_config: bool,
        /// Video was sent: audio may wait for the next video frame (see [`HOLD_AUDIO`]).
        saw_video: bool,
        /// Audio frames queued but not written yet.
        held_audio: usize,
    },
}

struct Connection {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    session: ServerSession,
    role: Role,
    /// Set once a refusal was queued: flush and close.
    closing: Option<String>,
    warned_tag: bool,
}

impl Connection {
    fn new(ctx: Arc<Ctx>, peer: SocketAddr) -> Self {
        let mut seed = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut seed);
        let session = ServerSession::new(ServerConfig {
            chunk_size: ctx.config.chunk_size,
            seed,
            ..ServerConfig::default()
        });
        Connection {
            ctx,
            peer,
            session,
            role: Role::Setup,
            closing: None,
            warned_tag: false,
        }
    }

    async fn run(mut self, stream: TcpStream) -> Result<(), String> {
        let _ = stream.set_nodelay(true);
        // Set up once playing: the publisher's side then writes to this socket itself.
        let mut direct: Option<Arc<Direct>> = None;
        let mut direct_tried = false;
        let (mut rd, mut wr) = stream.into_split();
        let mut out = Outbox::default();
        // Created once, not per loop: a player wakes for every frame, and a fresh timer and
        // shutdown waiter each time cost more than the frame's own work.
        let mut shutdown = self.ctx.shutdown.clone();
        let shutdown = shutdown.changed();
        tokio::pin!(shutdown);
        let timer = sleep_until(Instant::now() + self.ctx.config.setup_timeout);
        let mut last_input = Instant::now();
        tokio::pin!(timer);
        let result = loop {
            let playing = matches!(self.role, Role::Playing { .. });
            let publishing = matches!(self.role, Role::Publishing { .. });
            let mut hold = false;
            tokio::select! {
                // Straight into the session's input buffer: no copy between two buffers.
                read = rd.read_buf(self.session.input_buffer(read_room(publishing))) => {
                    match read {
                        Ok(0) => break Ok(()),
                        Err(e) => break Err(format!("read failed: {e}")),
                        Ok(n) => {
                            if let Err(e) = self.session.handle_received(n) {
                                break Err(protocol_reason(&e));
                            }
                            if let Err(reason) = self.drain_events().await {
                                break Err(reason);
                            }
                            // The idle timer is moved when it fires, not on every read.
                            last_input = Instant::now();
                        }
                    }
                }
                _ = &mut timer, if !playing => {
                    let due = last_input + self.ctx.config.publisher_idle_timeout;
                    if publishing && due > Instant::now() {
                        timer.as_mut().reset(due);
                        continue;
                    }
                    break Err(if publishing {
                        "the publisher sent nothing for too long".to_string()
                    } else {
                        "the client did not start publishing or playing in time".to_string()
                    });
                }
                _ = taken_over(&direct), if direct.is_some() => {}
                frame = next_frame(&mut self.role), if playing => {
                    // Frames the publisher's side holds or left half-written go first.
                    self.take_over(&direct, &mut out);
                    match frame {
                        Some(frame) => match self.send_frames(frame, &mut out) {
                            Ok(h) => hold = h,
                            Err(e) => break Err(protocol_reason(&e)),
                        },
                        None => {
                            let _ = self.session.notify_unpublished();
                            self.closing = Some("the channel closed".into());
                        }
                    }
                }
                _ = &mut shutdown => break Err("server shutting down".to_string()),
            }
            self.take_over(&direct, &mut out);
            if !hold {
                if let Err(e) = out.flush(&mut self.session, &mut wr).await {
                    break Err(format!("write failed: {e}"));
                }
            }
            if let Role::Playing {
                sub,
                stream_id,
                saw_video,
                ..
            } = &self.role
            {
                if !direct_tried {
                    direct_tried = true;
                    // A second handle (dup) on the socket, made only for players.
                    let socket = {
                        use std::os::fd::AsFd;
                        let stream: &TcpStream = wr.as_ref();
                        stream.as_fd().try_clone_to_owned()
                    };
                    if let Ok(socket) = socket {
                        let d = Arc::new(Direct::new(
                            std::net::TcpStream::from(socket),
                            self.session.out_chunk_size(),
                            *stream_id,
                        ));
                        if sub.set_direct(d.clone()).is_ok() {
                            direct = Some(d);
                        }
                    }
                }
                // Nothing of ours waits: the publisher's side may write the next frames itself.
                if let Some(d) = &direct {
                    if !hold && out.is_empty() && !self.session.has_transmit() {
                        let hold_audio = *saw_video;
                        sub.when_idle(|| d.open(hold_audio));
                    }
                }
            }
            if let Some(reason) = self.closing.take() {
                break Err(reason);
            }
        };
        let _ = out.flush(&mut self.session, &mut wr).await;
        let _ = wr.shutdown().await;
        if let Role::Publishing { grant, .. } = &self.role {
            self.ctx.auth.event(IngestEvent::PublishStopped {
                channel_id: grant.channel_id,
                input: grant.input.clone(),
                peer: self.peer,
                reason: match &result {
                    Ok(()) => "the publisher disconnected".into(),
                    Err(r) => r.clone(),
                },
            });
        }
        result
    }

    async fn drain_events(&mut self) -> Result<(), String> {
        while let Some(event) = self.session.poll_event() {
            match event {
                ServerEvent::PublishRequested {
                    app, stream_key, ..
                } => self.on_publish(app, stream_key).await?,
                ServerEvent::PlayRequested {
                    app, stream_name, ..
                } => self.on_play(app, stream_name).await?,
                ServerEvent::Video {
                    timestamp, payload, ..
                } => self.on_media(frame_from_video(timestamp, payload))?,
                ServerEvent::Audio {
                    timestamp, payload, ..
                } => self.on_media(frame_from_audio(timestamp, payload))?,
                ServerEvent::PublishStopped { .. } | ServerEvent::FcUnpublish { .. } => {
                    if matches!(self.role, Role::Publishing { .. }) {
                        self.closing = Some("the publisher stopped publishing".into());
                    }
                }
                ServerEvent::PlayStopped { .. } => {
                    self.closing = Some("the player stopped playing".into());
                }
                ServerEvent::UnhandledCommand { name, .. } => {
                    tracing::debug!(peer = %self.peer, %name, "RTMP command ignored");
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn on_publish(&mut self, app: String, stream_key: String) -> Result<(), String> {
        if !matches!(self.role, Role::Setup) {
            let _ = self.session.reject_publish(
                PublishRejection::Rejected,
                "this connection is already in use",
            );
            return Ok(());
        }
        let key = stream_key.split('?').next().unwrap_or_default().to_string();
        let req = PublishRequest {
            app,
            key,
            peer: self.peer,
        };
        match self.ctx.auth.authorize_publish(req).await {
            Ok(grant) => {
                let channel = self
                    .ctx
                    .engine
                    .open_channel(grant.channel_id)
                    .map_err(|e| e.to_string())?;
                let handle = channel
                    .attach_input(&grant.input, AttachMode::Takeover)
                    .map_err(|e| e.to_string())?;
                self.session
                    .accept_publish()
                    .map_err(|e| protocol_reason(&e))?;
                tracing::info!(peer = %self.peer, channel = %grant.channel_id, input = %grant.input, "publishing");
                self.ctx.auth.event(IngestEvent::PublishStarted {
                    channel_id: grant.channel_id,
                    input: grant.input.clone(),
                    peer: self.peer,
                });
                self.role = Role::Publishing { handle, grant };
            }
            Err(Denied(reason)) => {
                tracing::warn!(peer = %self.peer, %reason, "RTMP publish refused");
                let _ = self
                    .session
                    .reject_publish(PublishRejection::BadName, &reason);
                self.closing = Some(format!("publish refused: {reason}"));
            }
        }
        Ok(())
    }

    async fn on_play(&mut self, app: String, name: String) -> Result<(), String> {
        if !matches!(self.role, Role::Setup) {
            let _ = self
                .session
                .reject_play(PlayRejection::Failed, "this connection is already in use");
            return Ok(());
        }
        let req = PlayRequest {
            app,
            name,
            peer: self.peer,
        };
        match self.ctx.auth.authorize_play(req).await {
            Ok(channel_id) => {
                let channel = self
                    .ctx
                    .engine
                    .open_channel(channel_id)
                    .map_err(|e| e.to_string())?;
                self.session
                    .accept_play()
                    .map_err(|e| protocol_reason(&e))?;
                let stream_id = self.session.play_stream_id().unwrap_or(1);
                tracing::info!(peer = %self.peer, channel = %channel_id, "playing");
                self.role = Role::Playing {
                    sub: channel.subscribe(),
                    stream_id,
                    sent_config: false,
                    saw_video: false,
                    held_audio: 0,
                };
            }
            Err(Denied(reason)) => {
                tracing::warn!(peer = %self.peer, %reason, "RTMP play refused");
                let _ = self
                    .session
                    .reject_play(PlayRejection::StreamNotFound, &reason);
                self.closing = Some(format!("play refused: {reason}"));
            }
        }
        Ok(())
    }

    fn on_media(&mut self, frame: Result<Option<Frame>, TagError>) -> Result<(), String> {
        let Role::Publishing { handle, .. } = &self.role else {
            return Ok(());
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => {
                if !self.warned_tag {
                    tracing::warn!(peer = %self.peer, error = %e, "dropping media the engine cannot use");
                    self.warned_tag = true;
                }
                return Ok(());
            }
        };
        if frame.config {
            learn_config(handle, &frame);
        }
        match handle.send(frame) {
            Ok(()) => Ok(()),
            Err(SendError::Replaced) => Err("another connection took over this input".into()),
            Err(SendError::ChannelClosed) => Err("the channel was closed".into()),
        }
    }

    /// Stops the publisher's side writing to this player and queues, first, what it left: the
    /// rest of a half-written frame and any audio it held back.
    fn take_over(&mut self, direct: &Option<Arc<Direct>>, out: &mut Outbox) {
        let Some(d) = direct else {
            return;
        };
        let held = d.close(out);
        if let Role::Playing { held_audio, .. } = &mut self.role {
            *held_audio += held;
        }
    }

    /// Queues `first` and every frame already waiting behind it (up to [`BATCH_FRAMES`]), so a
    /// player that fell behind by a few frames catches up with one write instead of one each.
    /// Answers true when everything queued is audio that may wait for the next video frame.
    fn send_frames(&mut self, first: Arc<Frame>, out: &mut Outbox) -> Result<bool, RtmpError> {
        let mut hold = self.send_frame(&first, out)?;
        for _ in 1..BATCH_FRAMES {
            let Role::Playing { sub, .. } = &mut self.role else {
                break;
            };
            match sub.try_recv() {
                Ok(frame) => {
                    let held = self.send_frame(&frame, out)?;
                    hold &= held;
                }
                Err(_) => break,
            }
        }
        if !hold {
            if let Role::Playing { held_audio, .. } = &mut self.role {
                *held_audio = 0;
            }
        }
        Ok(hold)
    }

    /// Queues one frame; answers true if it is audio that may wait for the next video frame.
    fn send_frame(&mut self, frame: &Arc<Frame>, out: &mut Outbox) -> Result<bool, RtmpError> {
        let hold = match &mut self.role {
            Role::Playing {
                saw_video,
                held_audio,
                ..
            } => {
                if frame.track == Track::Video && !frame.config {
                    *saw_video = true;
                }
                if *saw_video
                    && frame.track == Track::Audio
                    && !frame.config
                    && *held_audio < HOLD_AUDIO
                {
                    *held_audio += 1;
                    true
                } else {
                    *held_audio = 0;
                    false
                }
            }
            _ => false,
        };
        self.encode_frame(frame, out)?;
        Ok(hold)
    }

    /// Queues the frame's RTMP chunks: from shared memory when enough players send the same
    /// chunks (see [`WireCache::placed`](crate::frame::WireCache::placed)), else as bytes
    /// through the session.
    fn encode_frame(&mut self, frame: &Arc<Frame>, out: &mut Outbox) -> Result<(), RtmpError> {
        let Role::Playing {
            stream_id,
            sent_config,
            ..
        } = &mut self.role
        else {
            return Ok(());
        };
        if frame.config {
            *sent_config = true;
        }
        let stream_id = *stream_id;
        // Whatever the session queued before this frame goes first.
        out.take_from(&mut self.session);
        out.push_frame(frame, self.session.out_chunk_size(), stream_id);
        Ok(())
    }
}

/// A player's socket written on the publisher's side: the bus hands a frame straight to
/// [`DirectSink::deliver`] when the player has nothing queued, which writes it without blocking
/// (and without waking the player's task). Whatever cannot be written at once is left for the
/// task, which takes over ([`Direct::close`]) until its own queue and writes are done and then
/// opens this again ([`Direct::open`], only while the bus queue is empty).
///
/// Order is kept by one rule: frames go through here only while `open`, and `open` is set only
/// when the player's bus queue is empty and its task has nothing to write; declining a frame
/// (it is then queued) or leaving bytes behind closes it.
struct Direct {
    /// A second handle (`dup`) on the player's socket, non-blocking like the first.
    socket: std::net::TcpStream,
    chunk_size: u32,
    stream_id: u32,
    open: std::sync::atomic::AtomicBool,
    state: parking_lot::Mutex<DirectState>,
    /// Woken when this left bytes behind: the task takes over.
    wake_task: tokio::sync::Notify,
}

#[derive(Default)]
struct DirectState {
    /// Audio may wait for the next video frame (the stream has video).
    hold_audio: bool,
    /// Audio frames waiting for the next video frame.
    held: Vec<Arc<Frame>>,
    /// What a partial write left, for the task.
    leftover: Outbox,
}

impl Direct {
    fn new(socket: std::net::TcpStream, chunk_size: u32, stream_id: u32) -> Self {
        Direct {
            socket,
            chunk_size,
            stream_id,
            open: std::sync::atomic::AtomicBool::new(false),
            state: parking_lot::Mutex::new(DirectState::default()),
            wake_task: tokio::sync::Notify::new(),
        }
    }

    /// Lets the publisher's side write (call with the bus queue empty and locked).
    fn open(&self, hold_audio: bool) {
        self.state.lock().hold_audio = hold_audio;
        self.open.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Stops the publisher's side and moves what it left into `out`; answers how many held
    /// audio frames that was.
    fn close(&self, out: &mut Outbox) -> usize {
        self.open.store(false, std::sync::atomic::Ordering::Release);
        let mut st = self.state.lock();
        out.queue.extend(st.leftover.queue.drain(..));
        let held = st.held.len();
        for frame in st.held.drain(..) {
            out.push_frame(&frame, self.chunk_size, self.stream_id);
        }
        held
    }
}

impl crate::bus::DirectSink for Direct {
    fn deliver(&self, frame: &Arc<Frame>) -> bool {
        use std::sync::atomic::Ordering;
        if !self.open.load(Ordering::Acquire) {
            return false;
        }
        // Declined frames are queued; nothing may overtake them, so decline closes.
        let decline = || {
            self.open.store(false, Ordering::Release);
            false
        };
        if frame.config {
            return decline();
        }
        let Some(mut st) = self.state.try_lock() else {
            return decline();
        };
        // The task may have closed this between the check above and the lock.
        if !self.open.load(Ordering::Acquire) {
            return false;
        }
        if st.hold_audio && frame.track == Track::Audio && st.held.len() < HOLD_AUDIO {
            st.held.push(frame.clone());
            return true;
        }
        // The leftover outbox is empty while open: it is this write's buffer, kept between
        // frames, and holds what the socket does not take.
        let DirectState { held, leftover, .. } = &mut *st;
        for f in held.drain(..) {
            leftover.push_frame(&f, self.chunk_size, self.stream_id);
        }
        leftover.push_frame(frame, self.chunk_size, self.stream_id);
        // An error is the task's to find and report: it gets the bytes and writes them itself.
        let _ = leftover.write_now(&self.socket);
        if !leftover.is_empty() {
            self.open.store(false, Ordering::Release);
            self.wake_task.notify_one();
        }
        true
    }

    fn queued(&self) {
        self.open.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// Resolves when the publisher's side left bytes for the task.
async fn taken_over(direct: &Option<Arc<Direct>>) {
    match direct {
        Some(d) => d.wake_task.notified().await,
        None => std::future::pending().await,
    }
}

async fn next_frame(role: &mut Role) -> Option<Arc<Frame>> {
    match role {
        Role::Playing { sub, .. } => sub.recv().await,
        _ => std::future::pending().await,
    }
}

/// Room for one read from a connection: a publisher's media, or the few small messages of a
/// player or of a connection that has not said which it is (a player's buffer is kept for as
/// long as it plays, a thousand of them at once).
fn read_room(publishing: bool) -> usize {
    if publishing {
        64 * 1024
    } else {
        4096
    }
}

/// Most frames a player queues per wake-up; also bounds one vectored write.
const BATCH_FRAMES: usize = 32;
/// Audio frames (about 21 ms each) a player of a stream with video may hold back so they go
/// out in the same write as the next video frame. Audio is 60% of a stream's messages and 2%
/// of its bytes: one write per audio frame doubled the system calls (and the TCP segments and
/// wake-ups on the viewer's side) for nothing. Video is never held; audio waits at most this
/// many frames, and an audio-only stream is not held at all.
const HOLD_AUDIO: usize = 2;
/// Most buffers per `writev` (Linux allows 1024). A large frame is a chunk header and a slice
/// of its payload per 4096 bytes: a 200 KB keyframe is about 100 pieces.
const MAX_IOV: usize = 128;

/// What waits for the socket, written with as few system calls as possible.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<Pending>,
}

enum Pending {
    Bytes(Bytes),
    /// A frame's encoded pieces (shared with the other players), from `offset` of piece
    /// `part` on.
    Form {
        form: Arc<WireForm>,
        part: usize,
        offset: usize,
    },
    /// A frame placed in shared memory, sent without copying it.
    Region(WireRegion),
}

impl Outbox {
    /// Writes everything the session has to send: one vectored write for all queued buffers
    /// (chunk headers and payloads of several frames) rather than one write each, and one
    /// `sendfile` for each run of adjacent placed frames.
    async fn flush<W: Sink>(
        &mut self,
        session: &mut ServerSession,
        wr: &mut W,
    ) -> std::io::Result<()> {
        self.take_from(session);
        self.write_queued(wr).await
    }

    /// Queues what the session has to send.
    fn take_from(&mut self, session: &mut ServerSession) {
        while let Some(bytes) = session.poll_transmit() {
            self.queue.push_back(Pending::Bytes(bytes));
        }
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues a frame's RTMP chunks, encoded once for every peer with the same chunking: from
    /// shared memory once enough players take them (see
    /// [`WireCache::placed`](crate::frame::WireCache::placed)), else as the shared bytes.
    fn push_frame(&mut self, frame: &Arc<Frame>, chunk_size: u32, stream_id: u32) {
        // A codec configuration lives as long as the channel and would keep its whole segment
        // alive; it is sent once per player anyway.
        if !frame.config {
            let key = crate::push::wire_key(frame.track, chunk_size, stream_id);
            if let Some(region) = frame.wire_cache().placed(key) {
                self.push_region(region);
                return;
            }
        }
        let form = crate::push::encoded(frame, chunk_size, stream_id);
        if !form.is_empty() {
            self.queue.push_back(Pending::Form {
                form,
                part: 0,
                offset: 0,
            });
        }
    }

    /// Writes what the socket takes without blocking; what it does not take stays queued.
    fn write_now(&mut self, socket: &std::net::TcpStream) -> std::io::Result<()> {
        use std::io::Write;
        while let Some(front) = self.queue.front_mut() {
            let result = match front {
                Pending::Region(region) => {
                    #[cfg(target_os = "linux")]
                    {
                        use std::os::fd::AsFd;
                        match region.send_to(socket.as_fd()) {
                            Ok(n) => {
                                region.advance(n);
                                if region.is_empty() {
                                    self.queue.pop_front();
                                }
                                Ok(())
                            }
                            Err(e) => Err(e),
                        }
                    }
                    #[cfg(not(target_os = "linux"))]
                    {
                        let _ = region;
                        return Ok(());
                    }
                }
                Pending::Bytes(_) | Pending::Form { .. } => {
                    let mut slices = [IoSlice::new(&[]); MAX_IOV];
                    let count = self.gather(&mut slices);
                    let mut writer = socket;
                    match writer.write_vectored(&slices[..count]) {
                        Ok(0) => Err(std::io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            self.consume(n);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Fills `slices` with the leading run of queued bytes (up to a placed frame); answers
    /// how many.
    fn gather<'a>(&'a self, slices: &mut [IoSlice<'a>; MAX_IOV]) -> usize {
        let mut count = 0;
        'queue: for pending in &self.queue {
            match pending {
                Pending::Bytes(bytes) => {
                    if count == MAX_IOV {
                        break;
                    }
                    slices[count] = IoSlice::new(bytes);
                    count += 1;
                }
                Pending::Form { form, part, offset } => {
                    let mut skip = *offset;
                    for i in *part..form.piece_count() {
                        if count == MAX_IOV {
                            break 'queue;
                        }
                        slices[count] = IoSlice::new(&form.piece(i)[skip..]);
                        skip = 0;
                        count += 1;
                    }
                }
                Pending::Region(_) => break,
            }
        }
        count
    }

    /// Drops `n` written bytes from the leading run of queued bytes.
    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            match self.queue.front_mut() {
                Some(Pending::Bytes(front)) => {
                    if n >= front.len() {
                        n -= front.len();
                        self.queue.pop_front();
                    } else {
                        front.advance(n);
                        n = 0;
                    }
                }
                Some(Pending::Form { form, part, offset }) => {
                    while n > 0 && *part < form.piece_count() {
                        let left = form.piece(*part).len() - *offset;
                        if n >= left {
                            n -= left;
                            *part += 1;
                            *offset = 0;
                        } else {
                            *offset += n;
                            n = 0;
                        }
                    }
                    if *part >= form.piece_count() {
                        self.queue.pop_front();
                    }
                }
                _ => break,
            }
        }
    }

    /// Queues a placed frame, joined to the one before when they are adjacent in memory.
    fn push_region(&mut self, region: WireRegion) {
        if let Some(Pending::Region(last)) = self.queue.back_mut() {
            if last.try_extend(&region) {
                return;
            }
        }
        self.queue.push_back(Pending::Region(region));
    }

    async fn write_queued<W: Sink>(&mut self, wr: &mut W) -> std::io::Result<()> {
        while let Some(front) = self.queue.front_mut() {
            if let Pending::Region(region) = front {
                let n = wr.send_region(region).await?;
                region.advance(n);
                if region.is_empty() {
                    self.queue.pop_front();
                }
                continue;
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let count = self.gather(&mut slices);
            let n = wr.write_vectored(&slices[..count]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.consume(n);
        }
        Ok(())
    }
}

/// Where an [`Outbox`] writes: a stream that can also send a placed frame.
trait Sink: AsyncWrite + Unpin {
    /// Sends as much of `region` as the stream takes now (waiting until it takes some);
    /// answers how much.
    async fn send_region(&mut self, region: &WireRegion) -> std::io::Result<usize>;
}

impl Sink for OwnedWriteHalf {
    #[cfg(target_os = "linux")]
    async fn send_region(&mut self, region: &WireRegion) -> std::io::Result<usize> {
        use std::os::fd::AsFd;
        let stream: &TcpStream = self.as_ref();
        stream
            .async_io(Interest::WRITABLE, || region.send_to(stream.as_fd()))
            .await
    }

    #[cfg(not(target_os = "linux"))]
    async fn send_region(&mut self, region: &WireRegion) -> std::io::Result<usize> {
        let bytes = region.to_vec()?;
        self.write_all(&bytes).await?;
        Ok(bytes.len())
    }
}

fn protocol_reason(e: &RtmpError) -> String {
    format!("protocol error: {e}")
}

/// Reads resolution and audio format from a configuration frame into the channel status.
fn learn_config(handle: &InputHandle, frame: &Frame) {
    match frame.codec {
        Codec::H264 => {
            let sps = lunora_flv::AvcDecoderConfigurationRecord::parse(frame.data.clone())
                .and_then(|r| r.parse_sps());
            if let Ok(sps) = sps {
                handle.set_video_info(VideoInfo {
                    codec: Codec::H264,
                    width: sps.width,
                    height: sps.height,
                });
            }
        }
        Codec::Hevc => handle.set_video_info(VideoInfo {
            codec: Codec::Hevc,
            width: 0,
            height: 0,
        }),
        Codec::Aac => {
            if let Ok(asc) = lunora_flv::AudioSpecificConfig::parse(&frame.data) {
                handle.set_audio_info(AudioInfo {
                    codec: Codec::Aac,
                    sample_rate: asc.sampling_frequency,
                    channels: asc.channel_configuration,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn outbox_writes_every_byte_in_order_through_partial_writes() {
        // A pipe far smaller than what is queued: every vectored write is partial, and some
        // end inside a buffer.
        let (mut wr, mut rd) = tokio::io::duplex(7);
        let parts: Vec<Bytes> = (0..1000u32)
            .map(|i| Bytes::from(vec![i as u8; (i % 13) as usize + 1]))
            .collect();
        let mut expected = Vec::new();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            rd.read_to_end(&mut got).await.map(|_| got)
        });
        let mut out = Outbox::default();
        // Plain buffers and frames' pieces (some frames of more pieces than one write takes).
        let mut parts = parts.into_iter();
        let mut i = 0;
        while let Some(first) = parts.next() {
            i += 1;
            let pieces = i % 3 * (MAX_IOV / 2);
            if pieces == 0 {
                expected.extend_from_slice(&first);
                out.queue.push_back(Pending::Bytes(first));
                continue;
            }
            // A frame chunked around its payload (small chunks: many pieces).
            let data = Bytes::from(
                std::iter::once(first)
                    .chain(parts.by_ref().take(pieces))
                    .flat_map(|b| b.to_vec())
                    .collect::<Vec<u8>>(),
            );
            let (ts, prefix, chunk_size) = (i as u32, [0xAB; 3], (i % 7 + 1) as u32);
            let chunks =
                lunora_rtmp::encode_message_shared(ts, 9, 1, &prefix, &data, 6, chunk_size)
                    .unwrap();
            let form = WireForm::new(chunks);
            // What the copying encoder makes of the same message, not the form's own join.
            let mut copied = bytes::BytesMut::new();
            lunora_rtmp::encode_parts_into(&mut copied, ts, 9, 1, &[&prefix, &data], 6, chunk_size)
                .unwrap();
            expected.extend_from_slice(&copied);
            out.queue.push_back(Pending::Form {
                form: Arc::new(form),
                part: 0,
                offset: 0,
            });
        }
        out.write_queued(&mut wr).await.unwrap();
        assert!(out.queue.is_empty());
        drop(wr);
        assert_eq!(reader.await.unwrap().unwrap(), expected);
    }

    /// Lets every publisher in, on one channel.
    struct OpenDoor(Uuid);

    impl Authorizer for OpenDoor {
        fn authorize_publish(&self, _: PublishRequest) -> AuthFuture<Result<PublishGrant, Denied>> {
            let channel_id = self.0;
            Box::pin(async move {
                Ok(PublishGrant {
                    channel_id,
                    input: "primary".into(),
                })
            })
        }

        fn authorize_play(&self, _: PlayRequest) -> AuthFuture<Result<Uuid, Denied>> {
            Box::pin(async { Err(Denied("no players here".into())) })
        }
    }

    /// Publishes on a fresh connection, then sends an audio frame every `every` until `until`;
    /// answers how long the server kept the connection open after the last frame.
    async fn publish_and_go_quiet(addr: SocketAddr, every: Duration, until: Instant) -> Duration {
        use lunora_rtmp::{ClientConfig, ClientEvent, ClientRole, ClientSession};
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let mut client = ClientSession::new(
            ClientConfig::new("live", format!("rtmp://{addr}/live")),
            ClientRole::Publish {
                stream_key: "key".into(),
            },
        );
        let mut buf = vec![0u8; 64 * 1024];
        let mut publishing = false;
        let mut ts = 0;
        let mut last_sent = Instant::now();
        loop {
            while let Some(bytes) = client.poll_transmit() {
                if socket.write_all(&bytes).await.is_err() {
                    return last_sent.elapsed();
                }
            }
            while let Some(event) = client.poll_event() {
                if matches!(event, ClientEvent::PublishStarted { .. }) {
                    publishing = true;
                }
            }
            let sending = publishing && Instant::now() < until;
            let wait = if sending {
                every
            } else {
                Duration::from_secs(30)
            };
            tokio::select! {
                n = socket.read(&mut buf) => match n {
                    Ok(0) | Err(_) => return last_sent.elapsed(),
                    Ok(n) => client.handle_input(&buf[..n]).unwrap(),
                },
                _ = tokio::time::sleep(wait) => {
                    assert!(sending, "the server never closed the connection");
                    ts += 20;
                    client.send_audio(ts, Bytes::from_static(&[0xAF, 0x01, 0x21, 0x10])).unwrap();
                    last_sent = Instant::now();
                }
            }
        }
    }

    /// A publisher that keeps sending stays connected for longer than the idle timeout; once
    /// it goes quiet, it is disconnected after about the idle timeout, not before.
    #[tokio::test]
    async fn a_quiet_publisher_is_disconnected_after_the_idle_timeout_and_not_before() {
        let engine = Arc::new(Engine::new(crate::EngineConfig::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_stop, shutdown) = watch::channel(false);
        let idle = Duration::from_millis(600);
        let config = RtmpServerConfig {
            setup_timeout: Duration::from_millis(300),
            publisher_idle_timeout: idle,
            ..RtmpServerConfig::default()
        };
        tokio::spawn(serve(
            listener,
            engine,
            Arc::new(OpenDoor(Uuid::new_v4())),
            config,
            shutdown,
        ));
        let start = Instant::now();
        let open_after_last =
            publish_and_go_quiet(addr, Duration::from_millis(100), start + idle * 3).await;
        assert!(
            start.elapsed() >= idle * 3,
            "disconnected while sending, after {:?}",
            start.elapsed()
        );
        assert!(
            open_after_last >= idle,
            "disconnected {open_after_last:?} after the last frame, before the idle timeout"
        );
    }

    /// Both ends of a loopback TCP connection: (accepted, connecting).
    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await });
        let (server, _) = listener.accept().await.unwrap();
        (server, client.await.unwrap().unwrap())
    }

    impl Sink for tokio::io::DuplexStream {
        async fn send_region(&mut self, region: &WireRegion) -> std::io::Result<usize> {
            let bytes = region.to_vec()?;
            self.write_all(&bytes).await?;
            Ok(bytes.len())
        }
    }

    /// Placed frames and plain bytes, interleaved, through a real socket whose reader is
    /// slower than the writer: every byte arrives once and in order, and a placed frame's
    /// bytes are the ones it was placed with even after later frames were placed behind it.
    #[tokio::test]
    async fn outbox_sends_placed_frames_and_bytes_in_order_over_tcp() {
        let (server, mut rd) = tcp_pair().await;
        let (_keep, mut wr) = server.into_split();

        let mut out = Outbox::default();
        let mut expected = Vec::new();
        for i in 0..200u32 {
            let frame: Vec<u8> = (0..(1000 + i * 97)).map(|j| (i * 7 + j) as u8).collect();
            if i % 5 == 0 {
                let header = Bytes::from(vec![0xC0 | (i % 8) as u8; 11]);
                expected.extend_from_slice(&header);
                out.queue.push_back(Pending::Bytes(header));
            }
            expected.extend_from_slice(&frame);
            match crate::wire_file::place(&frame) {
                Some(region) => out.push_region(region),
                None => panic!("memfd is available on Linux"),
            }
        }
        let total = expected.len();
        let reader = tokio::spawn(async move {
            let mut got = Vec::with_capacity(total);
            let mut buf = [0u8; 3000];
            while got.len() < total {
                let n = rd.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                tokio::task::yield_now().await;
            }
            Ok::<_, std::io::Error>(got)
        });
        out.write_queued(&mut wr).await.unwrap();
        assert!(out.queue.is_empty());
        let got = reader.await.unwrap().unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ from what was queued");
    }

    /// The publisher's side writes a player's frames until the socket is full; the rest of the
    /// frame it was writing, and every frame after, reach the player through the task, in
    /// order and byte for byte. Held audio goes out with the next video frame, and a config
    /// frame is declined (it must be queued) and closes the direct path.
    #[tokio::test]
    async fn a_direct_write_the_socket_cannot_take_is_finished_by_the_task_in_order() {
        use crate::bus::DirectSink;
        use std::os::fd::AsFd;
        use std::sync::atomic::Ordering;

        let (server, mut rd) = tcp_pair().await;
        let socket = std::net::TcpStream::from(server.as_fd().try_clone_to_owned().unwrap());
        let (_keep, mut wr) = server.into_split();
        let d = Direct::new(socket, 4096, 1);

        let mut expected = Vec::new();
        let audio = |i: i64| Arc::new(Frame::audio(i * 1920, Bytes::from(vec![0xA0; 300])));
        let video = |i: i64| {
            let data: Vec<u8> = (0..20_000).map(|j| (i * 31 + j) as u8).collect();
            let f = Arc::new(Frame::video(
                Codec::H264,
                i % 30 == 0,
                i * 3000,
                i * 3000,
                data.into(),
            ));
            // Every other frame as if other players had taken it: sent from shared memory.
            if i % 2 == 0 {
                crate::push::encoded(&f, 4096, 1);
                let key = crate::push::wire_key(Track::Video, 4096, 1);
                for _ in 0..crate::frame::PLACE_AFTER {
                    let _ = f.wire_cache().placed(key);
                }
            }
            f
        };
        let wire = |f: &Arc<Frame>| crate::push::encoded(f, 4096, 1).bytes();

        // Held audio waits for the next video frame.
        d.open(true);
        let (a, v) = (audio(0), video(0));
        assert!(d.deliver(&a));
        assert!(d.state.lock().held.len() == 1, "audio held, not written");
        assert!(d.deliver(&v));
        expected.extend_from_slice(&wire(&a));
        expected.extend_from_slice(&wire(&v));

        // A config frame is declined and closes the path: it will be queued.
        let config = Arc::new(Frame::video_config(
            Codec::H264,
            Bytes::from_static(b"avcC"),
        ));
        assert!(!d.deliver(&config));
        assert!(!d.open.load(Ordering::Acquire));
        let mut out = Outbox::default();
        assert_eq!(d.close(&mut out), 0);
        out.push_frame(&config, 4096, 1);
        expected.extend_from_slice(&wire(&config));
        out.write_queued(&mut wr).await.unwrap();

        // Video until the socket is full (nobody reads): the path closes itself.
        d.open(false);
        let mut i = 1;
        while d.open.load(Ordering::Acquire) {
            let f = video(i);
            assert!(d.deliver(&f), "taken while open");
            expected.extend_from_slice(&wire(&f));
            i += 1;
            assert!(i < 10_000, "the socket never filled");
        }
        let mut out = Outbox::default();
        d.close(&mut out);
        assert!(!out.is_empty(), "a partial write left the rest of a frame");
        for j in i..i + 50 {
            let f = video(j);
            out.push_frame(&f, 4096, 1);
            expected.extend_from_slice(&wire(&f));
        }
        let total = expected.len();
        let reader = tokio::spawn(async move {
            let mut got = Vec::with_capacity(total);
            let mut buf = vec![0u8; 64 * 1024];
            while got.len() < total {
                let n = rd.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            Ok::<_, std::io::Error>(got)
        });
        out.write_queued(&mut wr).await.unwrap();
        let got = reader.await.unwrap().unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the player got other bytes than were sent");
    }
}
