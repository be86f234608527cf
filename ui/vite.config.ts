// Vite build of the Portway window. Run from the repo root:
//   vite build --config ui/vite.config.ts   → ui/dist (tauri.conf.json's frontendDist)
// Relative asset paths ("./") and no external URLs: the window runs under a strict CSP
// (default-src 'self'), so nothing here may inline scripts or styles.
import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
// One dependency cache beside the one node_modules (the root's), not ui/node_modules.
const cacheDir = fileURLToPath(new URL("../node_modules/.vite", import.meta.url));

export default defineConfig({
  root,
  cacheDir,
  base: "./",
  plugins: [svelte()],
  // Tauri prints its own output; keep Vite's visible.
  clearScreen: false,
  envPrefix: ["VITE_", "TAURI_ENV_"],
  server: {
    host: "127.0.0.1",
    port: 5173,
    strictPort: true,
    watch: { ignored: ["**/src-tauri/**", "**/target/**"] },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // No inline polyfill script (CSP) and nothing to preload: one entry chunk.
    modulePreload: { polyfill: false },
    // Keep small assets as files, never as data: URLs.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
});
