import { describe, expect, it } from "vitest";
import { hasSecrets, maskSecrets, MASK } from "./secrets";

describe("maskSecrets", () => {
  it("masks the password of URLs and keeps the user", () => {
    const t = "gost -L tcp://:8080/127.0.0.1:80 -F socks5://bob:s3cr3t@127.0.0.1:1080 -F relay+tls://al:p%40ss@h:8443";
    const m = maskSecrets(t);
    expect(m).toBe(`gost -L tcp://:8080/127.0.0.1:80 -F socks5://bob:${MASK}@127.0.0.1:1080 -F relay+tls://al:${MASK}@h:8443`);
    expect(m).not.toContain("s3cr3t");
    expect(m).not.toContain("p%40ss");
  });

  it("masks ssu ciphers' passwords and query parameters", () => {
    expect(maskSecrets("ssu://chacha20-ietf-poly1305:pw123@:8338")).toBe(`ssu://chacha20-ietf-poly1305:${MASK}@:8338`);
    expect(maskSecrets("sshd://root@h:22?privateKeyFile=/k&passphrase=hunter2")).toBe(`sshd://root@h:22?privateKeyFile=/k&passphrase=${MASK}`);
  });

  it("masks YAML and JSON password values in every style", () => {
    const yaml = "auth:\n  username: bob\n  password: s3cr3t\nauths:\n- username: a\n  password: 'x y'\nflow: {username: c, password: \"q\"}\n";
    const m = maskSecrets(yaml);
    expect(m).toContain(`  password: ${MASK}\n`);
    expect(m).toContain(`  password: ${MASK}\nflow`);
    expect(m).toContain(`password: ${MASK}}`);
    expect(m).toContain("username: bob");
    for (const s of ["s3cr3t", "x y", '"q"']) expect(m).not.toContain(s);
    expect(maskSecrets('{"password": "a\\"b", "user": "u"}')).toBe(`{"password": ${MASK}, "user": "u"}`);
  });

  it("leaves text without secrets alone", () => {
    const t = "services:\n- name: web\n  addr: :8080\n  forwarder: {nodes: [{name: a, addr: '127.0.0.1:80'}]}\n-L tcp://user@h:22";
    expect(maskSecrets(t)).toBe(t);
    expect(hasSecrets(t)).toBe(false);
    expect(hasSecrets("socks5://u:p@h:1")).toBe(true);
  });
});
