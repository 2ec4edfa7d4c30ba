use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lunora_media::Engine;
use lunora_store::{Db, SecretBox};

use crate::auth::{AuthConfig, TokenKeys};
use crate::ingest::PlayTokens;
use metrics_exporter_prometheus::PrometheusHandle;

/// Settings of the HTTP edge, built by the binary from its configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where media, recordings and the SQLite file live; its free space is a health component.
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Largest total size of request headers, in bytes.
    pub header_limit: usize,
    /// Longest time a plain request may take before it answers 503.
    pub request_timeout: Duration,
    /// Below this many free bytes in the data dir the disk component is unhealthy.
    pub disk_min_free_bytes: u64,
    /// Sign-in and session limits.
    pub auth: AuthConfig,
    /// Port of the RTMP server, for the publish URLs the API hands out.
    pub rtmp_port: u16,
    /// Public RTMP base (`rtmp://host:port`) when the server sits behind a proxy or NAT;
    /// otherwise the request's host name and `rtmp_port` are used.
    pub rtmp_public_url: Option<String>,
    /// TLS settings for pushing to `rtmps://` destinations (system roots plus any extra CA).
    pub push_tls: Option<Arc<lunora_media::push::TlsConfig>>,
    /// Timers of destination pushes.
    pub push: lunora_media::push::PushConfig,
    /// Storage tiers of recordings and their lifecycle.
    pub storage: crate::tiers::StorageConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            data_dir: PathBuf::from("./data"),
            body_limit: 1024 * 1024,
            header_limit: 32 * 1024,
            request_timeout: Duration::from_secs(30),
            disk_min_free_bytes: 512 * 1024 * 1024,
            auth: AuthConfig::default(),
            rtmp_port: 1935,
            rtmp_public_url: None,
            push_tls: None,
            push: lunora_media::push::PushConfig::default(),
            storage: crate::tiers::StorageConfig::default(),
        }
    }
}

/// Everything a handler may reach. One per server; cheap to clone: one reference count,
/// since axum clones the state for every middleware layer and handler of every request (a
/// field-by-field clone allocated and copied keys: 3–4 % of the server's CPU under many
/// LL-HLS players, BENCHMARKS.md, HLS).
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct AppStateInner {
    pub db: Db,
    pub engine: Arc<Engine>,
    pub config: Arc<ApiConfig>,
    pub metrics: PrometheusHandle,
    pub secrets: SecretBox,
    pub tokens: TokenKeys,
    pub play_tokens: PlayTokens,
    pub auth: Arc<AuthConfig>,
    /// Abuse counters and the mailer.
    pub identity: Arc<crate::auth::Identity>,
    /// Outbound HTTP (webhooks), with a timeout.
    pub http_client: reqwest::Client,
    /// Cameras online/offline, kept by the camera monitor.
    pub presence: Arc<crate::cameras::Presence>,
    /// Real-time events for the WebSocket.
    pub events: Arc<crate::events::EventHub>,
    /// Live chat rooms, rate limits and slow mode.
    pub chat: Arc<crate::social::ChatHub>,
    /// FFmpeg pulls of cameras that only serve RTSP/SRT.
    pub pulls: Arc<crate::pull::Pulls>,
    /// Running streaming sessions.
    pub streaming: Arc<crate::streaming::Streaming>,
    /// Source redundancy at run time (SRT callers, the SRT port).
    pub sources: Arc<crate::sources::SourcesRuntime>,
    /// Live HLS packagers and thumbnails.
    pub hls: Arc<crate::hls::HlsService>,
    /// Recorders of the recorded channels.
    pub recordings: Arc<crate::recordings::Recordings>,
    /// Hot, warm and cold storage of recordings.
    pub tiers: Arc<crate::tiers::Tiers>,
    /// TLS for `rtmps://` destinations.
    pub tls: Option<Arc<lunora_media::push::TlsConfig>>,
    /// The payment provider behind subscriptions.
    pub payments: Arc<dyn crate::viewer::payments::PaymentProvider>,
    pub started_at: Instant,
    /// The queue of ad notifications to store (its worker starts with the first one).
    pub ad_notify: Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<crate::ads::NotifyJob>>>,
}

impl AppState {
    pub fn new(
        db: Db,
        engine: Arc<Engine>,
        secrets: SecretBox,
        config: ApiConfig,
        metrics: PrometheusHandle,
    ) -> Self {
        let hls = Arc::new(crate::hls::HlsService::new(
            engine.clone(),
            lunora_media::hls::HlsConfig {
                on_demand: Some(crate::hls::HLS_UNWATCHED),
                ..Default::default()
            },
        ));
        hls.hls
            .set_ladder_source(crate::ladder::DbLadders::new(db.clone()));
        AppState(Arc::new(AppStateInner {
            db,
            engine,
            tokens: TokenKeys::new(&secrets.derive("access-token-signing")),
            play_tokens: PlayTokens::new(secrets.derive("play-token-signing")),
            secrets,
            identity: Arc::new(crate::auth::Identity::new(&config.auth)),
            streaming: Arc::new(crate::streaming::Streaming::new(config.push.clone())),
            sources: Arc::default(),
            hls,
            recordings: Arc::new(crate::recordings::Recordings::new(&config.data_dir)),
            tiers: Arc::new(crate::tiers::Tiers::new(
                &config.data_dir,
                config.storage.clone(),
            )),
            events: Arc::new(crate::events::EventHub::default()),
            chat: Arc::default(),
            pulls: Arc::default(),
            presence: Arc::new(crate::cameras::Presence::default()),
            http_client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            tls: config.push_tls.clone(),
            auth: Arc::new(config.auth.clone()),
            config: Arc::new(config),
            metrics,
            payments: Arc::new(crate::viewer::payments::TestProvider::default()),
            started_at: Instant::now(),
            ad_notify: Arc::default(),
        }))
    }
}
