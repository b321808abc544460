//! The `magnet_*` commands (BEP 9): from a magnet link to peers, to the metadata, to a normal
//! download — walkthrough §13, §14. Only the printing differs from the `.torrent` commands.

use super::{CliError, print_lines};
use crate::dht::node::{Command as DhtCommand, LookupEvent};
use crate::dht::thread::DhtOptions;
use crate::magnet::Magnet;
use crate::metadata_fetch::{self, Request};
use crate::metainfo::Metainfo;
use crate::peer::connection::PeerError;
use crate::peer::dial::{Dialer, Transport};
use crate::peer::encrypted::Encryption;
use crate::peer_id::PeerId;
use crate::session::{DownloadOptions, Target};
use crate::trace::Trace;
use crate::tracker::tiers::TrackerTiers;
use crate::tracker::{AnnounceRequest, TrackerConfig};
use crate::utp::socket::{UtpConfig, UtpSocket};
use crate::wire::Message;
use crate::wire::extension::ExtendedHandshake;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

/// How long `magnet_info` and the downloads look for the metadata.
const METADATA_DEADLINE: Duration = Duration::from_secs(60);

/// Where a magnet link's peers come from: `--peer`, the link's `x.pe`, its trackers, and
/// the DHT.
pub struct PeerSources {
    pub peers: Vec<SocketAddr>,
    pub port: u16,
    pub tracker: TrackerConfig,
    pub trace: Trace,
    /// `None`: `--no-dht`.
    pub dht: Option<DhtOptions>,
    /// `--bind`: the address of the DHT node's socket.
    pub bind: IpAddr,
    /// `--encryption`.
    pub encryption: Encryption,
    /// `--transport`.
    pub transport: Transport,
    /// Local peer discovery (BEP 14); `false`: `--no-lsd`.
    pub lsd: bool,
}

impl PeerSources {
    /// How this command dials its peers. When `--transport` allows uTP, a socket of its own
    /// (any port, dialling only) carries it; it lives as long as the returned handle.
    fn dialer(&self) -> (Dialer, Option<UtpSocket>) {
        let socket = match self.transport.allows_utp() {
            true => match UtpSocket::bind(SocketAddr::new(self.bind, 0), UtpConfig::default()) {
                Ok((socket, _)) => Some(socket),
                Err(e) => {
                    log::warn!("no uTP for this command: {e}");
                    None
                }
            },
            false => None,
        };
        let dialer = Dialer {
            transport: self.transport,
            encryption: self.encryption,
            utp: socket.as_ref().map(UtpSocket::dialer),
        };
        (dialer, socket)
    }
}

/// How long the DHT lookup of a magnet link may take.
const DHT_LOOKUP_DEADLINE: Duration = Duration::from_secs(30);

pub fn parse(uri: &str) -> Result<Magnet, CliError> {
    Magnet::parse(uri).map_err(CliError::Magnet)
}

/// `magnet_parse <uri>`: `Tracker URL:` (the first `tr`) and `Info Hash:`.
pub fn magnet_parse(uri: &str) -> Result<(), CliError> {
    let magnet = parse(uri)?;
    let tracker = magnet.trackers.first().map_or("(none)", String::as_str);
    print_lines(&[
        format!("Tracker URL: {tracker}"),
        format!("Info Hash: {}", magnet.info_hash),
    ])
}

/// `magnet_handshake <uri>`: the first peer that answers, its peer id and its `ut_metadata` id
/// (from its extended handshake, BEP 10).
pub fn magnet_handshake(uri: &str, sources: &PeerSources) -> Result<(), CliError> {
    let magnet = parse(uri)?;
    let our_id = PeerId::generate();
    let mut last_error = None;
    for addr in find_peers(&magnet, sources, our_id)?.all {
        match extended_handshake(addr, &magnet, our_id, sources) {
            Ok((peer_id, metadata_id)) => {
                return print_lines(&[
                    format!("Peer ID: {}", peer_id.to_hex()),
                    format!("Peer Metadata Extension ID: {metadata_id}"),
                ]);
            }
            Err(source) => last_error = Some(CliError::Peer { addr, source }),
        }
    }
    Err(last_error.unwrap_or(CliError::NoPeers))
}

