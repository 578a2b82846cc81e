//! The `[postgres]` section of the configuration and the connection pool built from it.

use std::fmt;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde::Deserialize;
use tokio_postgres::NoTls;

use super::PostgisError;
use super::table::Encoder;

/// Environment variable read for the database URL when the configuration sets no `url`.
pub const DEFAULT_URL_VARIABLE: &str = "TESSERA_DATABASE_URL";

/// The `[postgres]` section: one PostGIS database whose tables and functions are served.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection URL, `postgresql://USER:PASSWORD@HOST:PORT/DATABASE`. Prefer `url_env`, so
    /// that the password stays out of the file.
    pub url: Option<String>,
    /// Environment variable that contains the URL when `url` is not set.
    pub url_env: String,
    /// Maximum number of open connections.
    pub pool_size: usize,
    /// Whether every table listed in `geometry_columns` is served, in addition to `sources`.
    pub discover: bool,
    /// Schemas whose tables are discovered; empty means every schema.
    pub schemas: Vec<String>,
    /// Encoder of table sources that do not choose one.
    pub encoder: Encoder,
    /// Time between two reads of each table's revision, in seconds.
    pub revision_interval: f64,
    /// Channel that Tessera listens on: a notification on it makes every source read its
    /// revision at once, instead of at the next interval.
    pub notify_channel: Option<String>,
    /// Time that start-up keeps retrying a database that does not respond, in seconds, before
    /// its sources are reported as failed.
    pub startup_wait: f64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_env: DEFAULT_URL_VARIABLE.to_owned(),
            pool_size: 16,
            discover: true,
            schemas: Vec::new(),
            encoder: Encoder::Postgis,
            revision_interval: 2.0,
            notify_channel: None,
            startup_wait: 10.0,
        }
    }
}

/// Shows every option except the URL, which contains the password.
impl fmt::Debug for PostgresConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PostgresConfig")
            .field("url", &self.url.as_ref().map(|_| "(hidden)"))
            .field("url_env", &self.url_env)
            .field("pool_size", &self.pool_size)
            .field("discover", &self.discover)
            .field("schemas", &self.schemas)
            .field("encoder", &self.encoder)
            .field("revision_interval", &self.revision_interval)
            .field("notify_channel", &self.notify_channel)
            .field("startup_wait", &self.startup_wait)
            .finish()
    }
}

impl PostgresConfig {
    /// Checks the values that parse but cannot work.
    pub fn validate(&self) -> Result<(), PostgisError> {
        let invalid = |option, value: String, expected| {
            Err(PostgisError::InvalidOption {
                option,
                value,
                expected,
            })
        };
        if self.pool_size == 0 || self.pool_size > 1000 {
            return invalid(
                "pool_size",
                self.pool_size.to_string(),
                "use 1 to 1000 connections",
            );
        }
        if !(self.revision_interval.is_finite() && self.revision_interval >= 0.05) {
            return invalid(
                "revision_interval",
                self.revision_interval.to_string(),
                "use at least 0.05 seconds",
            );
        }
        if !(self.startup_wait.is_finite() && (0.0..=3600.0).contains(&self.startup_wait)) {
            return invalid(
                "startup_wait",
                self.startup_wait.to_string(),
                "use 0 to 3600 seconds",
            );
        }
        if let Some(channel) = &self.notify_channel
            && !is_plain_identifier(channel)
        {
            return invalid(
                "notify_channel",
                format!("{channel:?}"),
                "use lower-case letters, digits and '_', starting with a letter",
            );
        }
        Ok(())
    }

    /// Returns the URL and where it came from, for messages.
    fn url(&self) -> Result<(String, String), PostgisError> {
        if let Some(url) = &self.url {
            return Ok((url.clone(), "the configuration's `url`".to_owned()));
        }
        match std::env::var(&self.url_env) {
            Ok(url) if !url.is_empty() => Ok((url, format!("${}", self.url_env))),
            _ => Err(PostgisError::MissingUrl {
                variable: self.url_env.clone(),
            }),
        }
    }
}

/// Returns whether `name` needs no quoting in SQL: lower-case ASCII letters, digits and `_`.
pub(super) fn is_plain_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// A PostGIS database: its connection pool and the settings of its sources.
pub struct Database {
    pub(super) pool: Pool,
    /// `USER@HOST:PORT/DATABASE`, without the password, for logs and messages.
    pub(super) description: String,
    /// Connection settings for the connection that listens for notifications.
    pub(super) connection: tokio_postgres::Config,
    pub(super) settings: PostgresConfig,
    /// Time limit of one tile query, which is also the connections' `statement_timeout`.
    pub(super) tile_timeout: Duration,
}

