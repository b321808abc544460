"""A libtorrent peer that finds its swarm by local service discovery alone (BEP 14), for
tests/lsd_network.rs.

    /usr/bin/python3 tests/peers/libtorrent_lsd.py --port PORT --torrent FILE --save DIR
        [--seed] [--seconds N]

Runs one libtorrent session listening on 0.0.0.0:PORT (TCP) with LSD on and the DHT, UPnP
and NAT-PMP off, and one torrent with no tracker: every peer it meets, it met through LSD.
Meant to run inside a network namespace (`ip netns exec NS ...`) whose only link is the
test's veth pair. It prints one event per line on stdout:

    ready                   the session listens
    lsd_peer MESSAGE        libtorrent heard an LSD announce for the torrent; the message
                            names the peer's IP:PORT (the binding gives this alert no
                            endpoint attribute)
    peer_connected IP:PORT  a BitTorrent connection is up
    finished                (a leecher) every piece is verified
    exiting                 after --seconds (default 60), or when stdin closes

libtorrent 2.0.8's LSD, as read in its src/lsd.cpp: it announces each torrent when the
torrent starts and every `local_service_announce_interval` (5 minutes), each announce sent
three times (at 0, 2 and 4 seconds); it drops an announce whose source address is not on the
network of the interface it listens on, or whose `cookie` is its own; it reads the method
and header names in any case.
"""

import argparse
import sys
import threading
import time

import libtorrent as lt


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--save", required=True)
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    settings = {
        "listen_interfaces": "0.0.0.0:%d" % args.port,
        "enable_lsd": True,
        "enable_dht": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "alert_mask": lt.alert.category_t.all_categories,
    }
    session = lt.session(settings)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    if args.seed:
        params.flags |= lt.torrent_flags.seed_mode
    # Started at once, not paused and queued: the test measures discovery, not the queue.
    params.flags &= ~lt.torrent_flags.paused
    params.flags &= ~lt.torrent_flags.auto_managed
    session.add_torrent(params)

    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    say("ready")
    deadline = time.monotonic() + args.seconds
    while not stop.is_set() and time.monotonic() < deadline:
        session.wait_for_alert(200)
        for alert in session.pop_alerts():
            # By name: the Python binding has no class for every alert (no lsd_peer_alert).
            kind = alert.what()
            if kind == "lsd_peer":
                say("lsd_peer " + endpoint_of(alert))
            elif kind == "peer_connect":
                say("peer_connected " + endpoint_of(alert))
            elif kind == "torrent_finished" and not args.seed:
                say("finished")
    say("exiting")


def endpoint_of(alert):
    """The peer's IP:PORT of a peer alert, from its `endpoint` when the binding has it."""
    endpoint = getattr(alert, "endpoint", None)
    if endpoint is None:
        return alert.message()
    return "%s:%d" % (endpoint[0], endpoint[1])


def say(line):
    print(line, flush=True)


if __name__ == "__main__":
    main()
