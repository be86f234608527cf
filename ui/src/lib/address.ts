// Address checks for the editor's inline validation. They mirror the engine's
// (crates/core config::validate::check_addr / split_host_port, i.e. Go's
// net.SplitHostPort) so the form flags what the engine would refuse; the engine
// still has the last word on save.

/** `host:port`, `[v6]:port`, `:port` → [host, port]; null when not of that shape. */
export function splitHostPort(addr: string): [string, string] | null {
  if (addr.startsWith("[")) {
    const end = addr.indexOf("]");
    if (end < 0) return null;
    const rest = addr.slice(end + 1);
    if (!rest.startsWith(":")) return null;
    return [addr.slice(1, end), rest.slice(1)];
  }
  const i = addr.lastIndexOf(":");
  if (i < 0) return null;
  const host = addr.slice(0, i);
  if (host.includes(":")) return null; // bare IPv6 without brackets
  return [host, addr.slice(i + 1)];
}

/** Why `addr` is not a usable address, or null when it is. */
export function addressProblem(addr: string, opts: { needPort: boolean }): string | null {
  const a = addr.trim();
  if (a === "") return "enter host:port, e.g. 127.0.0.1:8080";
  if (a !== addr) return "no spaces around the address";
  if (a.includes("${") || a.startsWith("$")) return "holds a placeholder; put the real address";
  const hp = splitHostPort(a);
  if (!hp) return `"${a}" is not host:port`;
  const [host, port] = hp;
  if (/\s/.test(host)) return "invalid host";
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return `port "${port}" is not a number from 0 to 65535`;
  if (opts.needPort && Number(port) === 0) return "a target needs a port";
  return null;
}
