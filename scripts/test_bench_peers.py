"""Tests of scripts/bench_peers.py: tile lists, archive headers, the wrk script and the report.

Run with `python3 -m unittest discover -s scripts -p 'test_*.py'`. The wrk test needs wrk
(Debian package `wrk`) and is skipped without it.
"""

import http.server
import shutil
import struct
import tempfile
import threading
import unittest
from pathlib import Path

import bench_peers


class LonLatToTileTest(unittest.TestCase):
    def test_known_tiles(self):
        cases = [
            # (lon, lat, zoom, expected x, expected y)
            (0.0, 0.0, 0, 0, 0),
            (0.0, 0.0, 1, 1, 1),
            (-180.0, 85.0511, 1, 0, 0),
            (179.9999, -85.0511, 2, 3, 3),
            # The Sentinel-2 scene's north-west corner at zoom 9.
            (-11.979, 25.305, 9, 238, 218),
        ]
        for lon, lat, zoom, x, y in cases:
            with self.subTest(lon=lon, lat=lat, zoom=zoom):
                self.assertEqual(bench_peers.lonlat_to_tile(lon, lat, zoom), (x, y))

    def test_clamps_beyond_mercator(self):
        self.assertEqual(bench_peers.lonlat_to_tile(180.0, 90.0, 3), (7, 0))
        self.assertEqual(bench_peers.lonlat_to_tile(-180.0, -90.0, 3), (0, 7))


class DrawTilesTest(unittest.TestCase):
    bounds = (-11.979, 24.296, -10.875, 25.305)

    def test_same_name_gives_same_list(self):
        first = bench_peers.draw_tiles("tci", self.bounds, range(7, 13))
        second = bench_peers.draw_tiles("tci", self.bounds, range(7, 13))
        self.assertEqual(first, second)

    def test_other_name_gives_other_draw(self):
        first = bench_peers.draw_tiles("tci", self.bounds, range(7, 13))
        other = bench_peers.draw_tiles("naip", self.bounds, range(7, 13))
        self.assertNotEqual(first, other)
        self.assertEqual(len(first), len(other))

    def test_tiles_touch_bounds_and_cap_per_zoom(self):
        tiles = bench_peers.draw_tiles("tci", self.bounds, range(7, 14))
        for zoom in range(7, 14):
            x0, y0 = bench_peers.lonlat_to_tile(self.bounds[0], self.bounds[3], zoom)
            x1, y1 = bench_peers.lonlat_to_tile(self.bounds[2], self.bounds[1], zoom)
            at_zoom = [(x, y) for z, x, y in tiles if z == zoom]
            expected = min((x1 - x0 + 1) * (y1 - y0 + 1), bench_peers.TILES_PER_ZOOM)
            with self.subTest(zoom=zoom):
                self.assertEqual(len(at_zoom), expected)
                self.assertEqual(len(set(at_zoom)), len(at_zoom))
                self.assertTrue(all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in at_zoom))


class DrawTilesAtPointsTest(unittest.TestCase):
    points = [(-122.42, 37.77), (-74.0, 40.71), (-87.63, 41.88), (-122.41, 37.78)]

    def test_every_tile_contains_a_point(self):
        tiles = bench_peers.draw_tiles_at_points("points", self.points, range(0, 15))
        for zoom, x, y in tiles:
            with self.subTest(zoom=zoom, x=x, y=y):
                self.assertTrue(
                    any(
                        bench_peers.lonlat_to_tile(lon, lat, zoom) == (x, y)
                        for lon, lat in self.points
                    )
                )

    def test_one_tile_per_occupied_tile(self):
        tiles = bench_peers.draw_tiles_at_points("points", self.points, range(0, 15))
        self.assertEqual(len(tiles), len(set(tiles)))
        self.assertEqual(len([t for t in tiles if t[0] == 0]), 1)
        # San Francisco's two points share a tile at zoom 10 and not at zoom 14.
        self.assertEqual(len([t for t in tiles if t[0] == 10]), 3)
        self.assertEqual(len([t for t in tiles if t[0] == 14]), 4)


class PmtilesFactsTest(unittest.TestCase):
    def write_header(self, magic=b"PMTiles", version=3):
        header = bytearray(127)
        header[:7] = magic
        header[7] = version
        header[100] = 2
        header[101] = 14
        struct.pack_into("<iiii", header, 102, 226_000_000, 327_000_000, 227_000_000, 328_000_000)
        file = tempfile.NamedTemporaryFile(suffix=".pmtiles", delete=False)
        file.write(bytes(header))
        file.close()
        self.addCleanup(Path(file.name).unlink)
        return file.name

    def test_reads_bounds_and_zooms(self):
        bounds, zooms = bench_peers.pmtiles_facts(self.write_header())
        self.assertEqual(bounds, (22.6, 32.7, 22.7, 32.8))
        self.assertEqual(zooms, range(2, 15))

    def test_rejects_other_versions(self):
        with self.assertRaises(bench_peers.BenchError):
            bench_peers.pmtiles_facts(self.write_header(version=2))
        with self.assertRaises(bench_peers.BenchError):
            bench_peers.pmtiles_facts(self.write_header(magic=b"MBTiles"))


