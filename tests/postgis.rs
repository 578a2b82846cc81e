//! PostGIS sources against a real database: the same tiles as the files they were loaded
//! from, for both encoders; discovery; functions with query parameters; data changes seen in
//! tiles and ETags; a database that is down or slow.
//!
//! Needs `TESSERA_TEST_DATABASE_URL` (see `postgis_support::database_url`) and ogr2ogr.

mod common;
mod postgis_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{TestServer, geodata, repo};
use postgis_support::{Decoded, Schema, database_url, decode_layer};
use tessera::config::Config;
use tessera::postgis::PostgresConfig;
use tessera::source::Backend;
use tessera::tile::{TileCoord, lonlat_to_tile};

/// Camp 14, Kaechon, and Camp 25, Chongjin, from camps.geojson, in lon/lat.
const CAMP_14: (f64, f64) = (126.062_155_6, 39.571_705_8);
const CAMP_25: (f64, f64) = (129.721_069_3, 41.832_990_9);

/// Builds a configuration from TOML `sources` and the test database, with discovery off.
fn config(url: &str, sources: &str) -> Config {
    let mut config: Config = toml::from_str(sources).expect("valid test configuration");
    config.postgres = Some(PostgresConfig {
        url: Some(url.to_owned()),
        discover: false,
        startup_wait: 2.0,
        ..PostgresConfig::default()
    });
    config
}

/// Returns the status and body of a tile; the body is empty for a 204.
async fn fetch(server: &TestServer, source: &str, tile: TileCoord) -> (u16, Vec<u8>, String) {
    let path = format!("/tiles/{source}/{}/{}/{}.pbf", tile.z, tile.x, tile.y);
    let response = server.get(&path).await;
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().expect("ASCII ETag").to_owned())
        .unwrap_or_default();
    let body = response.bytes().await.expect("body").to_vec();
    (status, body, etag)
}

/// Returns whether a feature is a point within one unit of the buffer's edge (-64 or 4160).
/// `ST_AsMVTGeom` rounds before it clips and Tessera clips before it rounds, so such a point
/// may be in one tile and not the other.
fn on_buffer_edge(feature: &Decoded) -> bool {
    let near_edge = |value: i64| (value + 64).abs() <= 1 || (value - 4160).abs() <= 1;
    feature.geometry_type == 1
        && feature
            .parts
            .iter()
            .flatten()
            .all(|&(x, y)| near_edge(x) || near_edge(y))
}

/// Asserts that two decoded tiles have the same features: the same attributes, and
/// coordinates within one tile unit. With `exact_parts`, every vertex is compared; without,
/// each feature's bounding box, because `ST_AsMVTGeom` simplifies polygons on its own terms.
/// With `postgis_encoder`, points on the buffer's edge are left out of the comparison.
fn assert_same_features(
    context: &str,
    expected: &[Decoded],
    actual: &[Decoded],
    exact_parts: bool,
    postgis_encoder: bool,
) {
    let kept = |features: &[Decoded]| -> Vec<Decoded> {
        features
            .iter()
            .filter(|feature| !(postgis_encoder && on_buffer_edge(feature)))
            .cloned()
            .collect()
    };
    let mut expected = kept(expected);
    let mut actual = kept(actual);
    expected.sort_by_key(Decoded::key);
    actual.sort_by_key(Decoded::key);
    let expected_keys: Vec<String> = expected.iter().map(Decoded::key).collect();
    let actual_keys: Vec<String> = actual.iter().map(Decoded::key).collect();
    assert_eq!(
        actual_keys, expected_keys,
        "{context}: features and attributes"
    );
    for (want, got) in expected.iter().zip(&actual) {
        let feature = format!("{context}: {}", want.key());
        assert_eq!(
            got.geometry_type, want.geometry_type,
            "{feature}: geometry type"
        );
        let (a, b) = (want.bounds(), got.bounds());
        let near = |p: i64, q: i64| (p - q).abs() <= 1;
        // Both encoders clip at the buffer, but simplify a clipped polygon differently, so
        // the corner where a polygon leaves the buffer may move by up to two units.
        let slack = if exact_parts { 1 } else { 2 };
        let close = |p: i64, q: i64| (p - q).abs() <= slack;
        assert!(
            close(a.0, b.0) && close(a.1, b.1) && close(a.2, b.2) && close(a.3, b.3),
            "{feature}: bounds {b:?} differ from {a:?} by more than {slack} units"
        );
        if exact_parts {
            assert_eq!(got.parts.len(), want.parts.len(), "{feature}: parts");
            for (want_part, got_part) in want.parts.iter().zip(&got.parts) {
                assert_eq!(got_part.len(), want_part.len(), "{feature}: vertices");
                for (p, q) in want_part.iter().zip(got_part) {
                    assert!(
                        near(p.0, q.0) && near(p.1, q.1),
                        "{feature}: vertex {q:?} differs from {p:?}"
                    );
                }
            }
        }
    }
}

