// Tessera's map viewer: lists the server's catalog in a sidebar, draws every source with
// MapLibre GL JS, and loads the server's styles. Browser tests read window.tesseraMap,
// window.tesseraReady and window.tesseraErrors.

const BACKGROUND_COLOR = '#dde3e8';
const VECTOR_COLORS = ['#d7301f', '#2b6cb0', '#2f855a', '#b7791f', '#6b46c1', '#c05621'];
const MAX_MERCATOR_LATITUDE = 85.051129;

// Paint properties that the opacity slider scales, by layer type.
const OPACITY_PROPERTIES = {
  raster: ['raster-opacity'],
  fill: ['fill-opacity'],
  line: ['line-opacity'],
  circle: ['circle-opacity', 'circle-stroke-opacity'],
  'fill-extrusion': ['fill-extrusion-opacity'],
  symbol: ['icon-opacity', 'text-opacity'],
  heatmap: ['heatmap-opacity'],
};

// Layer types that count as imagery. The catalog's raster layers go before a style's first
// layer of any other type, so that facilities stay above imagery.
const IMAGERY_LAYER_TYPES = new Set(['background', 'raster', 'hillshade', 'color-relief']);

// Vector layers of the catalog's sources draw polygons first and points last.
const VECTOR_TYPE_ORDER = { fill: 0, line: 1, circle: 2 };

window.tesseraErrors ??= [];
window.tesseraReady = false;

const state = {
  catalog: { sources: [], styles: [] },
  map: null,
  // Catalog source id to the `vector_layers` of its TileJSON.
  vectorLayers: new Map(),
  // Catalog source id to the layers that draw it in the current style. Each entry keeps the
  // layer's own opacity values, which the slider scales.
  layers: new Map(),
  // Catalog source id to its sidebar row, checkbox and opacity slider.
  controls: new Map(),
  // Catalog source id to the visibility the user chose, which outlasts style switches.
  chosenVisibility: new Map(),
};

function showError(message) {
  const status = document.getElementById('status');
  status.hidden = false;
  status.className = 'error';
  status.textContent = message;
}

function reportError(message) {
  window.tesseraErrors.push(message);
  console.error(message);
  showError(message);
}

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`GET ${url} failed with ${response.status} ${response.statusText}`);
  }
  return response.json();
}

function element(tag, properties = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, properties);
  node.append(...children);
  return node;
}

function urlPath(url) {
  return new URL(url, location.href).pathname;
}

function clampLatitude(latitude) {
  return Math.max(-MAX_MERCATOR_LATITUDE, Math.min(MAX_MERCATOR_LATITUDE, latitude));
}

function markReadyWhenIdle() {
  window.tesseraReady = false;
  state.map.once('idle', () => {
    window.tesseraReady = true;
  });
}

// --- Sidebar ---

function renderSourceList() {
  const sources = state.catalog.sources;
  const status = document.getElementById('status');
  status.textContent = sources.length === 0 ? 'The catalog lists no sources.' : '';
  status.hidden = sources.length > 0;
  document.getElementById('sources').replaceChildren(...sources.map(sourceRow));
}

function sourceRow(source) {
  const name = source.name || source.id;
  const checkbox = element('input', { type: 'checkbox', checked: true });
  checkbox.addEventListener('change', () => {
    state.chosenVisibility.set(source.id, checkbox.checked);
    setSourceVisible(source.id, checkbox.checked);
  });

  const slider = element('input', {
    type: 'range',
    min: 0,
    max: 100,
    value: 100,
    title: 'Opacity',
    ariaLabel: `Opacity of ${name}`,
  });
  slider.addEventListener('input', () => setSourceOpacity(source.id, slider.value / 100));

  const zoomButton = element('button', { type: 'button', textContent: 'Zoom to' });
  zoomButton.addEventListener('click', () => zoomToSource(source));

  const details = `${source.kind} · ${source.format} · z${source.minzoom}–${source.maxzoom}`;
  const row = element(
    'li',
    { className: 'source' },
    element('label', { className: 'source-name' }, checkbox, ' ', name),
    element('div', { className: 'source-details', textContent: details }),
    element('div', { className: 'source-controls' }, slider, zoomButton),
  );
  row.dataset.source = source.id;
  state.controls.set(source.id, { row, checkbox, slider });
  return row;
}

