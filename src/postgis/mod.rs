//! PostGIS sources: tables with a geometry column and functions that return MVT tiles.
//!
//! The `[postgres]` section names one database (`database`). Tables are found in
//! `geometry_columns` or named in `sources` (`table`), and their geometries are reprojected
//! to Web Mercator in the query. A table's tile is encoded by PostGIS's `ST_AsMVT` or, with
//! `encoder = "tessera"`, from WKB rows by the `vector` encoder (`wkb`). Functions named in
//! `sources` (`function`) follow Martin's convention: `fn(z, x, y, query_params json)`
//! returning bytea MVT, with the query parameters that the source declares. Every query runs
//! with the connections' `statement_timeout` and is cancelled when the tile's deadline passes.
//! Each source has a revision that changes with its data (`revision`).

mod database;
mod error;
mod revision;
mod table;
mod wkb;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

pub use database::{DEFAULT_URL_VARIABLE, Database, PostgresConfig};
pub use error::PostgisError;
pub use table::{Encoder, QualifiedName};

use crate::config::{Config, SourceConfig};
use crate::tile::{Bbox, MAX_LATITUDE, MAX_ZOOM, TileCoord};
use crate::vector::{FieldType, VectorOptions};
use crate::worker::Workers;
use database::error_reason;
use table::{Table, TableChoice};

/// Size of a tile's coordinate grid and the margin kept around it, in tile units. They are
/// the defaults of vector files, so that both give the same tiles.
const EXTENT: u32 = 4096;
const BUFFER: u32 = 64;

/// Query parameters that every tile request may carry, so a function cannot declare them.
const RESERVED_PARAMETERS: [&str; 3] = ["resampling", "date", "enhance"];

/// Options of a PostGIS source in `sources`: `table` or `function`, and how it is served.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgisOptions {
    /// `schema.table`, or `table` in the schema `public`.
    pub table: Option<String>,
    /// `schema.function`, or `function` in the schema `public`.
    pub function: Option<String>,
    /// Geometry column of a table with several.
    pub geometry_column: Option<String>,
    /// Integer column whose values become feature ids; default: an integer primary key.
    pub id_column: Option<String>,
    /// Attribute columns served; default: every column of a type that tiles can hold.
    pub columns: Option<Vec<String>>,
    /// MVT layer name; default: the table or function name.
    pub layer: Option<String>,
    pub encoder: Option<Encoder>,
    pub minzoom: Option<u8>,
    pub maxzoom: Option<u8>,
    /// Bounds in lon/lat `[west, south, east, north]`; default: the table's extent at start-up,
    /// or the whole world for a function.
    pub bounds: Option<[f64; 4]>,
    /// Query parameters that a function takes, passed to it as a JSON object of strings.
    pub parameters: Vec<String>,
    /// Attribute names and TileJSON types (`String`, `Number`, `Boolean`) of a function's
    /// layer, for TileJSON.
    pub fields: BTreeMap<String, String>,
    /// SQL whose first column, as text, is the source's revision; default for tables: the
    /// insert, update and delete counters of `pg_stat_user_tables`.
    pub revision_query: Option<String>,
}

impl PostgisOptions {
    /// Returns whether a source's options name a table or a function.
    pub fn names_database_object(options: &toml::Table) -> bool {
        options.contains_key("table") || options.contains_key("function")
    }
}

/// The table or function that a source reads.
#[derive(Debug)]
enum Query {
    Table {
        table: Table,
        encoder: Encoder,
        /// `Table::mvt_sql` or `Table::wkb_sql`, by encoder.
        sql: String,
        /// The same for zooms below `LOCAL_PROJECTION_MIN_ZOOM` of a table in a local
        /// projection, which transforms the geometries instead of the tile's envelope.
        low_zoom_sql: Option<String>,
    },
    Function {
        name: QualifiedName,
        takes_parameters: bool,
        sql: String,
    },
}

/// A table or function served from a PostGIS database.
#[derive(Debug)]
pub struct PostgisSource {
    id: String,
    database: Arc<Database>,
    query: Query,
    layer: String,
    fields: BTreeMap<String, FieldType>,
    geometry_type: String,
    parameters: Vec<String>,
    minzoom: u8,
    maxzoom: u8,
    bounds: Bbox,
    revision: Arc<AtomicU64>,
    /// Whether a revision query follows the data: always for tables, and for functions only
    /// with `revision_query`.
    tracked: AtomicBool,
}

