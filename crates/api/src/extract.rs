//! Extractors whose rejections are problem+json: malformed JSON names the field at fault,
//! oversized bodies answer 413, a wrong content type 415.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// JSON body extractor. Use it instead of `axum::Json` in every handler.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses JSON, turning serde's error into a 400 that names the field path and the position.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let (code, detail) = match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => (
                    "malformed_json",
                    format!(
                        "the body is not valid JSON: {} (line {}, column {})",
                        strip_position(&inner.to_string()),
                        inner.line(),
                        inner.column()
                    ),
                ),
                serde_json::error::Category::Data | serde_json::error::Category::Io => (
                    "validation_failed",
                    if path == "." {
                        strip_position(&inner.to_string())
                    } else {
                        format!("{path}: {}", strip_position(&inner.to_string()))
                    },
                ),
            };
            let mut e = ApiError::bad_request(code, detail);
            // A missing field is reported at its parent: name the field itself.
            match (path.as_str(), missing_field(&inner.to_string())) {
                (".", Some(field)) => e = e.with_field(field),
                (".", None) => {}
                (parent, Some(field)) => e = e.with_field(format!("{parent}.{field}")),
                (parent, None) => e = e.with_field(parent),
            }
            Err(e)
        }
    }
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// serde reports a missing field on the enclosing object; pull the field's name out.
fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

pub(crate) fn body_rejection(rej: BytesRejection) -> ApiError {
    if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than this endpoint accepts",
        )
    } else {
        ApiError::bad_request("unreadable_body", rej.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Dest {
        name: String,
        port: u16,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = parse_json::<Dest>(br#"{"name":"a","port":"x"}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "validation_failed");
        assert_eq!(e.field.as_deref(), Some("port"));
    }

    #[test]
    fn nested_paths_are_reported() {
        let e = parse_json::<Dest>(br#"{"name":"a","port":1,"tags":["ok",3]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("tags[1]"));
    }

    #[test]
    fn a_missing_nested_field_is_named_by_its_whole_path() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            dest: Vec<Dest>,
        }
        let e =
            parse_json::<Outer>(br#"{"dest":[{"name":"a","port":1},{"name":"b"}]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("dest[1].port"));
    }

    #[test]
    fn missing_field_is_named() {
        let e = parse_json::<Dest>(br#"{"name":"a"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("port"));
        assert!(e.detail.contains("port"));
    }

    #[test]
    fn syntax_errors_are_malformed_json_with_position() {
        let e = parse_json::<Dest>(b"{\"name\": ").unwrap_err();
        assert_eq!(e.code, "malformed_json");
        assert!(e.detail.contains("line 1"), "{}", e.detail);
    }
}
