"""Benchmark: downloading a BitTorrent v2 torrent (BEP 52, The BitTorrent Protocol Specification
v2) from libtorrent, peerwire beside a libtorrent leecher, on 127.0.0.1; the same content as a
v1 torrent for context.

    cargo build --release
    /usr/bin/python3 tests/bench/v2_download.py [--mib 1024] [--runs 3] [--piece-kib 1024]
                                                [--warmup 1] [--timeout 300] [--threads]
                                                [--kinds v2,v1]

One file of MIB (default 1024) random bytes, `bench.bin`, and two torrents of it made by
libtorrent's `create_torrent` with pieces of PIECE_KIB (default 1024): a v2-only torrent
(`create_torrent.v2_only`: a file tree, one `pieces root`, its piece layer) and a v1-only one
(`create_torrent.v1_only`: SHA-1 piece hashes). No tracker: the downloader is told the seeder's
address.

In each of RUNS rounds (default 3), for each kind of torrent, two downloads from scratch, each
into a fresh directory and from a fresh libtorrent seeder started for it (TCP only, the file
fully checked before it serves, so the seeder hashes nothing during the download):

  peerwire    `peerwire download --peer <seeder> --transport tcp --no-dht`
  libtorrent  a libtorrent leecher (TCP only) that dials the seeder

The two alternate which goes first from round to round. Before them, WARMUP rounds (default
1) of the first kind only, printed but not counted (why: in `main`). Both libtorrent sessions are this
script run as `v2_download.py lt-peer ...` under /usr/bin/python3 (below, `lt_peer`; the
torrents are made by `v2_download.py lt-create ...`, `lt_create`): libtorrent 2.0.8 as it
comes, but TCP only, no DHT, LSD, UPnP or NAT-PMP, a plain handshake when it dials (as
`peerwire download`), and only status and error alerts (an alert per block costs a session
CPU, and libtorrent is the yardstick here).

Wall time runs from starting the downloader until `peerwire download` exits, or until the
libtorrent leecher says `finished`. Reported per download and as medians: wall time, MB/s
(10^6 bytes per second), the downloader's CPU seconds (user + system) and CPU seconds per GiB,
its peak RSS, and the seeder's CPU seconds during the download (/proc/<pid>/stat before and
after). The downloader runs under GNU time (/usr/bin/time, Debian's `time`), which gives its
rusage: CPU and peak RSS of the downloader alone (why not os.wait4 of our own child: `Timed`).
The libtorrent leecher's figures cover its whole life, which ends right after `finished`;
its wall time includes starting Python and libtorrent, which is also printed on its own
(`start-up`: from starting the process to its `ready`).
Then the ratios peerwire / libtorrent (target <= 1.0 for v2), v2 / v1 for each client, and the
peak RSS of peerwire's v2 downloads (target < 100 MiB). The SHA-1 of every downloaded file is
checked against the original.

--threads watches each download every 50 ms (utp_transfer.Monitor) and prints the user and
system CPU seconds of the busiest threads of the downloader and of the seeder during the
download (/proc/<pid>/task/<tid>/stat): for peerwire, the `verify n` threads (reading each
piece back and hashing it) apart from the peer thread (receiving and writing blocks) and the
scheduler; libtorrent's threads by id, since they all have the name of the interpreter.

Every download is bounded by --timeout seconds (default 300): past it the downloader is killed
and the run is reported as a timeout. Every process is stopped by its PID. Not a test: speed is
measured here, never asserted in `cargo test`. Needs the release build, GNU time, and libtorrent's
Python bindings (Debian's python3-libtorrent) for /usr/bin/python3.
"""
import argparse
import os
import queue
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from download_vs_clients import PEERWIRE, PYTHON, LibtorrentPeer, free_port, sha1_of  # noqa: E402
from utp_transfer import Monitor, cpu_of, wait_bounded  # noqa: E402

HERE = os.path.abspath(__file__)
CLIENTS = ("peerwire", "libtorrent")
GNU_TIME = "/usr/bin/time"


