"""The network lab: BitTorrent swarms behind slow links, on one machine.

Every measurement on 127.0.0.1 has one seeder, one leecher and no bandwidth limit. Real swarms
are many peers behind links of a few MiB/s, where the choker (BEP 3, The BitTorrent Protocol
Specification: choking), the piece picker and how fast pieces spread decide the time. The lab
makes such swarms here, out of Linux network namespaces, and times them. It is where the
swarm-level behaviour of a client is measured: tests/lab_swarm.rs (a CI test) and
tests/bench/swarm_efficiency.py (a benchmark) drive it.

Run it as root with /usr/bin/python3 (the interpreter with the libtorrent binding):

    /usr/bin/python3 tests/lab/lab.py swarm --peerwire target/release/peerwire \\
        --seeder peerwire --leechers peerwire:3,libtorrent:3 --size-mib 4 \\
        --seeder-up 2MiB --leecher-up 1MiB --leecher-down 8MiB --deadline 60 --json
    /usr/bin/python3 tests/lab/lab.py shaping-check      # is the shaping what it says?
    /usr/bin/python3 tests/lab/lab.py clean              # remove namespaces of dead labs

`swarm` prints a human summary on stderr and, with --json, one JSON object on stdout (see
`run_swarm`). Exit status: 0 every leecher completed with the right bytes; 1 the swarm failed
(a deadline, wrong bytes, a client that died: the JSON says which); 2 a usage error; 77 the lab
cannot run here (not root, `ip` or `tc` missing, a client's program missing) -- the Rust test
maps 77 to a loud skip, or to a failure under PEERWIRE_INTEROP=require.

The network. One "switch" namespace holds a bridge. Each host is a namespace of its own with a
veth pair: `eth0` in the host, `hN` on the bridge, an address in 10.213.0.0/16 (a range used by
nothing else here; `ip route` and `ip addr` show only the machine's own network), and `lo` up.
Nothing is added to the root namespace's network. Namespaces are named
`pwlab-<lab PID>-sw` and `pwlab-<lab PID>-hN`. Host 1 runs the tracker (`peerwire tracker`,
unshaped), host 2 the seeder, hosts 3.. the leechers, one client each.

Shaping. A host's uplink is a token bucket (`tbf`) on its `eth0` egress; its downlink a `tbf`
on the bridge port's egress toward it. Rates are bytes per second, given as `1MiB`, `512KiB`
or `0` (unshaped); tc is told bits (`rate 8388608bit` is 1 MiB/s: in tc, `bps` would mean
bytes). The bucket (burst) is 10 ms of the rate and at least 32 KiB: veth hands tbf packets of
up to 64 KiB at once (segmentation offload), and a bucket smaller than a packet makes tbf split
every packet; a larger bucket would let the link run above its rate for longer than a few
packets. The queue (limit) is 60 ms of the rate and at least 64 KiB: the lab adds no latency
(`netem` does not exist here, so the links have none but their queues), and a queue much deeper
than that would add hundreds of milliseconds of delay to every request behind a stream of
pieces, while a shallower one drops the bursts a TCP sender makes after an idle moment.
`shaping-check` measures one TCP transfer through each direction and prints the achieved rate
next to the configured one (TCP/IP headers take about 3-4% of the wire).

Clients, one per host, all learning peers from the tracker only (no DHT, no local peer
discovery; peer exchange may stay on), all over TCP by default (uTP with --utp):
  - peerwire: `peerwire -v seed` or `peerwire -v download --seed`, with --no-dht --no-lsd;
    `--peerwire-flag FLAG` passes more flags to every peerwire (e.g. `--upload-slots 8`).
    Complete when its log says `download complete`; its own uploaded figure is the `done:`
    line it prints when stopped with SIGINT. The seeder runs with `--web` on the host's own
    `lo`, and the lab saves its `/api/state` every 2 s (its choker's rounds, the bytes it sent
    each peer) into the work directory: `seeder-state.jsonl`.
  - libtorrent 2.0.8: tests/lab/lt_peer.py (see its docstring; the "local" peer class is made
    to respect unchoke slots, as on the internet).
  - Transmission: transmission-daemon with its own config directory, RPC on the host's `lo`,
    driven with transmission-remote inside the namespace; complete when its
    script-torrent-done hook runs.
  - aria2c: seeding forever after completion (`--seed-ratio=0.0`); complete when its
    `--on-bt-download-complete` hook runs.
Every leecher's file is checked (SHA-1 against the source) at the end: a leecher that said it
was complete with wrong bytes fails the swarm. The upload of every host is counted on its
bridge port (bytes the host sent, whatever the client), sampled every 0.5 s.

Teardown, always. `Lab` is a context manager; SIGINT, SIGTERM and SIGHUP unwind it; every
process is stopped by PID (SIGTERM, or SIGINT for peerwire, then SIGKILL after a deadline) and
every namespace deleted. Against SIGKILL, a reaper (`lab.py reap`, started with setsid) holds
the read end of a pipe whose write end only the lab holds: when the lab dies the reaper reads
end-of-file, kills every process left in the lab's namespaces (`ip netns pids`) and deletes
them. At start the lab also removes the namespaces of labs whose PID is gone.

As a library: `with Lab() as lab: host = lab.add_host(up=MiB, down=8 * MiB); lab.spawn(host,
argv)`; `run_swarm(SwarmConfig(...))` runs one whole swarm and returns its result.
"""
import argparse
import bisect
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

