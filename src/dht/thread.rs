//! The `dht` thread: one UDP socket, one [`Node`], and the channel the rest of peerwire talks
//! to it on (BEP 5, "DHT Protocol") — walkthrough §15.
//!
//! ```text
//!   session, commands ──Command──► dht thread ◄──datagrams── UDP socket (the listen port)
//!                                     │  Node::handle_datagram / command / tick
//!                                     └──datagrams──► UDP socket;  peers ──► the scheduler
//! ```
//!
//! In a download the socket is the listen port's, shared with uTP: the `utp` thread reads it
//! and hands over every datagram that starts with `d` (bencoded KRPC always does), and this
//! thread sleeps on its channels until the node's next deadline. A one-shot command's node
//! (`dht_ping`, …) owns a socket of its own and sleeps on it, 50 ms at a time so that a
//! command is picked up soon.

use super::node::{Command, Node};
use super::{NodeId, NodeInfo};
use crate::encoding::addr_for_socket;
use crossbeam_channel::{Receiver, Select, Sender, TryRecvError, unbounded};
use std::io::ErrorKind;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The public routers a new node asks when the user gave no way in (no `--dht-bootstrap`, no
/// saved table). By host name only: their addresses change, and no address is written into
/// peerwire. Tests and the demo never get here: they always give their own nodes.
pub const PUBLIC_ROUTERS: &[&str] = &[
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
    "dht.libtorrent.org:25401",
];

/// Longest datagram we read. KRPC messages are a few hundred bytes; anything cut short by
/// this fails to decode and is dropped.
const DATAGRAM: usize = 4_096;

#[derive(Debug, Error)]
pub enum DhtError {
    #[error("cannot open the DHT's UDP socket at {0}: {1}")]
    Bind(SocketAddrV4, std::io::Error),
    #[error("cannot start the dht thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot read the DHT state {path}: {error}")]
    ReadState {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the DHT state {path}, line {line}: {what}")]
    BadState {
        path: PathBuf,
        line: usize,
        what: String,
    },
}

/// Where a node finds its way into the DHT: the user's choices.
#[derive(Debug, Clone, Default)]
pub struct DhtOptions {
    /// `--dht-bootstrap HOST:PORT`, resolved on the dht thread.
    pub bootstrap: Vec<String>,
    /// `--dht-state FILE`: our id and table, read at start and written at the end.
    pub state: Option<PathBuf>,
    /// Asked only when neither of the above gives a node: [`PUBLIC_ROUTERS`] for a user,
    /// none in tests (they set `PEERWIRE_DHT_ROUTERS` empty: nothing leaves the machine).
    pub routers: Vec<String>,
}

impl DhtOptions {
    /// Whether the node can find anyone at all (nodes from peers' `port` messages aside).
    pub fn has_a_way_in(&self) -> bool {
        !self.bootstrap.is_empty()
            || self.state.as_ref().is_some_and(|s| s.exists())
            || !self.routers.is_empty()
    }
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct DhtConfig {
    /// The socket's address: the listen port (shared with uTP later), on `--bind`'s address.
    pub bind: SocketAddrV4,
    pub options: DhtOptions,
    /// A one-shot command's node: asks, never answers, stays out of others' tables (BEP 43).
    pub read_only: bool,
}

/// The running `dht` thread, seen from outside.
pub struct Dht {
    commands: Sender<Command>,
    stop: Sender<()>,
    thread: JoinHandle<()>,
    /// Where the socket really is (port 0 picks one).
    pub addr: SocketAddrV4,
    pub id: NodeId,
}

/// Where the node's datagrams come from.
pub enum DhtSocket {
    /// A socket of its own, which the thread reads (the one-shot commands' node).
    Own(UdpSocket),
    /// The listen port's socket, read by the `utp` thread, which forwards KRPC here.
    Shared {
        socket: Arc<UdpSocket>,
        datagrams: Receiver<(SocketAddr, Vec<u8>)>,
    },
}

impl DhtSocket {
    fn send_to(&self, bytes: &[u8], to: SocketAddrV4) -> std::io::Result<usize> {
        match self {
            DhtSocket::Own(socket) => socket.send_to(bytes, to),
            DhtSocket::Shared { socket, .. } => {
                // The session's socket may be the dual-stack `[::]` one: an IPv4 node is
                // reached at its mapped address there. A few datagrams a second: asking the
                // socket its family each time costs nothing worth keeping a flag for.
                let socket_is_v6 = socket.local_addr().is_ok_and(|local| local.is_ipv6());
                socket.send_to(bytes, addr_for_socket(to.into(), socket_is_v6))
            }
        }
    }
}

impl Dht {
    /// Binds a socket of its own, reads the saved state if any, and starts the thread.
    pub fn start(config: DhtConfig) -> Result<Dht, DhtError> {
        let socket = UdpSocket::bind(config.bind).map_err(|e| DhtError::Bind(config.bind, e))?;
        Dht::start_on(config, DhtSocket::Own(socket))
    }

    /// Starts the thread on `socket` (`config.bind` only says which address it is on).
    pub fn start_on(config: DhtConfig, socket: DhtSocket) -> Result<Dht, DhtError> {
        let local = match &socket {
            DhtSocket::Own(socket) => socket.local_addr(),
            DhtSocket::Shared { socket, .. } => socket.local_addr(),
        };
        let addr = match local {
            Ok(SocketAddr::V4(addr)) => addr,
            Ok(SocketAddr::V6(_)) => config.bind,
            Err(e) => return Err(DhtError::Bind(config.bind, e)),
        };
        let saved = match &config.options.state {
            Some(path) if path.exists() => Some(read_state(path)?),
            _ => None,
        };
        let id = saved.as_ref().map_or_else(NodeId::generate, |s| s.0);
        let (commands, command_rx) = unbounded();
        let (stop, stop_rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name("dht".into())
            .spawn(move || run(socket, id, config, saved, command_rx, stop_rx))
            .map_err(DhtError::Thread)?;
        log::info!("DHT node {id} on {addr}");
        Ok(Dht {
            commands,
            stop,
            thread,
            addr,
            id,
        })
    }

    /// A sender for commands (one per session, or the command line's).
    pub fn commands(&self) -> Sender<Command> {
        self.commands.clone()
    }

    pub fn send(&self, command: Command) {
        // The thread ends only on `stop`: this fails only if it panicked, and then the DHT
        // is simply gone (peers still come from trackers and PEX).
        let _ = self.commands.send(command);
    }

    /// Ends the thread, which writes the state file first if one was given.
    pub fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            log::error!("the dht thread panicked (a bug in peerwire)");
        }
    }
}

fn run(
    socket: DhtSocket,
    id: NodeId,
    config: DhtConfig,
    saved: Option<(NodeId, Vec<NodeInfo>)>,
    commands: Receiver<Command>,
    stop: Receiver<()>,
) {
    // Names are resolved here, not in `start`: a slow resolver must not hold up the download.
    let mut bootstrap = resolve(&config.options.bootstrap);
    let saved_nodes = saved.map(|s| s.1).unwrap_or_default();
    if bootstrap.is_empty() && saved_nodes.is_empty() {
        bootstrap = resolve(&config.options.routers);
    }
    let mut node = Node::new(id, bootstrap, config.read_only, Instant::now());
    for saved in saved_nodes {
        node.command(Command::AddNode(saved.addr), Instant::now());
    }
    let mut buffer = vec![0u8; DATAGRAM];
    loop {
        match stop.try_recv() {
            Ok(()) | Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        // [W15.11] Every command waiting, then whatever is due, then out with what they produced.
        while let Ok(command) = commands.try_recv() {
            node.command(command, now);
        }
        node.tick(now);
        for (to, bytes) in node.take_outgoing() {
            if let Err(e) = socket.send_to(&bytes, to) {
                log::debug!("dht: cannot send to {to}: {e}");
            }
        }
        let wait = node
            .next_wake(now)
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        match &socket {
            DhtSocket::Own(socket) => receive_own(socket, &mut buffer, wait, &mut node),
            DhtSocket::Shared { datagrams, .. } => {
                // Asleep until a datagram, a command, `stop` or the next deadline: the
                // loop's top takes whichever it was.
                let mut select = Select::new();
                select.recv(&stop);
                select.recv(&commands);
                select.recv(datagrams);
                let _ = select.ready_timeout(wait);
                while let Ok((from, bytes)) = datagrams.try_recv() {
                    node.handle_datagram(from, &bytes, Instant::now());
                }
            }
        }
    }
    if let Some(path) = &config.options.state {
        let nodes = node.table().nodes();
        match write_state(path, id, &nodes) {
            Ok(()) => log::info!(
                "DHT state: {} nodes written to {}",
                nodes.len(),
                path.display()
            ),
            Err(e) => log::warn!("cannot write the DHT state {}: {e}", path.display()),
        }
    }
}

/// A socket of our own: sleep on it until the next deadline, but 50 ms at most, so that
/// commands are picked up (a socket cannot wait on a channel too).
fn receive_own(socket: &UdpSocket, buffer: &mut [u8], wait: Duration, node: &mut Node) {
    if socket
        .set_read_timeout(Some(wait.min(Duration::from_millis(50))))
        .is_err()
    {
        return; // cannot happen for a non-zero duration
    }
    match socket.recv_from(buffer) {
        Ok((n, from)) if n > 0 && buffer[0] == b'd' => {
            node.handle_datagram(from, &buffer[..n], Instant::now())
        }
        Ok(_) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        // ICMP "port unreachable" from an earlier send may show up here: the node that
        // went away fails by timeout like any other.
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        Err(e) => log::debug!("dht: receive failed: {e}"),
    }
}

/// `HOST:PORT` → IPv4 addresses; a name that does not resolve is logged and skipped.
pub fn resolve(names: &[String]) -> Vec<SocketAddrV4> {
    let mut found = Vec::new();
    for name in names {
        match name.to_socket_addrs() {
            Ok(addrs) => found.extend(addrs.filter_map(|a| match a {
                SocketAddr::V4(v4) => Some(v4),
                SocketAddr::V6(_) => None,
            })),
            Err(e) => log::warn!("DHT bootstrap node {name}: {e}"),
        }
    }
    found
}

/// The state file, readable by a person: `id <40 hex>`, then one `<40-hex id> <ip:port>` per
/// node (the same lines `dht_find_node` prints).
pub fn write_state(path: &Path, id: NodeId, nodes: &[NodeInfo]) -> std::io::Result<()> {
    let mut text = format!("id {id}\n");
    for node in nodes {
        text.push_str(&format!("{} {}\n", node.id, node.addr));
    }
    // Written aside and renamed: a crash mid-write leaves the old table, not half a file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

pub fn read_state(path: &Path) -> Result<(NodeId, Vec<NodeInfo>), DhtError> {
    let text = std::fs::read_to_string(path).map_err(|error| DhtError::ReadState {
        path: path.to_path_buf(),
        error,
    })?;
    let bad = |line: usize, what: &str| DhtError::BadState {
        path: path.to_path_buf(),
        line,
        what: what.to_string(),
    };
    let mut lines = text.lines().enumerate();
    let id = lines
        .next()
        .and_then(|(_, l)| l.strip_prefix("id "))
        .and_then(NodeId::from_hex)
        .ok_or_else(|| bad(1, "expected `id <40 hex digits>`"))?;
    let mut nodes = Vec::new();
    for (i, line) in lines {
        let (hex, addr) = line
            .split_once(' ')
            .ok_or_else(|| bad(i + 1, "expected `<40-hex id> <ip:port>`"))?;
        let node_id = NodeId::from_hex(hex).ok_or_else(|| bad(i + 1, "not a 40-hex id"))?;
        let addr = addr
            .parse()
            .map_err(|_| bad(i + 1, "not an IPv4 address:port"))?;
        nodes.push(NodeInfo { id: node_id, addr });
    }
    Ok((id, nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_round_trips_and_says_where_it_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht.state");
        let nodes = vec![NodeInfo {
            id: NodeId([7; 20]),
            addr: "127.0.0.3:6881".parse().unwrap(),
        }];
        write_state(&path, NodeId([1; 20]), &nodes).unwrap();
        assert_eq!(read_state(&path).unwrap(), (NodeId([1; 20]), nodes));
        std::fs::write(&path, format!("id {}\nzz 127.0.0.1:1\n", NodeId([1; 20]))).unwrap();
        let error = read_state(&path).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }
}
