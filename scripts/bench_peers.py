#!/usr/bin/env python3
"""Load Tessera and its peers with wrk on the same data and tile lists, and write the figures.

`scripts/bench-peers` builds Tessera and installs the peers before it calls this program. Each
pair serves one data set from Tessera and from one peer, both on 127.0.0.1:

- cog-png and cog-jpeg: TiTiler and Tessera warp the same two COGs to PNG or JPEG tiles.
- pmtiles: Martin and Tessera read vector tiles from the same PMTiles archive.
- mbtiles: tileserver-gl-light and Tessera read raster tiles from the same MBTiles archive.
- postgis: Martin and Tessera encode vector tiles from the same PostGIS table.

Each pair runs twice by default: once with both servers as installed (Tessera keeps rendered
tiles in memory, and so does Martin), and once with their tile caches off (Tessera's
`[cache] memory_mb = 0`, Martin's `--cache-size 0`), which measures rendering itself. TiTiler
and tileserver-gl-light keep no tile cache, so they run the same way in both.

Tile lists are drawn once per pair from the data's extent with a fixed seed, so every run
requests the same tiles in the same order. For each pair both servers are started, timed
from process start to their first tile, warmed with one request per tile, then loaded in
turn at 1 and 16 connections. Results go to OUT/results.json and OUT/results.md.
"""

import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261204
TILES_PER_ZOOM = 50
CONNECTIONS = (1, 16)
COLD_START_RUNS = 3
START_TIMEOUT_S = 120.0

# The zooms of each COG at which its tiles are a plain warp: at finer zooms Tessera enlarges
# native pixels (`enhance`) while TiTiler warps, which would be different work. Sentinel-2 TCI
# has 100 m pixels (z10 is 138 m at 25 degrees north), the NAIP scene 5 m (z14 is 6.5 m at 47
# degrees north).
COGS = {
    "tci": (ROOT / "geodata/sentinel2-29rkh/TCI.tif", range(7, 11)),
    "naip": (ROOT / "geodata/naip-timeseries/m_4709963_se_14_1_20200831.tif", range(11, 15)),
}
PMTILES_ARCHIVE = "pmtiles-samples/Derna_buildings.pmtiles"
# The layer loaded into PostGIS for the postgis pair, from the public data folder.
POSTGIS_LAYER = "wapo-fatal-force-v2/fatal-police-shootings-data.csv"
# Tessera's configuration for the PostGIS table, with {dsn} for the connection string. The
# `postgis` encoder builds tiles with ST_AsMVT, as Martin does.
TESSERA_POSTGIS_CONFIG = """
[postgres]
url = "{dsn}"
discover = false

[sources.bench_layer]
table = "public.bench_layer"
encoder = "postgis"
"""


class BenchError(Exception):
    """A step of the benchmark that failed, with what to do next."""


def log(message):
    print(f"[bench-peers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Tile lists


def lonlat_to_tile(lon, lat, zoom):
    """Returns the XYZ tile at `zoom` that contains a WGS 84 point."""
    count = 2**zoom
    lat = max(min(lat, 85.0511), -85.0511)
    x = int((lon + 180.0) / 360.0 * count)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * count)
    return min(max(x, 0), count - 1), min(max(y, 0), count - 1)