// Dims the sources that draw nothing at the map's zoom, because MapLibre requests no tiles
// below a source's minzoom.
function markSourcesBelowMinzoom() {
  const zoom = state.map.getZoom();
  for (const source of state.catalog.sources) {
    const below = source.minzoom !== undefined && zoom < source.minzoom;
    const { row } = state.controls.get(source.id);
    row.classList.toggle('below-minzoom', below);
    row.title = below ? `Zoom in to level ${source.minzoom} or more to see this source` : '';
  }
}

function renderStylePicker(selectedId) {
  const styles = state.catalog.styles;
  if (styles.length === 0) {
    return;
  }
  const select = document.getElementById('style-select');
  select.append(...styles.map((style) => new Option(style.id, style.id)));
  select.value = styles.some((style) => style.id === selectedId) ? selectedId : '';
  select.addEventListener('change', () => switchStyle(select.value));
  document.getElementById('style-picker').hidden = false;
}

// Enables each source's checkbox when the current style draws the source, and checks it when
// one of those layers is visible.
function syncControls(style) {
  const visibility = new Map(style.layers.map((layer) => [layer.id, layer.layout?.visibility]));
  for (const [id, { checkbox }] of state.controls) {
    const layers = state.layers.get(id) ?? [];
    checkbox.disabled = layers.length === 0;
    checkbox.checked = layers.some((layer) => visibility.get(layer.id) !== 'none');
  }
}

// --- Map controls ---

function setSourceVisible(id, visible) {
  for (const layer of state.layers.get(id) ?? []) {
    state.map.setLayoutProperty(layer.id, 'visibility', visible ? 'visible' : 'none');
  }
}

function setSourceOpacity(id, opacity) {
  for (const layer of state.layers.get(id) ?? []) {
    for (const [property, value] of Object.entries(scaledOpacity(layer.opacity, opacity))) {
      state.map.setPaintProperty(layer.id, property, value);
    }
  }
}

// Returns the paint values for `factor` times a layer's own opacity values. At factor 1 the
// layer's own values come back unchanged, expressions included.
function scaledOpacity(ownOpacity, factor) {
  const values = {};
  for (const [property, own] of Object.entries(ownOpacity)) {
    if (factor === 1) {
      values[property] = own;
    } else if (own === undefined || typeof own === 'number') {
      values[property] = (own ?? 1) * factor;
    } else {
      // NOTE: a zoom expression cannot be nested in a product, so the slider replaces an
      // opacity expression with a constant until it is back at 100 %.
      values[property] = factor;
    }
  }
  return values;
}

function zoomToSource(source) {
  const [west, south, east, north] = source.bounds ?? [-180, -85, 180, 85];
  state.map.fitBounds(
    [
      [west, clampLatitude(south)],
      [east, clampLatitude(north)],
    ],
    { padding: 40, maxZoom: source.maxzoom },
  );
}

function zoomToAllSources() {
  const withBounds = state.catalog.sources.filter((source) => source.bounds);
  if (withBounds.length === 0) {
    return;
  }
  const bounds = new maplibregl.LngLatBounds();
  for (const {
    bounds: [west, south, east, north],
  } of withBounds) {
    bounds.extend([west, clampLatitude(south)]);
    bounds.extend([east, clampLatitude(north)]);
  }
  state.map.fitBounds(bounds, { padding: 40, duration: 0 });
}

// --- Styles ---

function emptyStyle() {
  return {
    version: 8,
    sources: {},
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': BACKGROUND_COLOR } },
    ],
  };
}

