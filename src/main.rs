//! The `peerwire` binary: parses the command line (the contract is `docs/cli.md`) and calls
//! [`peerwire::cli`]. Nothing else happens here.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use peerwire::cli;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "peerwire",
    version,
    about = "A BitTorrent client to learn the protocol from"
)]
struct Args {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: PeerwireCommand,
}

#[derive(Subcommand)]
enum PeerwireCommand {
    /// Decode a bencoded value and print it as JSON.
    Decode { bencoded: OsString },
    /// Print what a .torrent file holds: tracker, length, info hash, piece hashes.
    Info { torrent: PathBuf },
    /// Ask the torrent's trackers for peers and print them, one ip:port per line.
    Peers {
        torrent: PathBuf,
        #[command(flatten)]
        tracker: TrackerArgs,
    },
    /// Run a tracker (HTTP and UDP) for local swarms, until killed.
    Tracker(TrackerServerArgs),
    /// Connect to a peer, exchange handshakes, print its peer id.
    Handshake {
        torrent: PathBuf,
        peer: std::net::SocketAddr,
    },
    /// Download one piece, verify it, write it to a file.
    #[command(name = "download_piece", alias = "download-piece")]
    DownloadPiece {
        #[arg(short, long)]
        output: PathBuf,
        torrent: PathBuf,
        index: u32,
        #[command(flatten)]
        peers: PeerArgs,
    },
    /// Download a torrent (resuming from what is already there).
    Download {
        /// Where to put it: the file (single-file torrent) or the directory that receives the
        /// torrent's folder; an existing directory always receives it. Default: `.`.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// One or more .torrent files or magnet links: several run at once, on one port.
        #[arg(required = true, value_name = "TORRENT")]
        torrent: Vec<PathBuf>,
        #[command(flatten)]
        peers: PeerArgs,
        /// Keep seeding after the download completes, until Ctrl-C or --seed-ratio.
        #[arg(long)]
        seed: bool,
        #[command(flatten)]
        upload: UploadArgs,
        #[command(flatten)]
        select: SelectArgs,
        #[command(flatten)]
        web_seeds: WebSeedArgs,
        /// Show the download live in a browser at this address (default 127.0.0.1, any port;
        /// the URL is printed on stderr).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
        web: Option<std::net::SocketAddr>,
    },
    /// Print a magnet link's first tracker and its info hash.
    #[command(name = "magnet_parse", alias = "magnet-parse")]
    MagnetParse { uri: String },
    /// Connect to a peer of a magnet link; print its peer id and its ut_metadata id.
    #[command(name = "magnet_handshake", alias = "magnet-handshake")]
    MagnetHandshake {
        uri: String,
        #[command(flatten)]
        peers: PeerArgs,
    },
    /// Fetch a magnet link's metadata from peers and print it like `info`.
    #[command(name = "magnet_info", alias = "magnet-info")]
    MagnetInfo {
        uri: String,
        #[command(flatten)]
        peers: PeerArgs,
    },
    /// Download one piece of a magnet link, verify it, write it to a file.
    #[command(name = "magnet_download_piece", alias = "magnet-download-piece")]
    MagnetDownloadPiece {
        #[arg(short, long)]
        output: PathBuf,
        uri: String,
        index: u32,
        #[command(flatten)]
        peers: PeerArgs,
    },
    /// Download a magnet link (like `download <magnet-uri>`).
    #[command(name = "magnet_download", alias = "magnet-download")]
    MagnetDownload {
        #[arg(short, long)]
        output: Option<PathBuf>,
        uri: String,
        #[command(flatten)]
        peers: PeerArgs,
        #[arg(long)]
        seed: bool,
        #[command(flatten)]
        upload: UploadArgs,
        #[command(flatten)]
        select: SelectArgs,
        #[command(flatten)]
        web_seeds: WebSeedArgs,
    },
    /// Verify a torrent's data, then serve it to other peers until Ctrl-C.
    Seed {
        torrent: PathBuf,
        /// The file or folder the torrent describes, or the directory that holds it.
        path: PathBuf,
        #[command(flatten)]
        peers: PeerArgs,
        #[command(flatten)]
        upload: UploadArgs,
        #[command(flatten)]
        select: SelectArgs,
        /// Show the seeding live in a browser at this address (default 127.0.0.1, any port;
        /// the URL is printed on stderr).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
        web: Option<std::net::SocketAddr>,
    },
    /// Ask one DHT node (BEP 5) for its id.
    #[command(name = "dht_ping", alias = "dht-ping")]
    DhtPing {
        node: std::net::SocketAddr,
        #[command(flatten)]
        local: LocalNodeArgs,
    },
    /// Ask one DHT node for the nodes it knows closest to a target id (40 hex).
    #[command(name = "dht_find_node", alias = "dht-find-node")]
    DhtFindNode {
        node: std::net::SocketAddr,
        target: String,
        #[command(flatten)]
        local: LocalNodeArgs,
    },
    /// Find a torrent's peers in the DHT, printing each step of the lookup.
    #[command(name = "dht_get_peers", alias = "dht-get-peers")]
    DhtGetPeers {
        /// An info hash (40 hex) or a magnet link.
        target: String,
        #[command(flatten)]
        local: LocalNodeArgs,
        #[command(flatten)]
        dht: DhtArgs,
    },
    /// Run a DHT node (no torrent) until Ctrl-C: a classroom DHT is a few of these.
    #[command(name = "dht_node", alias = "dht-node")]
    DhtNode {
        #[command(flatten)]
        local: LocalNodeArgs,
        #[command(flatten)]
        dht: DhtArgs,
    },
    /// A whole swarm on 127.0.0.1 in one command: tracker, a seeder, leechers, and a summary.
    Demo(DemoArgs),
    /// Make a .torrent file of a file or a directory.
    Create(CreateArgs),
}