/// Returns the tiles at `zooms` that contain any of `points` or their neighbours.
fn tiles_around(points: &[(f64, f64)], zooms: &[u8]) -> Vec<TileCoord> {
    let mut tiles = BTreeSet::new();
    for &z in zooms {
        for &(lon, lat) in points {
            let centre = lonlat_to_tile(lon, lat, z);
            let last = (1_u32 << z) - 1;
            for dx in [-1_i64, 0, 1] {
                for dy in [-1_i64, 0, 1] {
                    let x = (i64::from(centre.x) + dx).clamp(0, i64::from(last)) as u32;
                    let y = (i64::from(centre.y) + dy).clamp(0, i64::from(last)) as u32;
                    tiles.insert((z, x, y));
                }
            }
        }
    }
    tiles
        .into_iter()
        .map(|(z, x, y)| TileCoord::new(u32::from(z), u64::from(x), u64::from(y)).expect("tile"))
        .collect()
}

/// Returns every vertex of a GeoJSON file's geometries, in lon/lat.
fn vertices(path: &std::path::Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(path).expect("GeoJSON file");
    let json: serde_json::Value = serde_json::from_str(&text).expect("GeoJSON");
    let mut found = Vec::new();
    for feature in json["features"].as_array().expect("features") {
        collect_positions(&feature["geometry"]["coordinates"], &mut found);
    }
    found
}

/// Adds the positions in nested GeoJSON coordinate arrays to `found`.
fn collect_positions(value: &serde_json::Value, found: &mut Vec<(f64, f64)>) {
    let serde_json::Value::Array(items) = value else {
        return;
    };
    if let [lon, lat, ..] = items.as_slice()
        && let (Some(lon), Some(lat)) = (lon.as_f64(), lat.as_f64())
    {
        found.push((lon, lat));
        return;
    }
    for item in items {
        collect_positions(item, found);
    }
}

