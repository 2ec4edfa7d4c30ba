//! Lunora's HTTP control plane.
//!
//! This crate owns everything that speaks HTTP: the axum routers (one module per feature, nested
//! under `/api/v1`), the problem+json error type, request limits and ids, `/metrics`, the OpenAPI
//! document generated from the handlers, and the embedded web UI served as the fallback outside
//! `/api`. It reaches the database through `lunora-store` and the media engine through
//! `lunora-media`'s small API; it never touches sockets of the media path.

pub mod ads;
pub mod ads_reports;
pub mod alerts;
mod analytics;
mod api_tokens;
mod audit;
pub mod auth;
pub mod backups;
pub mod bootstrap;
pub mod cameras;
mod channels;
mod destinations;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod hls;
pub mod ingest;
mod invitations;
pub mod ladder;
pub mod mail;
mod middleware;
pub mod notifications;
mod observability;
mod organizations;
mod presets;
pub mod pull;
pub mod recordings;
mod secrets;
pub mod social;
pub mod sources;
mod state;
pub mod streaming;
pub mod tiers;
mod ui;
mod users;
mod util;
pub mod viewer;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use audit::spawn_maintenance;
pub use error::{ApiError, ApiResult, Problem};
pub use observability::install_metrics;
pub use state::{ApiConfig, AppState};

/// The version every answer and log line reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lunora API",
        description = "Control plane of the Lunora live media platform. Errors are \
                       application/problem+json with a stable `code`.",
        license(name = "AGPL-3.0-only")
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Component health for load balancers and operators"),
        (name = "auth", description = "Sign-in, sessions, tokens and the permission table"),
        (name = "channels", description = "Live channels and their inputs"),
        (name = "destinations", description = "Restream destinations: YouTube, X, LinkedIn, any RTMP(S) server"),
        (name = "alerts", description = "Alerts raised by Lunora's rules, and webhooks that receive them"),
        (name = "analytics", description = "Streaming figures over a time range and the server right now"),
        (name = "cameras", description = "IP cameras: registration, keys, status, CSV import, bulk operations"),
        (name = "events", description = "WebSocket of real-time events; their schemas are in the AsyncAPI document at /api/v1/events/asyncapi.json"),
        (name = "notifications", description = "The signed-in user's in-app notifications"),
        (name = "recordings", description = "Recordings of live channels: files, download, HLS VOD playback, settings"),
        (name = "streaming", description = "Start and stop streaming sessions, live status, history"),
        (name = "sources", description = "Source redundancy: primary/secondary inputs (RTMP, SRT), failover settings, status, switching"),
        (name = "users", description = "Accounts, invitations and the e-mail outbox"),
        (name = "api-tokens", description = "Named, scoped API tokens"),
        (name = "organizations", description = "Tenants and their policies"),
        (name = "presets", description = "Encoding presets: built-in platform presets and the organization's own"),
        (name = "audit", description = "The audit log"),
        (name = "backups", description = "Encrypted backups of the whole database: manual and scheduled, download, upload, selective restore"),
        (name = "viewer", description = "Viewer platform: stream catalog and search, playback tokens by access level, viewing sessions, audience accounts, subscriptions, recommendations, viewer admin"),
        (name = "social", description = "Viewer platform: live chat of a stream (WebSocket), likes, reports and the moderation queue"),
        (name = "ads", description = "Podcast advertising workspace: advertisers, shows, episodes, campaigns with account teams, availability, activity log"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or API token")
                    .build(),
            ),
        );
    }
}

/// Every `/api/v1` route with its OpenAPI description, collected from the handlers so the two
/// cannot drift.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(channels::router())
        .merge(hls::api_router())
        .merge(ladder::router())
        .merge(recordings::router())
        .merge(destinations::router())
        .merge(streaming::router())
        .merge(sources::router())
        .merge(events::router())
        .merge(cameras::router())
        .merge(alerts::router())
        .merge(notifications::router())
        .merge(analytics::router())
        .merge(users::router())
        .merge(invitations::router())
        .merge(api_tokens::router())
        .merge(organizations::router())
        .merge(presets::router())
        .merge(audit::router())
        .merge(mail::router())
        .merge(secrets::router())
        .merge(ads::router())
        .merge(backups::router())
        .merge(ads_reports::router())
        .merge(viewer::router())
        .merge(social::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .split_for_parts()
}

/// The OpenAPI document as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().1
}

/// The whole HTTP application for a server.
pub fn app(state: AppState) -> Router {
    let (api, openapi) = api_routes();
    let openapi = Arc::new(openapi);
    let body_limit = state.config.body_limit;
    let timeout = state.config.request_timeout;

    Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/api/v1/docs", get(ui::api_docs))
        .route("/metrics", get(metrics))
        .merge(hls::router())
        .fallback(ui::serve)
        .method_not_allowed_fallback(method_not_allowed)
        // Router::layer wraps each route, so these see the matched route. The guard (route
        // table, rate limits, authentication, audit log) runs inside the metrics layer.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .layer(axum::middleware::from_fn(middleware::http_metrics))
        .layer(
            // Read top to bottom: outermost first.
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    }),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(panic_answer))
                .layer(axum::middleware::from_fn(middleware::problem_json))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::header_limit,
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    timeout,
                ))
                .layer(axum::extract::DefaultBodyLimit::max(body_limit)),
        )
        .with_state(state)
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
    .into_response()
}

fn panic_answer(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the server failed to complete the request; it has been logged",
    )
    .into_response()
}

/// Prometheus text exposition of every metric the process records.
async fn metrics(State(state): State<AppState>) -> Response {
    observability::collect_process_metrics();
    observability::collect_engine_metrics(&state).await;
    let mut res = state.metrics.render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
