// The Profiles dialog against a scripted backend (mockIPC). The dialog plugin is mocked
// on its invoke path (plugin:dialog|save), the way it reaches the Rust side.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import App from "../../App.svelte";
import type { ProfileExport } from "../bindings/ProfileExport";
import { appError, backend, snapshot, type Handler } from "../../test/fixtures";

const CMDLINE = 'gost -L "tcp://127.0.0.1:8080/127.0.0.1:8000"';

/** default can be written as a command line; the others cannot. */
function exportOf(args: Record<string, unknown>): ProfileExport {
  const name = String(args.name);
  return { name, yaml: `# ${name}\nservices: []\n`, cmdline: name === "default" ? CMDLINE : null };
}

async function openProfiles(handlers: Record<string, Handler> = {}, snap = snapshot()) {
  const b = backend({ profile_export: exportOf, ...handlers }, snap);
  render(App);
  await screen.findByTestId("rule-row-web");
  await fireEvent.click(screen.getByTestId("profiles-open"));
  const dialog = await screen.findByTestId("profiles-dialog");
  return { b, dialog };
}

function button(dialog: HTMLElement, id: string): HTMLButtonElement {
  return within(dialog).getByTestId(id) as HTMLButtonElement;
}

let writeText: ReturnType<typeof vi.fn>;

beforeEach(() => {
  writeText = vi.fn(async () => {});
  Object.defineProperty(navigator, "clipboard", { configurable: true, value: { writeText } });
});

afterEach(() => {
  delete (navigator as unknown as Record<string, unknown>).clipboard;
});