#[tokio::test]
async fn table_tiles_match_file_tiles() {
    let Some(url) = database_url("table_tiles_match_file_tiles") else {
        return;
    };
    let camps = geodata("nk-prison-camps/camps.geojson");
    let compounds = repo().join("tests/data/vector/compounds.geojson");
    let schema = Schema::create(&url, "t_match").await;
    schema.load(&camps, "camps", 4326, "POINT");
    // Stored in UTM zone 52N, so every query reprojects.
    schema.load(&compounds, "compounds", 32652, "MULTIPOLYGON");
    let sources = format!(
        r#"
        [sources.camps]
        path = "{camps}"
        [sources.compounds]
        path = "{compounds}"
        [sources.pg_camps]
        table = "t_match.camps"
        layer = "camps"
        [sources.pg_camps_wkb]
        table = "t_match.camps"
        layer = "camps"
        encoder = "tessera"
        [sources.pg_compounds]
        table = "t_match.compounds"
        layer = "compounds"
        [sources.pg_compounds_wkb]
        table = "t_match.compounds"
        layer = "compounds"
        encoder = "tessera"
        "#,
        camps = camps.display(),
        compounds = compounds.display()
    );
    let server = TestServer::start(config(&url, &sources)).await;
    assert!(
        server.state.failures.is_empty(),
        "{:?}",
        server.state.failures
    );

    let cases = [
        (
            "camps",
            "pg_camps",
            false,
            vertices(&camps),
            &[0_u8, 1, 2, 4, 7, 10, 13, 16][..],
        ),
        (
            "camps",
            "pg_camps_wkb",
            true,
            vertices(&camps),
            &[0, 1, 2, 4, 7, 10, 13, 16],
        ),
        (
            "compounds",
            "pg_compounds",
            false,
            vertices(&compounds),
            &[6, 9, 11, 13, 15],
        ),
        (
            "compounds",
            "pg_compounds_wkb",
            true,
            vertices(&compounds),
            &[6, 9, 11, 13, 15],
        ),
    ];
    for (file, table, exact, points, zooms) in cases {
        let mut with_data = 0;
        for tile in tiles_around(&points, zooms) {
            let context = format!("{table} {tile}");
            let (file_status, file_body, _) = fetch(&server, file, tile).await;
            let (status, body, _) = fetch(&server, table, tile).await;
            // A file source responds 404 outside its bounds. A table's rows may change, so
            // it queries every tile and responds 204 when empty. The features are compared.
            let decode = |status: u16, body: &[u8]| match status {
                200 => decode_layer(body, file),
                204 | 404 => Vec::new(),
                other => panic!("{context}: status {other}"),
            };
            let expected = decode(file_status, &file_body);
            let actual = decode(status, &body);
            assert!(
                !(actual.is_empty() && status == 200),
                "{context}: a 200 tile without features"
            );
            with_data += usize::from(status == 200);
            // Points are never simplified, so their coordinates are compared one by one.
            let exact_parts = exact || file == "camps";
            assert_same_features(&context, &expected, &actual, exact_parts, !exact);
        }
        assert!(with_data >= 10, "{table}: only {with_data} tiles had data");
        eprintln!("{table}: {with_data} tiles with data compared with {file}");
    }
}

#[tokio::test]
async fn utm_table_fills_low_zoom_tiles() {
    let Some(url) = database_url("utm_table_fills_low_zoom_tiles") else {
        return;
    };
    let compounds = repo().join("tests/data/vector/compounds.geojson");
    let schema = Schema::create(&url, "t_utm").await;
    schema.load(&compounds, "compounds", 32652, "MULTIPOLYGON");
    let sources = r#"
        [sources.pg_compounds]
        table = "t_utm.compounds"
        layer = "compounds"
        [sources.pg_compounds_wkb]
        table = "t_utm.compounds"
        layer = "compounds"
        encoder = "tessera"
    "#;
    let server = TestServer::start(config(&url, sources)).await;
    // At low zooms, the tiles around the compounds (stored in UTM 52N) must still
    // hold all three of them: the world's envelope does not transform to a UTM box.
    let points = vertices(&compounds);
    for table in ["pg_compounds", "pg_compounds_wkb"] {
        for zoom in 0..=5 {
            let mut names = BTreeSet::new();
            for tile in tiles_around(&points, &[zoom]) {
                let (status, body, _) = fetch(&server, table, tile).await;
                if status == 200 {
                    for feature in decode_layer(&body, "compounds") {
                        names.insert(feature.attributes["name"].clone());
                    }
                }
            }
            assert_eq!(names.len(), 3, "{table} at z{zoom}: {names:?}");
        }
    }
}

