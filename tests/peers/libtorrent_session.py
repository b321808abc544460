"""A libtorrent peer for peerwire's tests, driven over stdin/stdout.

    /usr/bin/python3 tests/peers/libtorrent_session.py --port PORT
        (--torrent FILE | --magnet URI) --save DIR [--seed] [--pex] [--upload-limit BYTES]
        [--chokable] [--encryption forced] [--utp-only] [--listen-ip IP]
        [--only-files I,J,...]

Runs one libtorrent session on 127.0.0.1:PORT (TCP only, or uTP only with --utp-only; no DHT,
LSD, UPnP or NAT-PMP; several connections per IP allowed since every test peer is 127.0.0.1)
with one torrent.

Options:
    --torrent FILE          the torrent, from a .torrent file
    --magnet URI            the torrent, from a magnet link instead: the metadata (info
                            dictionary) is fetched from peers with ut_metadata (BEP 9); there is
                            no tracker or DHT unless the link names a tracker (`tr=`), so peers
                            usually come from `connect` (or from PEX)
    --save DIR              where the data is saved (or, with --seed, read from)
    --seed                  the data in DIR is taken as complete (seed mode; needs --torrent)
    --pex                   peer exchange (ut_pex, BEP 11) on. NOTE: libtorrent 2.0.8 already
                            loads ut_pex (with ut_metadata and smart_ban) in every session made
                            by `lt.session(settings)` (its default `flags` is
                            add_default_plugins), so PEX was, and without --pex still is, on
                            for public torrents; --pex makes it explicit and sure (default
                            plugins asked for, torrent's disable_pex flag cleared). libtorrent
                            never does PEX on a private torrent.
    --upload-limit BYTES    cap this torrent's upload at BYTES per second (a torrent limit:
                            libtorrent puts peers on 127.0.0.1 in its unlimited "local" peer
                            class, so the session-wide upload_rate_limit would not apply to
                            them). 0 means unlimited (the default).
    --chokable              peers on 127.0.0.1 take unchoke slots like any other peer, so that
                            `choke_all` can choke them (see "Choking local peers" below).
    --encryption forced     Message Stream Encryption required both ways, RC4 only
                            (`out_enc_policy` and `in_enc_policy` pe_forced, `allowed_enc_level`
                            pe_rc4): plain connections are refused. Without the option
                            libtorrent's default stays (encryption "enabled": it dials
                            encrypted first and accepts both).
    --utp-only              uTP (BEP 29) instead of TCP, both ways (`enable_outgoing_utp` and
                            `enable_incoming_utp` True, `enable_outgoing_tcp` and
                            `enable_incoming_tcp` False), on the UDP port of the same number.
                            libtorrent still listens on the TCP port, but closes at once every
                            connection that arrives there, and dials nothing over TCP.
    --listen-ip IP          listen on IP instead of 127.0.0.1: `::1` for the IPv6 loopback
                            (`listen_interfaces` "[::1]:PORT"). libtorrent dials IPv6 peers
                            from it, and lists them in PEX as `added6` (BEP 11).
    --only-files I,J,...    download only these files (0-based, in libtorrent's file order,
                            which counts padding files): every other file gets priority 0.
                            `finished` then means "the wanted files are complete". Needs
                            --torrent.

A torrent starts paused (libtorrent 2.0.8, measured with these sessions on 127.0.0.1):
  - The torrent is added paused and auto-managed; the session's queue starts it about 0.5 s
    later. `state seeding` comes before that (a seed-mode torrent is "seeding" at once), and
    until the torrent starts, libtorrent closes every incoming connection, TCP or uTP, right
    after accepting it (its log says `INCOMING CONNECTION [ rejected, no active torrents ]`).
    A peer that dials at `state seeding` is hung up on, and reaches it only on a retry;
    `started` says when a first dial will get through.

Choking local peers (libtorrent 2.0.8, measured with these sessions on 127.0.0.1):
  - libtorrent puts peers on loopback and private networks in its "local" peer class, which
    ignores unchoke slots: such a peer is unchoked as soon as it is interested, and the choker
    never chokes it, whatever `unchoke_slots_limit` says. --chokable clears the class's
    `ignore_unchoke_slots` when the session starts.
  - It must be cleared before any peer connects, not by `choke_all` itself: a peer unchoked
    while exempt is not counted in the torrent's unchoked peers, so choking it afterwards takes
    that 24-bit count below zero (measured: `status().num_uploads` 16777215) and the torrent
    never unchokes anyone again.
  - Changing `unchoke_slots_limit` makes the choker run at the next one-second tick (measured:
    the choke or unchoke goes out 0.3-0.7 s after the command), not after `unchoke_interval`
    (15 s).
  - Choking a peer that speaks the fast extension (BEP 6), libtorrent sends `choke`, then a
    `reject_request` for every request it has queued, except requests for the pieces of the
    allowed fast set it gave that peer; a few more rejects may follow, for requests it was
    already reading from disk. Requests queue only when the upload is slower than the peer
    asks (use --upload-limit): on 127.0.0.1 without a limit there is nothing left to reject.
  - The allowed fast set: `allowed_fast_set_size` (5) `allowed_fast` messages early in the
    connection (measured: right after the first `unchoke`), less pieces the peer has. It is
    not BEP 6's canonical set: libtorrent hashes the peer's whole IPv4 address where the BEP
    masks the last byte (for 127.0.0.1 it hashes 127.0.0.1, the BEP 127.0.0.0). Read in its
    src/peer_connection.cpp (`send_allowed_set`), and what it sent matched.

PEX in libtorrent 2.0.8 (read in src/ut_pex.cpp, then measured with these sessions on 127.0.0.1):
  - Each connection "ticks" once a second. The first message to a peer that advertised ut_pex
    is the full list of our connected peers; it goes out on the first tick at which our torrent
    has at least 2 connections -- NOT a minute after connecting. Measured: with B connected to
    seed A, C connects to B; B sends its full list to both A and C about 1 s after C-B came up, and
    A and C dial each other about 1 s (0.95-1.00 s in 6 runs) after C-B came up; `peers` on
    both shows one settled A-C connection 2 s after C-B came up.
    A peer that is B's only connection gets nothing until a second peer connects to B.
  - Later messages are diffs (added / dropped since the last one), at most one per peer every
    60 s (measured: 60.0 s after the full list) and only if the peer set changed; the diff itself
    is rebuilt once a minute. So B tells its old peers about a newcomer D only with its next
    diff, up to ~2 minutes later (measured: 52 s) -- but D gets B's full list within ~2 s and
    dials them itself, which is how they usually meet.
  - Listed are the peers we are really connected to: the ones we dialed, and incoming ones that
    told their listen port (extension handshake "p"), with that port. The list sent to a peer
    includes that peer itself, so after PEX expect self-connection attempts and duplicate
    connections (both sides dial each other) that libtorrent drops at once: short-lived
    peer_connected / peer_disconnected pairs; poll `peers` to see the settled state.
  - PEX messages queue behind piece data, so with --upload-limit they may arrive many seconds
    late. libtorrent drops a peer that sends more than 6 PEX messages within 60 s.

It prints one event per line on stdout (and flushes):
    ready <port>                     the session is listening
    tracker_reply <url> <n>          a tracker answered with n peers
    tracker_error <url> <message>
    peer_connected <ip:port>         a peer connection came up -- for one we dial, when the
                                     dial starts: printed even if it then fails
    peer_disconnected <ip:port>      a peer connection went away (also after a failed dial)
    peer_error <ip:port> <why>       a peer broke the protocol and libtorrent hangs up, e.g.
                                     `peer_error 127.0.0.1:6881 bitfield of invalid size`
    metadata_received                the metadata arrived from a peer (--magnet only)
    finished                         the download completed
    state <name>                     the torrent's state changed (e.g. `state seeding`)
    status <progress> <num_peers> <state>   (answer to `status`)
    peers <ip:port> <ip:port> ...    (answer to `peers`: the connected peers, maybe none;
                                      for an incoming connection the port is the remote's
                                      ephemeral port, not its listen port)

and reads commands on stdin, one per line:
    reannounce      announce to the trackers now (even inside `min interval`)
    status          print a status line
    peers           print the connected peers (handshake done, not still connecting)
    connect IP:PORT dial that peer now, without a tracker (IPv6 as [IP]:PORT)
    started         print `started` as soon as the torrent is started (not paused), at once
                    if it already is (see "A torrent starts paused" below)
    choke_all       no unchoke slots (`unchoke_slots_limit` 0): every peer is choked within
                    about a second (needs --chokable for peers on 127.0.0.1)
    unchoke_all     the default unchoke slots again (8): peers are unchoked within a second
    quit            exit (also on end of input)
"""
import argparse
import select
import sys
import time

