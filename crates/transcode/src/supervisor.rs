//! Runs one FFmpeg encode and keeps it running.
//!
//! A [`Supervisor`] owns a task that spawns FFmpeg in its own process group, feeds its
//! stdin from a bounded queue, hands its stdout back in bounded chunks, parses its stderr
//! into [`Event`]s, and restarts it after an unexpected exit with exponential backoff and
//! jitter. What it is doing is published on a [`watch`] channel as a [`Status`]; counters
//! and the last progress report as [`Metrics`].
//!
//! Failures that a restart cannot fix end in [`Status::Failed`] at once, in words a person
//! understands: FFmpeg missing ("FFmpeg is not installed or not on PATH"), an encoder this
//! build lacks ("this FFmpeg lacks the libx265 encoder"), a codec its FLV muxer cannot
//! carry, a command line it does not understand.
//!
//! ## Feeding
//!
//! [`Pipes::input`] is a bounded queue: the caller uses `try_send` and, when it is full,
//! skips to its next keyframe (the supervisor never grows memory for a slow FFmpeg).
//! Two ways to feed:
//!
//! - **A whole FLV stream** (no preamble set): the bytes go to FFmpeg as they come. After a
//!   restart the new process gets whatever comes next, so this suits files and tests.
//! - **Live tags** ([`Supervisor::set_preamble`] with the FLV header, metadata and codec
//!   sequence headers): each chunk must hold whole FLV tags (tag header, body, previous
//!   tag size). Every process gets the current preamble first, then chunks starting from
//!   the first one that begins with a video keyframe tag; so a restart resumes cleanly.
//!
//! ## Output
//!
//! [`Pipes::output`] yields FFmpeg's stdout (FLV) in chunks of at most 64 KiB. Each process's
//! output is preceded by an empty chunk (the boundary marker: a reader starts a new FLV
//! stream there) and starts with a fresh FLV header; the restart also shows in the status.
//! The queue is bounded and the supervisor waits for room (FLV cannot lose bytes), which
//! backs pressure up to FFmpeg and then to [`Pipes::input`].

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::args::ffmpeg_args;
use crate::preset::Preset;
use crate::progress::{classify_error, Event, Progress, ProgressParser};

/// Longest stderr line kept; longer ones are cut.
const MAX_LINE: usize = 8 * 1024;
/// Size of one stdout read.
const OUTPUT_CHUNK: usize = 64 * 1024;
/// How long to wait for stderr/stdout to drain after the process exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Restart delays: `initial * 2^(attempt-1)`, capped at `max`, minus up to `jitter` of it
/// at random so restarts of many encodes do not fall in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// Fraction (0..=1) of the delay that may be taken off at random.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 0.5 s, 1 s, 2 s, ... up to 30 s, with 25 % jitter.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// The delay before restart `attempt` (1 for the first restart); `random` in 0..=1.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let base = self
            .initial
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max);
        let cut = self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        base.mul_f64(1.0 - cut)
    }
}

/// How to run one encode.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// The FFmpeg binary: a name looked up on `PATH` (default `ffmpeg`) or a path.
    pub program: PathBuf,
    /// Arguments after the program name; see [`crate::args::ffmpeg_args`].
    pub args: Vec<String>,
    /// Chunks [`Pipes::input`] holds before `try_send` fails.
    pub input_capacity: usize,
    /// Chunks [`Pipes::output`] holds before the supervisor stops reading FFmpeg.
    pub output_capacity: usize,
    pub backoff: Backoff,
    /// A process that ran at least this long restarts with the backoff reset to its start.
    pub stable_after: Duration,
    /// Give up ([`Status::Failed`]) after this many consecutive failed starts; `None`
    /// restarts for ever (the backoff keeps it slow).
    pub max_attempts: Option<u32>,
    /// Names the encode in logs (e.g. the preset's encoding key).
    pub label: String,
    /// Secrets in the arguments (a password in a pull URL): replaced by `****` in whatever
    /// FFmpeg says before it reaches a log, the status or the metrics.
    pub redact: Vec<String>,
}

