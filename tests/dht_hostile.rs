//! A hostile DHT neighbour (BEP 5): bytes that are not KRPC, oversized datagrams, a flood of
//! queries, forged and misused tokens, replies nobody asked for — sent over a real UDP socket to
//! a running `peerwire dht_node`. Each is ignored or answered with a KRPC error, the replies stay
//! small and few, and afterwards the node still answers everyone else. (The same rules are
//! unit-tested inside, in `src/dht/node/tests.rs`; this is the program as it runs.)

pub mod common;

use common::{DhtNode, KrpcProbe, free_port};
use peerwire::dht::NodeId;
use peerwire::dht::krpc::{Body, ERROR_PROTOCOL, Message, Query, Response};
use peerwire::dht::serve::QUERIES_PER_SECOND;
use peerwire::metainfo::InfoHash;
use std::net::Ipv4Addr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(2);

fn query(transaction: &[u8], q: Query) -> Vec<u8> {
    Message::query(transaction.to_vec(), NodeId([0x11; 20]), q).encode()
}

fn error_code(m: &Message) -> Option<i64> {
    match &m.body {
        Body::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[test]
fn a_hostile_neighbour_gets_errors_or_silence_and_the_node_lives_on() {
    let node = DhtNode::start(Ipv4Addr::new(127, 0, 0, 40), free_port(), &[]);
    let probe = KrpcProbe::bind(Ipv4Addr::new(127, 0, 0, 41));

    // Not KRPC at all, and a datagram far larger than any KRPC message: silence.
    probe.send(node.addr, b"d1:ad2:id20:");
    probe.send(node.addr, &[b'd'; 60_000]);
    probe.send(node.addr, b"GET / HTTP/1.1\r\n\r\n");
    assert!(probe.replies_within(Duration::from_millis(300)).is_empty());

    // A reply to a query the node never sent: ignored.
    let stray = Response {
        id: NodeId([0x22; 20]),
        nodes: Vec::new(),
        values: Vec::new(),
        token: Some(b"tok".to_vec()),
    };
    probe.send(
        node.addr,
        &Message::response(b"zz".to_vec(), stray).encode(),
    );
    assert!(probe.replies_within(Duration::from_millis(300)).is_empty());

    // announce_peer with a forged token, and with our real token but port 0: error 203.
    let hash = InfoHash([0x33; 20]);
    let forged = Query::AnnouncePeer {
        info_hash: hash,
        port: 6881,
        implied_port: false,
        token: b"forged".to_vec(),
    };
    probe.send(node.addr, &query(b"f1", forged));
    let reply = probe.reply(WAIT).expect("an answer to the forged announce");
    assert_eq!(error_code(&reply), Some(ERROR_PROTOCOL), "{reply:?}");
    probe.send(
        node.addr,
        &query(b"g1", Query::GetPeers { info_hash: hash }),
    );
    let token = match probe.reply(WAIT).map(|m| m.body) {
        Some(Body::Response(r)) => r.token.expect("get_peers hands out a token"),
        other => panic!("no get_peers answer: {other:?}"),
    };
    let zero = Query::AnnouncePeer {
        info_hash: hash,
        port: 0,
        implied_port: false,
        token,
    };
    probe.send(node.addr, &query(b"z1", zero));
    let reply = probe.reply(WAIT).expect("an answer to the port-0 announce");
    assert_eq!(error_code(&reply), Some(ERROR_PROTOCOL), "{reply:?}");

    // A flood of 500 pings in one burst: at most the per-second limit is answered (plus one
    // more second's worth if the burst straddles a second), each reply a small datagram.
    let ping = query(b"pp", Query::Ping);
    for _ in 0..500 {
        probe.send(node.addr, &ping);
    }
    let answered = probe.replies_within(Duration::from_millis(1500));
    assert!(
        !answered.is_empty() && answered.len() <= 2 * QUERIES_PER_SECOND as usize,
        "{} of 500 pings answered",
        answered.len()
    );

    // Another address is not punished for the flood: the node is alive and answers.
    let other = KrpcProbe::bind(Ipv4Addr::new(127, 0, 0, 42));
    other.send(node.addr, &query(b"ok", Query::Ping));
    match other.reply(WAIT).map(|m| m.body) {
        Some(Body::Response(r)) => assert_eq!(r.id, node.id),
        other => panic!("the node no longer answers: {other:?}"),
    }
}
