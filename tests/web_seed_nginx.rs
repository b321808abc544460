//! Web seeds (BEP 19 "WebSeed - HTTP/FTP Seeding (GetRight style)") served by a real HTTP
//! server, nginx (Debian `nginx-light`), on 127.0.0.1 with a configuration of its own in a
//! temporary directory, stopped by PID:
//!
//! - a torrent whose only source is a web seed downloads byte-identical, single-file (the URL
//!   a folder, the name added) and multi-file (names with spaces and letters outside ASCII,
//!   pieces that span files);
//! - a web seed and a libtorrent seeder share the work: nginx's access log and peerwire's
//!   wire trace both show blocks;
//! - a web seed that serves a copy with every byte flipped is banned, and libtorrent finishes;
//! - `--no-web-seeds`: nothing asked of nginx;
//! - a magnet link with `ws=`, the metadata from a libtorrent peer that has no data: every
//!   byte comes from the web seed.
//!
//! nginx missing: the tests skip loudly, unless `PEERWIRE_INTEROP=require`.

pub mod common;

use common::{
    Killed, LibtorrentPeer, assert_bytes, create_torrent, download_from, free_port, need_program,
    peerwire, pseudo_random, run_with_deadline, wait_for_tcp,
};
use peerwire::trace::Direction;
use peerwire::wire::Message;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(120);

/// nginx serving `root` on 127.0.0.1, one process (`master_process off`), every path it
/// writes inside its own temporary directory; killed by PID when dropped.
struct Nginx {
    port: u16,
    dir: tempfile::TempDir,
    _process: Killed,
}

impl Nginx {
    /// `server` is added inside the `server { }` block (e.g. `limit_rate 1m;`).
    fn start(root: &Path, server: &str) -> Option<Nginx> {
        let nginx = need_program("/usr/sbin/nginx")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        // Temp paths for every module that has one, or nginx reaches for /var/lib/nginx; `user
        // root` is what lets it run as root in CI (as another user the line is ignored).
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nuser root;\n\
             pid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               log_format ranges escape=none '$status $request_method \"$uri\" \"$http_range\" $body_bytes_sent';\n\
               access_log {d}/access.log ranges;\n\
               client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
               server {{ listen 127.0.0.1:{port}; root {root}; {server} }}\n\
             }}\n",
            root = root.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let process = Killed(child);
        wait_for_tcp(port, Duration::from_secs(20), "nginx");
        Some(Nginx {
            port,
            dir,
            _process: process,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The access log: one line per request, `STATUS METHOD "URI" "RANGE" BYTES`.
    fn access_log(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        log.lines().map(str::to_string).collect()
    }

    /// The lines of answers with a body: 206 (or 200), bytes sent.
    fn served(&self) -> Vec<String> {
        self.access_log()
            .into_iter()
            .filter(|l| (l.starts_with("206 ") || l.starts_with("200 ")) && !l.ends_with(" 0"))
            .collect()
    }
}

/// The .torrent at `torrent` with a `url-list` added (after `info`, the last key `peerwire
/// create` writes; the info hash is unchanged).
fn with_url_list(torrent: &Path, urls: &[String]) -> PathBuf {
    let mut bytes = std::fs::read(torrent).unwrap();
    assert_eq!(bytes.pop(), Some(b'e'), "a torrent is a dictionary");
    bytes.extend_from_slice(b"8:url-listl");
    for url in urls {
        bytes.extend_from_slice(format!("{}:{url}", url.len()).as_bytes());
    }
    bytes.extend_from_slice(b"ee");
    let out = torrent.with_extension("web.torrent");
    std::fs::write(&out, bytes).unwrap();
    out
}

/// A single-file torrent of `size` bytes named "leçon 1.bin", its file also under
/// `www/files/` for nginx; returns (the content, the torrent without url-list).
fn single_file(dir: &Path, size: usize, piece: u32) -> (PathBuf, PathBuf) {
    let name = "leçon 1.bin";
    let seed = dir.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    let content = seed.join(name);
    std::fs::write(&content, pseudo_random(size, 19)).unwrap();
    let www = dir.join("www/files");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::copy(&content, www.join(name)).unwrap();
    let torrent = dir.join("lesson.torrent");
    create_torrent(&content, &torrent, &["--piece-length", &piece.to_string()]);
    (content, torrent)
}

#[test]
fn a_web_seed_alone_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = single_file(dir.path(), 3 * 1024 * 1024 + 4321, 65536);
    let Some(nginx) = Nginx::start(&dir.path().join("www"), "") else {
        return;
    };
    // The URL ends in `/`: the torrent's name is added (BEP 19).
    let torrent = with_url_list(&torrent, &[nginx.url("/files/")]);
    let out = dir.path().join("out.bin");
    download_from(&[], &torrent, &out)
        .args(&["--no-dht"])
        .expect_bytes(&std::fs::read(&content).unwrap());
    let served = nginx.served();
    assert!(
        served
            .iter()
            .all(|l| l.contains("\"/files/leçon 1.bin\"") && l.starts_with("206 ")),
        "{served:#?}"
    );
}

