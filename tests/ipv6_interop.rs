//! IPv6 against a real client: libtorrent (python3-libtorrent) listening on the IPv6 loopback
//! `[::1]`, and peerwire on its default `--bind ::`, one dual-stack socket for both families.
//!
//! - peerwire downloads from a libtorrent seeder it is given as `--peer [::1]:PORT`;
//! - a libtorrent leecher on `[::1]` downloads from `peerwire seed`;
//! - PEX (BEP 11): peerwire learns a libtorrent seeder's IPv6 address from another libtorrent
//!   peer's `ut_pex` message (`added6`), and connects to it;
//! - trackers (BEP 7): a libtorrent seeder announces to peerwire's built-in tracker over IPv6;
//!   `peerwire peers` gets its address as an 18-byte `peers6` entry (HTTP) and as an 18-byte
//!   peer of a UDP answer (BEP 15 over IPv6), and `peerwire download` finds it that way.
//!
//! Each test needs `::1`. Where the system has no IPv6 the test skips loudly, saying so; under
//! `PEERWIRE_INTEROP=require` (CI, whose machine has `::1`) that is a failure instead.

pub mod common;

use common::{LibtorrentPeer, StderrLines, download_from, peerwire, run_ok, skip};
use std::net::{Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// For one step: a process to start, a connection to come up, a small download.
const STEP: Duration = Duration::from_secs(30);
/// For a whole download, or for PEX (libtorrent's first `ut_pex` comes a second after its
/// second connection, but a loaded machine is slow).
const DEADLINE: Duration = Duration::from_secs(90);

/// libtorrent's driver listens on the IPv6 loopback.
const ON_IPV6: [&str; 2] = ["--listen-ip", "::1"];

/// True when `[::1]` can be listened on; otherwise the test skips (or fails under
/// `PEERWIRE_INTEROP=require`) with the reason.
fn ipv6_loopback() -> bool {
    match std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(_) => true,
        Err(e) => {
            skip::<()>(&format!(
                "IPv6 is off on this machine: cannot listen on [::1] ({e})"
            ));
            false
        }
    }
}

/// `[::1]:port`.
fn v6(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv6Addr::LOCALHOST, port))
}

/// A single-file torrent of 4 MiB, no tracker: (dir, the file, the .torrent).
fn lesson() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = common::small_torrent(dir.path(), 4 << 20, 65_536);
    (dir, content, torrent)
}

fn parent(path: &Path) -> &Path {
    path.parent().expect("the content is in a directory")
}

#[test]
fn peerwire_downloads_from_a_libtorrent_seeder_at_an_ipv6_peer_address() {
    if !ipv6_loopback() {
        return;
    }
    let (dir, content, torrent) = lesson();
    let Some(mut seeder) = LibtorrentPeer::start_with(&torrent, parent(&content), true, &ON_IPV6)
    else {
        return;
    };
    seeder.wait_until_started(STEP);
    let out = dir.path().join("out.bin");
    let downloaded = download_from(&[v6(seeder.port)], &torrent, &out)
        .args(&["-v"])
        .expect_bytes(&std::fs::read(&content).unwrap());
    let connected = format!("[::1]:{}: connected", seeder.port);
    assert!(
        downloaded.stderr.contains(&connected),
        "no {connected:?} in the log:\n{}",
        downloaded.stderr
    );
}

#[test]
fn a_libtorrent_leecher_on_ipv6_downloads_from_peerwire_seed() {
    if !ipv6_loopback() {
        return;
    }
    let (dir, content, torrent) = lesson();
    // The default --bind: `[::]`, both families on one socket.
    let mut command = peerwire();
    command
        .args(["-v", "seed"])
        .arg(&torrent)
        .arg(&content)
        .args(["--port", &common::free_port().to_string(), "--no-dht"]);
    let mut seed = StderrLines::spawn(&mut command);
    let listening = seed.wait_for("listening for peers on ", STEP);
    let port: u16 = listening
        .rsplit("[::]:")
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("not the dual-stack [::] by default: {listening:?}"));
    let save = dir.path().join("libtorrent");
    std::fs::create_dir_all(&save).unwrap();
    let Some(mut leecher) = LibtorrentPeer::start_with(&torrent, &save, false, &ON_IPV6) else {
        return;
    };
    leecher.send(&format!("connect [::1]:{port}"));
    leecher.wait_for("finished", DEADLINE);
    common::assert_bytes(
        &save.join("lesson.bin"),
        &std::fs::read(&content).unwrap(),
        "libtorrent's copy",
    );
    // The seed saw it as an IPv6 peer: `[::1]:<its port>: connected`.
    let line = seed.wait_for(": connected, peer id", STEP);
    assert!(line.contains("] [::1]:"), "{line}");
    // The same socket takes IPv4: a handshake from 127.0.0.1 is logged as 127.0.0.1, not as
    // the mapped `::ffff:127.0.0.1` the dual-stack socket reports.
    let ipv4 = SocketAddr::from(([127, 0, 0, 1], port)).to_string();
    run_ok(peerwire().arg("handshake").arg(&torrent).arg(&ipv4), STEP);
    let line = seed.wait_for(": connected, peer id", STEP);
    assert!(line.contains("] 127.0.0.1:"), "{line}");
}

