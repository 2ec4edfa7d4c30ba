//! Live HLS for players, outside `/api/v1`, and channel thumbnails.
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /hls/{channel}/index.m3u8` | master playlist over the channel's renditions |
//! | `GET /hls/{channel}/{rendition}/media.m3u8` | LL-HLS media playlist; `_HLS_msn` / `_HLS_part` block until that part exists (at most three target durations, then 503) |
//! | `GET /hls/{channel}/{rendition}/{epoch}/init-{v}.mp4` | init segment (`video/mp4`) |
//! | `GET /hls/{channel}/{rendition}/{epoch}/seg-{msn}.m4s`, `part-{msn}.{n}.m4s` | media segments and parts (`video/iso.segment`), immutable |
//!
//! The rendition of the channel's own encoding is `source`. `{epoch}` names one run of the
//! channel's packager (media sequence numbers restart with a new run), so files can be cached
//! forever; playlists are `no-cache`.
//!
//! **Access.** Public channels are open, unless the viewer catalog puts them at access level
//! `premium` or `vip`: those need `?token=` from `POST /api/v1/streams/{id}/playback`, which
//! is issued only to viewers whose subscription reaches that level (403
//! `playback_token_required` without one). Private ones need `?token=` with a playback token from
//! `POST /api/v1/channels/{id}/play-token`; every URI in the playlists carries the token on,
//! so a player given the master URL keeps working until the token expires. An unknown channel
//! and a private one without a valid token get the same 404 (nothing tells them apart). A
//! channel that is not live answers 404 `channel_not_live`. These routes are outside
//! `/api/v1`: the request guard lets them through and the checks above are the whole access
//! rule. Answers carry `Access-Control-Allow-Origin: *` for players on other origins.
//!
//! **Thumbnails.** Every [`THUMBNAIL_INTERVAL`] the newest keyframe of each live channel
//! whose thumbnail was asked for in the last [`THUMBNAIL_DEMAND`] is decoded to a JPEG (by
//! `lunora-transcode`, at most [`THUMBNAIL_JOBS`] FFmpeg processes at once), served at
//! `GET /api/v1/channels/{id}/thumbnail.jpg` to whoever may read the channel. Channels nobody
//! looks at cost no decoding: on a server carrying hundreds of channels the decoders were a
//! fifth to a third of its CPU (BENCHMARKS.md, relay).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use lunora_media::hls::{rewrite_uris, Hls, HlsConfig, LiveHls, Reload};
use lunora_media::rtmp_server::{
    AuthFuture, Authorizer, Denied, IngestEvent, PlayRequest, PublishGrant, PublishRequest,
};
use lunora_media::Engine;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::{watch, Notify, Semaphore};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// How often a live channel's thumbnail is refreshed.
pub const THUMBNAIL_INTERVAL: Duration = Duration::from_secs(5);
/// A channel's HLS packager stops this long after the last request for its HLS (or its
/// thumbnail); the next request starts it again from the channel's cached GOP.
pub const HLS_UNWATCHED: Duration = Duration::from_secs(120);
/// A channel's thumbnail is kept fresh this long after it was last asked for.
pub const THUMBNAIL_DEMAND: Duration = Duration::from_secs(120);
/// FFmpeg thumbnail decoders running at once, across channels.
pub const THUMBNAIL_JOBS: usize = 2;
/// Width of thumbnails (smaller pictures are not upscaled).
pub const THUMBNAIL_WIDTH: u32 = 320;
/// How long a channel's visibility is trusted before it is read again.
const ACCESS_CACHE: Duration = Duration::from_secs(5);

const M3U8: &str = "application/vnd.apple.mpegurl";

/// The live HLS output and what the HTTP side keeps about it.
pub struct HlsService {
    pub hls: Arc<Hls>,
    /// Channel id → (who may play it, read at).
    visibility: Mutex<HashMap<Uuid, (Gate, Instant)>>,
    thumbnails: Mutex<HashMap<Uuid, Thumbnail>>,
    /// Channel id → when its thumbnail was last asked for.
    wanted: Mutex<HashMap<Uuid, Instant>>,
    wake_thumbnails: Notify,
    jobs: Arc<Semaphore>,
}

/// Who may play a channel's HLS without more than the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// Public channel whose catalog access level is `public`: anyone.
    Open,
    /// Private channel: a playback token, and nothing tells it apart from an unknown channel.
    Private,
    /// Public channel in the viewer catalog at level `premium` or `vip`: a playback token
    /// from `POST /api/v1/streams/{id}/playback`, which checks the viewer's subscription.
    Subscribers,
}

#[derive(Clone)]
struct Thumbnail {
    jpeg: Option<Bytes>,
    keyframe_dts: i64,
    made_at: Instant,
    at_unix_ms: i64,
}

impl HlsService {
    pub fn new(engine: Arc<Engine>, config: HlsConfig) -> Self {
        HlsService {
            hls: Hls::new(engine, config),
            visibility: Mutex::new(HashMap::new()),
            thumbnails: Mutex::new(HashMap::new()),
            wanted: Mutex::new(HashMap::new()),
            wake_thumbnails: Notify::new(),
            jobs: Arc::new(Semaphore::new(THUMBNAIL_JOBS)),
        }
    }

    /// Forgets a channel's cached visibility (it changed).
    pub fn forget(&self, channel_id: Uuid) {
        self.visibility.lock().remove(&channel_id);
    }
}

/// Starts the packager supervisor and the thumbnail loop; both end when `shutdown` turns true.
pub fn spawn(state: &AppState, shutdown: watch::Receiver<bool>) {
    tokio::spawn(state.hls.hls.clone().run(shutdown.clone()));
    tokio::spawn(thumbnail_loop(state.clone(), shutdown));
}

/// The `/hls` routes (merge before the UI fallback).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hls/{channel}/index.m3u8", get(master).options(preflight))
        .route(
            "/hls/{channel}/{rendition}/media.m3u8",
            get(media).options(preflight),
        )
        .route(
            "/hls/{channel}/{rendition}/{epoch}/{file}",
            get(file).options(preflight),
        )
}

/// `GET /api/v1/channels/{id}/thumbnail.jpg`.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(thumbnail))
}

#[derive(Debug, Deserialize, Default)]
pub struct HlsQuery {
    token: Option<String>,
    #[serde(rename = "_HLS_msn")]
    msn: Option<String>,
    #[serde(rename = "_HLS_part")]
    part: Option<String>,
}

fn cors(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

fn with_cors(e: ApiError) -> Response {
    let mut res = e.into_response();
    cors(&mut res);
    res
}

async fn preflight() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    cors(&mut res);
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    res
}

fn hidden() -> ApiError {
    ApiError::not_found(
        "no such channel, or it is private and this request has no valid playback token \
         (`?token=` from POST /api/v1/channels/{id}/play-token)",
    )
}

fn not_live() -> ApiError {
    ApiError::not_found("the channel is not live: HLS starts when its input does")
        .with_code("channel_not_live")
}

/// Checks access to a channel's HLS. Answers the channel id and the token to carry into
/// playlist URIs (private channels only).
async fn admit(
    state: &AppState,
    channel: &str,
    token: Option<&str>,
) -> ApiResult<(Uuid, Option<String>)> {
    let id = Uuid::parse_str(channel).map_err(|_| hidden())?;
    let cached = state
        .hls
        .visibility
        .lock()
        .get(&id)
        .filter(|(_, at)| at.elapsed() < ACCESS_CACHE)
        .map(|(gate, _)| *gate);
    let gate = match cached {
        Some(g) => g,
        None => {
            let c = state
                .db
                .channel_any_org(&id.to_string())
                .await?
                .ok_or_else(hidden)?;
            let gate = if c.visibility != "public" {
                Gate::Private
            } else if state.db.access_level(&c.id).await? == "public" {
                Gate::Open
            } else {
                Gate::Subscribers
            };
            state
                .hls
                .visibility
                .lock()
                .insert(id, (gate, Instant::now()));
            gate
        }
    };
    if gate == Gate::Open {
        return Ok((id, None));
    }
    let token = token.unwrap_or("");
    if state
        .play_tokens
        .check(&id.to_string(), token, lunora_store::now_ms() / 1000)
    {
        Ok((id, Some(token.to_string())))
    } else if gate == Gate::Subscribers {
        Err(ApiError::forbidden(format!(
            "this stream is for subscribers: get a playback token from \
             POST /api/v1/streams/{id}/playback and pass it as `?token=`"
        ))
        .with_code("playback_token_required"))
    } else {
        Err(hidden())
    }
}

/// The channel's HLS output, started on this request if the channel is live (HLS is packaged
/// on demand: see [`HLS_UNWATCHED`]).
fn live(state: &AppState, id: Uuid) -> ApiResult<Arc<LiveHls>> {
    let live = match state.hls.hls.stream(id) {
        Some(live) => live,
        None => {
            let channel = state
                .engine
                .channel(id)
                .filter(|c| c.status().input_state == lunora_media::InputState::Live)
                .ok_or_else(not_live)?;
            state.hls.hls.start(&channel)
        }
    };
    live.touch();
    Ok(live)
}

fn token_suffix(token: &Option<String>) -> String {
    match token {
        // Tokens are `{digits}.{hex}`: nothing to escape.
        Some(t) => format!("?token={t}"),
        None => String::new(),
    }
}

fn playlist_response(text: String) -> Response {
    let mut res = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(M3U8)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        text,
    )
        .into_response();
    cors(&mut res);
    res
}

async fn master(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    Query(q): Query<HlsQuery>,
) -> Response {
    match master_inner(&state, &channel, &q).await {
        Ok(r) => r,
        Err(e) => with_cors(e),
    }
}

async fn master_inner(state: &AppState, channel: &str, q: &HlsQuery) -> ApiResult<Response> {
    let (id, token) = admit(state, channel, q.token.as_deref()).await?;
    let live = live(state, id)?;
    let bitrate = state
        .engine
        .channel(id)
        .map(|c| c.status().bitrate_bps)
        .unwrap_or(0);
    let mut text = live.master_playlist(bitrate);
    if text.is_none() {
        // Just went live: wait for the first part, which brings the codecs.
        if let Some(source) = live.renditions().first() {
            let wait = Duration::from_secs(3 * source.target_duration());
            source.wait_for(0, Some(0), wait).await;
        }
        text = live.master_playlist(bitrate);
    }
    let text = text.ok_or_else(|| {
        ApiError::unavailable(
            "stream_starting",
            "the channel is live but its first media has not arrived yet; retry in a moment",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    })?;
    let suffix = token_suffix(&token);
    Ok(playlist_response(rewrite_uris(&text, |u| {
        format!("{u}{suffix}")
    })))
}

fn parse_number<T: std::str::FromStr>(field: &str, v: &Option<String>) -> ApiResult<Option<T>> {
    match v {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ApiError::invalid(field, format!("{field} must be a non-negative integer"))
        }),
    }
}

async fn media(
    State(state): State<AppState>,
    Path((channel, rendition)): Path<(String, String)>,
    Query(q): Query<HlsQuery>,
) -> Response {
    match media_inner(&state, &channel, &rendition, &q).await {
        Ok(r) => r,
        Err(e) => with_cors(e),
    }
}

async fn media_inner(
    state: &AppState,
    channel: &str,
    rendition: &str,
    q: &HlsQuery,
) -> ApiResult<Response> {
    let (id, token) = admit(state, channel, q.token.as_deref()).await?;
    let msn: Option<u64> = parse_number("_HLS_msn", &q.msn)?;
    let part: Option<u32> = parse_number("_HLS_part", &q.part)?;
    if part.is_some() && msn.is_none() {
        return Err(ApiError::invalid(
            "_HLS_part",
            "_HLS_part needs _HLS_msn (RFC 8216bis §6.2.5.2)",
        ));
    }
    let live = live(state, id)?;
    let r = live.rendition(rendition).ok_or_else(|| {
        ApiError::not_found(format!("no rendition `{rendition}` on this channel"))
    })?;
    // Blocking reload: hold the request up to three target durations.
    let hold = Duration::from_secs(3 * r.target_duration());
    match msn {
        Some(msn) => match r.wait_for(msn, part, hold).await {
            Reload::Ready => {}
            Reload::BadRequest => {
                return Err(ApiError::invalid(
                    "_HLS_msn",
                    "the requested segment or part is too far ahead of the live edge",
                ))
            }
            Reload::TimedOut => {
                return Err(ApiError::unavailable(
                    "reload_timeout",
                    "the requested part did not arrive within three target durations",
                ))
            }
            Reload::Gone => return Err(not_live()),
        },
        None if r.media_playlist().is_none() => {
            r.wait_for(0, Some(0), hold).await;
        }
        None => {}
    }
    let text = r.media_playlist().ok_or_else(|| {
        ApiError::unavailable(
            "stream_starting",
            "the channel is live but its first media has not arrived yet; retry in a moment",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    })?;
    let epoch = live.epoch().to_string();
    let suffix = token_suffix(&token);
    Ok(playlist_response(rewrite_uris(&text, |u| {
        format!("{epoch}/{u}{suffix}")
    })))
}

async fn file(
    State(state): State<AppState>,
    Path((channel, rendition, epoch, name)): Path<(String, String, String, String)>,
    Query(q): Query<HlsQuery>,
) -> Response {
    match file_inner(&state, &channel, &rendition, &epoch, &name, &q).await {
        Ok(r) => r,
        Err(e) => with_cors(e),
    }
}

async fn file_inner(
    state: &AppState,
    channel: &str,
    rendition: &str,
    epoch: &str,
    name: &str,
    q: &HlsQuery,
) -> ApiResult<Response> {
    let (id, _) = admit(state, channel, q.token.as_deref()).await?;
    let live = live(state, id)?;
    let gone = || {
        ApiError::not_found(format!(
            "{name} is not available: it expired from the live window, or the stream restarted"
        ))
        .with_code("segment_not_found")
    };
    if live.epoch() != epoch {
        return Err(gone());
    }
    let r = live.rendition(rendition).ok_or_else(gone)?;
    let hold = Duration::from_secs(3 * r.target_duration());
    let bytes = r.wait_for_file(name, hold).await.ok_or_else(gone)?;
    let content_type = if name.ends_with(".mp4") {
        "video/mp4"
    } else {
        "video/iso.segment"
    };
    let mut res = Response::new(Body::from(bytes));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    cors(&mut res);
    Ok(res)
}

/// The newest thumbnail of a live channel (JPEG, refreshed every few seconds).
#[utoipa::path(
    get, path = "/channels/{id}/thumbnail.jpg", tag = "channels",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "image/jpeg", description = "JPEG, at most 320 px wide"),
        (status = 404, body = crate::Problem),
    )
)]
async fn thumbnail(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Permission::ChannelsRead)?;
    let channel = state
        .db
        .channel(&who.organization_id, &id)
        .await?
        .filter(|c| {
            who.can(Permission::ChannelsManageAll) || c.owner_id.as_deref() == Some(&who.user_id)
        })
        .ok_or_else(|| ApiError::not_found("no such channel"))?;
    let uuid = Uuid::parse_str(&channel.id).map_err(|_| ApiError::not_found("no such channel"))?;
    serve_thumbnail(&state, uuid, "private, max-age=2")
}

/// The newest thumbnail of a channel (asking keeps thumbnails of it coming).
pub(crate) fn serve_thumbnail(
    state: &AppState,
    uuid: Uuid,
    cache_control: &'static str,
) -> ApiResult<Response> {
    // Thumbnails come from the HLS output's newest keyframe: asking keeps it running.
    let _ = live(state, uuid);
    let first_ask = state
        .hls
        .wanted
        .lock()
        .insert(uuid, Instant::now())
        .is_none();
    if first_ask {
        state.hls.wake_thumbnails.notify_one();
    }
    let thumb = state.hls.thumbnails.lock().get(&uuid).cloned();
    let Some((jpeg, at)) = thumb.and_then(|t| t.jpeg.map(|j| (j, t.at_unix_ms))) else {
        return Err(ApiError::not_found(
            "no thumbnail yet: the channel is not live, or its newest keyframe is being decoded \
             (thumbnails are made while someone asks for them; try again in a second)",
        )
        .with_code("no_thumbnail")
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")));
    };
    let mut res = Response::new(Body::from(jpeg));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(v) = HeaderValue::from_str(&crate::util::rfc3339(at)) {
        h.insert("x-thumbnail-time", v);
    }
    Ok(res)
}

async fn thumbnail_loop(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let ffmpeg = std::path::PathBuf::from("ffmpeg");
    let mut warned = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = state.hls.wake_thumbnails.notified() => {}
            _ = shutdown.changed() => return,
        }
        let streams = state.hls.hls.streams();
        {
            let live: Vec<Uuid> = streams.iter().map(|s| s.channel_id()).collect();
            state
                .hls
                .thumbnails
                .lock()
                .retain(|id, _| live.contains(id));
            state
                .hls
                .wanted
                .lock()
                .retain(|id, at| live.contains(id) && at.elapsed() < THUMBNAIL_DEMAND);
        }
        for s in streams {
            let id = s.channel_id();
            if !state.hls.wanted.lock().contains_key(&id) {
                continue; // nobody looks at this one
            }
            let due = state
                .hls
                .thumbnails
                .lock()
                .get(&id)
                .is_none_or(|t| t.made_at.elapsed() >= THUMBNAIL_INTERVAL);
            if !due {
                continue;
            }
            let Some((dts, annexb)) = s.keyframe_annexb() else {
                continue;
            };
            let previous = state.hls.thumbnails.lock().get(&id).cloned();
            if previous.as_ref().is_some_and(|t| t.keyframe_dts == dts) {
                continue;
            }
            let Ok(permit) = state.hls.jobs.clone().try_acquire_owned() else {
                break; // busy: the others wait for the next round
            };
            // Mark the attempt so a slow decode is not started twice.
            state.hls.thumbnails.lock().insert(
                id,
                Thumbnail {
                    jpeg: previous.as_ref().and_then(|t| t.jpeg.clone()),
                    keyframe_dts: dts,
                    made_at: Instant::now(),
                    at_unix_ms: previous.as_ref().map_or(0, |t| t.at_unix_ms),
                },
            );
            let state2 = state.clone();
            let ffmpeg = ffmpeg.clone();
            let result = tokio::spawn(async move {
                let _permit = permit;
                let r = lunora_transcode::thumbnail(
                    &ffmpeg,
                    annexb,
                    THUMBNAIL_WIDTH,
                    Duration::from_secs(10),
                )
                .await;
                match r {
                    Ok(jpeg) => {
                        if let Some(t) = state2.hls.thumbnails.lock().get_mut(&id) {
                            t.jpeg = Some(jpeg);
                            t.at_unix_ms = lunora_store::now_ms();
                        }
                        metrics::counter!("lunora_thumbnails_total", "result" => "ok").increment(1);
                        Ok(())
                    }
                    Err(e) => {
                        metrics::counter!("lunora_thumbnails_total", "result" => "error")
                            .increment(1);
                        Err(e.to_string())
                    }
                }
            });
            if !warned {
                // Surface the first failure (e.g. FFmpeg missing) once; later ones are counted.
                if let Ok(Err(e)) = result.await {
                    warned = true;
                    tracing::warn!(channel = %id, error = %e, "thumbnail failed");
                }
            }
        }
    }
}

/// Wraps the ingest authorizer so the media outputs learn of source changes: an input that
/// starts publishing and is the channel's active one (a reconnect, a takeover) marks a
/// discontinuity in the live HLS and the recording, and wakes their supervisors.
pub struct OutputHooks {
    inner: Arc<dyn Authorizer>,
    state: AppState,
}

impl OutputHooks {
    pub fn wrap(inner: Arc<dyn Authorizer>, state: &AppState) -> Arc<dyn Authorizer> {
        Arc::new(OutputHooks {
            inner,
            state: state.clone(),
        })
    }
}

impl Authorizer for OutputHooks {
    fn authorize_publish(&self, req: PublishRequest) -> AuthFuture<Result<PublishGrant, Denied>> {
        self.inner.authorize_publish(req)
    }

    fn authorize_play(&self, req: PlayRequest) -> AuthFuture<Result<Uuid, Denied>> {
        self.inner.authorize_play(req)
    }

    fn event(&self, event: IngestEvent) {
        if let IngestEvent::PublishStarted {
            channel_id, input, ..
        } = &event
        {
            let active = self
                .state
                .engine
                .channel(*channel_id)
                .and_then(|c| c.status().active_input)
                .is_some_and(|a| &a == input);
            if active {
                source_changed(&self.state, *channel_id);
            } else {
                self.state.hls.hls.wake();
                self.state.recordings.wake();
            }
        }
        self.inner.event(event);
    }
}

/// The source of a channel changed (reconnect, takeover, failover): both outputs mark it.
pub fn source_changed(state: &AppState, channel_id: Uuid) {
    state.hls.hls.source_changed(channel_id);
    state.recordings.source_changed(channel_id);
}