class Timed:
    """A downloader started under GNU time, which reports its CPU seconds and peak RSS.

    Why not os.wait4 on a child of ours, as the other benchmarks do: Python starts a child
    with vfork, so the child begins life in the driver's memory, and Linux carries the peak RSS
    of that memory into the child's `ru_maxrss` when it execs. A child's peak RSS then never
    reads below the driver's own (about 21 MiB here, more than `peerwire download` uses). GNU
    time is a small C program that forks the downloader from its own memory of about 1.5 MiB.

    `pid` is the downloader's own PID (GNU time's child), for the Monitor and for stopping it."""

    def __init__(self, args, **popen):
        fd, self.report = tempfile.mkstemp(prefix="peerwire-bench-time-")
        os.close(fd)
        self.proc = subprocess.Popen([GNU_TIME, "-f", "%U %S %M", "-o", self.report] + args, **popen)
        self.pid = None
        deadline = time.time() + 10
        while self.pid is None and time.time() < deadline:
            try:
                with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                    children = f.read().split()
            except OSError:
                children = []
            if children:
                self.pid = int(children[0])
            else:
                time.sleep(0.001)
        if self.pid is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("GNU time started no child")

    def wait(self, timeout):
        """Waits for the downloader, killing it (by its PID) after `timeout` seconds. Returns
        (exit status, CPU seconds user + system, peak RSS in MiB, killed by the timeout)."""
        killed = threading.Event()

        def kill():
            killed.set()
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass  # it has just exited
        timer = threading.Timer(timeout, kill)
        timer.start()
        # GNU time exits with its child's status (128 + n for a signal n).
        status = self.proc.wait()
        timer.cancel()
        with open(self.report) as f:
            # A line "Command exited with non-zero status …" may come before the figures.
            user, system, rss_kib = f.read().split("\n")[-2].split()
        os.unlink(self.report)
        return status, float(user) + float(system), int(rss_kib) / 1024, killed.is_set()


# --- the libtorrent peer: this script run as `v2_download.py lt-peer ...` ----------------------

