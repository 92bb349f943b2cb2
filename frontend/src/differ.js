// Two designer pages that only look at deployed versions:
//
// - [data-diff]: two versions of a key side by side. bpmn-js-differ compares the two models; the page
//   marks removed elements on the old diagram, added ones on the new, changed and moved ones on both,
//   and lists every change with the element's name. Both diagrams pan and zoom together.
// - [data-version-view]: one version, read-only, with SVG and PNG export.
//
// Texts come from the page's data-msg-* attributes; the XML from data-*-url (the version's download).
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import { diff } from 'bpmn-js-differ';
import camundaModdle from 'camunda-bpmn-moddle/resources/camunda.json';

import { download, fill, message, showFailure, svgToPng, whenReady } from './designer-common.js';

const KINDS = {
  removed: { marker: 'diff-removed', badge: '−' },
  added: { marker: 'diff-added', badge: '+' },
  changed: { marker: 'diff-changed', badge: '✎' },
  layout: { marker: 'diff-layout', badge: '⇆' },
};

async function fetchXML(url) {
  const response = await fetch(url, { credentials: 'same-origin' });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

async function openViewer(container, xml) {
  const viewer = new NavigatedViewer({ container, moddleExtensions: { camunda: camundaModdle } });
  const { warnings } = await viewer.importXML(xml);
  viewer.get('canvas').zoom('fit-viewport', 'auto');
  return { viewer, warnings };
}

function badge(text, kind) {
  const node = document.createElement('span');
  node.className = `diff-badge diff-badge-${kind}`;
  node.textContent = text;
  return node;
}

function mark(viewer, id, kind) {
  const registry = viewer.get('elementRegistry');
  if (!registry.get(id)) return false;
  viewer.get('canvas').addMarker(id, KINDS[kind].marker);
  viewer.get('overlays').add(id, 'diff', { position: { top: -12, right: 12 }, html: badge(KINDS[kind].badge, kind) });
  return true;
}

/** The changes as rows: {kind, id, name, type, details[]} in a stable order. */
function changeRows(changes, nestedText) {
  const rows = [];
  const push = (kind, id, element, details = []) => rows.push({
    kind, id, details, name: (element && element.name) || '', type: ((element && element.$type) || '').replace(/^bpmn:/, ''),
  });
  for (const [id, element] of Object.entries(changes._removed)) push('removed', id, element);
  for (const [id, element] of Object.entries(changes._added)) push('added', id, element);
  for (const [id, change] of Object.entries(changes._changed)) {
    const details = Object.entries(change.attrs).map(([attr, values]) => describe(attr, values));
    // Changes inside extension elements (form fields, deadline properties) are recorded without values.
    push('changed', id, change.model, details.length ? details : [nestedText]);
  }
  for (const [id, element] of Object.entries(changes._layoutChanged)) {
    if (!(id in changes._changed) && !(id in changes._added) && !(id in changes._removed)) push('layout', id, element);
  }
  return rows;
}

function valueText(value) {
  if (value === undefined || value === null) return '—';
  if (typeof value === 'object') return value.id || value.name || value.value || value.$type || '…';
  return String(value);
}

function describe(attr, { oldValue, newValue }) {
  // bpmn-js-differ 3.2 hands a changed attribute's [old, new] pair over as (newValue, oldValue); only the
  // entries it adds to or removes from a collection ("values[2]") come the right way round.
  const [before, after] = attr.endsWith(']') ? [oldValue, newValue] : [newValue, oldValue];
  return `${attr}: ${valueText(before)} → ${valueText(after)}`;
}

function drawChanges(root, rows, onSelect) {
  const list = root.querySelector('[data-role=changes]');
  list.replaceChildren();
  const summary = root.querySelector('[data-role=summary]');
  const counts = { removed: 0, added: 0, changed: 0, layout: 0 };
  rows.forEach((row) => { counts[row.kind] += 1; });
  summary.textContent = rows.length
    ? fill(message(root, 'summary', '新增 {added}，删除 {removed}，修改 {changed}，仅位置变化 {layout}。'), counts)
    : message(root, 'same', '两个版本的模型相同。');
  for (const row of rows) {
    const item = document.createElement('li');
    item.className = `diff-row diff-row-${row.kind}`;
    item.dataset.kind = row.kind;
    item.dataset.elementId = row.id;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'finding-link';
    const label = document.createElement('span');
    label.className = `diff-kind diff-kind-${row.kind}`;
    label.textContent = message(root, `kind${row.kind.charAt(0).toUpperCase()}${row.kind.slice(1)}`, row.kind);
    const name = document.createElement('span');
    name.className = 'diff-name';
    name.textContent = `${row.name || row.id}`;
    const meta = document.createElement('code');
    meta.textContent = `${row.type} ${row.id}`;
    button.append(label, ' ', name, ' ', meta);
    button.addEventListener('click', () => onSelect(row.id));
    item.appendChild(button);
    if (row.details.length) {
      const details = document.createElement('ul');
      details.className = 'diff-details';
      for (const line of row.details) {
        const detail = document.createElement('li');
        detail.textContent = line;
        details.appendChild(detail);
      }
      item.appendChild(details);
    }
    list.appendChild(item);
  }
}

function linkViewboxes(left, right) {
  let syncing = false;
  const follow = (from, to) => from.on('canvas.viewbox.changed', ({ viewbox }) => {
    if (syncing) return;
    syncing = true;
    to.get('canvas').viewbox({ x: viewbox.x, y: viewbox.y, width: viewbox.width, height: viewbox.height });
    syncing = false;
  });
  follow(left, right);
  follow(right, left);
}

function focus(viewers, id) {
  for (const viewer of viewers) {
    const element = viewer.get('elementRegistry').get(id);
    if (element) {
      viewer.get('canvas').scrollToElement(element);
      viewer.get('selection').select(element);
    }
  }
}

async function initDiff(root) {
  try {
    const [leftXML, rightXML] = await Promise.all([fetchXML(root.dataset.leftUrl), fetchXML(root.dataset.rightUrl)]);
    const left = await openViewer(root.querySelector('[data-role=left]'), leftXML);
    const right = await openViewer(root.querySelector('[data-role=right]'), rightXML);
    const changes = diff(left.viewer.getDefinitions(), right.viewer.getDefinitions());
    const rows = changeRows(changes, message(root, 'nested', '扩展属性（表单字段、期限等）有修改'));
    for (const row of rows) {
      if (row.kind === 'removed') mark(left.viewer, row.id, 'removed');
      else if (row.kind === 'added') mark(right.viewer, row.id, 'added');
      else {
        mark(left.viewer, row.id, row.kind);
        mark(right.viewer, row.id, row.kind);
      }
    }
    drawChanges(root, rows, (id) => focus([left.viewer, right.viewer], id));
    linkViewboxes(left.viewer, right.viewer);
    root.dataset.state = 'ready';
  } catch (error) {
    console.warn('diff:', error);
    showFailure(root, message(root, 'failed', '无法比较这两个版本：'), [error.message || String(error)]);
    root.dataset.state = 'failed';
  }
}

async function initView(root) {
  try {
    const xml = await fetchXML(root.dataset.xmlUrl);
    const { viewer } = await openViewer(root.querySelector('[data-role=canvas]'), xml);
    const name = root.dataset.exportName || 'diagram';
    const actions = {
      'export-svg': async () => download((await viewer.saveSVG()).svg, `${name}.svg`, 'image/svg+xml'),
      'export-png': async () => download(await svgToPng((await viewer.saveSVG()).svg), `${name}.png`, 'image/png'),
      fit: async () => viewer.get('canvas').zoom('fit-viewport', 'auto'),
    };
    for (const button of root.querySelectorAll('[data-action]')) {
      const action = actions[button.dataset.action];
      if (!action) continue;
      button.addEventListener('click', () => action().catch((error) => console.warn('export:', error)));
      button.disabled = false;
    }
    root.dataset.state = 'ready';
  } catch (error) {
    console.warn('view:', error);
    showFailure(root, message(root, 'failed', '流程图加载失败：'), [error.message || String(error)]);
    root.dataset.state = 'failed';
  }
}

whenReady(() => {
  document.querySelectorAll('[data-diff]').forEach(initDiff);
  document.querySelectorAll('[data-version-view]').forEach(initView);
});
