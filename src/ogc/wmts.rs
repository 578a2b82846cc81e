//! OGC WMTS 1.0.0 (OGC 07-057r7): the capabilities document, GetTile requests in key-value
//! (KVP) and RESTful form, and OWS 1.1 exception reports.

use std::fmt::Write as _;

use super::matrix_set::{CRS_URN, MatrixSet, TILE_SIZE, tile_matrices};
use super::{LayerDescription, xml_escape};
use crate::format::TileFormat;
use crate::tile::{MAX_ZOOM, ORIGIN_SHIFT, TileCoord, tile_range};

/// The only style of every layer.
pub const DEFAULT_STYLE: &str = "default";

/// Exception codes of OWS Common 1.1 and WMTS 1.0.0 (OGC 07-057r7, table 28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionCode {
    MissingParameterValue,
    InvalidParameterValue,
    OperationNotSupported,
    TileOutOfRange,
}

impl ExceptionCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingParameterValue => "MissingParameterValue",
            Self::InvalidParameterValue => "InvalidParameterValue",
            Self::OperationNotSupported => "OperationNotSupported",
            Self::TileOutOfRange => "TileOutOfRange",
        }
    }

    /// Returns the HTTP status that WMTS 1.0.0 assigns to the code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::OperationNotSupported => 501,
            Self::MissingParameterValue | Self::InvalidParameterValue | Self::TileOutOfRange => 400,
        }
    }
}

/// A WMTS error: the code, the request parameter it concerns (the `locator`) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub code: ExceptionCode,
    pub locator: String,
    pub text: String,
}

impl Exception {
    pub fn new(code: ExceptionCode, locator: &str, text: impl Into<String>) -> Self {
        Self {
            code,
            locator: locator.to_owned(),
            text: text.into(),
        }
    }

    /// Builds the OWS 1.1 `ExceptionReport` document.
    pub fn to_xml(&self) -> String {
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                "\n",
                r#"<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" "#,
                r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
                r#"xsi:schemaLocation="http://www.opengis.net/ows/1.1 http://schemas.opengis.net/ows/1.1.0/owsExceptionReport.xsd" "#,
                r#"version="1.0.0" xml:lang="en">"#,
                "\n",
                r#"  <ows:Exception exceptionCode="{}" locator="{}">"#,
                "\n",
                "    <ows:ExceptionText>{}</ows:ExceptionText>\n",
                "  </ows:Exception>\n",
                "</ows:ExceptionReport>\n"
            ),
            self.code.as_str(),
            xml_escape(&self.locator),
            xml_escape(&self.text)
        )
    }
}

/// A GetTile request, from either encoding, before it is checked against the layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetTile {
    pub layer: String,
    pub style: String,
    /// A media type (KVP) or a file extension (REST).
    pub format: String,
    pub matrix_set: String,
    pub tile_matrix: String,
    pub tile_row: String,
    pub tile_col: String,
    pub time: Option<String>,
}

/// A WMTS request in KVP form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    GetCapabilities,
    GetTile(GetTile),
}

