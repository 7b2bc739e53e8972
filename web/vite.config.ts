/**
 * The web app's build: `vite build web` (from the repository root) writes
 * dist/web, which the server serves at `/` (src/http/web/index.ts).
 * Hashed file names under assets/ let the server cache them for a year.
 */
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: '../dist/web',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    assetsDir: 'assets',
    chunkSizeWarningLimit: 300,
  },
  server: {
    // `npx vite web` for development against a Starling on :3000. The app shares src/domain/text.ts with the server.
    fs: { allow: ['..'] },
    proxy: {
      '/api': { target: 'http://127.0.0.1:3000', ws: true },
      '/oauth': 'http://127.0.0.1:3000',
      '/status': 'http://127.0.0.1:3000',
      '/avatars': 'http://127.0.0.1:3000',
      '/headers': 'http://127.0.0.1:3000',
      '/health': 'http://127.0.0.1:3000',
    },
  },
});