impl fmt::Debug for Database {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Database")
            .field("description", &self.description)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Builds the pool. No connection is opened yet, so a database that is down does not fail
    /// this call.
    pub fn new(settings: &PostgresConfig, tile_timeout: Duration) -> Result<Self, PostgisError> {
        settings.validate()?;
        let (url, origin) = settings.url()?;
        let mut connection: tokio_postgres::Config =
            url.parse()
                .map_err(|error: tokio_postgres::Error| PostgisError::InvalidUrl {
                    origin: origin.clone(),
                    reason: error.to_string(),
                })?;
        if connection.get_hosts().is_empty() {
            return Err(PostgisError::InvalidUrl {
                origin,
                reason: "it names no host".to_owned(),
            });
        }
        let timeout_ms = tile_timeout.as_millis().max(1);
        connection
            .application_name("tessera")
            .connect_timeout(Duration::from_secs(5))
            .options(format!("-c statement_timeout={timeout_ms}"));
        let description = describe(&connection);
        let manager = Manager::from_config(
            connection.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(5)))
            .wait_timeout(Some(tile_timeout))
            .build()
            .expect("deadpool builds a pool that has a runtime for its timeouts");
        tracing::info!(database = %description, pool_size = settings.pool_size, "PostGIS database configured");
        Ok(Self {
            pool,
            description,
            connection,
            settings: settings.clone(),
            tile_timeout,
        })
    }

    /// Returns `USER@HOST:PORT/DATABASE`, without the password.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Takes a connection from the pool.
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, PostgisError> {
        self.pool
            .get()
            .await
            .map_err(|error| PostgisError::Connect {
                database: self.description.clone(),
                reason: pool_reason(&error),
            })
    }
}

/// Describes a pool error without the URL. tokio-postgres's errors never contain the
/// password, but read "db error" for server-side failures, so the server's message is added.
fn pool_reason(error: &deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(error) => error_reason(error),
        deadpool_postgres::PoolError::Timeout(_) => {
            "no connection became free or could be opened in time".to_owned()
        }
        other => other.to_string(),
    }
}

/// Describes a tokio-postgres error with the server's message when it has one.
pub(super) fn error_reason(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

/// Returns `USER@HOST:PORT/DATABASE` for the first host of `config`.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("(default user)"),
        config.get_dbname().unwrap_or("(default database)")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_hides_password() {
        let settings = PostgresConfig {
            url: Some("postgresql://alice:s3cret-pass@127.0.0.1:5999/maps".to_owned()),
            ..PostgresConfig::default()
        };
        let database = Database::new(&settings, Duration::from_secs(3)).expect("pool");
        assert_eq!(database.description(), "alice@127.0.0.1:5999/maps");
        assert!(!format!("{database:?}").contains("s3cret"));
        assert!(!format!("{settings:?}").contains("s3cret"));
    }

    #[test]
    fn invalid_url_error_hides_password() {
        let settings = PostgresConfig {
            url: Some("postgresql://alice:s3cret@127.0.0.1:notaport/maps".to_owned()),
            ..PostgresConfig::default()
        };
        let error = Database::new(&settings, Duration::from_secs(3)).expect_err("bad port");
        let message = error.to_string();
        // tokio-postgres names no part of a URL it cannot parse, so the message cannot either.
        assert!(message.contains("invalid database URL"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn missing_url_names_variable() {
        let settings = PostgresConfig {
            url_env: "TESSERA_TEST_UNSET_DATABASE_URL".to_owned(),
            ..PostgresConfig::default()
        };
        let error = Database::new(&settings, Duration::from_secs(3)).expect_err("no URL");
        assert!(
            error
                .to_string()
                .contains("TESSERA_TEST_UNSET_DATABASE_URL"),
            "{error}"
        );
    }

    #[test]
    fn invalid_options_are_rejected() {
        let cases = [
            (
                PostgresConfig {
                    pool_size: 0,
                    ..PostgresConfig::default()
                },
                "pool_size",
            ),
            (
                PostgresConfig {
                    revision_interval: 0.0,
                    ..PostgresConfig::default()
                },
                "revision_interval",
            ),
            (
                PostgresConfig {
                    startup_wait: f64::NAN,
                    ..PostgresConfig::default()
                },
                "startup_wait",
            ),
            (
                PostgresConfig {
                    notify_channel: Some("changes; DROP TABLE x".to_owned()),
                    ..PostgresConfig::default()
                },
                "notify_channel",
            ),
        ];
        for (settings, option) in cases {
            let error = settings.validate().expect_err(option);
            assert!(error.to_string().contains(option), "{error}");
        }
    }
}