/// `tracker`: where to listen, and the interval clients are told.
#[derive(clap::Args)]
struct TrackerServerArgs {
    /// HTTP port (0 = any free port).
    #[arg(long, default_value_t = 6969)]
    port: u16,
    /// UDP port (BEP 15).
    #[arg(long, default_value_t = 6969)]
    udp_port: u16,
    /// Address to listen on (127.0.0.1 keeps the swarm on this machine).
    #[arg(long, default_value = "0.0.0.0")]
    bind: std::net::IpAddr,
    /// Seconds between announces that clients are told; silent peers expire after two.
    #[arg(long, default_value_t = 60)]
    interval: u64,
}

impl TrackerServerArgs {
    fn config(self) -> peerwire::tracker_server::ServerConfig {
        peerwire::tracker_server::ServerConfig {
            http: Some((self.bind, self.port).into()),
            udp: Some((self.bind, self.udp_port).into()),
            interval: Duration::from_secs(self.interval),
        }
    }
}

/// `demo`: the size of the swarm and of its file.
#[derive(clap::Args)]
struct DemoArgs {
    /// Size of the file shared, in MiB.
    #[arg(long, default_value_t = 64)]
    size: u64,
    /// Leechers (the seeder comes on top).
    #[arg(long, default_value_t = 4)]
    peers: usize,
    /// The seeder's upload limit in KiB/s (0: none); a slow seeder makes leechers share.
    #[arg(long, default_value_t = 8192)]
    seeder_rate: u64,
    /// Show every leecher's wire messages, not only a sample.
    #[arg(long)]
    trace: bool,
    /// No tracker: the swarm finds itself through a DHT of its own (BEP 5).
    #[arg(long)]
    dht: bool,
    /// Show the swarm live in a browser at this address (default 127.0.0.1, any port; the URL
    /// is printed on stderr); after the summary the page stays up until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
    web: Option<std::net::SocketAddr>,
    /// After the run, write the whole run's pictures to this self-contained HTML file.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    #[command(flatten)]
    strategy: StrategyArgs,
}

impl DemoArgs {
    fn config(&self) -> peerwire::demo::DemoConfig {
        peerwire::demo::DemoConfig {
            size_mib: self.size,
            leechers: self.peers,
            seeder_rate: (self.seeder_rate > 0).then_some(self.seeder_rate * 1024),
            trace_all: self.trace,
            dht: self.dht,
            piece_order: self.strategy.piece_order.into(),
            optimistic_unchoke: !self.strategy.no_optimistic_unchoke,
            ..Default::default()
        }
    }
}