describe("Profiles dialog", () => {
  it("lists every profile, marks the active one, and Switch calls profile_switch", async () => {
    const { b, dialog } = await openProfiles({
      profile_switch: () => snapshot({ activeProfile: "office", rules: [] }),
    });
    expect(within(dialog).getByTestId("profile-row-default").getAttribute("aria-current")).toBe("true");
    expect(within(dialog).getByTestId("profile-row-office").getAttribute("aria-current")).toBeNull();
    expect(within(dialog).getByTestId("profile-active-default")).toBeTruthy();
    expect(button(dialog, "profile-switch-default").disabled).toBe(true);

    await fireEvent.click(button(dialog, "profile-switch-office"));
    expect(b.callsOf("profile_switch").map((c) => c.args)).toEqual([{ name: "office" }]);
    await waitFor(() => expect(within(dialog).getByTestId("profile-row-office").getAttribute("aria-current")).toBe("true"));
    expect(within(dialog).queryByTestId("profile-active-default")).toBeNull();
    expect((screen.getByTestId("profile-select") as HTMLSelectElement).value).toBe("office");
  });

  it("Rename sends {name, newName} on Enter and the list shows the engine's answer", async () => {
    const { b, dialog } = await openProfiles({
      profile_rename: () => snapshot({ profiles: ["default", "work"] }),
    });
    await fireEvent.click(button(dialog, "profile-rename-office"));
    const input = within(dialog).getByTestId("profile-rename-input") as HTMLInputElement;
    expect(input.value).toBe("office");
    expect(document.activeElement).toBe(input);
    const user = userEvent.setup();
    await user.clear(input);
    await user.type(input, "work{Enter}");
    expect(b.callsOf("profile_rename").map((c) => c.args)).toEqual([{ name: "office", newName: "work" }]);
    await within(dialog).findByTestId("profile-row-work");
    expect(within(dialog).queryByTestId("profile-row-office")).toBeNull();
    expect(within(dialog).queryByTestId("profile-rename-input")).toBeNull();
    const options = [...(screen.getByTestId("profile-select") as HTMLSelectElement).options].map((o) => o.value);
    expect(options).toEqual(["default", "work"]);
    await waitFor(() => expect(document.activeElement).toBe(within(dialog).getByTestId("profile-rename-work")));
  });

  it("Esc in the rename field cancels the rename, not the dialog", async () => {
    const { b, dialog } = await openProfiles();
    await fireEvent.click(button(dialog, "profile-rename-office"));
    const input = within(dialog).getByTestId("profile-rename-input");
    await userEvent.setup().type(input, "-elsewhere{Escape}");
    expect(within(dialog).queryByTestId("profile-rename-input")).toBeNull();
    expect(screen.getByTestId("profiles-dialog")).toBeTruthy();
    expect(within(dialog).getByTestId("profile-row-office")).toBeTruthy();
    expect(b.callsOf("profile_rename")).toHaveLength(0);
  });

  it("Duplicate asks for a name inline; the engine's AppError (field name) appears next to it", async () => {
    const { b, dialog } = await openProfiles({
      profile_duplicate: (args) => {
        throw appError({ code: "alreadyExists", message: `a profile named "${String(args.newName)}" already exists`, field: "name" });
      },
    });
    await fireEvent.click(button(dialog, "profile-duplicate-default"));
    const input = within(dialog).getByTestId("profile-duplicate-input") as HTMLInputElement;
    expect(input.value).toBe("default-2");

    // A name in the list is refused before anything is sent.
    await fireEvent.input(input, { target: { value: "office" } });
    await fireEvent.submit(input.form!);
    expect(within(dialog).getByTestId("error-profile-name").textContent).toBe("there is already a profile called “office”");
    expect(b.callsOf("profile_duplicate")).toHaveLength(0);

    // One only the engine knows is taken (a case-insensitive file system): its answer, in place.
    await fireEvent.input(input, { target: { value: "Office" } });
    expect(within(dialog).queryByTestId("error-profile-name")).toBeNull();
    await fireEvent.submit(input.form!);
    expect(b.callsOf("profile_duplicate").map((c) => c.args)).toEqual([{ name: "default", newName: "Office" }]);
    const err = await within(dialog).findByTestId("error-profile-name");
    expect(err.textContent).toBe('a profile named "Office" already exists');
    expect(input.getAttribute("aria-invalid")).toBe("true");
    expect(input.getAttribute("aria-describedby")).toBe(err.id);
    expect(screen.queryByTestId("error-banner")).toBeNull();
  });

  it("Duplicate adds the copy to the list from the returned snapshot", async () => {
    const { b, dialog } = await openProfiles({
      profile_duplicate: () => snapshot({ profiles: ["default", "default-2", "office"] }),
    });
    await fireEvent.click(button(dialog, "profile-duplicate-default"));
    await fireEvent.submit((within(dialog).getByTestId("profile-duplicate-input") as HTMLInputElement).form!);
    expect(b.callsOf("profile_duplicate").map((c) => c.args)).toEqual([{ name: "default", newName: "default-2" }]);
    await within(dialog).findByTestId("profile-row-default-2");
    expect(within(dialog).getByTestId("profile-row-default").getAttribute("aria-current")).toBe("true");
  });

  it("the active profile's Delete is disabled and says why; another one asks first, then calls profile_delete", async () => {
    const { b, dialog } = await openProfiles({
      profile_delete: () => snapshot({ profiles: ["default"] }),
    });
    const own = button(dialog, "profile-delete-default");
    expect(own.disabled).toBe(true);
    expect(own.title).toContain("switch to another one before deleting it");

    await fireEvent.click(button(dialog, "profile-delete-office"));
    expect(b.callsOf("profile_delete")).toHaveLength(0);
    await fireEvent.click(button(dialog, "profile-delete-confirm-office"));
    expect(b.callsOf("profile_delete").map((c) => c.args)).toEqual([{ name: "office" }]);
    await waitFor(() => expect(within(dialog).queryByTestId("profile-row-office")).toBeNull());
  });

  it("deleting the profile the engine has active shows the engine's message and the row stays", async () => {
    // The window still thinks "default" is active; the engine has "office" (switched meanwhile).
    let snap = snapshot();
    const { b, dialog } = await openProfiles({
      app_snapshot: () => snap,
      profile_delete: () => {
        snap = snapshot({ activeProfile: "office", rules: [] });
        throw appError({ code: "invalid", message: '"office" is the active profile: switch to another one before deleting it' });
      },
    });
    await fireEvent.click(button(dialog, "profile-delete-office"));
    await fireEvent.click(button(dialog, "profile-delete-confirm-office"));
    const banner = await screen.findByTestId("error-banner");
    expect(banner.textContent).toContain('"office" is the active profile: switch to another one before deleting it');
    expect(banner.getAttribute("data-code")).toBe("invalid");
    expect(b.callsOf("profile_delete").map((c) => c.args)).toEqual([{ name: "office" }]);
    expect(within(dialog).getByTestId("profile-row-office")).toBeTruthy();
    // …and the window catches up with which profile is active.
    await waitFor(() => expect(within(dialog).getByTestId("profile-row-office").getAttribute("aria-current")).toBe("true"));
    expect(button(dialog, "profile-delete-office").disabled).toBe(true);
  });

  it("Export… opens the save dialog with <profile>.yaml, then calls profile_export_to with the chosen path", async () => {
    const { b, dialog } = await openProfiles({
      "plugin:dialog|save": () => "/home/me/office-export.yaml",
      profile_export_to: () => null,
    });
    await fireEvent.click(button(dialog, "profile-export-office"));
    await waitFor(() => expect(b.callsOf("profile_export_to")).toHaveLength(1));
    const order = b.calls.map((c) => c.cmd).filter((c) => c === "plugin:dialog|save" || c === "profile_export_to");
    expect(order).toEqual(["plugin:dialog|save", "profile_export_to"]);
    const { options } = b.callsOf("plugin:dialog|save")[0].args as { options: Record<string, unknown> };
    expect(options.defaultPath).toBe("office.yaml");
    expect(options.filters).toEqual([{ name: "GOST YAML", extensions: ["yaml", "yml"] }]);
    expect(b.callsOf("profile_export_to")[0].args).toEqual({ name: "office", path: "/home/me/office-export.yaml" });
    await waitFor(() =>
      expect(within(dialog).getByTestId("profiles-status").textContent).toBe("Exported “office” to /home/me/office-export.yaml"),
    );
  });

  it("a cancelled save dialog writes nothing; a failed write goes to the banner with Retry", async () => {
    let path: string | null = null;
    let fail = true;
    const { b, dialog } = await openProfiles({
      "plugin:dialog|save": () => path,
      profile_export_to: () => {
        if (fail) throw appError({ code: "storage", message: "/mnt/usb/office.yaml: read-only file system", retryable: true });
        return null;
      },
    });
    await fireEvent.click(button(dialog, "profile-export-office"));
    await waitFor(() => expect(b.callsOf("plugin:dialog|save")).toHaveLength(1));
    await waitFor(() => expect(button(dialog, "profile-export-office").disabled).toBe(false));
    expect(b.callsOf("profile_export_to")).toHaveLength(0);

    path = "/mnt/usb/office.yaml";
    await fireEvent.click(button(dialog, "profile-export-office"));
    expect((await screen.findByTestId("error-banner")).textContent).toContain("read-only file system");
    fail = false;
    await fireEvent.click(screen.getByTestId("error-retry"));
    await waitFor(() => expect(b.callsOf("profile_export_to")).toHaveLength(2));
    expect(b.callsOf("profile_export_to")[1].args).toEqual({ name: "office", path: "/mnt/usb/office.yaml" });
    expect(b.callsOf("plugin:dialog|save")).toHaveLength(2); // Retry writes again; it does not ask again
  });

  it("Copy as command line is disabled, with the reason, when the profile has no cmdline", async () => {
    const { b, dialog } = await openProfiles();
    await waitFor(() => expect(button(dialog, "profile-copy-cmdline-default").disabled).toBe(false));
    const office = button(dialog, "profile-copy-cmdline-office");
    expect(office.disabled).toBe(true);
    expect(office.title).toContain("GOST's command line cannot express this profile");
    expect(button(dialog, "profile-copy-yaml-office").disabled).toBe(false);
    expect(b.callsOf("profile_export").map((c) => c.args)).toEqual([{ name: "default" }, { name: "office" }]);

    await fireEvent.click(button(dialog, "profile-copy-cmdline-default"));
    expect(writeText).toHaveBeenCalledWith(CMDLINE);
    await fireEvent.click(button(dialog, "profile-copy-yaml-office"));
    expect(writeText).toHaveBeenLastCalledWith("# office\nservices: []\n");
    await waitFor(() => expect(within(dialog).getByTestId("profiles-status").textContent).toBe("YAML of “office” copied"));
  });

  it("when the clipboard refuses, the text is shown selected for Ctrl+C", async () => {
    writeText.mockRejectedValue(new Error("not allowed"));
    const { dialog } = await openProfiles();
    await waitFor(() => expect(button(dialog, "profile-copy-yaml-office").disabled).toBe(false));
    await fireEvent.click(button(dialog, "profile-copy-yaml-office"));
    const box = (await within(dialog).findByTestId("profile-copy-fallback")) as HTMLTextAreaElement;
    expect(box.value).toBe("# office\nservices: []\n");
    expect(document.activeElement).toBe(box);
  });
});