impl SupervisorConfig {
    /// Runs `ffmpeg` from `PATH` with `args` and default limits.
    pub fn new(args: Vec<String>) -> Self {
        Self {
            program: PathBuf::from("ffmpeg"),
            args,
            input_capacity: 512,
            output_capacity: 256,
            backoff: Backoff::default(),
            stable_after: Duration::from_secs(30),
            max_attempts: None,
            label: String::new(),
            redact: Vec::new(),
        }
    }

    /// The encode for `preset` ([`ffmpeg_args`]), labelled with its encoding key.
    pub fn for_preset(preset: &Preset) -> Self {
        Self {
            label: preset.encoding_key().to_string(),
            ..Self::new(ffmpeg_args(preset))
        }
    }
}

/// What the supervisor is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    /// FFmpeg is spawned and has not reported progress yet (it waits for input).
    Starting,
    /// FFmpeg reports progress.
    Running,
    /// FFmpeg exited unexpectedly; it is started again after a backoff.
    Restarting { attempt: u32, last_error: String },
    /// Given up: restarting cannot help. `error` is meant for a person.
    Failed { error: String },
    /// Stopped on request, or the input ended and FFmpeg finished.
    Stopped,
}

impl Status {
    /// No process will run any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Status::Failed { .. } | Status::Stopped)
    }
}

/// Counters and the latest progress report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// The running FFmpeg's process id (also its process group id).
    pub pid: Option<u32>,
    /// Restarts after unexpected exits, over the supervisor's life.
    pub restarts: u64,
    /// The current process's latest progress report.
    pub progress: Option<Progress>,
    /// The latest error FFmpeg logged or the supervisor saw.
    pub last_error: Option<String>,
    /// Bytes written to FFmpeg's stdin (preambles included).
    pub bytes_in: u64,
    /// Bytes read from FFmpeg's stdout.
    pub bytes_out: u64,
    /// Input chunks skipped while waiting for a keyframe after a (re)start.
    pub chunks_skipped: u64,
}

/// The caller's ends of the encode.
#[derive(Debug)]
pub struct Pipes {
    /// Bytes for FFmpeg's stdin. Dropping every sender closes stdin: FFmpeg finishes and
    /// the supervisor ends with [`Status::Stopped`].
    pub input: mpsc::Sender<Bytes>,
    /// FFmpeg's stdout. Ends when the supervisor ends. An empty chunk comes before each
    /// process's output (the first one's too): what follows is a new FLV stream.
    pub output: mpsc::Receiver<Bytes>,
}

/// A supervised FFmpeg process; see the module documentation. Dropping it kills the
/// process group at once.
#[derive(Debug)]
pub struct Supervisor {
    status: watch::Receiver<Status>,
    metrics: watch::Receiver<Metrics>,
    preamble: watch::Sender<Bytes>,
    stop: watch::Sender<Option<Duration>>,
    pid: Arc<AtomicI32>,
    task: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts supervising at once. Must be called within a tokio runtime.
    pub fn start(config: SupervisorConfig) -> (Supervisor, Pipes) {
        let (input_tx, input_rx) = mpsc::channel(config.input_capacity.max(1));
        let (output_tx, output_rx) = mpsc::channel(config.output_capacity.max(1));
        let (status_tx, status_rx) = watch::channel(Status::Starting);
        let (metrics_tx, metrics_rx) = watch::channel(Metrics::default());
        let (preamble_tx, preamble_rx) = watch::channel(Bytes::new());
        let (stop_tx, stop_rx) = watch::channel(None);
        let pid = Arc::new(AtomicI32::new(0));
        let ctx = Ctx {
            config,
            input: input_rx,
            input_closed: false,
            output: output_tx,
            status: Arc::new(status_tx),
            metrics: Arc::new(metrics_tx),
            preamble: preamble_rx,
            stop: stop_rx,
            pid: pid.clone(),
            rng: seed(),
        };
        let task = tokio::spawn(ctx.run());
        let supervisor = Supervisor {
            status: status_rx,
            metrics: metrics_rx,
            preamble: preamble_tx,
            stop: stop_tx,
            pid,
            task: Some(task),
        };
        let pipes = Pipes {
            input: input_tx,
            output: output_rx,
        };
        (supervisor, pipes)
    }