/// Parses the query parameters of a KVP request. Parameter names are case-insensitive, as
/// OWS Common requires; values are not.
pub fn parse_kvp(pairs: &[(String, String)]) -> Result<Request, Exception> {
    // A repeated parameter is rejected rather than one of its values chosen.
    for (index, (name, _)) in pairs.iter().enumerate() {
        if pairs[..index]
            .iter()
            .any(|(earlier, _)| earlier.eq_ignore_ascii_case(name))
        {
            return Err(Exception::new(
                ExceptionCode::InvalidParameterValue,
                &name.to_ascii_uppercase(),
                format!("{name} is given more than once: give it once"),
            ));
        }
    }
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    let required = |name: &str| {
        value(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            Exception::new(
                ExceptionCode::MissingParameterValue,
                name,
                format!("the {name} parameter is missing"),
            )
        })
    };
    let service = required("SERVICE")?;
    if !service.eq_ignore_ascii_case("WMTS") {
        return Err(Exception::new(
            ExceptionCode::InvalidParameterValue,
            "SERVICE",
            format!("SERVICE={service} is not served here: use SERVICE=WMTS"),
        ));
    }
    let request = required("REQUEST")?;
    match request.as_str() {
        "GetCapabilities" => Ok(Request::GetCapabilities),
        "GetTile" => {
            if let Some(version) = value("VERSION").filter(|v| v != "1.0.0") {
                return Err(Exception::new(
                    ExceptionCode::InvalidParameterValue,
                    "VERSION",
                    format!("VERSION={version} is not supported: use 1.0.0"),
                ));
            }
            Ok(Request::GetTile(GetTile {
                layer: required("LAYER")?,
                // An empty STYLE selects the default style.
                style: value("STYLE")
                    .filter(|style| !style.is_empty())
                    .unwrap_or_else(|| DEFAULT_STYLE.to_owned()),
                format: required("FORMAT")?,
                matrix_set: required("TILEMATRIXSET")?,
                tile_matrix: required("TILEMATRIX")?,
                tile_row: required("TILEROW")?,
                tile_col: required("TILECOL")?,
                time: value("TIME").filter(|time| !time.is_empty()),
            }))
        }
        "GetFeatureInfo" => Err(Exception::new(
            ExceptionCode::OperationNotSupported,
            "REQUEST",
            "GetFeatureInfo is not supported: use GetCapabilities or GetTile",
        )),
        other => Err(Exception::new(
            ExceptionCode::InvalidParameterValue,
            "REQUEST",
            format!("unknown REQUEST={other}: use GetCapabilities or GetTile"),
        )),
    }
}

/// A GetTile request checked against its layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedTile {
    pub tile: TileCoord,
    pub format: TileFormat,
}

/// Checks the style, format, matrix set, tile matrix, row, column and time of `request`
/// against `layer`, whose id the caller has matched.
pub fn check_get_tile(
    request: &GetTile,
    layer: &LayerDescription,
) -> Result<CheckedTile, Exception> {
    let invalid = |locator: &str, text: String| {
        Exception::new(ExceptionCode::InvalidParameterValue, locator, text)
    };
    if request.style != DEFAULT_STYLE {
        return Err(invalid(
            "STYLE",
            format!(
                "layer {:?} has no style {:?}: use {DEFAULT_STYLE}",
                layer.id, request.style
            ),
        ));
    }
    let format = find_format(request, layer)?;
    if MatrixSet::from_identifier(&request.matrix_set).is_none() {
        return Err(invalid(
            "TILEMATRIXSET",
            format!(
                "unknown tile matrix set {:?}: use WebMercatorQuad or GoogleMapsCompatible",
                request.matrix_set
            ),
        ));
    }
    check_time(request.time.as_deref(), layer)?;
    let zoom = check_zoom(request, layer)?;

    let (min_col, min_row, max_col, max_row) = tile_range(&layer.bounds, zoom);
    let row = check_index("TILEROW", &request.tile_row, min_row, max_row, zoom, layer)?;
    let col = check_index("TILECOL", &request.tile_col, min_col, max_col, zoom, layer)?;
    let tile = TileCoord::new(zoom.into(), col.into(), row.into()).map_err(|error| {
        Exception::new(ExceptionCode::TileOutOfRange, "TILEROW", error.to_string())
    })?;
    Ok(CheckedTile { tile, format })
}

/// Finds the layer's format that the request names by media type (KVP) or extension (REST).
fn find_format(request: &GetTile, layer: &LayerDescription) -> Result<TileFormat, Exception> {
    let invalid = |locator: &str, text: String| {
        Exception::new(ExceptionCode::InvalidParameterValue, locator, text)
    };
    layer
        .formats
        .iter()
        .copied()
        .find(|format| {
            format.media_type() == request.format
                || TileFormat::from_extension(&request.format) == Some(*format)
        })
        .ok_or_else(|| {
            let served: Vec<&str> = layer.formats.iter().map(|f| f.media_type()).collect();
            invalid(
                "FORMAT",
                format!(
                    "layer {:?} is not served as {:?}: use {}",
                    layer.id,
                    request.format,
                    served.join(", ")
                ),
            )
        })
}

