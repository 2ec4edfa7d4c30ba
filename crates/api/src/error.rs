//! The one error type at the HTTP edge: every failure leaves as `application/problem+json`
//! (RFC 9457) with a stable machine `code`, a human `detail` and, for bad input, the `field`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type (`about:blank` or `/problems/{code}`).
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary, the same for every occurrence of this code.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Stable machine-readable code in snake_case, e.g. `validation_failed`.
    pub code: String,
    /// What went wrong this time, for a person.
    pub detail: String,
    /// The input field at fault, as a JSON path (`destinations[2].rtmp_url`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request id, also sent as the `x-request-id` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// What a caller is told of a failure inside the server (the cause goes to the log only).
pub(crate) const INTERNAL_DETAIL: &str =
    "the server failed to complete the request; it has been logged";

/// An error answered to an HTTP client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<String>,
    /// Extra headers such as `Retry-After` or `Allow`.
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            field: None,
            headers: Vec::new(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Replaces the machine code, keeping status and detail.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 400 `validation_failed` naming the field.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail).with_field(field)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 500 whose detail never carries internals; the cause is logged once, here.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            INTERNAL_DETAIL,
        )
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!("/problems/{}", self.code),
            title: title_for(self.status),
            status: self.status.as_u16(),
            code: self.code.to_string(),
            detail: self.detail.clone(),
            field: self.field.clone(),
            request_id: None,
        }
    }
}

fn title_for(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_string()
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers {
            res.headers_mut().insert(name, value);
        }
        res
    }
}

impl From<lunora_store::StoreError> for ApiError {
    fn from(e: lunora_store::StoreError) -> Self {
        use lunora_store::StoreError as E;
        match e {
            E::NotFound => ApiError::not_found("no such resource"),
            E::Conflict(what) => ApiError::conflict(what),
            // Every connection stayed busy for the pool's whole acquire timeout: the server is
            // overloaded, not broken, and the request can be repeated.
            ref busy if busy.is_busy() => {
                tracing::warn!("database pool exhausted: answering 503");
                ApiError::unavailable(
                    "server_busy",
                    "the server is too busy to answer right now: try again in a moment",
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            E::Unreachable { .. } => {
                tracing::error!(error = %e, "database unreachable");
                ApiError::unavailable("database_unavailable", "the database is not reachable")
            }
            other => ApiError::internal(other),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn an_exhausted_pool_answers_503_server_busy_with_retry_after() {
        let e = ApiError::from(lunora_store::StoreError::Sqlx(sqlx::Error::PoolTimedOut));
        let res = e.into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = res.into_body().collect().await.map(|b| b.to_bytes());
        let body: serde_json::Value =
            serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
        assert_eq!(body["code"], "server_busy", "{body}");
    }

    #[tokio::test]
    async fn other_database_errors_are_not_busy() {
        let res = ApiError::from(lunora_store::StoreError::NotFound).into_response();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
    }
}