    /// Follows the status.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Follows the metrics (changes on each progress report, error and restart).
    pub fn metrics(&self) -> watch::Receiver<Metrics> {
        self.metrics.clone()
    }

    /// The running FFmpeg's process id.
    pub fn pid(&self) -> Option<u32> {
        u32::try_from(self.pid.load(Ordering::SeqCst))
            .ok()
            .filter(|p| *p > 0)
    }

    /// Sets the bytes every FFmpeg process gets before any input (live-tags mode; see the
    /// module documentation). A process keeps the preamble it had at its first input
    /// chunk; set it before feeding, and again whenever the codec configuration changes
    /// (the next restart picks it up).
    pub fn set_preamble(&self, preamble: Bytes) {
        self.preamble.send_replace(preamble);
    }

    /// Stops gracefully: closes FFmpeg's stdin so it finishes its output, waits up to
    /// `grace`, then kills its process group. Returns the final status.
    pub async fn stop(mut self, grace: Duration) -> Status {
        self.stop.send_replace(Some(grace));
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "FFmpeg supervisor task failed");
            }
        }
        let status = self.status.borrow().clone();
        status
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            kill_group(&self.pid);
            task.abort();
        }
    }
}

/// SIGKILLs the process group whose leader's pid is stored in `pid`, if any.
fn kill_group(pid: &AtomicI32) {
    let pid = pid.load(Ordering::SeqCst);
    if pid > 0 {
        if let Err(e) = killpg(Pid::from_raw(pid), Signal::SIGKILL) {
            if e != nix::errno::Errno::ESRCH {
                tracing::warn!(pid, error = %e, "could not kill FFmpeg's process group");
            }
        }
    }
}

/// How one process run ended.
enum Outcome {
    /// Stop was requested.
    Stopped,
    /// The input ended and FFmpeg finished.
    Finished,
    /// Restarting cannot help.
    Fatal(String),
    /// Restart after a backoff.
    Crashed { error: String, ran_for: Duration },
}

/// The supervisor task's state.
struct Ctx {
    config: SupervisorConfig,
    input: mpsc::Receiver<Bytes>,
    input_closed: bool,
    output: mpsc::Sender<Bytes>,
    status: Arc<watch::Sender<Status>>,
    metrics: Arc<watch::Sender<Metrics>>,
    preamble: watch::Receiver<Bytes>,
    stop: watch::Receiver<Option<Duration>>,
    pid: Arc<AtomicI32>,
    rng: u64,
}