/// peerwire knows one peer, L (a libtorrent leecher on `[::1]`); L is connected to S (a
/// libtorrent seeder on `[::1]`); L's `ut_pex` lists S in `added6`, and peerwire connects to S.
#[test]
fn peerwire_learns_an_ipv6_peer_from_added6_and_connects_to_it() {
    if !ipv6_loopback() {
        return;
    }
    let (dir, content, torrent) = lesson();
    // S uploads slowly, so that L is still a leecher, with S and peerwire as peers, when its
    // first ut_pex goes out (about a second after its second connection: libtorrent's rule).
    let slow = ["--pex", "--upload-limit", "65536", ON_IPV6[0], ON_IPV6[1]];
    let Some(s) = LibtorrentPeer::start_with(&torrent, parent(&content), true, &slow) else {
        return;
    };
    let l_save = dir.path().join("l");
    std::fs::create_dir_all(&l_save).unwrap();
    let pex = ["--pex", ON_IPV6[0], ON_IPV6[1]];
    let Some(mut l) = LibtorrentPeer::start_with(&torrent, &l_save, false, &pex) else {
        return;
    };
    l.send(&format!("connect [::1]:{}", s.port));
    l.wait_for("peer_connected", STEP);
    let out = dir.path().join("out.bin");
    let mut command = peerwire();
    command
        .env("RUST_LOG", "peerwire=debug")
        .arg("download")
        .arg(&torrent)
        .arg("-o")
        .arg(&out)
        .args(["--port", "0", "--no-dht", "--peer", &v6(l.port).to_string()]);
    let mut peerwire = StderrLines::spawn(&mut command);
    // The torrent has no tracker and peerwire was told of L alone: S's listening address can
    // only have come from L's ut_pex.
    peerwire.wait_for(&format!("[::1]:{}: connected", s.port), DEADLINE);
    let from_l = format!("[::1]:{}: pex:", l.port);
    let pex_line = peerwire.seen.iter().find(|line| line.contains(&from_l));
    assert!(
        pex_line.is_some_and(|line| !line.contains("(0 IPv6")),
        "connected to S without an IPv6 address from L's ut_pex?\n{}",
        peerwire.seen.join("\n")
    );
}

/// peerwire's built-in tracker on `[::1]`, HTTP and UDP, with a libtorrent seeder on `[::1]`
/// that announced to it.
fn tracker_swarm() -> Option<(
    tempfile::TempDir,
    PathBuf,
    PathBuf,
    peerwire::tracker_server::RunningTracker,
    LibtorrentPeer,
)> {
    use peerwire::tracker_server::{RunningTracker, ServerConfig};
    let any = v6(0);
    let tracker = RunningTracker::start(ServerConfig {
        http: Some(any),
        udp: Some(any),
        interval: Duration::from_secs(60),
    })
    .expect("the built-in tracker starts on [::1]");
    let http = tracker.announce_url().expect("HTTP is on");
    let udp = tracker.udp_announce_url().expect("UDP is on");
    assert!(http.starts_with("http://[::1]:"), "{http}");
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = seed_dir.join("lesson.bin");
    std::fs::write(&content, common::pseudo_random(1 << 20, 11)).unwrap();
    // Two tiers: libtorrent announces to the first (HTTP); `peers` tries them in order.
    let torrent = dir.path().join("lesson.torrent");
    common::create_torrent(&content, &torrent, &["-t", &http, "-t", &udp]);
    let seeder = LibtorrentPeer::start_with(&torrent, &seed_dir, true, &ON_IPV6)?;
    seeder.wait_for("tracker_reply", STEP);
    Some((dir, content, torrent, tracker, seeder))
}

