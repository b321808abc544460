//! The node's rules, fed bytes by hand: answers, the bad-input rows of `docs/security.md`, and
//! a whole DHT of nodes in memory, with simulated time.

use super::*;
use crate::dht::serve::QUERIES_PER_SECOND;
use crate::dht::store::VALUES_PER_REPLY;
use crossbeam_channel::unbounded;
use std::net::Ipv4Addr;

fn addr(last: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, last), port)
}

fn id(byte: u8) -> NodeId {
    NodeId([byte; 20])
}

/// Feeds one query from `from` and returns the single reply, decoded.
fn ask(node: &mut Node, from: SocketAddrV4, query: Query, now: Instant) -> Message {
    let sender = NodeId([0xEE; 20]);
    let bytes = Message::query(b"aa".to_vec(), sender, query).encode();
    node.handle_datagram(SocketAddr::V4(from), &bytes, now);
    let mut out = node.take_outgoing();
    assert_eq!(out.len(), 1, "one reply");
    let (to, reply) = out.remove(0);
    assert_eq!(to, from, "the reply goes back to the sender");
    Message::decode(&reply).expect("our reply decodes")
}

fn error_code(message: &Message) -> Option<i64> {
    match &message.body {
        Body::Error { code, .. } => Some(*code),
        _ => None,
    }
}