#[tokio::test]
async fn tilejson_and_listings_name_tables() {
    let Some(url) = database_url("tilejson_and_listings_name_tables") else {
        return;
    };
    let camps = geodata("nk-prison-camps/camps.geojson");
    let schema = Schema::create(&url, "t_listing").await;
    schema.load(&camps, "camps", 4326, "POINT");
    let sources = format!(
        r#"
        [sources.camps]
        path = "{}"
        [sources.pg_camps]
        table = "t_listing.camps"
        layer = "camps"
        name = "Camps from PostGIS"
        attribution = "HRNK"
        "#,
        camps.display()
    );
    let server = TestServer::start(config(&url, &sources)).await;
    let file = server.json("/tiles/camps.json").await;
    let table = server.json("/tiles/pg_camps.json").await;
    assert_eq!(table["name"], "Camps from PostGIS");
    assert_eq!(table["attribution"], "HRNK");
    assert_eq!(table["vector_layers"][0]["id"], "camps");
    assert_eq!(table["vector_layers"][0]["geometry_type"], "Point");
    assert_eq!(
        table["vector_layers"][0]["fields"], file["vector_layers"][0]["fields"],
        "the table's columns have the file's names and types"
    );
    let bounds = table["bounds"].as_array().expect("bounds");
    let file_bounds = file["bounds"].as_array().expect("bounds");
    for (got, want) in bounds.iter().zip(file_bounds) {
        let (got, want) = (
            got.as_f64().expect("number"),
            want.as_f64().expect("number"),
        );
        assert!(
            (got - want).abs() < 1e-6,
            "bounds {bounds:?} against {file_bounds:?}"
        );
    }

    let catalog = server.json("/catalog").await;
    let entry = catalog["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["id"] == "pg_camps")
        .expect("pg_camps in the catalog");
    assert_eq!(entry["kind"], "vector");
    assert_eq!(entry["format"], "pbf");
    let collections = server.json("/ogc/collections").await;
    assert!(
        collections["collections"]
            .as_array()
            .expect("collections")
            .iter()
            .any(|c| c["id"] == "pg_camps"),
        "OGC API lists pg_camps: {collections}"
    );
    let capabilities = server
        .get("/wmts/1.0.0/WMTSCapabilities.xml")
        .await
        .text()
        .await
        .expect("capabilities");
    assert!(
        capabilities.contains("<ows:Identifier>pg_camps</ows:Identifier>"),
        "WMTS lists pg_camps"
    );
    let ogc_tile = server
        .get("/ogc/collections/pg_camps/tiles/WebMercatorQuad/0/0/0")
        .await;
    assert_eq!(ogc_tile.status(), 200, "OGC API tile");

    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, password)| password.to_owned())
        .expect("the test URL has a password");
    for path in ["/health", "/catalog", "/tiles/pg_camps.json", "/metrics"] {
        let body = server.get(path).await.text().await.expect("body");
        assert!(
            !body.contains(&password),
            "{path} shows the database password"
        );
    }
}

#[tokio::test]
async fn discovered_tables_are_served() {
    let Some(url) = database_url("discovered_tables_are_served") else {
        return;
    };
    let schema = Schema::create(&url, "t_discover").await;
    schema.load(
        &geodata("nk-prison-camps/camps.geojson"),
        "camps",
        4326,
        "POINT",
    );
    schema.load(
        &repo().join("tests/data/vector/compounds.geojson"),
        "compounds",
        32652,
        "MULTIPOLYGON",
    );
    let mut config = config(&url, "");
    if let Some(postgres) = &mut config.postgres {
        postgres.discover = true;
        postgres.schemas = vec!["t_discover".to_owned()];
    }
    let server = TestServer::start(config).await;
    assert!(
        server.state.failures.is_empty(),
        "{:?}",
        server.state.failures
    );
    let ids: Vec<String> = server.state.catalog.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, ["camps", "compounds"]);
    let compounds = server.json("/tiles/compounds.json").await;
    assert_eq!(compounds["vector_layers"][0]["geometry_type"], "Polygon");
    let fields = &compounds["vector_layers"][0]["fields"];
    assert_eq!(fields["zone"], "Number");
    assert_eq!(fields["inspected"], "Boolean");
    assert_eq!(fields["name"], "String");
    assert!(
        fields.get("ogc_fid").is_none(),
        "the primary key is the feature id"
    );
    let tile = lonlat_to_tile(126.06, 39.57, 12);
    let (status, body, _) = fetch(&server, "compounds", tile).await;
    assert_eq!(status, 200);
    let features = decode_layer(&body, "compounds");
    assert_eq!(features.len(), 1, "{features:?}");
    assert_eq!(features[0].attributes["name"], "\"Compound A\"");
}