PREFIX = "pwlab"
SUBNET = "10.213"
EXIT_CANNOT_RUN = 77
KiB = 1 << 10
MiB = 1 << 20
PEER_PORT = 6881
TRACKER_PORT = 6969
PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
KINDS = ("peerwire", "libtorrent", "transmission", "aria2")


class CannotRun(Exception):
    """The lab cannot run on this machine (not root, a program missing)."""


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind and tear down."""

    def __init__(self, signum):
        super().__init__("interrupted by signal %d" % signum)
        self.signum = signum


def log(*words):
    print("lab:", *words, file=sys.stderr, flush=True)


def parse_rate(text):
    """`1MiB`, `512KiB`, `2000000` (bytes per second), `0` or `none` (unshaped) -> bytes/s or
    None."""
    text = str(text).strip()
    if text.lower() in ("0", "none", "unshaped", ""):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(MiB|KiB|B)?(?:/s)?", text)
    if not match:
        raise ValueError("not a rate: %r (want e.g. 1MiB, 512KiB, 0)" % text)
    unit = {"MiB": MiB, "KiB": KiB, "B": 1, None: 1}[match.group(2)]
    return int(float(match.group(1)) * unit)


def show_rate(rate):
    if rate is None:
        return "unshaped"
    if rate % MiB == 0:
        return "%d MiB/s" % (rate // MiB)
    return "%.0f KiB/s" % (rate / KiB)


def run(argv, deadline=30, check=True):
    """Runs a short command to completion (killed at the deadline); its stdout."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=deadline)
    except subprocess.TimeoutExpired:
        raise RuntimeError("%s did not finish within %ds" % (" ".join(argv), deadline))
    if check and done.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), done.returncode,
                                                    done.stderr.strip()))
    return done.stdout


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lab_namespaces(prefix):
    """Every namespace whose name starts with `prefix`."""
    listing = run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return [name for name in names if name.startswith(prefix)]


def reap_namespace(ns):
    """Kills (SIGKILL) every process in `ns`, then deletes it."""
    pids = run(["ip", "netns", "pids", ns], check=False).split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    run(["ip", "netns", "del", ns], check=False)


def remove_stale():
    """Removes the namespaces of labs whose PID is dead; how many."""
    removed = 0
    for ns in lab_namespaces(PREFIX + "-"):
        match = re.match(re.escape(PREFIX) + r"-(\d+)-", ns)
        if match and not pid_alive(int(match.group(1))):
            reap_namespace(ns)
            removed += 1
    return removed


def reaper_main(prefix, remove=None):
    """The reaper: waits for end-of-file on stdin (the lab is gone, however it ended), then
    removes whatever the lab left: the namespaces named `prefix...`, the processes in them,
    and the directory `remove` (the lab's temporary work directory)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    while os.read(0, 4096):
        pass
    # Processes first, in every namespace, then the namespaces: a process killed in one
    # namespace cannot then be holding a socket to another that is being deleted.
    for ns in lab_namespaces(prefix):
        reap_namespace(ns)
    if remove:
        shutil.rmtree(remove, ignore_errors=True)


def check_can_run(programs=("ip", "tc")):
    if os.geteuid() != 0:
        raise CannotRun("the lab needs root (network namespaces, tc)")
    for program in programs:
        if shutil.which(program) is None and not os.path.exists(program):
            raise CannotRun("`%s` is not installed" % program)


class Host:
    """One network namespace with one address on the lab's bridge."""

    def __init__(self, lab, index, up, down):
        self.index = index
        self.name = "h%d" % index
        self.ns = "%s-%s" % (lab.prefix, self.name)
        self.addr = "%s.%d.%d" % (SUBNET, index >> 8, index & 255)
        self.up = up
        self.down = down
        # The bridge port toward this host: what it receives is what the host sent.
        self.port = self.name

    def __repr__(self):
        return "%s (%s)" % (self.name, self.addr)