fn response(message: Message) -> Response {
    match message.body {
        Body::Response(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[test]
fn ping_is_answered_with_our_id() {
    let now = Instant::now();
    let mut node = Node::new(id(1), Vec::new(), false, now);
    let reply = ask(&mut node, addr(2, 6881), Query::Ping, now);
    assert_eq!(reply.transaction, b"aa");
    assert_eq!(response(reply).id, id(1));
}

#[test]
fn an_unreadable_query_gets_error_203_and_garbage_gets_nothing() {
    let now = Instant::now();
    let mut node = Node::new(id(1), Vec::new(), false, now);
    let from = SocketAddr::V4(addr(2, 6881));
    // A query (y = q, with a transaction id) whose arguments have no id.
    node.handle_datagram(
        from,
        b"d1:ad6:target20:aaaaaaaaaaaaaaaaaaaae1:q9:find_node1:t2:xy1:y1:qe",
        now,
    );
    let out = node.take_outgoing();
    assert_eq!(out.len(), 1);
    let reply = Message::decode(&out[0].1).unwrap();
    assert_eq!(reply.transaction, b"xy");
    assert_eq!(error_code(&reply), Some(krpc::ERROR_PROTOCOL));
    // Not even a dictionary: dropped, counted.
    node.handle_datagram(from, b"d1:xi", now);
    assert!(node.take_outgoing().is_empty());
    assert_eq!(node.stats.malformed, 2);
}

#[test]
fn an_unknown_method_gets_error_204() {
    let now = Instant::now();
    let mut node = Node::new(id(1), Vec::new(), false, now);
    let method = "sample_infohashes".to_string();
    let reply = ask(&mut node, addr(2, 6881), Query::Unknown { method }, now);
    assert_eq!(error_code(&reply), Some(krpc::ERROR_METHOD_UNKNOWN));
}

#[test]
fn a_reply_to_no_query_of_ours_changes_nothing() {
    let now = Instant::now();
    let mut node = Node::new(id(1), Vec::new(), false, now);
    let (reply, answer) = unbounded();
    node.command(
        Command::Ping {
            addr: addr(2, 6881),
            reply,
        },
        now,
    );
    let (_, query) = node.take_outgoing().remove(0);
    let transaction = Message::decode(&query).unwrap().transaction;
    let pong = |t: Vec<u8>| {
        Message::response(
            t,
            Response {
                id: id(2),
                nodes: Vec::new(),
                values: Vec::new(),
                token: None,
            },
        )
        .encode()
    };
    // A wrong transaction id, then the right one from another address: both stray.
    node.handle_datagram(SocketAddr::V4(addr(2, 6881)), &pong(b"zz".to_vec()), now);
    node.handle_datagram(
        SocketAddr::V4(addr(3, 6881)),
        &pong(transaction.clone()),
        now,
    );
    assert_eq!(node.stats.stray, 2);
    assert!(node.table().is_empty(), "no node entered the table");
    assert!(answer.try_recv().is_err());
    // The real answer still counts.
    node.handle_datagram(SocketAddr::V4(addr(2, 6881)), &pong(transaction), now);
    assert_eq!(answer.try_recv().unwrap(), Ok(id(2)));
    assert_eq!(node.table().len(), 1);
}

#[test]
fn announce_needs_our_token_for_that_address_and_a_port() {
    let now = Instant::now();
    let mut node = Node::new(id(1), Vec::new(), false, now);
    let hash = InfoHash([9; 20]);
    let from = addr(2, 7000);
    let got = response(ask(
        &mut node,
        from,
        Query::GetPeers { info_hash: hash },
        now,
    ));
    let token = got.token.expect("get_peers gives a token");
    let announce = |token: Vec<u8>, port, implied_port| Query::AnnouncePeer {
        info_hash: hash,
        port,
        implied_port,
        token,
    };
    // Forged, or given to another address: refused.
    let forged = ask(
        &mut node,
        from,
        announce(b"forged!!".to_vec(), 6881, false),
        now,
    );
    assert_eq!(error_code(&forged), Some(krpc::ERROR_PROTOCOL));
    let stolen = ask(
        &mut node,
        addr(3, 7000),
        announce(token.clone(), 6881, false),
        now,
    );
    assert_eq!(error_code(&stolen), Some(krpc::ERROR_PROTOCOL));
    // Port 0 is no address.
    let zero = ask(&mut node, from, announce(token.clone(), 0, false), now);
    assert_eq!(error_code(&zero), Some(krpc::ERROR_PROTOCOL));
    // Accepted: stored at the sender's own IP; implied_port takes the port it sent from.
    assert!(error_code(&ask(&mut node, from, announce(token.clone(), 0, true), now)).is_none());
    let peers = response(ask(
        &mut node,
        addr(4, 1),
        Query::GetPeers { info_hash: hash },
        now,
    ));
    assert_eq!(peers.values, vec![from]);
    // Expired: two rotations later (more than 10 minutes) the token is worthless.
    let later = now + Duration::from_secs(11 * 60);
    let expired = ask(&mut node, from, announce(token, 6881, false), later);
    assert_eq!(error_code(&expired), Some(krpc::ERROR_PROTOCOL));
}

#[test]
fn a_flood_from_one_address_is_answered_only_up_to_the_limit() {
    let now = Instant::now();
    let mut node = Node::new(id(1), Vec::new(), false, now);
    let ping = Message::query(b"aa".to_vec(), id(2), Query::Ping).encode();
    for _ in 0..1_000 {
        node.handle_datagram(SocketAddr::V4(addr(2, 6881)), &ping, now);
    }
    assert_eq!(node.take_outgoing().len(), QUERIES_PER_SECOND as usize);
    assert_eq!(node.stats.rate_limited, 1_000 - QUERIES_PER_SECOND as u64);
    // Another address is not punished for it, and the next second starts afresh.
    node.handle_datagram(SocketAddr::V4(addr(3, 6881)), &ping, now);
    node.handle_datagram(
        SocketAddr::V4(addr(2, 6881)),
        &ping,
        now + Duration::from_secs(1),
    );
    assert_eq!(node.take_outgoing().len(), 2);
}

#[test]
fn a_get_peers_reply_stays_small_however_many_peers_are_stored() {
    let now = Instant::now();
    let mut node = Node::new(id(1), Vec::new(), false, now);
    let hash = InfoHash([9; 20]);
    // 200 peers announce themselves, each from its own address.
    for i in 0..200u32 {
        let [_, _, c, d] = (i + 256).to_be_bytes();
        let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, c, d), 6881);
        let token = response(ask(
            &mut node,
            from,
            Query::GetPeers { info_hash: hash },
            now,
        ))
        .token;
        let query = Query::AnnouncePeer {
            info_hash: hash,
            port: 6881,
            implied_port: false,
            token: token.unwrap(),
        };
        assert!(error_code(&ask(&mut node, from, query, now)).is_none());
    }
    let query = Message::query(b"aa".to_vec(), id(2), Query::GetPeers { info_hash: hash });
    let sent = query.encode().len();
    node.handle_datagram(SocketAddr::V4(addr(2, 1)), &query.encode(), now);
    let (_, reply) = node.take_outgoing().remove(0);
    assert_eq!(
        response(Message::decode(&reply).unwrap()).values.len(),
        VALUES_PER_REPLY
    );
    // A few hundred bytes for a query of about a hundred: nobody gains much by aiming our
    // replies at someone else.
    assert!(
        reply.len() < 8 * sent,
        "{} bytes in reply to {sent}",
        reply.len()
    );
}

/// A DHT in memory: every node at its own 127.0.0.x, datagrams delivered at once, time
/// moved by hand.
struct Network {
    nodes: Vec<(SocketAddrV4, Node)>,
    now: Instant,
}

impl Network {
    fn new(count: u8) -> Network {
        let now = Instant::now();
        let first = addr(1, 6881);
        let nodes = (1..=count)
            .map(|i| {
                let a = addr(i, 6881);
                // Everyone bootstraps from the first node (which has no one to ask).
                let bootstrap = if i == 1 { Vec::new() } else { vec![first] };
                (a, Node::new(NodeId::generate(), bootstrap, false, now))
            })
            .collect();
        Network { nodes, now }
    }

    /// Ticks every node and delivers every datagram until none is left; time moves 100 ms
    /// per round.
    fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.now += Duration::from_millis(100);
            let now = self.now;
            let mut mail = Vec::new();
            for (from, node) in &mut self.nodes {
                node.tick(now);
                mail.extend(
                    node.take_outgoing()
                        .into_iter()
                        .map(|(to, b)| (*from, to, b)),
                );
            }
            while !mail.is_empty() {
                for (from, to, bytes) in std::mem::take(&mut mail) {
                    if let Some((_, node)) = self.nodes.iter_mut().find(|(a, _)| *a == to) {
                        node.handle_datagram(SocketAddr::V4(from), &bytes, now);
                        mail.extend(node.take_outgoing().into_iter().map(|(t, b)| (to, t, b)));
                    }
                }
            }
        }
    }
}

#[test]
fn a_lookup_in_a_network_of_30_finds_the_announced_peer() {
    let mut net = Network::new(30);
    net.run(50); // bootstrap: every node finds its way in
    assert!(net.nodes.iter().all(|(_, n)| !n.table().is_empty()));
    // Node 7 seeds: it tracks the torrent with a port, and announces after its lookup.
    let hash = InfoHash([0x42; 20]);
    let (peers, _ignored) = unbounded();
    let track = Command::Track {
        info_hash: hash,
        announce_port: Some(51413),
        peers,
    };
    let now = net.now;
    net.nodes[7].1.command(track, now);
    net.run(50);
    // Node 23 looks it up and finds node 7's address.
    let (events, steps) = unbounded();
    net.nodes[23].1.command(
        Command::GetPeers {
            info_hash: hash,
            events,
        },
        now,
    );
    net.run(50);
    let done = steps.try_iter().find_map(|e| match e {
        LookupEvent::Done { peers, queries } => Some((peers, queries)),
        _ => None,
    });
    let (found, queries) = done.expect("the lookup finished");
    assert_eq!(
        found,
        vec![SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 8), 51413)]
    );
    assert!(queries <= 30, "{queries} queries");
}