def lt_peer(argv):
    """One libtorrent session on 127.0.0.1:PORT with one torrent, driven over stdin/stdout.

    Prints `ready <port>` once it listens on TCP and the torrent is active and not paused (a
    seeder: once its check of the data found every piece), then dials --connect if given;
    `finished` when the download completes; `failed <why>` if the data to seed is not there.
    Reads `quit` (or end of input) on stdin."""
    import libtorrent as lt

    parser = argparse.ArgumentParser(prog="v2_download.py lt-peer")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--save", required=True)
    parser.add_argument("--seed", action="store_true")
    parser.add_argument("--connect", metavar="IP:PORT")
    args = parser.parse_args(argv)
    category = lt.alert.category_t
    session = lt.session({
        "listen_interfaces": "127.0.0.1:%d" % args.port,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        # Dial with a plain handshake, as `peerwire download` does; accept both.
        "out_enc_policy": int(lt.enc_policy.disabled),
        "alert_mask": category.status_notification | category.error_notification,
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    # Not seed mode: in seed mode libtorrent hashes each piece the first time a peer asks for
    # it, so the seeder would hash (SHA-256 or SHA-1, as the downloader) during the download,
    # on the same two cores. A full check before `ready` keeps that out of the measurement.
    # Started at once: an auto-managed torrent starts paused, and libtorrent refuses incoming
    # connections until the queue resumes it.
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    handle = session.add_torrent(params)
    listening = ready = False
    states = lt.torrent_status.states
    wanted = (states.seeding,) if args.seed else (states.downloading, states.seeding)
    while True:
        # Polling, not wait_for_alert: its returned alert can be moved by a growing alert
        # queue while the binding reads it (a segfault seen in the tests).
        time.sleep(0.02)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.listen_succeeded_alert) and alert.socket_type == lt.socket_type_t.tcp:
                listening = True
            elif isinstance(alert, lt.listen_failed_alert):
                print("failed listen", alert.message(), flush=True)
            elif isinstance(alert, lt.torrent_finished_alert) and not args.seed:
                print("finished", flush=True)
        if listening and not ready:
            status = handle.status()
            if args.seed and status.state == states.downloading:
                # The check is over and pieces are missing: the data is not what was hashed.
                print("failed the data to seed does not match the torrent", flush=True)
                return
            if status.state in wanted and not status.paused:
                ready = True
                print("ready", args.port, flush=True)
                if args.connect:
                    host, _, port = args.connect.rpartition(":")
                    handle.connect_peer((host, int(port)))
        readable, _, _ = select.select([sys.stdin], [], [], 0)
        if readable and sys.stdin.readline().strip() in ("quit", ""):
            return


class LtPeer(LibtorrentPeer):
    """`lt_peer` in its own process under /usr/bin/python3 (LibtorrentPeer's event plumbing)."""

    def __init__(self, torrent, save, seed, timeout, connect=None):
        self.port = free_port()
        args = [PYTHON, HERE, "lt-peer", "--port", str(self.port), "--torrent", torrent, "--save", save]
        if seed:
            args.append("--seed")
        if connect:
            args += ["--connect", connect]
        # The leecher is measured (under GNU time); the seeder is not.
        self.timed = None if seed else Timed(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc = self.timed.proc if self.timed else subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.timed.pid if self.timed else self.proc.pid
        self.lines = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            line = self.wait_for(("ready", "failed"), deadline=timeout)
        except RuntimeError:
            self.quit()
            raise
        if line.startswith("failed"):
            self.quit()
            raise RuntimeError("libtorrent: " + line.strip())

    def quit(self):
        """Stops it (asked, then killed after 30 s); returns (CPU seconds, peak RSS in MiB)."""
        try:
            self.send("quit")
        except OSError:
            pass  # it is gone already
        if self.timed:
            _, cpu, rss, _ = self.timed.wait(30)
        else:
            _, cpu, rss, _ = wait_bounded(self.proc, 30)
        return cpu, rss


# --- the benchmark ------------------------------------------------------------------------------

def lt_create(argv):
    """`v2_download.py lt-create DATA PIECE_LEN KIND OUT`: makes a KIND (v2 or v1) torrent of
    the file DATA with libtorrent and prints how long hashing took. A process of its own: the
    process that starts the downloaders must stay small (see `driver_peak_mib`), and libtorrent
    reads the file through a memory map, which counts the whole file into its RSS."""
    import libtorrent as lt

    data, piece_len, kind, out = argv[0], int(argv[1]), argv[2], argv[3]
    fs = lt.file_storage()
    lt.add_files(fs, data)
    flags = lt.create_torrent.v2_only if kind == "v2" else lt.create_torrent.v1_only
    creator = lt.create_torrent(fs, piece_len, flags=flags)
    start = time.time()
    lt.set_piece_hashes(creator, os.path.dirname(data))
    took = time.time() - start
    with open(out, "wb") as f:
        f.write(lt.bencode(creator.generate()))
    print("%.2f" % took)


def make_torrents(work, mib, piece_len, kinds):
    """Writes MIB random bytes to work/seed/bench.bin and makes a torrent of each kind (v2-only,
    v1-only) of it with libtorrent. Returns (seed dir, its SHA-1, {kind: torrent path})."""
    seed_dir = os.path.join(work, "seed")
    os.makedirs(seed_dir)
    data = os.path.join(seed_dir, "bench.bin")
    with open(data, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
        # On disk before any download starts: else the kernel writes the file back (after 30 s,
        # or once dirty pages pass a tenth of memory) in the middle of the first downloads.
        f.flush()
        os.fsync(f.fileno())
    torrents = {}
    for kind in kinds:
        torrents[kind] = os.path.join(work, "bench-%s.torrent" % kind)
        took = subprocess.run([PYTHON, HERE, "lt-create", data, str(piece_len), kind, torrents[kind]],
                              check=True, capture_output=True, text=True, timeout=600).stdout.strip()
        print("libtorrent made the %s torrent (hashing %d MiB) in %s s" % (kind, mib, took), flush=True)
    return seed_dir, sha1_of(data), torrents


def download_peerwire(torrent, out, seeder, timeout, threads):
    """One `peerwire download` from the seeder: (wall, CPU, peak RSS, outcome or None, Monitor)."""
    args = [PEERWIRE, "-q", "download", "-o", out, torrent, "--port", str(free_port()), "--bind", "127.0.0.1",
            "--no-dht", "--transport", "tcp", "--peer", "127.0.0.1:%d" % seeder.port, "--give-up-after", "60"]
    start = time.time()
    proc = Timed(args, stderr=subprocess.DEVNULL)
    monitor = Monitor(proc.pid, {}, {"download": proc.pid, "seeder": seeder.pid} if threads else None)
    status, cpu, rss, killed = proc.wait(timeout)
    wall = time.time() - start
    monitor.stop()
    if killed:
        outcome = "TIMEOUT after %d s" % timeout
    elif status != 0:
        outcome = "exit status %d" % status
    else:
        outcome = None
    return wall, cpu, rss, outcome, monitor


def download_libtorrent(torrent, out, seeder, timeout, threads):
    """A libtorrent leecher that dials the seeder, timed until `finished`."""
    start = time.time()
    leecher = LtPeer(torrent, out, False, timeout, connect="127.0.0.1:%d" % seeder.port)
    startup = time.time() - start
    monitor = Monitor(leecher.pid, {}, {"download": leecher.pid, "seeder": seeder.pid} if threads else None)
    try:
        leecher.wait_for("finished", deadline=max(1, timeout - (time.time() - start)))
        outcome = None
    except RuntimeError:
        outcome = "TIMEOUT after %d s" % timeout
    wall = time.time() - start
    monitor.stop()
    cpu, rss = leecher.quit()
    monitor.startup = startup
    return wall, cpu, rss, outcome, monitor


def one_download(client, torrent, seed_dir, out, timeout, threads):
    """Starts a seeder, runs one download from it, stops the seeder. Returns the download's
    result and the seeder's CPU seconds during it."""
    seeder = LtPeer(torrent, seed_dir, True, timeout)
    try:
        before = cpu_of(seeder.proc.pid)
        run = download_peerwire if client == "peerwire" else download_libtorrent
        result = run(torrent, out, seeder, timeout, threads)
        seeder_cpu = cpu_of(seeder.proc.pid) - before
    finally:
        seeder.quit()
    return result, seeder_cpu


def report_run(r, kind, client, size, wall, cpu, rss, seeder_cpu, outcome, monitor):
    label = "run %d" % (r + 1) if r >= 0 else "warm-up"
    print("%-7s %s %-10s %7.2f s %7.1f MB/s  cpu %6.2f s (%5.2f s/GiB)  peak RSS %7.1f MiB  seeder cpu %5.2f s  %s"
          % (label, kind, client, wall, size / 1e6 / wall, cpu, cpu / (size / (1 << 30)), rss, seeder_cpu, outcome))
    if hasattr(monitor, "startup"):
        print("      start-up of the libtorrent leecher (process start to `ready`): %.2f s" % monitor.startup)
    stalls = monitor.stalls()
    if client == "peerwire" and stalls:
        # peerwire writes each block as it arrives, so a span without writes is a stall; a
        # libtorrent leecher writes in the rhythm of its disk threads, so it is not shown.
        print("      nothing written for >= 0.2 s: %d times, %.2f s in all (%s)" % (
            len(stalls), sum(s[1] for s in stalls),
            ", ".join("%.2f s at %.1f s, %.0f MiB in" % (d, t, m) for t, d, m in stalls[:6])))
    if monitor.threads:
        report_threads(client, size, monitor)
    sys.stdout.flush()


def report_threads(client, size, monitor):
    """The CPU seconds of each thread during the download: peerwire's by name (`peer …`,
    `verify n`, `scheduler`), libtorrent's by thread id (its threads are all called python3),
    the busiest four of each process."""
    for label in ("download", "seeder"):
        rows = []
        for (which, tid), (name, base, latest) in monitor.threads.items():
            if which == label:
                rows.append((latest[0] - base[0], latest[1] - base[1], name, tid))
        if label == "download" and client == "peerwire":
            by_name = {}
            for user, system, name, _ in rows:
                u, s = by_name.get(name, (0, 0))
                by_name[name] = (u + user, s + system)
            rows = [(u, s, name, "") for name, (u, s) in by_name.items()]
            hashing = sum(u + s for u, s, name, _ in rows if name.startswith("verify"))
            print("      verify threads together %.2f s (%.2f s per GiB)" % (hashing, hashing / (size / (1 << 30))))
        who = "peerwire" if label == "download" and client == "peerwire" else "libtorrent " + label
        for user, system, name, tid in sorted(rows, key=lambda r: -(r[0] + r[1]))[:4]:
            if user + system >= 0.01:
                print("      %-19s thread %-16s %6.2f s (user %.2f s, system %.2f s)"
                      % (who, name if not tid else "%s %s" % (name, tid), user + system, user, system))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "lt-peer":
        return lt_peer(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "lt-create":
        return lt_create(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="size of the file in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--piece-kib", type=int, default=1024, help="piece length in KiB (default 1024)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one download may take (default 300)")
    parser.add_argument("--kinds", default="v2,v1", help="which torrents, comma-separated (default v2,v1)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="rounds before the counted ones, of the first kind only (default 1)")
    parser.add_argument("--threads", action="store_true", help="CPU seconds of each thread of the downloader")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k in ("v2", "v1")]
    if not os.path.exists(PEERWIRE):
        sys.exit("no %s: run `cargo build --release` first" % PEERWIRE)
    if not os.path.exists(GNU_TIME):
        sys.exit("no %s: install Debian's `time` (GNU time measures the downloaders)" % GNU_TIME)
    size = args.mib << 20
    gib = size / (1 << 30)
    print("%d MiB in %d KiB pieces, %d runs after %d warm-up, timeout %d s; load average at start %.2f %.2f %.2f"
          % ((args.mib, args.piece_kib, args.runs, args.warmup, args.timeout) + os.getloadavg()), flush=True)
    work = tempfile.mkdtemp(prefix="peerwire-bench-")
    try:
        seed_dir, digest, torrents = make_torrents(work, args.mib, args.piece_kib << 10, kinds)
        results = {(k, c): [] for k in kinds for c in CLIENTS}
        # Warm-up rounds (r < 0) run first and are not counted: on the 2-core development
        # machine (a VM), the first download after the data was made was, in 6 of 8 trials,
        # up to 1.8 times slower than the later ones and spent up to 2.3 times their CPU, the
        # extra all system time of the thread that writes the blocks. That first download was
        # peerwire's each time; after a warm-up round it was not slower than the rest.
        for r in range(-args.warmup, args.runs):
            # Which client goes first alternates, so that neither always meets a cold or a
            # warm machine.
            order = CLIENTS if r % 2 == 0 else tuple(reversed(CLIENTS))
            for kind in kinds[:1] if r < 0 else kinds:
                for client in order:
                    out = os.path.join(work, "out-%s-%s-%d" % (kind, client, r))
                    os.makedirs(out)
                    (wall, cpu, rss, outcome, monitor), seeder_cpu = one_download(
                        client, torrents[kind], seed_dir, out, args.timeout, args.threads)
                    got = os.path.join(out, "bench.bin")
                    if outcome is None:
                        outcome = "ok" if os.path.exists(got) and sha1_of(got) == digest else "WRONG BYTES"
                    report_run(r, kind, client, size, wall, cpu, rss, seeder_cpu, outcome, monitor)
                    if r >= 0:
                        results[(kind, client)].append((wall, cpu, rss, seeder_cpu, outcome))
                    shutil.rmtree(out)
        print("\nmedian of %d runs, %d MiB in one file, %d KiB pieces, one libtorrent seeder on 127.0.0.1 (TCP):"
              % (args.runs, args.mib, args.piece_kib))
        print("| torrent | downloader | wall | MB/s | CPU (user + sys) | CPU per GiB | peak RSS | seeder CPU | failed |")
        print("|---|---|---|---|---|---|---|---|---|")
        medians = {}
        for (kind, client), runs in results.items():
            ok = [x for x in runs if x[4] == "ok"]
            failed = len(runs) - len(ok)
            if not ok:
                print("| %s | %s | no run completed (%s) | | | | | | %d |" % (kind, client, runs[0][4], failed))
                continue
            # A failed run counts as infinitely slow in the median of the wall times.
            wall = statistics.median([x[0] for x in ok] + [float("inf")] * failed)
            cpu, rss, scpu = (statistics.median(x[i] for x in ok) for i in (1, 2, 3))
            medians[(kind, client)] = (wall, cpu, rss)
            print("| %s | %s | %.2f s | %.0f | %.2f s | %.2f s | %.1f MiB | %.2f s | %d |"
                  % (kind, client, wall, size / 1e6 / wall, cpu, cpu / gib, rss, scpu, failed))
        print()
        for kind in kinds:
            pw, lt_ = medians.get((kind, "peerwire")), medians.get((kind, "libtorrent"))
            if pw and lt_:
                target = "  (target <= 1.0)" if kind == "v2" else ""
                print("%s peerwire / libtorrent: wall %.2f%s, CPU %.2f" % (kind, pw[0] / lt_[0], target, pw[1] / lt_[1]))
        for client in CLIENTS:
            v2, v1 = medians.get(("v2", client)), medians.get(("v1", client))
            if v2 and v1:
                print("%s v2 / v1: wall %.2f, CPU %.2f (%.2f s per GiB more for v2)"
                      % (client, v2[0] / v1[0], v2[1] / v1[1], (v2[1] - v1[1]) / gib))
        rss = [x[2] for x in results.get(("v2", "peerwire"), []) if x[4] == "ok"]
        if rss:
            print("peak RSS of peerwire's v2 downloads: at most %.1f MiB  (target < 100 MiB)" % max(rss))
        print("load average at the end %.2f %.2f %.2f" % os.getloadavg())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
