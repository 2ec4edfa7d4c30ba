//! Backups (`/api/v1/backups`, seed 002 "Backup & Restore"): manual and scheduled snapshots of
//! the whole database taken while the server runs, download and upload of the encrypted files,
//! and the selective restore of the advertising workspace's entity types with a dry run.
//!
//! The file format, the snapshot and the restore live in `lunora_store::backup`; this module
//! keeps the files under `{data_dir}/backups/`, answers HTTP, and runs the scheduler. A backup
//! row exists only once its file is whole: the file is written to a temporary name, fsynced,
//! renamed and the directory fsynced before the row is inserted, so a crash never lists half a
//! backup (it can leave an unlisted temporary file, removed by the next backup).
//!
//! Backups belong to the organization whose administrator (or schedule) made them; another
//! organization's backup answers 404. The file holds the whole database, sealed with a key
//! derived from this server's master key, so a downloaded file is readable only by this server;
//! a restore changes only rows of the caller's organization.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lunora_store::backup::{self, BackupError, EntityChanges, ENTITY_TYPES};
use lunora_store::{BackupRecord, BackupSchedule, RestoreOutcome};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Permission, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::util::rfc3339;
use crate::AppState;

/// The largest file `POST /backups/upload` accepts.
pub const UPLOAD_LIMIT: usize = 512 * 1024 * 1024;

const DAY_MS: i64 = 86_400_000;

/// One backup at a time: a snapshot is held in memory while it is sealed.
static TAKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn router() -> OpenApiRouter<AppState> {
    let upload = OpenApiRouter::new()
        .routes(routes!(upload_backup))
        .layer(axum::extract::DefaultBodyLimit::max(UPLOAD_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(list_backups, create_backup))
        .routes(routes!(get_schedule, put_schedule))
        .routes(routes!(restore_backup))
        .routes(routes!(get_backup, delete_backup))
        .routes(routes!(download_backup))
        .merge(upload)
}

fn dir(state: &AppState) -> PathBuf {
    state.config.data_dir.join("backups")
}

// ---------------------------------------------------------------------------------------------
// Views

/// A backup file and what it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupView {
    pub id: String,
    /// `manual`, `daily`, `weekly`, `monthly` (scheduled) or `uploaded`.
    pub kind: String,
    /// `ready`.
    pub status: String,
    /// When the snapshot was taken.
    pub created_at: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the whole file, checked on download and restore.
    pub sha256: String,
    /// Id of the server key that sealed the file.
    pub key_id: String,
    pub format_version: i64,
    /// Rows of this organization per entity type (and its users) in the snapshot.
    pub row_counts: BTreeMap<String, u64>,
    /// The user who made it; null for scheduled backups.
    pub created_by: Option<String>,
}