/// Parses the tile matrix, which must be a zoom of the set and in the layer's zoom range.
fn check_zoom(request: &GetTile, layer: &LayerDescription) -> Result<u8, Exception> {
    let invalid = |locator: &str, text: String| {
        Exception::new(ExceptionCode::InvalidParameterValue, locator, text)
    };
    let zoom = parse_index(&request.tile_matrix)
        .and_then(|z| u8::try_from(z).ok())
        .filter(|z| *z <= MAX_ZOOM)
        .ok_or_else(|| {
            invalid(
                "TILEMATRIX",
                format!(
                    "unknown tile matrix {:?}: use a zoom from 0 to {MAX_ZOOM}",
                    request.tile_matrix
                ),
            )
        })?;
    if zoom < layer.minzoom || zoom > layer.maxzoom {
        return Err(Exception::new(
            ExceptionCode::TileOutOfRange,
            "TILEMATRIX",
            format!(
                "layer {:?} has tile matrices {} to {}, not {zoom}",
                layer.id, layer.minzoom, layer.maxzoom
            ),
        ));
    }
    Ok(zoom)
}

/// Checks the TIME dimension value: one of a dated layer's dates, or absent for its default
/// (the latest date). A layer without dates has no TIME dimension and rejects any value.
fn check_time(time: Option<&str>, layer: &LayerDescription) -> Result<(), Exception> {
    match (time, layer.dates.is_empty()) {
        (None, _) => Ok(()),
        (Some(time), true) => Err(Exception::new(
            ExceptionCode::InvalidParameterValue,
            "TIME",
            format!(
                "layer {:?} has no TIME dimension, so TIME={time} is invalid: leave it out",
                layer.id
            ),
        )),
        (Some(time), false) if layer.dates.iter().any(|date| date == time) => Ok(()),
        (Some(time), false) => Err(Exception::new(
            ExceptionCode::InvalidParameterValue,
            "TIME",
            format!(
                "layer {:?} has no imagery dated {time:?}: use one of {}",
                layer.id,
                layer.dates.join(", ")
            ),
        )),
    }
}

fn parse_index(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn check_index(
    locator: &str,
    text: &str,
    min: u32,
    max: u32,
    zoom: u8,
    layer: &LayerDescription,
) -> Result<u32, Exception> {
    let index = parse_index(text).ok_or_else(|| {
        Exception::new(
            ExceptionCode::InvalidParameterValue,
            locator,
            format!("{locator}={text:?} is not a whole number"),
        )
    })?;
    if index < min || index > max {
        return Err(Exception::new(
            ExceptionCode::TileOutOfRange,
            locator,
            format!(
                "{locator}={index} is outside layer {:?} at tile matrix {zoom}: use {min} to {max}",
                layer.id
            ),
        ));
    }
    Ok(index)
}

/// Builds the capabilities document for `layers`, with operation and resource URLs under
/// `base_url`. `key_query` (`?key=…` or empty) is added to every URL, so that a client that
/// opened the document with a key sends it with each tile.
pub fn capabilities(layers: &[LayerDescription], base_url: &str, key_query: &str) -> String {
    let base = xml_escape(base_url);
    let key = xml_escape(key_query);
    // KVP requests append their parameters to the operation's URL.
    let operation_query = if key_query.is_empty() {
        "?".to_owned()
    } else {
        format!("{key}&amp;")
    };
    let mut xml = String::with_capacity(4096 + layers.len() * 8192);
    xml.push_str(concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        "\n",
        r#"<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1" "#,
        r#"xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
        r#"xmlns:gml="http://www.opengis.net/gml" "#,
        r#"xsi:schemaLocation="http://www.opengis.net/wmts/1.0 http://schemas.opengis.net/wmts/1.0/wmtsGetCapabilities_response.xsd" "#,
        r#"version="1.0.0">"#,
        "\n",
        "  <ows:ServiceIdentification>\n",
        "    <ows:Title>Tessera</ows:Title>\n",
        "    <ows:Abstract>Satellite imagery and facility tiles for human-rights investigations</ows:Abstract>\n",
        "    <ows:ServiceType>OGC WMTS</ows:ServiceType>\n",
        "    <ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion>\n",
        "  </ows:ServiceIdentification>\n",
        "  <ows:ServiceProvider>\n",
        "    <ows:ProviderName>Tessera</ows:ProviderName>\n",
        "    <ows:ServiceContact/>\n",
        "  </ows:ServiceProvider>\n",
        "  <ows:OperationsMetadata>\n",
    ));
    for operation in ["GetCapabilities", "GetTile"] {
        let _ = write!(
            xml,
            concat!(
                "    <ows:Operation name=\"{operation}\">\n",
                "      <ows:DCP><ows:HTTP><ows:Get xlink:href=\"{base}/wmts{operation_query}\">\n",
                "        <ows:Constraint name=\"GetEncoding\"><ows:AllowedValues><ows:Value>KVP</ows:Value></ows:AllowedValues></ows:Constraint>\n",
                "      </ows:Get></ows:HTTP></ows:DCP>\n",
                "    </ows:Operation>\n"
            ),
            operation = operation,
            base = base,
            operation_query = operation_query
        );
    }
    xml.push_str("  </ows:OperationsMetadata>\n  <Contents>\n");
    for layer in layers {
        write_layer(&mut xml, layer, &base, &key);
    }
    for set in MatrixSet::ALL {
        write_matrix_set(&mut xml, set);
    }
    let _ = write!(
        xml,
        "  </Contents>\n  <ServiceMetadataURL xlink:href=\"{base}/wmts/1.0.0/WMTSCapabilities.xml{key}\"/>\n</Capabilities>\n"
    );
    xml
}