#[test]
fn a_web_seed_alone_multi_file() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("seed").join("web set");
    let files: [(&str, usize); 3] = [
        ("a file.bin", 1_000_003),
        ("süb/日本 語.bin", 777_777),
        ("z.txt", 1_234_567),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        let path = set.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, pseudo_random(*len, 40 + i as u64)).unwrap();
    }
    // BEP 19: the URL is a folder holding `name/path`.
    let www = dir.path().join("www");
    let pub_dir = www.join("pub").join("web set");
    for (name, _) in files {
        let to = pub_dir.join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(set.join(name), to).unwrap();
    }
    let torrent = dir.path().join("set.torrent");
    create_torrent(&set, &torrent, &["--piece-length", "32768"]);
    let Some(nginx) = Nginx::start(&www, "") else {
        return;
    };
    let torrent = with_url_list(&torrent, &[nginx.url("/pub/")]);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    download_from(&[], &torrent, &out)
        .args(&["--no-dht"])
        .run()
        .assert_success();
    for (name, _) in files {
        let expected = std::fs::read(set.join(name)).unwrap();
        assert_bytes(&out.join("web set").join(name), &expected, name);
    }
    // Every file was asked for by its real name, percent-encoded on the way (nginx logs the
    // decoded URI), with ranges only.
    let log = nginx.access_log();
    for (name, _) in files {
        let uri = format!("\"/pub/web set/{name}\"");
        assert!(log.iter().any(|l| l.contains(&uri)), "no {uri}: {log:#?}");
    }
    assert!(log.iter().all(|l| l.starts_with("206 ")), "{log:#?}");
}

/// A libtorrent seeder of `torrent` from `content`'s folder, started (ready for dials).
fn libtorrent_seeder(torrent: &Path, content: &Path) -> Option<LibtorrentPeer> {
    let mut seeder = LibtorrentPeer::start(torrent, content.parent().unwrap(), true)?;
    seeder.wait_until_started(Duration::from_secs(20));
    Some(seeder)
}

#[test]
fn a_web_seed_and_a_libtorrent_peer_share_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = single_file(dir.path(), 8 * 1024 * 1024, 65536);
    let Some(seeder) = libtorrent_seeder(&torrent, &content) else {
        return;
    };
    // nginx slowed to 1 MB/s a connection, so that the fast local peer has a share to take.
    let Some(nginx) = Nginx::start(&dir.path().join("www"), "limit_rate 1m;") else {
        return;
    };
    let torrent = with_url_list(&torrent, &[nginx.url("/files/")]);
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.port));
    let run = download_from(&[peer], &torrent, &dir.path().join("out.bin"))
        .args(&["--no-dht", "--trace"])
        .expect_bytes(&std::fs::read(&content).unwrap());
    let from_peer = common::traced_messages(&run.trace(), Direction::Received)
        .filter(|(p, m)| *p == peer && matches!(m, Message::Piece { .. }))
        .count();
    let served = nginx.served();
    let bytes_from_web: u64 = served
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    eprintln!(
        "shared: {from_peer} blocks from libtorrent, {bytes_from_web} bytes in {} range answers from nginx",
        served.len()
    );
    assert!(from_peer > 0, "libtorrent sent no block");
    assert!(
        bytes_from_web > 0,
        "nginx served nothing: {:#?}",
        nginx.access_log()
    );
}

