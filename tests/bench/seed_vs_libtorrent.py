"""Benchmark: peerwire as a seeder against libtorrent as a seeder, side by side, on 127.0.0.1.

    /usr/bin/python3 tests/bench/seed_vs_libtorrent.py [SIZE_MIB] [ROUNDS]

A file of SIZE_MIB (default 1024) random bytes in 1 MiB pieces, announced to peerwire's built-in
tracker. In each of ROUNDS rounds (default 3), one libtorrent leecher
(tests/peers/libtorrent_session.py) downloads it from scratch twice: once from `peerwire seed`,
once from a libtorrent seeder (seed mode). Only one seeder runs at a time. Reported: the median
time the leecher took (from starting it to `finished`), and each seeder's CPU seconds and peak
RSS over its whole life (peerwire's includes hashing the file once before it serves). The ratio
is peerwire's time over libtorrent's. Not a test: speed is measured here, never asserted.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from download_vs_clients import (PEERWIRE, REPO, LibtorrentPeer, free_port, prepare,  # noqa: E402
                                 reap, sha1_of, wait_port)


def start_peerwire_seeder(torrent, data):
    """`peerwire seed`, once it listens and has announced (its log says so)."""
    port = free_port()
    proc = subprocess.Popen([PEERWIRE, "-v", "seed", torrent, data, "--port", str(port)],
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "next announce in" in line:
            break
    wait_port(port)
    # Keep draining its log so that it never blocks on a full pipe.
    import threading
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()

    def stop():
        proc.send_signal(2)  # SIGINT: a clean stop
        return reap(proc.pid)
    return stop


def start_libtorrent_seeder(torrent, seed_dir):
    seeder = LibtorrentPeer(torrent, seed_dir, seed=True)
    seeder.wait_for("tracker_reply")
    return seeder.quit


def leech(torrent, out):
    start = time.time()
    leecher = LibtorrentPeer(torrent, out, seed=False)
    leecher.wait_for("finished")
    wall = time.time() - start
    leecher.quit()
    return wall


def main():
    size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    work = tempfile.mkdtemp(prefix="peerwire-seed-bench-")
    try:
        seed_dir, data, expected, tracker, torrent = prepare(work, size_mib)
        seeders = {
            "peerwire": lambda: start_peerwire_seeder(torrent, data),
            "libtorrent": lambda: start_libtorrent_seeder(torrent, seed_dir),
        }
        results = {name: [] for name in seeders}
        for r in range(rounds):
            for name, start in seeders.items():
                stop = start()
                out = os.path.join(work, "out-%s-%d" % (name, r))
                os.makedirs(out)
                wall = leech(torrent, out)
                cpu, rss = stop()
                ok = sha1_of(os.path.join(out, "bench.bin")) == expected
                print("round %d seeder %-10s leecher took %6.2f s  seeder cpu %6.2f s  peak RSS %7.1f MiB  %s"
                      % (r + 1, name, wall, cpu, rss, "ok" if ok else "WRONG DATA"), flush=True)
                results[name].append((wall, cpu, rss))
                shutil.rmtree(out)
        print("\nmedian of %d rounds, %d MiB, 1 MiB pieces, one libtorrent leecher on 127.0.0.1:" % (rounds, size_mib))
        medians = {}
        for name, runs in results.items():
            medians[name] = tuple(statistics.median(x[i] for x in runs) for i in range(3))
            print("  seeder %-10s leecher took %6.2f s  seeder cpu %6.2f s  peak RSS %7.1f MiB" % ((name,) + medians[name]))
        print("peerwire seeder / libtorrent seeder: %.2f" % (medians["peerwire"][0] / medians["libtorrent"][0]))
        tracker.terminate()
        tracker.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