async function loadVectorLayers() {
  const vectorSources = state.catalog.sources.filter((source) => source.kind === 'vector');
  await Promise.all(
    vectorSources.map(async (source) => {
      try {
        const tileJson = await fetchJson(source.tilejson);
        if (!tileJson.vector_layers?.length) {
          throw new Error('its TileJSON is missing vector_layers');
        }
        state.vectorLayers.set(source.id, tileJson.vector_layers);
      } catch (error) {
        reportError(`Vector source ${source.id} is not drawn: ${error.message}`);
      }
    }),
  );
}

async function fetchStyle(styleId) {
  if (!styleId) {
    return emptyStyle();
  }
  const entry = state.catalog.styles.find((style) => style.id === styleId);
  if (!entry) {
    reportError(
      `Style ${styleId} is not in the catalog, so the viewer shows the catalog's sources`,
    );
    return emptyStyle();
  }
  try {
    return await fetchJson(entry.url);
  } catch (error) {
    reportError(`Failed to load style ${styleId}: ${error.message}`);
    return emptyStyle();
  }
}

function rasterLayers(source, sourceName) {
  return [{ id: `${sourceName}:raster`, type: 'raster', source: sourceName }];
}

function vectorLayers(source, sourceName, colors) {
  return (state.vectorLayers.get(source.id) ?? []).flatMap(({ id: sourceLayer }) => {
    const color = colors.next().value;
    const common = { source: sourceName, 'source-layer': sourceLayer };
    const prefix = `${sourceName}:${sourceLayer}`;
    return [
      {
        ...common,
        id: `${prefix}:fill`,
        type: 'fill',
        filter: ['==', '$type', 'Polygon'],
        paint: { 'fill-color': color, 'fill-opacity': 0.35, 'fill-outline-color': color },
      },
      {
        ...common,
        id: `${prefix}:line`,
        type: 'line',
        filter: ['==', '$type', 'LineString'],
        layout: { 'line-cap': 'round', 'line-join': 'round' },
        paint: { 'line-color': color, 'line-width': 2 },
      },
      {
        ...common,
        id: `${prefix}:circle`,
        type: 'circle',
        filter: ['==', '$type', 'Point'],
        paint: {
          'circle-color': color,
          'circle-radius': 5,
          'circle-stroke-color': '#ffffff',
          'circle-stroke-width': 1.5,
        },
      },
    ];
  });
}

function* cycle(values) {
  for (;;) {
    yield* values;
  }
}

// Records which layers draw a catalog source, with the opacity values they have in the style.
function trackLayer(sourceId, layer) {
  const opacity = {};
  for (const property of OPACITY_PROPERTIES[layer.type] ?? []) {
    opacity[property] = layer.paint?.[property];
  }
  const layers = state.layers.get(sourceId) ?? [];
  layers.push({ id: layer.id, opacity });
  state.layers.set(sourceId, layers);
}

