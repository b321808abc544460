"""A libtorrent peer for the network lab (tests/lab/lab.py): one session in one network
namespace, seeding or leeching one torrent, over TCP by default.

    /usr/bin/python3 tests/lab/lt_peer.py --listen IP:PORT --torrent FILE --save DIR
        [--seed] [--wait-for-go] [--utp] [--local-unchoke]

It learns peers from the torrent's tracker only: no DHT, LSD, UPnP or NAT-PMP (peer exchange,
BEP 11, stays on, as in every libtorrent session). After completion it goes on seeding until it
is told to stop.

Options:
    --listen IP:PORT   where it listens for peers (the namespace's lab address)
    --torrent FILE     the .torrent
    --save DIR         where the data is saved (or, with --seed, read from)
    --seed             the data in DIR is complete (libtorrent's seed mode: no hash check first)
    --wait-for-go      start the session, print `ready`, and add the torrent only when a line
                       `go` arrives on stdin: the lab starts every leecher's interpreter and
                       session first, then lets them all go at the swarm's start
    --utp              uTP (BEP 29) as well as TCP; without it TCP only, like every client in
                       the lab by default, so that all of them see the same shaped TCP links
    --local-unchoke    keep libtorrent's "local" peer class as it is. libtorrent 2.0.8 puts
                       peers on private networks (the lab's 10.213.0.0/16 is one) in that class,
                       which ignores unchoke slots: every interested peer is unchoked at once.
                       By default the lab clears that (`ignore_unchoke_slots` False), so that
                       libtorrent chokes as it would with peers on the internet.

It prints one JSON object per line on stdout, flushed:
    {"event": "ready"}                        listening (and, with --wait-for-go, waiting)
    {"event": "tracker", "peers": N}          a tracker answered with N peers
    {"event": "finished", "at": EPOCH}        every piece is verified (torrent_finished_alert)
    {"event": "stats", "at": EPOCH, "uploaded": B, "downloaded": B, "peers": N,
     "unchoked": N, "per_peer": {"IP:PORT": [uploaded, downloaded], ...}}
                                              payload bytes this session, once a second and
                                              once more when it stops
It stops on SIGTERM or SIGINT, or on `quit` or end of input on stdin.

Alerts are polled with `pop_alerts`; `wait_for_alert` is never called (the 2.0.8 binding
crashes in it).
"""
import argparse
import json
import select
import signal
import sys
import time

import libtorrent as lt

STOP = []


def say(**fields):
    print(json.dumps(fields), flush=True)


def on_signal(signum, _frame):
    STOP.append(signum)


def make_session(listen, utp, local_unchoke):
    categories = lt.alert.category_t
    settings = {
        "listen_interfaces": listen,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": utp,
        "enable_incoming_utp": utp,
        "alert_mask": categories.status_notification | categories.error_notification
        | categories.tracker_notification,
    }
    session = lt.session(settings, lt.session_flags_t.add_default_plugins)
    if not local_unchoke:
        # Before any peer connects: a peer unchoked while the class ignored the slots is not
        # counted among the unchoked, and choking it later confuses libtorrent's count.
        # The whole class, changed in one field: the 2.0.8 binding fills the fields a partial
        # dict leaves out with garbage (measured: `download_limit` 32757 bytes/s, `label`
        # empty, `upload_priority` 255).
        local = session.get_peer_class(lt.session.local_peer_class_id)
        local["ignore_unchoke_slots"] = False
        session.set_peer_class(lt.session.local_peer_class_id, local)
    return session


def add_torrent(session, torrent, save, seed):
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save
    if seed:
        params.flags |= lt.torrent_flags.seed_mode
    return session.add_torrent(params)


def stats(handle):
    if handle is None:
        return
    status = handle.status()
    per_peer = {}
    for peer in handle.get_peer_info():
        key = "%s:%d" % (peer.ip[0], peer.ip[1])
        per_peer[key] = [peer.total_upload, peer.total_download]
    say(event="stats", at=time.time(), uploaded=status.total_payload_upload,
        downloaded=status.total_payload_download, peers=status.num_peers,
        unchoked=status.num_uploads, per_peer=per_peer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True, metavar="IP:PORT")
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--save", required=True)
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--wait-for-go", action="store_true")
    parser.add_argument("--utp", action="store_true")
    parser.add_argument("--local-unchoke", action="store_true")
    args = parser.parse_args()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    session = make_session(args.listen, args.utp, args.local_unchoke)
    handle = None
    if not args.wait_for_go:
        handle = add_torrent(session, args.torrent, args.save, args.seed)
    said_ready = False
    next_stats = time.monotonic() + 1.0
    while not STOP:
        for alert in session.pop_alerts():
            if isinstance(alert, lt.listen_succeeded_alert) and not said_ready:
                said_ready = True
                say(event="ready")
            elif isinstance(alert, lt.tracker_reply_alert):
                say(event="tracker", peers=alert.num_peers)
            elif isinstance(alert, lt.torrent_finished_alert) and not args.seed:
                say(event="finished", at=time.time())
        if time.monotonic() >= next_stats:
            next_stats += 1.0
            stats(handle)
        # Waiting on stdin doubles as the alert poll interval (0.1 s).
        readable, _, _ = select.select([sys.stdin], [], [], 0.1)
        if readable:
            line = sys.stdin.readline()
            if line.strip() == "go" and handle is None:
                handle = add_torrent(session, args.torrent, args.save, args.seed)
            elif line == "" or line.strip() == "quit":
                break
    stats(handle)


if __name__ == "__main__":
    main()
