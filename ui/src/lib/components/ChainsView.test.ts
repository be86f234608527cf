// The Chains view against a scripted backend (mockIPC): chains rendered from
// chains_list, the form's inline validation and the engine's field errors, live
// node health from stats frames, and a probe failure marked on the path.
import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import App from "../../App.svelte";
import type { ChainView } from "../bindings/ChainView";
import type { ChainHealth } from "../bindings/ChainHealth";
import type { ProbeView } from "../bindings/ProbeView";
import { appError, backend, frame, ruleView, snapshot, stats, type Handler } from "../../test/fixtures";
import { clock } from "../chains";

function chainView(): ChainView {
  const node = (name: string, addr: string, over = {}) => ({ name, protocol: "socks5", transport: "tcp", addr, username: "", password: "", options: [], origin: 0, ...over });
  return {
    chain: {
      name: "via-bastion",
      hops: [
        { name: "hop-0", strategy: "round", maxFails: 1, failTimeoutSecs: 10, nodes: [node("a", "127.0.0.11:1080")], shared: false, origin: 0 },
        { name: "hop-1", strategy: "fifo", maxFails: 2, failTimeoutSecs: 30, nodes: [node("b", "127.0.0.12:1080", { username: "u", password: "s3cret" }), node("c", "127.0.0.13:1080")], shared: false, origin: 1 },
      ],
    },
    usedBy: ["web", "api"],
    kept: ["hops.1.nodes.0: connector.metadata.header"],
  };
}

function health(): ChainHealth {
  const n = (name: string, addr: string, fails: number, deadUntil: number | null) => ({ name, addr, fails, totalFailures: fails, successes: 3, deadUntil });
  return {
    chain: "via-bastion",
    hops: [
      { hop: "hop-0", nodes: [n("a", "127.0.0.11:1080", 0, null)] },
      { hop: "hop-1", nodes: [n("b", "127.0.0.12:1080", 2, 4_102_444_800), n("c", "127.0.0.13:1080", 1, null)] },
    ],
  };
}

const snap = () => snapshot({ rules: [ruleView({ rule: { chain: "via-bastion" } }), ruleView({ rule: { name: "api", listen: "127.0.0.1:9000", chain: "via-bastion" } })] });

async function openChains(handlers: Record<string, Handler> = {}) {
  const b = backend({ chains_list: () => [chainView()], ...handlers }, snap());
  render(App);
  await screen.findByTestId("rule-row-web");
  await fireEvent.click(screen.getByTestId("tab-chains"));
  await screen.findByTestId("chain-card-via-bastion");
  return b;
}

