"""Benchmark: a DHT lookup (BEP 5, DHT Protocol) by peerwire and by libtorrent, side by side, on
the same loopback network of libtorrent nodes.

    /usr/bin/python3 tests/bench/dht_lookup.py [--nodes N] [--degree K] [--rounds R]
        [--peerwire PATH]

Each round builds a fresh network (tests/peers/libtorrent_dht.py): N libtorrent nodes (default
80) on 127.0.2.1, 127.0.2.2, ..., one port. Each node is given only the K nodes after it in
index order (default 3); node ids are random, so these are random points of the id space. Then
every node looks up its own id, as a Kademlia node does when it joins, so that its table holds
its neighbours in the id space. Measured with N=80, K=3: tables of about 22 nodes (libtorrent
also adds every node that queries it), so a node knows a quarter of the network and a lookup
from a node that knows one node takes a few rounds of queries. Without the self-lookups (a
sparse random mesh only) the seeder's announce lands on nodes that are closest among those it
can reach, not in the id space, and lookups from elsewhere miss it (measured: 0 of 5 with N=80);
a full mesh would answer every lookup in one hop. Node 0 seeds a small torrent and announces it
(libtorrent stores the peer at the 8 closest nodes it finds). Then, for that info hash:

  libtorrent  one more libtorrent node, in no table and knowing only the bootstrap node B (a
              node that neither holds the announce nor has the seeder in its table), runs
              session.dht_get_peers. Measured: ms until the first reply carrying peers (the
              seeder), ms until the lookup ends, get_peers queries it sent (one
              dht_outgoing_get_peers_alert each).
  peerwire    `peerwire dht_get_peers HASH --dht-bootstrap B --bind 127.0.3.1` (the release
              build, or --peerwire PATH). Its stdout: one `step <n>: asked <ip:port> ...` line
              per query sent, then `Peers:`, then one ip:port per line. Measured: ms until the
              seeder's address is printed, wall ms of the command, step lines (= queries).

Both start knowing exactly one node, B. The order alternates between rounds (each lookup teaches
the network about its querier). Reported: each round, then the medians side by side and the
ratios peerwire / libtorrent. Not a test: speed is measured here, never asserted.
"""
import argparse
import os
import queue
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(REPO, "tests", "peers", "libtorrent_dht.py")
PYTHON = "/usr/bin/python3"
FIRST_IP = "127.0.2.1"
PEERWIRE_IP = "127.0.3.1"
LOOKUP_DEADLINE = 60


def free_port():
    import socket
    while True:
        port = 20000 + int.from_bytes(os.urandom(2), "big") % 12000
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((FIRST_IP, port))
                return port
            except OSError:
                continue


class Lines:
    """A child's stdout, read on a thread, each line with the time it arrived."""

    def __init__(self, stream):
        self.queue = queue.Queue()
        threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    def _drain(self, stream):
        for line in stream:
            self.queue.put((time.monotonic(), line.rstrip("\n")))
        self.queue.put((time.monotonic(), None))

    def next(self, until):
        """(arrival time, line), or (time, None) at end of stream; raises at the deadline."""
        left = until - time.monotonic()
        if left <= 0:
            raise TimeoutError
        try:
            return self.queue.get(timeout=left)
        except queue.Empty:
            raise TimeoutError from None


