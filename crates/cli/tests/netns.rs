//! Remote forwarding across hosts, with hosts made by the test: two network
//! namespaces joined by a veth pair — a "public" host running the hop and a
//! "private" host running the service and the Portway client. The port must open
//! on the public host, and traffic to it must reach the private service.
//! Skips with a message where namespaces cannot be created (no CAP_SYS_ADMIN).

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portway");

struct Netns {
    public: String,
    private: String,
    pub_ip: String,
    prv_ip: String,
}

impl Netns {
    fn create() -> Result<Netns, String> {
        let id = std::process::id() % 100_000;
        let sub = id % 250;
        let n = Netns {
            public: format!("pw-pub-{id}"),
            private: format!("pw-prv-{id}"),
            pub_ip: format!("10.77.{sub}.1"),
            prv_ip: format!("10.77.{sub}.2"),
        };
        let (va, vb) = (format!("vpub{id}"), format!("vprv{id}"));
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), n.public.clone()],
            vec!["netns".into(), "add".into(), n.private.clone()],
            vec!["link".into(), "add".into(), va.clone(), "type".into(), "veth".into(), "peer".into(), "name".into(), vb.clone()],
            vec!["link".into(), "set".into(), va.clone(), "netns".into(), n.public.clone()],
            vec!["link".into(), "set".into(), vb.clone(), "netns".into(), n.private.clone()],
            vec!["-n".into(), n.public.clone(), "addr".into(), "add".into(), format!("{}/24", n.pub_ip), "dev".into(), va.clone()],
            vec!["-n".into(), n.private.clone(), "addr".into(), "add".into(), format!("{}/24", n.prv_ip), "dev".into(), vb.clone()],
            vec!["-n".into(), n.public.clone(), "link".into(), "set".into(), va, "up".into()],
            vec!["-n".into(), n.private.clone(), "link".into(), "set".into(), vb, "up".into()],
            vec!["-n".into(), n.public.clone(), "link".into(), "set".into(), "lo".into(), "up".into()],
            vec!["-n".into(), n.private.clone(), "link".into(), "set".into(), "lo".into(), "up".into()],
        ];
        for s in steps {
            let out = Command::new("ip").args(&s).output().map_err(|e| format!("ip: {e}"))?;
            if !out.status.success() {
                return Err(format!("ip {}: {}", s.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
        Ok(n)
    }

    fn spawn(&self, ns: &str, prog: &str, args: &[String]) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, prog])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{prog}: {e}"));
        Proc(child)
    }

    /// Sends `input` from inside `ns` to `proto:addr` with socat and returns the answer.
    fn ask(&self, ns: &str, target: &str, input: &[u8]) -> String {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "socat", "-T2", "-", target])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat");
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(input);
            // Leave stdin open briefly so the answer can come back before socat ends.
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut p = Proc(child);
        let mut out = String::new();
        if let Some(mut o) = p.0.stdout.take() {
            let deadline = Instant::now() + Duration::from_secs(4);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.0.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(p);
            let _ = o.read_to_string(&mut out);
        }
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it the pair.
        for ns in [&self.public, &self.private] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A process killed by its PID when the test ends.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 10s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn remote_forwarding_opens_the_port_on_the_public_host() {
    let n = match Netns::create() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("skipping: cannot create network namespaces here ({e}); CI runs this as root");
            return;
        }
    };
    // The private host's service, reachable only from the private host.
    let _backend = n.spawn(&n.private, "socat", &["TCP-LISTEN:9000,bind=127.0.0.1,reuseaddr,fork".into(), "SYSTEM:echo private-backend; cat".into()]);
    let _udp_backend = n.spawn(&n.private, "socat", &["UDP-LISTEN:9053,bind=127.0.0.1,reuseaddr,fork".into(), "EXEC:cat".into()]);
    for (i, scheme) in ["socks5", "relay"].iter().enumerate() {
        let hop_port = 1080 + i;
        let _hop = n.spawn(&n.public, BIN, &["-L".into(), format!("{scheme}://{}:{hop_port}?bind=true", n.pub_ip)]);
        let (tport, uport) = (8080 + i, 10053 + i);
        let _client = n.spawn(
            &n.private,
            BIN,
            &[
                "-L".into(),
                format!("rtcp://0.0.0.0:{tport}/127.0.0.1:9000"),
                "-L".into(),
                format!("rudp://0.0.0.0:{uport}/127.0.0.1:9053"),
                "-F".into(),
                format!("{scheme}://{}:{hop_port}", n.pub_ip),
            ],
        );
        // TCP: a client on the public host reaches the private service.
        let got = until(&format!("{scheme}: rtcp port on the public host"), || {
            let out = n.ask(&n.public, &format!("TCP:{}:{tport}", n.pub_ip), b"hello across hosts\n");
            out.contains("private-backend").then_some(out)
        });
        assert!(got.contains("hello across hosts"), "{scheme}: echo through the tunnel: {got:?}");
        // The port is the public host's: nothing listens on the private host.
        let local = n.ask(&n.private, &format!("TCP:{}:{tport}", n.prv_ip), b"x\n");
        assert!(!local.contains("private-backend"), "{scheme}: the port must not open on the private host");
        // UDP likewise.
        let got = until(&format!("{scheme}: rudp port on the public host"), || {
            let out = n.ask(&n.public, &format!("UDP:{}:{uport}", n.pub_ip), b"ping-udp\n");
            out.contains("ping-udp").then_some(out)
        });
        assert!(got.contains("ping-udp"), "{scheme}: {got:?}");
    }
}
