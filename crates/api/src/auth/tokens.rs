//! Short-lived JWT access tokens (HS256, key derived from the master key).

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Organization id.
    pub org: String,
    pub role: String,
    /// Session id (refresh-token family); revoking it stops the access token at once.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub typ: String,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(****)")
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8; 32]) -> Self {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn issue_access(
        &self,
        user_id: &str,
        org: &str,
        role: &str,
        session_id: &str,
        ttl_secs: i64,
    ) -> Result<String, ApiError> {
        let now = lunora_store::now_ms() / 1000;
        let claims = Claims {
            sub: user_id.to_string(),
            org: org.to_string(),
            role: role.to_string(),
            sid: session_id.to_string(),
            iat: now,
            exp: now + ttl_secs,
            typ: "access".to_string(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    pub fn verify_access(&self, token: &str) -> Result<Claims, ApiError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        v.validate_exp = true;
        let data = decode::<Claims>(token, &self.decoding, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("the access token expired; refresh it")
                        .with_code("token_expired")
                }
                _ => ApiError::unauthorized("the access token is not valid")
                    .with_code("invalid_token"),
            }
        })?;
        if data.claims.typ != "access" {
            return Err(ApiError::unauthorized("not an access token").with_code("invalid_token"));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_foreign_ones_do_not() {
        let k = TokenKeys::new(&[1u8; 32]);
        let t = k.issue_access("u", "o", "admin", "s", 60).unwrap();
        let c = k.verify_access(&t).unwrap();
        assert_eq!((c.sub.as_str(), c.sid.as_str()), ("u", "s"));
        let other = TokenKeys::new(&[2u8; 32]);
        assert_eq!(other.verify_access(&t).unwrap_err().code, "invalid_token");
        let expired = k.issue_access("u", "o", "admin", "s", -60).unwrap();
        assert_eq!(k.verify_access(&expired).unwrap_err().code, "token_expired");
        assert!(k.verify_access("garbage").is_err());
    }
}
