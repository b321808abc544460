"""Benchmark: how many peers one peerwire process holds, with one thread per connection.

    cargo build --release
    python3 tests/bench/many_peers.py seed     [--leechers 500] [--seconds 60] [--size-mib 4]
                                               [--pipeline 4]
    python3 tests/bench/many_peers.py download [--seeders 200] [--size-mib 256]
    python3 tests/bench/many_peers.py both     [--seeders 200] [--leechers 300] [--seconds 60]
                                               [--download-rate 4096]

The crowd is tests/peers/light_swarm.py: one Python process, each peer on its own 127.x
address. Every scenario samples the peerwire process's /proc/PID/status five times a second
(Threads, VmRSS, VmHWM, VmPeak) and reads its kernel accounting at the end (CPU =
utime + stime from os.wait4). Peak RSS is VmHWM as last sampled, not `ru_maxrss`, which
for a child of Python can be the parent's peak.

seed: `peerwire seed` (release build) of a SIZE-MiB file in 256 KiB pieces, and LEECHERS light
  leechers dialling it at 200 a second (each keeping PIPELINE requests in flight while
  unchoked), for SECONDS. Reported: live connections, threads, peak
  RSS, RSS per connection (with all connected, over the RSS before the first one), CPU seconds,
  upload share across leechers (min / median / max bytes, Jain's fairness index), and for every
  unchoke a leecher could use, the wait until its first block (max, p99; any over the choke
  interval, 10 s, is a starved peer).
download: SEEDERS light seeders, each on its own address, serve a SIZE-MiB file; one
  `peerwire download` is given all of them with --peer. Reported: time, threads, peak RSS, CPU,
  bytes per seeder.
both: SEEDERS light seeders and LEECHERS light leechers on one `peerwire download --seed`
  (the leechers dial it as soon as it listens): every connection in one process. The download
  is held to --download-rate KiB/s, so that it is still downloading when the last leecher
  connects (once complete, it drops the seeders, as two seeds have nothing to trade).

Not a test: figures are printed, nothing is asserted. Stops every process it starts by PID.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERWIRE = os.path.join(REPO, "target", "release", "peerwire")
SWARM = os.path.join(REPO, "tests", "peers", "light_swarm.py")
CHOKE_INTERVAL = 10.0
ENV = dict(os.environ, PEERWIRE_LSD="off", PEERWIRE_DHT_ROUTERS="")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=30.0):
    import socket
    until = time.time() + limit
    while time.time() < until:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)  # polling for the port to open
    raise SystemExit("nothing listens on %d after %.0f s" % (port, limit))


def make_torrent(directory, size_mib):
    data = os.path.join(directory, "many.bin")
    with open(data, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(1 << 20))
    torrent = os.path.join(directory, "many.torrent")
    subprocess.run([PEERWIRE, "-q", "create", data, "-o", torrent, "--piece-length", "262144"],
                   check=True)
    return data, torrent


class Sampler:
    """Reads /proc/PID/status of the peerwire process until it ends."""

    def __init__(self, pid):
        self.pid = pid
        self.threads = self.hwm_kib = self.vm_peak_kib = 0
        self.samples = []  # (time, threads, VmRSS KiB)
        self.stacks = None
        self.stacks_at = 0.0
        self.done = False
        threading.Thread(target=self.run, daemon=True).start()

    def status(self):
        fields = {}
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    key, _, value = line.partition(":")
                    fields[key] = value.split()
        except OSError:
            return None
        return fields

    def run(self):
        while not self.done:
            fields = self.status()
            if fields is None:
                return
            threads, rss = int(fields["Threads"][0]), int(fields["VmRSS"][0])
            self.samples.append((time.time(), threads, rss))
            # The stacks are read at the peak of threads (at most every 2 s: smaps is long).
            if threads >= self.threads and time.time() - self.stacks_at > 2.0:
                self.stacks_at = time.time()
                self.stacks = self.stack_pages() or self.stacks
            self.threads = max(self.threads, threads)
            self.vm_peak_kib = int(fields["VmPeak"][0])
            # The kernel's peak for this process's own memory: `ru_maxrss` from `os.wait4`
            # may be the Python parent's peak instead (the child starts in the parent's
            # memory, and Linux carries that peak across `exec`).
            self.hwm_kib = int(fields["VmHWM"][0])
            time.sleep(0.2)  # the sampling period

    def stack_pages(self):
        """Thread stacks as the kernel sees them: the most common mapping size in smaps (the
        connection threads' stacks), how many, and the most KiB any of them has touched."""
        sizes = {}
        size = None
        try:
            with open("/proc/%d/smaps" % self.pid) as f:
                for line in f:
                    head = line.split()
                    if "-" in head[0] and not head[0].endswith(":"):
                        lo, hi = (int(x, 16) for x in head[0].split("-"))
                        size = (hi - lo) // 1024
                    elif head[0] == "Rss:" and size is not None:
                        sizes.setdefault(size, []).append(int(head[1]))
        except OSError:
            return None
        # Guard pages (4 KiB) are as many as stacks: only mappings of 32 KiB and more count.
        stacks = [s for s in sizes if s >= 32]
        common = max(stacks, key=lambda s: len(sizes[s]))
        return {"mapping_kib": common, "count": len(sizes[common]),
                "max_rss_kib": max(sizes[common]),
                "median_rss_kib": statistics.median(sizes[common])}


def stop(proc):
    """SIGINT (a clean stop) by PID, then the kernel's accounting of the process."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:
        return None
    return usage


def reap_after(proc, seconds):
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_swarm(args, lines):
    proc = subprocess.Popen([sys.executable, SWARM] + args, stdout=subprocess.PIPE, text=True)

    def drain():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    return proc, reader


def records(lines):
    peers = [json.loads(line[5:]) for line in lines if line.startswith("peer ")]
    summary = [json.loads(line[8:]) for line in lines if line.startswith("summary ")]
    return peers, (summary[0] if summary else None)


def jain(values):
    total = sum(values)
    squares = sum(v * v for v in values)
    return (total * total) / (len(values) * squares) if squares else 0.0


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def unchoke_waits(peers, end):
    """For every unchoke a leecher could use: how long it waited for its first block (served),
    or how long it waited in vain (until a choke, or until the end)."""
    served, unserved = [], []
    for peer in peers:
        for u in peer["unchokes"]:
            if not u["wanted"]:
                continue
            if u["first_block"] is not None:
                served.append(u["first_block"])
            else:
                until = u["choked"] if u["choked"] is not None else end
                unserved.append(until - u["at"])
    return served, unserved


def report_leechers(peers, summary):
    received = [p["received"] for p in peers]
    connected = [p for p in peers if p["connect"] is not None]
    unchoked = [p for p in peers if p["unchokes"]]
    served, unserved = unchoke_waits(peers, summary["elapsed"])
    starved = [w for w in served + unserved if w > CHOKE_INTERVAL]
    print("leechers: %d, connected %d, unchoked at least once %d, complete %d, bad pieces %d"
          % (len(peers), len(connected), len(unchoked),
             sum(1 for p in peers if p["complete"] is not None),
             sum(p["bad_pieces"] for p in peers)))
    print("bytes per leecher: min %d, median %d, max %d; total %.1f MiB"
          % (min(received), statistics.median(received), max(received), sum(received) / 2**20))
    print("Jain's fairness index: %.3f over all leechers, %.3f over the unchoked ones"
          % (jain(received), jain([p["received"] for p in unchoked]) if unchoked else 0.0))
    if served:
        print("unchokes used: %d; first block after: median %.3f s, p99 %.3f s, max %.3f s"
              % (len(served), statistics.median(served), percentile(served, 99), max(served)))
    print("unchokes with no block (choked first or still waiting at the end): %d, longest %.3f s"
          % (len(unserved), max(unserved) if unserved else 0.0))
    print("starved (no block within %.0f s of an unchoke): %d" % (CHOKE_INTERVAL, len(starved)))


def report_process(name, sampler, usage, before_kib=None, connections=None):
    print("%s: peak threads %d, peak RSS (VmHWM, last sample) %.1f MiB, CPU %.2f s (user %.2f "
          "+ sys %.2f), address space (VmPeak) %.0f MiB"
          % (name, sampler.threads, sampler.hwm_kib / 1024, usage.ru_utime + usage.ru_stime,
             usage.ru_utime, usage.ru_stime, sampler.vm_peak_kib / 1024))
    if sampler.stacks:
        print("thread stacks: %(count)d mappings of %(mapping_kib)d KiB, touched: median "
              "%(median_rss_kib)d KiB, max %(max_rss_kib)d KiB" % sampler.stacks)
    if before_kib is not None and connections:
        peak = max(rss for _, _, rss in sampler.samples)
        print("RSS: %.1f MiB before the first peer, %.1f MiB at most with %d connected: "
              "%.1f KiB per connection" % (before_kib / 1024, peak / 1024, connections,
                                           (peak - before_kib) / connections))


def scenario_seed(options, directory):
    data, torrent = make_torrent(directory, options.size_mib)
    port = free_port()
    n = options.leechers
    seed = subprocess.Popen([PEERWIRE, "-q", "seed", torrent, data, "--port", str(port),
                             "--max-peers", str(n + 20)], env=ENV, stdin=subprocess.DEVNULL)
    wait_port(port)
    sampler = Sampler(seed.pid)
    time.sleep(0.5)  # one sample of the seed alone
    before = sampler.samples[-1][2]
    lines = []
    started = time.time()
    swarm, reader = start_swarm(["leech", torrent, "--connect", "127.0.0.1:%d" % port,
                                 "--count", str(n), "--seconds", str(options.seconds),
                                 "--pipeline", str(options.pipeline)], lines)
    reap_after(swarm, options.seconds + 30)
    reader.join(10)
    sampler.done = True
    usage = stop(seed)
    peers, summary = records(lines)
    live = sum(1 for p in peers if p["connect"] is not None and p["closed"] is None)
    print("== seed: 1 peerwire seed, %d light leechers, %d MiB, %.0f s" %
          (n, options.size_mib, options.seconds))
    report_process("peerwire seed", sampler, usage, before, live)
    report_leechers(peers, summary)


def scenario_download(options, directory, leechers=0):
    data, torrent = make_torrent(directory, options.size_mib)
    seeders = options.seeders
    port = free_port()
    seed_lines = []
    seed_swarm, seed_reader = start_swarm(
        ["seed", torrent, data, "--count", str(seeders), "--port", str(port),
         "--seconds", str(options.seconds + 120)], seed_lines)
    while "ready" not in seed_lines:
        if seed_swarm.poll() is not None:
            raise SystemExit("the light seeders did not start")
        time.sleep(0.05)  # waiting for the seeders' `ready`
    out = os.path.join(directory, "out")
    os.mkdir(out)
    our_port = free_port()
    command = [PEERWIRE, "-q", "download", torrent, "-o", out, "--port", str(our_port),
               "--max-peers", str(seeders + leechers + 20)]
    for i in range(seeders):
        command += ["--peer", "127.20.%d.%d:%d" % ((i + 1) // 256, (i + 1) % 256, port)]
    if leechers:
        # Slowed down, so that the leechers are all connected while every seeder still is:
        # once complete, peerwire drops the seeders (two seeds have nothing to trade).
        command += ["--seed", "--max-download-rate", str(options.download_rate)]
    started = time.time()
    download = subprocess.Popen(command, env=ENV, stdin=subprocess.DEVNULL)
    sampler = Sampler(download.pid)
    leech_lines = []
    if leechers:
        wait_port(our_port)
        leech_swarm, leech_reader = start_swarm(
            ["leech", torrent, "--connect", "127.0.0.1:%d" % our_port, "--count", str(leechers),
             "--seconds", str(options.seconds)], leech_lines)
        reap_after(leech_swarm, options.seconds + 30)
        leech_reader.join(10)
        usage = stop(download)
        wall = time.time() - started
    else:
        _, _, usage = os.wait4(download.pid, 0)
        wall = time.time() - started
    sampler.done = True
    seed_swarm.send_signal(signal.SIGTERM)
    reap_after(seed_swarm, 30)
    seed_reader.join(10)
    seeds, _ = records(seed_lines)
    sent = [s["sent"] for s in seeds]
    ok = subprocess.run(["cmp", data, os.path.join(out, "many.bin")]).returncode == 0
    if leechers:
        print("== both: 1 peerwire download --seed, %d light seeders, %d light leechers, "
              "%d MiB" % (seeders, leechers, options.size_mib))
    else:
        print("== download: 1 peerwire download, %d light seeders, %d MiB" %
              (seeders, options.size_mib))
    print("wall %.2f s, data %s" % (wall, "identical" if ok else "DIFFERENT"))
    report_process("peerwire download", sampler, usage)
    print("bytes per seeder: min %d, median %d, max %d; seeders that sent something: %d of %d"
          % (min(sent), statistics.median(sent), max(sent), sum(1 for s in sent if s),
             len(sent)))
    if leechers:
        peers, summary = records(leech_lines)
        report_leechers(peers, summary)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["seed", "download", "both"])
    parser.add_argument("--leechers", type=int, default=500)
    parser.add_argument("--seeders", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--size-mib", type=int, default=None)
    parser.add_argument("--download-rate", type=int, default=4096, help="KiB/s, `both` only")
    parser.add_argument("--pipeline", type=int, default=4, help="requests in flight per leecher")
    options = parser.parse_args()
    if not os.path.exists(PEERWIRE):
        raise SystemExit("no %s: run `cargo build --release` first" % PEERWIRE)
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="many_peers.") as directory:
        if options.scenario == "seed":
            options.size_mib = options.size_mib or 4
            scenario_seed(options, directory)
        elif options.scenario == "download":
            options.size_mib = options.size_mib or 256
            scenario_download(options, directory)
        else:
            options.size_mib = options.size_mib or 64
            options.leechers = options.leechers if options.leechers != 500 else 300
            scenario_download(options, directory, leechers=options.leechers)
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
