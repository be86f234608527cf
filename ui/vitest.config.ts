// Unit and component tests: vitest + jsdom + @testing-library/svelte, IPC mocked with
// @tauri-apps/api/mocks. `resolve.conditions: ["browser"]` makes Svelte load its client
// runtime (without it, mount() fails with lifecycle_function_unavailable).
import { defineConfig } from "vitest/config";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
// One dependency cache beside the one node_modules (the root's), not ui/node_modules.
const cacheDir = fileURLToPath(new URL("../node_modules/.vite", import.meta.url));

export default defineConfig({
  root,
  cacheDir,
  plugins: [svelte()],
  resolve: { conditions: ["browser"] },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts"],
    setupFiles: ["src/test/setup.ts"],
    restoreMocks: true,
  },
});
