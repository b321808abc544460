//! Trackers for the tests: opentracker (a real C tracker, Debian package `opentracker`) and
//! peerwire's own built-in tracker, both on 127.0.0.1, HTTP and UDP (BEP 15); and a torrent
//! that announces to a fresh opentracker.

use super::{Killed, create_torrent, free_port, need_program, wait_for_tcp};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Waits until a UDP tracker on `port` answers a BEP 15 connect request, or panics at the
/// deadline. (A tracker may open its TCP port before its UDP socket.)
pub fn wait_for_udp_tracker(port: u16, deadline: Duration, what: &str) {
    use peerwire::tracker::udp_packet::{Request, Response};
    let until = Instant::now() + deadline;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    socket
        .connect(("127.0.0.1", port))
        .expect("connect the UDP socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set a timeout");
    let mut buf = [0u8; 64];
    loop {
        let _ = socket.send(&Request::Connect { transaction_id: 1 }.encode());
        if let Ok(n) = socket.recv(&mut buf)
            && matches!(
                Response::decode(&buf[..n], false),
                Ok(Response::Connect {
                    transaction_id: 1,
                    ..
                })
            )
        {
            return;
        }
        assert!(
            Instant::now() < until,
            "{what} did not answer on UDP port {port} within {deadline:?}"
        );
        // A refused send (nothing bound yet) returns at once: pause before the next try.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// opentracker (Debian package `opentracker`) on a free port, HTTP and UDP, whitelisting the
/// given info hashes (the Debian build runs in whitelist mode). Stopped when dropped.
pub struct OpenTracker {
    pub port: u16,
    _dir: tempfile::TempDir,
    _process: Killed,
}

impl OpenTracker {
    pub fn start(info_hashes: &[String]) -> Option<OpenTracker> {
        let program = need_program("opentracker")?;
        let dir = tempfile::tempdir().expect("temp dir");
        // opentracker drops to `nobody` and chroots into its rootdir: it must be readable.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::write(dir.path().join("wl.txt"), info_hashes.join("\n") + "\n")
            .expect("whitelist");
        let config = dir.path().join("opentracker.conf");
        std::fs::write(
            &config,
            format!(
                "tracker.rootdir {}\naccess.whitelist /wl.txt\n",
                dir.path().display()
            ),
        )
        .expect("config");
        for _attempt in 0..5 {
            let port = free_port();
            let (p, conf) = (port.to_string(), &config);
            let child = Command::new(&program)
                .args(["-i", "127.0.0.1", "-p", &p, "-P", &p, "-u", "nobody", "-f"])
                .arg(conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start opentracker");
            let mut process = Killed(child);
            wait_for_tcp(port, Duration::from_secs(10), "opentracker");
            // Another test may have taken the port between our check and the bind: then ours
            // has exited, and what answers on the port is somebody else's tracker.
            if process.0.try_wait().expect("opentracker status").is_some() {
                continue;
            }
            wait_for_udp_tracker(port, Duration::from_secs(10), "opentracker");
            let tracker = OpenTracker {
                port,
                _dir: dir,
                _process: process,
            };
            if let Some(first) = info_hashes.first() {
                tracker.wait_for_whitelist(first, Duration::from_secs(10));
            }
            return Some(tracker);
        }
        panic!("opentracker could not get a free port in 5 tries");
    }

    /// opentracker reads its whitelist in the background after opening its ports: wait until
    /// it accepts `info_hash`. The probe announces a seeder on port 1, then removes it again
    /// with `stopped` (opentracker may not check the whitelist for `stopped` alone).
    fn wait_for_whitelist(&self, info_hash_hex: &str, deadline: Duration) {
        use peerwire::tracker::{AnnounceRequest, Event, Tracker, TrackerConfig};
        let bytes: Vec<u8> = (0..20)
            .map(|i| u8::from_str_radix(&info_hash_hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect();
        let request = AnnounceRequest {
            info_hash: peerwire::metainfo::InfoHash(bytes.try_into().expect("20 bytes")),
            peer_id: peerwire::peer_id::PeerId::generate(),
            port: 1,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: Event::Started,
            numwant: Some(0),
            key: 0,
        };
        let until = Instant::now() + deadline;
        let mut tracker =
            Tracker::new(&self.http_url(), TrackerConfig::default()).expect("http tracker");
        while let Err(e) = tracker.announce(&request) {
            assert!(
                Instant::now() < until,
                "opentracker never accepted {info_hash_hex}: {e}"
            );
            std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
        }
        let stopped = AnnounceRequest {
            event: Event::Stopped,
            ..request
        };
        // opentracker under load may reset a connection now and then: retry until the deadline.
        while let Err(e) = tracker.announce(&stopped) {
            assert!(
                Instant::now() < until,
                "opentracker never took the probe's stopped: {e}"
            );
            std::thread::sleep(Duration::from_millis(50)); // poll interval while waiting for the event
        }
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    pub fn udp_url(&self) -> String {
        format!("udp://127.0.0.1:{}/announce", self.port)
    }
}

/// A torrent of `content` (pieces of `piece_length`) at `torrent`, announcing to a fresh
/// opentracker that knows it. opentracker is told the info hashes it accepts when it starts, so a
/// tracker-less torrent is made first to learn the hash (the announce URL is outside `info` and
/// does not change it). Skips when opentracker is missing.
pub fn opentracker_torrent(
    content: &Path,
    torrent: &Path,
    piece_length: u32,
) -> Option<(OpenTracker, peerwire::metainfo::InfoHash)> {
    let plain = torrent.with_extension("plain.torrent");
    let piece_length = piece_length.to_string();
    create_torrent(content, &plain, &["--piece-length", &piece_length]);
    let info_hash = peerwire::metainfo::Metainfo::from_file(&plain)
        .expect("the torrent we made loads")
        .info_hash;
    let tracker = OpenTracker::start(&[info_hash.to_hex()])?;
    let url = tracker.http_url();
    create_torrent(
        content,
        torrent,
        &["--piece-length", &piece_length, "-t", &url],
    );
    Some((tracker, info_hash))
}

/// peerwire's built-in tracker on 127.0.0.1, HTTP and UDP on free ports.
pub fn local_tracker(interval: Duration) -> peerwire::tracker_server::RunningTracker {
    use peerwire::tracker_server::{RunningTracker, ServerConfig};
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    RunningTracker::start(ServerConfig {
        http: Some(any),
        udp: Some(any),
        interval,
    })
    .expect("the built-in tracker starts")
}
