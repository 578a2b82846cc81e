//! OSGeo Tile Map Service 1.0.0 documents: the TileMapService listing every source and one
//! TileMap per source, in the `global-mercator` profile (EPSG:3857, rows counted from the
//! south).

use std::fmt::Write as _;

use super::matrix_set::{TILE_SIZE, tile_matrices};
use super::{LayerDescription, xml_escape};
use crate::tile::ORIGIN_SHIFT;

/// Builds the TileMapService document at `{base}/tms/1.0.0`.
pub fn tile_map_service(layers: &[LayerDescription], base: &str) -> String {
    let base = xml_escape(base);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<TileMapService version=\"1.0.0\" services=\"{base}/tms/\">\n  <Title>Tessera</Title>\n  <Abstract>Imagery and facility tiles for human-rights investigations</Abstract>\n  <TileMaps>\n"
    );
    for layer in layers {
        let _ = writeln!(
            xml,
            "    <TileMap title=\"{}\" srs=\"EPSG:3857\" profile=\"global-mercator\" href=\"{base}/tms/1.0.0/{}\"/>",
            xml_escape(&layer.title),
            xml_escape(&layer.id)
        );
    }
    xml.push_str("  </TileMaps>\n</TileMapService>\n");
    xml
}

/// Builds the TileMap document of one source at `{base}/tms/1.0.0/{id}`, with a TileSet per
/// zoom in the source's range.
///
/// The BoundingBox is the whole grid, not the source's data: GDAL 3.6 counts tile columns and
/// rows from the BoundingBox, so a data-sized box made it request the wrong tiles. TileJSON and
/// WMTS carry the data bounds.
pub fn tile_map(layer: &LayerDescription, base: &str) -> String {
    let base = xml_escape(base);
    let id = xml_escape(&layer.id);
    let format = layer.formats[0];
    let mut xml = format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<TileMap version=\"1.0.0\" tilemapservice=\"{base}/tms/1.0.0\">\n",
            "  <Title>{title}</Title>\n",
            "  <Abstract>{abstract_text}</Abstract>\n",
            "  <SRS>EPSG:3857</SRS>\n",
            "  <BoundingBox minx=\"{min}\" miny=\"{min}\" maxx=\"{max}\" maxy=\"{max}\"/>\n",
            "  <Origin x=\"{origin}\" y=\"{origin}\"/>\n",
            "  <TileFormat width=\"{size}\" height=\"{size}\" mime-type=\"{media_type}\" extension=\"{extension}\"/>\n",
            "  <TileSets profile=\"global-mercator\">\n"
        ),
        base = base,
        title = xml_escape(&layer.title),
        abstract_text = xml_escape(layer.description.as_deref().unwrap_or_default()),
        min = -ORIGIN_SHIFT,
        max = ORIGIN_SHIFT,
        origin = -ORIGIN_SHIFT,
        size = TILE_SIZE,
        media_type = format.media_type(),
        extension = format.extension(),
    );
    for matrix in tile_matrices().filter(|m| (layer.minzoom..=layer.maxzoom).contains(&m.zoom)) {
        let _ = writeln!(
            xml,
            "    <TileSet href=\"{base}/tms/1.0.0/{id}/{zoom}\" units-per-pixel=\"{resolution}\" order=\"{zoom}\"/>",
            zoom = matrix.zoom,
            resolution = matrix.cell_size
        );
    }
    xml.push_str("  </TileSets>\n</TileMap>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::TileFormat;
    use crate::source::SourceKind;
    use crate::tile::Bbox;

    fn layer() -> LayerDescription {
        LayerDescription {
            id: "TCI".into(),
            title: "Sentinel-2 <true colour>".into(),
            description: None,
            attribution: None,
            kind: SourceKind::Raster,
            formats: vec![TileFormat::Png, TileFormat::Jpeg],
            bounds: Bbox::new(-12.0, 24.0, -11.0, 25.0),
            minzoom: 3,
            maxzoom: 11,
            dates: Vec::new(),
        }
    }

    #[test]
    fn service_lists_every_tile_map() {
        let xml = tile_map_service(&[layer()], "http://h:1");
        assert!(
            xml.contains(r#"title="Sentinel-2 &lt;true colour&gt;""#),
            "{xml}"
        );
        assert!(xml.contains(r#"href="http://h:1/tms/1.0.0/TCI""#), "{xml}");
    }

    #[test]
    fn tile_map_has_a_tile_set_per_zoom() {
        let xml = tile_map(&layer(), "http://h:1");
        assert_eq!(xml.matches("<TileSet ").count(), 9);
        assert!(xml.contains(r#"<TileSet href="http://h:1/tms/1.0.0/TCI/3" units-per-pixel="19567.87924100512" order="3"/>"#), "{xml}");
        assert!(
            xml.contains(r#"mime-type="image/png" extension="png""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<Origin x="-20037508.342789244" y="-20037508.342789244"/>"#),
            "{xml}"
        );
    }
}
