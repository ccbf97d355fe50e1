//! The server's database: one connection pool over SQLite (the embedded
//! default, a WAL file in the data dir) or PostgreSQL (`DATABASE_URL=postgres://…`),
//! chosen by the URL scheme, with the schema migrations of that backend.
//!
//! Every query is written once: through sqlx's `Any` driver, with `$N`
//! placeholders (SQLite accepts them too) and only `BIGINT`/`TEXT` columns,
//! so handlers have a single code path. Where the backends differ in
//! behaviour (write locking), [`Db::begin_write`] hides it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Migrations of the embedded backend.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("src/server/migrations/sqlite");
/// Migrations of the PostgreSQL backend.
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("src/server/migrations/postgres");

/// File name of the embedded database inside the data dir.
pub const SQLITE_FILE: &str = "ekran.db";

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded file, one server process.
    Sqlite,
    /// Shared server, several server processes may run against it.
    Postgres,
}

/// Database failures, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL's scheme names no backend this build has.
    #[error(
        "unsupported database URL scheme in {url:?}: use postgres://… for PostgreSQL or leave DATABASE_URL unset for the embedded SQLite file"
    )]
    UnsupportedScheme {
        /// The URL as given, password removed.
        url: String,
    },
    /// The database could not be reached or opened.
    #[error("cannot connect to the database at {url}: {source}")]
    Connect {
        /// The URL as given, password removed.
        url: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// Applying the schema failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored value does not parse (corrupt or foreign row).
    #[error("corrupt database row: {0}")]
    Corrupt(String),
}

/// The connection pool plus what the handlers need to know about the backend.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer; serialising write transactions inside the
    /// process avoids `SQLITE_BUSY` when a read-then-write transaction loses
    /// the race for the write lock. PostgreSQL uses row locks instead.
    sqlite_writer: Option<Arc<Mutex<()>>>,
    url: String,
}

/// A write transaction; on SQLite it also holds the in-process writer lock.
pub struct WriteTx {
    /// The open transaction; commit it with [`WriteTx::commit`].
    pub tx: Transaction<'static, Any>,
    _writer: Option<OwnedMutexGuard<()>>,
    backend: Backend,
}

impl WriteTx {
    /// The database it writes to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Commits the transaction and releases the writer lock.
    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Db {
    /// The URL of the embedded database inside `data_dir`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", data_dir.join(SQLITE_FILE).display())
    }

    /// Picks the database from `DATABASE_URL` (if given) or the data dir's
    /// SQLite file, connects and applies the migrations.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Self, DbError> {
        let url = match database_url {
            Some(url) if !url.trim().is_empty() => url.to_owned(),
            _ => Self::sqlite_url(data_dir),
        };
        let db = Self::connect(&url).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedScheme { url: redact(url) });
        };
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(backend == Backend::Postgres);
        let options = match backend {
            Backend::Sqlite => options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL: readers never block the writer; NORMAL is durable
                    // across process crashes in WAL mode; the busy timeout
                    // covers other processes (`ekran token create`).
                    use sqlx::Executor;
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA busy_timeout = 10000",
                    ] {
                        conn.execute(pragma).await?;
                    }
                    Ok(())
                })
            }),
            Backend::Postgres => options,
        };
        let pool = options
            .connect(url)
            .await
            .map_err(|source| DbError::Connect {
                url: redact(url),
                source,
            })?;
        Ok(Self {
            pool,
            backend,
            sqlite_writer: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
            url: url.to_owned(),
        })
    }

    /// Applies the backend's pending migrations (PostgreSQL: under an
    /// advisory lock, so several processes may start at once).
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// The pool, for reads and single-statement writes.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection URL (with its password, for opening side connections
    /// such as a PostgreSQL LISTEN).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts a transaction that will write. On SQLite it first takes the
    /// process's writer lock (see the field's comment).
    pub async fn begin_write(&self) -> Result<WriteTx, DbError> {
        let writer = match &self.sqlite_writer {
            Some(lock) => Some(Arc::clone(lock).lock_owned().await),
            None => None,
        };
        let tx = match self.backend {
            // IMMEDIATE takes the write lock now (waiting out the busy
            // timeout), so a transaction that reads first cannot fail later
            // when it upgrades to writing after another connection wrote.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            _writer: writer,
            backend: self.backend,
        })
    }

    /// The most rows of `columns` values one multi-row INSERT (written with
    /// [`push_placeholders`]) may carry: the backend's limit on bound
    /// parameters, 32766 for SQLite (the bundled build's
    /// `SQLITE_MAX_VARIABLE_NUMBER`) and 65535 for PostgreSQL (the wire
    /// protocol's 16-bit count).
    pub fn max_statement_rows(&self, columns: usize) -> usize {
        let parameters = match self.backend {
            Backend::Sqlite => 32766,
            Backend::Postgres => 65535,
        };
        (parameters / columns.max(1)).max(1)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Appends `rows` groups of `columns` placeholders, `($1,$2),($3,$4)` on
/// PostgreSQL and `(?,?),(?,?)` on SQLite: binding a value to a numbered
/// SQLite parameter looks its name up in a list (sqlx asks for every
/// parameter's name), which costs time quadratic in the parameters of a
/// multi-row statement, while anonymous ones have no name to look up.
pub fn push_placeholders(sql: &mut String, backend: Backend, rows: usize, columns: usize) {
    use std::fmt::Write;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ",(" });
        for column in 0..columns {
            if column > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${}", row * columns + column + 1);
                }
            }
        }
        sql.push(')');
    }
}

/// Reads a non-negative integer column as `u64`.
pub fn get_u64(row: &AnyRow, column: &str) -> Result<u64, DbError> {
    use sqlx::Row;
    let value: i64 = row.try_get(column)?;
    u64::try_from(value).map_err(|_| DbError::Corrupt(format!("{column} is negative: {value}")))
}

/// Converts a `u64` for a `BIGINT` column (values above `i64::MAX` are refused upstream).
pub fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The current time in UTC milliseconds, the unit of every `*_ms` column.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Hides a password in a URL before it reaches a log or an error message.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_url_schemes_are_named() {
        for url in ["mysql://db/ekran", "ekran.db", "http://db"] {
            match Db::connect(url).await {
                Err(DbError::UnsupportedScheme { url: named }) => assert_eq!(named, url),
                Err(other) => panic!("{url}: unexpected error {other}"),
                Ok(_) => panic!("{url}: connected"),
            }
        }
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://ekran:secret@db:5432/ekran"),
            "postgres://ekran:***@db:5432/ekran"
        );
        assert_eq!(redact("postgres://root@db/test"), "postgres://root@db/test");
        assert_eq!(redact("sqlite:///x/ekran.db"), "sqlite:///x/ekran.db");
    }
}