class Proc:
    """A process in a host's namespace, its output (stdout and stderr together) copied line by
    line to a log file and offered to the watchers."""

    def __init__(self, lab, host, name, argv, env=None, stdin=False, log_path=None, on_line=None):
        self.host = host
        self.name = name
        self.log_path = log_path or os.path.join(lab.workdir, "%s-%s.log" % (host.name, name))
        self.on_line = on_line
        full_env = dict(os.environ)
        full_env.update(env or {})
        # `ip netns exec` replaces itself with the program: the PID is the program's.
        self.popen = subprocess.Popen(
            ["ip", "netns", "exec", host.ns] + list(argv),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env,
            text=True, bufsize=1)
        self.pid = self.popen.pid
        self.reader = threading.Thread(target=self._read, name="read %s" % name, daemon=True)
        self.reader.start()

    def _read(self):
        with open(self.log_path, "w") as out:
            for line in self.popen.stdout:
                out.write(line)
                out.flush()
                if self.on_line is not None:
                    try:
                        self.on_line(line.rstrip("\n"))
                    except Exception as error:  # a watcher's bug must not stop the copy
                        log("watcher of %s failed: %r" % (self.name, error))

    def send(self, line):
        try:
            self.popen.stdin.write(line + "\n")
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError, AttributeError):
            pass

    def alive(self):
        return self.popen.poll() is None

    def stop(self, first=signal.SIGTERM, deadline=5.0):
        """`first` (by PID), then SIGKILL after `deadline` seconds; the exit status."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, first)
                self.popen.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.reader.join(timeout=5)
        return self.popen.returncode

    def tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


class Lab:
    """The namespaces, links and processes of one lab; all gone when the `with` ends."""

    def __init__(self, workdir=None, keep_workdir=False):
        self.prefix = "%s-%d" % (PREFIX, os.getpid())
        self.switch = self.prefix + "-sw"
        self.hosts = []
        self.procs = []
        self.keep_workdir = keep_workdir or workdir is not None
        self.workdir = workdir
        self.reaper = None
        self.reaper_pipe = None
        self.old_handlers = {}
        self.closed = False

    # -- setting up, tearing down -------------------------------------------------------
    def __enter__(self):
        check_can_run()
        stale = remove_stale()
        if stale:
            log("removed %d namespaces of labs that are gone" % stale)
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix="peerwire-lab-")
        os.makedirs(self.workdir, exist_ok=True)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self.old_handlers[signum] = signal.signal(signum, self._on_signal)
        self._start_reaper()
        try:
            run(["ip", "netns", "add", self.switch])
            self._ip(self.switch, "link", "add", "br0", "type", "bridge")
            self._ip(self.switch, "link", "set", "lo", "up")
            self._ip(self.switch, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc):
        self.close()
        return False

    def _on_signal(self, signum, _frame):
        raise Interrupted(signum)

    def _start_reaper(self):
        read_end, write_end = os.pipe()  # both non-inheritable: no client holds them
        self.reaper = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "reap", "--prefix", self.prefix + "-"]
            + ([] if self.keep_workdir else ["--remove", self.workdir]),
            stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        os.close(read_end)
        self.reaper_pipe = write_end

    def close(self):
        if self.closed:
            return
        self.closed = True
        # A second Ctrl-C must not cut the teardown short.
        for signum in self.old_handlers:
            signal.signal(signum, signal.SIG_IGN)
        try:
            for proc in reversed(self.procs):
                try:
                    proc.stop()
                except Exception as error:
                    log("stopping %s: %r" % (proc.name, error))
            for ns in [host.ns for host in self.hosts] + [self.switch]:
                reap_namespace(ns)
        finally:
            if self.reaper_pipe is not None:
                os.close(self.reaper_pipe)  # the reaper wakes, finds nothing, and exits
                try:
                    self.reaper.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.reaper.kill()
            if not self.keep_workdir and self.workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            for signum, handler in self.old_handlers.items():
                signal.signal(signum, handler)

    # -- the network --------------------------------------------------------------------
    def _ip(self, ns, *args):
        return run(["ip", "-n", ns] + list(args))

    def _tc(self, ns, *args):
        return run(["ip", "netns", "exec", ns, "tc"] + list(args))

    def add_host(self, up=None, down=None):
        """A new namespace on the bridge, its uplink and downlink shaped to `up` and `down`
        bytes per second (None: unshaped)."""
        host = Host(self, len(self.hosts) + 1, up, down)
        self.hosts.append(host)
        run(["ip", "netns", "add", host.ns])
        # Both ends are made inside their namespaces: nothing appears in the root namespace,
        # even for a moment.
        self._ip(self.switch, "link", "add", host.port, "type", "veth", "peer", "name", "eth0",
                 "netns", host.ns)
        self._ip(self.switch, "link", "set", host.port, "master", "br0", "up")
        self._ip(host.ns, "addr", "add", host.addr + "/16", "dev", "eth0")
        self._ip(host.ns, "link", "set", "lo", "up")
        self._ip(host.ns, "link", "set", "eth0", "up")
        if up is not None:
            self._shape(host.ns, "eth0", up)
        if down is not None:
            self._shape(self.switch, host.port, down)
        return host

    def _shape(self, ns, dev, rate):
        burst = max(32 * KiB, rate // 100)
        limit = max(64 * KiB, rate * 60 // 1000)
        self._tc(ns, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", "%dbit" % (rate * 8),
                 "burst", str(burst), "limit", str(limit))

    def counters(self):
        """{host name: (bytes the host sent, bytes it received)}, read on the bridge ports."""
        out = run(["ip", "-n", self.switch, "-j", "-s", "link", "show"], deadline=10)
        found = {}
        for link in json.loads(out):
            stats = link.get("stats64") or link.get("stats") or {}
            name = link.get("ifname", "")
            if name.startswith("h") and "rx" in stats:
                found[name] = (stats["rx"]["bytes"], stats["tx"]["bytes"])
        return found

    # -- processes ----------------------------------------------------------------------
    def spawn(self, host, name, argv, **kwargs):
        """Starts `argv` in `host`'s namespace; stopped by PID when the lab closes."""
        proc = Proc(self, host, name, argv, **kwargs)
        self.procs.append(proc)
        return proc

    def run_in(self, host, argv, deadline=30, check=True):
        """Runs a short command in `host`'s namespace; its stdout."""
        return run(["ip", "netns", "exec", host.ns] + list(argv), deadline, check)


# ---------------------------------------------------------------------------------------
# Clients: one kind per class, one instance per host.


def write_hook(path, done_file):
    """A shell script that writes the time it ran (seconds since the epoch) to `done_file`."""
    with open(path, "w") as f:
        f.write("#!/bin/sh\ndate +%%s.%%N > %s.tmp && mv %s.tmp %s\n" % (done_file, done_file,
                                                                          done_file))
    os.chmod(path, 0o755)


