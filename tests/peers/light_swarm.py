"""Many light BitTorrent peers in one Python process (BEP 3, "The BitTorrent Protocol
Specification"): the crowd for tests/many_peers.rs and tests/bench/many_peers.py.

    python3 tests/peers/light_swarm.py leech TORRENT --connect HOST:PORT --count N
            [--first-ip 127.10.0.1] [--pipeline 4] [--rate 200] [--seconds 60]
    python3 tests/peers/light_swarm.py seed TORRENT DATA --count N --port PORT
            [--first-ip 127.20.0.1] [--seconds 60]

One thread, one `selectors` loop, non-blocking sockets; every peer has its own address on
127.0.0.0/8 (all of it is loopback on Linux), bound before it connects or listens, so the
peer under test sees N distinct peers. Only what BEP 3 needs is spoken: the handshake (all
reserved bits zero: no extension, no fast extension), bitfield, have, interested / not
interested, choke / unchoke, request / piece / cancel, keep-alive. Single-file v1 torrents
(the `pieces` SHA-1 list; a hybrid torrent's v1 half works too).

leech: N leechers dial one peer at --rate connections per second, say `interested`, and while
unchoked keep --pipeline requests in flight, pieces in order from a random first one. A finished
piece is checked against its SHA-1; once every piece is in, the leecher says `not interested`
and stays connected (so the count of live connections holds) until the end.

seed: N seeders, each listening on its own address at the same --port, serve DATA (read from
disk with pread, never held in memory) to whoever connects: bitfield, unchoke on interest, a
block per request. At most --queue requests wait per connection, and at most 256 KiB of blocks
per connection sit unsent; a peer that asks for more is dropped.

Output, on stdout, one line per event (the time is seconds since the start):
    ready                                   (seed: every address listens)
    connected IP T                          (leech: handshake answered)
    failed IP T REASON                      (a connection that ended before or after it began)
    unchoked IP T / choked IP T
    first_block IP T DELAY                  (leech: first block after an unchoke we wanted)
    complete IP T                           (leech: every piece in and verified)
and, when the deadline passes or SIGTERM/SIGINT arrives, one
`peer {json}` line per peer and a last `summary {json}` line. Memory is bounded by N times
(one piece being assembled per request in flight + 256 KiB of outbox); time by --seconds.
"""

import argparse
import errno
import hashlib
import json
import os
import random
import resource
import selectors
import signal
import socket
import struct
import sys
import time

PROTOCOL = b"\x13BitTorrent protocol"
BLOCK = 16 * 1024
# Longer messages than this are not BEP 3 traffic we asked for: the peer is dropped.
MAX_MESSAGE = BLOCK + 13
OUTBOX_LIMIT = 256 * 1024
KEEP_ALIVE_EVERY = 60.0
START = time.monotonic()


def now():
    return time.monotonic() - START


# ---- bencode: only decoding, and the raw bytes of the info dictionary ------------------------

def bdecode(data, at=0):
    """Decodes the value at `at`; returns (value, end). Keys stay bytes."""
    kind = data[at:at + 1]
    if kind == b"i":
        end = data.index(b"e", at)
        return int(data[at + 1:end]), end + 1
    if kind == b"l":
        at, items = at + 1, []
        while data[at:at + 1] != b"e":
            item, at = bdecode(data, at)
            items.append(item)
        return items, at + 1
    if kind == b"d":
        at, items = at + 1, {}
        while data[at:at + 1] != b"e":
            key, at = bdecode(data, at)
            start = at
            value, at = bdecode(data, at)
            items[key] = value
            if key == b"info":
                items[b"__info_span"] = (start, at)
        return items, at + 1
    colon = data.index(b":", at)
    length = int(data[at:colon])
    return data[colon + 1:colon + 1 + length], colon + 1 + length


class Torrent:
    def __init__(self, path):
        raw = open(path, "rb").read()
        meta, _ = bdecode(raw)
        start, end = meta[b"__info_span"]
        info = meta[b"info"]
        self.info_hash = hashlib.sha1(raw[start:end]).digest()
        self.piece_length = info[b"piece length"]
        if b"length" in info:
            self.length = info[b"length"]
        else:
            # A hybrid or multi-file torrent: the v1 view is every file end to end.
            self.length = sum(f[b"length"] for f in info[b"files"])
        hashes = info[b"pieces"]
        self.hashes = [hashes[i:i + 20] for i in range(0, len(hashes), 20)]
        self.num_pieces = len(self.hashes)

    def piece_size(self, index):
        return min(self.piece_length, self.length - index * self.piece_length)

    def blocks(self, index):
        size = self.piece_size(index)
        return [(index, begin, min(BLOCK, size - begin)) for begin in range(0, size, BLOCK)]


