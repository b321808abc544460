"""Benchmark: peerwire's download against real clients, side by side, on 127.0.0.1.

    /usr/bin/python3 tests/bench/download_vs_clients.py [SIZE_MIB] [ROUNDS] [CLIENTS]

One libtorrent seeder (tests/peers/libtorrent_session.py) seeds a file of SIZE_MIB (default
1024) with 1 MiB pieces, announced to peerwire's built-in tracker. Then, in turn and ROUNDS
times (default 3), each client downloads it from scratch into a fresh directory:
peerwire (release build), aria2c, a libtorrent leecher and Transmission (transmission-daemon).
For each it reports the median wall time, CPU seconds (user + system) and peak RSS, and the
ratio of peerwire's wall time to the fastest other client's. CLIENTS (comma-separated, e.g.
`peerwire,libtorrent`) runs only some of them. Needs the Debian packages of
.ci/run plus `aria2`. Not a test: speed is measured here, never asserted in `cargo test`.

Wall time runs from starting the client (or adding the torrent) until the data is complete.
CPU and peak RSS come from the kernel's rusage of the client process (os.wait4).
"""
import hashlib
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERWIRE = os.path.join(REPO, "target", "release", "peerwire")
SESSION = os.path.join(REPO, "tests", "peers", "libtorrent_session.py")
PYTHON = "/usr/bin/python3"