fn view(b: BackupRecord) -> BackupView {
    BackupView {
        row_counts: serde_json::from_str(&b.row_counts).unwrap_or_default(),
        id: b.id,
        kind: b.kind,
        status: b.status,
        created_at: rfc3339(b.created_at),
        size_bytes: b.size_bytes,
        sha256: b.sha256,
        key_id: b.key_id,
        format_version: b.format_version,
        created_by: b.created_by,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupList {
    pub items: Vec<BackupView>,
}

/// The scheduled backup: taken daily at `hour_utc`; the first of a calendar month is kept as
/// `monthly`, the first of an ISO week as `weekly`, the others as `daily`, each for its number
/// of days (seed defaults 7 / 30 / 365).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    pub enabled: bool,
    /// 0–23.
    pub hour_utc: i64,
    /// 1–3650.
    pub daily_retention_days: i64,
    /// 1–3650.
    pub weekly_retention_days: i64,
    /// 1–3650.
    pub monthly_retention_days: i64,
    /// `YYYY-MM-DD` of the last scheduled backup (read-only).
    #[serde(default, skip_deserializing)]
    pub last_run_day: Option<String>,
}

/// Restore entity types of the caller's organization from a backup.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    pub backup_id: String,
    /// Any of `clients` (with their linked client users), `shows`, `episodes` (with talent),
    /// `campaigns` (with their account teams), `availability`.
    pub entity_types: Vec<String>,
    /// Only report what would change (the default).
    #[serde(default = "yes")]
    pub dry_run: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangedRow {
    pub id: String,
    /// Columns that differ; child sets by name (`team`, `talent`, `user_ids`).
    pub fields: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedRow {
    pub id: String,
    pub reason: String,
}

/// What a restore did, or would do, to one entity type.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntityReport {
    pub entity_type: String,
    /// Rows in the backup missing now: inserted.
    pub added: Vec<String>,
    /// Rows that differ from the backup: put back.
    pub changed: Vec<ChangedRow>,
    /// Rows made since the backup: deleted.
    pub removed: Vec<String>,
    pub unchanged: u64,
    /// Parts that cannot be restored (links to users deleted since).
    pub skipped: Vec<SkippedRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreReport {
    pub backup_id: String,
    pub dry_run: bool,
    pub entity_types: Vec<EntityReport>,
}

fn report(c: EntityChanges) -> EntityReport {
    EntityReport {
        entity_type: c.entity_type,
        added: c.added,
        changed: c
            .changed
            .into_iter()
            .map(|(id, fields)| ChangedRow { id, fields })
            .collect(),
        removed: c.removed,
        unchanged: c.unchanged,
        skipped: c
            .skipped
            .into_iter()
            .map(|(id, reason)| SkippedRow { id, reason })
            .collect(),
    }
}

fn file_error(e: BackupError) -> ApiError {
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    match e {
        BackupError::ForeignKey { .. } => {
            ApiError::new(unprocessable, "backup_foreign_key", e.to_string())
        }
        BackupError::UnsupportedVersion(_) => {
            ApiError::new(unprocessable, "backup_unsupported_version", e.to_string())
        }
        BackupError::NotABackup | BackupError::Corrupt(_) => {
            ApiError::new(unprocessable, "backup_corrupt", e.to_string())
        }
        BackupError::Store(s) => s.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// Writes `bytes` as `dir/name`: temporary file, fsync, rename, directory fsync.
fn write_durably(dir: &FsPath, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Removes temporary files a crash left behind.
fn sweep_temporaries(dir: &FsPath) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Stores a sealed file and lists it.
async fn store_file(
    state: &AppState,
    organization_id: &str,
    kind: &str,
    created_by: Option<&str>,
    created_at: i64,
    file: bytes::Bytes,
    counts: &BTreeMap<String, u64>,
) -> ApiResult<BackupRecord> {
    let id = lunora_store::new_id();
    let file_name = format!("{id}.lbk");
    let record = BackupRecord {
        id,
        organization_id: organization_id.to_string(),
        kind: kind.to_string(),
        status: "ready".into(),
        file_name: file_name.clone(),
        size_bytes: file.len() as i64,
        sha256: backup::checksum(&file),
        key_id: state.secrets.key_id(),
        format_version: i64::from(backup::FORMAT_VERSION),
        row_counts: serde_json::to_string(counts).unwrap_or_else(|_| "{}".into()),
        created_by: created_by.map(str::to_string),
        created_at,
    };
    let d = dir(state);
    tokio::task::spawn_blocking(move || {
        sweep_temporaries(&d);
        write_durably(&d, &file_name, &file)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::internal(format!("cannot write the backup file: {e}")))?;
    if let Err(e) = state.db.insert_backup(&record).await {
        // Unlisted, the file could never be downloaded or deleted through the API.
        remove_file(state, &record).await;
        return Err(e.into());
    }
    Ok(record)
}

/// Deletes backup files no backup row lists: a crash between a file's rename and its row's
/// insert leaves one, which nothing could reach (and no answer had promised it). Files younger
/// than `min_age` are left alone, as a backup being taken right now is one of them.
pub async fn sweep_unlisted(state: &AppState, min_age: std::time::Duration) -> usize {
    let listed: std::collections::HashSet<String> = match state.db.backup_file_names().await {
        Ok(names) => names.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the backups to sweep unlisted files");
            return 0;
        }
    };
    let d = dir(state);
    tokio::task::spawn_blocking(move || {
        let Ok(entries) = std::fs::read_dir(&d) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".lbk") || name.starts_with('.') || listed.contains(&name) {
                continue;
            }
            let old_enough = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            if old_enough && std::fs::remove_file(e.path()).is_ok() {
                tracing::warn!(file = %name, "removed a backup file no backup lists (left by a crash)");
                removed += 1;
            }
        }
        removed
    })
    .await
    .unwrap_or(0)
}

/// Takes a snapshot of the whole database, seals it and lists it for the organization.
pub async fn take_backup(
    state: &AppState,
    organization_id: &str,
    kind: &str,
    created_by: Option<&str>,
) -> ApiResult<BackupRecord> {
    let _one = TAKING.lock().await;
    let snap = state.db.snapshot(&state.secrets.key_id()).await?;
    let counts = backup::entity_counts(&snap, organization_id);
    let created_at = snap.header.created_at;
    let secrets = state.secrets.clone();
    let file: bytes::Bytes = tokio::task::spawn_blocking(move || backup::seal(&secrets, &snap))
        .await
        .map_err(ApiError::internal)??
        .into();
    let b = store_file(
        state,
        organization_id,
        kind,
        created_by,
        created_at,
        file,
        &counts,
    )
    .await?;
    tracing::info!(id = %b.id, kind, size = b.size_bytes, "backup taken");
    Ok(b)
}

async fn load(state: &AppState, who: &Principal, id: &str) -> ApiResult<BackupRecord> {
    state
        .db
        .backup(&who.organization_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such backup"))
}

/// The file of a listed backup, checked against the checksum recorded when it was made.
async fn read_checked(state: &AppState, b: &BackupRecord) -> ApiResult<bytes::Bytes> {
    let path = dir(state).join(&b.file_name);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ApiError::new(
                StatusCode::GONE,
                "backup_file_missing",
                "the file of this backup is no longer on the server",
            )
        } else {
            ApiError::internal(format!("cannot read the backup file: {e}"))
        }
    })?;
    if backup::checksum(&bytes) != b.sha256 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "backup_corrupt",
            "checksum mismatch: the file was changed after it was made",
        ));
    }
    Ok(bytes.into())
}