class Client:
    """One BitTorrent client in one host: a seeder (its data already complete) or a leecher.
    `completed_at` is the wall-clock time it said it held every byte."""

    kind = "?"

    def __init__(self, lab, host, torrent, name, seeder, opts):
        self.lab = lab
        self.host = host
        self.torrent = torrent
        self.name = name  # the torrent's file name
        self.seeder = seeder
        self.opts = opts
        self.dir = os.path.join(lab.workdir, host.name)
        os.makedirs(self.dir, exist_ok=True)
        self.completed_at = None
        self.client_uploaded = None
        self.proc = None

    def data_path(self):
        return os.path.join(self.dir, self.name)

    def prepare(self):
        """Whatever can be started before the swarm's start (a daemon, an interpreter)."""

    def start(self):
        raise NotImplementedError

    def poll(self):
        """Checks a completion signal that is not a line of output (a hook's file)."""

    def died(self):
        return self.proc is not None and not self.proc.alive()

    def stop(self):
        if self.proc is not None:
            self.proc.stop()

    def describe(self):
        return "%s %s %s" % (self.kind, "seeder" if self.seeder else "leecher", self.host)


class PeerwireClient(Client):
    kind = "peerwire"

    def start(self):
        binary = self.opts["peerwire"]
        common = ["--port", str(PEER_PORT), "--no-dht", "--no-lsd"]
        if not self.opts.get("utp"):
            common += ["--transport", "tcp"]
        common += list(self.opts.get("peerwire_flags") or [])
        if self.seeder:
            argv = [binary, "-v", "seed", self.torrent, self.data_path()] + common
            argv += ["--web", "127.0.0.1:8080"]
        else:
            argv = [binary, "-v", "download", "-o", self.data_path(), self.torrent, "--seed"]
            argv += common
        env = {"PEERWIRE_DHT_ROUTERS": "", "PEERWIRE_LSD": "off"}
        self.proc = self.lab.spawn(self.host, "peerwire", argv, env=env, on_line=self._line)

    def _line(self, line):
        if "download complete" in line and self.completed_at is None:
            self.completed_at = time.time()
        match = re.search(r"done: .*?(\d+) bytes uploaded", line)
        if match:
            self.client_uploaded = int(match.group(1))

    def stop(self):
        # SIGINT: peerwire's Ctrl-C, which ends the session cleanly and prints `done:` with
        # what it uploaded.
        if self.proc is not None:
            self.proc.stop(first=signal.SIGINT)

    def web_state(self):
        """The seeder's /api/state (see docs/cli.md, the web view), or None."""
        code = ("import urllib.request,sys;"
                "sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:8080/api/state',"
                "timeout=3).read().decode())")
        try:
            return json.loads(self.lab.run_in(self.host, [PYTHON, "-c", code], deadline=10))
        except (RuntimeError, ValueError):
            return None


class LibtorrentClient(Client):
    kind = "libtorrent"

    def prepare(self):
        argv = [PYTHON, os.path.join(HERE, "lt_peer.py"),
                "--listen", "%s:%d" % (self.host.addr, PEER_PORT),
                "--torrent", self.torrent, "--save", self.dir]
        if self.seeder:
            argv.append("--seed")
        else:
            argv.append("--wait-for-go")
        if self.opts.get("utp"):
            argv.append("--utp")
        self.ready = threading.Event()
        self.proc = self.lab.spawn(self.host, "libtorrent", argv, stdin=True, on_line=self._line)
        if not self.ready.wait(30):
            raise RuntimeError("libtorrent in %s did not start:\n%s" % (self.host,
                                                                       self.proc.tail()))

    def start(self):
        if not self.seeder:
            self.proc.send("go")

    def _line(self, line):
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if event.get("event") == "ready":
            self.ready.set()
        elif event.get("event") == "finished" and self.completed_at is None:
            self.completed_at = event.get("at") or time.time()
        elif event.get("event") == "stats":
            self.client_uploaded = event.get("uploaded")
            self.per_peer = event.get("per_peer")


class TransmissionClient(Client):
    kind = "transmission"
    RPC_PORT = "9091"

    def prepare(self):
        for program in ("transmission-daemon", "transmission-remote"):
            if shutil.which(program) is None:
                raise CannotRun("`%s` is not installed" % program)
        config = os.path.join(self.dir, "transmission-config")
        os.makedirs(config, exist_ok=True)
        self.done_file = os.path.join(self.dir, "done-at")
        hook = os.path.join(self.dir, "on-done.sh")
        write_hook(hook, self.done_file)
        settings = {
            "dht-enabled": False, "lpd-enabled": False, "pex-enabled": True,
            "utp-enabled": bool(self.opts.get("utp")), "port-forwarding-enabled": False,
            "peer-port": PEER_PORT, "peer-port-random-on-start": False,
            "rpc-bind-address": "127.0.0.1", "rpc-port": int(self.RPC_PORT),
            "rpc-authentication-required": False, "rpc-whitelist-enabled": False,
            "rpc-host-whitelist-enabled": False,
            "script-torrent-done-enabled": not self.seeder,
            "script-torrent-done-filename": hook,
            "speed-limit-up-enabled": False, "speed-limit-down-enabled": False,
            "alt-speed-enabled": False, "ratio-limit-enabled": False,
            "idle-seeding-limit-enabled": False, "download-dir": self.dir,
            "incomplete-dir-enabled": False, "start-added-torrents": True,
            "encryption": 1, "message-level": 1, "cache-size-mb": 16,
        }
        with open(os.path.join(config, "settings.json"), "w") as f:
            json.dump(settings, f, indent=1)
        argv = ["transmission-daemon", "-f", "-g", config]
        self.proc = self.lab.spawn(self.host, "transmission", argv)
        until = time.monotonic() + 30
        while self.lab.run_in(self.host, ["transmission-remote", self.RPC_PORT, "-l"],
                              check=False, deadline=10) == "":
            if time.monotonic() > until or not self.proc.alive():
                raise RuntimeError("transmission-daemon in %s did not answer RPC:\n%s"
                                   % (self.host, self.proc.tail()))
            time.sleep(0.2)  # poll interval while waiting for the daemon's RPC port

    def start(self):
        self.lab.run_in(self.host, ["transmission-remote", self.RPC_PORT, "-a", self.torrent,
                                    "-w", self.dir])

    def poll(self):
        if self.completed_at is None and os.path.exists(self.done_file):
            with open(self.done_file) as f:
                self.completed_at = float(f.read().strip() or time.time())

    def stop(self):
        info = self.lab.run_in(self.host, ["transmission-remote", self.RPC_PORT, "-t", "1",
                                           "-i"], check=False, deadline=10)
        match = re.search(r"Uploaded:\s*([\d.]+)\s*(kB|MB|GB|B|None)", info)
        if match:
            scale = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "None": 0}[match.group(2)]
            self.client_uploaded = int(float(match.group(1)) * scale)
        super().stop()


