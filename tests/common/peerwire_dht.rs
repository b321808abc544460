//! peerwire's DHT as a separate program: `peerwire dht_node` on its own 127.0.0.x, and the
//! KRPC a test sends it by hand from a UDP socket of its own.

use super::{Killed, lines_of, peerwire};
use peerwire::dht::NodeId;
use peerwire::dht::krpc::{Body, Message};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A running `peerwire dht_node`, killed (by PID) when dropped.
pub struct DhtNode {
    pub id: NodeId,
    pub addr: SocketAddrV4,
    _process: Killed,
}

impl DhtNode {
    /// `peerwire dht_node --bind IP --port PORT --dht-bootstrap B...`; returns once it printed
    /// where it listens.
    pub fn start(ip: Ipv4Addr, port: u16, bootstrap: &[SocketAddrV4]) -> DhtNode {
        let mut command = peerwire();
        command
            .args([
                "dht_node",
                "--bind",
                &ip.to_string(),
                "--port",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for b in bootstrap {
            command.args(["--dht-bootstrap", &b.to_string()]);
        }
        let mut child = command.spawn().expect("start peerwire dht_node");
        let lines = lines_of(child.stdout.take().expect("piped stdout"));
        let process = Killed(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut id = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("dht_node on {ip}:{port} printed no address"));
            if let Some(hex) = line.strip_prefix("Node ID: ") {
                id = NodeId::from_hex(hex);
            }
            if let Some(addr) = line.strip_prefix("Listening: ") {
                return DhtNode {
                    id: id.expect("the id comes first"),
                    addr: addr.parse().expect("an ip:port"),
                    _process: process,
                };
            }
        }
    }
}

/// A UDP socket on `ip` that speaks KRPC by hand.
pub struct KrpcProbe {
    pub socket: UdpSocket,
}

impl KrpcProbe {
    pub fn bind(ip: Ipv4Addr) -> KrpcProbe {
        let socket = UdpSocket::bind((ip, 0)).expect("bind a probe socket");
        KrpcProbe { socket }
    }

    pub fn send(&self, to: SocketAddrV4, bytes: &[u8]) {
        self.socket.send_to(bytes, to).expect("send a datagram");
    }

    /// Every reply (response or error) that arrives within `wait`. Queries the node sends us
    /// (a node pings an address that asked it something, to see whether it answers) are not
    /// replies and are skipped; anything that is not KRPC fails the test (peerwire sends only
    /// KRPC).
    pub fn replies_within(&self, wait: Duration) -> Vec<Message> {
        let until = Instant::now() + wait;
        let mut replies = Vec::new();
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(message) => replies.push(message),
                None => break,
            }
        }
        replies
    }

    /// The first reply, waiting up to `wait`.
    pub fn reply(&self, wait: Duration) -> Option<Message> {
        self.next(wait)
    }

    fn next(&self, wait: Duration) -> Option<Message> {
        let until = Instant::now() + wait;
        let mut buffer = [0u8; 4096];
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            let _ = self
                .socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            let (n, _) = self.socket.recv_from(&mut buffer).ok()?;
            let message = Message::decode(&buffer[..n]).expect("KRPC from peerwire");
            if !matches!(message.body, Body::Query { .. }) {
                return Some(message);
            }
        }
    }
}
