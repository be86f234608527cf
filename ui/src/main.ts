// Entry: mounts the window. If mounting itself throws, the error is written as text
// so the window is never blank.
import { mount } from "svelte";
import App from "./App.svelte";
import "./app.css";

const target = document.getElementById("app") ?? document.body;

function showFatal(message: string): void {
  const box = document.createElement("div");
  box.className = "load-error";
  box.setAttribute("role", "alert");
  box.dataset.testid = "fatal-error";
  const h = document.createElement("h2");
  h.textContent = "Portway's window could not start";
  const p = document.createElement("p");
  p.className = "mono";
  p.textContent = message;
  box.append(h, p);
  target.replaceChildren(box);
}

try {
  target.replaceChildren();
  mount(App, { target });
} catch (e) {
  console.error(e);
  showFatal(e instanceof Error ? e.message : String(e));
}