fn write_layer(xml: &mut String, layer: &LayerDescription, base: &str, key: &str) {
    let id = xml_escape(&layer.id);
    let _ = writeln!(
        xml,
        "    <Layer>\n      <ows:Title>{}</ows:Title>",
        xml_escape(&layer.title)
    );
    if let Some(description) = &layer.description {
        let _ = writeln!(
            xml,
            "      <ows:Abstract>{}</ows:Abstract>",
            xml_escape(description)
        );
    }
    let b = &layer.bounds;
    let _ = write!(
        xml,
        concat!(
            "      <ows:WGS84BoundingBox>\n",
            "        <ows:LowerCorner>{} {}</ows:LowerCorner>\n",
            "        <ows:UpperCorner>{} {}</ows:UpperCorner>\n",
            "      </ows:WGS84BoundingBox>\n",
            "      <ows:Identifier>{}</ows:Identifier>\n",
            "      <Style isDefault=\"true\"><ows:Identifier>{}</ows:Identifier></Style>\n"
        ),
        b.min_x, b.min_y, b.max_x, b.max_y, id, DEFAULT_STYLE
    );
    for format in &layer.formats {
        let _ = writeln!(xml, "      <Format>{}</Format>", format.media_type());
    }
    if let Some(latest) = layer.dates.last() {
        let _ = write!(
            xml,
            "      <Dimension>\n        <ows:Identifier>Time</ows:Identifier>\n        <ows:UOM>ISO8601</ows:UOM>\n        <Default>{}</Default>\n",
            xml_escape(latest)
        );
        for date in &layer.dates {
            let _ = writeln!(xml, "        <Value>{}</Value>", xml_escape(date));
        }
        xml.push_str("      </Dimension>\n");
    }
    for set in MatrixSet::ALL {
        let _ = writeln!(
            xml,
            "      <TileMatrixSetLink>\n        <TileMatrixSet>{}</TileMatrixSet>\n        <TileMatrixSetLimits>",
            set.identifier()
        );
        for zoom in layer.minzoom..=layer.maxzoom.min(MAX_ZOOM) {
            let (min_col, min_row, max_col, max_row) = tile_range(&layer.bounds, zoom);
            let _ = writeln!(
                xml,
                "          <TileMatrixLimits><TileMatrix>{zoom}</TileMatrix><MinTileRow>{min_row}</MinTileRow><MaxTileRow>{max_row}</MaxTileRow><MinTileCol>{min_col}</MinTileCol><MaxTileCol>{max_col}</MaxTileCol></TileMatrixLimits>"
            );
        }
        xml.push_str("        </TileMatrixSetLimits>\n      </TileMatrixSetLink>\n");
    }
    let time = if layer.dates.is_empty() {
        ""
    } else {
        "{Time}/"
    };
    for format in &layer.formats {
        let _ = writeln!(
            xml,
            "      <ResourceURL format=\"{}\" resourceType=\"tile\" template=\"{base}/wmts/1.0.0/{id}/{{Style}}/{time}{{TileMatrixSet}}/{{TileMatrix}}/{{TileRow}}/{{TileCol}}.{}{key}\"/>",
            format.media_type(),
            format.extension()
        );
    }
    xml.push_str("    </Layer>\n");
}

