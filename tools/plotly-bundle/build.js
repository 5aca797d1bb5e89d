// Builds static/vendor/plotly/plotly-dashboard.min.js: plotly.js with only the trace
// types the dashboard draws. See static/vendor/plotly/README.md.
const esbuild = require('esbuild');
const version = require('plotly.js/package.json').version;

// The first line names the version and the trace types; a test checks that every trace
// type indicators/charts.py draws is in it.
const TRACES = ['scatter', 'choropleth', 'heatmap', 'waterfall'];
const banner =
  `/*! plotly.js v${version} (MIT licence, Copyright Plotly, Inc.), partial bundle; ` +
  `traces: ${TRACES.join(', ')}; built by tools/plotly-bundle */`;

// registry.js requires maplibre's stylesheet for "map" subplots, which we never draw.
const noMapStylesheet = {
  name: 'no-map-stylesheet',
  setup(build) {
    build.onResolve({ filter: /maplibre-gl\.css$/ }, () => ({ path: 'maplibre-gl.css', namespace: 'empty' }));
    build.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: '', loader: 'js' }));
  },
};

// The core holds scatter; every other trace type is registered here.
const entry =
  "var Plotly = require('plotly.js/lib/core');\n" +
  'Plotly.register([' +
  TRACES.filter((t) => t !== 'scatter').map((t) => `require('plotly.js/lib/${t}')`).join(', ') +
  ']);\nmodule.exports = Plotly;\n';

esbuild.build({
  stdin: { contents: entry, resolveDir: __dirname, sourcefile: 'entry.js' },
  outfile: process.argv[2] || 'plotly-dashboard.min.js',
  format: 'iife',
  globalName: 'Plotly',
  bundle: true,
  minify: true,
  legalComments: 'none',
  banner: { js: banner },
  target: 'es2016',
  define: { global: 'window', 'define.amd': 'false', 'process.env.NODE_DEBUG': 'false' },
  alias: { stream: 'stream-browserify' },
  plugins: [noMapStylesheet],
  logLevel: 'info',
}).catch(() => process.exit(1));