impl PostgisSource {
    /// Opens a source named in `sources`: reads the table's columns and extent, or checks that
    /// the function exists.
    pub async fn open(
        database: &Arc<Database>,
        id: &str,
        source_config: &SourceConfig,
    ) -> Result<(Self, Option<String>), PostgisError> {
        // Access options (`access`, `private_attributes`, ...) belong to the access module,
        // which reads them from the same table when the source joins the catalog.
        let mut own_options = source_config.options.clone();
        crate::access::SourceAccess::take_from(&mut own_options).map_err(|message| {
            PostgisError::SourceOptions {
                id: id.to_owned(),
                message,
            }
        })?;
        let options =
            PostgisOptions::deserialize(toml::Value::Table(own_options)).map_err(|error| {
                PostgisError::SourceOptions {
                    id: id.to_owned(),
                    message: error.to_string(),
                }
            })?;
        let options_error = |message: String| PostgisError::SourceOptions {
            id: id.to_owned(),
            message,
        };
        let (minzoom, maxzoom) = (options.minzoom.unwrap_or(0), options.maxzoom.unwrap_or(22));
        if maxzoom > MAX_ZOOM || minzoom > maxzoom {
            return Err(options_error(format!(
                "minzoom {minzoom} and maxzoom {maxzoom} must satisfy minzoom <= maxzoom <= {MAX_ZOOM}"
            )));
        }
        let bounds = options.bounds.map(|[w, s, e, n]| Bbox::new(w, s, e, n));
        match (&options.table, &options.function) {
            (Some(table), None) => {
                let name = QualifiedName::parse(table).ok_or_else(|| {
                    options_error(format!("table {table:?} is not `schema.table` or `table`"))
                })?;
                if !options.parameters.is_empty() || !options.fields.is_empty() {
                    return Err(options_error(
                        "`parameters` and `fields` are options of function sources; a table's \
                         columns are read from the database"
                            .to_owned(),
                    ));
                }
                let choice = TableChoice {
                    geometry_column: options.geometry_column.clone(),
                    id_column: options.id_column.clone(),
                    columns: options.columns.clone(),
                };
                let table = table::describe_table(database, id, &name, &choice).await?;
                let encoder = options.encoder.unwrap_or(database.settings.encoder);
                let source =
                    Self::from_table(database, id, table, encoder, &options, bounds).await?;
                Ok((source, options.revision_query))
            }
            (None, Some(function)) => {
                let name = QualifiedName::parse(function).ok_or_else(|| {
                    options_error(format!(
                        "function {function:?} is not `schema.function` or `function`"
                    ))
                })?;
                let source = Self::from_function(database, id, name, &options, bounds).await?;
                Ok((source, options.revision_query))
            }
            _ => Err(options_error(
                "name exactly one of `table` and `function`".to_owned(),
            )),
        }
    }

    async fn from_table(
        database: &Arc<Database>,
        id: &str,
        table: Table,
        encoder: Encoder,
        options: &PostgisOptions,
        bounds: Option<Bbox>,
    ) -> Result<Self, PostgisError> {
        let bounds = match bounds {
            Some(bounds) => bounds,
            None => table_extent(database, id, &table).await?,
        };
        let sql_for = |whole_world| match encoder {
            Encoder::Postgis => table.mvt_sql(BUFFER, EXTENT, whole_world),
            Encoder::Tessera => table.wkb_sql(BUFFER, EXTENT, whole_world),
        };
        let sql = sql_for(false);
        let low_zoom_sql = table.is_local_projection().then(|| sql_for(true));
        Ok(Self {
            id: id.to_owned(),
            database: Arc::clone(database),
            layer: options
                .layer
                .clone()
                .unwrap_or_else(|| table.name.name.clone()),
            fields: table.fields(),
            geometry_type: table.tilejson_geometry_type().to_owned(),
            parameters: Vec::new(),
            minzoom: options.minzoom.unwrap_or(0),
            maxzoom: options.maxzoom.unwrap_or(22),
            bounds,
            revision: Arc::new(AtomicU64::new(0)),
            tracked: AtomicBool::new(false),
            query: Query::Table {
                table,
                encoder,
                sql,
                low_zoom_sql,
            },
        })
    }