/// A function in Martin's convention that keeps the camps whose status starts with the
/// `status` query parameter, and one without parameters.
const FUNCTIONS: &str = r"
CREATE FUNCTION t_function.camps_by_status(z integer, x integer, y integer, query_params json)
RETURNS bytea AS $$
  SELECT ST_AsMVT(tile, 'camps', 4096, 'geom') FROM (
    SELECT ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true) AS geom,
           name, status
    FROM t_function.camps
    WHERE geom && ST_Transform(ST_TileEnvelope(z, x, y), 4326)
      AND (query_params->>'status' IS NULL OR status LIKE (query_params->>'status') || '%')
  ) AS tile WHERE geom IS NOT NULL
$$ LANGUAGE sql STABLE PARALLEL SAFE;
CREATE FUNCTION t_function.all_camps(z integer, x integer, y integer)
RETURNS bytea AS $$
  SELECT t_function.camps_by_status(z, x, y, '{}'::json)
$$ LANGUAGE sql STABLE PARALLEL SAFE;
";

#[tokio::test]
async fn function_parameters_filter_features() {
    let Some(url) = database_url("function_parameters_filter_features") else {
        return;
    };
    let camps = geodata("nk-prison-camps/camps.geojson");
    let schema = Schema::create(&url, "t_function").await;
    schema.load(&camps, "camps", 4326, "POINT");
    schema.execute(FUNCTIONS).await;
    let sources = r#"
        [sources.by_status]
        function = "t_function.camps_by_status"
        parameters = ["status"]
        fields = { name = "String", status = "String" }
        [sources.all_camps]
        function = "t_function.all_camps"
        layer = "camps"
    "#;
    let server = TestServer::start(config(&url, sources)).await;
    assert!(
        server.state.failures.is_empty(),
        "{:?}",
        server.state.failures
    );

    let text = std::fs::read_to_string(&camps).expect("camps");
    let json: serde_json::Value = serde_json::from_str(&text).expect("GeoJSON");
    let statuses: Vec<&str> = json["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["properties"]["status"].as_str().unwrap_or_default())
        .collect();
    let operating = statuses
        .iter()
        .filter(|s| s.starts_with("Operating"))
        .count();
    assert!(
        operating > 0 && operating < statuses.len(),
        "the filter must select some"
    );

    let count = |body: &[u8]| decode_layer(body, "camps").len();
    let all = server.get("/tiles/by_status/0/0/0.pbf").await;
    assert_eq!(all.status(), 200);
    assert_eq!(count(&all.bytes().await.expect("body")), statuses.len());
    let filtered = server
        .get("/tiles/by_status/0/0/0.pbf?status=Operating")
        .await;
    assert_eq!(filtered.status(), 200);
    let filtered = decode_layer(&filtered.bytes().await.expect("body"), "camps");
    assert_eq!(filtered.len(), operating);
    assert!(
        filtered
            .iter()
            .all(|f| f.attributes["status"].starts_with("\"Operating")),
        "{filtered:?}"
    );
    let without = server.get("/tiles/all_camps/0/0/0.pbf").await;
    assert_eq!(without.status(), 200);
    assert_eq!(count(&without.bytes().await.expect("body")), statuses.len());

    let rejected = [
        ("/tiles/by_status/0/0/0.pbf?colour=red", "query"),
        ("/tiles/by_status/0/0/0.pbf?status=a&status=b", "query"),
        ("/tiles/all_camps/0/0/0.pbf?status=Operating", "query"),
        ("/tiles/by_status.json?colour=red", "query"),
    ];
    for (path, parameter) in rejected {
        let response = server.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let problem: serde_json::Value = response.json().await.expect("problem");
        assert_eq!(problem["parameter"], parameter, "{path}");
    }
    let tilejson = server.json("/tiles/by_status.json").await;
    assert_eq!(
        tilejson["tessera:parameters"],
        serde_json::json!(["status"])
    );
    assert_eq!(tilejson["vector_layers"][0]["fields"]["status"], "String");

    // A function without `revision_query` has no revision to follow, so its tiles are never
    // kept: a change shows in the next request.
    schema
        .execute("UPDATE t_function.camps SET status = 'Closed' WHERE status LIKE 'Operating%'")
        .await;
    let after = server
        .get("/tiles/by_status/0/0/0.pbf?status=Operating")
        .await;
    assert_eq!(
        after.status(),
        204,
        "the updated rows leave the filter at once"
    );
}

/// Polls `tile` until its ETag differs from `previous`, for at most `limit`.
async fn wait_for_change(
    server: &TestServer,
    source: &str,
    tile: TileCoord,
    previous: &str,
    limit: Duration,
) -> (Vec<u8>, String, Duration) {
    let started = Instant::now();
    loop {
        let (status, body, etag) = fetch(server, source, tile).await;
        assert!(
            status == 200 || status == 204,
            "{source} {tile}: status {status}"
        );
        if etag != previous {
            return (body, etag, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "{source} {tile}: the ETag did not change within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn revision(server: &TestServer, id: &str) -> u64 {
    let source = server.state.catalog.get(id).expect("source");
    let Backend::Postgis(postgis) = &source.backend else {
        panic!("{id} is not a PostGIS source");
    };
    postgis.revision()
}

/// The trigger that the README documents, with its own channel and revision table.
const REVISION_TRIGGER: &str = r"
CREATE TABLE t_change.tessera_revisions (table_name text PRIMARY KEY, revision bigint NOT NULL);
CREATE FUNCTION t_change.tessera_bump_revision() RETURNS trigger AS $$
BEGIN
  INSERT INTO t_change.tessera_revisions AS r VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 1)
    ON CONFLICT (table_name) DO UPDATE SET revision = r.revision + 1;
  PERFORM pg_notify('tessera_t_change', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER camps_revision AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON t_change.camps
  FOR EACH STATEMENT EXECUTE FUNCTION t_change.tessera_bump_revision();
";

#[tokio::test]
async fn data_changes_reach_tiles_by_notification() {
    let Some(url) = database_url("data_changes_reach_tiles_by_notification") else {
        return;
    };
    let schema = Schema::create(&url, "t_change").await;
    schema.load(
        &geodata("nk-prison-camps/camps.geojson"),
        "camps",
        4326,
        "POINT",
    );
    schema.execute(REVISION_TRIGGER).await;
    let sources = r#"
        [sources.pg_camps]
        table = "t_change.camps"
        layer = "camps"
        revision_query = "SELECT revision::text FROM t_change.tessera_revisions WHERE table_name = 't_change.camps'"
        [sources.pg_camps_wkb]
        table = "t_change.camps"
        layer = "camps"
        encoder = "tessera"
        revision_query = "SELECT revision::text FROM t_change.tessera_revisions WHERE table_name = 't_change.camps'"
    "#;
    let mut config = config(&url, sources);
    if let Some(postgres) = &mut config.postgres {
        // Only the notification can explain a change seen within seconds.
        postgres.revision_interval = 600.0;
        postgres.notify_channel = Some("tessera_t_change".to_owned());
    }
    let server = TestServer::start(config).await;
    assert!(
        server.state.failures.is_empty(),
        "{:?}",
        server.state.failures
    );
    // Camp 14, Kaechon.
    let tile = lonlat_to_tile(CAMP_14.0, CAMP_14.1, 9);
    let far_tile = lonlat_to_tile(CAMP_25.0, CAMP_25.1, 9);
    let limit = Duration::from_secs(5);
    for source in ["pg_camps", "pg_camps_wkb"] {
        let (_, body, etag) = fetch(&server, source, tile).await;
        let before = decode_layer(&body, "camps").len();
        let revision_before = revision(&server, source);

        schema
            .execute(&format!(
                "INSERT INTO t_change.camps (name, status, geom) VALUES \
                 ('New site {source}', 'Reported', ST_SetSRID(ST_MakePoint(126.07, 39.575), 4326))"
            ))
            .await;
        let (body, etag_inserted, _) = wait_for_change(&server, source, tile, &etag, limit).await;
        let inserted = decode_layer(&body, "camps");
        assert_eq!(
            inserted.len(),
            before + 1,
            "{source}: the inserted row is in the tile"
        );
        // The notification reaches the revision on its own schedule, which may come a little
        // after the first tile that shows the row.
        let started = Instant::now();
        while revision(&server, source) == revision_before {
            assert!(
                started.elapsed() < limit,
                "{source}: the revision did not change within {limit:?} of the insert"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        schema
            .execute(&format!(
                "UPDATE t_change.camps SET status = 'Confirmed' WHERE name = 'New site {source}'"
            ))
            .await;
        let (body, etag_updated, _) =
            wait_for_change(&server, source, tile, &etag_inserted, limit).await;
        let updated = decode_layer(&body, "camps");
        assert!(
            updated
                .iter()
                .any(|f| f.attributes.get("status").map(String::as_str) == Some("\"Confirmed\"")),
            "{source}: the updated status is in the tile"
        );

        // A change elsewhere leaves this tile's bytes alone but changes its ETag.
        let (_, far_body, _) = fetch(&server, source, far_tile).await;
        let far_before = decode_layer(&far_body, "camps").len();
        schema
            .execute("UPDATE t_change.camps SET status = status WHERE name = 'no such camp'")
            .await;
        let (body_after, etag_touched, _) =
            wait_for_change(&server, source, tile, &etag_updated, limit).await;
        assert_eq!(decode_layer(&body_after, "camps").len(), updated.len());
        assert_ne!(etag_touched, etag_updated);

        schema
            .execute(&format!(
                "DELETE FROM t_change.camps WHERE name = 'New site {source}'"
            ))
            .await;
        let (body, _, _) = wait_for_change(&server, source, tile, &etag_touched, limit).await;
        assert_eq!(
            decode_layer(&body, "camps").len(),
            before,
            "{source}: the row is gone"
        );
        let (_, far_body, _) = fetch(&server, source, far_tile).await;
        assert_eq!(decode_layer(&far_body, "camps").len(), far_before);
    }
}

#[tokio::test]
async fn data_changes_reach_tiles_by_counters() {
    let Some(url) = database_url("data_changes_reach_tiles_by_counters") else {
        return;
    };
    let schema = Schema::create(&url, "t_counters").await;
    schema.load(
        &geodata("nk-prison-camps/camps.geojson"),
        "camps",
        4326,
        "POINT",
    );
    let sources = r#"
        [sources.pg_camps]
        table = "t_counters.camps"
        layer = "camps"
    "#;
    let mut config = config(&url, sources);
    if let Some(postgres) = &mut config.postgres {
        postgres.revision_interval = 0.5;
    }
    let server = TestServer::start(config).await;
    let tile = lonlat_to_tile(CAMP_14.0, CAMP_14.1, 9);
    let (_, body, etag) = fetch(&server, "pg_camps", tile).await;
    let before = decode_layer(&body, "camps").len();
    let revision_before = revision(&server, "pg_camps");
    // A connection that closes after its insert, as ogr2ogr or psql do: PostgreSQL 15
    // publishes a session's table counters at the latest when it ends.
    {
        let writer = Schema::create(&url, "t_counters_writer").await;
        writer
            .execute(
                "INSERT INTO t_counters.camps (name, geom) VALUES \
                 ('Counted', ST_SetSRID(ST_MakePoint(126.07, 39.575), 4326))",
            )
            .await;
    }
    // The kept tile is replaced once the revision follows the insert, within the poll
    // interval after PostgreSQL publishes the counters.
    let (body, etag, waited) =
        wait_for_change(&server, "pg_camps", tile, &etag, Duration::from_secs(15)).await;
    assert_eq!(decode_layer(&body, "camps").len(), before + 1);
    assert_ne!(revision(&server, "pg_camps"), revision_before);
    eprintln!("counters: the tile changed {waited:?} after the insert");

    // TRUNCATE counts no deleted rows, but it gives the table a new storage file.
    schema.execute("TRUNCATE t_counters.camps").await;
    let (status, _, _) = fetch(&server, "pg_camps", tile).await;
    assert!(status == 200 || status == 204, "status {status}");
    let (body, _, waited) =
        wait_for_change(&server, "pg_camps", tile, &etag, Duration::from_secs(15)).await;
    assert!(body.is_empty(), "the truncated table gives an empty tile");
    eprintln!("counters: the tile emptied {waited:?} after TRUNCATE");
}

#[tokio::test]
async fn retyped_column_fails_without_panic() {
    let Some(url) = database_url("retyped_column_fails_without_panic") else {
        return;
    };
    let schema = Schema::create(&url, "t_retype").await;
    schema
        .execute(
            "CREATE TABLE t_retype.points (id serial PRIMARY KEY, open boolean, \
               geom geometry(Point, 4326)); \
             INSERT INTO t_retype.points (open, geom) VALUES \
               (true, ST_SetSRID(ST_MakePoint(126.07, 39.575), 4326))",
        )
        .await;
    let sources = r#"
        [sources.wkb]
        table = "t_retype.points"
        layer = "points"
        encoder = "tessera"
        [sources.mvt]
        table = "t_retype.points"
        layer = "points"
        encoder = "postgis"
    "#;
    let mut config = config(&url, sources);
    if let Some(postgres) = &mut config.postgres {
        postgres.revision_interval = 0.2;
    }
    let server = TestServer::start(config).await;
    let tile = lonlat_to_tile(126.07, 39.575, 9);
    assert_eq!(fetch(&server, "wkb", tile).await.0, 200);
    schema
        .execute("ALTER TABLE t_retype.points ALTER COLUMN open TYPE integer USING open::integer")
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..3 {
        let response = server
            .get(&format!("/tiles/wkb/{}/{}/{}.pbf", tile.z, tile.x, tile.y))
            .await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        assert!(status == 200 || status == 500, "status {status}: {text}");
        assert!(!text.contains("panicked"), "{text}");
    }
    let (status, body, _) = fetch(&server, "mvt", tile).await;
    assert_eq!(status, 200, "the ST_AsMVT encoder reads the retyped column");
    assert_eq!(decode_layer(&body, "points").len(), 1);
}

#[tokio::test]
async fn unreachable_database_is_reported() {
    // A port that was free a moment ago: nothing listens on it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let url = format!("postgresql://tessera:hidden-secret-42@127.0.0.1:{port}/tessera");
    let camps = geodata("nk-prison-camps/camps.geojson");
    let sources = format!(
        r#"
        [sources.camps]
        path = "{}"
        [sources.pg_camps]
        table = "public.camps"
        "#,
        camps.display()
    );
    let mut config = config(&url, &sources);
    if let Some(postgres) = &mut config.postgres {
        postgres.startup_wait = 0.5;
    }
    let started = Instant::now();
    let server = TestServer::start(config).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "start-up waited too long"
    );
    let health = server.json("/health").await;
    let failed = health["failed_sources"].as_array().expect("failed sources");
    assert_eq!(failed.len(), 1, "{health}");
    assert_eq!(failed[0]["path"], "postgres:pg_camps");
    let reason = failed[0]["reason"].as_str().expect("reason");
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
    assert!(!health.to_string().contains("hidden-secret-42"), "{health}");
    assert_eq!(server.get("/tiles/camps/0/0/0.pbf").await.status(), 200);
    assert_eq!(server.get("/tiles/pg_camps/0/0/0.pbf").await.status(), 404);
}

#[tokio::test]
async fn slow_query_is_cancelled() {
    let Some(url) = database_url("slow_query_is_cancelled") else {
        return;
    };
    let schema = Schema::create(&url, "t_slow").await;
    schema
        .execute(
            "CREATE FUNCTION t_slow.slow_tile(z integer, x integer, y integer) RETURNS bytea AS $$ \
               SELECT pg_sleep(20)::text::bytea \
             $$ LANGUAGE sql",
        )
        .await;
    let sources = r#"
        [sources.slow]
        function = "t_slow.slow_tile"
    "#;
    let mut config = config(&url, sources);
    config.tile_timeout = 1.0;
    let server = TestServer::start(config).await;
    let started = Instant::now();
    let response = server.get("/tiles/slow/3/1/1.pbf").await;
    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The query no longer runs on the server.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running: i64 = schema
            .client()
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE state = 'active' AND query LIKE '%t_slow%slow_tile%' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if running == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the slow query still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