describe("Chains view", () => {
  it("draws each chain as you → hops → target with its nodes and who uses it", async () => {
    await openChains();
    const path = screen.getByTestId("chain-path-via-bastion");
    expect(path.textContent).toMatch(/you.*hop 1.*127\.0\.0\.11:1080.*hop 2.*127\.0\.0\.12:1080.*127\.0\.0\.13:1080.*target/s);
    expect(screen.getByTestId("chain-users-via-bastion").textContent).toContain("used by web, api");
    // No frame yet: no health claimed.
    expect(screen.getByTestId("node-health-via-bastion-0-0").textContent).toBe("no data");
    expect(screen.queryByText("s3cret")).toBeNull();
  });

  it("shows each node's live health from the stats stream: ok, failures n, dead until", async () => {
    const b = await openChains();
    const t = Date.now();
    b.push({ ...frame([stats("web")], t), chains: [health()] });
    await waitFor(() => expect(screen.getByTestId("node-health-via-bastion-0-0").textContent).toBe("ok"));
    expect(screen.getByTestId("node-health-via-bastion-1-0").textContent).toBe(`dead until ${clock(4_102_444_800)}`);
    expect(screen.getByTestId("node-health-via-bastion-1-0").dataset.health).toBe("dead");
    expect(screen.getByTestId("node-health-via-bastion-1-1").textContent).toBe("failures 1");
    // Recovery arrives on the next frame.
    b.push({ ...frame([stats("web")], t + 1000), chains: [{ ...health(), hops: [health().hops[0], { hop: "hop-1", nodes: health().hops[1].nodes.map((n) => ({ ...n, fails: 0, deadUntil: null })) }] }] });
    await waitFor(() => expect(screen.getByTestId("node-health-via-bastion-1-0").textContent).toBe("ok"));
  });

  it("Test probes the picked rule and marks where the path breaks, with each hop's time", async () => {
    const probe: ProbeView = {
      rule: "api",
      chain: "via-bastion",
      target: "127.0.0.1:8000",
      ok: false,
      ms: 17,
      hops: [
        { index: 0, hop: "hop-0", node: "a", addr: "127.0.0.11:1080", ms: 3, error: null },
        { index: 1, hop: "hop-1", node: "b", addr: "127.0.0.12:1080", ms: 14, error: "authentication failed" },
      ],
      error: 'chain "via-bastion" hop "hop-1" node "b" (127.0.0.12:1080): authentication failed',
      targets: [],
    };
    const b = await openChains({ chain_probe: () => probe });
    const pick = screen.getByTestId("probe-rule-via-bastion") as HTMLSelectElement;
    expect([...pick.options].map((o) => o.value)).toEqual(["web", "api"]);
    await fireEvent.change(pick, { target: { value: "api" } });
    await fireEvent.click(screen.getByTestId("probe-chain-via-bastion"));
    const failed = await screen.findByTestId("probe-failed-via-bastion");
    expect(failed.textContent).toBe("hop 2 (127.0.0.12:1080) refused: authentication failed");
    expect(b.callsOf("chain_probe").map((c) => c.args)).toEqual([{ rule: "api" }]);
    expect(screen.getByTestId("path-hop-via-bastion-1").classList.contains("broken")).toBe(true);
    expect(screen.getByTestId("path-hop-via-bastion-0").classList.contains("broken")).toBe(false);
    expect(screen.getByTestId("path-hop-ms-via-bastion-0").textContent).toBe("3 ms");
    expect(screen.getByTestId("path-hop-ms-via-bastion-1").textContent).toBe("14 ms");
  });

  it("a successful probe shows the total time", async () => {
    const ok: ProbeView = { rule: "web", chain: "via-bastion", target: "127.0.0.1:8000", ok: true, ms: 9, hops: [{ index: 0, hop: "hop-0", node: "a", addr: "127.0.0.11:1080", ms: 2, error: null }, { index: 1, hop: "hop-1", node: "b", addr: "127.0.0.12:1080", ms: 7, error: null }], error: null, targets: [] };
    await openChains({ chain_probe: () => ok });
    await fireEvent.click(screen.getByTestId("probe-chain-via-bastion"));
    expect((await screen.findByTestId("probe-ok-via-bastion")).textContent).toBe("Reached 127.0.0.1:8000 through 2 hops in 9 ms.");
    expect(screen.queryByTestId("probe-targets-via-bastion")).toBeNull();
  });

  it("a rule with several targets lists each, the dead one with its reason", async () => {
    const hops = [{ index: 0, hop: "hop-0", node: "a", addr: "127.0.0.11:1080", ms: 2, error: null }, { index: 1, hop: "hop-1", node: "b", addr: "127.0.0.12:1080", ms: 7, error: null }];
    const probe: ProbeView = {
      rule: "web",
      chain: "via-bastion",
      target: "127.0.0.1:8001",
      ok: false,
      ms: 12,
      hops: [...hops, { index: null, hop: "target", node: "", addr: "127.0.0.1:8001", ms: 3, error: "connection refused" }],
      error: "dial 127.0.0.1:8001: connection refused",
      targets: [
        { target: "127.0.0.1:8000", ok: true, ms: 9, error: null },
        { target: "127.0.0.1:8001", ok: false, ms: 12, error: "dial 127.0.0.1:8001: connection refused" },
      ],
    };
    await openChains({ chain_probe: () => probe });
    await fireEvent.click(screen.getByTestId("probe-chain-via-bastion"));
    expect((await screen.findByTestId("probe-failed-via-bastion")).textContent).toBe("target 127.0.0.1:8001 could not be reached through the last hop: connection refused");
    expect(screen.getByTestId("probe-target-127.0.0.1:8000").textContent).toContain("reached in 9 ms");
    const dead = screen.getByTestId("probe-target-127.0.0.1:8001");
    expect(dead.textContent).toContain("connection refused");
    expect(dead.classList.contains("bad")).toBe(true);
  });

  it("the form flags a node address without a port inline and sends nothing", async () => {
    const b = await openChains();
    await fireEvent.click(screen.getByTestId("new-chain"));
    const ed = await screen.findByTestId("chain-editor");
    const user = userEvent.setup();
    const name = within(ed).getByTestId("chain-field-name") as HTMLInputElement;
    await user.clear(name);
    await user.type(name, "two-hops");
    await user.type(within(ed).getByTestId("node-0-0-addr"), "127.0.0.1:1080");
    await fireEvent.click(within(ed).getByTestId("add-hop"));
    await user.type(within(ed).getByTestId("node-1-0-addr"), "127.0.0.1");
    await fireEvent.click(within(ed).getByTestId("save-chain"));
    expect((await within(ed).findByTestId("error-hops.1.nodes.0.addr")).textContent).toBe("address needs a port");
    expect(document.activeElement).toBe(within(ed).getByTestId("node-1-0-addr"));
    expect(b.callsOf("chain_save")).toEqual([]);
    // A taken name is flagged too.
    await user.clear(name);
    await user.type(name, "via-bastion");
    expect((await within(ed).findByTestId("error-name")).textContent).toContain("already called");
  });

  it("saves a new two-hop chain with a masked password, and the rule editor can pick it", async () => {
    let saved: unknown = null;
    const b = await openChains({
      chain_save: (args) => {
        saved = args;
        return snapshot({ ...snap(), chains: ["via-bastion", "two-hops"] });
      },
    });
    await fireEvent.click(screen.getByTestId("new-chain"));
    const ed = await screen.findByTestId("chain-editor");
    const user = userEvent.setup();
    const name = within(ed).getByTestId("chain-field-name") as HTMLInputElement;
    await user.clear(name);
    await user.type(name, "two-hops");
    await user.type(within(ed).getByTestId("node-0-0-addr"), "127.0.0.1:1080");
    await fireEvent.click(within(ed).getByTestId("add-hop"));
    await user.type(within(ed).getByTestId("node-1-0-addr"), "127.0.0.1:1081");
    await user.type(within(ed).getByTestId("node-1-0-username"), "u");
    const pw = within(ed).getByTestId("node-1-0-password") as HTMLInputElement;
    expect(pw.type).toBe("password");
    await user.type(pw, "p");
    await fireEvent.click(within(ed).getByTestId("node-1-0-password-toggle"));
    expect(pw.type).toBe("text");
    await fireEvent.click(within(ed).getByTestId("node-1-0-add-option"));
    await user.type(within(ed).getByTestId("node-1-0-option-0-key"), "udp");
    await user.type(within(ed).getByTestId("node-1-0-option-0-value"), "true");
    await fireEvent.click(within(ed).getByTestId("save-chain"));
    await waitFor(() => expect(screen.queryByTestId("chain-editor")).toBeNull());
    expect(saved).toMatchObject({
      original: null,
      draft: {
        name: "two-hops",
        hops: [
          { nodes: [{ addr: "127.0.0.1:1080", protocol: "socks5", transport: "tcp" }] },
          { name: "hop-1", nodes: [{ addr: "127.0.0.1:1081", username: "u", password: "p", options: [{ key: "udp", value: "true" }] }] },
        ],
      },
    });
    expect(b.callsOf("chains_list").length).toBeGreaterThanOrEqual(2);
    await fireEvent.click(screen.getByTestId("tab-rules"));
    await fireEvent.click(await screen.findByTestId("new-rule"));
    const chainPick = (await screen.findByTestId("field-chain")) as HTMLSelectElement;
    expect([...chainPick.options].map((o) => o.value)).toContain("two-hops");
  });

  it("shows the engine's field error next to the field, and a refused delete on the card", async () => {
    await openChains({
      chain_save: () => {
        throw appError({ message: "address needs a port", field: "hops.1.nodes.1.addr" });
      },
      chain_delete: () => {
        throw appError({ message: 'chain "via-bastion" is used by rules "web", "api": pick another chain for them first', rule: "web" });
      },
    });
    await fireEvent.click(screen.getByTestId("edit-chain-via-bastion"));
    const ed = await screen.findByTestId("chain-editor");
    expect((within(ed).getByTestId("node-1-0-password") as HTMLInputElement).type).toBe("password");
    expect(within(ed).getByTestId("chain-kept").textContent).toContain("connector.metadata.header");
    await fireEvent.click(within(ed).getByTestId("save-chain"));
    expect((await within(ed).findByTestId("error-hops.1.nodes.1.addr")).textContent).toBe("address needs a port");
    await fireEvent.click(within(ed).getByTestId("cancel-chain"));
    await fireEvent.click(screen.getByTestId("delete-chain-via-bastion"));
    await fireEvent.click(screen.getByTestId("confirm-delete-chain-via-bastion"));
    expect((await screen.findByTestId("chain-error-via-bastion")).textContent).toContain('used by rules "web", "api"');
  });
});
