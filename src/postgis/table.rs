//! Tables with a geometry column: discovery from `geometry_columns`, their attribute columns,
//! and the SQL of their tiles for both encoders.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::PostgisError;
use super::database::{Database, error_reason};
use crate::tile::ORIGIN_SHIFT;
use crate::vector::FieldType;

/// The encoder of a table's tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoder {
    /// PostGIS's `ST_AsMVT` and `ST_AsMVTGeom`, in the database.
    Postgis,
    /// WKB read through geozero and encoded by Tessera's vector encoder, which clips and
    /// simplifies exactly as for vector files.
    Tessera,
}

/// A table or function name, split into schema and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    /// Reads `schema.name`, or `name` in the schema `public`.
    pub fn parse(text: &str) -> Option<Self> {
        let (schema, name) = text.split_once('.').unwrap_or(("public", text));
        if schema.is_empty() || name.is_empty() || name.contains('.') {
            return None;
        }
        Some(Self {
            schema: schema.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Returns the name quoted for SQL.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.name))
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}", self.schema, self.name)
    }
}

/// Quotes an SQL identifier, doubling the quotes inside it.
pub(super) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Below this zoom, tiles of a table in a local projection are filtered by transforming
/// its geometries, since an envelope wider than about 1,250 km does not transform to a box
/// that covers the tile.
pub(super) const LOCAL_PROJECTION_MIN_ZOOM: u8 = 5;

/// The conversion that a column's values go through on their way into a tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ColumnKind {
    /// `smallint`, `integer` and `bigint`, read as `bigint`.
    Integer,
    /// `real`, `double precision` and `numeric`, read as `double precision`.
    Real,
    Boolean,
    /// `text`, `varchar`, `char`, `name`, `citext` and `uuid`, read as `text`.
    String,
    /// Every other type, read as the text of its JSON value: dates and times in ISO 8601,
    /// arrays and `json` as JSON text, as vector files give them. `to_json` costs about as
    /// much as the rest of a point's encoding, so string types skip it.
    Text,
}

impl ColumnKind {
    /// Returns the kind of a PostgreSQL type by its `pg_type.typname`, or `None` for types
    /// that are left out of tiles (geometries, geographies, raw bytes).
    pub(super) fn of_type(typname: &str) -> Option<Self> {
        match typname {
            "int2" | "int4" | "int8" => Some(Self::Integer),
            "float4" | "float8" | "numeric" => Some(Self::Real),
            "bool" => Some(Self::Boolean),
            "text" | "varchar" | "bpchar" | "name" | "citext" | "uuid" => Some(Self::String),
            "geometry" | "geography" | "bytea" | "raster" | "box2d" | "box3d" => None,
            _ => Some(Self::Text),
        }
    }

    pub(super) fn field_type(self) -> FieldType {
        match self {
            Self::Integer | Self::Real => FieldType::Number,
            Self::Boolean => FieldType::Boolean,
            Self::String | Self::Text => FieldType::String,
        }
    }

    /// Returns the SQL expression that reads `column` in this kind.
    fn select(self, column: &str) -> String {
        let quoted = quote(column);
        match self {
            Self::Integer => format!("{quoted}::bigint AS {quoted}"),
            Self::Real => format!("{quoted}::double precision AS {quoted}"),
            Self::Boolean => format!("{quoted}::boolean AS {quoted}"),
            Self::String => format!("{quoted}::text AS {quoted}"),
            Self::Text => format!("to_json({quoted}) #>> '{{}}' AS {quoted}"),
        }
    }
}

/// A table as served: its geometry column, SRID, id column and attribute columns.
#[derive(Debug, Clone)]
pub(super) struct Table {
    pub name: QualifiedName,
    pub geometry_column: String,
    pub srid: i32,
    /// `POINT`, `MULTIPOLYGON`, … as `geometry_columns` lists it; `GEOMETRY` when mixed.
    pub geometry_type: String,
    /// Integer column whose values become the MVT feature ids, left out of the attributes.
    pub id_column: Option<String>,
    /// Attribute columns in table order.
    pub columns: Vec<(String, ColumnKind)>,
}

/// One row of `geometry_columns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GeometryColumn {
    pub table: QualifiedName,
    pub column: String,
    pub srid: i32,
    pub geometry_type: String,
}