class Network:
    def __init__(self, count, port):
        self.port = port
        self.count = count
        first = [int(x) for x in FIRST_IP.split(".")]
        self.addrs = ["%d.%d.%d.%d:%d" % (first[0], first[1], first[2], first[3] + i, port)
                      for i in range(count)]
        self.proc = subprocess.Popen(
            [PYTHON, DRIVER, "--count", str(count), "--first-ip", FIRST_IP, "--port", str(port),
             "--max-seconds", "240"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = Lines(self.proc.stdout)
        self.seen = []

    def send(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait_for(self, prefix, deadline=30):
        until = time.monotonic() + deadline
        while True:
            try:
                at, line = self.lines.next(until)
            except TimeoutError:
                raise RuntimeError("no %r within %d s; latest lines:\n  %s" % (
                    prefix, deadline, "\n  ".join(l for _, l in self.seen[-15:]))) from None
            if line is None:
                raise RuntimeError("the driver exited waiting for %r" % prefix)
            self.seen.append((at, line))
            if line.startswith(prefix):
                return at, line
            if line.startswith("error "):
                raise RuntimeError(line)

    def lines_until(self, quiet):
        """Every line until none came for `quiet` seconds (announces arrive in one burst)."""
        got = []
        while True:
            try:
                at, line = self.lines.next(time.monotonic() + quiet)
            except TimeoutError:
                return got
            if line is None:
                return got
            self.seen.append((at, line))
            got.append(line)

    def live(self, i):
        self.send("live %d" % i)
        return self.wait_for("live %d" % i)[1].split()[2:]

    def close(self):
        try:
            self.send("quit")
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def make_torrent(work):
    """A 256 KiB trackerless torrent, made by libtorrent (so that any --peerwire will do)."""
    import libtorrent as lt
    seed = os.path.join(work, "seed")
    os.makedirs(seed)
    with open(os.path.join(seed, "bench.bin"), "wb") as f:
        f.write(os.urandom(256 * 1024))
    files = lt.file_storage()
    lt.add_files(files, os.path.join(seed, "bench.bin"))
    # v1 only: a hybrid torrent (libtorrent 2.0's default) is announced under two info hashes.
    maker = lt.create_torrent(files, 16384, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(maker, seed)
    torrent = os.path.join(work, "bench.torrent")
    with open(torrent, "wb") as f:
        f.write(lt.bencode(maker.generate()))
    return seed, torrent


def libtorrent_lookup(net, querier, bootstrap, info_hash, seeder):
    net.send("add_node %d %s" % (querier, bootstrap))
    # The bootstrap node is in the table once it answered libtorrent's ping.
    until = time.monotonic() + 10
    while True:
        net.send("table %d" % querier)
        if int(net.wait_for("table %d " % querier)[1].split()[2]) >= 1:
            break
        if time.monotonic() > until:
            raise RuntimeError("the bootstrap node %s never answered libtorrent" % bootstrap)
    net.send("get_peers %d %s" % (querier, info_hash))
    _, peers = net.wait_for("peers %d %s" % (querier, info_hash), LOOKUP_DEADLINE)
    _, asked = net.wait_for("asked %d %s" % (querier, info_hash), 10)
    _, lookup = net.wait_for("lookup %d %s" % (querier, info_hash), 10)
    if os.environ.get("DHT_BENCH_VERBOSE"):
        print("  libtorrent " + asked + "\n  libtorrent " + lookup, flush=True)
    words = lookup.split()
    fields = dict(zip(words[3::2], words[4::2]))
    first = fields["first_peer_ms"]
    counters = dict(w.split("=") for w in words[words.index("counters") + 1:])
    return {
        "found": seeder in peers.split()[3:],
        "first_ms": float(first) if first != "-" else float("nan"),
        "done_ms": float(fields["done_ms"]),
        "queries": int(fields["queries"]),
        "get_peers_out": int(counters["dht_get_peers_out"]),
    }


def peerwire_lookup(peerwire, bootstrap, info_hash, seeder):
    command = [peerwire, "dht_get_peers", info_hash, "--dht-bootstrap", bootstrap,
               "--bind", PEERWIRE_IP]
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = Lines(proc.stdout)
    steps, unanswered, in_peers, found_at = 0, 0, False, None
    until = started + LOOKUP_DEADLINE
    try:
        while True:
            at, line = lines.next(until)
            if line is None:
                break
            if line.startswith("step "):
                steps += 1
                if "no answer" in line or "timeout" in line or "timed out" in line:
                    unanswered += 1
            elif line.strip() == "Peers:":
                in_peers = True
            elif in_peers and line.strip() == seeder and found_at is None:
                found_at = at
    except TimeoutError:
        proc.kill()
    code = proc.wait()
    wall = time.monotonic() - started
    errors = proc.stderr.read()
    if code != 0 and steps == 0:
        raise RuntimeError("%s failed (%s): %s" % (" ".join(command), code, errors.strip()[-300:]))
    return {
        "found": found_at is not None,
        "first_ms": (found_at - started) * 1000 if found_at else float("nan"),
        "done_ms": wall * 1000,
        "queries": steps,
        "unanswered": unanswered,
    }


def one_round(args, r, torrent, seed_dir):
    port = free_port()
    count = args.nodes + 1  # the last node is libtorrent's querier, in no table
    querier = args.nodes
    net = Network(count, port)
    try:
        net.wait_for("all_ready", 30)
        ids = [line.split()[3] for _, line in net.seen if line.startswith("ready ")]
        net.send("mesh %d %d" % (args.degree, args.nodes))
        net.wait_for("meshed", 30)
        # Each node looks up its own id, as a Kademlia node does when it joins: its table then
        # holds its neighbours in the id space, not only the random nodes it was given.
        for i in range(args.nodes):
            net.send("get_peers %d %s" % (i, ids[i]))
        for i in range(args.nodes):
            net.wait_for("lookup ", 30)
        tables = []
        for i in range(args.nodes):
            net.send("table %d" % i)
            tables.append(int(net.wait_for("table %d " % i)[1].split()[2]))
        net.send("seed 0 %s %s" % (torrent, seed_dir))
        _, seeding = net.wait_for("seeding 0 ", 30)
        info_hash = seeding.split()[2]
        net.wait_for("announced ", 30)
        burst = net.lines_until(1.0)
        holders = {0} | {int(line.split()[1]) for line in burst
                         if line.startswith("announced ") and line.split()[2] == info_hash}
        seeder = net.addrs[0]
        # B: holds no announce and does not have the seeder in its table; searched from the
        # node opposite the seeder in the ring of the mesh (the seeder's announce lands on
        # nodes it can reach in few hops, i.e. mostly its ring neighbours and theirs).
        bootstrap = None
        half = args.nodes // 2
        for b in sorted(range(1, args.nodes), key=lambda b: abs(b - half)):
            if b not in holders and seeder not in net.live(b):
                bootstrap = net.addrs[b]
                break
        if bootstrap is None:
            raise RuntimeError("every node holds the announce or knows the seeder: use more nodes")
        order = ["libtorrent", "peerwire"] if r % 2 == 0 else ["peerwire", "libtorrent"]
        results = {}
        for who in order:
            if who == "libtorrent":
                results[who] = libtorrent_lookup(net, querier, bootstrap, info_hash, seeder)
            elif args.peerwire_ok:
                try:
                    results[who] = peerwire_lookup(args.peerwire, bootstrap, info_hash, seeder)
                except RuntimeError as e:
                    print("  peerwire: %s" % e, flush=True)
                    args.peerwire_ok = False
        return info_hash, bootstrap, len(holders) - 1, statistics.median(tables), results
    finally:
        net.close()


def show(name, res):
    return ("%-10s %s seeder after %7.1f ms  lookup %7.1f ms  %3d queries"
            % (name, "found" if res["found"] else "MISSED", res["first_ms"], res["done_ms"],
               res["queries"]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=80)
    parser.add_argument("--degree", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--peerwire", default=os.path.join(REPO, "target", "release", "peerwire"))
    args = parser.parse_args()
    if args.nodes < 30 or args.nodes > 250:
        parser.error("--nodes between 30 and 250")
    if args.peerwire == os.path.join(REPO, "target", "release", "peerwire"):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    args.peerwire_ok = True
    work = tempfile.mkdtemp(prefix="peerwire-dht-bench-")
    results = {"libtorrent": [], "peerwire": []}
    try:
        seed_dir, torrent = make_torrent(work)
        for r in range(args.rounds):
            info_hash, bootstrap, stored, table, res = one_round(args, r, torrent, seed_dir)
            print("round %d: %d nodes, degree %d, tables of %d nodes (median), announce stored "
                  "at %d nodes, bootstrap %s" % (r + 1, args.nodes, args.degree, table, stored,
                                                 bootstrap), flush=True)
            for name in ("libtorrent", "peerwire"):
                if name in res:
                    print("  " + show(name, res[name]), flush=True)
                    results[name].append(res[name])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\nmedian of %d rounds, %d libtorrent nodes on %s.., each given %d others; one "
          "get_peers lookup from a node knowing one node:" % (args.rounds, args.nodes, FIRST_IP,
                                                              args.degree))
    medians = {}
    for name, runs in results.items():
        if not runs:
            print("  %-10s (not run)" % name)
            continue
        found = sum(1 for x in runs if x["found"])
        medians[name] = {k: statistics.median(x[k] for x in runs)
                         for k in ("first_ms", "done_ms", "queries")}
        m = medians[name]
        print("  %-10s seeder found %d/%d  seeder after %7.1f ms  lookup %7.1f ms  %5.1f queries"
              % (name, found, len(runs), m["first_ms"], m["done_ms"], m["queries"]))
    if "libtorrent" in medians and "peerwire" in medians:
        lt, pw = medians["libtorrent"], medians["peerwire"]
        print("peerwire / libtorrent: seeder found %.2f  lookup %.2f (peerwire's includes "
              "starting the process)  queries %.2f"
              % (pw["first_ms"] / lt["first_ms"], pw["done_ms"] / lt["done_ms"],
                 pw["queries"] / lt["queries"]))


if __name__ == "__main__":
    main()
