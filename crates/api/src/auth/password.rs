//! Password hashing (argon2id) and the password policies of the two realms.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

use crate::error::ApiError;

/// Which user pool an account is in; each has its own password policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// Operators, admins and advertising staff: at least 12 characters with upper and lower
    /// case, a digit and a special character.
    Staff,
    /// Viewers: at least 8 characters with upper and lower case and a digit.
    Audience,
}

impl Realm {
    pub fn as_str(self) -> &'static str {
        match self {
            Realm::Staff => "staff",
            Realm::Audience => "audience",
        }
    }

    pub fn parse(s: &str) -> Option<Realm> {
        match s {
            "staff" => Some(Realm::Staff),
            "audience" => Some(Realm::Audience),
            _ => None,
        }
    }
}

/// Checks `password` against the realm's policy; the error names what is missing.
pub fn check_policy(realm: Realm, password: &str) -> Result<(), ApiError> {
    let (min, special) = match realm {
        Realm::Staff => (12, true),
        Realm::Audience => (8, false),
    };
    let mut missing = Vec::new();
    if password.chars().count() < min {
        missing.push(format!("at least {min} characters"));
    }
    if !password.chars().any(|c| c.is_uppercase()) {
        missing.push("an upper-case letter".to_string());
    }
    if !password.chars().any(|c| c.is_lowercase()) {
        missing.push("a lower-case letter".to_string());
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        missing.push("a digit".to_string());
    }
    if special
        && !password
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
    {
        missing.push("a special character".to_string());
    }
    if password.chars().count() > 256 {
        missing.push("at most 256 characters".to_string());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "password",
            format!("the password needs {}", missing.join(", ")),
        ))
    }
}

/// argon2id with the crate's default (OWASP) parameters, in PHC string form.
pub fn hash(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Constant-time verification against a stored PHC hash.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether `password` matches any of `hashes` (the current one and the history), off the async
/// threads since each check costs an argon2 run.
pub async fn reused(password: &str, hashes: Vec<String>) -> Result<bool, ApiError> {
    let candidate = password.to_string();
    tokio::task::spawn_blocking(move || hashes.iter().any(|h| verify(&candidate, h)))
        .await
        .map_err(ApiError::internal)
}

/// [`hash`] off the async threads.
pub async fn hash_blocking(password: &str) -> Result<String, ApiError> {
    let p = password.to_string();
    tokio::task::spawn_blocking(move || hash(&p))
        .await
        .map_err(ApiError::internal)?
}

/// [`verify`] off the async threads.
pub async fn verify_blocking(password: &str, stored: &str) -> Result<bool, ApiError> {
    let p = password.to_string();
    let s = stored.to_string();
    tokio::task::spawn_blocking(move || verify(&p, &s))
        .await
        .map_err(ApiError::internal)
}

/// A hash to verify against when the account does not exist, so that timing does not reveal
/// which emails have accounts.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("not-a-real-password-Aa1!").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_policy_names_what_is_missing() {
        let e = check_policy(Realm::Staff, "short").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("password"));
        assert!(e.detail.contains("at least 12 characters"));
        assert!(e.detail.contains("a special character"));
        assert!(check_policy(Realm::Staff, "Correct-Horse-9").is_ok());
        assert!(check_policy(Realm::Staff, "correct-horse-9x").is_err());
    }

    #[test]
    fn audience_policy_is_lighter() {
        assert!(check_policy(Realm::Audience, "Viewer123").is_ok());
        assert!(check_policy(Realm::Audience, "viewer123").is_err());
    }

    #[test]
    fn hashes_verify_only_the_right_password() {
        let h = hash("Correct-Horse-9").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Correct-Horse-9", &h));
        assert!(!verify("Correct-Horse-8", &h));
        assert!(!verify("x", "not a hash"));
    }
}