    async fn from_function(
        database: &Arc<Database>,
        id: &str,
        name: QualifiedName,
        options: &PostgisOptions,
        bounds: Option<Bbox>,
    ) -> Result<Self, PostgisError> {
        let client = database.client().await?;
        let row = client
            .query_opt(
                "SELECT max(p.pronargs)::int FROM pg_proc p \
                 JOIN pg_namespace n ON n.oid = p.pronamespace \
                 WHERE n.nspname = $1 AND p.proname = $2 AND p.prorettype = 'bytea'::regtype \
                   AND p.pronargs IN (3, 4)",
                &[&name.schema, &name.name],
            )
            .await
            .map_err(|error| PostgisError::Query {
                id: id.to_owned(),
                what: format!("the signature of {name}"),
                reason: error_reason(&error),
            })?;
        let arguments: Option<i32> = row.and_then(|row| row.get(0));
        let Some(arguments) = arguments else {
            return Err(PostgisError::FunctionNotFound {
                function: name.to_string(),
                database: database.description.clone(),
            });
        };
        let takes_parameters = arguments == 4;
        if !takes_parameters && !options.parameters.is_empty() {
            return Err(PostgisError::SourceOptions {
                id: id.to_owned(),
                message: format!(
                    "function {name} takes no json argument, so it cannot take `parameters`"
                ),
            });
        }
        for parameter in &options.parameters {
            if RESERVED_PARAMETERS.contains(&parameter.as_str())
                || !parameter
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(PostgisError::SourceOptions {
                    id: id.to_owned(),
                    message: format!(
                        "parameter {parameter:?} is reserved or not made of letters, digits and '_'"
                    ),
                });
            }
        }
        let mut fields = BTreeMap::new();
        for (field, kind) in &options.fields {
            let kind = match kind.as_str() {
                "String" => FieldType::String,
                "Number" => FieldType::Number,
                "Boolean" => FieldType::Boolean,
                other => {
                    return Err(PostgisError::SourceOptions {
                        id: id.to_owned(),
                        message: format!(
                            "field {field:?} has type {other:?}: use String, Number or Boolean"
                        ),
                    });
                }
            };
            fields.insert(field.clone(), kind);
        }
        let sql = if takes_parameters {
            format!("SELECT {}($1, $2, $3, $4::text::json)", name.quoted())
        } else {
            format!("SELECT {}($1, $2, $3)", name.quoted())
        };
        Ok(Self {
            id: id.to_owned(),
            database: Arc::clone(database),
            layer: options.layer.clone().unwrap_or_else(|| name.name.clone()),
            fields,
            geometry_type: "Unknown".to_owned(),
            parameters: options.parameters.clone(),
            minzoom: options.minzoom.unwrap_or(0),
            maxzoom: options.maxzoom.unwrap_or(22),
            bounds: bounds.unwrap_or(Bbox::new(-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE)),
            revision: Arc::new(AtomicU64::new(0)),
            tracked: AtomicBool::new(false),
            query: Query::Function {
                name,
                takes_parameters,
                sql,
            },
        })
    }

    /// Returns the id that the source was opened with: its key in `sources`, or the name of a
    /// discovered table.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Returns `schema.table` or `schema.function()`, for logs and reports.
    pub fn object_name(&self) -> String {
        match &self.query {
            Query::Table { table, .. } => table.name.to_string(),
            Query::Function { name, .. } => format!("{name}()"),
        }
    }

    /// Returns the database as `USER@HOST:PORT/DATABASE`, without the password.
    pub fn database(&self) -> &str {
        self.database.description()
    }

    pub fn encoder(&self) -> Option<Encoder> {
        match &self.query {
            Query::Table { encoder, .. } => Some(*encoder),
            Query::Function { .. } => None,
        }
    }

    pub fn zoom_range(&self) -> (u8, u8) {
        (self.minzoom, self.maxzoom)
    }

    /// Returns the bounds in lon/lat: configured, or the table's extent at start-up. Rows
    /// added later may lie outside them, so tiles outside are still queried.
    pub fn bounds_lonlat(&self) -> Bbox {
        self.bounds
    }

    /// Returns the query parameters that the source takes besides the tile's own.
    pub fn parameters(&self) -> &[String] {
        &self.parameters
    }

    /// Returns a number that changes when the source's data changes: the XXH3 hash of its
    /// revision query's output, read every `revision_interval` seconds and on notifications.
    /// A function source without `revision_query` keeps revision 0.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::SeqCst)
    }

    /// Returns whether the revision follows the data. Tiles of a source without one (a
    /// function without `revision_query`) must not be kept, since nothing would replace them.
    pub fn revision_tracked(&self) -> bool {
        self.tracked.load(Ordering::SeqCst)
    }

    /// Returns TileJSON's `vector_layers`, with the source's extra fields.
    pub fn extend_tilejson(&self, tilejson: &mut Value) {
        let fields: serde_json::Map<String, Value> = self
            .fields
            .iter()
            .map(|(name, kind)| (name.clone(), json!(kind.as_str())))
            .collect();
        tilejson["vector_layers"] = json!([{
            "id": self.layer,
            "fields": fields,
            "minzoom": self.minzoom,
            "maxzoom": self.maxzoom,
            "geometry_type": self.geometry_type,
        }]);
        if !self.parameters.is_empty() {
            tilejson["tessera:parameters"] = json!(self.parameters);
        }
    }

    /// Queries one tile and returns its MVT bytes, or `None` when it has no feature.
    ///
    /// `parameters` are the request's declared query parameters, for function sources. The
    /// query is cancelled on the server when `deadline` passes or this future is dropped. The
    /// Tessera encoder decodes and encodes on `workers`.
    pub async fn tile(
        &self,
        tile: TileCoord,
        parameters: &[(String, String)],
        deadline: Instant,
        workers: &Workers,
    ) -> Result<Option<Vec<u8>>, PostgisError> {
        let z = i32::from(tile.z);
        let x = tile.x as i32;
        let y = tile.y as i32;
        let rows = match &self.query {
            Query::Table {
                encoder: Encoder::Postgis,
                sql,
                low_zoom_sql,
                ..
            } => {
                let sql = table_sql(tile, sql, low_zoom_sql.as_deref());
                self.run_query(tile, sql, &[&z, &x, &y, &self.layer], deadline)
                    .await?
            }
            Query::Table {
                table,
                encoder: Encoder::Tessera,
                sql,
                low_zoom_sql,
            } => {
                let sql = table_sql(tile, sql, low_zoom_sql.as_deref());
                let rows = self.run_query(tile, sql, &[&z, &x, &y], deadline).await?;
                return self.encode_rows(table, rows, tile, workers).await;
            }
            Query::Function {
                takes_parameters: true,
                sql,
                ..
            } => {
                let declared: serde_json::Map<String, Value> = parameters
                    .iter()
                    .filter(|(name, _)| self.parameters.contains(name))
                    .map(|(name, value)| (name.clone(), json!(value)))
                    .collect();
                let declared = Value::Object(declared).to_string();
                self.run_query(tile, sql, &[&z, &x, &y, &declared], deadline)
                    .await?
            }
            Query::Function {
                takes_parameters: false,
                sql,
                ..
            } => self.run_query(tile, sql, &[&z, &x, &y], deadline).await?,
        };
        let bytes: Option<Vec<u8>> = rows.first().and_then(|row| row.get(0));
        Ok(bytes.filter(|bytes| !bytes.is_empty()))
    }

    /// Runs a tile's query on a pooled connection until `deadline`, and cancels it on the
    /// server when it times out or this future is dropped. Each connection prepares the query
    /// once and keeps the statement, which saves a round trip and the parsing on every tile.
    async fn run_query(
        &self,
        tile: TileCoord,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        deadline: Instant,
    ) -> Result<Vec<tokio_postgres::Row>, PostgisError> {
        let client = self.database.client().await?;
        let timeout = || PostgisError::Timeout {
            id: self.id.clone(),
            tile: tile.to_string(),
            seconds: self.database.tile_timeout.as_secs_f64(),
        };
        let mut guard = CancelOnDrop(Some(client.cancel_token()));
        let query = async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        };
        let result = tokio::time::timeout_at(deadline.into(), query)
            .await
            .map_err(|_| timeout())?;
        guard.0 = None;
        result.map_err(|error| {
            // PostgreSQL rejects a statement prepared before its table was altered ("cached
            // plan must not change result type"). Clearing the cache makes the next tile
            // prepare it again.
            if error.as_db_error().is_some_and(|db| {
                db.code() == &tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED
            }) {
                client.statement_cache.clear();
            }
            if error
                .as_db_error()
                .is_some_and(|db| db.code() == &tokio_postgres::error::SqlState::QUERY_CANCELED)
            {
                return timeout();
            }
            if error.is_closed() {
                return PostgisError::Connect {
                    database: self.database.description.clone(),
                    reason: error_reason(&error),
                };
            }
            PostgisError::Query {
                id: self.id.clone(),
                what: format!("tile {tile}"),
                reason: error_reason(&error),
            }
        })
    }

    /// Decodes the WKB rows of a tile and encodes them with `vector`'s encoder on `workers`.
    async fn encode_rows(
        &self,
        table: &Table,
        rows: Vec<tokio_postgres::Row>,
        tile: TileCoord,
        workers: &Workers,
    ) -> Result<Option<Vec<u8>>, PostgisError> {
        let id = self.id.clone();
        let table = table.clone();
        let layer = self.layer.clone();
        let options = VectorOptions {
            minzoom: self.minzoom,
            maxzoom: self.maxzoom,
            buffer: BUFFER,
            extent: EXTENT,
            simplify: true,
            ..VectorOptions::default()
        };
        let encoded = workers.run(move || {
            let fields: Vec<(String, FieldType)> = table
                .columns
                .iter()
                .map(|(name, kind)| (name.clone(), kind.field_type()))
                .collect();
            let features = wkb::features(&id, &table, &rows)?;
            wkb::encode(&id, &layer, &fields, features, options, tile)
        });
        encoded.await.map_err(|error| PostgisError::Worker {
            id: self.id.clone(),
            reason: error.to_string(),
        })?
    }
}

