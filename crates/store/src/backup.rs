//! Backups: a logical, consistent snapshot of the whole database in one encrypted file, and the
//! selective restore of the advertising workspace's entity types from such a file.
//!
//! A snapshot reads every table inside ONE read transaction (SQLite: a WAL read transaction,
//! whose first read fixes the snapshot; PostgreSQL: `REPEATABLE READ, READ ONLY`), so writes that
//! run meanwhile are either wholly in it or wholly absent. The schema holds only `TEXT` and
//! `BIGINT` columns, so every cell is a JSON string, integer or null and one file restores on
//! either engine.
//!
//! The file (format 1):
//!
//! ```text
//! "LUNORABK" | format u16 BE | header length u32 BE | header JSON
//! | nonce (12) ‖ AES-256-GCM(gzip(JSON lines)) ‖ tag (16) | SHA-256 of everything before (32)
//! ```
//!
//! The header is plain (key id, created_at, schema version, tables and row counts) and is the
//! AEAD's associated data, so it cannot be changed without the body failing to open. The key is
//! derived from the server's master key; the key id in the header tells a file of another server
//! (`Foreign`) from a damaged one (`Corrupt`). The body holds, per table, a line
//! `{"table": name, "columns": [...]}` followed by one JSON array per row.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::crypto::hex;
use crate::{now_ms, Backend, Db, SecretBox, StoreError};

pub const MAGIC: &[u8; 8] = b"LUNORABK";
pub const FORMAT_VERSION: u16 = 1;
const PURPOSE: &str = "backup-file/v1";
const PREFIX_LEN: usize = 8 + 2 + 4;

/// Why a backup file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("this is not a Lunora backup file")]
    NotABackup,
    #[error(
        "backup format version {0} is not supported; this server reads version {FORMAT_VERSION}"
    )]
    UnsupportedVersion(u16),
    #[error(
        "this backup was made by another Lunora server (key {found}); it cannot be read with \
         this server's key ({ours})"
    )]
    ForeignKey { found: String, ours: String },
    #[error("{0}: the file was changed after it was made")]
    Corrupt(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The plain part of a backup file.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupHeader {
    pub format: u16,
    pub key_id: String,
    pub created_at: i64,
    /// The newest migration of the database the snapshot was taken from.
    pub schema_version: i64,
    pub backend: String,
    /// Table name and row count, in file order.
    pub tables: Vec<(String, u64)>,
}

impl BackupHeader {
    fn to_json(&self) -> Value {
        json!({
            "format": self.format,
            "key_id": self.key_id,
            "created_at": self.created_at,
            "schema_version": self.schema_version,
            "backend": self.backend,
            "compression": "gzip",
            "cipher": "aes-256-gcm",
            "tables": self.tables.iter().map(|(n, c)| json!({"name": n, "rows": c})).collect::<Vec<_>>(),
        })
    }

    fn from_json(v: &Value) -> Option<BackupHeader> {
        Some(BackupHeader {
            format: u16::try_from(v["format"].as_u64()?).ok()?,
            key_id: v["key_id"].as_str()?.to_string(),
            created_at: v["created_at"].as_i64()?,
            schema_version: v["schema_version"].as_i64()?,
            backend: v["backend"].as_str()?.to_string(),
            tables: v["tables"]
                .as_array()?
                .iter()
                .map(|t| Some((t["name"].as_str()?.to_string(), t["rows"].as_u64()?)))
                .collect::<Option<Vec<_>>>()?,
        })
    }
}

/// The rows of one table: cells in `columns` order, each a JSON string, integer or null.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Rows as column → value maps.
    pub fn objects(&self) -> Vec<BTreeMap<String, Value>> {
        self.rows
            .iter()
            .map(|r| {
                self.columns
                    .iter()
                    .cloned()
                    .zip(r.iter().cloned())
                    .collect()
            })
            .collect()
    }
}

/// Every table of the database at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub header: BackupHeader,
    pub tables: BTreeMap<String, Table>,
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

async fn table_names(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<Vec<String>, StoreError> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name <> '_sqlx_migrations' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name <> '_sqlx_migrations' ORDER BY table_name"
        }
    };
    let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

