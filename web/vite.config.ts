import { createReadStream } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

// Where `npm run dev` sends /api requests: a running `lunora serve`.
const apiTarget = process.env.LUNORA_API ?? 'http://127.0.0.1:8080';

/**
 * Swagger UI for /api/v1/docs, served from our own bundle (no CDN).
 *
 * `public/api-docs/` holds the page (index.html + swagger-init.js); this plugin adds the
 * swagger-ui-dist files next to it in `dist/api-docs/` after the build, and serves them
 * from node_modules in `vite dev`.
 */
function swaggerUiAssets(): Plugin {
  const require = createRequire(import.meta.url);
  const distDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  const files = [
    'swagger-ui.css',
    'swagger-ui-bundle.js',
    'swagger-ui-standalone-preset.js',
    // License notices that ship with the files above.
    'swagger-ui-bundle.js.LICENSE.txt',
    'swagger-ui-standalone-preset.js.LICENSE.txt',
    'LICENSE',
    'NOTICE',
  ];
  const types: Record<string, string> = {
    '.css': 'text/css; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
  };
  let outDir = 'dist';
  let building = false;

  return {
    name: 'lunora:swagger-ui-assets',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
      building = config.command === 'build';
    },
    configureServer(server) {
      server.middlewares.use('/api-docs', (req, res, next) => {
        const name = (req.url ?? '').split('?')[0]?.replace(/^\//, '') ?? '';
        if (!files.includes(name)) return next();
        res.setHeader('Content-Type', types[path.extname(name)] ?? 'text/plain; charset=utf-8');
        createReadStream(path.join(distDir, name)).pipe(res);
      });
    },
    async closeBundle() {
      if (!building) return; // the dev server also calls this hook when it stops
      const target = path.join(outDir, 'api-docs');
      await mkdir(target, { recursive: true });
      await Promise.all(files.map((f) => copyFile(path.join(distDir, f), path.join(target, f))));
    },
  };
}

export default defineConfig({
  plugins: [react(), swaggerUiAssets()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
  },
  server: {
    proxy: {
      // '/api/' (with the slash) so /api-docs/ stays with the dev server.
      '/api/': { target: apiTarget, changeOrigin: false, ws: true },
    },
  },
});
