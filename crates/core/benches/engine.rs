//! `cargo bench -p portway-core --bench engine`: the selector and the UDP session
//! table, measured on their own. Prints a Markdown table.
//!
//! - selector: nanoseconds per pick for each strategy, over 3 and 52 nodes (the
//!   largest hop in the GOST corpus), with a third of the nodes marked failed.
//! - UDP sessions: new sessions per second (each from its own client socket), the
//!   steady-state datagrams per second through established sessions, and the
//!   memory each idle session holds — all through the real engine over loopback.

use portway_core::config::load_str;
use portway_core::selector::{SelNode, Selector, Strategy};
use portway_core::Engine;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

fn bench_selector(out: &mut Vec<String>) {
    for n in [3usize, 52] {
        for (name, strat) in [("round", Strategy::Round), ("rand", Strategy::Rand), ("fifo", Strategy::Fifo), ("hash", Strategy::Hash)] {
            let nodes: Vec<SelNode> = (0..n).map(|i| SelNode::new(format!("n{i}"), format!("127.0.0.1:{}", 1000 + i))).collect();
            for node in nodes.iter().step_by(3) {
                node.marker.mark();
            }
            let sel = Selector::new(strat, 1, Duration::from_secs(30));
            let iters = 2_000_000 / n.max(1) * 3;
            let keys: Vec<String> = (0..256).map(|i| format!("127.0.{}.{}", i / 250, i % 250)).collect();
            let start = Instant::now();
            let mut acc = 0usize;
            for i in 0..iters {
                acc = acc.wrapping_add(sel.select(&nodes, Some(&keys[i & 255])).unwrap_or(0));
            }
            let ns = start.elapsed().as_nanos() as f64 / iters as f64;
            std::hint::black_box(acc);
            out.push(format!("| selector {name} | {n} nodes, 1/3 failed | {ns:.0} ns/pick |"));
        }
    }
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4
}

type R<T> = Result<T, Box<dyn std::error::Error>>;

async fn bench_udp(out: &mut Vec<String>) -> R<()> {
    let backend = UdpSocket::bind("127.0.0.1:0").await?;
    let baddr = backend.local_addr()?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, peer)) = backend.recv_from(&mut buf).await else { return };
            let _ = backend.send_to(&buf[..n], peer).await;
        }
    });
    let yaml = format!(
        "services:\n- name: u\n  addr: 127.0.0.1:0\n  handler: {{type: udp}}\n  listener: {{type: udp, metadata: {{keepAlive: true, ttl: 60s, backlog: 4096}}}}\n  forwarder: {{nodes: [{{name: t, addr: \"{baddr}\"}}]}}\n"
    );
    let engine = Engine::new();
    engine.apply(load_str("bench", &yaml)?.config).await;
    let addr = engine.service_status("u").and_then(|s| s.listening.first().copied()).ok_or("the UDP service did not start")?;

    // New sessions: 2,000 client sockets, one request each, 64 in flight.
    const CLIENTS: usize = 2000;
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(UdpSocket::bind("127.0.0.1:0").await?);
    }
    let rss0 = rss_kib();
    let start = Instant::now();
    let mut answered = 0usize;
    for chunk in clients.chunks(64) {
        for c in chunk {
            let _ = c.send_to(b"hello", addr).await;
        }
        for c in chunk {
            let mut b = [0u8; 64];
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), c.recv_from(&mut b)).await {
                answered += 1;
            }
        }
    }
    let el = start.elapsed().as_secs_f64();
    let sessions = engine.connections().len();
    let rss1 = rss_kib();
    out.push(format!("| udp new sessions | {CLIENTS} clients, 64 in flight | {:.0} sessions/s ({answered} answered) |", answered as f64 / el));
    out.push(format!(
        "| udp idle session memory | {sessions} open sessions | {:.1} KiB/session RSS (incl. the test's own client sockets) |",
        (rss1.saturating_sub(rss0)) as f64 / sessions.max(1) as f64
    ));

    // Steady state: 8 established sessions, 32 datagrams in flight each.
    let busy: Vec<_> = clients.drain(..8).collect();
    let per_client = 20_000usize;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in busy {
        tasks.push(tokio::spawn(async move {
            let mut got = 0usize;
            let mut sent = 0usize;
            let mut b = [0u8; 64];
            while sent < 32 {
                let _ = c.send_to(b"ping", addr).await;
                sent += 1;
            }
            while got < per_client {
                match tokio::time::timeout(Duration::from_millis(500), c.recv_from(&mut b)).await {
                    Ok(Ok(_)) => {
                        got += 1;
                        if sent < per_client {
                            let _ = c.send_to(b"ping", addr).await;
                            sent += 1;
                        }
                    }
                    _ => {
                        // A lost datagram: top the window up and go on.
                        if sent < per_client {
                            let _ = c.send_to(b"ping", addr).await;
                            sent += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            got
        }));
    }
    let mut total = 0usize;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    let el = start.elapsed().as_secs_f64();
    out.push(format!("| udp steady state | 8 sessions, 32 in flight each | {:.0} datagrams/s round trip |", total as f64 / el));
    engine.shutdown().await;
    Ok(())
}

fn main() -> R<()> {
    // `cargo test --benches` runs this with --bench absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let mut out = vec!["| bench | setup | result |".to_string(), "|---|---|---|".to_string()];
    if quick {
        println!("engine bench: run with `cargo bench -p portway-core --bench engine`");
        return Ok(());
    }
    bench_selector(&mut out);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(bench_udp(&mut out))?;
    for l in out {
        println!("{l}");
    }
    Ok(())
}
