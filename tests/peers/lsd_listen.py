"""Listens on the LSD multicast group (BEP 14) and prints every datagram that arrives, for
tests/lsd_network.rs: the ear in a network namespace that tells whether a peer announced.

    python3 tests/peers/lsd_listen.py [--seconds N]

Prints `ready` once it has joined 239.192.152.143 and bound port 6771, then one line per
datagram: `from IP:PORT` and the datagram's lines joined by `|` (CR and LF dropped). Exits
after --seconds (default 30) or when stdin closes.
"""

import argparse
import socket
import struct
import sys
import threading
import time

GROUP = "239.192.152.143"
PORT = 6771


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((GROUP, PORT))
    membership = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton("0.0.0.0"))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    sock.settimeout(0.2)
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("ready", flush=True)
    deadline = time.monotonic() + args.seconds
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            data, sender = sock.recvfrom(2048)
        except socket.timeout:
            continue
        text = data.decode("latin-1").replace("\r", "").split("\n")
        print("from %s:%d %s" % (sender[0], sender[1], "|".join(text)), flush=True)
    print("exiting", flush=True)


if __name__ == "__main__":
    main()
