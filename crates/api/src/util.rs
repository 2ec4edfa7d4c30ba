//! Small helpers shared by the routers.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use crate::error::{ApiError, ApiResult};

/// Unix milliseconds as RFC 3339 UTC with millisecond precision: `2026-11-23T15:41:21.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Whether an `If-Match` header names `version` (or is `*`).
pub fn etag_matches(header: &HeaderValue, version: i64) -> bool {
    let Ok(text) = header.to_str() else {
        return false;
    };
    let want = format!("\"{version}\"");
    text.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == want || t.strip_prefix("W/") == Some(want.as_str()))
}

/// `res` with the `ETag` of `version` (the row's version, quoted).
pub fn with_etag(mut res: Response, version: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// The version an update must still find, from the request's `If-Match` against the current
/// `version`: `None` without the header, 412 naming `what` when someone changed it since.
pub fn if_match(headers: &HeaderMap, version: i64, what: &str) -> ApiResult<Option<i64>> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) if etag_matches(v, version) => Ok(Some(version)),
        Some(_) => Err(precondition_failed(what)),
    }
}

/// 412: `what` changed since the caller read it.
pub fn precondition_failed(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        format!("the {what} changed since you read it; reload it and apply your change again"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_448_481_000), "2026-11-23T15:41:21.000Z");
    }

    #[test]
    fn if_match_forms() {
        assert!(etag_matches(&HeaderValue::from_static("\"3\""), 3));
        assert!(etag_matches(&HeaderValue::from_static("W/\"3\", \"4\""), 4));
        assert!(etag_matches(&HeaderValue::from_static("*"), 9));
        assert!(!etag_matches(&HeaderValue::from_static("\"2\""), 3));
    }
}
