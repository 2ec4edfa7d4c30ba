//! First start: the first administrator comes from the configuration, or from a one-time setup
//! link printed in the log.

use lunora_store::{Db, NewUser};

use crate::auth::password::{self, Realm};
use crate::error::ApiError;

/// Where the hash of the one-time setup token is kept (`instance_settings`).
pub const SETUP_TOKEN_KEY: &str = "setup_token_hash";

/// What start-up did about the first administrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// Accounts exist already; nothing to do.
    Existing,
    /// Created from the configured email and password.
    Created { email: String },
    /// No credentials configured and no accounts: a one-time setup token was logged; sign-in
    /// needs an administrator first (`POST /api/v1/setup`).
    NoAdministrator,
}

/// Creates the default organization and its first administrator when the database has no
/// accounts and both credentials are configured. A password that breaks the staff policy is
/// refused with the policy's words.
pub async fn first_admin(
    db: &Db,
    email: Option<&str>,
    password: Option<&str>,
) -> Result<Bootstrap, ApiError> {
    if db.count_users().await? > 0 {
        return Ok(Bootstrap::Existing);
    }
    let (Some(email), Some(pw)) = (email, password) else {
        // A one-time setup token, replaced at every start until an administrator exists.
        let token = lunora_store::crypto::random_secret("setup_");
        db.ensure_organization("default", "Default organization")
            .await?;
        db.set_setting(SETUP_TOKEN_KEY, &lunora_store::crypto::hash_secret(&token))
            .await?;
        tracing::warn!(
            setup_path = %format!("/setup?token={token}"),
            "no accounts yet: create the first administrator once with POST /api/v1/setup \
             {{\"token\": \"{token}\", \"email\": …, \"password\": …}}, or set \
             LUNORA_ADMIN_EMAIL and LUNORA_ADMIN_PASSWORD and restart"
        );
        return Ok(Bootstrap::NoAdministrator);
    };
    let email = email.trim();
    if !email.contains('@') || email.len() > 320 {
        return Err(ApiError::invalid(
            "admin.email",
            format!("`{email}` is not an email address"),
        ));
    }
    password::check_policy(Realm::Staff, pw).map_err(|e| e.with_field("admin.password"))?;
    let hash = password::hash(pw)?;
    let org = db
        .ensure_organization("default", "Default organization")
        .await?;
    db.create_user(&NewUser {
        organization_id: &org.id,
        email,
        display_name: "Administrator",
        realm: Realm::Staff.as_str(),
        role: "admin",
        password_hash: Some(&hash),
        // The first administrator also manages the platform's organizations.
        superadmin: true,
        email_verified: true,
    })
    .await?;
    Ok(Bootstrap::Created {
        email: email.to_lowercase(),
    })
}