#[test]
fn a_lying_web_seed_is_banned_and_libtorrent_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = single_file(dir.path(), 4 * 1024 * 1024, 16384);
    // nginx's copy has every byte flipped: right length, wrong bytes.
    let copy = dir.path().join("www/files/leçon 1.bin");
    let flipped: Vec<u8> = std::fs::read(&copy).unwrap().iter().map(|b| !b).collect();
    std::fs::write(&copy, flipped).unwrap();
    let Some(seeder) = libtorrent_seeder(&torrent, &content) else {
        return;
    };
    let Some(nginx) = Nginx::start(&dir.path().join("www"), "") else {
        return;
    };
    let torrent = with_url_list(&torrent, &[nginx.url("/files/")]);
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.port));
    let run = download_from(&[peer], &torrent, &dir.path().join("out.bin"))
        .args(&["--no-dht"])
        .expect_bytes(&std::fs::read(&content).unwrap());
    let banned = format!("{}: banned", nginx.addr());
    assert!(
        run.stderr.lines().any(|l| l.contains(&banned)),
        "no {banned:?}:\n{}",
        run.stderr
    );
    let summary = run
        .stderr
        .lines()
        .find(|l| l.starts_with("done:"))
        .unwrap_or_default();
    assert!(summary.ends_with(" 1 peers banned"), "{summary}");
}

#[test]
fn no_web_seeds_asks_nothing_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = single_file(dir.path(), 1024 * 1024, 16384);
    let Some(seeder) = libtorrent_seeder(&torrent, &content) else {
        return;
    };
    let Some(nginx) = Nginx::start(&dir.path().join("www"), "") else {
        return;
    };
    let torrent = with_url_list(&torrent, &[nginx.url("/files/")]);
    let peer = SocketAddr::from(([127, 0, 0, 1], seeder.port));
    download_from(&[peer], &torrent, &dir.path().join("out.bin"))
        .args(&["--no-dht", "--no-web-seeds"])
        .expect_bytes(&std::fs::read(&content).unwrap());
    assert_eq!(nginx.access_log(), Vec::<String>::new());
}

#[test]
fn a_magnet_link_with_ws_uses_the_web_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = single_file(dir.path(), 2 * 1024 * 1024, 32768);
    // libtorrent has the torrent (so the metadata) but none of the data.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let Some(holder) = LibtorrentPeer::start(&torrent, &empty, false) else {
        return;
    };
    let Some(nginx) = Nginx::start(&dir.path().join("www"), "") else {
        return;
    };
    let info_hash = peerwire::metainfo::Metainfo::from_file(&torrent)
        .unwrap()
        .info_hash;
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=lesson&ws={}&x.pe=127.0.0.1:{}",
        info_hash.to_hex(),
        common::percent_encode(&nginx.url("/files/")),
        holder.port
    );
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut command = peerwire();
    command
        .args(["download", "-o"])
        .arg(&out)
        .arg(&magnet)
        .args(["--port", "0", "--no-dht", "--give-up-after", "60"]);
    let output = run_with_deadline(&mut command, DEADLINE);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_bytes(
        &out.join("leçon 1.bin"),
        &std::fs::read(&content).unwrap(),
        "the file from the magnet's web seed",
    );
    assert!(!nginx.served().is_empty(), "{:#?}", nginx.access_log());
}

/// v2-only and hybrid torrents (BEP 52) put each file at a piece boundary: the gaps are padding
/// entries that no server holds. The web seed fills them with zeros, asks only for the real
/// files, and the pieces pass their v2 (Merkle) or v1 checks.
#[test]
fn v2_and_hybrid_torrents_from_a_web_seed() {
    for version in ["--v2", "--hybrid"] {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("seed").join("aligned");
        let files: [(&str, usize); 3] =
            [("one.bin", 50_001), ("two.bin", 70_000), ("three.bin", 5)];
        let www = dir.path().join("www").join("aligned");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::create_dir_all(&set).unwrap();
        for (i, (name, len)) in files.iter().enumerate() {
            let bytes = pseudo_random(*len, 80 + i as u64);
            std::fs::write(set.join(name), &bytes).unwrap();
            std::fs::write(www.join(name), &bytes).unwrap();
        }
        let torrent = dir.path().join("aligned.torrent");
        create_torrent(&set, &torrent, &["--piece-length", "32768", version]);
        let Some(nginx) = Nginx::start(&dir.path().join("www"), "") else {
            return;
        };
        let torrent = with_url_list(&torrent, &[nginx.url("/")]);
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        download_from(&[], &torrent, &out)
            .args(&["--no-dht"])
            .run()
            .assert_success();
        for (name, _) in files {
            let expected = std::fs::read(set.join(name)).unwrap();
            assert_bytes(
                &out.join("aligned").join(name),
                &expected,
                &format!("{version} {name}"),
            );
        }
        let log = nginx.access_log();
        assert!(
            log.iter().all(|l| l.starts_with("206 ")),
            "{version}: {log:#?}"
        );
    }
}