/// `create`: what to hash, and what to write in the torrent.
#[derive(clap::Args)]
struct CreateArgs {
    path: PathBuf,
    /// Where to write the .torrent file.
    #[arg(short, long)]
    output: PathBuf,
    /// Tracker announce URL (repeat for backup trackers, one tier each).
    #[arg(short = 't', long = "tracker")]
    trackers: Vec<String>,
    /// Bytes per piece: a power of two, at least 16384. Chosen from the size if omitted.
    #[arg(long)]
    piece_length: Option<u64>,
    /// Mark the torrent private (BEP 27).
    #[arg(long)]
    private: bool,
    #[arg(long)]
    comment: Option<String>,
    /// Hashing threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// A v1 torrent (BEP 3): SHA-1 piece hashes over the files end to end. The default.
    #[arg(long = "v1", group = "meta_version")]
    v1: bool,
    /// A v2-only torrent (BEP 52): piece-aligned files, a SHA-256 Merkle tree per file.
    #[arg(long = "v2", group = "meta_version")]
    v2: bool,
    /// A hybrid v1 + v2 torrent (BEP 52): both, with BEP 47 padding files in the v1 list.
    #[arg(long, group = "meta_version")]
    hybrid: bool,
}

impl CreateArgs {
    fn options(&self) -> peerwire::create::CreateOptions {
        peerwire::create::CreateOptions {
            trackers: self.trackers.clone(),
            piece_length: self.piece_length,
            private: self.private,
            comment: self.comment.clone(),
            threads: self.threads,
            // clap lets at most one of the three through (they share a group).
            version: match (self.v1, self.v2, self.hybrid) {
                (_, true, _) => peerwire::metainfo::MetaVersion::V2,
                (_, _, true) => peerwire::metainfo::MetaVersion::Hybrid,
                _ => peerwire::metainfo::MetaVersion::V1,
            },
        }
    }
}

/// `--select-file`: which files of the torrent to fetch (or, seeding, to offer).
#[derive(clap::Args)]
struct SelectArgs {
    /// Only these files: numbers and ranges like 1,3-5, counted from 1 in the order `info`
    /// lists them (padding files not counted). Bytes of other files that share a piece with
    /// them go to .peerwire-parts in the torrent's folder.
    #[arg(long = "select-file", value_name = "LIST")]
    files: Option<peerwire::storage::FileList>,
}

/// Web seeds (BEP 19): HTTP servers named by the torrent's `url-list` or a magnet's `ws=`.
#[derive(clap::Args)]
struct WebSeedArgs {
    /// Fetch nothing from the torrent's web seeds (url-list) or the magnet link's ws= URLs.
    #[arg(long)]
    no_web_seeds: bool,
}

/// How we upload.
#[derive(clap::Args)]
struct UploadArgs {
    /// Stop seeding once we uploaded this many times the torrent's size.
    #[arg(long)]
    seed_ratio: Option<f64>,
    /// Upload at most this many KiB per second, all peers together.
    #[arg(long)]
    max_upload_rate: Option<u64>,
    /// Peers unchoked for their rate, besides the one optimistic unchoke.
    #[arg(long, default_value_t = 4)]
    upload_slots: usize,
    #[command(flatten)]
    strategy: StrategyArgs,
}

/// The two strategies of BEP 3 a class may switch, to see what each is for.
#[derive(clap::Args)]
struct StrategyArgs {
    /// Which missing piece to start next: rarest-first (a few at random, then the rarest),
    /// in-order (lowest index first), random.
    #[arg(long, value_enum, default_value_t = PieceOrderArg::RarestFirst)]
    piece_order: PieceOrderArg,
    /// Never unchoke a peer optimistically: only the upload slots ranked by rate (an
    /// experiment; peers with nothing to trade yet may wait for ever).
    #[arg(long)]
    no_optimistic_unchoke: bool,
}

/// `--piece-order rarest-first|in-order|random`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PieceOrderArg {
    RarestFirst,
    InOrder,
    Random,
}

impl From<PieceOrderArg> for peerwire::scheduler::picker::PieceOrder {
    fn from(arg: PieceOrderArg) -> Self {
        use peerwire::scheduler::picker::PieceOrder;
        match arg {
            PieceOrderArg::RarestFirst => PieceOrder::RarestFirst,
            PieceOrderArg::InOrder => PieceOrder::InOrder,
            PieceOrderArg::Random => PieceOrder::Random,
        }
    }
}

impl UploadArgs {
    /// The options of a whole download or seed: the peer options, then ours.
    fn options(
        &self,
        peers: &PeerArgs,
        target: peerwire::session::Target,
        seed: bool,
    ) -> peerwire::session::DownloadOptions {
        let mut options = peers.options(target, None);
        self.apply(&mut options, seed);
        options
    }