import libtorrent as lt


def say(*words):
    print(*words, flush=True)


def endpoint(ep):
    """`ip:port`, as peer_connected has always printed it (no brackets for IPv6)."""
    return "%s:%d" % (ep[0], ep[1])


def make_session(port, chokable, encryption, utp_only, listen_ip):
    # An IPv6 address goes in brackets, as in a URL: "[::1]:6881".
    host = "[%s]" % listen_ip if ":" in listen_ip else listen_ip
    settings = {
        "listen_interfaces": "%s:%d" % (host, port),
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.all_categories,
    }
    if utp_only:
        settings["enable_outgoing_utp"] = True
        settings["enable_incoming_utp"] = True
        settings["enable_outgoing_tcp"] = False
        settings["enable_incoming_tcp"] = False
    if encryption == "forced":
        settings["out_enc_policy"] = int(lt.enc_policy.forced)
        settings["in_enc_policy"] = int(lt.enc_policy.forced)
        settings["allowed_enc_level"] = int(lt.enc_level.rc4)
    # add_default_plugins is also lt.session's default `flags`: it loads ut_metadata, ut_pex and
    # smart_ban. Asked for explicitly so that --magnet (ut_metadata) and --pex (ut_pex) are sure
    # to work. Not add_extension("ut_pex") on top: that would load a second ut_pex plugin.
    session = lt.session(settings, lt.session_flags_t.add_default_plugins)
    if chokable:
        # Before any peer connects (see "Choking local peers" above).
        session.set_peer_class(lt.session.local_peer_class_id, {"ignore_unchoke_slots": False})
    return session