// Builds the style to show: the chosen style file, or an empty one, plus layers for every
// catalog source that the style does not draw itself. Until the user toggles a source, those
// layers are visible without a style file and hidden under one, so that they do not cover the
// style's own layers.
async function composeStyle(styleId) {
  const style = await fetchStyle(styleId);
  const overlaysVisible = style.layers.every((layer) => !layer.source);
  style.sources ??= {};
  state.layers = new Map();

  // A style source draws a catalog source when both name the same TileJSON.
  const catalogIdByPath = new Map(
    state.catalog.sources.map((source) => [urlPath(source.tilejson), source.id]),
  );
  for (const layer of style.layers) {
    const url = style.sources[layer.source]?.url;
    const catalogId = url && catalogIdByPath.get(urlPath(url));
    if (catalogId) {
      trackLayer(catalogId, layer);
    }
  }

  const imagery = [];
  const vector = [];
  const colors = cycle(VECTOR_COLORS);
  for (const source of state.catalog.sources) {
    if (state.layers.has(source.id)) {
      continue;
    }
    const sourceName = `tessera:${source.id}`;
    const isVector = source.kind === 'vector';
    style.sources[sourceName] = isVector
      ? { type: 'vector', url: source.tilejson }
      : { type: 'raster', url: source.tilejson, tileSize: 256 };
    if (source.kind === 'density') {
      // A density source's TileJSON describes its MVT cells; the viewer shows its heat map.
      style.sources[sourceName] = {
        type: 'raster',
        tiles: [source.tilejson.replace(/\.json$/, '/{z}/{x}/{y}.png')],
        tileSize: 256,
        minzoom: source.minzoom,
        maxzoom: source.maxzoom,
        attribution: source.attribution ?? undefined,
      };
    }
    const layers = isVector
      ? vectorLayers(source, sourceName, colors)
      : rasterLayers(source, sourceName);
    for (const layer of layers) {
      // Coverage layers (footprints of imagery) start hidden: their checkbox shows them.
      const visible = overlaysVisible && !source.coverage_of;
      layer.layout = { ...layer.layout, visibility: visible ? 'visible' : 'none' };
      trackLayer(source.id, layer);
      (isVector ? vector : imagery).push(layer);
    }
  }
  vector.sort((a, b) => VECTOR_TYPE_ORDER[a.type] - VECTOR_TYPE_ORDER[b.type]);

  const firstOtherIndex = style.layers.findIndex((layer) => !IMAGERY_LAYER_TYPES.has(layer.type));
  const imageryIndex = firstOtherIndex === -1 ? style.layers.length : firstOtherIndex;
  style.layers.splice(imageryIndex, 0, ...imagery);
  style.layers.push(...vector);

  applySidebarChoices(style);
  return style;
}

// Writes the sidebar's opacity and the visibility the user chose into a style before the map
// loads it.
function applySidebarChoices(style) {
  const layersById = new Map(style.layers.map((layer) => [layer.id, layer]));
  for (const [id, layers] of state.layers) {
    const factor = (state.controls.get(id)?.slider.value ?? 100) / 100;
    const visible = state.chosenVisibility.get(id);
    for (const tracked of layers) {
      const layer = layersById.get(tracked.id);
      if (visible !== undefined) {
        layer.layout = { ...layer.layout, visibility: visible ? 'visible' : 'none' };
      }
      for (const [property, value] of Object.entries(scaledOpacity(tracked.opacity, factor))) {
        // An undefined paint value is left out rather than written, so MapLibre uses its default.
        if (value !== undefined) {
          layer.paint = { ...layer.paint, [property]: value };
        }
      }
    }
  }
}

async function switchStyle(styleId) {
  const url = new URL(location.href);
  if (styleId) {
    url.searchParams.set('style', styleId);
  } else {
    url.searchParams.delete('style');
  }
  history.replaceState(history.state, '', url);

  // The picker stays disabled while the style file loads, so that a slower earlier request
  // cannot replace a later choice.
  const select = document.getElementById('style-select');
  select.disabled = true;
  try {
    const style = await composeStyle(styleId);
    state.map.setStyle(style);
    syncControls(style);
    markReadyWhenIdle();
  } finally {
    select.disabled = false;
  }
}

// --- Map ---

function showFeaturePopup(event) {
  const { x, y } = event.point;
  const features = state.map.queryRenderedFeatures([
    [x - 4, y - 4],
    [x + 4, y + 4],
  ]);
  if (features.length === 0) {
    return;
  }
  const feature = features[0];
  const rows = Object.entries(feature.properties).map(([key, value]) =>
    element(
      'tr',
      {},
      element('th', { textContent: key }),
      element('td', { textContent: String(value) }),
    ),
  );
  const content = element(
    'div',
    { className: 'feature-body' },
    element('strong', { textContent: feature.sourceLayer ?? feature.source }),
    rows.length > 0
      ? element('table', {}, ...rows)
      : element('p', { textContent: 'No attributes' }),
  );
  new maplibregl.Popup({ className: 'feature-popup', maxWidth: '24rem' })
    .setLngLat(event.lngLat)
    .setDOMContent(content)
    .addTo(state.map);
}