#[test]
fn peers6_from_the_built_in_tracker_over_http_and_udp_lead_to_a_libtorrent_seeder() {
    if !ipv6_loopback() {
        return;
    }
    let Some((dir, content, torrent, tracker, seeder)) = tracker_swarm() else {
        return;
    };
    let seeder_at = v6(seeder.port).to_string();
    // HTTP: `peers6`, 18 bytes a peer (BEP 7); printed as `[::1]:PORT`.
    let printed = run_ok(peerwire().arg("peers").arg(&torrent), STEP);
    assert!(
        printed.lines().any(|line| line == seeder_at),
        "{seeder_at} not among the peers over HTTP:\n{printed}"
    );
    // UDP: an IPv6 tracker answers with 18-byte peers (BEP 15); a torrent naming only it.
    let udp_only = dir.path().join("udp.torrent");
    let udp = tracker.udp_announce_url().expect("UDP is on");
    common::create_torrent(&content, &udp_only, &["-t", &udp]);
    let printed = run_ok(peerwire().arg("peers").arg(&udp_only), STEP);
    assert!(
        printed.lines().any(|line| line == seeder_at),
        "{seeder_at} not among the peers over UDP:\n{printed}"
    );
    // And a download that finds the seeder through the tracker alone.
    let out = dir.path().join("out.bin");
    let mut download = peerwire();
    download
        .arg("download")
        .arg(&torrent)
        .arg("-o")
        .arg(&out)
        .args(["--port", "0", "--no-dht", "--give-up-after", "60"]);
    run_ok(&mut download, DEADLINE);
    common::assert_bytes(&out, &std::fs::read(&content).unwrap(), "the download");
}

/// The other way: `peerwire seed` (P) dials L2, a libtorrent leecher on `[::1]`, and L1,
/// another, dials P. P's `ut_pex` round (once a minute, BEP 11) lists L2 to L1 in `added6`,
/// and L1 dials L2: nobody else could have told it where L2 listens.
///
/// P lists only peers it dialled: one that dialled P is known by its outgoing port, and
/// libtorrent 2.0.8 does not say its listening port (`p`) in the extended handshake it sends
/// when it dials (measured: `p` absent), so L1 is not listed to L2.
#[test]
fn libtorrent_dials_an_ipv6_peer_that_peerwire_listed_in_added6() {
    if !ipv6_loopback() {
        return;
    }
    let (dir, content, torrent) = lesson();
    let mut leechers = Vec::new();
    for name in ["l1", "l2"] {
        let save = dir.path().join(name);
        std::fs::create_dir_all(&save).unwrap();
        let pex = ["--pex", ON_IPV6[0], ON_IPV6[1]];
        let Some(leecher) = LibtorrentPeer::start_with(&torrent, &save, false, &pex) else {
            return;
        };
        leechers.push(leecher);
    }
    leechers[1].wait_until_started(STEP);
    // P uploads slowly, so that L1 and L2 are still leechers (a seed dials no seed) when P's
    // first ut_pex goes out, 60 s after it started.
    let mut command = peerwire();
    command
        .args(["-v", "seed"])
        .arg(&torrent)
        .arg(&content)
        .args(["--port", &common::free_port().to_string(), "--no-dht"])
        .args([
            "--max-upload-rate",
            "16",
            "--peer",
            &v6(leechers[1].port).to_string(),
        ]);
    let mut seed = StderrLines::spawn(&mut command);
    let listening = seed.wait_for("listening for peers on ", STEP);
    let port = listening
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse::<u16>().ok());
    let port = port.unwrap_or_else(|| panic!("no port in {listening:?}"));
    seed.wait_for(&format!("{}: connected", v6(leechers[1].port)), STEP);
    leechers[0].send(&format!("connect [::1]:{port}"));
    // The driver prints an endpoint as `ip:port`, IPv6 without brackets.
    let l2 = format!("peer_connected ::1:{}", leechers[1].port);
    leechers[0].wait_for(&l2, Duration::from_secs(120));
}