def draw_tiles(name, bounds, zooms):
    """Draws up to TILES_PER_ZOOM tiles a zoom that touch `bounds` (west, south, east, north).

    The draw is seeded by SEED and `name`, so the same data gives the same list on every run.
    """
    rng = random.Random(f"{SEED}-{name}")
    west, south, east, north = bounds
    tiles = []
    for zoom in zooms:
        x0, y0 = lonlat_to_tile(west, north, zoom)
        x1, y1 = lonlat_to_tile(east, south, zoom)
        every = [(zoom, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
        tiles.extend(rng.sample(every, min(len(every), TILES_PER_ZOOM)))
    rng.shuffle(tiles)
    return tiles


def draw_tiles_at_points(name, points, zooms):
    """Draws up to TILES_PER_ZOOM tiles a zoom among those that contain one of `points`.

    Points are (lon, lat). Sparse layers, such as points across a continent, leave most tiles
    of their bounds empty; this draws only tiles with data. Seeded like `draw_tiles`.
    """
    rng = random.Random(f"{SEED}-{name}")
    tiles = []
    for zoom in zooms:
        occupied = sorted({(zoom, *lonlat_to_tile(lon, lat, zoom)) for lon, lat in points})
        tiles.extend(rng.sample(occupied, min(len(occupied), TILES_PER_ZOOM)))
    rng.shuffle(tiles)
    return tiles


def raster_bounds(path):
    """Returns the WGS 84 bounds of a raster file, from `gdalinfo -json`."""
    info = json.loads(subprocess.check_output(["gdalinfo", "-json", str(path)], text=True))
    ring = info["wgs84Extent"]["coordinates"][0]
    lons = [point[0] for point in ring]
    lats = [point[1] for point in ring]
    return min(lons), min(lats), max(lons), max(lats)


def mbtiles_facts(path):
    """Returns the bounds and zoom range stored in an MBTiles archive."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        bounds = tuple(
            float(v)
            for v in db.execute("SELECT value FROM metadata WHERE name = 'bounds'")
            .fetchone()[0]
            .split(",")
        )
        low, high = db.execute("SELECT min(zoom_level), max(zoom_level) FROM tiles").fetchone()
    return bounds, range(low, high + 1)


def pmtiles_facts(path):
    """Returns the bounds and zoom range in the header of a PMTiles version 3 archive."""
    with open(path, "rb") as file:
        header = file.read(127)
    if header[:7] != b"PMTiles" or header[7] != 3:
        raise BenchError(
            f"{path} is not a PMTiles version 3 archive: recreate it with pmtiles convert"
        )
    min_zoom, max_zoom = header[100], header[101]
    west, south, east, north = (v / 1e7 for v in struct.unpack_from("<iiii", header, 102))
    return (west, south, east, north), range(min_zoom, max_zoom + 1)


def write_list(out, name, tiles):
    """Writes a tile list as `SOURCE/Z/X/Y` lines and returns its path."""
    path = out / "lists" / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{stem}/{z}/{x}/{y}\n" for stem, z, x, y in tiles))
    return path


# Servers


def free_port():
    """Returns a TCP port on 127.0.0.1 that was free a moment ago, for peers without port 0."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch_status(url, timeout=10.0):
    """Requests `url` and returns its status and body length; connection failures give 0."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, len(response.read())
    except urllib.error.HTTPError as error:
        return error.code, len(error.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, 0


class Server:
    """One server under test: how to start it and how to name a tile on it."""

    def __init__(self, name, command, tile_url, env=None, cwd=None):
        self.name = name
        self.command = command
        self.tile_url = tile_url
        self.env = env
        self.cwd = cwd
        self.process = None
        self.base = None
        self.log_path = None

    def start(self, out, first_tile):
        """Starts the server and returns the milliseconds from process start to its first tile."""
        self.log_path = out / "logs" / f"{self.name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        port = free_port()
        command = [part.replace("{port}", str(port)) for part in self.command]
        env = dict(os.environ, **(self.env or {}))
        log_file = open(self.log_path, "ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.cwd,
            start_new_session=True,
        )
        log_file.close()
        self.base = f"http://127.0.0.1:{port}"
        url = self.base + self.tile_url(*first_tile)
        while time.monotonic() - started < START_TIMEOUT_S:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with status {self.process.returncode}: read {self.log_path}"
                )
            status, _ = fetch_status(url, timeout=5.0)
            if 200 <= status < 300:
                return (time.monotonic() - started) * 1000.0
            time.sleep(0.01)
        raise BenchError(
            f"{self.name} served no tile within {START_TIMEOUT_S:.0f} s at {url}: read {self.log_path}"
        )

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def peak_memory_kib(self):
        """Returns the summed VmHWM of the server's process and its descendants, in KiB.

        Servers with worker processes (uvicorn) count each process's own peak, so the sum is
        at least the peak of the whole group and may exceed it.
        """
        pids = [self.process.pid]
        parents = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(
                    int(entry.name)
                )
        index = 0
        while index < len(pids):
            pids.extend(parents.get(pids[index], []))
            index += 1
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total


# Load


WRK_SCRIPT = """
-- Globals, not locals, where the main state reads them back with thread:get.
local paths = {%s}
local threads = {}
counter = 0
statuses = {}

function setup(thread)
  thread:set("offset", #threads * math.floor(#paths / %d))
  table.insert(threads, thread)
end

function init(args)
  counter = offset
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["Accept-Encoding"] = "gzip"})
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[tostring(status)] = (merged[tostring(status)] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%%s": %%d', status, count))
  end
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%.3f, "p50_ms": %%.3f, "p95_ms": %%.3f, ' ..
    '"p99_ms": %%.3f, "max_ms": %%.3f, "socket_errors": %%d, "statuses": {%%s}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", ")))
end
"""


def run_wrk(server, tiles, connections, seconds, out):
    """Loads `server` with wrk over `tiles` and returns the parsed figures."""
    threads = 1 if connections < 2 else 2
    paths = ",".join(json.dumps(server.tile_url(*tile)) for tile in tiles)
    script = out / "lists" / f"{server.name}.lua"
    script.write_text(WRK_SCRIPT % (paths, threads))
    load = os.getloadavg()[0]
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            server.base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise BenchError(f"wrk printed no RESULT line for {server.name}: {output.strip()}")
    result = json.loads(lines[0][len("RESULT ") :])
    result["rps"] = result["requests"] / result["seconds"]
    result["non_2xx"] = {s: n for s, n in result["statuses"].items() if not 200 <= int(s) < 300}
    result["load_average"] = load
    return result


def warm(server, tiles):
    """Requests every tile once and returns the count of each status and the mean body size."""
    statuses = {}
    sizes = []
    for tile in tiles:
        status, size = fetch_status(server.base + server.tile_url(*tile))
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if 200 <= status < 300:
            sizes.append(size)
    return statuses, (statistics.mean(sizes) if sizes else 0.0)


def run_pair(pair, tiles, seconds, out):
    """Measures both servers of a pair, interleaving their loads, and returns the figures."""
    figures = {"name": pair["name"], "tiles": len(tiles), "list": pair["list"], "servers": {}}
    for server in pair["servers"]:
        colds = []
        for _ in range(COLD_START_RUNS):
            colds.append(server.start(out, tiles[0]))
            server.stop()
        figures["servers"][server.name] = {"cold_start_ms": colds, "runs": {}}
    try:
        for server in pair["servers"]:
            server.start(out, tiles[0])
            statuses, size = warm(server, tiles)
            figures["servers"][server.name].update(warm_statuses=statuses, mean_bytes=size)
            log(f"{pair['name']}: {server.name} warmed, statuses {statuses}, mean {size:.0f} bytes")
        for round_index, connections in enumerate(CONNECTIONS):
            # Alternate which server goes first, so that neither always meets the same noise.
            order = pair["servers"] if round_index % 2 == 0 else list(reversed(pair["servers"]))
            for server in order:
                result = run_wrk(server, tiles, connections, seconds, out)
                figures["servers"][server.name]["runs"][str(connections)] = result
                log(
                    f"{pair['name']}: {server.name} at {connections} connections: {result['rps']:.1f} req/s, "
                    f"p99 {result['p99_ms']:.2f} ms, non-2xx {result['non_2xx']}, load {result['load_average']:.2f}"
                )
        for server in pair["servers"]:
            figures["servers"][server.name]["peak_memory_kib"] = server.peak_memory_kib()
    finally:
        for server in pair["servers"]:
            server.stop()
    return figures


# Pairs


def without_tile_caches(pair, out):
    """Returns a copy of `pair` whose servers keep no tile cache: Tessera with
    `[cache] memory_mb = 0` added to its configuration, Martin with `--cache-size 0`."""
    servers = []
    for server in pair["servers"]:
        command = list(server.command)
        if server.name.startswith("tessera-"):
            config = out / "data" / f"{server.name}-caches-off.toml"
            if "--config" in command:
                at = command.index("--config") + 1
                base = Path(command[at]).read_text()
                command[at] = str(config)
            else:
                base = ""
                command[4:4] = ["--config", str(config)]
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(base.rstrip() + "\n\n[cache]\nmemory_mb = 0\n")
        elif server.name.startswith("martin-"):
            command += ["--cache-size", "0"]
        servers.append(
            Server(f"{server.name}-caches-off", command, server.tile_url, server.env, server.cwd)
        )
    return dict(pair, servers=servers, caches="off")


def pair_label(pair):
    """Names a pair in the report: its name, and whether the tile caches were off."""
    return pair["name"] if pair.get("caches", "default") == "default" else f"{pair['name']}, caches off"


def tessera_server(name, tessera, paths, tile_url, config=None):
    command = [str(tessera), "serve", "--listen", "127.0.0.1:{port}"]
    if config:
        command += ["--config", str(config)]
    return Server(name, command + [str(p) for p in paths], tile_url, env={"RUST_LOG": "warn"})


def cog_pairs(args, out):
    data = out / "data" / "cog"
    data.mkdir(parents=True, exist_ok=True)
    tiles = []
    for stem, (source, zooms) in COGS.items():
        link = data / f"{stem}.tif"
        if not link.exists():
            link.symlink_to(source)
        tiles += [(stem, *tile) for tile in draw_tiles(stem, raster_bounds(source), zooms)]
    random.Random(f"{SEED}-cog").shuffle(tiles)
    listing = write_list(out, "cog", tiles)
    # The NAIP scene has four bands (red, green, blue, near infrared): both servers draw 1-3.
    (data / "naip.toml").write_text("bands = [1, 2, 3]\n")
    titiler = args.peers / "venv" / "bin" / "uvicorn"
    pairs = []
    for extension in ("png", "jpg"):

        def titiler_url(stem, z, x, y, extension=extension):
            query = {
                "url": str(data / f"{stem}.tif"),
                "resampling": "bilinear",
                "reproject": "bilinear",
            }
            if stem == "naip":
                query["bidx"] = ["1", "2", "3"]
            return f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.{extension}?" + urllib.parse.urlencode(
                query, doseq=True
            )

        pairs.append(
            {
                "name": f"cog-{extension}",
                "list": str(listing.relative_to(out)),
                "tiles": tiles,
                "servers": [
                    tessera_server(
                        f"tessera-cog-{extension}",
                        args.tessera,
                        [data],
                        lambda stem, z, x, y, extension=extension: f"/tiles/{stem}/{z}/{x}/{y}.{extension}",
                    ),
                    Server(
                        f"titiler-cog-{extension}",
                        [
                            str(titiler),
                            "titiler.application.main:app",
                            "--host",
                            "127.0.0.1",
                            "--port",
                            "{port}",
                            "--workers",
                            str(os.cpu_count() or 1),
                            "--no-access-log",
                            "--log-level",
                            "warning",
                        ],
                        titiler_url,
                    ),
                ],
            }
        )
    return pairs


def pmtiles_pair(args, out):
    source = args.shared_data / PMTILES_ARCHIVE
    if not source.exists():
        log(
            f"SKIPPED pmtiles: {source} is missing; set TESSERA_SHARED_DATA to the public data folder"
        )
        return []
    data = out / "data" / "pmtiles"
    data.mkdir(parents=True, exist_ok=True)
    link = data / "derna.pmtiles"
    if not link.exists():
        link.symlink_to(source)
    bounds, zooms = pmtiles_facts(source)
    tiles = [("derna", *tile) for tile in draw_tiles("pmtiles", bounds, zooms)]
    listing = write_list(out, "pmtiles", tiles)
    return [
        {
            "name": "pmtiles",
            "list": str(listing.relative_to(out)),
            "tiles": tiles,
            "servers": [
                tessera_server(
                    "tessera-pmtiles",
                    args.tessera,
                    [link],
                    lambda s, z, x, y: f"/tiles/{s}/{z}/{x}/{y}.pbf",
                ),
                Server(
                    "martin-pmtiles",
                    [
                        str(args.peers / "bin" / "martin"),
                        "--listen-addresses",
                        "127.0.0.1:{port}",
                        str(link),
                    ],
                    lambda s, z, x, y: f"/{s}/{z}/{x}/{y}",
                    env={"RUST_LOG": "warn"},
                ),
            ],
        }
    ]


def mbtiles_pair(args, out):
    data = out / "data" / "mbtiles"
    data.mkdir(parents=True, exist_ok=True)
    archive = data / "tci.mbtiles"
    if not archive.exists():
        # A raster MBTiles of the Sentinel-2 scene: PNG tiles at the scene's zoom, and
        # overview zooms below it, made by GDAL from the file in geodata/.
        partial = data / "tci.partial.mbtiles"
        partial.unlink(missing_ok=True)
        subprocess.run(
            [
                "gdal_translate",
                "-q",
                "-of",
                "MBTILES",
                "-co",
                "TILE_FORMAT=PNG",
                str(COGS["tci"][0]),
                str(partial),
            ],
            check=True,
        )
        subprocess.run(
            ["gdaladdo", "-q", "-r", "average", str(partial), "2", "4", "8", "16"], check=True
        )
        partial.rename(archive)
    bounds, zooms = mbtiles_facts(archive)
    tiles = [("tci", *tile) for tile in draw_tiles("mbtiles", bounds, zooms)]
    listing = write_list(out, "mbtiles", tiles)
    tileserver = args.peers / "npm" / "node_modules" / ".bin" / "tileserver-gl"
    # A configuration of the archive alone: `--file` adds the styles package at a path
    # inside tileserver-gl-light's own folder, where npm may not have put it.
    config = data / "tileserver.json"
    config.write_text(
        json.dumps(
            {"options": {"paths": {"root": str(data)}}, "data": {"tci": {"mbtiles": archive.name}}}
        )
    )
    return [
        {
            "name": "mbtiles",
            "list": str(listing.relative_to(out)),
            "tiles": tiles,
            "servers": [
                tessera_server(
                    "tessera-mbtiles",
                    args.tessera,
                    [archive],
                    lambda s, z, x, y: f"/tiles/{s}/{z}/{x}/{y}.png",
                ),
                Server(
                    "tileserver-gl-light-mbtiles",
                    [
                        str(tileserver),
                        "--config",
                        str(config),
                        "--bind",
                        "127.0.0.1",
                        "--port",
                        "{port}",
                        "--silent",
                    ],
                    lambda s, z, x, y: f"/data/{s}/{z}/{x}/{y}.png",
                    cwd=data,
                ),
            ],
        }
    ]


# PostGIS


class Cluster:
    """A PostgreSQL cluster of our own, in a folder under /tmp, on 127.0.0.1 only."""

    def __init__(self, folder, port):
        self.folder = folder
        self.port = port
        self.bin = Path("/usr/lib/postgresql/15/bin")
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/bench"

    def run_as_postgres(self, command, **kwargs):
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--"] + command
        return subprocess.run(command, check=True, **kwargs)

    def start(self):
        data = self.folder / "data"
        if not (self.bin / "initdb").exists():
            raise BenchError(
                f"{self.bin}/initdb is missing: apt-get install postgresql-15-postgis-3"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        if not (data / "PG_VERSION").exists():
            self.run_as_postgres(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ],
                stdout=subprocess.DEVNULL,
            )
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        self.run_as_postgres(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(self.folder / "server.log"),
                "-w",
                "start",
            ],
            stdout=subprocess.DEVNULL,
        )

    def stop(self):
        self.run_as_postgres(
            [str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop"],
            stdout=subprocess.DEVNULL,
        )

    def psql(self, database, sql):
        env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
        subprocess.run(
            [
                "psql",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            env=env,
        )

    def load_layer(self, source, table):
        """Creates database `bench` with PostGIS and loads `source` into `table` with ogr2ogr."""
        self.psql("postgres", "DROP DATABASE IF EXISTS bench")
        self.psql("postgres", "CREATE DATABASE bench")
        self.psql("bench", "CREATE EXTENSION postgis")
        options = []
        if source.suffix == ".csv":
            options = [
                "-oo",
                "X_POSSIBLE_NAMES=longitude",
                "-oo",
                "Y_POSSIBLE_NAMES=latitude",
                "-oo",
                "KEEP_GEOM_COLUMNS=NO",
                "-a_srs",
                "EPSG:4326",
            ]
        subprocess.run(
            [
                "ogr2ogr",
                "-f",
                "PostgreSQL",
                f"PG:host=127.0.0.1 port={self.port} user=postgres dbname=bench",
                str(source),
                *options,
                "-nln",
                table,
                "-lco",
                "GEOMETRY_NAME=geom",
                "-lco",
                "FID=fid",
                "-nlt",
                "PROMOTE_TO_MULTI" if source.suffix != ".csv" else "POINT",
                "-overwrite",
            ],
            check=True,
        )
        self.psql("bench", f"ANALYZE {table}")


def postgis_pair(args, out, cluster):
    source = args.shared_data / POSTGIS_LAYER
    if not source.exists():
        log(
            f"SKIPPED postgis: {source} is missing; set TESSERA_SHARED_DATA to the public data folder"
        )
        return []
    cluster.load_layer(source, "bench_layer")
    rows = subprocess.check_output(
        [
            "psql",
            "-At",
            "-F",
            ",",
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            "-d",
            "bench",
            "-c",
            "SELECT ST_X(geom), ST_Y(geom) FROM bench_layer WHERE geom IS NOT NULL ORDER BY fid",
        ],
        text=True,
    )
    points = [tuple(float(v) for v in row.split(",")) for row in rows.splitlines()]
    tiles = [
        ("bench_layer", *tile) for tile in draw_tiles_at_points("postgis", points, range(0, 15))
    ]
    listing = write_list(out, "postgis", tiles)
    config = out / "data" / "postgis.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(TESSERA_POSTGIS_CONFIG.format(dsn=cluster.dsn))
    return [
        {
            "name": "postgis",
            "list": str(listing.relative_to(out)),
            "tiles": tiles,
            "servers": [
                tessera_server(
                    "tessera-postgis",
                    args.tessera,
                    [],
                    lambda s, z, x, y: f"/tiles/{s}/{z}/{x}/{y}.pbf",
                    config=config,
                ),
                Server(
                    "martin-postgis",
                    [
                        str(args.peers / "bin" / "martin"),
                        "--listen-addresses",
                        "127.0.0.1:{port}",
                        cluster.dsn,
                    ],
                    lambda s, z, x, y: f"/{s}/{z}/{x}/{y}",
                    env={"RUST_LOG": "warn"},
                ),
            ],
        }
    ]


# Report


TARGETS = {
    "cog-png": (3.0, "at least 3 x TiTiler"),
    "cog-jpg": (3.0, "at least 3 x TiTiler"),
    "pmtiles": (1.0, "at least Martin"),
    "postgis": (1.0, "at least Martin"),
    "mbtiles": (2.0, "at least 2 x tileserver-gl-light"),
}
P99_TARGET_MS = 50.0
MEMORY_TARGET_MB = 200.0


def format_statuses(statuses):
    return ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items())) or "0"


def render_markdown(results):
    lines = [
        f"Run of {results['started']} UTC, {results['seconds']} s a load, wrk {results['versions'].get('wrk', '?')}.",
        f"Machine: {results['machine']}.",
        "Peers: "
        + ", ".join(
            f"{name} {version}" for name, version in results["versions"].items() if name != "wrk"
        )
        + ".",
        "",
        "| pair | connections | Tessera req/s | peer req/s | ratio | target | Tessera p50 / p95 / p99 ms "
        "| peer p50 / p95 / p99 ms | Tessera non-2xx | peer non-2xx | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in results["pairs"]:
        tessera, peer = (pair["servers"][name] for name in pair["order"])
        minimum, target = TARGETS[pair["name"]]
        for connections in map(str, CONNECTIONS):
            mine, theirs = tessera["runs"][connections], peer["runs"][connections]
            ratio = mine["rps"] / theirs["rps"] if theirs["rps"] else float("inf")
            verdict = "met" if ratio >= minimum else "**missed**"
            lines.append(
                f"| {pair_label(pair)} | {connections} | {mine['rps']:.1f} | {theirs['rps']:.1f} | {ratio:.2f} | "
                f"{target}: {verdict} | {mine['p50_ms']:.2f} / {mine['p95_ms']:.2f} / {mine['p99_ms']:.2f} | "
                f"{theirs['p50_ms']:.2f} / {theirs['p95_ms']:.2f} / {theirs['p99_ms']:.2f} | "
                f"{format_statuses(mine['non_2xx'])} | {format_statuses(theirs['non_2xx'])} | "
                f"{mine['load_average']:.2f} / {theirs['load_average']:.2f} |"
            )
    lines += [
        "",
        "| pair | server | tiles | warm-up statuses | mean bytes | peak memory MiB | cold start ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for pair in results["pairs"]:
        for name in pair["order"]:
            server = pair["servers"][name]
            colds = ", ".join(f"{ms:.0f}" for ms in server["cold_start_ms"])
            lines.append(
                f"| {pair_label(pair)} | {name} | {pair['tiles']} | {format_statuses(server['warm_statuses'])} | "
                f"{server['mean_bytes']:.0f} | {server['peak_memory_kib'] / 1024:.0f} | {colds} |"
            )
    checks = []
    for pair in results["pairs"]:
        name = pair["order"][0]
        server = pair["servers"][name]
        p99 = server["runs"][str(CONNECTIONS[-1])]["p99_ms"]
        memory = server["peak_memory_kib"] / 1024
        checks.append(
            f"| {pair_label(pair)} | {p99:.2f} ms: {'met' if p99 < P99_TARGET_MS else '**missed**'} | "
            f"{memory:.0f} MiB: {'met' if memory * 1.048576 < MEMORY_TARGET_MB else '**missed**'} |"
        )
    lines += [
        "",
        f"| pair | Tessera p99 at {CONNECTIONS[-1]} connections (target under {P99_TARGET_MS:.0f} ms) "
        f"| Tessera peak memory (target under {MEMORY_TARGET_MB:.0f} MB) |",
        "|---|---|---|",
        *checks,
    ]
    for title, text in results.get("extras", {}).items():
        lines += ["", f"{title}:", "", "```", text.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def describe_machine():
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{os.cpu_count()} x {model}, {memory_kib / 1024 / 1024:.0f} GiB, Linux {os.uname().release}"


def peer_versions(args):
    versions = {}
    try:
        versions["wrk"] = subprocess.run(
            ["wrk", "-v"], capture_output=True, text=True
        ).stdout.split()[1]
    except (OSError, IndexError):
        pass
    martin = args.peers / "bin" / "martin"
    if martin.exists():
        versions["Martin"] = subprocess.check_output([str(martin), "--version"], text=True).split()[
            -1
        ]
    pip = args.peers / "venv" / "bin" / "pip"
    if pip.exists():
        shown = subprocess.check_output([str(pip), "show", "titiler.application"], text=True)
        versions["TiTiler"] = next(
            line.split()[1] for line in shown.splitlines() if line.startswith("Version:")
        )
    package = args.peers / "npm" / "node_modules" / "tileserver-gl-light" / "package.json"
    if package.exists():
        versions["tileserver-gl-light"] = json.loads(package.read_text())["version"]
    return versions


def run_static_maps(args):
    example = args.tessera.parent / "static_map_timing"
    if not (ROOT / "examples" / "static_map_timing.rs").exists():
        return "SKIPPED: this checkout has no static maps (examples/static_map_timing.rs)"
    if not example.exists():
        return (
            f"SKIPPED: {example} is missing; run cargo build --release --example static_map_timing"
        )
    # The example loads geodata/ and styles/ from the working directory.
    return subprocess.run(
        [str(example)], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout


def run_density(args):
    example = args.tessera.parent / "density_bench"
    if not example.exists():
        return f"SKIPPED: {example} is missing; run cargo build --release --example density_bench"
    return subprocess.run(
        [str(example), "1000000"], capture_output=True, text=True, check=True
    ).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--seconds", type=int, default=10, help="length of each wrk load, in seconds"
    )
    parser.add_argument("--tessera", type=Path, required=True, help="release binary of Tessera")
    parser.add_argument(
        "--peers",
        type=Path,
        default=ROOT / "target" / "peers",
        help="folder the peers are installed in",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "target" / "bench-peers",
        help="folder for data, lists and results",
    )
    parser.add_argument(
        "--shared-data",
        type=Path,
        default=Path(os.environ.get("TESSERA_SHARED_DATA", ROOT.parent / "shared" / "data")),
        help="public data folder that holds the PMTiles archive and the PostGIS layer",
    )
    parser.add_argument(
        "--pairs",
        default="cog,pmtiles,mbtiles,postgis",
        help="comma-separated pairs to run: cog, pmtiles, mbtiles, postgis",
    )
    parser.add_argument(
        "--caches",
        choices=("both", "default", "off"),
        default="both",
        help="run each pair with the servers' tile caches as installed, off, or both (default)",
    )
    parser.add_argument(
        "--postgres-port",
        type=int,
        default=54303,
        help="port of the PostgreSQL cluster this run starts",
    )
    parser.add_argument(
        "--postgres-folder", type=Path, default=Path("/tmp/bench"), help="folder of that cluster"
    )
    parser.add_argument(
        "--pairs-only",
        action="store_true",
        help="skip the density tiles at one million points and the static maps",
    )
    args = parser.parse_args()
    # Absolute, because some servers run in the folder of their data.
    for name in ("tessera", "peers", "out", "shared_data", "postgres_folder"):
        setattr(args, name, getattr(args, name).resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.pairs.split(","))

    results = {
        "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "seconds": args.seconds,
        "machine": describe_machine(),
        "versions": peer_versions(args),
        "pairs": [],
        "extras": {},
    }
    cluster = None
    try:
        pairs = []
        if "cog" in wanted:
            pairs += cog_pairs(args, args.out)
        if "pmtiles" in wanted:
            pairs += pmtiles_pair(args, args.out)
        if "mbtiles" in wanted:
            pairs += mbtiles_pair(args, args.out)
        if "postgis" in wanted:
            if not (ROOT / "src" / "postgis").is_dir():
                log("SKIPPED postgis: this checkout of Tessera has no PostGIS source (src/postgis)")
            else:
                cluster = Cluster(args.postgres_folder, args.postgres_port)
                cluster.start()
                pairs += postgis_pair(args, args.out, cluster)
        modes = []
        for pair in pairs:
            if args.caches in ("both", "default"):
                modes.append(dict(pair, caches="default"))
            if args.caches in ("both", "off"):
                modes.append(without_tile_caches(pair, args.out))
        for pair in modes:
            log(
                f"{pair_label(pair)}: {len(pair['tiles'])} tiles, load average {os.getloadavg()[0]:.2f}"
            )
            figures = run_pair(pair, pair["tiles"], args.seconds, args.out)
            figures["order"] = [server.name for server in pair["servers"]]
            figures["caches"] = pair["caches"]
            results["pairs"].append(figures)
            (args.out / "results.json").write_text(json.dumps(results, indent=2))
    finally:
        if cluster is not None:
            cluster.stop()
    if not args.pairs_only:
        log("density tiles at one million points")
        results["extras"]["Density tiles, examples/density_bench 1000000"] = run_density(args)
        log("static maps")
        results["extras"]["Static maps, examples/static_map_timing"] = run_static_maps(args)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    markdown = render_markdown(results)
    (args.out / "results.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    try:
        main()
    except (BenchError, subprocess.CalledProcessError) as error:
        log(f"failed: {error}")
        sys.exit(1)