/// Lists the geometry columns of the database, in the given schemas or all of them, sorted by
/// schema, table and column.
pub(super) async fn geometry_columns(
    database: &Database,
    schemas: &[String],
) -> Result<Vec<GeometryColumn>, PostgisError> {
    let client = database.client().await?;
    let rows = client
        .query(
            "SELECT f_table_schema::text, f_table_name::text, f_geometry_column::text, srid, type \
             FROM geometry_columns \
             WHERE cardinality($1::text[]) = 0 OR f_table_schema = ANY($1::text[]) \
             ORDER BY 1, 2, 3",
            &[&schemas],
        )
        .await
        .map_err(|error| PostgisError::Query {
            id: String::new(),
            what: "geometry_columns".to_owned(),
            reason: error_reason(&error),
        })?;
    Ok(rows
        .iter()
        .map(|row| GeometryColumn {
            table: QualifiedName {
                schema: row.get(0),
                name: row.get(1),
            },
            column: row.get(2),
            srid: row.get(3),
            geometry_type: row.get(4),
        })
        .collect())
}

/// Options that choose what of a table is served.
#[derive(Debug, Clone, Default)]
pub(super) struct TableChoice {
    pub geometry_column: Option<String>,
    pub id_column: Option<String>,
    /// Attribute columns to serve; `None` serves every column of a supported type.
    pub columns: Option<Vec<String>>,
}

