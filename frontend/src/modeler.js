// The BPMN modeler page: bpmn-js with the properties panel (BPMN + Camunda Platform providers), the
// Camunda moddle and Camunda's modelling behaviours, editing one draft stored on the server.
//
// The root element [data-modeler] names the endpoints (data-draft-url, -save-url, -validate-url,
// -deploy-url) and carries the CSRF token and every text shown (data-msg-*). The designer sets lanes,
// candidate groups, camunda:formData fields, form keys, extension properties (deadlines), timers and
// business rule tasks' decisionRef in the panel.
import BpmnModeler from 'bpmn-js/lib/Modeler';
import {
  BpmnPropertiesPanelModule,
  BpmnPropertiesProviderModule,
  CamundaPlatformPropertiesProviderModule,
} from 'bpmn-js-properties-panel';
import CamundaBehaviorsModule from 'camunda-bpmn-js-behaviors/lib/camunda-platform';
import camundaModdle from 'camunda-bpmn-moddle/resources/camunda.json';

import { applyLibraryStylesThroughCSSOM, DraftSession, whenReady } from './designer-common.js';

function createModeler(root) {
  return new BpmnModeler({
    container: root.querySelector('[data-role=canvas]'),
    propertiesPanel: { parent: root.querySelector('[data-role=properties]') },
    additionalModules: [
      BpmnPropertiesPanelModule,
      BpmnPropertiesProviderModule,
      CamundaPlatformPropertiesProviderModule,
      CamundaBehaviorsModule,
    ],
    moddleExtensions: { camunda: camundaModdle },
  });
}

/** The editor interface DraftSession drives, over a bpmn-js Modeler. */
function bpmnEditor(modeler) {
  return {
    async load(xml) {
      const result = await modeler.importXML(xml);
      modeler.get('canvas').zoom('fit-viewport', 'auto');
      return result;
    },
    async getXML() {
      const { xml } = await modeler.saveXML({ format: true });
      return xml;
    },
    async exportSVG() {
      const { svg } = await modeler.saveSVG();
      return svg;
    },
    onChange(callback) {
      modeler.on('commandStack.changed', callback);
    },
    select(id) {
      const element = modeler.get('elementRegistry').get(id);
      if (!element) return;
      const canvas = modeler.get('canvas');
      // A task inside a collapsed sub-process is drawn on that sub-process's own plane.
      const root = canvas.findRoot ? canvas.findRoot(element) : null;
      if (root && root !== canvas.getRootElement()) canvas.setRootElement(root);
      canvas.scrollToElement(element);
      modeler.get('selection').select(element);
    },
  };
}

function bindZoom(root, modeler) {
  const canvas = modeler.get('canvas');
  const zoomScroll = modeler.get('zoomScroll');
  const actions = {
    in: () => zoomScroll.stepZoom(1),
    out: () => zoomScroll.stepZoom(-1),
    fit: () => canvas.zoom('fit-viewport', 'auto'),
  };
  for (const button of root.querySelectorAll('button[data-zoom]')) {
    button.addEventListener('click', () => actions[button.dataset.zoom]());
  }
}

async function init() {
  const root = document.querySelector('[data-modeler]');
  if (!root) return;
  const modeler = createModeler(root);
  // Tests and the browser console reach the modeler here; nothing else on the page uses it.
  root.bpmnModeler = modeler;
  const session = new DraftSession(root, bpmnEditor(modeler));
  if (await session.open()) {
    bindZoom(root, modeler);
    session.bindToolbar();
  }
}

applyLibraryStylesThroughCSSOM();
whenReady(init);