impl Ctx {
    async fn run(mut self) {
        let label = self.config.label.clone();
        let mut attempt: u32 = 0;
        loop {
            if self.stop.borrow().is_some() {
                return self.finish(Status::Stopped);
            }
            self.status.send_replace(Status::Starting);
            let outcome = match self.spawn() {
                Ok(child) => self.run_once(child).await,
                Err(e) => spawn_failure(&self.config.program, &e),
            };
            let (error, ran_for) = match outcome {
                Outcome::Stopped | Outcome::Finished => return self.finish(Status::Stopped),
                Outcome::Fatal(error) => {
                    tracing::error!(encode = %label, %error, "FFmpeg failed; not restarting");
                    return self.finish(Status::Failed { error });
                }
                Outcome::Crashed { error, ran_for } => (error, ran_for),
            };
            if ran_for >= self.config.stable_after {
                attempt = 0;
            }
            attempt = attempt.saturating_add(1);
            if let Some(max) = self.config.max_attempts {
                if attempt > max {
                    let error = format!("FFmpeg failed {max} times in a row; last error: {error}");
                    tracing::error!(encode = %label, %error, "giving up");
                    return self.finish(Status::Failed { error });
                }
            }
            let random = self.random();
            let delay = self.config.backoff.delay(attempt, random);
            tracing::warn!(
                encode = %label, attempt, %error, delay_ms = delay.as_millis() as u64,
                "FFmpeg exited unexpectedly; restarting"
            );
            self.metrics.send_modify(|m| {
                m.restarts += 1;
                m.last_error = Some(error.clone());
            });
            self.status.send_replace(Status::Restarting {
                attempt,
                last_error: error,
            });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop_requested(&mut self.stop) => return self.finish(Status::Stopped),
            }
        }
    }

    fn finish(&self, status: Status) {
        if let Status::Failed { error } = &status {
            self.metrics
                .send_modify(|m| m.last_error = Some(error.clone()));
        }
        self.status.send_replace(status);
    }

    fn spawn(&self) -> io::Result<Child> {
        let mut cmd = std::process::Command::new(&self.config.program);
        cmd.args(&self.config.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("AV_LOG_FORCE_NOCOLOR", "1")
            .process_group(0);
        let mut cmd = Command::from(cmd);
        cmd.kill_on_drop(true);
        cmd.spawn()
    }

    async fn run_once(&mut self, mut child: Child) -> Outcome {
        let started = Instant::now();
        let pid = child.id().unwrap_or(0);
        self.pid
            .store(i32::try_from(pid).unwrap_or(0), Ordering::SeqCst);
        self.metrics.send_modify(|m| {
            m.pid = Some(pid);
            m.progress = None;
        });
        tracing::info!(encode = %self.config.label, pid, "FFmpeg started");

        let stdout_task = child
            .stdout
            .take()
            .map(|out| tokio::spawn(pump_stdout(out, self.output.clone(), self.metrics.clone())));
        let stderr_task = child.stderr.take().map(|err| {
            tokio::spawn(pump_stderr(
                err,
                self.status.clone(),
                self.metrics.clone(),
                self.config.redact.clone(),
            ))
        });
        let mut stdin = child.stdin.take();
        let mut feed = Feed::default();
        let mut wrote_any = false;
        let mut stopping = false;

        let exit = loop {
            tokio::select! {
                grace = stop_requested(&mut self.stop) => {
                    stopping = true;
                    break shutdown(&mut child, stdin.take(), grace, &self.pid).await;
                }
                status = child.wait() => break status,
                chunk = self.input.recv(), if stdin.is_some() => {
                    let Some(chunk) = chunk else {
                        // Every sender is gone: close stdin so FFmpeg finishes.
                        self.input_closed = true;
                        stdin = None;
                        continue;
                    };
                    let preamble = self.preamble.borrow().clone();
                    let writes = feed.prepare(chunk, &preamble);
                    if writes.is_empty() {
                        self.metrics.send_if_modified(|m| {
                            m.chunks_skipped += 1;
                            false
                        });
                        continue;
                    }
                    let Some(pipe) = stdin.as_mut() else { continue };
                    tokio::select! {
                        result = write_all(pipe, &writes) => match result {
                            Ok(n) => {
                                wrote_any = true;
                                self.metrics.send_if_modified(|m| {
                                    m.bytes_in += n;
                                    false
                                });
                            }
                            Err(e) => {
                                // Broken pipe: FFmpeg is exiting; its exit tells why.
                                tracing::debug!(error = %e, "writing to FFmpeg failed");
                                stdin = None;
                            }
                        },
                        grace = stop_requested(&mut self.stop) => {
                            stopping = true;
                            break shutdown(&mut child, stdin.take(), grace, &self.pid).await;
                        }
                        status = child.wait() => break status,
                    }
                }
            }
        };
        self.pid.store(0, Ordering::SeqCst);

        let summary = match stderr_task {
            Some(task) => match tokio::time::timeout(DRAIN_TIMEOUT, task).await {
                Ok(Ok(summary)) => summary,
                _ => StderrSummary::default(),
            },
            None => StderrSummary::default(),
        };
        if let Some(task) = stdout_task {
            drain(task).await;
        }
        self.metrics.send_modify(|m| m.pid = None);

        if stopping {
            return Outcome::Stopped;
        }
        let exit = match exit {
            Ok(exit) => exit,
            Err(e) => {
                return Outcome::Crashed {
                    error: format!("could not wait for FFmpeg: {e}"),
                    ran_for: started.elapsed(),
                }
            }
        };
        if let Some(fatal) = summary.fatal {
            return Outcome::Fatal(fatal.message());
        }
        if self.input_closed && (exit.success() || !wrote_any) {
            return Outcome::Finished;
        }
        let error = describe_exit(exit, summary.last_error.as_deref());
        if self.input_closed {
            // The input is over; a new process would have nothing to encode.
            return Outcome::Fatal(error);
        }
        Outcome::Crashed {
            error,
            ran_for: started.elapsed(),
        }
    }

    /// A number in 0..=1 (xorshift64*; jitter needs no better).
    fn random(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let x = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

/// Waits for a stop request; returns its grace period. A dropped [`Supervisor`] counts as
/// a stop without grace.
async fn stop_requested(stop: &mut watch::Receiver<Option<Duration>>) -> Duration {
    match stop.wait_for(Option::is_some).await {
        Ok(grace) => grace.unwrap_or_default(),
        Err(_) => Duration::ZERO,
    }
}

/// Closes stdin, waits up to `grace` for FFmpeg to finish, then kills its group.
async fn shutdown(
    child: &mut Child,
    stdin: Option<ChildStdin>,
    grace: Duration,
    pid: &AtomicI32,
) -> io::Result<ExitStatus> {
    drop(stdin);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            tracing::info!("FFmpeg did not finish in time; killing it");
            kill_group(pid);
            child.wait().await
        }
    }
}