async fn table_columns(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &str,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = match backend {
        Backend::Sqlite => {
            sqlx::query_as("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind(table)
                .fetch_all(&mut *conn)
                .await?
        }
        Backend::Postgres => {
            sqlx::query_as(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

fn cell(r: &AnyRow, i: usize) -> Result<Value, StoreError> {
    if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
        return Ok(v.map(Value::from).unwrap_or(Value::Null));
    }
    if let Ok(v) = r.try_get::<Option<String>, _>(i) {
        return Ok(v.map(Value::from).unwrap_or(Value::Null));
    }
    if let Ok(v) = r.try_get::<Option<f64>, _>(i) {
        return Ok(v.map(Value::from).unwrap_or(Value::Null));
    }
    if let Ok(v) = r.try_get::<Option<bool>, _>(i) {
        return Ok(v.map(Value::from).unwrap_or(Value::Null));
    }
    Err(StoreError::Conflict(format!(
        "column {i} holds a value of a type backups do not support"
    )))
}

async fn read_table(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &str,
    filter: Option<(&str, &str)>,
) -> Result<Table, StoreError> {
    let columns = table_columns(conn, backend, table).await?;
    let list = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!("SELECT {list} FROM {}", quote(table));
    if let Some((where_sql, _)) = filter {
        sql.push_str(" WHERE ");
        sql.push_str(where_sql);
    }
    let sql = match backend {
        Backend::Sqlite => sql,
        Backend::Postgres => crate::db::to_numbered_placeholders(&sql),
    };
    let mut q = sqlx::query(&sql);
    if let Some((_, arg)) = filter {
        q = q.bind(arg);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let rows = rows
        .iter()
        .map(|r| (0..columns.len()).map(|i| cell(r, i)).collect())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Table { columns, rows })
}

impl Db {
    /// Reads every table inside one read transaction: a consistent snapshot while the server
    /// keeps writing.
    pub async fn snapshot(&self, key_id: &str) -> Result<Snapshot, StoreError> {
        let schema_version = self.migration_state().await?.database;
        let mut tx = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let mut tables = BTreeMap::new();
        for name in table_names(&mut tx, self.backend()).await? {
            let t = read_table(&mut tx, self.backend(), &name, None).await?;
            tables.insert(name, t);
        }
        tx.rollback().await?;
        Ok(Snapshot {
            header: BackupHeader {
                format: FORMAT_VERSION,
                key_id: key_id.to_string(),
                created_at: now_ms(),
                schema_version,
                backend: self.backend().name().to_string(),
                tables: tables
                    .iter()
                    .map(|(n, t)| (n.clone(), t.rows.len() as u64))
                    .collect(),
            },
            tables,
        })
    }
}

/// Writes `snap` as an encrypted, checksummed backup file.
pub fn seal(secrets: &SecretBox, snap: &Snapshot) -> Result<Vec<u8>, StoreError> {
    let io = |e: std::io::Error| StoreError::Conflict(format!("compressing the backup: {e}"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for (name, t) in &snap.tables {
        serde_json::to_writer(&mut gz, &json!({"table": name, "columns": t.columns}))
            .map_err(|e| io(e.into()))?;
        gz.write_all(b"\n").map_err(io)?;
        for r in &t.rows {
            serde_json::to_writer(&mut gz, r).map_err(|e| io(e.into()))?;
            gz.write_all(b"\n").map_err(io)?;
        }
    }
    let body = gz.finish().map_err(io)?;
    let mut header = snap.header.clone();
    header.key_id = secrets.key_id();
    let header = header.to_json().to_string();
    let mut out = Vec::with_capacity(PREFIX_LEN + header.len() + body.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(header.as_bytes());
    let sealed = secrets.seal_bytes(PURPOSE, &body, &out);
    out.extend_from_slice(&sealed);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    Ok(out)
}

/// Hex SHA-256 of a whole file, as stored with its row.
pub fn checksum(file: &[u8]) -> String {
    hex(&Sha256::digest(file))
}

/// Reads the plain header after checking the format and the file's own checksum.
pub fn read_header(file: &[u8]) -> Result<(BackupHeader, usize), BackupError> {
    if file.len() < PREFIX_LEN || &file[..8] != MAGIC {
        return Err(BackupError::NotABackup);
    }
    let version = u16::from_be_bytes([file[8], file[9]]);
    if version != FORMAT_VERSION {
        return Err(BackupError::UnsupportedVersion(version));
    }
    if file.len() < PREFIX_LEN + 32 {
        return Err(BackupError::Corrupt("the file is truncated"));
    }
    let (content, sum) = file.split_at(file.len() - 32);
    if Sha256::digest(content).as_slice() != sum {
        return Err(BackupError::Corrupt("checksum mismatch"));
    }
    let len = u32::from_be_bytes([file[10], file[11], file[12], file[13]]) as usize;
    let end = PREFIX_LEN
        .checked_add(len)
        .filter(|e| *e <= content.len())
        .ok_or(BackupError::Corrupt("the header length is out of range"))?;
    let header = serde_json::from_slice::<Value>(&file[PREFIX_LEN..end])
        .ok()
        .and_then(|v| BackupHeader::from_json(&v))
        .ok_or(BackupError::Corrupt("the header is unreadable"))?;
    Ok((header, end))
}

/// Checks and decrypts a backup file.
pub fn open(secrets: &SecretBox, file: &[u8]) -> Result<Snapshot, BackupError> {
    let (header, end) = read_header(file)?;
    let ours = secrets.key_id();
    if header.key_id != ours {
        return Err(BackupError::ForeignKey {
            found: header.key_id,
            ours,
        });
    }
    let sealed = &file[end..file.len() - 32];
    let body = secrets
        .open_bytes(PURPOSE, sealed, &file[..end])
        .map_err(|_| BackupError::Corrupt("authentication failed"))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut text)
        .map_err(|_| BackupError::Corrupt("the body does not decompress"))?;
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let v: Value =
            serde_json::from_str(line).map_err(|_| BackupError::Corrupt("a line is not JSON"))?;
        match v {
            Value::Object(o) => {
                let name = o
                    .get("table")
                    .and_then(Value::as_str)
                    .ok_or(BackupError::Corrupt("a table line has no name"))?
                    .to_string();
                let columns = o
                    .get("columns")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                tables.insert(
                    name.clone(),
                    Table {
                        columns,
                        rows: Vec::new(),
                    },
                );
                current = Some(name);
            }
            Value::Array(row) => {
                let t = current
                    .as_ref()
                    .and_then(|n| tables.get_mut(n))
                    .ok_or(BackupError::Corrupt("a row comes before its table"))?;
                if row.len() != t.columns.len() {
                    return Err(BackupError::Corrupt("a row does not match its columns"));
                }
                t.rows.push(row);
            }
            _ => return Err(BackupError::Corrupt("a line is neither a table nor a row")),
        }
    }
    Ok(Snapshot { header, tables })
}

// ---------------------------------------------------------------------------------------------
// Selective restore

/// A row set attached to an entity (team, talent, linked users), restored with its parent.
struct Child {
    /// Name of the field in a restore report.
    field: &'static str,
    table: &'static str,
    parent_col: &'static str,
    user_col: &'static str,
}

/// An entity type that can be restored on its own.
struct Spec {
    name: &'static str,
    table: &'static str,
    /// Columns referring to another entity type: (column, entity type).
    refs: &'static [(&'static str, &'static str)],
    /// Nullable columns referring to a user: cleared when the user no longer exists.
    optional_users: &'static [&'static str],
    /// A column referring to a user the row cannot exist without: the row is skipped when the
    /// user no longer exists.
    required_user: Option<&'static str>,
    children: &'static [Child],
}

/// In dependency order: a type refers only to types before it.
const SPECS: &[Spec] = &[
    Spec {
        name: "clients",
        table: "ad_clients",
        refs: &[],
        optional_users: &["owner_id"],
        required_user: None,
        children: &[Child {
            field: "user_ids",
            table: "ad_client_users",
            parent_col: "client_id",
            user_col: "user_id",
        }],
    },
    Spec {
        name: "shows",
        table: "ad_shows",
        refs: &[],
        optional_users: &[],
        required_user: None,
        children: &[],
    },
    Spec {
        name: "episodes",
        table: "ad_episodes",
        refs: &[("show_id", "shows")],
        optional_users: &[],
        required_user: None,
        children: &[Child {
            field: "talent",
            table: "ad_episode_talent",
            parent_col: "episode_id",
            user_col: "user_id",
        }],
    },
    Spec {
        name: "campaigns",
        table: "ad_campaigns",
        refs: &[("client_id", "clients")],
        optional_users: &["owner_id"],
        required_user: None,
        children: &[Child {
            field: "team",
            table: "ad_campaign_team",
            parent_col: "campaign_id",
            user_col: "user_id",
        }],
    },
    Spec {
        name: "availability",
        table: "ad_availability",
        refs: &[],
        optional_users: &[],
        required_user: Some("user_id"),
        children: &[],
    },
];

/// The entity types a restore can name.
pub const ENTITY_TYPES: &[&str] = &["clients", "shows", "episodes", "campaigns", "availability"];

/// Rows of the organization per entity type (and its users), for a backup's listing.
pub fn entity_counts(snap: &Snapshot, organization_id: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let count = |table: &str| -> u64 {
        snap.tables.get(table).map_or(0, |t| {
            t.col("organization_id").map_or(0, |i| {
                t.rows.iter().filter(|r| r[i] == organization_id).count() as u64
            })
        })
    };
    for s in SPECS {
        out.insert(s.name.to_string(), count(s.table));
    }
    out.insert("users".to_string(), count("users"));
    out
}

/// What a restore did (or, in a dry run, would do) to one entity type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityChanges {
    pub entity_type: String,
    pub added: Vec<String>,
    /// Id and the fields that differ (child sets by their field name, e.g. `team`).
    pub changed: Vec<(String, Vec<String>)>,
    pub removed: Vec<String>,
    pub unchanged: u64,
    /// Parts of the backup that could not be restored: (id, why).
    pub skipped: Vec<(String, String)>,
}

/// Rows a restore would leave pointing at nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingReference {
    pub entity_type: String,
    pub field: String,
    pub refers_to: String,
    pub ids: Vec<String>,
}

/// The outcome of [`Db::restore_entities`].
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreOutcome {
    Done(Vec<EntityChanges>),
    /// Nothing was changed: restoring would break references between entity types.
    MissingReferences(Vec<MissingReference>),
}

struct Entry {
    id: String,
    /// Column → value, columns of the backup that the table still has.
    values: BTreeMap<String, Value>,
    /// Child field → sorted rows (as their column values).
    children: BTreeMap<&'static str, Vec<Vec<Value>>>,
}

struct Plan {
    spec: &'static Spec,
    backup: BTreeMap<String, Entry>,
    current: BTreeMap<String, Entry>,
    /// Columns written on insert and update (backup ∩ current).
    columns: Vec<String>,
    child_columns: BTreeMap<&'static str, Vec<String>>,
    changes: EntityChanges,
}

fn bind_value<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    v: &Value,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match v {
        Value::Null => q.bind(None::<String>),
        Value::Bool(b) => q.bind(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => q.bind(i),
            None => q.bind(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => q.bind(s.clone()),
        other => q.bind(other.to_string()),
    }
}

fn as_id(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

impl Db {
    /// Puts the rows of `types` of one organization back to their state in `snap`: rows missing
    /// now are inserted, changed ones updated, rows made since deleted, together with their
    /// child rows (linked users, talent, team), in ONE transaction. Nothing else is touched.
    /// Restored rows that changed get a `version` past the current one, so a stale `If-Match`
    /// still fails. Refuses (changing nothing) when the result would leave a row pointing at a
    /// missing row of a type not restored (restore that type too). Rows and links to users
    /// deleted since are skipped, owners deleted since cleared. Writes an `ad_activities` entry
    /// (`backup` / `restore`) in the same transaction. A dry run reports and rolls back.
    pub async fn restore_entities(
        &self,
        snap: &Snapshot,
        organization_id: &str,
        types: &[String],
        dry_run: bool,
        actor_id: Option<&str>,
        backup_id: &str,
    ) -> Result<RestoreOutcome, StoreError> {
        let backend = self.backend();
        let chosen: BTreeSet<&str> = types.iter().map(String::as_str).collect();
        let mut tx = self.pool().begin().await?;
        let activity_id = crate::new_id();
        if !dry_run {
            // The first statement writes, so SQLite takes the write lock before anything is read
            // and the plan cannot go stale.
            sqlx::query(&self.sql(
                "INSERT INTO ad_activities (id, organization_id, entity_type, entity_id, \
                 actor_id, action, before_json, after_json, created_at) \
                 VALUES (?, ?, 'backup', ?, ?, 'restore', NULL, NULL, ?)",
            ))
            .bind(&activity_id)
            .bind(organization_id)
            .bind(backup_id)
            .bind(actor_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        let users: HashSet<String> = sqlx::query_as::<_, (String,)>("SELECT id FROM users")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();

        // Current state of every type (needed for references), backup state of chosen ones.
        let mut plans: Vec<Plan> = Vec::new();
        let mut current_ids: HashMap<&str, BTreeSet<String>> = HashMap::new();
        for spec in SPECS {
            let cur = read_table(
                &mut tx,
                backend,
                spec.table,
                Some(("organization_id = ?", organization_id)),
            )
            .await?;
            let id_col = cur.col("id").unwrap_or(0);
            current_ids.insert(
                spec.name,
                cur.rows.iter().map(|r| as_id(r.get(id_col))).collect(),
            );
            if !chosen.contains(spec.name) {
                continue;
            }
            let empty = Table::default();
            let Some(old) = snap.tables.get(spec.table) else {
                return Err(StoreError::Conflict(format!(
                    "this backup holds no {} (it predates them); nothing was restored",
                    spec.name
                )));
            };
            let columns: Vec<String> = old
                .columns
                .iter()
                .filter(|c| cur.columns.contains(c))
                .cloned()
                .collect();
            let mut changes = EntityChanges {
                entity_type: spec.name.to_string(),
                ..Default::default()
            };
            let mut backup = rows_of(old, &columns, Some(organization_id));
            let mut current = rows_of(&cur, &columns, None);
            let mut child_columns = BTreeMap::new();
            for child in spec.children {
                let cur_child = read_table(
                    &mut tx,
                    backend,
                    child.table,
                    Some((
                        &format!(
                            "{} IN (SELECT id FROM {} WHERE organization_id = ?)",
                            quote(child.parent_col),
                            quote(spec.table)
                        ),
                        organization_id,
                    )),
                )
                .await?;
                let old_child = snap.tables.get(child.table).unwrap_or(&empty);
                let cols: Vec<String> = old_child
                    .columns
                    .iter()
                    .filter(|c| cur_child.columns.contains(c))
                    .cloned()
                    .collect();
                attach(&mut current, &cur_child, child, &cols, None);
                attach(
                    &mut backup,
                    old_child,
                    child,
                    &cols,
                    Some((&users, &mut changes)),
                );
                child_columns.insert(child.field, cols);
            }
            // Users deleted since.
            backup.retain(|id, row| match spec.required_user {
                Some(col) => {
                    let uid = as_id(row.values.get(col));
                    let keep = users.contains(&uid);
                    if !keep {
                        changes
                            .skipped
                            .push((id.clone(), format!("{col} {uid} no longer exists")));
                    }
                    keep
                }
                None => true,
            });
            for (id, row) in backup.iter_mut() {
                for col in spec.optional_users {
                    if let Some(Value::String(uid)) = row.values.get(*col) {
                        if !users.contains(uid) {
                            changes.skipped.push((
                                id.clone(),
                                format!("{col} {uid} no longer exists; cleared"),
                            ));
                            row.values.insert((*col).to_string(), Value::Null);
                        }
                    }
                }
            }
            for (id, row) in &backup {
                match current.get(id) {
                    None => changes.added.push(id.clone()),
                    Some(now) => {
                        let mut fields: Vec<String> = columns
                            .iter()
                            .filter(|c| c.as_str() != "version")
                            .filter(|c| row.values.get(*c) != now.values.get(*c))
                            .cloned()
                            .collect();
                        for child in spec.children {
                            if row.children.get(child.field) != now.children.get(child.field) {
                                fields.push(child.field.to_string());
                            }
                        }
                        if fields.is_empty() {
                            changes.unchanged += 1;
                        } else {
                            changes.changed.push((id.clone(), fields));
                        }
                    }
                }
            }
            changes.removed = current
                .keys()
                .filter(|id| !backup.contains_key(*id))
                .cloned()
                .collect();
            plans.push(Plan {
                spec,
                backup,
                current,
                columns,
                child_columns,
                changes,
            });
        }

        // References between types after the restore.
        let after_ids = |name: &str| -> BTreeSet<String> {
            match plans.iter().find(|p| p.spec.name == name) {
                Some(p) => p.backup.keys().cloned().collect(),
                None => current_ids.get(name).cloned().unwrap_or_default(),
            }
        };
        let mut missing = Vec::new();
        for spec in SPECS {
            for (col, target) in spec.refs {
                if !chosen.contains(spec.name) && !chosen.contains(target) {
                    continue;
                }
                let targets = after_ids(target);
                let values: Vec<String> = match plans.iter().find(|p| p.spec.name == spec.name) {
                    Some(p) => p
                        .backup
                        .values()
                        .map(|r| as_id(r.values.get(*col)))
                        .collect(),
                    None => {
                        let t = read_table(
                            &mut tx,
                            backend,
                            spec.table,
                            Some(("organization_id = ?", organization_id)),
                        )
                        .await?;
                        let i = t.col(col).unwrap_or(0);
                        t.rows.iter().map(|r| as_id(r.get(i))).collect()
                    }
                };
                let ids: BTreeSet<String> = values
                    .into_iter()
                    .filter(|v| !targets.contains(v))
                    .collect();
                if !ids.is_empty() {
                    missing.push(MissingReference {
                        entity_type: spec.name.to_string(),
                        field: (*col).to_string(),
                        refers_to: (*target).to_string(),
                        ids: ids.into_iter().collect(),
                    });
                }
            }
        }
        if !missing.is_empty() {
            tx.rollback().await?;
            return Ok(RestoreOutcome::MissingReferences(missing));
        }
        if dry_run {
            tx.rollback().await?;
            return Ok(RestoreOutcome::Done(
                plans.into_iter().map(|p| p.changes).collect(),
            ));
        }

        // Deletes, dependents first.
        for p in plans.iter().rev() {
            let mut touched: Vec<&String> = p.changes.removed.iter().collect();
            touched.extend(p.changes.changed.iter().map(|(id, _)| id));
            for id in touched {
                for child in p.spec.children {
                    sqlx::query(&self.sql(format!(
                        "DELETE FROM {} WHERE {} = ?",
                        quote(child.table),
                        quote(child.parent_col)
                    )))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            for id in &p.changes.removed {
                sqlx::query(&self.sql(format!(
                    "DELETE FROM {} WHERE id = ? AND organization_id = ?",
                    quote(p.spec.table)
                )))
                .bind(id)
                .bind(organization_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        // Inserts and updates, referenced types first.
        for p in &plans {
            let cols = &p.columns;
            let insert = self.sql(format!(
                "INSERT INTO {} ({}) VALUES ({})",
                quote(p.spec.table),
                cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
                vec!["?"; cols.len()].join(", ")
            ));
            let set_cols: Vec<&String> = cols.iter().filter(|c| c.as_str() != "id").collect();
            let update = self.sql(format!(
                "UPDATE {} SET {} WHERE id = ? AND organization_id = ?",
                quote(p.spec.table),
                set_cols
                    .iter()
                    .map(|c| format!("{} = ?", quote(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for id in &p.changes.added {
                let Some(row) = p.backup.get(id) else {
                    continue;
                };
                let mut q = sqlx::query(&insert);
                for c in cols {
                    q = bind_value(q, row.values.get(c).unwrap_or(&Value::Null));
                }
                q.execute(&mut *tx).await?;
            }
            for (id, _) in &p.changes.changed {
                let (Some(row), Some(now)) = (p.backup.get(id), p.current.get(id)) else {
                    continue;
                };
                let mut q = sqlx::query(&update);
                for c in &set_cols {
                    let v = if c.as_str() == "version" {
                        let cur = now.values.get("version").and_then(Value::as_i64);
                        Value::from(cur.unwrap_or(0) + 1)
                    } else {
                        row.values.get(*c).cloned().unwrap_or(Value::Null)
                    };
                    q = bind_value(q, &v);
                }
                q.bind(id).bind(organization_id).execute(&mut *tx).await?;
            }
            let mut touched: Vec<&String> = p.changes.added.iter().collect();
            touched.extend(p.changes.changed.iter().map(|(id, _)| id));
            for child in p.spec.children {
                let cols = &p.child_columns[child.field];
                let insert = self.sql(format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    quote(child.table),
                    cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
                    vec!["?"; cols.len()].join(", ")
                ));
                for id in &touched {
                    let Some(row) = p.backup.get(*id) else {
                        continue;
                    };
                    for values in row.children.get(child.field).into_iter().flatten() {
                        let mut q = sqlx::query(&insert);
                        for v in values {
                            q = bind_value(q, v);
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
            }
        }
        let changes: Vec<EntityChanges> = plans.into_iter().map(|p| p.changes).collect();
        let summary: serde_json::Map<String, Value> = changes
            .iter()
            .map(|c| {
                (
                    c.entity_type.clone(),
                    json!({
                        "added": c.added.len(),
                        "changed": c.changed.len(),
                        "removed": c.removed.len(),
                        "unchanged": c.unchanged,
                        "skipped": c.skipped.len(),
                    }),
                )
            })
            .collect();
        sqlx::query(&self.sql("UPDATE ad_activities SET after_json = ? WHERE id = ?"))
            .bind(Value::Object(summary).to_string())
            .bind(&activity_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RestoreOutcome::Done(changes))
    }
}

/// Rows of `t` keyed by id (only the organization's when `org` is given), over `columns`.
fn rows_of(t: &Table, columns: &[String], org: Option<&str>) -> BTreeMap<String, Entry> {
    let org_col = t.col("organization_id");
    let id_col = t.col("id");
    t.rows
        .iter()
        .filter(|r| match (org, org_col) {
            (Some(o), Some(i)) => r[i] == o,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .filter_map(|r| {
            let id = as_id(r.get(id_col?));
            let values = columns
                .iter()
                .filter_map(|c| Some((c.clone(), r[t.col(c)?].clone())))
                .collect();
            Some((
                id.clone(),
                Entry {
                    id,
                    values,
                    children: BTreeMap::new(),
                },
            ))
        })
        .collect()
}

/// Attaches the rows of a child table to their parents in `rows`; with `users`, drops (and
/// reports) links to users that no longer exist.
fn attach(
    rows: &mut BTreeMap<String, Entry>,
    t: &Table,
    child: &Child,
    columns: &[String],
    mut users: Option<(&HashSet<String>, &mut EntityChanges)>,
) {
    let (Some(p), Some(u)) = (t.col(child.parent_col), t.col(child.user_col)) else {
        return;
    };
    for r in &t.rows {
        let parent = as_id(r.get(p));
        let Some(row) = rows.get_mut(&parent) else {
            continue;
        };
        if let Some((known, changes)) = users.as_mut() {
            let uid = as_id(r.get(u));
            if !known.contains(&uid) {
                changes.skipped.push((
                    row.id.clone(),
                    format!("{} member {uid} no longer exists", child.field),
                ));
                continue;
            }
        }
        let values: Vec<Value> = columns
            .iter()
            .filter_map(|c| t.col(c).map(|i| r[i].clone()))
            .collect();
        row.children.entry(child.field).or_default().push(values);
    }
    for row in rows.values_mut() {
        if let Some(list) = row.children.get_mut(child.field) {
            list.sort_by_key(|v| Value::Array(v.clone()).to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The backups table and the schedule

/// A listed backup; its file is `{data_dir}/backups/{file_name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupRecord {
    pub id: String,
    pub organization_id: String,
    /// `manual`, `daily`, `weekly`, `monthly` or `uploaded`.
    pub kind: String,
    pub status: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub key_id: String,
    pub format_version: i64,
    /// JSON object: entity type → rows of the organization.
    pub row_counts: String,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// An organization's backup schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSchedule {
    pub organization_id: String,
    pub enabled: bool,
    pub hour_utc: i64,
    pub daily_days: i64,
    pub weekly_days: i64,
    pub monthly_days: i64,
    /// `YYYY-MM-DD` (UTC) of the last scheduled backup.
    pub last_run_day: Option<String>,
}

impl BackupSchedule {
    /// The seed's defaults: off, 03:00 UTC, daily 7 / weekly 30 / monthly 365 days.
    pub fn default_for(organization_id: &str) -> Self {
        BackupSchedule {
            organization_id: organization_id.to_string(),
            enabled: false,
            hour_utc: 3,
            daily_days: 7,
            weekly_days: 30,
            monthly_days: 365,
            last_run_day: None,
        }
    }
}

const BACKUP_COLUMNS: &str = "id, organization_id, kind, status, file_name, size_bytes, sha256, \
     key_id, format_version, row_counts, created_by, created_at";

fn backup_row(r: &AnyRow) -> Result<BackupRecord, sqlx::Error> {
    Ok(BackupRecord {
        id: r.try_get("id")?,
        organization_id: r.try_get("organization_id")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        file_name: r.try_get("file_name")?,
        size_bytes: r.try_get("size_bytes")?,
        sha256: r.try_get("sha256")?,
        key_id: r.try_get("key_id")?,
        format_version: r.try_get("format_version")?,
        row_counts: r.try_get("row_counts")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

fn schedule_row(r: &AnyRow) -> Result<BackupSchedule, sqlx::Error> {
    Ok(BackupSchedule {
        organization_id: r.try_get("organization_id")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        hour_utc: r.try_get("hour_utc")?,
        daily_days: r.try_get("daily_days")?,
        weekly_days: r.try_get("weekly_days")?,
        monthly_days: r.try_get("monthly_days")?,
        last_run_day: r.try_get("last_run_day")?,
    })
}

impl Db {
    pub async fn insert_backup(&self, b: &BackupRecord) -> Result<(), StoreError> {
        sqlx::query(&self.sql(format!(
            "INSERT INTO backups ({BACKUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(&b.id)
        .bind(&b.organization_id)
        .bind(&b.kind)
        .bind(&b.status)
        .bind(&b.file_name)
        .bind(b.size_bytes)
        .bind(&b.sha256)
        .bind(&b.key_id)
        .bind(b.format_version)
        .bind(&b.row_counts)
        .bind(&b.created_by)
        .bind(b.created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The organization's backups, newest first.
    pub async fn list_backups(
        &self,
        organization_id: &str,
    ) -> Result<Vec<BackupRecord>, StoreError> {
        let rows = sqlx::query(&self.sql(format!(
            "SELECT {BACKUP_COLUMNS} FROM backups WHERE organization_id = ? \
             ORDER BY created_at DESC, id DESC"
        )))
        .bind(organization_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(backup_row).collect::<Result<_, _>>()?)
    }

    /// The file names of every listed backup, of every organization.
    pub async fn backup_file_names(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT file_name FROM backups")
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<String, _>("file_name"))
            .collect::<Result<_, _>>()?)
    }

    pub async fn backup(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<BackupRecord>, StoreError> {
        let row = sqlx::query(&self.sql(format!(
            "SELECT {BACKUP_COLUMNS} FROM backups WHERE organization_id = ? AND id = ?"
        )))
        .bind(organization_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(backup_row).transpose()?)
    }

    /// Removes the row; answers it (to delete its file) when it existed.
    pub async fn delete_backup(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<BackupRecord>, StoreError> {
        let Some(b) = self.backup(organization_id, id).await? else {
            return Ok(None);
        };
        sqlx::query(&self.sql("DELETE FROM backups WHERE organization_id = ? AND id = ?"))
            .bind(organization_id)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(Some(b))
    }

    /// The organization's schedule (the defaults when never set).
    pub async fn backup_schedule(
        &self,
        organization_id: &str,
    ) -> Result<BackupSchedule, StoreError> {
        let row =
            sqlx::query(&self.sql("SELECT * FROM backup_schedules WHERE organization_id = ?"))
                .bind(organization_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(match row {
            Some(r) => schedule_row(&r)?,
            None => BackupSchedule::default_for(organization_id),
        })
    }

    pub async fn put_backup_schedule(&self, s: &BackupSchedule) -> Result<(), StoreError> {
        sqlx::query(&self.sql(
            "INSERT INTO backup_schedules (organization_id, enabled, hour_utc, daily_days, \
             weekly_days, monthly_days, last_run_day, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (organization_id) DO UPDATE SET enabled = excluded.enabled, \
             hour_utc = excluded.hour_utc, daily_days = excluded.daily_days, \
             weekly_days = excluded.weekly_days, monthly_days = excluded.monthly_days, \
             last_run_day = excluded.last_run_day, updated_at = excluded.updated_at",
        ))
        .bind(&s.organization_id)
        .bind(i64::from(s.enabled))
        .bind(s.hour_utc)
        .bind(s.daily_days)
        .bind(s.weekly_days)
        .bind(s.monthly_days)
        .bind(&s.last_run_day)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every enabled schedule, for the scheduler.
    pub async fn enabled_backup_schedules(&self) -> Result<Vec<BackupSchedule>, StoreError> {
        let rows = sqlx::query("SELECT * FROM backup_schedules WHERE enabled <> 0")
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(schedule_row).collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        let mut tables = BTreeMap::new();
        tables.insert(
            "t".to_string(),
            Table {
                columns: vec!["id".into(), "n".into(), "note".into()],
                rows: vec![vec![json!("a"), json!(1), Value::Null]],
            },
        );
        Snapshot {
            header: BackupHeader {
                format: FORMAT_VERSION,
                key_id: String::new(),
                created_at: 5,
                schema_version: 120,
                backend: "sqlite".into(),
                tables: vec![("t".into(), 1)],
            },
            tables,
        }
    }

    #[test]
    fn round_trip_tamper_and_foreign_key() {
        let k = SecretBox::new([1u8; 32]);
        let file = seal(&k, &snap()).unwrap();
        let back = open(&k, &file).unwrap();
        assert_eq!(back.tables, snap().tables);
        assert_eq!(back.header.key_id, k.key_id());
        // Every flipped byte is refused as corrupt (the trailer checksum or, past it, the AEAD).
        for i in [0usize, 9, 20, file.len() / 2, file.len() - 1] {
            let mut bad = file.clone();
            bad[i] ^= 0x40;
            let e = open(&k, &bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    BackupError::Corrupt(_)
                        | BackupError::NotABackup
                        | BackupError::UnsupportedVersion(_)
                ),
                "byte {i}: {e}"
            );
        }
        // A body changed and re-checksummed still fails authentication.
        let mut bad = file[..file.len() - 32].to_vec();
        let n = bad.len();
        bad[n - 5] ^= 1;
        let sum = Sha256::digest(&bad);
        bad.extend_from_slice(&sum);
        assert!(matches!(
            open(&k, &bad),
            Err(BackupError::Corrupt("authentication failed"))
        ));
        // Another server's key.
        let other = SecretBox::new([2u8; 32]);
        let e = open(&other, &file).unwrap_err();
        assert!(matches!(e, BackupError::ForeignKey { .. }));
        assert!(e.to_string().contains("another Lunora server"));
        assert!(matches!(
            open(&k, b"PK\x03\x04zip"),
            Err(BackupError::NotABackup)
        ));
        let mut v2 = file.clone();
        v2[9] = 2;
        assert!(matches!(
            open(&k, &v2),
            Err(BackupError::UnsupportedVersion(2))
        ));
    }
}