class Aria2Client(Client):
    kind = "aria2"

    def prepare(self):
        if shutil.which("aria2c") is None:
            raise CannotRun("`aria2c` is not installed")
        self.done_file = os.path.join(self.dir, "done-at")

    def start(self):
        hook = os.path.join(self.dir, "on-done.sh")
        write_hook(hook, self.done_file)
        argv = ["aria2c", "--no-conf", "--disable-ipv6", "--enable-dht=false",
                "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=true",
                "--listen-port=%d" % PEER_PORT, "--stop-with-process=%d" % os.getpid(),
                "--file-allocation=none", "--summary-interval=0", "--console-log-level=warn",
                "--log=%s" % os.path.join(self.dir, "aria2c.log"), "--log-level=notice",
                "--dir=%s" % self.dir, "--seed-ratio=0.0"]
        if self.seeder:
            argv += ["--bt-seed-unverified=true"]
        else:
            argv += ["--on-bt-download-complete=%s" % hook]
        argv.append(self.torrent)
        self.proc = self.lab.spawn(self.host, "aria2", argv)

    def poll(self):
        if self.completed_at is None and os.path.exists(self.done_file):
            with open(self.done_file) as f:
                self.completed_at = float(f.read().strip() or time.time())


CLIENTS = {"peerwire": PeerwireClient, "libtorrent": LibtorrentClient,
           "transmission": TransmissionClient, "aria2": Aria2Client}


# ---------------------------------------------------------------------------------------
# One swarm.


class SwarmConfig:
    """What `run_swarm` builds: one seeder of kind `seeder`, the leechers `leechers` (a list of
    kinds, one per leecher), a file of `size` random bytes in pieces of `piece_length`, the
    links' rates in bytes per second (None: unshaped)."""

    def __init__(self, seeder="peerwire", leechers=("peerwire",) * 3, size=4 * MiB,
                 piece_length=256 * KiB, seeder_up=2 * MiB, seeder_down=8 * MiB,
                 leecher_up=1 * MiB, leecher_down=8 * MiB, deadline=120.0, peerwire=None,
                 peerwire_flags=(), utp=False, tracker_interval=30, workdir=None):
        self.seeder = seeder
        self.leechers = list(leechers)
        self.size = size
        self.piece_length = piece_length
        self.seeder_up, self.seeder_down = seeder_up, seeder_down
        self.leecher_up, self.leecher_down = leecher_up, leecher_down
        self.deadline = deadline
        self.peerwire = peerwire or os.path.join(REPO, "target", "release", "peerwire")
        self.peerwire_flags = list(peerwire_flags)
        self.utp = utp
        self.tracker_interval = tracker_interval
        self.workdir = workdir

    def bound(self):
        """The lower bound on the last leecher's time (seconds): the seeder must send every
        byte once, and every leecher must receive every byte through the swarm's total
        upload. None when an uplink is unshaped."""
        if self.seeder_up is None or self.leecher_up is None:
            return None
        n = len(self.leechers)
        return max(self.size / self.seeder_up,
                   n * self.size / (self.seeder_up + n * self.leecher_up))


def make_content(path, size):
    """`size` random bytes in `path`; their SHA-1."""
    digest = hashlib.sha1()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * MiB))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def sha1_of(path):
    digest = hashlib.sha1()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(4 * MiB), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def scrape(lab, tracker_host, info_hash):
    """(complete, incomplete) from the tracker's scrape, or None."""
    quoted = "".join("%%%02x" % b for b in bytes.fromhex(info_hash))
    url = "http://%s:%d/scrape?info_hash=%s" % (tracker_host.addr, TRACKER_PORT, quoted)
    code = ("import urllib.request,sys;"
            "sys.stdout.buffer.write(urllib.request.urlopen(%r,timeout=3).read())" % url)
    out = lab.run_in(tracker_host, [PYTHON, "-c", code], deadline=10, check=False)
    complete = re.search(r"8:completei(\d+)e", out)
    incomplete = re.search(r"10:incompletei(\d+)e", out)
    if not complete:
        return None
    return int(complete.group(1)), int(incomplete.group(1)) if incomplete else 0