async fn write_all(pipe: &mut ChildStdin, writes: &[Bytes]) -> io::Result<u64> {
    let mut n = 0;
    for bytes in writes {
        pipe.write_all(bytes).await?;
        n += bytes.len() as u64;
    }
    Ok(n)
}

/// Waits a bounded time for the stdout pump to pass on FFmpeg's last bytes.
async fn drain(task: JoinHandle<()>) {
    let abort = task.abort_handle();
    if tokio::time::timeout(DRAIN_TIMEOUT, task).await.is_err() {
        // The consumer is not reading; what is left of this process's output is dropped.
        abort.abort();
    }
}

fn spawn_failure(program: &Path, e: &io::Error) -> Outcome {
    let shown = program.display();
    let bare_name = !program.to_string_lossy().contains('/');
    match e.kind() {
        io::ErrorKind::NotFound if bare_name => Outcome::Fatal(format!(
            "FFmpeg is not installed or not on PATH (looked for `{shown}`)"
        )),
        io::ErrorKind::NotFound => Outcome::Fatal(format!("FFmpeg is not installed at {shown}")),
        io::ErrorKind::PermissionDenied => Outcome::Fatal(format!(
            "FFmpeg at {shown} cannot be run: permission denied"
        )),
        _ => Outcome::Crashed {
            error: format!("could not start FFmpeg ({shown}): {e}"),
            ran_for: Duration::ZERO,
        },
    }
}

fn describe_exit(exit: ExitStatus, last_error: Option<&str>) -> String {
    let what = if let Some(signal) = exit.signal() {
        let name = Signal::try_from(signal)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| "unknown signal".into());
        format!("FFmpeg was killed by signal {signal} ({name})")
    } else if let Some(code) = exit.code().filter(|c| *c != 0) {
        format!("FFmpeg exited with code {code}")
    } else {
        "FFmpeg exited before its input ended".to_string()
    };
    match last_error {
        Some(error) => format!("{what}: {error}"),
        None => what,
    }
}

/// Per-process input state: the preamble this process gets (fixed at its first chunk),
/// and whether its first keyframe has been found.
#[derive(Default)]
struct Feed {
    preamble: Option<Bytes>,
    synced: bool,
}

impl Feed {
    /// What to write for `chunk`. Whole-stream mode (empty preamble): the chunk. Live-tags
    /// mode: nothing until a chunk starts with a video keyframe, then the preamble and that
    /// chunk, then every chunk.
    fn prepare(&mut self, chunk: Bytes, current_preamble: &Bytes) -> Vec<Bytes> {
        let preamble = self
            .preamble
            .get_or_insert_with(|| current_preamble.clone());
        if preamble.is_empty() {
            return vec![chunk];
        }
        if self.synced {
            return vec![chunk];
        }
        if !starts_with_video_keyframe(&chunk) {
            return Vec::new();
        }
        self.synced = true;
        vec![preamble.clone(), chunk]
    }
}

