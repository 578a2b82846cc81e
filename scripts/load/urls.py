#!/usr/bin/env python3
"""Write the tile paths of one kind of source (raster, vector or density) served at BASE.

For each source of that kind in /catalog, the paths are the tiles over its bounds at its
first zooms, at most PER_ZOOM tiles a zoom, so the load spreads over cached and uncached
tiles alike. Density sources get both MVT cells and PNG heat maps, some with a filter.

usage: urls.py BASE KIND > paths.txt
"""

import json
import math
import sys
import urllib.request

PER_ZOOM = 64
ZOOMS = 6


def tile_range(bounds, z):
    """Return the x and y ranges of the tiles at zoom z that cover bounds in degrees."""
    west, south, east, north = bounds
    south, north = max(south, -85.05), min(north, 85.05)
    n = 2**z

    def x_of(lon):
        return min(n - 1, max(0, int((lon + 180) / 360 * n)))

    def y_of(lat):
        rad = math.radians(lat)
        return min(n - 1, max(0, int((1 - math.asinh(math.tan(rad)) / math.pi) / 2 * n)))

    return range(x_of(west), x_of(east) + 1), range(y_of(north), y_of(south) + 1)


def main():
    base, kind = sys.argv[1], sys.argv[2]
    # The server is on loopback; a proxy from the environment must not be used.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{base}/catalog") as response:
        catalog = json.load(response)
    paths = []
    for source in catalog["sources"]:
        if source["kind"].lower() != kind or source.get("coverage_of"):
            continue
        first = max(source["minzoom"], 2 if kind == "raster" else 0)
        last = min(source["maxzoom"], first + ZOOMS - 1)
        for z in range(first, last + 1):
            xs, ys = tile_range(source["bounds"], z)
            tiles = [(x, y) for x in xs for y in ys][:PER_ZOOM]
            for x, y in tiles:
                prefix = f"/tiles/{source['id']}/{z}/{x}/{y}"
                if kind == "density":
                    paths.append(f"{prefix}.pbf")
                    paths.append(f"{prefix}.png")
                    paths.append(f"{prefix}.png?from=2016")
                else:
                    paths.append(f"{prefix}.{source['format']}")
    if not paths:
        sys.exit(f"no {kind} source is served at {base}")
    print("\n".join(paths))


if __name__ == "__main__":
    main()