    fn apply(&self, options: &mut peerwire::session::DownloadOptions, seed: bool) {
        use peerwire::scheduler::AfterComplete;
        options.after_complete = match (seed, self.seed_ratio) {
            (false, _) => AfterComplete::Stop,
            (true, None) => AfterComplete::Seed,
            (true, Some(ratio)) => AfterComplete::SeedToRatio(ratio),
        };
        options.max_upload_rate = self.max_upload_rate.map(|k| k * 1024);
        options.choker.regular_slots = self.upload_slots;
        options.choker.optimistic = !self.strategy.no_optimistic_unchoke;
        options.piece_order = self.strategy.piece_order.into();
    }
}

/// `--transport tcp|utp|both`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum TransportArg {
    Tcp,
    Utp,
    Both,
}

impl From<TransportArg> for peerwire::peer::dial::Transport {
    fn from(arg: TransportArg) -> Self {
        use peerwire::peer::dial::Transport;
        match arg {
            TransportArg::Tcp => Transport::Tcp,
            TransportArg::Utp => Transport::Utp,
            TransportArg::Both => Transport::Both,
        }
    }
}

/// `--encryption off|prefer|require`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum EncryptionArg {
    Off,
    Prefer,
    Require,
}

impl From<EncryptionArg> for peerwire::peer::encrypted::Encryption {
    fn from(arg: EncryptionArg) -> Self {
        use peerwire::peer::encrypted::Encryption;
        match arg {
            EncryptionArg::Off => Encryption::Off,
            EncryptionArg::Prefer => Encryption::Prefer,
            EncryptionArg::Require => Encryption::Require,
        }
    }
}

/// The DHT (BEP 5): where to start, where to keep the table, or off.
#[derive(clap::Args)]
struct DhtArgs {
    /// A DHT node to start from, HOST:PORT (repeatable).
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    bootstrap: Vec<String>,
    /// Keep our DHT id and routing table in this file (read at start, written at exit).
    #[arg(long, value_name = "FILE")]
    dht_state: Option<PathBuf>,
    /// No DHT: peers come only from trackers, --peer and peer exchange.
    #[arg(long)]
    no_dht: bool,
}

impl DhtArgs {
    fn options(&self) -> Option<peerwire::dht::thread::DhtOptions> {
        (!self.no_dht).then(|| peerwire::dht::thread::DhtOptions {
            bootstrap: self.bootstrap.clone(),
            state: self.dht_state.clone(),
            routers: routers(),
        })
    }
}

/// The routers a node asks when given no other way in: the public ones, or
/// `PEERWIRE_DHT_ROUTERS` (comma-separated HOST:PORT; empty: none, as in the tests).
fn routers() -> Vec<String> {
    match std::env::var("PEERWIRE_DHT_ROUTERS") {
        Ok(list) => list
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(String::from)
            .collect(),
        Err(_) => peerwire::dht::thread::PUBLIC_ROUTERS
            .iter()
            .map(|r| r.to_string())
            .collect(),
    }
}