/// Handshake with the extension bit, then both extended handshakes.
fn extended_handshake(
    addr: SocketAddr,
    magnet: &Magnet,
    our_id: PeerId,
    sources: &PeerSources,
) -> Result<(PeerId, u8), PeerError> {
    let (dialer, _utp) = sources.dialer();
    let request = Request {
        info_hash: magnet.info_hash,
        v2: magnet.v2,
        our_id,
        trace: sources.trace.clone(),
        deadline: METADATA_DEADLINE,
        dialer,
    };
    let Some(mut connection) = metadata_fetch::open_for_metadata(addr, &request)? else {
        return Err(PeerError::NoExtensions);
    };
    for _ in 0..FIRST_MESSAGES {
        if let Some(Message::Extended { id: 0, payload }) = connection.receive(true)? {
            let theirs = ExtendedHandshake::from_payload(&payload)
                .map_err(PeerError::BadExtendedHandshake)?;
            let id = theirs.id_of("ut_metadata").unwrap_or(0);
            let peer_id = connection.remote.peer_id;
            connection.close(metadata_fetch::CLOSE_WAIT); // the next command may dial it at once
            return Ok((peer_id, id));
        }
    }
    Err(PeerError::NoExtendedHandshake(FIRST_MESSAGES))
}

/// Messages read while waiting for the peer's extended handshake (libtorrent sends it first;
/// others after their bitfield and a few `have`s).
const FIRST_MESSAGES: usize = 100;

/// `magnet_info <uri>`: the same lines as `info`, from metadata fetched from peers.
pub fn magnet_info(uri: &str, sources: &PeerSources) -> Result<(), CliError> {
    let magnet = parse(uri)?;
    let (metainfo, _) = resolve(&magnet, sources)?;
    print_lines(&super::info_lines(&metainfo))
}

/// The torrent behind a magnet link: peers, then the metadata, verified. Also the peers
/// heard on the LAN (BEP 14), for the download to dial: no tracker or DHT will name them
/// again. [W14.1]
pub fn resolve(
    magnet: &Magnet,
    sources: &PeerSources,
) -> Result<(Metainfo, Vec<SocketAddr>), CliError> {
    let our_id = PeerId::generate();
    let Found { all: peers, lan } = find_peers(magnet, sources, our_id)?;
    let (dialer, _utp) = sources.dialer();
    let request = Request {
        info_hash: magnet.info_hash,
        v2: magnet.v2,
        our_id,
        trace: sources.trace.clone(),
        deadline: METADATA_DEADLINE,
        dialer,
    };
    let info = metadata_fetch::fetch(&request, &peers, None).map_err(CliError::Metadata)?;
    let mut metainfo =
        Metainfo::from_info_bytes(&info, &magnet.trackers).map_err(|source| CliError::Torrent {
            path: "(metadata from peers)".into(),
            source,
        })?;
    // A v2 torrent's info dictionary has each file's root, not its piece layer (§18).
    crate::layer_fetch::fetch(&mut metainfo, &request, &peers).map_err(CliError::Layers)?;
    log::info!(
        "metadata: {} ({} pieces)",
        metainfo.info.name,
        metainfo.info.num_pieces()
    );
    Ok((metainfo, lan))
}

/// A magnet link's peers, and which of them were heard on the LAN.
struct Found {
    all: Vec<SocketAddr>,
    lan: Vec<SocketAddr>,
}

/// `--peer`, `x.pe`, and one look-up at the link's trackers (`left` = 1: the length is not
/// known yet, and 0 would say we are a seed). The look-up does not keep us in the swarm
/// ([`super::look_up_peers`]): until it has the metadata, this command serves nothing.
fn find_peers(magnet: &Magnet, sources: &PeerSources, our_id: PeerId) -> Result<Found, CliError> {
    let mut peers = sources.peers.clone();
    peers.extend(&magnet.peers);
    let tiers: Vec<Vec<String>> = magnet.trackers.iter().map(|t| vec![t.clone()]).collect();
    if !tiers.is_empty() {
        let request = AnnounceRequest::started(magnet.info_hash, our_id, sources.port, 1);
        match super::look_up_peers(&mut TrackerTiers::new(tiers, sources.tracker), request) {
            Ok((_, response)) => peers.extend(response.peers),
            Err(e) if !peers.is_empty() => log::warn!("{e}"),
            Err(e) => return Err(e),
        }
    }
    // No peer yet (a trackerless link, or dead trackers): ask the DHT. With peers in hand
    // the download's own DHT node will find more anyway.
    if let (true, Some(dht)) = (peers.is_empty(), &sources.dht) {
        peers.extend(dht_look_up(magnet, dht, sources.bind)?);
    }
    let mut lan = Vec::new();
    if peers.is_empty() && sources.lsd {
        lan = lsd_look_up(magnet, sources);
        peers.extend(&lan);
    }
    if peers.is_empty() {
        return Err(CliError::NoPeers);
    }
    Ok(Found { all: peers, lan })
}

