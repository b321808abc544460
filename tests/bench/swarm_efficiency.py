"""Benchmark: how close a swarm behind slow links comes to the fastest it could finish.

    /usr/bin/python3 tests/bench/swarm_efficiency.py [--swarm KIND]... [--leechers N]
        [--size-mib MIB] [--piece-kib KIB] [--seeder-up RATE] [--seeder-down RATE]
        [--leecher-up RATE] [--leecher-down RATE] [--rounds R] [--deadline SECS]
        [--peerwire BIN] [--peerwire-flag FLAG]... [--keep DIR]

Runs in the network lab (tests/lab/lab.py: root, one network namespace per peer, shaped
links, peers learned from a tracker only). The default swarm: one seeder with a 2 MiB/s uplink
and 8 MiB/s downlink, 20 leechers with 1 MiB/s up and 8 MiB/s down, a 64 MiB file of random
bytes in 256 KiB pieces (made with `peerwire create`). The swarm kinds (`--swarm`, repeatable;
default all three):

    all-peerwire     a peerwire seeder, N peerwire leechers
    all-libtorrent   a libtorrent seeder, N libtorrent leechers
    mixed            a peerwire seeder; leechers peerwire, libtorrent, Transmission and
                     aria2c in equal numbers (5 each when N is 20)

For each swarm and round it prints T (when the last leecher held every byte, from the swarm's
start), the lower bound

    T >= max(F / u_seed, N * F / (u_seed + sum of the leechers' u))

(the seeder must send every byte at least once; every leecher must receive F through the
swarm's total upload: 58.2 s for the default swarm), T / bound, what the seeder's link carried
(and as a multiple of F; its client's own figure beside it), the leechers' completion times
(min / median / max, and per client kind in the mixed swarm), how busy the leechers' uplinks
were before they completed, and for a peerwire seeder whom it served. Rates are bytes per
second: `1MiB`, `512KiB`. `--peerwire-flag` passes a flag to every peerwire (repeat it for a
flag's value: `--peerwire-flag=--upload-slots --peerwire-flag=8`). `--keep DIR` keeps each
swarm's files and logs under DIR.

Not a test: nothing is asserted. The figures and the command go in docs/performance.md.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))
sys.dont_write_bytecode = True  # no __pycache__ left in tests/lab by the import
import lab  # noqa: E402  (tests/lab/lab.py, found through the path above)

SWARMS = ("all-peerwire", "all-libtorrent", "mixed")
MIXED_KINDS = ("peerwire", "libtorrent", "transmission", "aria2")


def swarm_clients(kind, leechers):
    """(seeder kind, [leecher kinds]) of one swarm kind."""
    if kind == "all-peerwire":
        return "peerwire", ["peerwire"] * leechers
    if kind == "all-libtorrent":
        return "libtorrent", ["libtorrent"] * leechers
    # Interleaved, so that no kind starts first every time.
    return "peerwire", [MIXED_KINDS[i % len(MIXED_KINDS)] for i in range(leechers)]


def spread(values):
    if not values:
        return "none"
    return "%.1f / %.1f / %.1f s" % (min(values), statistics.median(values), max(values))


def report(kind, result, config):
    size = result["size"]
    seeder = result["seeder"]
    leechers = result["leechers"]
    print("== %s: %d leechers, %.0f MiB in %d KiB pieces; seeder %s up / %s down, leechers "
          "%s up / %s down" % (kind, len(leechers), size / lab.MiB, config.piece_length // 1024,
                               lab.show_rate(config.seeder_up), lab.show_rate(config.seeder_down),
                               lab.show_rate(config.leecher_up),
                               lab.show_rate(config.leecher_down)))
    bound = result["bound_s"]
    if result["T_s"] is not None:
        print("   T %.1f s   bound %.1f s   T / bound %.2f"
              % (result["T_s"], bound, result["T_s"] / bound))
    else:
        print("   T: not all complete (%s)   bound %.1f s" % (", ".join(result["missing"]), bound))
    own = seeder.get("client_uploaded")
    print("   seeder (%s) sent %.1f MiB on its link = %.2f F; its client says %s"
          % (seeder["kind"], seeder["sent"] / lab.MiB, seeder["sent"] / size,
             "?" if own is None else "%.1f MiB" % (own / lab.MiB)))
    done = [item["done_s"] for item in leechers if item["done_s"] is not None]
    print("   completion min / median / max: %s" % spread(done))
    kinds = sorted({item["kind"] for item in leechers})
    if len(kinds) > 1:
        for client in kinds:
            times = [item["done_s"] for item in leechers
                     if item["kind"] == client and item["done_s"] is not None]
            sent = [item["sent"] / lab.MiB for item in leechers if item["kind"] == client]
            print("     %-12s %s   sent %.1f MiB each (median)"
                  % (client, spread(times), statistics.median(sent)))
    busy = [item["upload_busy"] for item in leechers if item["upload_busy"] is not None]
    sent = sum(item["sent"] for item in leechers)
    if busy:
        print("   leechers' uplinks busy (>= half rate) before completion: median %.0f%%, "
              "min %.0f%%; they sent %.1f MiB in all (%.2f F each)"
              % (100 * statistics.median(busy), 100 * min(busy), sent / lab.MiB,
                 sent / size / len(leechers)))
    if result.get("T_s") and config.leecher_up:
        total_up = config.seeder_up + len(leechers) * config.leecher_up
        carried = seeder["sent"] + sent
        print("   the swarm's upload used: %.0f%% of %s x T"
              % (100 * carried / (total_up * result["T_s"]), lab.show_rate(total_up)))
    choker = result.get("seeder_choker")
    if choker and choker.get("traffic"):
        served = sorted((t["uploaded"] for t in choker["traffic"]), reverse=True)
        print("   the peerwire seeder served %d peer ids: most %.1f MiB, median %.1f MiB, "
              "least %.1f MiB" % (len(served), served[0] / lab.MiB,
                                  statistics.median(served) / lab.MiB, served[-1] / lab.MiB))
    for failure in result["failures"]:
        print("   FAILED: %s" % failure.splitlines()[0])
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--swarm", action="append", choices=SWARMS)
    parser.add_argument("--leechers", type=int, default=20)
    parser.add_argument("--size-mib", type=float, default=64)
    parser.add_argument("--piece-kib", type=int, default=256)
    parser.add_argument("--seeder-up", type=lab.parse_rate, default=lab.parse_rate("2MiB"))
    parser.add_argument("--seeder-down", type=lab.parse_rate, default=lab.parse_rate("8MiB"))
    parser.add_argument("--leecher-up", type=lab.parse_rate, default=lab.parse_rate("1MiB"))
    parser.add_argument("--leecher-down", type=lab.parse_rate, default=lab.parse_rate("8MiB"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=600)
    parser.add_argument("--peerwire", default=os.path.join(lab.REPO, "target", "release",
                                                           "peerwire"))
    parser.add_argument("--peerwire-flag", action="append", default=[], metavar="FLAG")
    parser.add_argument("--utp", action="store_true")
    parser.add_argument("--keep", metavar="DIR")
    parser.add_argument("--json", metavar="FILE", help="append every result to FILE")
    args = parser.parse_args()
    print("load average at the start: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    failed = False
    for round_number in range(1, args.rounds + 1):
        for kind in args.swarm or SWARMS:
            seeder, leechers = swarm_clients(kind, args.leechers)
            workdir = None
            if args.keep:
                workdir = os.path.join(args.keep, "%s-%d-%d" % (kind, round_number,
                                                                 int(time.time())))
            config = lab.SwarmConfig(
                seeder=seeder, leechers=leechers, size=int(args.size_mib * lab.MiB),
                piece_length=args.piece_kib * 1024, seeder_up=args.seeder_up,
                seeder_down=args.seeder_down, leecher_up=args.leecher_up,
                leecher_down=args.leecher_down, deadline=args.deadline,
                peerwire=os.path.abspath(args.peerwire), peerwire_flags=args.peerwire_flag,
                utp=args.utp, workdir=workdir)
            try:
                result = lab.run_swarm(config)
            except lab.CannotRun as why:
                print("*** cannot run the lab here: %s ***" % why, file=sys.stderr)
                return lab.EXIT_CANNOT_RUN
            except lab.Interrupted as interrupted:
                return 128 + interrupted.signum
            print("-- round %d, load average %s" % (round_number, " ".join(
                "%.2f" % x for x in os.getloadavg())))
            report(kind, result, config)
            failed |= not result["ok"]
            if args.json:
                with open(args.json, "a") as out:
                    out.write(json.dumps({"swarm": kind, "round": round_number,
                                          "result": result}) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
