//! The web UI, embedded in the binary at build time and served outside `/api`.
//!
//! Hashed files under `/assets/` are immutable and cached for a year; everything else is
//! revalidated (ETag). Any other path that is not a file answers `index.html`, so the client-side
//! router can take deep links.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;
use crate::AppState;

#[derive(RustEmbed)]
#[folder = "$LUNORA_WEB_DIST"]
struct Assets;

/// Fallback service for every path no router matched.
pub async fn serve(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    // A host name configured for one app (`stream.example.com`) opens that app at `/`.
    if path == "/" {
        if let Some(app) = app_for_host(&state.auth.app_hosts, req.headers()) {
            return (StatusCode::FOUND, [(header::LOCATION, app)]).into_response();
        }
    }
    if path.starts_with("/api/") || path == "/api" {
        return ApiError::not_found(format!("no endpoint at {path}")).into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let rel = path.trim_start_matches('/');
    if !rel.is_empty() && !rel.ends_with('/') {
        if let Some(res) = file(rel, req.headers()) {
            return res;
        }
        // A missing file with an extension is a real 404, not the app shell.
        let last = rel.rsplit('/').next().unwrap_or(rel);
        if rel.starts_with("assets/") || last.contains('.') {
            return (StatusCode::NOT_FOUND, "not found").into_response();
        }
    }
    index(req.headers())
}

/// The API docs page (Swagger UI, bundled by the web build).
pub async fn api_docs(headers: HeaderMap) -> Response {
    file("api-docs/index.html", &headers).unwrap_or_else(|| {
        ApiError::not_found("the API docs page was not built into this binary").into_response()
    })
}

/// The app path configured for the request's host (`Host`, port ignored, any case).
fn app_for_host(hosts: &[(String, &'static str)], headers: &HeaderMap) -> Option<&'static str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    hosts
        .iter()
        .find(|(h, _)| h.eq_ignore_ascii_case(name))
        .map(|(_, app)| *app)
}

fn index(headers: &HeaderMap) -> Response {
    file("index.html", headers)
        .unwrap_or_else(|| (StatusCode::NOT_FOUND, "the web UI is not built").into_response())
}

fn file(rel: &str, headers: &HeaderMap) -> Option<Response> {
    let asset = Assets::get(rel)?;
    let etag = format!(
        "\"{}\"",
        asset
            .metadata
            .sha256_hash()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let cache = if rel.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mime = mime_guess::from_path(rel).first_or_octet_stream();
        let mut r = Response::new(Body::from(asset.data.into_owned()));
        if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(res)
}
