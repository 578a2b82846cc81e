// Date controls for dated imagery layers: a slider over a layer's scene dates, and a swipe
// comparison of two dates. app.js builds the map; this module finds it at window.tesseraMap
// and changes the `date` parameter of the layer's tile URLs. Browser tests call
// window.tesseraDates.

const MAP_WAIT_MS = 60_000;
const BACKGROUND_COLOR = '#dde3e8';

const dates = {
  map: null,
  // Dated layers: { id, name, tilejson (URL), template (tile URL), dates, bounds, minzoom,
  // maxzoom }.
  layers: [],
  layer: null,
  // The date shown on the main map (null: the newest, from the plain tile URL), and the date
  // shown right of the swipe line (null: no comparison).
  date: null,
  compareDate: null,
  compareMap: null,
  swipePercent: 50,
};

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`GET ${url} failed with ${response.status} ${response.statusText}`);
  }
  return response.json();
}

function reportError(message) {
  window.tesseraErrors ??= [];
  window.tesseraErrors.push(message);
  console.error(message);
}

// Resolves with the map once app.js has created it and it has loaded its style.
async function waitForMap() {
  const started = Date.now();
  while (!window.tesseraMap) {
    if (Date.now() - started > MAP_WAIT_MS) {
      throw new Error(`the map did not start within ${MAP_WAIT_MS / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const map = window.tesseraMap;
  if (!map.isStyleLoaded()) {
    await new Promise((resolve) => map.once('load', resolve));
  }
  return map;
}

function urlPath(url) {
  return new URL(url, location.href).pathname;
}

function withDate(template, date) {
  return date ? `${template}?date=${encodeURIComponent(date)}` : template;
}

// Sets the `date` of every raster source of the map that reads `layer`'s TileJSON, whatever
// name the style gives it.
function applyDate(layer, date) {
  const path = urlPath(layer.tilejson);
  const wanted = withDate(layer.template, date);
  for (const [name, source] of Object.entries(dates.map.getStyle()?.sources ?? {})) {
    if (source.type !== 'raster' || !source.url || urlPath(source.url) !== path) {
      continue;
    }
    const mapSource = dates.map.getSource(name);
    // Setting the same tiles again would reload every tile.
    if (mapSource?.setTiles && mapSource.tiles?.[0] !== wanted) {
      mapSource.setTiles([wanted]);
    }
  }
}

// --- Swipe comparison ---

function compareStyle(layer, date) {
  return {
    version: 8,
    sources: {
      compare: {
        type: 'raster',
        tiles: [withDate(layer.template, date)],
        tileSize: 256,
        bounds: layer.bounds,
        minzoom: layer.minzoom,
        maxzoom: layer.maxzoom,
      },
    },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': BACKGROUND_COLOR } },
      { id: 'compare', type: 'raster', source: 'compare' },
    ],
  };
}

function syncCompareView() {
  const { map, compareMap } = dates;
  compareMap?.jumpTo({
    center: map.getCenter(),
    zoom: map.getZoom(),
    bearing: map.getBearing(),
    pitch: map.getPitch(),
  });
}

function setSwipe(percent) {
  dates.swipePercent = percent;
  const container = document.getElementById('compare-map');
  const line = document.getElementById('swipe-line');
  if (container) {
    container.style.clipPath = `inset(0 0 0 ${percent}%)`;
  }
  if (line) {
    line.style.left = `${percent}%`;
  }
}

// Shows `date` of the current layer right of the swipe line, or removes the comparison when
// `date` is null.
function showComparison(date) {
  dates.compareDate = date;
  const mapContainer = dates.map.getContainer();
  if (!date) {
    dates.compareMap?.remove();
    dates.compareMap = null;
    document.getElementById('compare-map')?.remove();
    document.getElementById('swipe')?.remove();
    updateLabels();
    return;
  }
  if (dates.compareMap) {
    dates.compareMap.setStyle(compareStyle(dates.layer, date));
    updateLabels();
    return;
  }
  const container = document.createElement('div');
  container.id = 'compare-map';
  mapContainer.append(container);

  const swipe = document.createElement('div');
  swipe.id = 'swipe';
  const line = document.createElement('div');
  line.id = 'swipe-line';
  const slider = document.createElement('input');
  Object.assign(slider, { type: 'range', min: 0, max: 100, value: dates.swipePercent });
  slider.id = 'swipe-slider';
  slider.setAttribute('aria-label', 'Swipe between the two dates');
  slider.addEventListener('input', () => setSwipe(Number(slider.value)));
  swipe.append(line, slider);
  mapContainer.append(swipe);

  dates.compareMap = new maplibregl.Map({
    container,
    style: compareStyle(dates.layer, date),
    interactive: false,
    attributionControl: false,
  });
  dates.compareMap.on('error', (event) =>
    reportError(`Comparison map error: ${event.error?.message ?? event.error}`),
  );
  syncCompareView();
  setSwipe(dates.swipePercent);
  updateLabels();
}

// --- Sidebar ---

function shownDate() {
  return dates.date ?? `${dates.layer.dates.at(-1)} (newest)`;
}

function updateLabels() {
  document.getElementById('date-value').textContent = shownDate();
  document.getElementById('compare-note').textContent = dates.compareDate
    ? `Left of the line: ${shownDate()}. Right: ${dates.compareDate}.`
    : '';
}

// Ticks the dated layer in the source list when a style file left it hidden, so that the
// slider changes imagery the map draws.
function showLayer(layer) {
  const checkbox = document.querySelector(
    `li.source[data-source="${CSS.escape(layer.id)}"] input[type=checkbox]`,
  );
  if (checkbox && !checkbox.checked && !checkbox.disabled) {
    checkbox.click();
  }
}

function setDate(date) {
  dates.date = date;
  applyDate(dates.layer, date);
  updateLabels();
}

function selectLayer(layer) {
  dates.layer = layer;
  const slider = document.getElementById('date-slider');
  slider.max = layer.dates.length - 1;
  slider.value = layer.dates.length - 1;
  const compare = document.getElementById('compare-select');
  compare.replaceChildren(
    new Option('No comparison', ''),
    ...layer.dates.map((date) => new Option(date, date)),
  );
  showComparison(null);
  setDate(null);
}

// Builds the sidebar section above the source list.
function dateSection() {
  const section = document.createElement('section');
  section.id = 'dates';
  section.hidden = true;
  section.innerHTML = `
    <h2>Dates</h2>
    <label id="dated-layer-label">Layer <select id="dated-layer"></select></label>
    <label>Date <output id="date-value"></output>
      <input id="date-slider" type="range" min="0" max="0" step="1" /></label>
    <label>Compare with <select id="compare-select"></select></label>
    <p id="compare-note"></p>`;
  const sourcesHeading = [...document.querySelectorAll('#sidebar h2')].find(
    (heading) => heading.textContent === 'Sources',
  );
  document.getElementById('sidebar').insertBefore(section, sourcesHeading ?? null);
  return section;
}

function buildSidebar() {
  const section = dateSection();
  const layerSelect = document.getElementById('dated-layer');
  layerSelect.replaceChildren(...dates.layers.map((layer) => new Option(layer.name, layer.id)));
  layerSelect.addEventListener('change', () => {
    const layer = dates.layers.find(({ id }) => id === layerSelect.value);
    selectLayer(layer);
    showLayer(layer);
  });
  document.getElementById('dated-layer-label').hidden = dates.layers.length < 2;

  const slider = document.getElementById('date-slider');
  // The newest date is the plain tile URL, which the map loaded already.
  slider.addEventListener('input', () => {
    showLayer(dates.layer);
    const index = Number(slider.value);
    setDate(index === dates.layer.dates.length - 1 ? null : dates.layer.dates[index]);
  });
  const compare = document.getElementById('compare-select');
  compare.addEventListener('change', () => {
    showLayer(dates.layer);
    showComparison(compare.value || null);
  });
  section.hidden = false;
}

async function main() {
  let catalog;
  try {
    dates.map = await waitForMap();
    catalog = await fetchJson('/catalog');
  } catch (error) {
    reportError(`The date controls failed to start: ${error.message}`);
    return;
  }
  const imagery = (catalog.sources ?? []).filter((source) => source.kind === 'raster');
  const tilejsons = await Promise.all(
    imagery.map((source) =>
      fetchJson(source.tilejson).catch((error) => {
        reportError(`Failed to load the TileJSON of ${source.id}: ${error.message}`);
        return null;
      }),
    ),
  );
  dates.layers = imagery
    .map((source, index) => ({ source, tilejson: tilejsons[index] }))
    .filter(({ tilejson }) => tilejson?.['tessera:dates']?.length > 0)
    .map(({ source, tilejson }) => ({
      id: source.id,
      name: source.name || source.id,
      tilejson: source.tilejson,
      template: tilejson.tiles[0],
      dates: tilejson['tessera:dates'],
      bounds: tilejson.bounds,
      minzoom: tilejson.minzoom,
      maxzoom: tilejson.maxzoom,
    }));
  window.tesseraDates = {
    layers: () => dates.layers.map(({ id, dates: layerDates }) => ({ id, dates: layerDates })),
    setDate(id, date) {
      if (dates.layer?.id !== id) {
        selectLayer(dates.layers.find((layer) => layer.id === id));
      }
      setDate(date);
    },
    compare: (date) => showComparison(date),
    // Whether the comparison map has drawn every tile in view.
    comparisonLoaded: () => dates.compareMap?.loaded() ?? false,
    swipe: (percent) => setSwipe(percent),
  };
  if (dates.layers.length === 0) {
    return;
  }
  buildSidebar();
  // The layer under the centre of the view comes first, so that the slider changes the imagery
  // in view.
  const { lng, lat } = dates.map.getCenter();
  const inView = dates.layers.find(({ bounds: [west, south, east, north] = [] }) => {
    return west <= lng && lng <= east && south <= lat && lat <= north;
  });
  const first = inView ?? dates.layers[0];
  document.getElementById('dated-layer').value = first.id;
  selectLayer(first);
  // A dated layer under the centre of the view is what the user came to see.
  if (inView) {
    showLayer(inView);
  }
  dates.map.on('move', syncCompareView);
  // A style switch in app.js replaces the sources, and with them the chosen date.
  dates.map.on('styledata', () => {
    if (dates.layer && dates.date) {
      applyDate(dates.layer, dates.date);
    }
  });
}

main().catch((error) => reportError(`The date controls failed: ${error.message}`));