/// Whether `chunk` begins with an FLV video tag (type 9) whose frame type is "keyframe"
/// (legacy and Enhanced RTMP headers keep it in bits 4..=6 of the first body byte).
pub fn starts_with_video_keyframe(chunk: &[u8]) -> bool {
    chunk.len() > 11 && chunk[0] & 0x1f == 9 && (chunk[11] >> 4) & 0x07 == 1
}

/// What the stderr pump learned about one process.
#[derive(Debug, Default)]
struct StderrSummary {
    last_error: Option<String>,
    fatal: Option<crate::progress::Fatal>,
}

/// `text` with every non-empty secret of `redact` replaced by `****`.
pub fn redacted(text: &str, redact: &[String]) -> String {
    redact
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "****"))
}

async fn pump_stderr(
    stderr: impl AsyncRead + Unpin,
    status: Arc<watch::Sender<Status>>,
    metrics: Arc<watch::Sender<Metrics>>,
    redact: Vec<String>,
) -> StderrSummary {
    let mut lines = LineReader::new(stderr);
    let mut parser = ProgressParser::new();
    let mut summary = StderrSummary::default();
    while let Some(line) = lines.next_line().await {
        let line = redacted(&line, &redact);
        for event in parser.push_line(&line) {
            match event {
                Event::Progress(progress) => {
                    metrics.send_modify(|m| m.progress = Some(progress));
                    status.send_if_modified(|s| {
                        let starting = *s == Status::Starting;
                        if starting {
                            *s = Status::Running;
                        }
                        starting
                    });
                }
                Event::Error(message) => {
                    tracing::warn!(ffmpeg = %message, "FFmpeg error");
                    if summary.fatal.is_none() {
                        summary.fatal = classify_error(&message);
                    }
                    metrics.send_modify(|m| m.last_error = Some(message.clone()));
                    summary.last_error = Some(message);
                }
                Event::Warning(message) => tracing::debug!(ffmpeg = %message, "FFmpeg warning"),
                Event::Ended => tracing::debug!("FFmpeg finished its output"),
            }
        }
    }
    summary
}

async fn pump_stdout(
    mut stdout: impl AsyncRead + Unpin,
    output: mpsc::Sender<Bytes>,
    metrics: Arc<watch::Sender<Metrics>>,
) {
    let mut buf = BytesMut::with_capacity(OUTPUT_CHUNK);
    // The boundary marker: a new process, a new FLV stream.
    let mut consumer_gone = output.send(Bytes::new()).await.is_err();
    loop {
        buf.reserve(OUTPUT_CHUNK);
        match stdout.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let chunk = buf.split().freeze();
        metrics.send_if_modified(|m| {
            m.bytes_out += chunk.len() as u64;
            false
        });
        if !consumer_gone && output.send(chunk).await.is_err() {
            // Nobody reads the output; keep draining so FFmpeg is not blocked.
            consumer_gone = true;
        }
    }
}