async fn open_file(state: &AppState, bytes: bytes::Bytes) -> ApiResult<lunora_store::Snapshot> {
    let secrets = state.secrets.clone();
    tokio::task::spawn_blocking(move || backup::open(&secrets, &bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(file_error)
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// The organization's backups, newest first.
#[utoipa::path(get, path = "/backups", tag = "backups", security(("bearer" = [])),
    responses((status = 200, body = BackupList), (status = 403, body = crate::Problem)))]
async fn list_backups(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<BackupList>> {
    who.require(Permission::BackupsManage)?;
    let items = state.db.list_backups(&who.organization_id).await?;
    Ok(axum::Json(BackupList {
        items: items.into_iter().map(view).collect(),
    }))
}

/// Take a backup now: a consistent snapshot of the whole database, taken while the server runs.
#[utoipa::path(post, path = "/backups", tag = "backups", security(("bearer" = [])),
    responses((status = 201, body = BackupView), (status = 403, body = crate::Problem)))]
async fn create_backup(State(state): State<AppState>, who: Principal) -> ApiResult<Response> {
    who.require(Permission::BackupsManage)?;
    let b = take_backup(&state, &who.organization_id, "manual", Some(&who.user_id)).await?;
    let location = format!("/api/v1/backups/{}", b.id);
    let mut res = (StatusCode::CREATED, axum::Json(view(b))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// One backup.
#[utoipa::path(get, path = "/backups/{id}", tag = "backups", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = BackupView), (status = 404, body = crate::Problem)))]
async fn get_backup(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<BackupView>> {
    who.require(Permission::BackupsManage)?;
    Ok(axum::Json(view(load(&state, &who, &id).await?)))
}

/// Delete a backup and its file.
#[utoipa::path(delete, path = "/backups/{id}", tag = "backups", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::Problem)))]
async fn delete_backup(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Permission::BackupsManage)?;
    let b = state
        .db
        .delete_backup(&who.organization_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such backup"))?;
    remove_file(&state, &b).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_file(state: &AppState, b: &BackupRecord) {
    let path = dir(state).join(&b.file_name);
    if let Err(e) = tokio::fs::remove_file(&path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a backup file");
        }
    }
}

/// Download the encrypted backup file (readable only by this server). Its checksum is verified
/// first: a file changed on disk answers 422 `backup_corrupt`.
#[utoipa::path(get, path = "/backups/{id}/download", tag = "backups", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = crate::Problem), (status = 422, body = crate::Problem)))]
async fn download_backup(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    who.require(Permission::BackupsManage)?;
    let b = load(&state, &who, &id).await?;
    let bytes = read_checked(&state, &b).await?;
    let day = rfc3339(b.created_at);
    let name = format!("lunora-backup-{}-{}.lbk", &day[..10], b.id);
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&b.sha256) {
        h.insert("x-checksum-sha256", v);
    }
    Ok(res)
}

/// Import a downloaded backup file (`application/octet-stream`, at most 512 MiB). It is checked
/// whole (format, checksum, this server's key, authenticated decryption) before it is listed,
/// as kind `uploaded` with the time of its snapshot. A file of another server answers 422
/// `backup_foreign_key`; a changed or damaged one 422 `backup_corrupt`.
#[utoipa::path(post, path = "/backups/upload", tag = "backups",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses((status = 201, body = BackupView), (status = 413, body = crate::Problem),
        (status = 422, body = crate::Problem)))]
