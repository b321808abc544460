"""Benchmark: uTP (BEP 29, uTorrent transport protocol) on 127.0.0.1 -- peerwire's uTP against
its TCP, and against libtorrent's uTP.

    cargo build --release
    /usr/bin/python3 tests/bench/utp_transfer.py [--mib 256] [--runs 3] [--timeout 300]
                                                 [--cases a,b,c,d] [--threads]

A file of MIB (default 256) random bytes in 1 MiB pieces. In each of RUNS rounds (default 3),
four downloads from scratch, each from its own seeder started for it, one at a time:

  a  tcp  pw -> pw   `peerwire seed --transport tcp` -> `peerwire download --transport tcp`
  b  utp  pw -> pw   `peerwire seed --transport utp` -> `peerwire download --transport utp`
  c  utp  lt -> pw   libtorrent seeding, uTP only    -> `peerwire download --transport utp`
  d  utp  lt -> lt   libtorrent seeding, uTP only    -> a libtorrent leecher, uTP only

(libtorrent runs in tests/bench/libtorrent_utp.py: uTP in and out, TCP off both ways.)

Wall time runs from starting the downloader until `peerwire download` exits, or until the
libtorrent leecher says `finished`. Reported per case: the median wall time and MB/s (10^6
bytes per second), the downloader's CPU seconds and peak RSS (the kernel's rusage of the
process, os.wait4: its VmHWM at exit), and the seeder's CPU seconds during the download (from
/proc/<pid>/stat before and after). Then the ratios b/a (target <= 2.0) and c/d (target
<= 1.0), and the peak RSS of peerwire's uTP downloads (target < 100 MiB).

To see why a case is slow, every download is watched from beside it every 50 ms (the
Monitor): spans of 0.2 s or more in which the downloader wrote nothing (`wchar` of
/proc/<pid>/io; meaningful for peerwire, which writes each block as it arrives, not for a
libtorrent leecher, whose disk cache writes in its own rhythm), and the datagrams the kernel
dropped at the downloader's and the seeder's UDP socket because the socket's receive buffer
was full (the `drops` column of /proc/net/udp). A libtorrent seeder also reports its own uTP
counters (packets resent, fast retransmits, timeouts, delay samples above LEDBAT's target ...).
--threads adds the user and system CPU seconds of each thread of peerwire's downloader and
seeder during the download (/proc/<pid>/task/<tid>/stat).

Every download is bounded by --timeout seconds (default 300): past it the downloader is
killed and the run is reported as a timeout. Every process is stopped by its PID. Not a test:
speed is measured here, never asserted in `cargo test`. Needs the release build.
"""
import argparse
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from download_vs_clients import (PEERWIRE, PYTHON, LibtorrentPeer, free_port, prepare,  # noqa: E402
                                 sha1_of, wait_port)

LT_UTP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libtorrent_utp.py")
TICK = os.sysconf("SC_CLK_TCK")

CASES = {
    "a": "tcp    pw -> pw",
    "b": "utp    pw -> pw",
    "c": "utp    lt -> pw",
    "d": "utp    lt -> lt",
}


