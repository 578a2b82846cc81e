"""Loads Tessera's layers into headless QGIS and renders each to a PNG.

Usage: /usr/bin/python3 tests/qgis/render_layers.py BASE_URL OUT_DIR

BASE_URL is a running Tessera server serving the sample data (for example
http://127.0.0.1:PORT). The script loads, through QGIS's own providers:

- the Sentinel-2 scene as an XYZ layer (provider "wms", type=xyz),
- the same scene as a WMTS layer from the RESTful capabilities document,
- the camps as a vector tile layer, styled by converting the server's MapLibre style with
  QgsMapBoxGlStyleConverter (icons from the served sprite),
- the camps as an OGC API - Features layer (provider "OAPIF").

It renders each layer alone into OUT_DIR/<name>.png and prints one JSON object with, per
layer, whether it is valid, its feature count where it has features, and the number of
pixels drawn (pixels that are neither transparent nor the white background), and for the
vector tiles the pixels of sprite icons. It exits 1
when a layer is invalid, and 2 on wrong usage. Run it with QT_QPA_PLATFORM=offscreen.
"""

import json
import os
import sys
import urllib.parse
import urllib.request

from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsMapBoxGlStyleConversionContext,
    QgsMapBoxGlStyleConverter,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsPointXY,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
    QgsVectorTileLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor, QImage

WEB_MERCATOR = "EPSG:3857"
SIZE = 512

# Web Mercator extents, in metres: the Sentinel-2 scene 29RKH off Western Sahara, and the
# north of North Korea with most of the camps.
SCENE_EXTENT = QgsRectangle(-1_290_000, 2_830_000, -1_250_000, 2_870_000)
CAMPS_EXTENT = QgsRectangle(13_900_000, 4_650_000, 14_500_000, 5_250_000)


def fetch_json(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def fetch_image(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        image = QImage()
        image.loadFromData(response.read())
        return image


def xyz_layer(base):
    template = f"{base}/tiles/TCI/{{z}}/{{x}}/{{y}}.png"
    uri = f"type=xyz&url={urllib.parse.quote(template, safe=':/')}&zmin=0&zmax=11"
    return QgsRasterLayer(uri, "xyz", "wms")


def wmts_layer(base):
    uri = (
        "contextualWMSLegend=0&crs=EPSG:3857&dpiMode=7&format=image/png&layers=TCI"
        "&styles=default&tileMatrixSet=WebMercatorQuad"
        f"&url={base}/wmts/1.0.0/WMTSCapabilities.xml"
    )
    return QgsRasterLayer(uri, "wmts", "wms")


def vector_tile_layer(base):
    template = f"{base}/tiles/camps/{{z}}/{{x}}/{{y}}.pbf"
    uri = f"type=xyz&url={urllib.parse.quote(template, safe=':/')}&zmin=0&zmax=22"
    layer = QgsVectorTileLayer(uri, "camps")
    style = fetch_json(f"{base}/styles/tessera.json")
    context = QgsMapBoxGlStyleConversionContext()
    sprite = style["sprite"]
    context.setSprites(fetch_image(f"{sprite}.png"), fetch_json(f"{sprite}.json"))
    converter = QgsMapBoxGlStyleConverter()
    converter.convert(style, context)
    layer.setRenderer(converter.renderer())
    if converter.labeling() is not None:
        layer.setLabeling(converter.labeling())
    return layer, converter.warnings()


def features_layer(base):
    uri = f"url='{base}/ogc' typename='camps' pagingEnabled='true'"
    return QgsVectorLayer(uri, "features", "OAPIF")


def drawn_pixels(image):
    count = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            color = QColor(image.pixel(x, y))
            if image.pixelColor(x, y).alpha() > 0 and (color.red(), color.green(), color.blue()) != (255, 255, 255):
                count += 1
    return count * 4


def icon_pixels(image):
    """Counts pixels much darker than the style's background (#dde3e8).

    The sprite's icons are discs of #b2182b, #ef8a62 or #666666 with white symbols, so these
    pixels are icons drawn from the served sprite.
    """
    count = 0
    for y in range(image.height()):
        for x in range(image.width()):
            color = QColor(image.pixel(x, y))
            if max(color.red(), color.green(), color.blue()) < 180 or color.green() < 120:
                count += 1
    return count


def kwanliso_pixels(image):
    """Counts pixels close to #b2182b, the disc of the kwanliso icon."""
    count = 0
    for y in range(image.height()):
        for x in range(image.width()):
            color = QColor(image.pixel(x, y))
            if abs(color.red() - 0xB2) < 30 and color.green() < 70 and color.blue() < 80:
                count += 1
    return count


def render(layer, extent, path):
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem(WEB_MERCATOR))
    settings.setExtent(extent)
    settings.setOutputSize(QSize(SIZE, SIZE))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(path)
    return image


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    base, out_dir = argv[1].rstrip("/"), argv[2]
    application = QgsApplication([], False)
    application.setPrefixPath("/usr", True)
    application.initQgis()
    summary = {}
    try:
        layers = [("xyz", xyz_layer(base), SCENE_EXTENT), ("wmts", wmts_layer(base), SCENE_EXTENT)]
        tiles, warnings = vector_tile_layer(base)
        summary["style_warnings"] = warnings
        layers.append(("vector_tiles", tiles, CAMPS_EXTENT))
        layers.append(("features", features_layer(base), CAMPS_EXTENT))
        for name, layer, extent in layers:
            entry = {"valid": layer.isValid()}
            if layer.isValid():
                if isinstance(layer, QgsVectorLayer):
                    entry["features"] = sum(1 for _ in layer.getFeatures())
                    names = sorted(feature["name"] for feature in layer.getFeatures())
                    entry["names"] = names
                image = render(layer, extent, f"{out_dir}/{name}.png")
                entry["drawn_pixels"] = drawn_pixels(image)
                if name == "vector_tiles":
                    entry["icon_pixels"] = icon_pixels(image)
                    entry["kwanliso_pixels"] = kwanliso_pixels(image)
            summary[name] = entry
    finally:
        application.exitQgis()
    print(json.dumps(summary), flush=True)
    invalid = [name for name, entry in summary.items() if isinstance(entry, dict) and not entry.get("valid")]
    # NOTE: with PyQGIS 3.22 the process crashed (SIGSEGV) while destroying QgsApplication
    # after exitQgis, so it exits here without destroying anything more.
    os._exit(1 if invalid else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