async fn upload_backup(
    State(state): State<AppState>,
    who: Principal,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    who.require(Permission::BackupsManage)?;
    let snap = open_file(&state, body.clone()).await?;
    let counts = backup::entity_counts(&snap, &who.organization_id);
    let b = store_file(
        &state,
        &who.organization_id,
        "uploaded",
        Some(&who.user_id),
        snap.header.created_at,
        body,
        &counts,
    )
    .await?;
    let location = format!("/api/v1/backups/{}", b.id);
    let mut res = (StatusCode::CREATED, axum::Json(view(b))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Restore entity types of the caller's organization to their state in a backup: rows missing
/// now are inserted, changed rows put back, rows made since deleted, all in one transaction;
/// other types (and users) are not touched. `dry_run` (the default) only reports. Restoring a
/// type whose rows would point at rows of another type that are not there (campaigns of an
/// advertiser deleted since, or advertisers still used by newer campaigns) answers 409
/// `restore_missing_references`, changing nothing: include that type too. Links to users
/// deleted since are skipped and reported.
#[utoipa::path(post, path = "/backups/restore", tag = "backups", request_body = RestoreBody,
    security(("bearer" = [])),
    responses((status = 200, body = RestoreReport), (status = 400, body = crate::Problem),
        (status = 404, body = crate::Problem), (status = 409, body = crate::Problem),
        (status = 422, body = crate::Problem)))]
async fn restore_backup(
    State(state): State<AppState>,
    who: Principal,
    Json(b): Json<RestoreBody>,
) -> ApiResult<axum::Json<RestoreReport>> {
    who.require(Permission::BackupsManage)?;
    if b.entity_types.is_empty() {
        return Err(ApiError::invalid(
            "entity_types",
            format!("name at least one of {}", ENTITY_TYPES.join(", ")),
        ));
    }
    for t in &b.entity_types {
        if !ENTITY_TYPES.contains(&t.as_str()) {
            return Err(ApiError::invalid(
                "entity_types",
                format!(
                    "{t:?} cannot be restored; entity types are {}",
                    ENTITY_TYPES.join(", ")
                ),
            ));
        }
    }
    let record = load(&state, &who, &b.backup_id).await?;
    let bytes = read_checked(&state, &record).await?;
    let snap = open_file(&state, bytes).await?;
    let outcome = state
        .db
        .restore_entities(
            &snap,
            &who.organization_id,
            &b.entity_types,
            b.dry_run,
            Some(&who.user_id),
            &record.id,
        )
        .await?;
    match outcome {
        RestoreOutcome::Done(changes) => {
            if !b.dry_run {
                tracing::info!(backup = %record.id, types = ?b.entity_types, "restored from a backup");
                announce_restore(&state, &who, &record.id, &changes);
            }
            Ok(axum::Json(RestoreReport {
                backup_id: record.id,
                dry_run: b.dry_run,
                entity_types: changes.into_iter().map(report).collect(),
            }))
        }
        RestoreOutcome::MissingReferences(missing) => {
            let parts: Vec<String> = missing
                .iter()
                .map(|m| {
                    format!(
                        "{}.{} would refer to {} that are not there ({}); include {:?} or {:?} \
                         in entity_types",
                        m.entity_type,
                        m.field,
                        m.refers_to,
                        m.ids.join(", "),
                        m.refers_to,
                        m.entity_type
                    )
                })
                .collect();
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "restore_missing_references",
                format!("nothing was restored: {}", parts.join("; ")),
            ))
        }
    }
}

