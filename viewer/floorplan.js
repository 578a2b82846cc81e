// Floorplans in Tessera's viewer: for every source whose TileJSON lists `tessera:levels`, a
// sidebar panel picks the level to show and switches between the flat plan and 3D
// (fill-extrusion from the `height` and `base_height` attributes).
//
// app.js draws each vector source with generic layers named `tessera:ID:LAYER:fill`. This file
// restyles that fill layer of the `floorplan` layer by kind and level, and adds an extrusion
// layer beside it, which follows the fill layer's visibility. The query parameters
// `floorplan-level` (a level number) and `floorplan-3d` (present for 3D) set the first view.
// Browser tests read window.tesseraFloorplans.

const FLOORPLAN_LAYER = 'floorplan';
const KIND_COLORS = ['match', ['get', 'kind'], 'wall', '#37474f', 'opening', '#c05621', '#f2d8a7'];
const EXTRUDED_PITCH = 55;
// Opacity of the extrusion at full slider, and of app.js's fill layer at full slider.
const EXTRUSION_OPACITY = 0.9;
const FILL_OPACITY = 0.35;

const plans = [];

function fillLayerId(plan) {
  return `tessera:${plan.id}:${FLOORPLAN_LAYER}:fill`;
}

function extrusionLayerId(plan) {
  return `tessera:${plan.id}:${FLOORPLAN_LAYER}:extrusion`;
}

function levelFilter(plan) {
  // In 3D every level up to the chosen one is drawn, so that the chosen level is on top.
  const operator = plan.extruded ? '<=' : '==';
  return [operator, ['get', 'level'], plan.level];
}

// Sets `property` to `value` on a layer only when it differs, because every change fires the
// `styledata` event that calls this again.
function setIfChanged(map, layerId, kind, property, value) {
  const current =
    kind === 'filter'
      ? map.getFilter(layerId)
      : kind === 'layout'
        ? map.getLayoutProperty(layerId, property)
        : map.getPaintProperty(layerId, property);
  if (JSON.stringify(current) === JSON.stringify(value)) {
    return;
  }
  if (kind === 'filter') {
    map.setFilter(layerId, value);
  } else if (kind === 'layout') {
    map.setLayoutProperty(layerId, property, value);
  } else {
    map.setPaintProperty(layerId, property, value);
  }
}

// Restyles one floorplan source in the map's current style, adding its extrusion layer when
// the style does not have it yet (after a style switch, for example).
function applyPlan(map, plan) {
  const fillId = fillLayerId(plan);
  const fill = map.getLayer(fillId);
  if (!fill) {
    return;
  }
  const extrusionId = extrusionLayerId(plan);
  if (!map.getLayer(extrusionId)) {
    map.addLayer({
      id: extrusionId,
      type: 'fill-extrusion',
      source: fill.source,
      'source-layer': FLOORPLAN_LAYER,
      paint: {
        'fill-extrusion-color': KIND_COLORS,
        'fill-extrusion-height': ['get', 'height'],
        'fill-extrusion-base': ['get', 'base_height'],
        'fill-extrusion-opacity': EXTRUSION_OPACITY,
      },
    });
  }
  const sourceVisible = map.getLayoutProperty(fillId, 'visibility') !== 'none';
  const flatFilter = plan.extruded ? ['==', ['get', 'level'], -1] : levelFilter(plan);
  setIfChanged(map, fillId, 'filter', null, flatFilter);
  setIfChanged(map, fillId, 'paint', 'fill-color', KIND_COLORS);
  setIfChanged(map, fillId, 'paint', 'fill-outline-color', '#263238');
  setIfChanged(map, extrusionId, 'filter', null, levelFilter(plan));
  // The sidebar's opacity slider scales the fill layer; the extrusion follows it.
  const fillOpacity = map.getPaintProperty(fillId, 'fill-opacity');
  const factor = typeof fillOpacity === 'number' ? fillOpacity / FILL_OPACITY : 1;
  setIfChanged(map, extrusionId, 'paint', 'fill-extrusion-opacity', EXTRUSION_OPACITY * factor);
  const extrusionVisible = plan.extruded && sourceVisible ? 'visible' : 'none';
  setIfChanged(map, extrusionId, 'layout', 'visibility', extrusionVisible);
}

