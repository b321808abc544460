"""A libtorrent session that speaks only uTP (BEP 29, uTorrent transport protocol), for
tests/bench/utp_transfer.py, driven over stdin/stdout.

    /usr/bin/python3 tests/bench/libtorrent_utp.py --port PORT --torrent FILE --save DIR
        [--seed] [--connect IP:PORT]

One libtorrent session on 127.0.0.1:PORT with one torrent: uTP in and out, TCP neither way
(`enable_outgoing_tcp` and `enable_incoming_tcp` False; a TCP connection that reaches the
port is closed), no DHT, LSD, UPnP or NAT-PMP; it dials with a plain handshake (no MSE), as
`peerwire download` does by default, and accepts both. tests/peers/libtorrent_session.py is the
opposite (TCP only); this one is kept apart so that the peers of the tests do not change.

Only status and error alerts are asked for: a session that posts an alert per block spends
CPU on them, and libtorrent is the yardstick here.

It prints, one per line (flushed):
    ready <port>        the UDP socket (uTP) is listening and the torrent is active
    finished            the download completed
    stats name=value …  (answer to `stats`) libtorrent's uTP counters since the start:
                        packets in and out, payload packets, resends, fast retransmits,
                        timeouts, losses, redundant packets received, delay samples above and
                        below LEDBAT's target, and the uTP / TCP peers connected now

and reads commands on stdin: `stats`, `quit` (also on end of input).
"""
import argparse
import select
import sys
import time

import libtorrent as lt

COUNTERS = [
    "utp.utp_packets_in", "utp.utp_packets_out", "utp.utp_payload_pkts_in", "utp.utp_payload_pkts_out",
    "utp.utp_packet_resend", "utp.utp_fast_retransmit", "utp.utp_timeout", "utp.utp_packet_loss",
    "utp.utp_redundant_pkts_in", "utp.utp_invalid_pkts_in", "utp.utp_samples_above_target",
    "utp.utp_samples_below_target", "peer.num_utp_peers", "peer.num_tcp_peers",
]


def say(*words):
    print(*words, flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--save", required=True)
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--connect", metavar="IP:PORT")
    args = parser.parse_args()
    category = lt.alert.category_t
    session = lt.session({
        "listen_interfaces": "127.0.0.1:%d" % args.port,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_tcp": False,
        "enable_incoming_tcp": False,
        "enable_outgoing_utp": True,
        "enable_incoming_utp": True,
        "allow_multiple_connections_per_ip": True,
        # Dial with a plain handshake, as peerwire does by default; accept both.
        "out_enc_policy": int(lt.enc_policy.disabled),
        "alert_mask": category.status_notification | category.error_notification,
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    if args.seed:
        params.flags |= lt.torrent_flags.seed_mode
    # Started at once: an auto-managed torrent starts paused and is resumed by the queue about
    # half a second later.
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    handle = session.add_torrent(params)
    stats_wanted = False
    listening = ready = False
    active = (lt.torrent_status.states.seeding, lt.torrent_status.states.downloading)
    while True:
        # Polling, not wait_for_alert: its returned alert can be moved by a growing alert
        # queue while the binding reads it (a segfault seen in the tests).
        time.sleep(0.02)
        # Ready once uTP listens AND the torrent is active and not paused: until then
        # libtorrent refuses every incoming connection (measured: it answers the ST_SYN with
        # an ST_FIN).
        status = handle.status() if listening and not ready else None
        if status and status.state in active and not status.paused:
            ready = True
            say("ready", args.port)
            if args.connect:
                host, _, port = args.connect.rpartition(":")
                handle.connect_peer((host, int(port)))
        for alert in session.pop_alerts():
            if isinstance(alert, lt.listen_succeeded_alert) and alert.socket_type == lt.socket_type_t.utp:
                listening = True
            elif isinstance(alert, lt.listen_failed_alert):
                say("listen_failed", alert.message())
            elif isinstance(alert, lt.torrent_finished_alert):
                say("finished")
            elif isinstance(alert, lt.session_stats_alert) and stats_wanted:
                stats_wanted = False
                # The bindings give the counters as a dictionary by name.
                values = alert.values
                say("stats", *["%s=%d" % (n.split(".")[1], values[n]) for n in COUNTERS])
        readable, _, _ = select.select([sys.stdin], [], [], 0)
        if readable:
            command = sys.stdin.readline().strip()
            if command == "stats":
                stats_wanted = True
                session.post_session_stats()
            elif command in ("quit", ""):
                return


if __name__ == "__main__":
    main()