/// Tells open pages of the workspace: `backup.restored` on `ads`, and `{entity}.restored` on
/// the topic of every row added, changed or removed (`campaign:{id}`, …).
fn announce_restore(state: &AppState, who: &Principal, backup_id: &str, changes: &[EntityChanges]) {
    use crate::events::catalog::WorkspaceEvent;
    let org = &who.organization_id;
    let summary: serde_json::Map<String, serde_json::Value> = changes
        .iter()
        .map(|c| {
            (
                c.entity_type.clone(),
                serde_json::json!({"added": c.added.len(), "changed": c.changed.len(),
                    "removed": c.removed.len()}),
            )
        })
        .collect();
    state.events.publish(
        org,
        "ads".to_string(),
        &WorkspaceEvent::new(
            "backup.restored",
            serde_json::json!({"backup_id": backup_id, "actor_id": who.user_id,
                "entity_types": summary}),
        ),
    );
    for c in changes {
        let topic = match c.entity_type.as_str() {
            "clients" => "client",
            "shows" => "show",
            "episodes" => "episode",
            "campaigns" => "campaign",
            _ => continue,
        };
        let ids = c
            .added
            .iter()
            .chain(c.changed.iter().map(|(id, _)| id))
            .chain(c.removed.iter());
        for id in ids {
            state.events.publish(
                org,
                format!("{topic}:{id}"),
                &WorkspaceEvent::new(
                    format!("{topic}.restored"),
                    serde_json::json!({"id": id, "backup_id": backup_id}),
                ),
            );
        }
    }
}

fn schedule_view(s: BackupSchedule) -> ScheduleView {
    ScheduleView {
        enabled: s.enabled,
        hour_utc: s.hour_utc,
        daily_retention_days: s.daily_days,
        weekly_retention_days: s.weekly_days,
        monthly_retention_days: s.monthly_days,
        last_run_day: s.last_run_day,
    }
}

/// The scheduled backup of the organization.
#[utoipa::path(get, path = "/backups/schedule", tag = "backups", security(("bearer" = [])),
    responses((status = 200, body = ScheduleView), (status = 403, body = crate::Problem)))]
async fn get_schedule(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<ScheduleView>> {
    who.require(Permission::BackupsManage)?;
    Ok(axum::Json(schedule_view(
        state.db.backup_schedule(&who.organization_id).await?,
    )))
}

/// Change the scheduled backup.
#[utoipa::path(put, path = "/backups/schedule", tag = "backups", request_body = ScheduleView,
    security(("bearer" = [])),
    responses((status = 200, body = ScheduleView), (status = 400, body = crate::Problem)))]
async fn put_schedule(
    State(state): State<AppState>,
    who: Principal,
    Json(b): Json<ScheduleView>,
) -> ApiResult<axum::Json<ScheduleView>> {
    who.require(Permission::BackupsManage)?;
    if !(0..=23).contains(&b.hour_utc) {
        return Err(ApiError::invalid("hour_utc", "hour_utc must be 0–23"));
    }
    for (field, v) in [
        ("daily_retention_days", b.daily_retention_days),
        ("weekly_retention_days", b.weekly_retention_days),
        ("monthly_retention_days", b.monthly_retention_days),
    ] {
        if !(1..=3650).contains(&v) {
            return Err(ApiError::invalid(field, format!("{field} must be 1–3650")));
        }
    }
    let mut s = state.db.backup_schedule(&who.organization_id).await?;
    s.enabled = b.enabled;
    s.hour_utc = b.hour_utc;
    s.daily_days = b.daily_retention_days;
    s.weekly_days = b.weekly_retention_days;
    s.monthly_days = b.monthly_retention_days;
    state.db.put_backup_schedule(&s).await?;
    Ok(axum::Json(schedule_view(s)))
}