class StatusHandler(http.server.BaseHTTPRequestHandler):
    """Serves /ok/... with 200, /empty/... with 204 and anything else with 404."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/ok/"):
            status = 200
        elif self.path.startswith("/empty/"):
            status = 204
        else:
            status = 404
        body = b"tile" if status == 200 else b""
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@unittest.skipUnless(shutil.which("wrk"), "wrk is missing")
class RunWrkTest(unittest.TestCase):
    def test_counts_statuses_by_code(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StatusHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        target = bench_peers.Server("stub", [], lambda stem, z, x, y: f"/{stem}/{z}/{x}/{y}")
        target.base = f"http://127.0.0.1:{server.server_address[1]}"
        tiles = [("ok", 1, 0, 0), ("empty", 1, 0, 1), ("missing", 1, 1, 0), ("ok", 1, 1, 1)]
        with tempfile.TemporaryDirectory() as out:
            (Path(out) / "lists").mkdir()
            result = bench_peers.run_wrk(target, tiles, 2, 1, Path(out))
        self.assertGreater(result["requests"], 8)
        self.assertEqual(sum(result["statuses"].values()), result["requests"])
        self.assertEqual(set(result["statuses"]), {"200", "204", "404"})
        self.assertEqual(set(result["non_2xx"]), {"404"})
        self.assertGreater(result["rps"], 0)
        self.assertLessEqual(result["p50_ms"], result["p95_ms"])
        self.assertLessEqual(result["p95_ms"], result["p99_ms"])


class RenderMarkdownTest(unittest.TestCase):
    def run_figures(self, rps, p99, non_2xx=None):
        return {
            "rps": rps,
            "p50_ms": p99 / 4,
            "p95_ms": p99 / 2,
            "p99_ms": p99,
            "non_2xx": non_2xx or {},
            "load_average": 1.5,
        }

    def results(self, tessera_rps, peer_rps):
        servers = {
            "tessera-mbtiles": {
                "runs": {
                    "1": self.run_figures(tessera_rps, 2.0),
                    "16": self.run_figures(tessera_rps, 60.0),
                },
                "cold_start_ms": [90.0, 95.0, 100.0],
                "warm_statuses": {"200": 10},
                "mean_bytes": 1000.0,
                "peak_memory_kib": 50 * 1024,
            },
            "tileserver-gl-light-mbtiles": {
                "runs": {
                    "1": self.run_figures(peer_rps, 3.0),
                    "16": self.run_figures(peer_rps, 9.0, {"500": 2}),
                },
                "cold_start_ms": [900.0, 950.0, 1000.0],
                "warm_statuses": {"200": 10},
                "mean_bytes": 1000.0,
                "peak_memory_kib": 80 * 1024,
            },
        }
        return {
            "started": "2026-12-04 23:00",
            "seconds": 10,
            "machine": "2 x test CPU",
            "versions": {"wrk": "4.1.0", "tileserver-gl-light": "5.6.0"},
            "pairs": [
                {
                    "name": "mbtiles",
                    "tiles": 10,
                    "list": "lists/mbtiles.txt",
                    "order": ["tessera-mbtiles", "tileserver-gl-light-mbtiles"],
                    "servers": servers,
                }
            ],
            "extras": {},
        }

    def test_ratio_meets_target(self):
        markdown = bench_peers.render_markdown(self.results(300.0, 100.0))
        self.assertIn(
            "| mbtiles | 1 | 300.0 | 100.0 | 3.00 | at least 2 x tileserver-gl-light: met |",
            markdown,
        )

    def test_ratio_misses_target(self):
        markdown = bench_peers.render_markdown(self.results(150.0, 100.0))
        self.assertIn("| 1.50 | at least 2 x tileserver-gl-light: **missed** |", markdown)

    def test_p99_memory_and_errors(self):
        markdown = bench_peers.render_markdown(self.results(300.0, 100.0))
        self.assertIn("| mbtiles | 60.00 ms: **missed** | 50 MiB: met |", markdown)
        self.assertIn("| 2 x 500 |", markdown)
        self.assertIn("| 90, 95, 100 |", markdown)

    def test_caches_off_in_label(self):
        results = self.results(300.0, 100.0)
        results["pairs"][0]["caches"] = "off"
        markdown = bench_peers.render_markdown(results)
        self.assertIn("| mbtiles, caches off | 1 | 300.0 | 100.0 | 3.00 |", markdown)


class WithoutTileCachesTest(unittest.TestCase):
    def test_turns_off_tessera_and_martin_caches(self):
        with tempfile.TemporaryDirectory() as out:
            out = Path(out)
            config = out / "given.toml"
            config.write_text('[sources.a]\ntable = "public.a"\n')
            pair = {
                "name": "postgis",
                "servers": [
                    bench_peers.tessera_server(
                        "tessera-postgis", Path("/bin/tessera"), [], str, config=config
                    ),
                    bench_peers.Server("martin-postgis", ["martin", "postgresql://db"], str),
                ],
            }
            off = bench_peers.without_tile_caches(pair, out)
            tessera, martin = off["servers"]
            self.assertEqual(off["caches"], "off")
            self.assertEqual(tessera.name, "tessera-postgis-caches-off")
            written = Path(tessera.command[tessera.command.index("--config") + 1])
            self.assertEqual(
                written.read_text(),
                '[sources.a]\ntable = "public.a"\n\n[cache]\nmemory_mb = 0\n',
            )
            self.assertEqual(martin.command[-2:], ["--cache-size", "0"])
            self.assertEqual(pair["servers"][1].command, ["martin", "postgresql://db"])

    def test_adds_a_configuration_to_served_paths(self):
        with tempfile.TemporaryDirectory() as out:
            out = Path(out)
            server = bench_peers.tessera_server("tessera-cog-png", Path("/bin/tessera"), [out], str)
            off = bench_peers.without_tile_caches({"name": "cog-png", "servers": [server]}, out)
            command = off["servers"][0].command
            self.assertEqual(command[4], "--config")
            self.assertEqual(command[-1], str(out))
            self.assertIn("memory_mb = 0", Path(command[5]).read_text())


if __name__ == "__main__":
    unittest.main()
