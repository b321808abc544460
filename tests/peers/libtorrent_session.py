"""A libtorrent peer for peerwire's tests, driven over stdin/stdout.

    /usr/bin/python3 tests/peers/libtorrent_session.py --port PORT --torrent FILE --save DIR [--seed]

Runs one libtorrent session on 127.0.0.1:PORT (TCP only: no uTP, DHT, LSD, UPnP or NAT-PMP,
several connections per IP allowed since every test peer is 127.0.0.1) with one torrent.
With --seed the data in DIR is taken as complete (seed mode).

It prints one event per line on stdout (and flushes):
    ready <port>                     the session is listening
    tracker_reply <url> <n>          a tracker answered with n peers
    tracker_error <url> <message>
    peer_connected <ip:port>         a peer connection came up
    finished                         the download completed
    state <name>                     the torrent's state changed (e.g. `state seeding`)
    status <progress> <num_peers> <state>   (answer to `status`)

and reads commands on stdin, one per line:
    reannounce      announce to the trackers now (even inside `min interval`)
    status          print a status line
    quit            exit (also on end of input)
"""
import argparse
import select
import sys
import time

import libtorrent as lt


def say(*words):
    print(*words, flush=True)


def make_session(port):
    settings = {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.all_categories,
    }
    return lt.session(settings)


def add_torrent(session, torrent, save, seed):
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save
    if seed:
        params.flags |= lt.torrent_flags.seed_mode
    return session.add_torrent(params)


def handle_alert(alert):
    if isinstance(alert, lt.listen_succeeded_alert):
        say("ready", alert.port)
    elif isinstance(alert, lt.tracker_reply_alert):
        say("tracker_reply", alert.tracker_url(), alert.num_peers)
    elif isinstance(alert, lt.tracker_error_alert):
        say("tracker_error", alert.tracker_url(), alert.message().replace("\n", " "))
    elif isinstance(alert, lt.peer_connect_alert):
        say("peer_connected", "%s:%d" % (alert.endpoint[0], alert.endpoint[1]))
    elif isinstance(alert, lt.torrent_finished_alert):
        say("finished")
    elif isinstance(alert, lt.state_changed_alert):
        say("state", alert.state)


def handle_command(line, handle):
    command = line.strip()
    if command == "reannounce":
        # libtorrent ignores a re-announce inside the tracker's `min interval` unless told to.
        handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
    elif command == "status":
        s = handle.status()
        say("status", "%.4f" % s.progress, s.num_peers, s.state)
    elif command in ("quit", ""):
        return False
    return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--save", required=True)
    parser.add_argument("--seed", action="store_true")
    args = parser.parse_args()
    session = make_session(args.port)
    handle = add_torrent(session, args.torrent, args.save, args.seed)
    while True:
        for alert in session.pop_alerts():
            handle_alert(alert)
        readable, _, _ = select.select([sys.stdin], [], [], 0.1)
        if readable and not handle_command(sys.stdin.readline(), handle):
            return


if __name__ == "__main__":
    main()
