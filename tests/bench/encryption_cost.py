"""Benchmark: what Message Stream Encryption (MSE/PE) costs a download, on 127.0.0.1.

    /usr/bin/python3 tests/bench/encryption_cost.py [SIZE_MIB] [ROUNDS]

A file of SIZE_MIB (default 256) random bytes in 1 MiB pieces. In each of ROUNDS rounds (default
3), three downloads from scratch, each from its own seeder started for it, in this order:

  plain       `peerwire seed --encryption off`    -> `peerwire download --encryption off`
  rc4         `peerwire seed --encryption require` -> `peerwire download --encryption require`
  lt-rc4      libtorrent seeding with encryption forced (RC4 only) -> `peerwire download`
              (default policy: its plain handshake is refused, then MSE)

Reported: median wall time of the download (start of `peerwire download` to its exit) and its
CPU seconds and peak RSS; the ratio rc4 / plain. Not a test: speed is measured here, never
asserted in `cargo test`. Needs the release build (`cargo build --release`).
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from download_vs_clients import (PEERWIRE, LibtorrentPeer, free_port, prepare,  # noqa: E402
                                 reap, sha1_of, wait_port)


def peerwire_seed(torrent, data, policy):
    port = free_port()
    proc = subprocess.Popen([PEERWIRE, "-q", "seed", torrent, data, "--port", str(port), "--no-dht",
                             "--encryption", policy], stderr=subprocess.DEVNULL)
    wait_port(port)

    def stop():
        proc.send_signal(2)
        reap(proc.pid)
    return port, stop


def libtorrent_seed(torrent, seed_dir):
    seeder = LibtorrentPeer(torrent, seed_dir, seed=True, extra=["--encryption", "forced"])
    return seeder.port, seeder.quit


def download(torrent, out, port, policy):
    start = time.time()
    args = [PEERWIRE, "-q", "download", "-o", out, torrent, "--port", str(free_port()), "--no-dht",
            "--peer", "127.0.0.1:%d" % port, "--give-up-after", "60"]
    if policy:
        args += ["--encryption", policy]
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    cpu, rss = reap(proc.pid)
    return time.time() - start, cpu, rss


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work = tempfile.mkdtemp(prefix="peerwire-bench-")
    try:
        seed_dir, data, digest, tracker, torrent = prepare(work, size)
        tracker.terminate()
        results = {"plain": [], "rc4": [], "lt-rc4": []}
        for r in range(rounds):
            for name in results:
                out = os.path.join(work, "out-%s-%d" % (name, r))
                os.makedirs(out)
                if name == "lt-rc4":
                    port, stop = libtorrent_seed(torrent, seed_dir)
                    policy = None
                else:
                    policy = "off" if name == "plain" else "require"
                    port, stop = peerwire_seed(torrent, data, policy)
                wall, cpu, rss = download(torrent, out, port, policy)
                stop()
                got = os.path.join(out, "bench.bin")
                ok = os.path.exists(got) and sha1_of(got) == digest
                print("round %d %-7s %6.2f s  cpu %5.2f s  rss %5.1f MiB  %s"
                      % (r + 1, name, wall, cpu, rss, "ok" if ok else "WRONG BYTES"), flush=True)
                results[name].append((wall, cpu, rss))
                shutil.rmtree(out)
        print("\nmedian of %d rounds, %d MiB:" % (rounds, size))
        for name, runs in results.items():
            print("  %-7s %6.2f s  cpu %5.2f s  rss %5.1f MiB" % (
                name, statistics.median(w for w, _, _ in runs), statistics.median(c for _, c, _ in runs),
                statistics.median(m for _, _, m in runs)))
        plain = statistics.median(w for w, _, _ in results["plain"])
        rc4 = statistics.median(w for w, _, _ in results["rc4"])
        print("rc4 / plain: %.2f (target <= 1.3)" % (rc4 / plain))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
