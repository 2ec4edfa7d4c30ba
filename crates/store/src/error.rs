use thiserror::Error;

/// Everything the store can fail with. Messages name the database but never its credentials.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("unsupported database URL scheme {scheme:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl { scheme: String },

    #[error("cannot reach the database at {target}: {source}")]
    Unreachable {
        target: String,
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "the database at {target} has schema version {db_version}, newer than this binary knows \
         (up to {binary_version}); run a newer Lunora or restore a backup"
    )]
    TooNew {
        target: String,
        db_version: i64,
        binary_version: i64,
    },

    #[error("applying database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    #[error("the master key at {path} is unusable: {message}")]
    MasterKey { path: String, message: String },

    #[error("a stored secret cannot be decrypted with this master key")]
    SecretUnreadable,

    #[error("not found")]
    NotFound,

    #[error("conflict: {0}")]
    Conflict(String),

    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
}

impl StoreError {
    /// True when no pooled connection became free within the pool's acquire timeout: the
    /// database is reachable but every connection is busy (the server is overloaded).
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Sqlx(sqlx::Error::PoolTimedOut))
    }

    /// Maps a unique-constraint violation to [`StoreError::Conflict`] with `what` as its message.
    pub fn unique_as_conflict(self, what: &str) -> StoreError {
        match &self {
            StoreError::Sqlx(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                StoreError::Conflict(what.to_string())
            }
            _ => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_exhausted_pool_is_busy() {
        assert!(StoreError::Sqlx(sqlx::Error::PoolTimedOut).is_busy());
        assert!(!StoreError::Sqlx(sqlx::Error::RowNotFound).is_busy());
        assert!(!StoreError::NotFound.is_busy());
    }
}
