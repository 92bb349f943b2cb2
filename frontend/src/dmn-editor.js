// The DMN editor page: dmn-js (decision requirements diagram and decision table editor) on one draft.
//
// The page opens the first decision table straight away: that is what designers change (the 三色
// triage rules). The DRD stays reachable through the view tabs drawn above the editor.
import DmnModeler from 'dmn-js/lib/Modeler';

import { applyLibraryStylesThroughCSSOM, DraftSession, message, whenReady } from './designer-common.js';

const HIGHLIGHT = 'designer-highlight';

/** Every element id inside a decision (its table, inputs, outputs, rules and cells). */
function idsWithin(element, found = new Set()) {
  if (!element || typeof element !== 'object') return found;
  if (element.id) found.add(element.id);
  for (const key of ['decisionLogic', 'input', 'output', 'rule', 'inputEntry', 'outputEntry', 'inputExpression']) {
    const value = element[key];
    for (const child of Array.isArray(value) ? value : [value]) idsWithin(child, found);
  }
  return found;
}

function dmnEditor(root, modeler) {
  const viewers = [];
  let changed = null;
  const watch = (viewer) => {
    viewers.push(viewer);
    if (changed) viewer.on('elements.changed', changed);
  };
  modeler.on('viewer.created', ({ viewer }) => watch(viewer));

  function openTable() {
    const table = modeler.getViews().find((view) => view.type === 'decisionTable');
    const active = modeler.getActiveView();
    if (table && (!active || active.type !== 'decisionTable')) return modeler.open(table);
    return Promise.resolve();
  }

  return {
    async load(xml) {
      const result = await modeler.importXML(xml);
      await openTable();
      drawTabs(root, modeler);
      return result;
    },
    async getXML() {
      const { xml } = await modeler.saveXML({ format: true });
      return xml;
    },
    onChange(callback) {
      changed = callback;
      for (const viewer of viewers) viewer.on('elements.changed', callback);
    },
    async select(id) {
      const view = modeler.getViews().find((candidate) => idsWithin(candidate.element).has(id));
      if (view && view !== modeler.getActiveView()) {
        await modeler.open(view);
        drawTabs(root, modeler);
      }
      const cell = root.querySelector(`[data-element-id="${CSS.escape(id)}"], [data-row-id="${CSS.escape(id)}"], `
        + `[data-col-id="${CSS.escape(id)}"]`);
      if (cell) {
        root.querySelectorAll(`.${HIGHLIGHT}`).forEach((node) => node.classList.remove(HIGHLIGHT));
        cell.classList.add(HIGHLIGHT);
        cell.scrollIntoView({ block: 'center', inline: 'nearest' });
      }
    },
  };
}

/** One button per view (the DRD and each decision), so a designer can switch between them. */
function drawTabs(root, modeler) {
  const tabs = root.querySelector('[data-role=views]');
  if (!tabs) return;
  tabs.replaceChildren();
  const active = modeler.getActiveView();
  for (const view of modeler.getViews()) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'button button-small button-quiet';
    const label = view.type === 'drd' ? message(root, 'drdView', '决策需求图') : (view.name || view.id);
    button.textContent = label;
    if (active && view.element === active.element) button.setAttribute('aria-pressed', 'true');
    button.addEventListener('click', async () => {
      await modeler.open(view);
      drawTabs(root, modeler);
    });
    tabs.appendChild(button);
  }
  tabs.hidden = false;
}

async function init() {
  const root = document.querySelector('[data-dmn-editor]');
  if (!root) return;
  const modeler = new DmnModeler({
    container: root.querySelector('[data-role=canvas]'),
  });
  root.dmnModeler = modeler;
  const session = new DraftSession(root, dmnEditor(root, modeler));
  if (await session.open()) session.bindToolbar();
}

applyLibraryStylesThroughCSSOM();
whenReady(init);