/// Cancels the running query on the server when dropped before the query finished: on a
/// timeout, or when the request's future is dropped.
struct CancelOnDrop(Option<tokio_postgres::CancelToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            tokio::spawn(async move {
                if let Err(error) = token.cancel_query(NoTls).await {
                    tracing::warn!(error = %error_reason(&error), "cancelling a tile query failed");
                }
            });
        }
    }
}

/// Reads the extent of `table` in lon/lat, or the whole world when it has no rows.
async fn table_extent(database: &Database, id: &str, table: &Table) -> Result<Bbox, PostgisError> {
    let client = database.client().await?;
    let row = client
        .query_opt(table.extent_sql().as_str(), &[])
        .await
        .map_err(|error| PostgisError::Query {
            id: id.to_owned(),
            what: format!("the extent of {}", table.name),
            reason: error_reason(&error),
        })?;
    let corners = row.and_then(|row| {
        Some([
            row.get::<_, Option<f64>>(0)?,
            row.get::<_, Option<f64>>(1)?,
            row.get::<_, Option<f64>>(2)?,
            row.get::<_, Option<f64>>(3)?,
        ])
    });
    Ok(match corners {
        Some([west, south, east, north])
            if [west, south, east, north].iter().all(|v| v.is_finite()) =>
        {
            Bbox::new(west, south, east, north)
        }
        _ => Bbox::new(-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE),
    })
}