def run_swarm(config, lab_factory=Lab):
    """Builds the lab for `config`, runs the swarm until every leecher holds every byte (or
    the deadline), checks the bytes, and returns the result:

    {"ok", "failures": [why...], "size", "piece_length", "bound_s", "T_s" (the last leecher's
     time, None if one is missing), "missing": [host...],
     "seeder": {"kind", "host", "addr", "up", "down", "sent" (bytes on its link),
                "client_uploaded" (its own figure, or None)},
     "leechers": [{... the same, and "done_s" (from the swarm's start), "sha1_ok",
                   "upload_busy" (fraction of its time before completion that its uplink ran
                   at half its rate or more)}],
     "seeder_choker": the peerwire seeder's last choke round and bytes per peer, if peerwire,
     "workdir"}
    """
    result = {"ok": False, "failures": [], "size": config.size,
              "piece_length": config.piece_length, "bound_s": config.bound(), "T_s": None,
              "missing": [], "seeder": None, "leechers": [], "seeder_choker": None}
    check_can_run()
    for kind in [config.seeder] + config.leechers:
        if kind not in CLIENTS:
            raise ValueError("unknown client %r (want one of %s)" % (kind, ", ".join(KINDS)))
    if "peerwire" in [config.seeder] + config.leechers and not os.path.exists(config.peerwire):
        raise CannotRun("no peerwire binary at %s (cargo build --release)" % config.peerwire)
    with lab_factory(workdir=config.workdir) as lab:
        result["workdir"] = lab.workdir
        tracker_host = lab.add_host()
        seeder_host = lab.add_host(config.seeder_up, config.seeder_down)
        leecher_hosts = [lab.add_host(config.leecher_up, config.leecher_down)
                         for _ in config.leechers]
        log("%d hosts in %s.0.0/16, work directory %s" % (len(lab.hosts), SUBNET, lab.workdir))

        # The content and its torrent, announced to the tracker in host 1.
        name = "lab-%dMiB.bin" % (config.size // MiB) if config.size % MiB == 0 else "lab.bin"
        source_dir = os.path.join(lab.workdir, seeder_host.name)
        os.makedirs(source_dir, exist_ok=True)
        source = os.path.join(source_dir, name)
        source_sha1 = make_content(source, config.size)
        torrent = os.path.join(lab.workdir, "lab.torrent")
        announce = "http://%s:%d/announce" % (tracker_host.addr, TRACKER_PORT)
        run([config.peerwire, "-q", "create", "-t", announce, "--piece-length",
             str(config.piece_length), "-o", torrent, source], deadline=300)
        info = run([config.peerwire, "info", torrent])
        info_hash = re.search(r"Info Hash: ([0-9a-f]{40})", info).group(1)

        lab.spawn(tracker_host, "tracker",
                  [config.peerwire, "tracker", "--bind", "0.0.0.0", "--port", str(TRACKER_PORT),
                   "--udp-port", str(TRACKER_PORT), "--interval", str(config.tracker_interval)])
        opts = {"peerwire": config.peerwire, "peerwire_flags": config.peerwire_flags,
                "utp": config.utp}
        seeder = CLIENTS[config.seeder](lab, seeder_host, torrent, name, True, opts)
        leechers = [CLIENTS[kind](lab, host, torrent, name, False, opts)
                    for kind, host in zip(config.leechers, leecher_hosts)]

        # The seeder first, until the tracker counts it as complete: every leecher then
        # finds it in its first tracker answer.
        seeder.prepare()
        seeder.start()
        until = time.monotonic() + 60
        while True:
            counts = scrape(lab, tracker_host, info_hash)
            if counts and counts[0] >= 1:
                break
            if time.monotonic() > until or seeder.died():
                raise RuntimeError("the seeder never announced itself complete:\n%s"
                                   % (seeder.proc.tail() if seeder.proc else ""))
            time.sleep(0.2)  # poll interval while waiting for the seeder's announce
        for leecher in leechers:
            leecher.prepare()

        # The swarm starts: every leecher at once.
        start = time.time()
        for leecher in leechers:
            leecher.start()
        log("swarm started: %s seeder, leechers %s" % (config.seeder, ",".join(config.leechers)))
        samples = []
        choker_log = open(os.path.join(lab.workdir, "seeder-state.jsonl"), "w")
        next_state = time.monotonic()
        end_by = time.monotonic() + config.deadline
        while True:
            samples.append((time.time(), lab.counters()))
            for leecher in leechers:
                leecher.poll()
            waiting = [leecher for leecher in leechers if leecher.completed_at is None]
            dead = [client for client in [seeder] + leechers if client.died()]
            if not waiting or dead or time.monotonic() > end_by:
                break
            if isinstance(seeder, PeerwireClient) and time.monotonic() >= next_state:
                next_state += 2.0
                state = seeder.web_state()
                if state is not None:
                    choker_log.write(json.dumps(state) + "\n")
            time.sleep(0.5)  # the sampling interval of the links' counters
        if isinstance(seeder, PeerwireClient):
            state = seeder.web_state()
            if state is not None:
                choker_log.write(json.dumps(state) + "\n")
                member = (state.get("members") or [{}])[0]
                result["seeder_choker"] = {
                    "choker": member.get("choker"),
                    "traffic": member.get("traffic"),
                }
        choker_log.close()
        for client in dead:
            result["failures"].append("%s exited early (status %s):\n%s"
                                      % (client.describe(), client.proc.popen.returncode,
                                         client.proc.tail()))
        final = lab.counters()
        for client in [seeder] + leechers:
            client.stop()

        def entry(client):
            sent, received = final.get(client.host.port, (0, 0))
            return {"kind": client.kind, "host": client.host.name, "addr": client.host.addr,
                    "up": client.host.up, "down": client.host.down, "sent": sent,
                    "received": received, "client_uploaded": client.client_uploaded}

        result["seeder"] = entry(seeder)
        # Five-second steps, or one-second ones for a swarm that lasts under half a minute.
        step = 5.0 if samples and samples[-1][0] - start > 30 else 1.0
        result["timeline"] = timeline(samples, start, seeder, leechers, step)
        for leecher in leechers:
            item = entry(leecher)
            item["done_s"] = None if leecher.completed_at is None else leecher.completed_at - start
            digest = sha1_of(leecher.data_path())
            item["sha1_ok"] = digest == source_sha1
            item["upload_busy"] = upload_busy(samples, leecher)
            if leecher.completed_at is None:
                result["missing"].append("%s (%s)" % (leecher.host.name, leecher.kind))
            elif not item["sha1_ok"]:
                result["failures"].append("%s said it was complete but its file's SHA-1 is %s, "
                                          "not %s" % (leecher.describe(), digest, source_sha1))
            result["leechers"].append(item)
        if result["missing"]:
            result["failures"].append("not complete within %.0fs: %s"
                                      % (config.deadline, ", ".join(result["missing"])))
        else:
            result["T_s"] = max(item["done_s"] for item in result["leechers"])
        result["ok"] = not result["failures"]
    return result


def timeline(samples, start, seeder, leechers, step=5.0):
    """The swarm's upload, `step` seconds at a time: [{"from", "to", "leechers_up",
    "seeder_up" (bytes per second, headers included), "complete" (leechers done by "to")}].
    Where a swarm loses time shows here: its start, while leechers have little to trade, and
    its end, while the last ones wait for their last pieces."""
    times = [t for t, _ in samples]
    rows = []
    at = start
    while len(samples) >= 2 and at < times[-1]:
        a = bisect.bisect_left(times, at)
        b = min(bisect.bisect_left(times, at + step), len(times) - 1)
        if b <= a:
            break
        seconds = times[b] - times[a]

        def sent(client):
            port = client.host.port
            before, after = samples[a][1].get(port), samples[b][1].get(port)
            return 0 if before is None or after is None else after[0] - before[0]

        rows.append({"from": at - start, "to": at - start + step,
                     "leechers_up": sum(sent(c) for c in leechers) / seconds,
                     "seeder_up": sent(seeder) / seconds,
                     "complete": sum(1 for c in leechers
                                     if c.completed_at is not None and c.completed_at <= times[b])})
        at += step
    return rows


def upload_busy(samples, client):
    """The fraction of the 0.5 s samples, from the start to the client's completion, in which
    its uplink carried at least half its rate: how much of its upload it used while it was
    still downloading."""
    if client.host.up is None or len(samples) < 2:
        return None
    end = client.completed_at or samples[-1][0]
    busy = total = 0
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if t1 > end or t1 <= t0:
            break
        sent = c1.get(client.host.port, (0, 0))[0] - c0.get(client.host.port, (0, 0))[0]
        total += 1
        busy += sent / (t1 - t0) >= client.host.up / 2
    return None if total == 0 else busy / total


def summary(result):
    """A few lines for a person, from `run_swarm`'s result."""
    lines = []
    size = result["size"]
    seeder = result["seeder"] or {}
    lines.append("seeder %s (%s): sent %.1f MiB on its link (%.2f x the file), client says %s"
                 % (seeder.get("kind"), seeder.get("host"), seeder.get("sent", 0) / MiB,
                    seeder.get("sent", 0) / size,
                    "?" if seeder.get("client_uploaded") is None
                    else "%.1f MiB" % (seeder["client_uploaded"] / MiB)))
    for item in result["leechers"]:
        done = "missing" if item["done_s"] is None else "%.1f s" % item["done_s"]
        busy = "?" if item["upload_busy"] is None else "%.0f%%" % (100 * item["upload_busy"])
        lines.append("  %-4s %-12s done %-8s sha1 %s  sent %.1f MiB  uplink busy %s"
                     % (item["host"], item["kind"], done, "ok" if item["sha1_ok"] else "BAD",
                        item["sent"] / MiB, busy))
    if result.get("timeline"):
        step = result["timeline"][0]["to"] - result["timeline"][0]["from"]
        lines.append("the swarm's upload, %.0f s at a time (MiB/s on the links):" % step)
        for row in result["timeline"]:
            lines.append("  %3.0f-%3.0f s  leechers %5.1f  seeder %4.2f  complete %d"
                         % (row["from"], row["to"], row["leechers_up"] / MiB,
                            row["seeder_up"] / MiB, row["complete"]))
    if result["T_s"] is not None:
        bound = result["bound_s"]
        lines.append("T = %.1f s%s" % (result["T_s"], "" if bound is None else
                                       ", bound %.1f s, T / bound = %.2f"
                                       % (bound, result["T_s"] / bound)))
    for failure in result["failures"]:
        lines.append("FAILED: " + failure)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Checking the shaping.


RECEIVER = r"""
import socket, sys, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(1)
print("listening", flush=True)
conn, _ = server.accept()
total, first = 0, None
while True:
    data = conn.recv(1 << 16)
    if not data:
        break
    if first is None:
        first = time.monotonic()
    total += len(data)
print(total, time.monotonic() - first, flush=True)
"""

SENDER = r"""
import socket, sys, time
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
block = b"x" * (1 << 16)
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    conn.sendall(block)
conn.close()
"""


def measure(lab, sender, receiver, seconds=6.0, port=5001):
    """One TCP transfer for `seconds` from `sender` to `receiver`: payload bytes per second."""
    listening = threading.Event()
    answer = []

    def on_line(line):
        if line == "listening":
            listening.set()
        elif line.strip():
            answer.append(line.split())

    rx = lab.spawn(receiver, "receiver", [PYTHON, "-c", RECEIVER, str(port)], on_line=on_line)
    if not listening.wait(10):
        raise RuntimeError("the receiver did not start:\n" + rx.tail())
    lab.run_in(sender, [PYTHON, "-c", SENDER, receiver.addr, str(port), str(seconds)],
               deadline=seconds + 30)
    rx.popen.wait(timeout=30)
    rx.reader.join(timeout=5)
    total, elapsed = answer[-1]
    return int(total) / float(elapsed)


def shaping_check():
    """Measures both directions between two shaped hosts; True when each is within 10% below
    (and not above) the configured rate, counting the headers."""
    ok = True
    with Lab() as lab:
        a = lab.add_host(up=1 * MiB, down=2 * MiB)
        b = lab.add_host(up=8 * MiB, down=8 * MiB)
        for sender, receiver in ((a, b), (b, a)):
            configured = min(sender.up, receiver.down)
            achieved = measure(lab, sender, receiver)
            ratio = achieved / configured
            verdict = "ok" if 0.88 <= ratio <= 1.02 else "OFF"
            ok &= verdict == "ok"
            print("%s -> %s: configured %s (%s up, %s down), achieved %.0f KiB/s of TCP payload"
                  " (%.1f%% of the configured rate) %s"
                  % (sender.name, receiver.name, show_rate(configured), show_rate(sender.up),
                     show_rate(receiver.down), achieved / KiB, 100 * ratio, verdict), flush=True)
    return ok


# ---------------------------------------------------------------------------------------
# The command line.


def parse_leechers(text):
    """`peerwire:3,libtorrent:3` -> [kinds...]."""
    kinds = []
    for part in text.split(","):
        kind, _, count = part.strip().partition(":")
        if kind not in CLIENTS:
            raise argparse.ArgumentTypeError("unknown client %r (want one of %s)"
                                             % (kind, ", ".join(KINDS)))
        kinds += [kind] * int(count or 1)
    return kinds


def add_swarm_arguments(parser):
    """The options of one swarm, shared by `lab.py swarm` and the benchmark."""
    parser.add_argument("--seeder", choices=KINDS, default="peerwire")
    parser.add_argument("--leechers", type=parse_leechers, default=parse_leechers("peerwire:3"),
                        help="KIND:COUNT,... (kinds: %s)" % ", ".join(KINDS))
    parser.add_argument("--size-mib", type=float, default=4)
    parser.add_argument("--piece-kib", type=int, default=256)
    parser.add_argument("--seeder-up", type=parse_rate, default=parse_rate("2MiB"))
    parser.add_argument("--seeder-down", type=parse_rate, default=parse_rate("8MiB"))
    parser.add_argument("--leecher-up", type=parse_rate, default=parse_rate("1MiB"))
    parser.add_argument("--leecher-down", type=parse_rate, default=parse_rate("8MiB"))
    parser.add_argument("--deadline", type=float, default=120, help="seconds for the swarm")
    parser.add_argument("--peerwire", default=os.path.join(REPO, "target", "release",
                                                           "peerwire"))
    parser.add_argument("--peerwire-flag", action="append", default=[], metavar="FLAG",
                        help="one more argument for every peerwire (repeatable; "
                             "--peerwire-flag=--upload-slots --peerwire-flag=8)")
    parser.add_argument("--utp", action="store_true", help="allow uTP as well as TCP")
    parser.add_argument("--tracker-interval", type=int, default=30)
    parser.add_argument("--workdir", help="keep the files here (default: a temporary "
                                          "directory, removed)")


def config_from(args, leechers=None, seeder=None):
    return SwarmConfig(seeder=seeder or args.seeder, leechers=leechers or args.leechers,
                       size=int(args.size_mib * MiB), piece_length=args.piece_kib * KiB,
                       seeder_up=args.seeder_up, seeder_down=args.seeder_down,
                       leecher_up=args.leecher_up, leecher_down=args.leecher_down,
                       deadline=args.deadline, peerwire=os.path.abspath(args.peerwire),
                       peerwire_flags=args.peerwire_flag, utp=args.utp,
                       tracker_interval=args.tracker_interval, workdir=args.workdir)


def main():
    parser = argparse.ArgumentParser(description="peerwire's network lab (see the docstring)")
    commands = parser.add_subparsers(dest="command", required=True)
    swarm = commands.add_parser("swarm", help="run one swarm and time it")
    add_swarm_arguments(swarm)
    swarm.add_argument("--json", action="store_true", help="the result as JSON on stdout")
    commands.add_parser("shaping-check", help="measure the shaped links")
    commands.add_parser("clean", help="remove the namespaces of labs that are gone")
    reap = commands.add_parser("reap", help="(internal) the reaper")
    reap.add_argument("--prefix", required=True)
    reap.add_argument("--remove", help="a directory to delete too")
    args = parser.parse_args()
    if args.command == "reap":
        reaper_main(args.prefix, args.remove)
        return 0
    try:
        if args.command == "clean":
            check_can_run()
            print("removed %d namespaces" % remove_stale())
            return 0
        if args.command == "shaping-check":
            return 0 if shaping_check() else 1
        result = run_swarm(config_from(args))
        log("\n" + summary(result))
        if args.json:
            print(json.dumps(result), flush=True)
        return 0 if result["ok"] else 1
    except CannotRun as why:
        print("*** lab.py cannot run here: %s ***" % why, file=sys.stderr, flush=True)
        return EXIT_CANNOT_RUN
    except RuntimeError as why:
        # A step of the set-up failed (a client that never started): the swarm failed.
        log("FAILED: %s" % why)
        if args.command == "swarm" and args.json:
            print(json.dumps({"ok": False, "failures": [str(why)]}), flush=True)
        return 1
    except Interrupted as interrupted:
        log(str(interrupted))
        return 128 + interrupted.signum


if __name__ == "__main__":
    sys.exit(main())