// Restyles every floorplan source. `isStyleLoaded` is not checked, because it stays false
// while tiles load; a style whose layers are not parsed yet has no fill layer to find.
function applyAll() {
  const map = window.tesseraMap;
  if (!map) {
    return;
  }
  for (const plan of plans) {
    applyPlan(map, plan);
  }
}

function setLevel(id, level) {
  const plan = plans.find((candidate) => candidate.id === id);
  if (!plan) {
    throw new Error(`No floorplan source ${id}`);
  }
  plan.level = level;
  plan.select.value = String(level);
  applyAll();
}

function setExtruded(id, extruded) {
  const plan = plans.find((candidate) => candidate.id === id);
  if (!plan) {
    throw new Error(`No floorplan source ${id}`);
  }
  plan.extruded = extruded;
  plan.checkbox.checked = extruded;
  applyAll();
  const map = window.tesseraMap;
  if (map) {
    map.easeTo({ pitch: plans.some((p) => p.extruded) ? EXTRUDED_PITCH : 0 });
  }
}

function panelFor(plan) {
  const select = document.createElement('select');
  for (const level of plan.levels) {
    const option = document.createElement('option');
    option.value = String(level.level);
    option.textContent = level.name ?? `Level ${level.level}`;
    select.append(option);
  }
  select.value = String(plan.level);
  select.addEventListener('change', () => setLevel(plan.id, Number(select.value)));

  const checkbox = document.createElement('input');
  checkbox.type = 'checkbox';
  checkbox.checked = plan.extruded;
  checkbox.addEventListener('change', () => setExtruded(plan.id, checkbox.checked));

  const levelLabel = document.createElement('label');
  levelLabel.append('Level ', select);
  const extrudeLabel = document.createElement('label');
  extrudeLabel.append(checkbox, ' 3D');
  const title = document.createElement('strong');
  title.textContent = plan.name;
  const row = document.createElement('li');
  row.className = 'floorplan';
  row.append(title, levelLabel, extrudeLabel);
  plan.select = select;
  plan.checkbox = checkbox;
  return row;
}

function renderPanel() {
  const heading = document.createElement('h2');
  heading.textContent = 'Floorplans';
  const list = document.createElement('ul');
  list.id = 'floorplans';
  list.append(...plans.map(panelFor));
  document.getElementById('sidebar').append(heading, list);
}

async function loadPlans() {
  const catalog = await (await fetch('/catalog')).json();
  const vectorSources = (catalog.sources ?? []).filter((source) => source.kind === 'vector');
  const parameters = new URLSearchParams(location.search);
  const firstLevel = Number(parameters.get('floorplan-level') ?? 0);
  const extruded = parameters.has('floorplan-3d');
  for (const source of vectorSources) {
    const response = await fetch(source.tilejson);
    if (!response.ok) {
      continue;
    }
    const tileJson = await response.json();
    const levels = tileJson['tessera:levels'];
    if (!Array.isArray(levels) || levels.length === 0) {
      continue;
    }
    const known = levels.some((level) => level.level === firstLevel);
    plans.push({
      id: source.id,
      name: source.name ?? source.id,
      levels,
      level: known ? firstLevel : levels[0].level,
      extruded,
    });
  }
}

function waitForMap() {
  return new Promise((resolve) => {
    const check = () => (window.tesseraMap ? resolve(window.tesseraMap) : setTimeout(check, 50));
    check();
  });
}

async function main() {
  await loadPlans();
  window.tesseraFloorplans = { plans, setLevel, setExtruded };
  if (plans.length === 0) {
    return;
  }
  renderPanel();
  const map = await waitForMap();
  map.on('styledata', applyAll);
  applyAll();
  if (plans.some((plan) => plan.extruded)) {
    map.once('idle', () => map.easeTo({ pitch: EXTRUDED_PITCH, duration: 0 }));
  }
}

main().catch((error) => {
  const message = `Floorplans are not shown: ${error.message}`;
  window.tesseraErrors ??= [];
  window.tesseraErrors.push(message);
  console.error(message);
});