/// One get_peers lookup for the link's info hash (BEP 5), from a node of its own that asks
/// but does not answer (it lives only for this lookup; the download starts a full node).
fn dht_look_up(
    magnet: &Magnet,
    options: &DhtOptions,
    bind: IpAddr,
) -> Result<Vec<SocketAddr>, CliError> {
    if !options.has_a_way_in() {
        return Ok(Vec::new());
    }
    let ip = match bind {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    let dht = super::dht::start(super::dht::Local(SocketAddrV4::new(ip, 0)), options.clone())?;
    let (events, steps) = crossbeam_channel::unbounded();
    dht.send(DhtCommand::GetPeers {
        info_hash: magnet.info_hash,
        events,
    });
    let deadline = std::time::Instant::now() + DHT_LOOKUP_DEADLINE;
    let mut found = Vec::new();
    while let Ok(event) = steps.recv_deadline(deadline) {
        if let LookupEvent::Done { peers, queries } = event {
            log::info!("DHT: {} peers after {queries} queries", peers.len());
            found = peers.into_iter().map(SocketAddr::V4).collect();
            break;
        }
    }
    dht.stop();
    Ok(found)
}

/// How long a magnet link with no other peer listens for a neighbour's announce. A
/// neighbour in the swarm answers our announce with its own within a minute (BEP 14 allows
/// one a minute).
const LSD_LOOKUP_DEADLINE: Duration = Duration::from_secs(75);

/// Announces the link's info hash on the LAN (BEP 14) and waits for the first neighbour
/// in its swarm, or [`LSD_LOOKUP_DEADLINE`].
fn lsd_look_up(magnet: &Magnet, sources: &PeerSources) -> Vec<SocketAddr> {
    let Some(lsd) = crate::session::start_lsd(&[magnet.info_hash], sources.port, sources.bind)
    else {
        return Vec::new();
    };
    log::info!("LSD: listening up to {LSD_LOOKUP_DEADLINE:?} for a neighbour in the swarm");
    let deadline = std::time::Instant::now() + LSD_LOOKUP_DEADLINE;
    let found = lsd.peers.recv_deadline(deadline).unwrap_or_default();
    lsd.stop();
    found
}

/// `magnet_download -o <out> <uri>` and `download <uri>`: the metadata, then a normal download.
pub fn magnet_download(
    uri: &str,
    out: &Path,
    sources: &PeerSources,
    files: Option<&crate::storage::FileList>,
    options: impl FnOnce(Target) -> DownloadOptions,
) -> Result<(), CliError> {
    let magnet = parse(uri)?;
    let (mut metainfo, lan) = resolve(&magnet, sources)?;
    with_web_seeds(&mut metainfo, &magnet);
    // Only now are the files known: a `--select-file` number past the last one is a usage
    // error all the same (status 2), found after the metadata.
    let selection = super::choose_files(&metainfo, files)?;
    let target = super::target_for(&metainfo, out);
    let mut options = options(target);
    options.selection = selection;
    options.peers.extend(magnet.peers.iter().chain(&lan));
    super::run_session(&metainfo, options)
}

/// The link's `ws=` URLs become the torrent's web seeds (BEP 19), as a `url-list` would be:
/// the info dictionary from peers has none, since `url-list` lies outside it.
pub(super) fn with_web_seeds(metainfo: &mut Metainfo, magnet: &Magnet) {
    for url in &magnet.web_seeds {
        if !metainfo.url_list.contains(url) {
            metainfo.url_list.push(url.clone());
        }
    }
}

/// `magnet_download_piece -o <out> <uri> <index>`.
pub fn magnet_download_piece(
    uri: &str,
    out: &Path,
    sources: &PeerSources,
    options: DownloadOptions,
) -> Result<(), CliError> {
    let magnet = parse(uri)?;
    let (mut metainfo, lan) = resolve(&magnet, sources)?;
    with_web_seeds(&mut metainfo, &magnet);
    let mut options = options;
    options.peers.extend(magnet.peers.iter().chain(&lan));
    super::piece_of(&metainfo, out, options)
}