def free_port():
    while True:
        port = 20000 + int.from_bytes(os.urandom(2), "big") % 12000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def wait_port(port, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nothing listens on %d" % port)


def reap(pid):
    """Waits for pid; returns (user + system CPU seconds, peak RSS in MiB)."""
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


class LibtorrentPeer:
    """A libtorrent session in its own process; its event lines are drained on a thread (an
    undrained pipe would block the driver once 64 KiB of events pile up)."""

    def __init__(self, torrent, save, seed, extra=()):
        self.port = free_port()
        args = [PYTHON, SESSION, "--port", str(self.port), "--torrent", torrent, "--save", save]
        args += list(extra)
        self.proc = subprocess.Popen(args + (["--seed"] if seed else []), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()
        self.wait_for("ready")

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, prefix, deadline=600):
        end = time.time() + deadline
        while time.time() < end:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line
        raise RuntimeError("libtorrent said no %r" % prefix)

    def send(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def quit(self):
        self.send("quit")
        return reap(self.proc.pid)


def run_peerwire(torrent, out):
    start = time.time()
    proc = subprocess.Popen([PEERWIRE, "-q", "download", "-o", out, torrent, "--port", str(free_port())],
                            stderr=subprocess.DEVNULL)
    cpu, rss = reap(proc.pid)
    return time.time() - start, cpu, rss


def run_aria2(torrent, out):
    start = time.time()
    args = ["aria2c", "-q", "--seed-time=0", "--dir", out, "--enable-dht=false", "--enable-dht6=false",
            "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--file-allocation=none",
            "--listen-port", str(free_port()), torrent]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu, rss = reap(proc.pid)
    return time.time() - start, cpu, rss


def run_libtorrent(torrent, out):
    start = time.time()
    leecher = LibtorrentPeer(torrent, out, seed=False)
    leecher.wait_for("finished")
    wall = time.time() - start
    cpu, rss = leecher.quit()
    return wall, cpu, rss


def run_transmission(torrent, out, seeder):
    """Transmission never dials a loopback peer it learns from a tracker (127.0.0.0/8 is a
    "martian" address to it; it only accepts), so the seeder is told to re-announce after
    Transmission did, and dials it."""
    config = tempfile.mkdtemp()
    rpc, peer = free_port(), free_port()
    daemon = subprocess.Popen(["transmission-daemon", "-f", "-T", "--no-dht", "--no-lpd", "--no-portmap",
                               "--no-utp", "-g", config, "-p", str(rpc), "-P", str(peer)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(rpc)
    remote = ["transmission-remote", str(rpc)]
    start = time.time()
    subprocess.run(remote + ["-a", torrent, "-w", out], check=True, stdout=subprocess.DEVNULL)
    time.sleep(1)  # let Transmission announce before the seeder asks the tracker again
    seeder.send("reannounce")
    while "Percent Done: 100%" not in subprocess.run(remote + ["-t", "1", "-i"], capture_output=True, text=True).stdout:
        time.sleep(0.2)
    wall = time.time() - start
    daemon.send_signal(signal.SIGTERM)
    cpu, rss = reap(daemon.pid)
    shutil.rmtree(config, ignore_errors=True)
    return wall, cpu, rss


def sha1_of(path):
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare(work, size_mib):
    """The shared set-up of the benchmarks: SIZE_MIB random bytes in `work/seed/bench.bin`,
    peerwire's tracker on 127.0.0.1, and a torrent of the file (1 MiB pieces) announced to it.
    Returns (seed_dir, data, its SHA-1, the tracker process, the torrent's path)."""
    seed_dir = os.path.join(work, "seed")
    os.makedirs(seed_dir)
    data = os.path.join(seed_dir, "bench.bin")
    with open(data, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(1 << 20))
    # A long interval: libtorrent re-announces at most every 5 minutes whatever the tracker
    # says, and the tracker forgets peers after two intervals.
    tracker_port = free_port()
    tracker = subprocess.Popen([PEERWIRE, "-q", "tracker", "--bind", "127.0.0.1", "--port", str(tracker_port),
                                "--udp-port", str(tracker_port), "--interval", "3600"])
    wait_port(tracker_port)
    torrent = os.path.join(work, "bench.torrent")
    subprocess.run([PEERWIRE, "create", data, "-o", torrent, "--piece-length", str(1 << 20), "-t",
                    "http://127.0.0.1:%d/announce" % tracker_port], check=True, stderr=subprocess.DEVNULL)
    return seed_dir, data, sha1_of(data), tracker, torrent


def main():
    size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    wanted = sys.argv[3].split(",") if len(sys.argv) > 3 else None
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    work = tempfile.mkdtemp(prefix="peerwire-bench-")
    try:
        seed_dir, data, expected, tracker, torrent = prepare(work, size_mib)
        seeder = LibtorrentPeer(torrent, seed_dir, seed=True)
        seeder.wait_for("tracker_reply")
        clients = {
            "peerwire": run_peerwire,
            "aria2c": run_aria2,
            "libtorrent": run_libtorrent,
            "transmission": lambda t, o: run_transmission(t, o, seeder),
        }
        if wanted:
            clients = {name: run for name, run in clients.items() if name in wanted}
        results = {name: [] for name in clients}
        for r in range(rounds):
            for name, run in clients.items():
                out = os.path.join(work, "out-%s-%d" % (name, r))
                os.makedirs(out)
                wall, cpu, rss = run(torrent, out)
                got = sha1_of(os.path.join(out, "bench.bin"))
                status = "ok" if got == expected else "WRONG DATA"
                print("round %d %-12s wall %6.2f s  cpu %6.2f s  peak RSS %7.1f MiB  %s" % (r + 1, name, wall, cpu, rss, status), flush=True)
                results[name].append((wall, cpu, rss))
                shutil.rmtree(out)
        print("\nmedian of %d rounds, %d MiB, 1 MiB pieces, one libtorrent seeder on 127.0.0.1:" % (rounds, size_mib))
        medians = {}
        for name, runs in results.items():
            medians[name] = tuple(statistics.median(x[i] for x in runs) for i in range(3))
            wall, cpu, rss = medians[name]
            print("  %-12s wall %6.2f s  cpu %6.2f s  peak RSS %7.1f MiB" % (name, wall, cpu, rss))
        fastest = min((m[0], n) for n, m in medians.items() if n != "peerwire")
        print("peerwire wall / fastest other (%s): %.2f" % (fastest[1], medians["peerwire"][0] / fastest[0]))
        seeder.quit()
        tracker.terminate()
        tracker.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