def ip_plus(first, n):
    value = struct.unpack("!I", socket.inet_aton(first))[0] + n
    return socket.inet_ntoa(struct.pack("!I", value))


def emit(*words):
    print(" ".join(str(w) for w in words), flush=False)


def frame(msg_id, payload=b""):
    return struct.pack("!IB", 1 + len(payload), msg_id) + payload


class Peer:
    """One connection's socket, buffers and counters; the modes below give it its manners."""

    def __init__(self, swarm, ip, sock):
        self.swarm, self.ip, self.sock = swarm, ip, sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.shaken = False
        self.closed = None
        self.connect_time = None
        self.last_sent = now()
        self.sent = self.received = 0
        # What the selector watches for: write interest only while the outbox holds bytes,
        # or every idle socket would wake the loop.
        self.mask = selectors.EVENT_READ | selectors.EVENT_WRITE

    def sync(self):
        if self.closed is not None:
            return
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbox else 0)
        if mask != self.mask:
            self.mask = mask
            self.swarm.selector.modify(self.sock, mask, self)

    def queue(self, data):
        self.outbox += data
        self.last_sent = now()

    def close(self, reason):
        if self.closed is None:
            self.closed = reason
            emit("failed", self.ip, "%.3f" % now(), reason.replace(" ", "_"))
            try:
                self.swarm.selector.unregister(self.sock)
            except (KeyError, ValueError):
                pass
            self.sock.close()

    def on_readable(self):
        try:
            data = self.sock.recv(256 * 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return self.close("read: %s" % e.strerror)
        if not data:
            return self.close("closed by the other side")
        self.inbox += data
        self.parse()

    def on_writable(self):
        if not self.outbox:
            return
        try:
            n = self.sock.send(self.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return self.close("write: %s" % e.strerror)
        del self.outbox[:n]

    def parse(self):
        if not self.shaken:
            if len(self.inbox) < 68:
                return
            if self.inbox[:20] != PROTOCOL or self.inbox[28:48] != self.swarm.torrent.info_hash:
                return self.close("bad handshake")
            del self.inbox[:68]
            self.shaken = True
            self.on_handshake()
        while self.closed is None and len(self.inbox) >= 4:
            (length,) = struct.unpack_from("!I", self.inbox)
            if length > MAX_MESSAGE:
                return self.close("message of %d bytes" % length)
            if len(self.inbox) < 4 + length:
                return
            body = bytes(self.inbox[4:4 + length])
            del self.inbox[:4 + length]
            if length:
                self.on_message(body[0], body[1:])

    def handshake(self):
        self.queue(PROTOCOL + bytes(8) + self.swarm.torrent.info_hash + self.swarm.peer_id(self.ip))

    def tick(self, t):
        if t - self.last_sent > KEEP_ALIVE_EVERY:
            self.queue(b"\0\0\0\0")


class Leecher(Peer):
    def __init__(self, swarm, ip, sock):
        super().__init__(swarm, ip, sock)
        t = swarm.torrent
        self.have = [False] * t.num_pieces
        self.peer_has = [False] * t.num_pieces
        self.order = list(range(t.num_pieces))
        # A random first piece: 500 leechers asking for piece 0 at once would all read the
        # same few blocks, and tell us nothing about the seed's disk path.
        first = random.randrange(t.num_pieces)
        self.order = self.order[first:] + self.order[:first]
        self.todo = []  # blocks not yet asked for, of pieces being fetched
        self.in_flight = set()
        self.partial = {}  # piece -> (bytearray, blocks still missing)
        self.unchoked = False
        self.unchokes = []  # [unchoke time, first block delay or None, choke time or None]
        self.complete_at = None
        self.bad_pieces = 0

    def on_handshake(self):
        self.connect_time = now()
        emit("connected", self.ip, "%.3f" % self.connect_time)
        self.queue(frame(2))  # interested: a seed has something for us whatever it says

    def wanted(self):
        return self.complete_at is None

    def on_message(self, msg_id, payload):
        t = now()
        if msg_id == 0:  # choke: BEP 3 says the peer drops our requests
            if self.unchoked:
                self.unchoked = False
                self.unchokes[-1][2] = t
                emit("choked", self.ip, "%.3f" % t)
                self.todo = sorted(self.in_flight) + self.todo
                self.in_flight.clear()
        elif msg_id == 1:
            if not self.unchoked:
                self.unchoked = True
                # Only an unchoke we can use is judged: a finished leecher asks nothing.
                self.unchokes.append([t, None, None, self.wanted()])
                emit("unchoked", self.ip, "%.3f" % t)
                self.request_more()
        elif msg_id == 4 and len(payload) == 4:
            (index,) = struct.unpack("!I", payload)
            if index < len(self.peer_has):
                self.peer_has[index] = True
                self.request_more()
        elif msg_id == 5:
            for i in range(self.swarm.torrent.num_pieces):
                if i // 8 < len(payload) and payload[i // 8] & (0x80 >> (i % 8)):
                    self.peer_has[i] = True
            self.request_more()  # an unchoke may have come before the bitfield
        elif msg_id == 14:
            self.peer_has = [True] * self.swarm.torrent.num_pieces
            self.request_more()
        elif msg_id == 7 and len(payload) >= 8:
            self.on_block(t, payload)

    def on_block(self, t, payload):
        index, begin = struct.unpack_from("!II", payload)
        data = payload[8:]
        key = (index, begin, len(data))
        if key not in self.in_flight:
            return  # unasked or cancelled: ignored, as BEP 3 allows
        self.in_flight.discard(key)
        self.received += len(data)
        if self.unchokes and self.unchokes[-1][1] is None and self.unchokes[-1][2] is None:
            delay = t - self.unchokes[-1][0]
            self.unchokes[-1][1] = delay
            emit("first_block", self.ip, "%.3f" % t, "%.3f" % delay)
        buffer, missing = self.partial[index]
        buffer[begin:begin + len(data)] = data
        missing.discard(begin)
        if not missing:
            del self.partial[index]
            if self.swarm.verify and hashlib.sha1(buffer).digest() != self.swarm.torrent.hashes[index]:
                self.bad_pieces += 1
                self.start_piece(index)  # fetched again
            else:
                self.have[index] = True
                if all(self.have):
                    self.complete_at = t
                    emit("complete", self.ip, "%.3f" % t)
                    self.queue(frame(3))  # not interested: the slot can go to someone else
        self.request_more()

    def start_piece(self, index):
        size = self.swarm.torrent.piece_size(index)
        blocks = self.swarm.torrent.blocks(index)
        self.partial[index] = (bytearray(size), {b for _, b, _ in blocks})
        self.todo.extend(blocks)

    def request_more(self):
        if not self.unchoked or self.complete_at is not None:
            return
        while len(self.in_flight) < self.swarm.pipeline:
            if not self.todo:
                nxt = next((i for i in self.order if not self.have[i] and i not in self.partial
                            and self.peer_has[i]), None)
                if nxt is None:
                    return
                self.start_piece(nxt)
            block = self.todo.pop(0)
            self.in_flight.add(block)
            self.queue(frame(6, struct.pack("!III", *block)))

    def record(self):
        return {
            "ip": self.ip,
            "connect": self.connect_time,
            "received": self.received,
            "complete": self.complete_at,
            "bad_pieces": self.bad_pieces,
            "closed": self.closed,
            "unchokes": [{"at": u[0], "first_block": u[1], "choked": u[2], "wanted": u[3]}
                         for u in self.unchokes],
        }


class Seeder(Peer):
    def __init__(self, swarm, ip, sock):
        super().__init__(swarm, ip, sock)
        self.requests = []
        self.connect_time = None

    def on_handshake(self):
        self.connect_time = now()
        self.handshake()
        n = self.swarm.torrent.num_pieces
        bits = bytearray((n + 7) // 8)
        for i in range(n):
            bits[i // 8] |= 0x80 >> (i % 8)
        self.queue(frame(5, bytes(bits)))

    def on_message(self, msg_id, payload):
        if msg_id == 2:
            self.queue(frame(1))  # unchoked at once: every seeder serves whoever asks
        elif msg_id == 6 and len(payload) == 12:
            if len(self.requests) >= self.swarm.queue_limit:
                return self.close("more than %d requests queued" % self.swarm.queue_limit)
            index, begin, length = struct.unpack("!III", payload)
            t = self.swarm.torrent
            if index >= t.num_pieces or length > BLOCK or begin + length > t.piece_size(index):
                return self.close("bad request %d/%d/%d" % (index, begin, length))
            self.requests.append((index, begin, length))
        elif msg_id == 8 and len(payload) == 12:
            cancelled = struct.unpack("!III", payload)
            if cancelled in self.requests:
                self.requests.remove(cancelled)
        self.serve()

    def serve(self):
        t = self.swarm.torrent
        while self.requests and len(self.outbox) < OUTBOX_LIMIT and self.closed is None:
            index, begin, length = self.requests.pop(0)
            data = os.pread(self.swarm.data_fd, length, index * t.piece_length + begin)
            self.queue(frame(7, struct.pack("!II", index, begin) + data))
            self.sent += length

    def on_writable(self):
        super().on_writable()
        self.serve()

    def record(self):
        return {"ip": self.ip, "connect": self.connect_time, "sent": self.sent,
                "closed": self.closed}


class Swarm:
    def __init__(self, args):
        self.args = args
        self.torrent = Torrent(args.torrent)
        self.selector = selectors.DefaultSelector()
        self.peers = []
        self.pipeline = getattr(args, "pipeline", 4)
        self.verify = not getattr(args, "no_verify", False)
        self.queue_limit = getattr(args, "queue", 256)
        self.stop = False

    def peer_id(self, ip):
        return ("-LS0001-%012d" % (struct.unpack("!I", socket.inet_aton(ip))[0] % 10**12)).encode()

    def watch(self, peer):
        self.selector.register(peer.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, peer)

    def dial(self, ip, target):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((ip, 0))
        sock.setblocking(False)
        peer = Leecher(self, ip, sock)
        err = sock.connect_ex(target)
        if err not in (0, errno.EINPROGRESS):
            peer.closed = "connect: %s" % os.strerror(err)
            emit("failed", ip, "%.3f" % now(), "connect")
            sock.close()
        else:
            peer.handshake()
            self.watch(peer)
        self.peers.append(peer)

    def run(self, deadline, listeners=(), dials=()):
        """The loop: dial on schedule, accept, read, write, until the deadline or a stop."""
        dials = list(dials)
        next_dial = 0.0
        interval = 1.0 / self.args.rate if getattr(self.args, "rate", 0) else 0.0
        next_tick = now() + 1.0
        while not self.stop and now() < deadline:
            t = now()
            while dials and t >= next_dial:
                ip, target = dials.pop(0)
                self.dial(ip, target)
                next_dial = t + interval
            timeout = min(0.1, max(0.0, next_dial - t)) if dials else 0.1
            for key, events in self.selector.select(timeout):
                if key.data is None:
                    self.accept(key.fileobj)
                    continue
                peer = key.data
                if events & selectors.EVENT_READ and peer.closed is None:
                    peer.on_readable()
                if events & selectors.EVENT_WRITE and peer.closed is None:
                    peer.on_writable()
                peer.sync()
            if t >= next_tick:
                next_tick = t + 1.0
                for peer in self.peers:
                    if peer.closed is None and peer.shaken:
                        peer.tick(t)
                        peer.sync()
                sys.stdout.flush()

    def accept(self, listener):
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = Seeder(self, listener.getsockname()[0], sock)
        self.peers.append(peer)
        self.watch(peer)

    def finish(self):
        for peer in self.peers:
            emit("peer", json.dumps(peer.record()))
            if peer.closed is None:
                peer.sock.close()
        connected = [p for p in self.peers if p.connect_time is not None]
        emit("summary", json.dumps({"peers": len(self.peers), "connected": len(connected),
                                    "elapsed": now()}))
        sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    leech = modes.add_parser("leech")
    leech.add_argument("torrent")
    leech.add_argument("--connect", required=True, help="HOST:PORT of the peer to dial")
    leech.add_argument("--count", type=int, required=True)
    leech.add_argument("--first-ip", default="127.10.0.1")
    leech.add_argument("--pipeline", type=int, default=4)
    leech.add_argument("--rate", type=float, default=200.0, help="connections per second")
    leech.add_argument("--seconds", type=float, default=60.0)
    leech.add_argument("--no-verify", action="store_true")
    seed = modes.add_parser("seed")
    seed.add_argument("torrent")
    seed.add_argument("data")
    seed.add_argument("--count", type=int, required=True)
    seed.add_argument("--port", type=int, required=True)
    seed.add_argument("--first-ip", default="127.20.0.1")
    seed.add_argument("--queue", type=int, default=256)
    seed.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    # One descriptor per peer (and per listener): the soft limit is raised as far as the hard
    # one allows, so that 500 peers work where the default soft limit is 1024 or lower.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * args.count + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
    swarm = Swarm(args)

    def stop(*_):
        swarm.stop = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    deadline = now() + args.seconds

    if args.mode == "leech":
        host, port = args.connect.rsplit(":", 1)
        target = (host, int(port))
        dials = [(ip_plus(args.first_ip, i), target) for i in range(args.count)]
        swarm.run(deadline, dials=dials)
    else:
        swarm.data_fd = os.open(args.data, os.O_RDONLY)
        for i in range(args.count):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((ip_plus(args.first_ip, i), args.port))
            listener.listen(8)
            listener.setblocking(False)
            swarm.selector.register(listener, selectors.EVENT_READ, None)
        emit("ready")
        sys.stdout.flush()
        swarm.run(deadline)
    swarm.finish()


if __name__ == "__main__":
    main()