/// A source that was not opened: its id or table, and the reason.
#[derive(Debug, Clone)]
pub struct OpenFailure {
    pub name: String,
    pub reason: String,
}

/// Opens the PostGIS sources of `config`: those in `sources` that name a table or function,
/// and with `discover`, every other table in `geometry_columns`. While the database does not
/// respond, opening is retried for `startup_wait` seconds. The sources that still fail are
/// returned as failures, and the others are served.
pub async fn open_sources(
    config: &Config,
    settings: &PostgresConfig,
) -> Vec<Result<PostgisSource, OpenFailure>> {
    let tile_timeout = Duration::from_secs_f64(config.tile_timeout);
    let database = match Database::new(settings, tile_timeout) {
        Ok(database) => Arc::new(database),
        Err(error) => {
            let reason = error.to_string();
            tracing::error!(%reason, "PostGIS sources not served");
            let mut failures: Vec<_> = configured(config)
                .map(|(id, _)| {
                    Err(OpenFailure {
                        name: id.clone(),
                        reason: reason.clone(),
                    })
                })
                .collect();
            if failures.is_empty() {
                failures.push(Err(OpenFailure {
                    name: "[postgres]".to_owned(),
                    reason,
                }));
            }
            return failures;
        }
    };
    wait_for_database(&database, settings.startup_wait).await;
    let mut opened = Vec::new();
    let mut tracked = Vec::new();
    let mut served_tables = Vec::new();
    for (id, source_config) in configured(config) {
        let result = PostgisSource::open(&database, id, source_config).await;
        match result {
            Ok((source, revision_query)) => {
                if let Query::Table { table, .. } = &source.query {
                    served_tables.push(table.name.clone());
                }
                track(&source, revision_query, &mut tracked);
                opened.push(Ok(source));
            }
            Err(error) => opened.push(Err(OpenFailure {
                name: id.clone(),
                reason: error.to_string(),
            })),
        }
    }
    if settings.discover {
        match table::geometry_columns(&database, &settings.schemas).await {
            Ok(columns) => {
                for column in columns {
                    if served_tables.contains(&column.table) {
                        continue;
                    }
                    served_tables.push(column.table.clone());
                    let id = crate::config::id_from_stem(&column.table.name);
                    let source_config = SourceConfig {
                        path: std::path::PathBuf::new(),
                        name: None,
                        attribution: None,
                        description: None,
                        options: toml::Table::from_iter([
                            (
                                "table".to_owned(),
                                toml::Value::String(column.table.to_string()),
                            ),
                            (
                                "geometry_column".to_owned(),
                                toml::Value::String(column.column.clone()),
                            ),
                        ]),
                    };
                    match PostgisSource::open(&database, &id, &source_config).await {
                        Ok((source, revision_query)) => {
                            track(&source, revision_query, &mut tracked);
                            opened.push(Ok(source));
                        }
                        Err(error) => opened.push(Err(OpenFailure {
                            name: column.table.to_string(),
                            reason: error.to_string(),
                        })),
                    }
                }
            }
            Err(error) => opened.push(Err(OpenFailure {
                name: "geometry_columns".to_owned(),
                reason: error.to_string(),
            })),
        }
    }
    revision::refresh(&database, &tracked).await;
    revision::spawn(database, tracked);
    opened
}

