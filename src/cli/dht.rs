//! The `dht_*` commands: one DHT step each, to watch Kademlia work (BEP 5) — walkthrough §15.
//!
//! Each starts a read-only node of its own (BEP 43: it asks, never answers, and others keep it
//! out of their tables), sends its queries, prints, and stops the node.

use super::{CliError, print_lines};
use crate::dht::node::{Command, LookupEvent};
use crate::dht::thread::{Dht, DhtConfig, DhtOptions};
use crate::dht::{NodeId, NodeInfo};
use crate::metainfo::InfoHash;
use crossbeam_channel::{RecvTimeoutError, bounded, unbounded};
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// How long a one-query command waits (the node's own timeout answers first).
const QUERY_WAIT: Duration = Duration::from_secs(10);

/// How long `dht_get_peers` may take in all.
const LOOKUP_WAIT: Duration = Duration::from_secs(60);

/// Where the command's own node listens: `--bind` and `--port`.
#[derive(Debug, Clone, Copy)]
pub struct Local(pub SocketAddrV4);

pub(super) fn start(local: Local, options: DhtOptions) -> Result<Dht, CliError> {
    let config = DhtConfig {
        bind: local.0,
        options,
        read_only: true,
    };
    Dht::start(config).map_err(|e| CliError::Download(e.into()))
}

fn node_addr(addr: SocketAddr) -> Result<SocketAddrV4, CliError> {
    match addr {
        SocketAddr::V4(v4) => Ok(v4),
        SocketAddr::V6(_) => Err(CliError::Dht(format!(
            "{addr}: BEP 5's DHT speaks IPv4 only"
        ))),
    }
}

/// `dht_ping <ip:port>` → `Node ID: <40 hex>`.
pub fn dht_ping(addr: SocketAddr, local: Local) -> Result<(), CliError> {
    let addr = node_addr(addr)?;
    let dht = start(local, DhtOptions::default())?;
    let (reply, answer) = bounded(1);
    dht.send(Command::Ping { addr, reply });
    let result = answer.recv_timeout(QUERY_WAIT);
    dht.stop();
    match result {
        Ok(Ok(id)) => print_lines(&[format!("Node ID: {id}")]),
        Ok(Err(why)) => Err(CliError::Dht(why)),
        Err(_) => Err(CliError::Dht(format!("{addr} did not answer"))),
    }
}

/// `dht_find_node <ip:port> <target>` → one `<40-hex id> <ip:port>` per node returned.
pub fn dht_find_node(addr: SocketAddr, target: &str, local: Local) -> Result<(), CliError> {
    let addr = node_addr(addr)?;
    let target = NodeId::from_hex(target)
        .ok_or_else(|| CliError::Dht(format!("target {target:?} is not 40 hex digits")))?;
    let dht = start(local, DhtOptions::default())?;
    let (reply, answer) = bounded(1);
    dht.send(Command::FindNode {
        addr,
        target,
        reply,
    });
    let result = answer.recv_timeout(QUERY_WAIT);
    dht.stop();
    match result {
        Ok(Ok(nodes)) => print_lines(&nodes.iter().map(node_line).collect::<Vec<_>>()),
        Ok(Err(why)) => Err(CliError::Dht(why)),
        Err(_) => Err(CliError::Dht(format!("{addr} did not answer"))),
    }
}

/// A node as the state file and `dht_find_node` write it.
fn node_line(node: &NodeInfo) -> String {
    format!("{} {}", node.id, node.addr)
}

/// `dht_get_peers <info hash | magnet>`: the iterative lookup, one line per query as it is
/// answered (so a class watches the shared prefix grow), then `Peers:` and the peers.
pub fn dht_get_peers(target: &str, local: Local, options: DhtOptions) -> Result<(), CliError> {
    let info_hash = info_hash_of(target)?;
    if options.bootstrap.is_empty() && options.state.is_none() {
        return Err(CliError::Dht(
            "give a node to start from: --dht-bootstrap HOST:PORT".into(),
        ));
    }
    let dht = start(local, options)?;
    let (events, steps) = unbounded();
    dht.send(Command::GetPeers { info_hash, events });
    let deadline = Instant::now() + LOOKUP_WAIT;
    let mut step = 0;
    let peers = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match steps.recv_timeout(left) {
            Ok(LookupEvent::Answered(s)) => {
                // Printed as they come: a slow network shows its steps one by one.
                step += 1;
                print_lines(&[format!(
                    "step {step}: asked {} (id {}, {} in common with the target): {}, {}",
                    s.node.addr,
                    s.node.id,
                    counted(s.shared_bits as usize, "bit"),
                    counted(s.nodes, "node"),
                    counted(s.values, "peer")
                )])?;
            }
            Ok(LookupEvent::NoAnswer(addr)) => {
                step += 1;
                print_lines(&[format!("step {step}: asked {addr}: no answer")])?;
            }
            Ok(LookupEvent::Done { peers, .. }) => break peers,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                dht.stop();
                return Err(CliError::Dht(format!(
                    "the lookup did not finish within {LOOKUP_WAIT:?}"
                )));
            }
        }
    };
    dht.stop();
    let mut out = vec!["Peers:".to_string()];
    out.extend(peers.iter().map(|p| p.to_string()));
    print_lines(&out)
}

/// `1 peer`, `8 nodes`, `0 bits`.
fn counted(n: usize, thing: &str) -> String {
    match n {
        1 => format!("1 {thing}"),
        _ => format!("{n} {thing}s"),
    }
}

/// An info hash, 40 hex digits, or a magnet link's.
fn info_hash_of(target: &str) -> Result<InfoHash, CliError> {
    if target.starts_with("magnet:") {
        return Ok(super::magnet::parse(target)?.info_hash);
    }
    NodeId::from_hex(target)
        .map(|id| InfoHash(id.0))
        .ok_or_else(|| {
            CliError::Dht(format!(
                "{target:?} is neither 40 hex digits nor a magnet link"
            ))
        })
}

/// `dht_node`: a full node (answers queries, keeps a table) until Ctrl-C; prints its id and
/// address. A classroom DHT is a few of these on 127.0.0.x.
pub fn dht_node(local: Local, options: DhtOptions) -> Result<(), CliError> {
    let config = DhtConfig {
        bind: local.0,
        options,
        read_only: false,
    };
    let dht = Dht::start(config).map_err(|e| CliError::Download(e.into()))?;
    print_lines(&[
        format!("Node ID: {}", dht.id),
        format!("Listening: {}", dht.addr),
    ])?;
    let stop = super::stop_on_ctrl_c();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200)); // polling a flag, not waiting on luck
    }
    dht.stop(); // writes --dht-state
    Ok(())
}
