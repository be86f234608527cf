//! Chains with the `forward` connector over `tcp` (what runs before the protocol
//! connectors arrive): hop node selection, node health, GOST's router retries.

mod common;
use common::*;
use portway_core::stats::ServiceState;

fn chained(retries: u32, hop_nodes: &[String], forwarder: bool) -> String {
    let fwd = if forwarder { "  forwarder: {nodes: [{name: target-0, addr: \"127.0.0.1:9\"}]}\n" } else { "" };
    let mut y = format!(
        "services:\n- name: client\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c, retries: {retries}}}\n  listener: {{type: tcp}}\n{fwd}chains:\n- name: c\n  hops:\n  - name: hop-0\n    selector: {{strategy: fifo, maxFails: 1, failTimeout: 30s}}\n    nodes:\n"
    );
    for (i, n) in hop_nodes.iter().enumerate() {
        y.push_str(&format!("    - {{name: node-{i}, addr: \"{n}\", connector: {{type: forward}}, dialer: {{type: tcp}}}}\n"));
    }
    y
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_connector_reaches_the_server_side_target_without_a_local_target() {
    // `tcp://:8080 -F forward://server`: the service has no forwarder (target :0),
    // the forward connector passes the stream to the node, whose side picks the target.
    let server = tcp_backend("127.0.0.1", "server-side").await;
    let e = engine();
    e.apply(cfg(&chained(0, &[server.addr.to_string()], false))).await;
    assert_eq!(e.service_status("client").expect("status").state, ServiceState::Running);
    let (name, mut s) = tcp_hello(listening(&e, "client")).await.expect("through the chain");
    assert_eq!(name, "server-side");
    echo(&mut s, b"via forward").await.expect("echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_hop_node_is_marked_and_retries_fail_over_within_the_connection() {
    let dead = format!("127.0.0.206:{}", free_port_on("127.0.0.206"));
    let good = tcp_backend("127.0.0.1", "node-1").await;
    let e = engine();
    e.apply(cfg(&chained(1, &[dead.clone(), good.addr.to_string()], true))).await;
    // retries: 1 — the first client is served by node-1 after node-0 fails.
    let (name, _) = tcp_hello(listening(&e, "client")).await.expect("retry reaches the live node");
    assert_eq!(name, "node-1");
    let (name, _) = tcp_hello(listening(&e, "client")).await.expect("marked node skipped");
    assert_eq!(name, "node-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retries_the_first_client_fails_and_the_next_one_fails_over() {
    let dead = format!("127.0.0.206:{}", free_port_on("127.0.0.206"));
    let good = tcp_backend("127.0.0.1", "node-1").await;
    let e = engine();
    e.apply(cfg(&chained(0, &[dead, good.addr.to_string()], true))).await;
    assert!(tcp_hello(listening(&e, "client")).await.is_err(), "GOST closes the client whose route failed");
    let (name, _) = tcp_hello(listening(&e, "client")).await.expect("next client fails over");
    assert_eq!(name, "node-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_chain_is_an_error_not_a_direct_dial() {
    let e = engine();
    let y = "services:\n- name: s\n  addr: 127.0.0.1:0\n  handler: {type: tcp, chain: nope}\n  listener: {type: tcp}\n  forwarder: {nodes: [{name: t, addr: \"127.0.0.1:9\"}]}\n";
    e.apply(cfg(y)).await;
    match e.service_status("s").expect("status").state {
        ServiceState::Failed { error } => assert!(error.contains("no chain named \"nope\""), "{error}"),
        other => panic!("expected a failure, got {other:?}"),
    }
}