/// A `dht_*` command's own node: its address.
#[derive(clap::Args)]
struct LocalNodeArgs {
    /// The address of our node's UDP socket (give each node its own 127.0.0.x on one machine).
    #[arg(long, default_value = "0.0.0.0")]
    bind: std::net::Ipv4Addr,
    /// Our node's UDP port (0: any).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

impl LocalNodeArgs {
    fn local(&self) -> cli::dht::Local {
        cli::dht::Local(std::net::SocketAddrV4::new(self.bind, self.port))
    }
}

/// How to reach trackers: the port we announce and the timeouts.
#[derive(clap::Args)]
struct TrackerArgs {
    /// The TCP port we announce (and will listen on); 0 = any.
    #[arg(long, default_value_t = 6881)]
    port: u16,
    /// Deadline for one HTTP announce, in seconds.
    #[arg(long, default_value_t = 20)]
    tracker_timeout: u64,
    /// UDP trackers (BEP 15): first wait in milliseconds, doubled on every retry.
    #[arg(long, default_value_t = 15_000)]
    udp_timeout_ms: u64,
    /// UDP trackers: retransmissions before giving up (BEP 15 allows 8).
    #[arg(long, default_value_t = 2)]
    udp_retries: u32,
}

/// Where peers come from and how we talk to them.
#[derive(clap::Args)]
struct PeerArgs {
    /// Connect to this peer directly (repeatable), with or without a tracker: IP:PORT, or
    /// [IPv6]:PORT.
    #[arg(long = "peer")]
    peers: Vec<std::net::SocketAddr>,
    /// Most peers connected at once.
    #[arg(long, default_value_t = 30)]
    max_peers: usize,
    /// Print every wire message, one per line, on stderr.
    #[arg(long)]
    trace: bool,
    /// For a debugger: one peer, no timeouts that drop a paused thread, a fixed peer id.
    #[arg(long)]
    debug_single_peer: bool,
    /// Give up when no data arrives for this many seconds (default: keep trying).
    #[arg(long)]
    give_up_after: Option<u64>,
    /// Drop a peer that sends nothing at all for this many seconds.
    #[arg(long, default_value_t = 120)]
    peer_timeout: u64,
    /// Download at most this many KiB per second, all peers together.
    #[arg(long)]
    max_download_rate: Option<u64>,
    /// The address we listen on, TCP and UDP (uTP, the DHT). The default `::` is every
    /// address, IPv4 and IPv6; `0.0.0.0` is IPv4 only; any other address is that one alone.
    #[arg(long, default_value = "::")]
    bind: std::net::IpAddr,
    /// Message Stream Encryption (MSE/PE): off, prefer (accept both; dial plain, then
    /// encrypted if the peer hangs up), require (RC4 only, both ways).
    #[arg(long, value_enum, default_value_t = EncryptionArg::Prefer)]
    encryption: EncryptionArg,
    /// Which transports to dial and accept: tcp, utp (BEP 29, over UDP on the same port), or
    /// both (dial TCP first, then uTP).
    #[arg(long, value_enum, default_value_t = TransportArg::Both)]
    transport: TransportArg,
    #[command(flatten)]
    tracker: TrackerArgs,
    #[command(flatten)]
    dht: DhtArgs,
    /// No local peer discovery (BEP 14): do not announce on the LAN's multicast group, nor
    /// dial the neighbours heard there.
    #[arg(long)]
    no_lsd: bool,
}

impl PeerArgs {
    /// LSD, unless `--no-lsd`, or `PEERWIRE_LSD=off` (the tests: nothing they run multicasts
    /// on the machine's network unless it asks to).
    fn lsd(&self) -> bool {
        !self.no_lsd && std::env::var("PEERWIRE_LSD").map_or(true, |v| v != "off")
    }