/// Reads the geometry column and attribute columns of `name`.
pub(super) async fn describe_table(
    database: &Database,
    id: &str,
    name: &QualifiedName,
    choice: &TableChoice,
) -> Result<Table, PostgisError> {
    let all = geometry_columns(database, std::slice::from_ref(&name.schema)).await?;
    let candidates: Vec<&GeometryColumn> = all
        .iter()
        .filter(|column| column.table == *name)
        .filter(|column| {
            choice
                .geometry_column
                .as_ref()
                .is_none_or(|wanted| *wanted == column.column)
        })
        .collect();
    let geometry = match candidates.as_slice() {
        [] => {
            return Err(PostgisError::TableNotFound {
                table: match &choice.geometry_column {
                    Some(column) => format!("{name} (column {column})"),
                    None => name.to_string(),
                },
                database: database.description.clone(),
            });
        }
        [one] => (*one).clone(),
        several => {
            return Err(PostgisError::AmbiguousGeometry {
                table: name.to_string(),
                columns: several
                    .iter()
                    .map(|c| c.column.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    if geometry.srid == 0 {
        return Err(PostgisError::UnknownSrid {
            table: name.to_string(),
            column: geometry.column,
        });
    }
    let (available, primary_integer) = read_columns(database, id, name).await?;
    let id_column = choice.id_column.clone().or(primary_integer);
    if let Some(id_column) = &id_column
        && !available
            .iter()
            .any(|(column, kind)| column == id_column && *kind == ColumnKind::Integer)
    {
        return Err(PostgisError::SourceOptions {
            id: id.to_owned(),
            message: format!("id_column {id_column:?} is not an integer column of {name}"),
        });
    }
    let columns = match &choice.columns {
        None => available
            .into_iter()
            .filter(|(column, _)| Some(column) != id_column.as_ref())
            .collect(),
        Some(wanted) => wanted
            .iter()
            .map(|column| {
                available
                    .iter()
                    .find(|(name, _)| name == column)
                    .cloned()
                    .ok_or_else(|| PostgisError::SourceOptions {
                        id: id.to_owned(),
                        message: format!(
                            "column {column:?} of `columns` is not a column of {name} with a \
                             type that tiles can hold"
                        ),
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Table {
        name: name.clone(),
        geometry_column: geometry.column,
        srid: geometry.srid,
        geometry_type: geometry.geometry_type,
        id_column,
        columns,
    })
}

/// Reads the columns of `name` that tiles can hold, in table order, and the integer primary
/// key if the table has a single-column one.
async fn read_columns(
    database: &Database,
    id: &str,
    name: &QualifiedName,
) -> Result<(Vec<(String, ColumnKind)>, Option<String>), PostgisError> {
    let client = database.client().await?;
    let rows = client
        .query(
            "SELECT a.attname::text, t.typname::text, \
                    coalesce(i.indisprimary, false) AND a.attnum = ANY(i.indkey) \
             FROM pg_attribute a \
             JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
                  AND i.indnatts = 1 \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&name.quoted()],
        )
        .await
        .map_err(|error| PostgisError::Query {
            id: id.to_owned(),
            what: format!("the columns of {name}"),
            reason: error_reason(&error),
        })?;
    let mut primary_integer = None;
    let mut available = Vec::new();
    for row in &rows {
        let column: String = row.get(0);
        let typname: String = row.get(1);
        let primary: bool = row.get(2);
        let Some(kind) = ColumnKind::of_type(&typname) else {
            continue;
        };
        if primary && kind == ColumnKind::Integer {
            primary_integer = Some(column.clone());
        }
        available.push((column, kind));
    }
    Ok((available, primary_integer))
}

impl Table {
    /// Returns the TileJSON fields of the attribute columns.
    pub(super) fn fields(&self) -> BTreeMap<String, FieldType> {
        self.columns
            .iter()
            .map(|(name, kind)| (name.clone(), kind.field_type()))
            .collect()
    }

    /// Returns the TileJSON geometry type: `Point`, `LineString`, `Polygon` or `Unknown`.
    pub(super) fn tilejson_geometry_type(&self) -> &'static str {
        let upper = self.geometry_type.to_ascii_uppercase();
        let base = upper.trim_start_matches("MULTI").trim_end_matches('M');
        match base {
            "POINT" => "Point",
            "LINESTRING" => "LineString",
            "POLYGON" => "Polygon",
            _ => "Unknown",
        }
    }

    /// Returns the SQL of the geometry in Web Mercator, transformed only when stored in
    /// another SRID.
    fn mercator_geometry(&self) -> String {
        let column = quote(&self.geometry_column);
        if self.srid == 3857 {
            column
        } else {
            format!("ST_Transform({column}, 3857)")
        }
    }

    /// Returns whether the table's SRID is a local projection, whose tile envelopes are not
    /// boxes once transformed (see `tile_filter`).
    pub(super) fn is_local_projection(&self) -> bool {
        self.srid != 3857 && self.srid != 4326
    }

    /// Returns the SQL filter that uses the geometry column's spatial index: the tile's envelope with its
    /// buffer, transformed to the column's SRID. `$1`, `$2` and `$3` are z, x and y.
    ///
    /// The buffered envelope of a tile on the edge of the world reaches past ±180°, and PROJ
    /// wraps that part to the other side. The envelope of tile 1/0/0 in degrees would then run
    /// from 2.8° E to 177.2° E and miss the Americas, so it is clipped to the Web Mercator
    /// square before it is transformed. In a local projection (a UTM zone, say) a box's edges
    /// become curves, so the envelope is densified to 16 points a side first. With `whole_world`
    /// the geometries are transformed instead, which uses no index but stays right for tiles
    /// far larger than the projection's zone (`LOCAL_PROJECTION_MIN_ZOOM`).
    fn tile_filter(&self, buffer: u32, extent: u32, whole_world: bool) -> String {
        let margin = f64::from(buffer) / f64::from(extent);
        let envelope = format!("ST_TileEnvelope($1, $2, $3, margin => {margin:?})");
        if self.srid == 3857 {
            return format!("{} && {envelope}", quote(&self.geometry_column));
        }
        if whole_world {
            return format!("{} && {envelope}", self.mercator_geometry());
        }
        let clipped = format!(
            "ST_ClipByBox2D({envelope}, ST_MakeEnvelope({min}, {min}, {max}, {max})::box2d)",
            min = -ORIGIN_SHIFT,
            max = ORIGIN_SHIFT,
        );
        let shape = if self.is_local_projection() {
            let world = 2.0 * ORIGIN_SHIFT;
            format!("ST_Segmentize({clipped}, {world:?} / 16.0 / (2.0::float8 ^ $1::float8))")
        } else {
            clipped
        };
        format!(
            "{} && ST_Transform({shape}, {srid})",
            quote(&self.geometry_column),
            srid = self.srid
        )
    }

    fn attribute_list(&self) -> String {
        let mut list = String::new();
        for (column, kind) in &self.columns {
            list.push_str(", ");
            list.push_str(&kind.select(column));
        }
        list
    }

    /// Returns the SQL of a tile encoded by `ST_AsMVT`. Parameters: z, x, y (integers) and the layer name.
    pub(super) fn mvt_sql(&self, buffer: u32, extent: u32, whole_world: bool) -> String {
        let id = match &self.id_column {
            Some(column) => format!(", {}::bigint AS \"__tessera_id\"", quote(column)),
            None => String::new(),
        };
        let id_argument = if self.id_column.is_some() {
            ", '__tessera_id'"
        } else {
            ""
        };
        format!(
            "SELECT ST_AsMVT(tile, $4, {extent}, '__tessera_geom'{id_argument}) FROM (\
               SELECT ST_AsMVTGeom({geometry}, ST_TileEnvelope($1, $2, $3), {extent}, {buffer}, true) \
                      AS \"__tessera_geom\"{id}{attributes} \
               FROM {table} WHERE {filter}\
             ) AS tile WHERE \"__tessera_geom\" IS NOT NULL",
            geometry = self.mercator_geometry(),
            attributes = self.attribute_list(),
            table = self.name.quoted(),
            filter = self.tile_filter(buffer, extent, whole_world),
        )
    }

    /// Returns the SQL of the rows of a tile as WKB in Web Mercator, then the id (when the table has an id
    /// column) and the attribute columns in order. Parameters: z, x and y.
    pub(super) fn wkb_sql(&self, buffer: u32, extent: u32, whole_world: bool) -> String {
        let id = match &self.id_column {
            Some(column) => format!(", {}::bigint", quote(column)),
            None => String::new(),
        };
        format!(
            "SELECT ST_AsBinary(ST_Force2D({geometry})){id}{attributes} FROM {table} WHERE {filter}",
            geometry = self.mercator_geometry(),
            attributes = self.attribute_list(),
            table = self.name.quoted(),
            filter = self.tile_filter(buffer, extent, whole_world),
        )
    }

    /// Returns the SQL of the table's extent in lon/lat: the extent in the stored SRID,
    /// densified so that the transformed box follows its curved edges closely.
    pub(super) fn extent_sql(&self) -> String {
        let column = quote(&self.geometry_column);
        let table = self.name.quoted();
        format!(
            "WITH box AS (SELECT ST_SetSRID(ST_Extent({column})::geometry, {srid}) AS g FROM {table}) \
             SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (\
               SELECT ST_Extent(ST_Transform(ST_Segmentize(g, \
                        greatest(ST_XMax(g) - ST_XMin(g), ST_YMax(g) - ST_YMin(g)) / 32 + 1e-9), 4326)) AS e \
               FROM box WHERE g IS NOT NULL\
             ) AS extent",
            srid = self.srid,
        )
    }

    /// Returns the SQL of the default revision: the table's insert, update and delete counters,
    /// its storage file, which TRUNCATE and rewriting ALTERs replace without counting rows,
    /// and its columns with their types.
    pub(super) fn counters_sql(&self) -> String {
        format!(
            "SELECT concat_ws(',', n_tup_ins, n_tup_upd, n_tup_del, pg_relation_filenode(relid), \
               (SELECT string_agg(attname || ':' || atttypid::text, ';' ORDER BY attnum) \
                FROM pg_attribute WHERE attrelid = relid AND attnum > 0 AND NOT attisdropped)) \
             FROM pg_stat_user_tables WHERE relid = to_regclass('{}')",
            self.name.quoted().replace('\'', "''")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(srid: i32, id_column: Option<&str>) -> Table {
        Table {
            name: QualifiedName::parse("field.camps").expect("name"),
            geometry_column: "geom".to_owned(),
            srid,
            geometry_type: "POINT".to_owned(),
            id_column: id_column.map(str::to_owned),
            columns: vec![
                ("name".to_owned(), ColumnKind::String),
                ("prisoners".to_owned(), ColumnKind::Integer),
                ("opened".to_owned(), ColumnKind::Text),
            ],
        }
    }

    #[test]
    fn qualified_names_parse() {
        let cases = [
            ("camps", Some(("public", "camps"))),
            ("field.camps", Some(("field", "camps"))),
            ("Field.Camps 2", Some(("Field", "Camps 2"))),
            ("a.b.c", None),
            (".camps", None),
            ("field.", None),
        ];
        for (text, expected) in cases {
            let parsed = QualifiedName::parse(text);
            let parsed = parsed
                .as_ref()
                .map(|n| (n.schema.as_str(), n.name.as_str()));
            assert_eq!(parsed, expected, "{text}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("camps"), "\"camps\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        let name = QualifiedName::parse("x\"y.z").expect("name");
        assert_eq!(name.quoted(), "\"x\"\"y\".\"z\"");
    }

    #[test]
    fn column_kinds_follow_types() {
        let cases = [
            ("int4", Some(ColumnKind::Integer)),
            ("int8", Some(ColumnKind::Integer)),
            ("numeric", Some(ColumnKind::Real)),
            ("float8", Some(ColumnKind::Real)),
            ("bool", Some(ColumnKind::Boolean)),
            ("text", Some(ColumnKind::String)),
            ("varchar", Some(ColumnKind::String)),
            ("timestamptz", Some(ColumnKind::Text)),
            ("jsonb", Some(ColumnKind::Text)),
            ("geometry", None),
            ("bytea", None),
        ];
        for (typname, kind) in cases {
            assert_eq!(ColumnKind::of_type(typname), kind, "{typname}");
        }
    }

    #[test]
    fn sql_transforms_only_other_srids() {
        let stored_4326 = table(4326, None);
        let sql = stored_4326.mvt_sql(64, 4096, false);
        assert!(sql.contains("ST_Transform(\"geom\", 3857)"), "{sql}");
        assert!(
            sql.contains(
                "ST_Transform(ST_ClipByBox2D(ST_TileEnvelope($1, $2, $3, margin => 0.015625), "
            ),
            "{sql}"
        );
        assert!(sql.contains("::box2d), 4326)"), "{sql}");
        let stored_3857 = table(3857, None);
        let sql = stored_3857.wkb_sql(64, 4096, false);
        assert!(!sql.contains("ST_Transform"), "{sql}");
        assert!(sql.contains("\"geom\" && ST_TileEnvelope"), "{sql}");
    }

    #[test]
    fn local_projections_densify_or_transform_geometries() {
        let utm = table(32652, None);
        let sql = utm.wkb_sql(64, 4096, false);
        assert!(
            sql.contains("\"geom\" && ST_Transform(ST_Segmentize(ST_ClipByBox2D("),
            "{sql}"
        );
        assert!(
            sql.contains("/ 16.0 / (2.0::float8 ^ $1::float8)), 32652)"),
            "{sql}"
        );
        let low = utm.wkb_sql(64, 4096, true);
        assert!(
            low.contains("WHERE ST_Transform(\"geom\", 3857) && ST_TileEnvelope("),
            "{low}"
        );
        assert!(
            !table(4326, None)
                .mvt_sql(64, 4096, false)
                .contains("ST_Segmentize")
        );
        assert!(utm.is_local_projection());
        assert!(!table(4326, None).is_local_projection());
        assert!(!table(3857, None).is_local_projection());
    }

    #[test]
    fn sql_names_id_and_attributes() {
        let sql = table(4326, Some("fid")).mvt_sql(64, 4096, false);
        assert!(sql.contains("\"fid\"::bigint AS \"__tessera_id\""), "{sql}");
        assert!(sql.contains("'__tessera_geom', '__tessera_id')"), "{sql}");
        assert!(sql.contains("\"name\"::text AS \"name\""), "{sql}");
        assert!(
            sql.contains("to_json(\"opened\") #>> '{}' AS \"opened\""),
            "{sql}"
        );
        assert!(
            sql.contains("\"prisoners\"::bigint AS \"prisoners\""),
            "{sql}"
        );
        assert!(sql.contains("FROM \"field\".\"camps\""), "{sql}");
    }

    #[test]
    fn geometry_types_map_to_tilejson() {
        let cases = [
            ("POINT", "Point"),
            ("MULTIPOINT", "Point"),
            ("MULTIPOLYGON", "Polygon"),
            ("LINESTRINGM", "LineString"),
            ("GEOMETRY", "Unknown"),
        ];
        for (stored, expected) in cases {
            let mut described = table(4326, None);
            described.geometry_type = stored.to_owned();
            assert_eq!(described.tilejson_geometry_type(), expected, "{stored}");
        }
    }
}