def cpu_of(pid):
    """User + system CPU seconds of a live process, all its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    # After the command's closing parenthesis, utime and stime are fields 12 and 13.
    return (int(fields[11]) + int(fields[12])) / TICK


class Monitor:
    """Watches one download from beside it, every 50 ms: the bytes the downloader has written
    (`wchar` of /proc/<pid>/io: its progress), the datagrams the kernel dropped at each UDP
    socket of the download because its receive buffer was full (the `drops` column of
    /proc/net/udp, by port), and, when given PIDs, the CPU seconds of each of their threads."""

    def __init__(self, downloader, ports, thread_pids=None):
        self.downloader = downloader
        self.ports = {"%04X" % port: name for name, port in ports.items()}
        self.thread_pids = thread_pids or {}  # label -> pid
        self.progress = []  # (time, bytes written)
        self.drops = {}  # port name -> (drops at the first look, latest drops)
        self.threads = {}  # (label, tid) -> (name, CPU seconds at the first look, latest)
        self.done = threading.Event()
        self.first_look = True
        self._look()
        self.first_look = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _look(self):
        now = time.time()
        try:
            with open("/proc/%d/io" % self.downloader) as f:
                wchar = int(f.readline().split()[1])
            self.progress.append((now, wchar))
        except (OSError, IndexError, ValueError):
            pass  # it has exited
        with open("/proc/net/udp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                name = self.ports.get(fields[1].rpartition(":")[2])
                if name:
                    drops = int(fields[-1])
                    # A socket there at the start (a seeder's) counts from then on; one
                    # opened later (the downloader's) from its start.
                    base = self.drops.get(name, (drops if self.first_look else 0, 0))[0]
                    self.drops[name] = (base, drops)
        for label, pid in self.thread_pids.items():
            try:
                tids = os.listdir("/proc/%d/task" % pid)
            except OSError:
                continue
            for tid in tids:
                try:
                    with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                        name = f.read().strip()
                    with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                        fields = f.read().rpartition(")")[2].split()
                except OSError:
                    continue
                cpu = (int(fields[11]) / TICK, int(fields[12]) / TICK)  # user, system
                # CPU spent before the download (a seeder hashing its file) is not counted.
                base = self.threads.get((label, tid), (name, cpu, cpu))[1]
                self.threads[(label, tid)] = (name, base, cpu)

    def _run(self):
        while not self.done.wait(0.05):
            self._look()

    def stop(self):
        self.done.set()
        self.thread.join()
        self._look()

    def stalls(self, at_least=0.2):
        """Spans of at least `at_least` seconds in which the downloader wrote nothing, between
        its first and its last written byte, as (seconds since it started, how long, MiB
        written by then)."""
        if len(self.progress) < 2:
            return []
        t_start, first, last = self.progress[0][0], self.progress[0][1], self.progress[-1][1]
        spans, since = [], None
        for (t0, w0), (t1, w1) in zip(self.progress, self.progress[1:]):
            if w1 == w0 and first < w0 < last:
                since = since or (t0, w0)
            elif since is not None:
                spans.append((since[0] - t_start, t0 - since[0], (since[1] - first) / (1 << 20)))
                since = None
        return [s for s in spans if s[1] >= at_least]

    def dropped(self):
        return {name: latest - base for name, (base, latest) in self.drops.items()}

    def thread_cpu(self):
        """{(process, thread name): (user seconds, system seconds)} during the download."""
        by_name = {}
        for (label, _), (name, base, latest) in self.threads.items():
            user, system = by_name.get((label, name), (0, 0))
            by_name[(label, name)] = (user + latest[0] - base[0], system + latest[1] - base[1])
        return by_name


class Seeder:
    """A seeder started for one download: its port, its PID (for CPU) and how to stop it."""

    def __init__(self, kind, torrent, data, seed_dir):
        self.kind = kind
        self.lt = None
        if kind in ("tcp", "utp"):
            self.port = free_port()
            self.proc = subprocess.Popen([PEERWIRE, "-q", "seed", torrent, data, "--port", str(self.port),
                                          "--no-dht", "--transport", kind], stderr=subprocess.DEVNULL)
            # Under `--transport utp` peerwire still listens on TCP (it closes what it
            # accepts), after its UDP socket is up: the TCP port answering means ready.
            wait_port(self.port)
            self.pid = self.proc.pid
        else:
            self.lt = LibtorrentUtp(torrent, seed_dir, seed=True)
            self.port, self.pid = self.lt.port, self.lt.proc.pid

    def stats(self):
        return self.lt.stats() if self.lt else None

    def stop(self):
        if self.lt:
            self.lt.quit()
        else:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class LibtorrentUtp(LibtorrentPeer):
    """tests/bench/libtorrent_utp.py in its own process (LibtorrentPeer's event plumbing)."""

    def __init__(self, torrent, save, seed, connect=None):
        self.port = free_port()
        args = [PYTHON, LT_UTP, "--port", str(self.port), "--torrent", torrent, "--save", save]
        if seed:
            args.append("--seed")
        if connect:
            args += ["--connect", connect]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            self.wait_for("ready", deadline=30)
        except RuntimeError:
            self.proc.kill()
            self.proc.wait()
            raise

    def stats(self):
        self.send("stats")
        line = self.wait_for("stats", deadline=10)
        return dict(word.split("=") for word in line.split()[1:])

    def quit(self):
        try:
            self.send("quit")
        except OSError:
            pass  # it is gone already
        _, cpu, rss, _ = wait_bounded(self.proc, 30)
        return cpu, rss


def wait_bounded(proc, timeout):
    """Waits for a child, killing it after `timeout` seconds. Returns (exit status, CPU
    seconds, peak RSS in MiB, timed out)."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, killed


def download_peerwire(torrent, out, seeder, transport, timeout, threads):
    """One `peerwire download` from the seeder; returns (wall, CPU, peak RSS, outcome or None
    when it exited 0, its Monitor)."""
    port = free_port()
    args = [PEERWIRE, "-q", "download", "-o", out, torrent, "--port", str(port), "--no-dht",
            "--peer", "127.0.0.1:%d" % seeder.port, "--give-up-after", "60", "--transport", transport]
    start = time.time()
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    pids = {"download": proc.pid}
    if not seeder.lt:
        pids["seed"] = seeder.pid
    monitor = Monitor(proc.pid, {"download": port, "seed": seeder.port}, pids if threads else None)
    status, cpu, rss, killed = wait_bounded(proc, timeout)
    wall = time.time() - start
    monitor.stop()
    if killed:
        outcome = "TIMEOUT after %d s" % timeout
    elif status != 0:
        outcome = "exit status %d" % os.waitstatus_to_exitcode(status)
    else:
        outcome = None
    return wall, cpu, rss, outcome, monitor


def download_libtorrent(torrent, out, seeder, timeout):
    """A libtorrent leecher (uTP only) that dials the seeder; timed until `finished`."""
    start = time.time()
    leecher = LibtorrentUtp(torrent, out, seed=False, connect="127.0.0.1:%d" % seeder.port)
    monitor = Monitor(leecher.proc.pid, {"download": leecher.port, "seed": seeder.port})
    try:
        leecher.wait_for("finished", deadline=timeout)
        outcome = None
    except RuntimeError:
        outcome = "TIMEOUT after %d s" % timeout
    wall = time.time() - start
    monitor.stop()
    cpu, rss = leecher.quit()
    return wall, cpu, rss, outcome, monitor


def one_download(case, torrent, data, seed_dir, out, timeout, threads):
    """Starts the case's seeder, runs its download, stops the seeder. Returns the download's
    result, the seeder's CPU seconds during it, and a libtorrent seeder's uTP counters."""
    kind = {"a": "tcp", "b": "utp", "c": "lt", "d": "lt"}[case]
    seeder = Seeder(kind, torrent, data, seed_dir)
    try:
        seeder_cpu = cpu_of(seeder.pid)
        if case == "d":
            result = download_libtorrent(torrent, out, seeder, timeout)
        else:
            result = download_peerwire(torrent, out, seeder, "tcp" if case == "a" else "utp", timeout, threads)
        seeder_cpu = cpu_of(seeder.pid) - seeder_cpu
        lt_stats = seeder.stats()
    finally:
        seeder.stop()
    return result, seeder_cpu, lt_stats


def report_run(r, case, size, wall, cpu, rss, seeder_cpu, outcome, monitor, lt_stats):
    print("run %d %s %-15s %7.2f s %7.1f MB/s  cpu %6.2f s  rss %7.1f MiB  seeder cpu %6.2f s  %s"
          % (r + 1, case, CASES[case], wall, size / 1e6 / wall, cpu, rss, seeder_cpu, outcome))
    stalls = monitor.stalls()
    dropped = monitor.dropped()
    line = "      nothing written for >= 0.2 s: %d times, %.2f s in all" % (len(stalls), sum(s[1] for s in stalls))
    if stalls:
        line += " (%s)" % ", ".join("%.2f s at %.1f s, %.0f MiB in" % (d, t, m) for t, d, m in stalls[:6])
    if case != "a":
        line += "; UDP datagrams dropped (receive buffer full): downloader %s, seeder %s" % (
            dropped.get("download", "?"), dropped.get("seed", "?"))
    print(line)
    if lt_stats:
        print("      libtorrent seeder: " + " ".join("%s=%s" % kv for kv in lt_stats.items()))
    for (label, name), (user, system) in sorted(monitor.thread_cpu().items(), key=lambda kv: -sum(kv[1])):
        if user + system >= 0.01:
            print("      thread %-8s %-16s %6.2f s (user %.2f s, system %.2f s)"
                  % (label, name, user + system, user, system))
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="size of the file in MiB (default 256)")
    parser.add_argument("--runs", type=int, default=3, help="rounds of the four cases (default 3)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one download may take (default 300)")
    parser.add_argument("--cases", default="a,b,c,d", help="which cases, comma-separated (default a,b,c,d)")
    parser.add_argument("--threads", action="store_true", help="CPU seconds of each thread of peerwire")
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c in CASES]
    if not os.path.exists(PEERWIRE):
        sys.exit("no %s: run `cargo build --release` first" % PEERWIRE)
    size = args.mib << 20
    print("%d MiB, %d runs, timeout %d s; load average at start %.2f %.2f %.2f"
          % ((args.mib, args.runs, args.timeout) + os.getloadavg()), flush=True)
    work = tempfile.mkdtemp(prefix="peerwire-bench-")
    try:
        seed_dir, data, digest, tracker, torrent = prepare(work, args.mib)
        # Peers come from --peer / connect only: no tracker.
        tracker.terminate()
        tracker.wait()
        results = {c: [] for c in cases}
        for r in range(args.runs):
            for case in cases:
                out = os.path.join(work, "out-%s-%d" % (case, r))
                os.makedirs(out)
                (wall, cpu, rss, outcome, monitor), seeder_cpu, lt_stats = one_download(
                    case, torrent, data, seed_dir, out, args.timeout, args.threads)
                got = os.path.join(out, "bench.bin")
                if outcome is None:
                    outcome = "ok" if os.path.exists(got) and sha1_of(got) == digest else "WRONG BYTES"
                report_run(r, case, size, wall, cpu, rss, seeder_cpu, outcome, monitor, lt_stats)
                results[case].append((wall, cpu, rss, seeder_cpu, outcome))
                shutil.rmtree(out)
        print("\nmedian of %d runs, %d MiB in 1 MiB pieces, 127.0.0.1:" % (args.runs, args.mib))
        print("  case                       wall      MB/s   dl cpu  dl peak RSS  seeder cpu  failed")
        medians = {}
        for case, runs in results.items():
            ok = [x for x in runs if x[4] == "ok"]
            failed = len(runs) - len(ok)
            if not ok:
                print("  %s %-15s  no run completed (%s)" % (case, CASES[case], runs[0][4]))
                continue
            # A failed run counts as infinitely slow in the median of the wall times.
            wall = statistics.median([x[0] for x in ok] + [float("inf")] * failed)
            medians[case] = wall
            cpu, rss, scpu = (statistics.median(x[i] for x in ok) for i in (1, 2, 3))
            print("  %s %-15s  %8.2f s %8.1f %7.2f s %8.1f MiB %9.2f s  %d"
                  % (case, CASES[case], wall, size / 1e6 / wall, cpu, rss, scpu, failed))
        print()
        if "a" in medians and "b" in medians:
            print("b/a (uTP / TCP, peerwire both ends): %.2f  (target <= 2.0)" % (medians["b"] / medians["a"]))
        if "c" in medians and "d" in medians:
            print("c/d (peerwire / libtorrent downloading from libtorrent over uTP): %.2f  (target <= 1.0)"
                  % (medians["c"] / medians["d"]))
        utp_rss = [x[2] for c in ("b", "c") if c in results for x in results[c] if x[4] == "ok"]
        if utp_rss:
            print("peak RSS of peerwire download over uTP: at most %.1f MiB  (target < 100 MiB)" % max(utp_rss))
        print("load average at the end %.2f %.2f %.2f" % os.getloadavg())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