// ---------------------------------------------------------------------------------------------
// The scheduler

/// `YYYY-MM-DD` (UTC) of `ms`.
fn day_of(ms: i64) -> String {
    rfc3339(ms)[..10].to_string()
}

/// Index of the ISO week (Monday first) of `ms`, counted from 1970.
fn week_of(ms: i64) -> i64 {
    // 1970-01-01 was a Thursday.
    (ms.div_euclid(DAY_MS) + 3).div_euclid(7)
}

const SCHEDULED: [&str; 3] = ["daily", "weekly", "monthly"];

/// The kind of a scheduled backup taken at `now`, given the organization's backups: the first
/// scheduled one of a calendar month is `monthly`, else the first of a week `weekly`, else
/// `daily`.
pub fn classify(existing: &[BackupRecord], now: i64) -> &'static str {
    let scheduled = || {
        existing
            .iter()
            .filter(|b| SCHEDULED.contains(&b.kind.as_str()))
    };
    let month = &day_of(now)[..7];
    if !scheduled().any(|b| &day_of(b.created_at)[..7] == month) {
        "monthly"
    } else if !scheduled().any(|b| week_of(b.created_at) == week_of(now)) {
        "weekly"
    } else {
        "daily"
    }
}

/// Scheduled backups past their kind's retention at `now`; manual and uploaded ones are kept
/// until deleted.
pub fn expired<'a>(
    existing: &'a [BackupRecord],
    s: &BackupSchedule,
    now: i64,
) -> Vec<&'a BackupRecord> {
    existing
        .iter()
        .filter(|b| {
            let days = match b.kind.as_str() {
                "daily" => s.daily_days,
                "weekly" => s.weekly_days,
                "monthly" => s.monthly_days,
                _ => return false,
            };
            b.created_at + days * DAY_MS <= now
        })
        .collect()
}

/// Runs the schedules due at `now`; `attempts` remembers failed tries so a failing backup is
/// retried every 15 minutes, not every tick.
pub async fn run_due(state: &AppState, now: i64, attempts: &mut HashMap<String, i64>) {
    let schedules = match state.db.enabled_backup_schedules().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read backup schedules");
            return;
        }
    };
    let hour = now.div_euclid(3_600_000).rem_euclid(24);
    let today = day_of(now);
    for mut s in schedules {
        let org = s.organization_id.clone();
        if hour < s.hour_utc || s.last_run_day.as_deref() == Some(today.as_str()) {
            continue;
        }
        if attempts.get(&org).is_some_and(|t| now - t < 15 * 60_000) {
            continue;
        }
        attempts.insert(org.clone(), now);
        match scheduled_backup(state, &s, now).await {
            Ok(()) => {
                attempts.remove(&org);
                s.last_run_day = Some(today.clone());
                if let Err(e) = state.db.put_backup_schedule(&s).await {
                    tracing::warn!(error = %e, "cannot record the scheduled backup");
                }
                let _ = crate::alerts::clear(state, &org, "backup_failed", "backups").await;
            }
            Err(e) => {
                tracing::error!(organization = %org, error = %e.detail, "scheduled backup failed");
                let _ = crate::alerts::raise(
                    state,
                    &org,
                    "backup_failed",
                    "critical",
                    "backups",
                    format!("the scheduled backup failed: {}", e.detail),
                )
                .await;
            }
        }
    }
}

