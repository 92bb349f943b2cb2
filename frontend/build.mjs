// Bundle the browser code into web/static/dist/ with esbuild, and copy the CSS the bundles need.
//
// Usage: node build.mjs                  (minified, with source maps, into web/static/dist/)
//        node build.mjs --dev            (readable output, for debugging)
//        node build.mjs --outdir=PATH    (elsewhere: scripts/build-assets.sh builds aside, then swaps)
//
// Each bundle is one entry of ENTRIES: a later bundle (the bpmn-js Modeler, dmn-js) is one more line
// there plus its stylesheets in ASSETS. Output names are stable (dist/<entry>.js), so templates can
// link them with url_for('static', filename='dist/<entry>.js').
import { cp, mkdir, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const outdirArg = process.argv.find((arg) => arg.startsWith('--outdir='));
const OUT_DIR = outdirArg ? resolve(outdirArg.slice('--outdir='.length)) : join(ROOT, 'web', 'static', 'dist');
const MODULES = join(HERE, 'node_modules');

/** Bundle name (becomes dist/<name>.js) → entry module. */
export const ENTRIES = {
  diagram: 'src/diagram.js',
  modeler: 'src/modeler.js',
  'dmn-editor': 'src/dmn-editor.js',
  differ: 'src/differ.js',
  charts: 'src/charts.js',
};

/** File or directory under dist/ → its source under node_modules/. */
export const ASSETS = {
  'diagram-js.css': 'bpmn-js/dist/assets/diagram-js.css',
  'bpmn-js.css': 'bpmn-js/dist/assets/bpmn-js.css',
  // bpmn-js.css and diagram-js.css use no icon font; the Modeler's palette will need
  // 'bpmn-font': 'bpmn-js/dist/assets/bpmn-font' (its css/ refers to ../font/).
  // The designer's modeler, properties panel and DMN editor (web/designer).
  'bpmn-font': 'bpmn-js/dist/assets/bpmn-font',
  'properties-panel.css': '@bpmn-io/properties-panel/dist/assets/properties-panel.css',
  'dmn-js': 'dmn-js/dist/assets',
};

const dev = process.argv.includes('--dev');

async function copyAssets() {
  await Promise.all(Object.entries(ASSETS).map(async ([target, source]) => {
    const to = join(OUT_DIR, target);
    await mkdir(dirname(to), { recursive: true });
    await cp(join(MODULES, source), to, { recursive: true });
  }));
}

async function bundle() {
  return esbuild.build({
    absWorkingDir: HERE,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, file]) => [name, join(HERE, file)])),
    outdir: OUT_DIR,
    bundle: true,
    // Classic scripts loaded with <script src defer>: no inline code, nothing the CSP has to allow.
    format: 'iife',
    target: 'es2020',
    minify: !dev,
    sourcemap: dev ? 'inline' : 'linked',
    legalComments: dev ? 'inline' : 'linked',
    metafile: true,
    logLevel: 'warning',
  });
}

function report(metafile) {
  for (const [file, info] of Object.entries(metafile.outputs)) {
    if (!file.endsWith('.map')) {
      console.log(`  dist/${relative(OUT_DIR, resolve(HERE, file))}  ${(info.bytes / 1024).toFixed(1)} KiB`);
    }
  }
}

await rm(OUT_DIR, { recursive: true, force: true });
await mkdir(OUT_DIR, { recursive: true });
const [result] = await Promise.all([bundle(), copyAssets()]);
report(result.metafile);
