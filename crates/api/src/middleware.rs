//! Request-level middleware: metrics by route, header size limit, and the rule that every error
//! under `/api` leaves as problem+json carrying the request id.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::error::{ApiError, PROBLEM_JSON};
use crate::AppState;

/// Records `lunora_http_requests_total` and `lunora_http_request_duration_seconds` by method,
/// matched route (never the raw path, to bound cardinality) and status.
pub async fn http_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None if req.uri().path().starts_with("/api/") => "/api/unmatched".to_owned(),
        None => "ui".to_owned(),
    };
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("lunora_http_requests_total", &labels).increment(1);
    metrics::histogram!("lunora_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    res
}

/// Refuses requests whose headers together exceed the configured size with 431.
pub async fn header_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + req.uri().to_string().len();
    if size > state.config.header_limit {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request line and headers take {size} bytes; at most {} are accepted",
                state.config.header_limit
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// Under `/api`: turns any error answer that is not problem+json yet (framework rejections,
/// body limit, timeouts) into one, and stamps the request id into every problem body.
pub async fn problem_json(req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let res = next.run(req).await;
    let status = res.status();
    if !is_api || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let (mut parts, body) = res.into_parts();
    // Error bodies are small; anything larger is cut, never buffered without bound.
    let bytes = match http_body_util::Limited::new(body, 64 * 1024)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => axum::body::Bytes::new(),
    };
    let mut problem: serde_json::Value = if is_problem {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| serde_json::json!({}))
    } else {
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        let e = framework_error(status, text);
        serde_json::to_value(e.problem()).unwrap_or_else(|_| serde_json::json!({}))
    };
    if let (Some(id), Some(obj)) = (request_id, problem.as_object_mut()) {
        obj.insert("request_id".into(), serde_json::Value::String(id));
    }
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Words for errors produced by the framework rather than by a handler.
fn framework_error(status: StatusCode, text: String) -> ApiError {
    let (code, default): (&'static str, &str) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "the request body is larger than this endpoint accepts",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not accept that method",
        ),
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint"),
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
            ("timeout", "the request took too long")
        }
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "the server cannot answer right now"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "that content type is not accepted",
        ),
        s if s.is_server_error() => (
            "internal_error",
            "the server failed to complete the request; it has been logged",
        ),
        _ => ("bad_request", "the request is not valid"),
    };
    // Framework texts for client errors are safe to show; server texts are not.
    let detail = if text.is_empty() || status.is_server_error() {
        default.to_string()
    } else {
        text
    };
    ApiError::new(status, code, detail)
}
