// The process diagram of an instance: completed steps and the current position marked.
//
// Every element with a data-diagram-url attribute (see web/diagrams/templates/diagrams/_diagram.html)
// gets its diagram from that URL: {"xml", "completed": {id: count}, "active": [id], "flows": [id],
// "times": [{id, label, passes, open}]}. Each step's time spent is drawn as a badge under it; the
// label arrives translated, and the table under the diagram holds the same figures for screen readers.
// Text shown here comes from the page's data-* attributes, so it is translated with the page.
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';

const DONE = 'diagram-done';
const ACTIVE = 'diagram-active';
const FLOW = 'diagram-flow';
const FALLBACK_ERROR = '流程图加载失败，请刷新页面重试。';

function text(container, name, fallback) {
  return container.dataset[name] || fallback;
}

async function fetchDiagram(url) {
  const response = await fetch(url, {
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
  });
  if (!response.ok) {
    throw new Error(`${url}: HTTP ${response.status}`);
  }
  return response.json();
}

function timeBadge(step, title) {
  const badge = document.createElement('span');
  badge.className = step.open ? 'diagram-time diagram-time-open' : 'diagram-time';
  badge.textContent = `⏱ ${step.label}`;
  badge.title = title;
  badge.setAttribute('aria-hidden', 'true');
  return badge;
}

function markTimes(viewer, times, title) {
  const registry = viewer.get('elementRegistry');
  const overlays = viewer.get('overlays');
  for (const step of times || []) {
    const element = registry.get(step.id);
    if (!element) continue;
    overlays.add(step.id, 'diagram-time', {
      position: { bottom: -4, left: 0 },
      html: timeBadge(step, title),
    });
  }
}

function mark(viewer, data) {
  const registry = viewer.get('elementRegistry');
  const canvas = viewer.get('canvas');
  const overlays = viewer.get('overlays');
  // Ids of steps inside a called process drawn elsewhere are not on this canvas: skip them.
  const known = (id) => registry.get(id) !== undefined;
  for (const [id, count] of Object.entries(data.completed || {})) {
    if (!known(id)) continue;
    canvas.addMarker(id, DONE);
    if (count > 1) {
      overlays.add(id, 'diagram-count', { position: { top: -8, right: 8 }, html: countBadge(count) });
    }
  }
  for (const id of data.flows || []) {
    if (known(id)) canvas.addMarker(id, FLOW);
  }
  for (const id of data.active || []) {
    if (known(id)) canvas.addMarker(id, ACTIVE);
  }
}

function countBadge(count) {
  const badge = document.createElement('span');
  badge.className = 'diagram-count';
  badge.textContent = `×${count}`;
  return badge;
}

function addZoomControls(container, viewer) {
  const controls = container.parentElement.querySelector('.diagram-controls');
  if (!controls) return;
  const canvas = viewer.get('canvas');
  const zoomScroll = viewer.get('zoomScroll');
  const actions = {
    in: () => zoomScroll.stepZoom(1),
    out: () => zoomScroll.stepZoom(-1),
    fit: () => canvas.zoom('fit-viewport', 'auto'),
  };
  for (const button of controls.querySelectorAll('button[data-zoom]')) {
    button.addEventListener('click', () => actions[button.dataset.zoom]());
  }
  controls.hidden = false;
}

function showError(container, error) {
  container.classList.remove('diagram-loading');
  container.classList.add('diagram-failed');
  const message = document.createElement('p');
  message.className = 'diagram-error';
  message.setAttribute('role', 'alert');
  message.textContent = text(container, 'diagramError', FALLBACK_ERROR);
  container.replaceChildren(message);
  console.warn('diagram:', error);
}

async function render(container) {
  container.classList.add('diagram-loading');
  try {
    const data = await fetchDiagram(container.dataset.diagramUrl);
    // The page would scroll, not the diagram, when the wheel turns over it: zoom with the buttons.
    const viewer = new NavigatedViewer({ container, zoomScroll: { enabled: false } });
    await viewer.importXML(data.xml);
    viewer.get('canvas').zoom('fit-viewport', 'auto');
    mark(viewer, data);
    markTimes(viewer, data.times, text(container, 'diagramTimeTitle', '在此环节的用时'));
    addZoomControls(container, viewer);
    container.classList.remove('diagram-loading');
    container.classList.add('diagram-ready');
  } catch (error) {
    showError(container, error);
  }
}

function renderWhenVisible(container) {
  // bpmn-js measures its container to fit the diagram: wait until a closed <details> opens.
  const closed = container.closest('details:not([open])');
  if (!closed) {
    render(container);
    return;
  }
  closed.addEventListener('toggle', () => render(container), { once: true });
}

function init() {
  document.querySelectorAll('[data-diagram-url]').forEach(renderWhenVisible);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}
