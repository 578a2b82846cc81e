//! Errors of PostGIS sources. No message contains the database password: connections are
//! described by user, host, port and database only.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PostgisError {
    #[error(
        "no database URL: set `url` in the [postgres] section of the configuration, or the \
         environment variable {variable}"
    )]
    MissingUrl { variable: String },

    #[error(
        "invalid database URL from {origin}: {reason}. Use \
         postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    )]
    InvalidUrl { origin: String, reason: String },

    #[error("invalid [postgres] option {option} = {value}: {expected}")]
    InvalidOption {
        option: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("invalid options for PostGIS source {id:?}: {message}")]
    SourceOptions { id: String, message: String },

    #[error(
        "no database connection to {database}: {reason}. Check that the server runs and that the \
         URL's host, port, user and password are right"
    )]
    Connect { database: String, reason: String },

    #[error(
        "table {table} has no geometry column in geometry_columns of {database}: name a table \
         that `SELECT * FROM geometry_columns` lists, in the form schema.table"
    )]
    TableNotFound { table: String, database: String },

    #[error(
        "table {table} has several geometry columns ({columns}): choose one with `geometry_column`"
    )]
    AmbiguousGeometry { table: String, columns: String },

    #[error(
        "geometry column {column} of {table} has no SRID (0): set one with \
         `SELECT UpdateGeometrySRID('{table}', '{column}', 4326)` or similar"
    )]
    UnknownSrid { table: String, column: String },

    #[error(
        "function {function} not found in {database}: it must take (z integer, x integer, y \
         integer) and optionally a fourth json argument for the query parameters, and return \
         bytea"
    )]
    FunctionNotFound { function: String, database: String },

    #[error("querying {what} of source {id:?} failed: {reason}")]
    Query {
        id: String,
        what: String,
        reason: String,
    },

    #[error(
        "querying tile {tile} of source {id:?} took longer than {seconds} s and was cancelled: \
         add an index on the geometry column, or request a deeper zoom"
    )]
    Timeout {
        id: String,
        tile: String,
        seconds: f64,
    },

    #[error("decoding the WKB geometry of a row of source {id:?} failed: {reason}")]
    Wkb { id: String, reason: String },

    #[error("the worker encoding a tile of source {id:?} failed: {reason}")]
    Worker { id: String, reason: String },

    #[error("encoding tile {tile} of source {id:?} failed: {source}")]
    Encode {
        id: String,
        tile: String,
        #[source]
        source: Box<crate::vector::VectorError>,
    },
}

impl PostgisError {
    /// Returns whether the error comes from the database being unreachable or slow, so that
    /// a retry later may succeed (HTTP 503) rather than from the data or the query (500).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::Timeout { .. })
    }
}