function showPointerOverFeatures(event) {
  const { x, y } = event.point;
  const features = state.map.queryRenderedFeatures([
    [x - 4, y - 4],
    [x + 4, y + 4],
  ]);
  state.map.getCanvas().style.cursor = features.length > 0 ? 'pointer' : '';
}

async function main() {
  if (typeof maplibregl === 'undefined') {
    // A build without MapLibre embeds a stand-in maplibre-gl.js that reports why.
    if (window.tesseraErrors.length > 0) {
      showError(window.tesseraErrors[0]);
    } else {
      reportError(
        'MapLibre GL JS did not load from /viewer/maplibre-gl.js, so the viewer cannot draw maps',
      );
    }
    return;
  }
  try {
    state.catalog = await fetchJson('/catalog');
    state.catalog.sources ??= [];
    state.catalog.styles ??= [];
  } catch (error) {
    reportError(`Failed to load the catalog: ${error.message}`);
    return;
  }
  // MapLibre's hash has the form #zoom/latitude/longitude. Without one, the viewer picks the view.
  const hasHashView = /^#\d/.test(location.hash);
  // Without ?style=, the first style of the catalog opens, so that a new visitor gets the
  // data as its author arranged it; ?style= (empty) asks for the catalog's sources alone.
  const requested = new URLSearchParams(location.search).get('style');
  const styleId = requested ?? state.catalog.styles[0]?.id ?? '';

  renderSourceList();
  renderStylePicker(styleId);
  await loadVectorLayers();
  const style = await composeStyle(styleId);
  syncControls(style);

  // Without a hash, MapLibre takes the view from the style's center and zoom when it has them.
  // Hangul and CJK labels use the server's glyphs, like every other script, instead of a
  // browser font, so that the map looks the same in every browser and offline client.
  const map = new maplibregl.Map({
    container: 'map',
    style,
    hash: true,
    localIdeographFontFamily: false,
  });
  state.map = map;
  window.tesseraMap = map;
  map.addControl(new maplibregl.NavigationControl());
  // Top left, because the attribution of several sources fills the bottom row.
  map.addControl(new maplibregl.ScaleControl(), 'top-left');
  map.on('error', (event) => reportError(`Map error: ${event.error?.message ?? event.error}`));
  map.on('click', showFeaturePopup);
  map.on('mousemove', showPointerOverFeatures);
  map.on('zoomend', markSourcesBelowMinzoom);
  addStaticMapLink(map);
  map.once('load', () => {
    if (!hasHashView && style.center === undefined) {
      zoomToAllSources();
    }
    markSourcesBelowMinzoom();
    markReadyWhenIdle();
  });
}

// Adds a link under the sidebar that opens the current view of the chosen style as a static
// PNG from /static, at the map's size (up to 2048 pixels a side) and zoom.
function addStaticMapLink(map) {
  const link = element('a', { id: 'static-map-link', target: '_blank', textContent: 'Open as PNG' });
  const select = document.getElementById('style-select');
  const update = () => {
    // The catalog-only view has no style document to render.
    const styleId = select.value;
    link.hidden = !styleId;
    const { lng, lat } = map.getCenter();
    const canvas = map.getContainer();
    const width = Math.min(2048, Math.max(1, Math.round(canvas.clientWidth)));
    const height = Math.min(2048, Math.max(1, Math.round(canvas.clientHeight)));
    const position = `${lng.toFixed(6)},${lat.toFixed(6)},${map.getZoom().toFixed(2)}`;
    link.href = `/static/${encodeURIComponent(styleId)}/${position}/${width}x${height}.png`;
  };
  document.getElementById('sidebar').append(link);
  map.on('moveend', update);
  select.addEventListener('change', update);
  update();
}

main().catch((error) => reportError(`The viewer failed to start: ${error.message}`));