    fn options(
        &self,
        target: peerwire::session::Target,
        only_piece: Option<u32>,
    ) -> peerwire::session::DownloadOptions {
        peerwire::session::DownloadOptions {
            peers: self.peers.clone(),
            port: self.tracker.port,
            max_peers: self.max_peers,
            trace: match self.trace {
                true => peerwire::trace::Trace::Stderr,
                false => peerwire::trace::Trace::Off,
            },
            tracker: self.tracker.config(),
            give_up: self.give_up_after.map(Duration::from_secs),
            only_piece,
            debug_single_peer: self.debug_single_peer,
            peer_timeout: Duration::from_secs(self.peer_timeout),
            max_download_rate: self.max_download_rate.map(|k| k * 1024),
            bind: self.bind,
            dht: self.dht.options(),
            encryption: self.encryption.into(),
            transport: self.transport.into(),
            lsd: self.lsd(),
            ..peerwire::session::DownloadOptions::new(target)
        }
    }
}

impl PeerArgs {
    /// Where a magnet link's peers come from.
    fn sources(&self) -> cli::magnet::PeerSources {
        let options = self.options(peerwire::session::Target::Directory(".".into()), None);
        cli::magnet::PeerSources {
            peers: self.peers.clone(),
            port: self.tracker.port,
            tracker: self.tracker.config(),
            trace: options.trace,
            dht: options.dht,
            bind: self.bind,
            encryption: options.encryption,
            transport: options.transport,
            lsd: options.lsd,
        }
    }
}

impl TrackerArgs {
    fn config(&self) -> peerwire::tracker::TrackerConfig {
        peerwire::tracker::TrackerConfig {
            http_timeout: Duration::from_secs(self.tracker_timeout),
            udp_base_timeout: Duration::from_millis(self.udp_timeout_ms),
            udp_retries: self.udp_retries,
            ..Default::default()
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging(args.verbose, args.quiet);
    let result = match args.command {
        PeerwireCommand::Decode { bencoded } => cli::decode(&bencoded),
        PeerwireCommand::Info { torrent } => cli::info(&torrent),
        PeerwireCommand::Peers { torrent, tracker } => {
            cli::peers(&torrent, tracker.port, tracker.config())
        }
        PeerwireCommand::Handshake { torrent, peer } => cli::handshake(&torrent, peer),
        PeerwireCommand::DownloadPiece {
            output,
            torrent,
            index,
            peers,
        } => {
            let scratch = peerwire::session::Target::Directory(std::env::temp_dir());
            cli::download_piece(&torrent, &output, peers.options(scratch, Some(index)))
        }
        PeerwireCommand::Download {
            output,
            torrent,
            peers,
            seed,
            upload,
            select,
            web_seeds,
            web,
        } => {
            let output = output.unwrap_or_else(|| PathBuf::from("."));
            let options = |target| peerwire::session::DownloadOptions {
                web_seeds: !web_seeds.no_web_seeds,
                ..upload.options(&peers, target, seed)
            };
            let files = select.files.as_ref();
            match torrent.as_slice() {
                [torrent] => match torrent.to_str().filter(|t| t.starts_with("magnet:")) {
                    // The view starts before the metadata is fetched: its URL is printed at
                    // once, and the page fills in when the download begins.
                    Some(uri) => cli::web::start(web, &["us".to_string()]).and_then(|view| {
                        let sources = peers.sources();
                        cli::magnet::magnet_download(uri, &output, &sources, files, |target| {
                            cli::web::attach(view.as_ref(), 0, options(target))
                        })
                    }),
                    None => cli::download(torrent, &output, files, web, options),
                },
                several => {
                    let sources = peers.sources();
                    cli::many::download_many(several, &output, &sources, files, web, options)
                }
            }
        }
        PeerwireCommand::MagnetParse { uri } => cli::magnet::magnet_parse(&uri),
        PeerwireCommand::MagnetHandshake { uri, peers } => {
            cli::magnet::magnet_handshake(&uri, &peers.sources())
        }
        PeerwireCommand::MagnetInfo { uri, peers } => {
            cli::magnet::magnet_info(&uri, &peers.sources())
        }
        PeerwireCommand::MagnetDownloadPiece {
            output,
            uri,
            index,
            peers,
        } => {
            let scratch = peerwire::session::Target::Directory(std::env::temp_dir());
            let options = peers.options(scratch, Some(index));
            cli::magnet::magnet_download_piece(&uri, &output, &peers.sources(), options)
        }
        PeerwireCommand::MagnetDownload {
            output,
            uri,
            peers,
            seed,
            upload,
            select,
            web_seeds,
        } => {
            let output = output.unwrap_or_else(|| PathBuf::from("."));
            let files = select.files.as_ref();
            cli::magnet::magnet_download(&uri, &output, &peers.sources(), files, |target| {
                peerwire::session::DownloadOptions {
                    web_seeds: !web_seeds.no_web_seeds,
                    ..upload.options(&peers, target, seed)
                }
            })
        }
        PeerwireCommand::Seed {
            torrent,
            path,
            peers,
            upload,
            select,
            web,
        } => cli::seed(&torrent, &path, select.files.as_ref(), web, |target| {
            upload.options(&peers, target, true)
        }),
        PeerwireCommand::DhtPing { node, local } => cli::dht::dht_ping(node, local.local()),
        PeerwireCommand::DhtFindNode {
            node,
            target,
            local,
        } => cli::dht::dht_find_node(node, &target, local.local()),
        PeerwireCommand::DhtGetPeers { target, local, dht } => {
            let options = dht.options().unwrap_or_default();
            cli::dht::dht_get_peers(&target, local.local(), options)
        }
        PeerwireCommand::DhtNode { local, dht } => {
            cli::dht::dht_node(local.local(), dht.options().unwrap_or_default())
        }
        PeerwireCommand::Demo(args) => cli::demo(args.config(), args.web, args.report.as_deref()),
        PeerwireCommand::Tracker(args) => cli::tracker(args.config()),
        PeerwireCommand::Create(args) => cli::create(&args.path, &args.output, args.options()),
    };
    cli::exit(result)
}