fn write_matrix_set(xml: &mut String, set: MatrixSet) {
    let _ = write!(
        xml,
        "    <TileMatrixSet>\n      <ows:Title>{}</ows:Title>\n      <ows:Identifier>{}</ows:Identifier>\n      <ows:SupportedCRS>{CRS_URN}</ows:SupportedCRS>\n",
        set.title(),
        set.identifier()
    );
    if let Some(scale_set) = set.well_known_scale_set() {
        let _ = writeln!(
            xml,
            "      <WellKnownScaleSet>{scale_set}</WellKnownScaleSet>"
        );
    }
    for matrix in tile_matrices() {
        let _ = writeln!(
            xml,
            "      <TileMatrix><ows:Identifier>{}</ows:Identifier><ScaleDenominator>{}</ScaleDenominator><TopLeftCorner>{} {}</TopLeftCorner><TileWidth>{TILE_SIZE}</TileWidth><TileHeight>{TILE_SIZE}</TileHeight><MatrixWidth>{}</MatrixWidth><MatrixHeight>{}</MatrixHeight></TileMatrix>",
            matrix.zoom,
            matrix.scale_denominator,
            -ORIGIN_SHIFT,
            ORIGIN_SHIFT,
            matrix.matrix_size,
            matrix.matrix_size
        );
    }
    xml.push_str("    </TileMatrixSet>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceKind;
    use crate::tile::Bbox;

    fn layer(dates: &[&str]) -> LayerDescription {
        LayerDescription {
            id: "camps".into(),
            title: "Camps & prisons".into(),
            description: None,
            attribution: None,
            kind: SourceKind::Vector,
            formats: vec![TileFormat::Mvt],
            bounds: Bbox::new(124.0, 38.0, 130.0, 43.0),
            minzoom: 2,
            maxzoom: 14,
            dates: dates.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn get_tile(format: &str, matrix: &str, row: &str, col: &str) -> GetTile {
        GetTile {
            layer: "camps".into(),
            style: DEFAULT_STYLE.into(),
            format: format.into(),
            matrix_set: "WebMercatorQuad".into(),
            tile_matrix: matrix.into(),
            tile_row: row.into(),
            tile_col: col.into(),
            time: None,
        }
    }

    #[test]
    fn kvp_names_are_case_insensitive() {
        let request = parse_kvp(&pairs(&[
            ("service", "WMTS"),
            ("Request", "GetTile"),
            ("layer", "camps"),
            ("format", "application/vnd.mapbox-vector-tile"),
            ("TileMatrixSet", "WebMercatorQuad"),
            ("TILEMATRIX", "8"),
            ("tilerow", "97"),
            ("tilecol", "217"),
        ]))
        .expect("valid GetTile");
        let Request::GetTile(tile) = request else {
            panic!("expected GetTile, got {request:?}");
        };
        assert_eq!(tile.style, DEFAULT_STYLE);
        assert_eq!(tile.tile_row, "97");
        assert_eq!(
            parse_kvp(&pairs(&[
                ("SERVICE", "WMTS"),
                ("REQUEST", "GetCapabilities")
            ])),
            Ok(Request::GetCapabilities)
        );
    }

    #[test]
    fn kvp_errors_name_the_parameter() {
        let cases = [
            (
                vec![("REQUEST", "GetCapabilities")],
                ExceptionCode::MissingParameterValue,
                "SERVICE",
            ),
            (
                vec![("SERVICE", "WMS"), ("REQUEST", "GetMap")],
                ExceptionCode::InvalidParameterValue,
                "SERVICE",
            ),
            (
                vec![("SERVICE", "WMTS")],
                ExceptionCode::MissingParameterValue,
                "REQUEST",
            ),
            (
                vec![("SERVICE", "WMTS"), ("REQUEST", "GetMap")],
                ExceptionCode::InvalidParameterValue,
                "REQUEST",
            ),
            (
                vec![("SERVICE", "WMTS"), ("REQUEST", "GetFeatureInfo")],
                ExceptionCode::OperationNotSupported,
                "REQUEST",
            ),
            (
                vec![
                    ("SERVICE", "WMTS"),
                    ("REQUEST", "GetTile"),
                    ("TileRow", "1"),
                    ("TILEROW", "2"),
                ],
                ExceptionCode::InvalidParameterValue,
                "TILEROW",
            ),
            (
                vec![("SERVICE", "WMTS"), ("REQUEST", "GetTile")],
                ExceptionCode::MissingParameterValue,
                "LAYER",
            ),
            (
                vec![
                    ("SERVICE", "WMTS"),
                    ("REQUEST", "GetTile"),
                    ("VERSION", "2.0.0"),
                ],
                ExceptionCode::InvalidParameterValue,
                "VERSION",
            ),
        ];
        for (query, code, locator) in cases {
            let error = parse_kvp(&pairs(&query)).expect_err("invalid request");
            assert_eq!(error.code, code, "{query:?}");
            assert_eq!(error.locator, locator, "{query:?}");
        }
    }

    #[test]
    fn get_tile_checks_each_parameter() {
        let layer = layer(&[]);
        let mvt = "application/vnd.mapbox-vector-tile";
        // Zoom 8 tiles of the bounds: columns 216 to 220, rows 94 to 98.
        let checked = check_get_tile(&get_tile(mvt, "8", "97", "217"), &layer).expect("valid");
        assert_eq!(
            checked.tile,
            TileCoord {
                z: 8,
                x: 217,
                y: 97
            }
        );
        assert_eq!(checked.format, TileFormat::Mvt);
        let by_extension = check_get_tile(&get_tile("pbf", "8", "97", "217"), &layer);
        assert_eq!(by_extension.map(|c| c.format), Ok(TileFormat::Mvt));

        let cases = [
            (
                get_tile("image/png", "8", "97", "217"),
                ExceptionCode::InvalidParameterValue,
                "FORMAT",
            ),
            (
                GetTile {
                    matrix_set: "EPSG:4326".into(),
                    ..get_tile(mvt, "8", "97", "217")
                },
                ExceptionCode::InvalidParameterValue,
                "TILEMATRIXSET",
            ),
            (
                GetTile {
                    style: "dark".into(),
                    ..get_tile(mvt, "8", "97", "217")
                },
                ExceptionCode::InvalidParameterValue,
                "STYLE",
            ),
            (
                GetTile {
                    time: Some("2020-01-01".into()),
                    ..get_tile(mvt, "8", "97", "217")
                },
                ExceptionCode::InvalidParameterValue,
                "TIME",
            ),
            (
                get_tile(mvt, "x", "97", "217"),
                ExceptionCode::InvalidParameterValue,
                "TILEMATRIX",
            ),
            (
                get_tile(mvt, "25", "97", "217"),
                ExceptionCode::InvalidParameterValue,
                "TILEMATRIX",
            ),
            (
                get_tile(mvt, "1", "0", "1"),
                ExceptionCode::TileOutOfRange,
                "TILEMATRIX",
            ),
            (
                get_tile(mvt, "8", "0", "217"),
                ExceptionCode::TileOutOfRange,
                "TILEROW",
            ),
            (
                get_tile(mvt, "8", "97", "255"),
                ExceptionCode::TileOutOfRange,
                "TILECOL",
            ),
            (
                get_tile(mvt, "8", "-1", "217"),
                ExceptionCode::InvalidParameterValue,
                "TILEROW",
            ),
        ];
        for (request, code, locator) in cases {
            let error = check_get_tile(&request, &layer).expect_err("invalid request");
            assert_eq!(error.code, code, "{request:?}");
            assert_eq!(error.locator, locator, "{request:?}");
        }
    }

    #[test]
    fn time_must_be_a_listed_date() {
        let layer = layer(&["2019-05-01", "2023-06-30"]);
        let request = |time: &str| GetTile {
            time: Some(time.into()),
            ..get_tile("application/vnd.mapbox-vector-tile", "8", "97", "217")
        };
        assert!(check_get_tile(&request("2023-06-30"), &layer).is_ok());
        let error = check_get_tile(&request("2021-01-01"), &layer).expect_err("unlisted date");
        assert_eq!(error.locator, "TIME");
        assert!(
            error.text.contains("2019-05-01, 2023-06-30"),
            "{}",
            error.text
        );
    }

    #[test]
    fn capabilities_repeat_the_key() {
        let xml = capabilities(&[layer(&[])], "http://h:1", "?key=a%2Bb");
        assert!(xml.contains(
            r#"template="http://h:1/wmts/1.0.0/camps/{Style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.pbf?key=a%2Bb""#
        ));
        assert!(xml.contains(r#"xlink:href="http://h:1/wmts?key=a%2Bb&amp;""#));
        assert!(xml.contains("WMTSCapabilities.xml?key=a%2Bb"));
        let plain = capabilities(&[layer(&[])], "http://h:1", "");
        assert!(plain.contains(r#"xlink:href="http://h:1/wmts?""#));
        assert!(!plain.contains("key="));
    }

    #[test]
    fn capabilities_list_layers_and_matrix_sets() {
        let xml = capabilities(&[layer(&[])], "http://h:1", "");
        assert!(xml.contains("<ows:Title>Camps &amp; prisons</ows:Title>"));
        assert!(xml.contains("<ows:LowerCorner>124 38</ows:LowerCorner>"));
        assert!(xml.contains("<Format>application/vnd.mapbox-vector-tile</Format>"));
        assert!(xml.contains(
            r#"template="http://h:1/wmts/1.0.0/camps/{Style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.pbf""#
        ));
        assert!(xml.contains("<TileMatrix>8</TileMatrix><MinTileRow>94</MinTileRow><MaxTileRow>98</MaxTileRow><MinTileCol>216</MinTileCol><MaxTileCol>220</MaxTileCol>"));
        assert!(
            !xml.contains("<TileMatrix>1</TileMatrix>"),
            "limits start at minzoom"
        );
        assert!(xml.contains("<ScaleDenominator>559082264.0287178</ScaleDenominator>"));
        assert!(xml.contains(
            "<WellKnownScaleSet>urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible</WellKnownScaleSet>"
        ));
        assert!(
            !xml.contains("<Dimension>"),
            "an undated layer has no TIME dimension"
        );
    }

    #[test]
    fn dated_layers_have_a_time_dimension() {
        let xml = capabilities(&[layer(&["2019-05-01", "2023-06-30"])], "http://h:1", "");
        assert!(xml.contains("<ows:Identifier>Time</ows:Identifier>"));
        assert!(xml.contains("<Default>2023-06-30</Default>"));
        assert!(xml.contains("<Value>2019-05-01</Value>"));
        assert!(xml.contains("/camps/{Style}/{Time}/{TileMatrixSet}/"));
    }

    #[test]
    fn exception_report_escapes_text() {
        let xml = Exception::new(
            ExceptionCode::InvalidParameterValue,
            "LAYER",
            "no layer \"<x>\"",
        )
        .to_xml();
        assert!(xml.contains(r#"exceptionCode="InvalidParameterValue" locator="LAYER""#));
        assert!(xml.contains("no layer &quot;&lt;x&gt;&quot;"));
    }
}