def add_torrent(session, args):
    if args.magnet:
        params = lt.parse_magnet_uri(args.magnet)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    if args.seed:
        params.flags |= lt.torrent_flags.seed_mode
    if args.pex:
        params.flags &= ~lt.torrent_flags.disable_pex
    handle = session.add_torrent(params)
    if args.upload_limit:
        handle.set_upload_limit(args.upload_limit)
    if args.only_files is not None:
        wanted = {int(i) for i in args.only_files.split(",")}
        count = params.ti.num_files()
        handle.prioritize_files([4 if i in wanted else 0 for i in range(count)])
    return handle


def handle_alert(alert):
    if isinstance(alert, lt.listen_succeeded_alert):
        say("ready", alert.port)
    elif isinstance(alert, lt.tracker_reply_alert):
        say("tracker_reply", alert.tracker_url(), alert.num_peers)
    elif isinstance(alert, lt.tracker_error_alert):
        say("tracker_error", alert.tracker_url(), alert.message().replace("\n", " "))
    elif isinstance(alert, lt.peer_connect_alert):
        say("peer_connected", endpoint(alert.endpoint))
    elif isinstance(alert, lt.peer_disconnected_alert):
        say("peer_disconnected", endpoint(alert.endpoint))
    elif isinstance(alert, lt.peer_error_alert):
        say("peer_error", endpoint(alert.endpoint), alert.error.message())
    elif isinstance(alert, lt.metadata_received_alert):
        say("metadata_received")
    elif isinstance(alert, lt.torrent_finished_alert):
        say("finished")
    elif isinstance(alert, lt.state_changed_alert):
        say("state", alert.state)


def parse_endpoint(text):
    """`IP:PORT` or `[IPv6]:PORT` -> (ip, port), or None."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def handle_command(line, session, handle, pending):
    """Runs one command line; False to quit. A question that is answered later (`started`)
    goes into `pending`."""
    command = line.strip()
    word, _, rest = command.partition(" ")
    if command == "reannounce":
        # libtorrent ignores a re-announce inside the tracker's `min interval` unless told to.
        handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
    elif command == "status":
        s = handle.status()
        say("status", "%.4f" % s.progress, s.num_peers, s.state)
    elif command == "peers":
        connected = [p for p in handle.get_peer_info()
                     if not p.flags & (lt.peer_info.connecting | lt.peer_info.handshake)]
        say("peers", *[endpoint(p.ip) for p in connected])
    elif word == "connect":
        peer = parse_endpoint(rest.strip())
        if peer is None:
            print("bad command: %r (want connect IP:PORT)" % command, file=sys.stderr, flush=True)
        else:
            handle.connect_peer(peer)
    elif command == "started":
        pending.add("started")
    elif command == "choke_all":
        session.apply_settings({"unchoke_slots_limit": 0})
    elif command == "unchoke_all":
        default = lt.default_settings()["unchoke_slots_limit"]
        session.apply_settings({"unchoke_slots_limit": default})
    elif command in ("quit", ""):
        return False
    return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent")
    source.add_argument("--magnet")
    parser.add_argument("--save", required=True)
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--pex", action="store_true")
    parser.add_argument("--upload-limit", type=int, default=0, metavar="BYTES")
    parser.add_argument("--chokable", action="store_true")
    parser.add_argument("--encryption", choices=["forced"])
    parser.add_argument("--utp-only", action="store_true")
    parser.add_argument("--listen-ip", default="127.0.0.1", metavar="IP")
    parser.add_argument("--only-files", metavar="I,J,...")
    args = parser.parse_args()
    if args.only_files is not None and not args.torrent:
        parser.error("--only-files needs --torrent (the file list)")
    if args.seed and args.magnet:
        parser.error("--seed needs --torrent (a magnet link has no metadata to seed from)")
    if args.upload_limit < 0:
        parser.error("--upload-limit must be >= 0")
    session = make_session(args.port, args.chokable, args.encryption, args.utp_only, args.listen_ip)
    handle = add_torrent(session, args)
    pending = set()
    while True:
        for alert in session.pop_alerts():
            handle_alert(alert)
        if "started" in pending and not handle.flags() & lt.torrent_flags.paused:
            pending.discard("started")
            say("started")
        readable, _, _ = select.select([sys.stdin], [], [], 0.1)
        if readable and not handle_command(sys.stdin.readline(), session, handle, pending):
            return


if __name__ == "__main__":
    main()