/// Splits a byte stream into lines at `\n` or `\r`, cutting lines at [`MAX_LINE`].
struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            eof: false,
        }
    }

    async fn next_line(&mut self) -> Option<String> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Some(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            if self.buf.len() >= MAX_LINE || (self.eof && !self.buf.is_empty()) {
                let line: Vec<u8> = self.buf.drain(..).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            if self.eof {
                return None;
            }
            match self.inner.read(&mut chunk).await {
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_down() {
        let b = Backoff::default();
        let ms = |a, r| b.delay(a, r).as_millis();
        assert_eq!(ms(1, 0.0), 500);
        assert_eq!(ms(2, 0.0), 1000);
        assert_eq!(ms(3, 0.0), 2000);
        assert_eq!(ms(7, 0.0), 30_000); // 32 s capped
        assert_eq!(ms(1000, 0.0), 30_000);
        assert_eq!(ms(u32::MAX, 1.0), 22_500);
        assert_eq!(ms(1, 1.0), 375);
        assert_eq!(ms(1, 0.5), 437);
    }

    #[test]
    fn random_stays_in_unit_interval() {
        let (tx, _) = watch::channel(Status::Starting);
        let (mtx, _) = watch::channel(Metrics::default());
        let (_, input) = mpsc::channel(1);
        let (output, _) = mpsc::channel(1);
        let (_, preamble) = watch::channel(Bytes::new());
        let (_, stop) = watch::channel(None);
        let mut ctx = Ctx {
            config: SupervisorConfig::new(vec![]),
            input,
            input_closed: false,
            output,
            status: Arc::new(tx),
            metrics: Arc::new(mtx),
            preamble,
            stop,
            pid: Arc::default(),
            rng: seed(),
        };
        let values: Vec<f64> = (0..1000).map(|_| ctx.random()).collect();
        assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / 1000.0;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }

    fn tag(kind: u8, body: &[u8]) -> Bytes {
        let mut t = vec![kind, 0, 0, body.len() as u8, 0, 0, 0, 0, 0, 0, 0];
        t.extend_from_slice(body);
        t.extend_from_slice(&((11 + body.len()) as u32).to_be_bytes());
        Bytes::from(t)
    }

    #[test]
    fn keyframe_detection() {
        assert!(starts_with_video_keyframe(&tag(9, &[0x17, 1, 0, 0, 0])));
        assert!(!starts_with_video_keyframe(&tag(9, &[0x27, 1, 0, 0, 0])));
        assert!(!starts_with_video_keyframe(&tag(8, &[0xaf, 1])));
        // Enhanced RTMP: IsExHeader | keyframe | coded frames, FourCC hvc1.
        assert!(starts_with_video_keyframe(&tag(
            9,
            &[0x91, b'h', b'v', b'c', b'1']
        )));
        assert!(!starts_with_video_keyframe(&[9, 0, 0]));
    }

    #[test]
    fn feed_sends_preamble_then_starts_on_a_keyframe() {
        let pre = Bytes::from_static(b"FLV-header-and-config");
        let key = tag(9, &[0x17, 1]);
        let inter = tag(9, &[0x27, 1]);
        let audio = tag(8, &[0xaf, 1]);
        let mut feed = Feed::default();
        assert!(feed.prepare(audio.clone(), &pre).is_empty());
        assert!(feed.prepare(inter.clone(), &pre).is_empty());
        assert_eq!(feed.prepare(key.clone(), &pre), [pre.clone(), key.clone()]);
        assert_eq!(
            feed.prepare(inter.clone(), &pre),
            std::slice::from_ref(&inter)
        );
        assert_eq!(
            feed.prepare(audio.clone(), &pre),
            std::slice::from_ref(&audio)
        );
        // A preamble set later does not change a running process.
        assert_eq!(
            feed.prepare(inter.clone(), &Bytes::new()),
            std::slice::from_ref(&inter)
        );
        // Whole-stream mode: bytes pass as they come, even if a preamble appears later.
        let mut feed = Feed::default();
        assert_eq!(
            feed.prepare(inter.clone(), &Bytes::new()),
            std::slice::from_ref(&inter)
        );
        assert_eq!(feed.prepare(inter.clone(), &pre), [inter]);
    }

    #[test]
    fn exit_descriptions() {
        let killed = ExitStatus::from_raw(9);
        assert_eq!(
            describe_exit(killed, None),
            "FFmpeg was killed by signal 9 (SIGKILL)"
        );
        let code1 = ExitStatus::from_raw(1 << 8);
        assert_eq!(
            describe_exit(code1, Some("pipe:0: could not find codec parameters")),
            "FFmpeg exited with code 1: pipe:0: could not find codec parameters"
        );
    }

    #[tokio::test]
    async fn line_reader_splits_and_bounds() {
        let mut long = vec![b'a'; MAX_LINE + 10];
        long.extend_from_slice(b"\nframe=1\r\nlast");
        let mut r = LineReader::new(&long[..]);
        assert_eq!(r.next_line().await.unwrap().len(), MAX_LINE);
        assert_eq!(r.next_line().await.unwrap(), "a".repeat(10));
        assert_eq!(r.next_line().await.unwrap(), "frame=1");
        assert_eq!(r.next_line().await.unwrap(), "");
        assert_eq!(r.next_line().await.unwrap(), "last");
        assert_eq!(r.next_line().await, None);
    }
}