/// The sources of `config` that name a table or a function.
fn configured(config: &Config) -> impl Iterator<Item = (&String, &SourceConfig)> {
    config
        .sources
        .iter()
        .filter(|(_, source)| PostgisOptions::names_database_object(&source.options))
}

/// Returns the query of a table's tile: `low_zoom_sql`, when the table has one, below
/// `LOCAL_PROJECTION_MIN_ZOOM`.
fn table_sql<'q>(tile: TileCoord, sql: &'q str, low_zoom_sql: Option<&'q str>) -> &'q str {
    match low_zoom_sql {
        Some(low) if tile.z < table::LOCAL_PROJECTION_MIN_ZOOM => low,
        _ => sql,
    }
}

fn track(
    source: &PostgisSource,
    revision_query: Option<String>,
    tracked: &mut Vec<revision::Tracked>,
) {
    let query = match (&source.query, revision_query) {
        (_, Some(query)) => query,
        (Query::Table { table, .. }, None) => table.counters_sql(),
        (Query::Function { .. }, None) => return,
    };
    source.tracked.store(true, Ordering::SeqCst);
    tracked.push(revision::Tracked {
        id: source.id.clone(),
        query,
        revision: Arc::clone(&source.revision),
    });
}

/// Waits until a connection opens, for at most `seconds`, pausing longer after each failure.
async fn wait_for_database(database: &Database, seconds: f64) {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut pause = Duration::from_millis(250);
    loop {
        match database.client().await {
            Ok(_) => return,
            Err(error) if Instant::now() + pause < until => {
                tracing::warn!(database = %database.description, %error, retry_in_ms = pause.as_millis(), "database not reachable; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                tracing::error!(database = %database.description, %error, "database not reachable; its sources are reported as failed");
                return;
            }
        }
    }
}
