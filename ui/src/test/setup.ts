// Runs before every test file: a clean DOM and no IPC mock left over between tests.
import { afterEach } from "vitest";
import { cleanup } from "@testing-library/svelte";
import { clearMocks } from "@tauri-apps/api/mocks";

afterEach(() => {
  cleanup();
  clearMocks();
  // Tests that hide the document put a `hidden` own property on it; drop it.
  delete (document as unknown as Record<string, unknown>).hidden;
});