async fn scheduled_backup(state: &AppState, s: &BackupSchedule, now: i64) -> ApiResult<()> {
    let existing = state.db.list_backups(&s.organization_id).await?;
    let kind = classify(&existing, now);
    take_backup(state, &s.organization_id, kind, None).await?;
    for b in expired(&existing, s, now) {
        if state
            .db
            .delete_backup(&s.organization_id, &b.id)
            .await?
            .is_some()
        {
            remove_file(state, b).await;
            tracing::info!(id = %b.id, kind = %b.kind, "pruned a backup past retention");
        }
    }
    Ok(())
}

/// Checks the schedules every minute until `shutdown`.
pub fn spawn(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut attempts = HashMap::new();
        sweep_unlisted(&state, std::time::Duration::from_secs(60)).await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            run_due(&state, lunora_store::now_ms(), &mut attempts).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: &str, kind: &str, created_at: i64) -> BackupRecord {
        BackupRecord {
            id: id.into(),
            organization_id: "o".into(),
            kind: kind.into(),
            status: "ready".into(),
            file_name: format!("{id}.lbk"),
            size_bytes: 1,
            sha256: String::new(),
            key_id: String::new(),
            format_version: 1,
            row_counts: "{}".into(),
            created_by: None,
            created_at,
        }
    }

    // 2026-06-01 was a Monday.
    const JUNE_1: i64 = 1_780_272_000_000;

    #[test]
    fn the_first_of_a_month_is_monthly_of_a_week_weekly() {
        assert_eq!(day_of(JUNE_1), "2026-06-01");
        let hour = 3 * 3_600_000;
        // Nothing yet: monthly.
        assert_eq!(classify(&[], JUNE_1 + hour), "monthly");
        // A manual backup does not count.
        assert_eq!(
            classify(&[b("m", "manual", JUNE_1)], JUNE_1 + hour),
            "monthly"
        );
        let mut have = vec![b("1", "monthly", JUNE_1 + hour)];
        // Tuesday of the same week: daily.
        assert_eq!(classify(&have, JUNE_1 + DAY_MS + hour), "daily");
        // The next Monday: weekly.
        have.push(b("2", "daily", JUNE_1 + DAY_MS + hour));
        assert_eq!(classify(&have, JUNE_1 + 7 * DAY_MS + hour), "weekly");
        // July 1st: monthly again.
        assert_eq!(classify(&have, JUNE_1 + 30 * DAY_MS + hour), "monthly");
    }

    #[test]
    fn retention_prunes_by_kind_with_an_injected_clock() {
        let s = BackupSchedule::default_for("o");
        let all = vec![
            b("d", "daily", JUNE_1),
            b("w", "weekly", JUNE_1),
            b("m", "monthly", JUNE_1),
            b("x", "manual", JUNE_1),
            b("u", "uploaded", JUNE_1),
        ];
        let ids = |now: i64| -> Vec<String> {
            expired(&all, &s, now)
                .iter()
                .map(|b| b.id.clone())
                .collect()
        };
        assert!(ids(JUNE_1 + 7 * DAY_MS - 1).is_empty());
        assert_eq!(ids(JUNE_1 + 7 * DAY_MS), ["d"]);
        assert_eq!(ids(JUNE_1 + 29 * DAY_MS), ["d"]);
        assert_eq!(ids(JUNE_1 + 30 * DAY_MS), ["d", "w"]);
        assert_eq!(ids(JUNE_1 + 365 * DAY_MS), ["d", "w", "m"]);
        assert_eq!(
            ids(JUNE_1 + 10_000 * DAY_MS),
            ["d", "w", "m"],
            "manual and uploaded stay"
        );
        let short = BackupSchedule {
            daily_days: 1,
            ..BackupSchedule::default_for("o")
        };
        assert_eq!(expired(&all, &short, JUNE_1 + DAY_MS).len(), 1);
    }

    #[test]
    fn weeks_start_on_monday() {
        // Sunday 2026-06-07 and Monday 2026-06-01 share a week; Monday 06-08 starts the next.
        assert_eq!(week_of(JUNE_1), week_of(JUNE_1 + 6 * DAY_MS + 1));
        assert_eq!(week_of(JUNE_1) + 1, week_of(JUNE_1 + 7 * DAY_MS));
    }
}
