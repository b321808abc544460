"""A small network of libtorrent DHT nodes (BEP 5, DHT Protocol) on loopback, for peerwire's tests.

    /usr/bin/python3 tests/peers/libtorrent_dht.py --count N --first-ip 127.0.0.X --port P
        [--max-seconds S] [--direct-timeout S]

One process runs N libtorrent sessions ("nodes"). Node i listens on 127.0.0.(X+i):P, TCP for
peers and UDP for the DHT. Every node has its own address because libtorrent keeps at most one
routing-table entry per IP. Settings, so that a DHT works on 127.0.0.0/8 with nothing else:
  - DHT on; dht_restrict_routing_ips, dht_restrict_search_ips, dht_enforce_node_id and
    dht_prefer_verified_node_ids off (they reject or distrust loopback nodes and node ids not
    derived from the address, BEP 42 DHT Security extension);
  - dht_bootstrap_nodes empty: libtorrent's default router (dht.libtorrent.org) would be looked
    up in DNS, and nodes given as routers never enter a routing table anyway. Tables are filled
    with `add_node` / `mesh` (session.add_dht_node), which really inserts the node;
  - LSD, UPnP, NAT-PMP and uTP off; no trackers on any torrent; several connections per IP
    allowed (outgoing TCP connections may come from 127.0.0.1 whatever the node's address).

The process ends by itself after --max-seconds (default 300), on `quit`, or at the end of its
input; every session is torn down first.

Events, one per line on stdout, flushed:
    ready <i> <ip:port> <node id hex>   node i listens and its DHT runs (one per node, at start)
    all_ready <n>                       every node printed `ready`
    meshed <min table size>             (after `mesh`) every node's routing table holds at least
                                        as many nodes as it was given
    table <i> <n>                       (answer to `table`) routing-table size of node i
    live <i> <ip:port> ...              (answer to `live`) the nodes in node i's table
    seeding <i> <infohash>              node i seeds the torrent; its DHT announce is started
    announced <j> <infohash> <ip:port>  node j stored a peer for infohash (an announce_peer
                                        query reached it), ip:port being the announced peer
    progress <i> <infohash> <fraction>  (about once a second while downloading)
    metadata <i> <infohash>             node i got the info dictionary from a peer (BEP 9)
    finished <i> <infohash>             node i has the whole torrent
    peers <i> <infohash> <ip:port> ...  (answer to `get_peers`, when the lookup ends) every
                                        peer node i's own lookup found, maybe none
    asked <i> <infohash> <ip:port> ...  right after `peers`: where node i's lookup sent its
                                        get_peers queries, in order
    lookup <i> <infohash> queries <n> first_peer_ms <t|-> done_ms <t> counters <k>=<v> ...
                                        right after `asked`: n get_peers queries node i sent
                                        for this hash (one dht_outgoing_get_peers_alert each),
                                        ms from the command to the first reply carrying
                                        peers ("values") and to the end of the lookup, and
                                        the change of node i's DHT counters over the lookup
                                        (session stats; they include background traffic)
    pkt <i> out|in <ip:port> <message>  (after `watch`) a DHT packet node i sent to, or received
                                        from, a watched address, rendered as below
    direct_reply <i> <ip:port> <message>
    direct_timeout <i> <ip:port> <query name>
    direct_garbage <i> <ip:port> <hex of the datagram>
    error <what>                        a command failed (bad arguments, unknown node)
    alert_error <i> <message>           libtorrent reported an error (listen failure, ...)
    bye                                 every session is torn down; the process exits

A KRPC message is rendered on one line as space-separated `path=value` pairs, sorted by path:
dictionary keys joined by dots, byte strings as hex (empty: nothing after `=`) except the
values of `y` and `q`, which are shown as text, integers as `i<decimal>`, lists as their
elements joined by commas. E.g. libtorrent's reply to a get_peers:
    ip=7f00000c5dc1 r.id=72f3... r.p=i24001 r.token=8db8a271 r.values=7f00000b5dc1 t=0a1b v=4c540208 y=r

Commands, one per line on stdin (<i> is a node index from 0):
    add_node <i|all> <ip:port>          session.add_dht_node: libtorrent pings that node (with a
                                        get_peers query) and puts it in the table if it answers
    mesh [k [m]]                        each of the first m nodes (default: all) is given the
                                        k nodes after it among them (in index order, wrapping
                                        round), or all the others without k; prints `meshed`
                                        when those tables hold at least k nodes
    table <i>                           routing-table size
    live <i>                            routing-table contents
    seed <i> <torrent file> <save dir>  seed (data in save dir taken as complete, seed mode)
    magnet <i> <magnet uri> <save dir>  download a trackerless magnet; peers come from the DHT
    announce <i> <infohash>             the torrent of node i announces to the DHT again now
    get_peers <i> <infohash>            node i runs its own lookup (session.dht_get_peers)
    watch <i> <ip:port>                 print every DHT packet between node i and that address
    direct <i> <ip:port> <query>        send one KRPC query to that address and print the reply.
                                        <query> is `ping`, `find_node <hex target>`,
                                        `get_peers <hex infohash>`, or a python dict literal of
                                        the whole message (b'' strings; `t` and `a.id` filled
                                        in when missing). See "direct" below.
    quit

direct: libtorrent 2.0.8's python binding has no session.dht_direct_request, so this command
builds the query with node i's node id and libtorrent's bencoder, sends it from a UDP socket of
this process bound to node i's address (another port than node i's own), and decodes the reply
with libtorrent's bdecode. The query is what a libtorrent node would send, but not sent by
libtorrent's DHT code. To see libtorrent's own queries and a remote node's answers, `watch`
that node and `add_node` it (libtorrent then sends get_peers to it) or run `get_peers` on a node
whose table holds it.
"""
import argparse
import ast
import os
import re
import select
import socket
import sys
import threading
import time
import warnings

import libtorrent as lt

# libtorrent 2.0 marks several calls used here (info_hash(), dht_state()) deprecated; the
# warnings would only clutter the test output on stderr.
warnings.simplefilter("ignore", DeprecationWarning)

SAY_LOCK = threading.Lock()


def say(*words):
    with SAY_LOCK:
        try:
            print(*words, flush=True)
        except BrokenPipeError:
            pass  # the reader is gone (the test ended): nobody is left to tell


def endpoint(ep):
    return "%s:%d" % (ep[0], ep[1])


def parse_endpoint(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def compact_ipv4(data):
    """A 6-byte compact peer (BEP 5) as ip:port, or None."""
    if len(data) != 6:
        return None
    return "%d.%d.%d.%d:%d" % (data[0], data[1], data[2], data[3], data[4] << 8 | data[5])


def render(value, path="", out=None):
    """A decoded KRPC message as sorted `path=value` words (see the module doc)."""
    if out is None:
        out = []
    if isinstance(value, dict):
        for key in sorted(value):
            name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
            render(value[key], path + "." + name if path else name, out)
        return out
    if path in TEXT_PATHS and isinstance(value, bytes) and WORD.fullmatch(value):
        out.append("%s=%s" % (path, value.decode("ascii")))
    else:
        out.append("%s=%s" % (path, render_scalar(value)))
    return out


# The message type and query name are protocol words, shown as text; every other byte string is
# shown as hex, whatever it holds.
TEXT_PATHS = ("y", "q")
WORD = re.compile(rb"[A-Za-z0-9_]+")


def render_scalar(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, int):
        return "i%d" % value
    if isinstance(value, list):
        return ",".join(render_scalar(v) for v in value)
    if isinstance(value, dict):
        return "{" + " ".join(render(value)) + "}"
    return str(value).replace(" ", "_")


def settings_for(ip, port):
    return {
        "listen_interfaces": "%s:%d" % (ip, port),
        "enable_dht": True,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": BASE_ALERTS,
        # A node that logs DHT packets posts thousands of alerts a second in a busy network;
        # past the queue's size libtorrent drops alerts, a lookup's end among them.
        "alert_queue_size": 200000,
    }


C = lt.alert.category_t
BASE_ALERTS = (C.error_notification | C.status_notification | C.storage_notification
               | C.dht_notification | C.dht_operation_notification)
# dht_pkt_alert (every DHT datagram) is in the DHT log category, which also brings a flood of
# dht_log_alert: turned on only for a node that watches an address or times a lookup.
PACKET_ALERTS = BASE_ALERTS | C.dht_log_notification

ERROR_ALERTS = (lt.listen_failed_alert, lt.torrent_error_alert, lt.file_error_alert,
                lt.udp_error_alert)
COUNTERS = ["dht.dht_get_peers_out", "dht.dht_find_node_out", "dht.dht_ping_out",
            "dht.dht_announce_peer_out", "dht.dht_messages_out", "dht.dht_messages_in"]


class Lookup:
    def __init__(self, info_hash):
        self.info_hash = info_hash
        self.started = time.monotonic()
        self.queries = 0
        self.first_peer = None
        self.asked = []  # ip:port of every get_peers query, in order
        self.peers = []  # ip:port of every peer found, in order
        self.traversal = None  # libtorrent's number for the lookup, from its log
        self.counters_before = None


class Node:
    def __init__(self, index, ip, port):
        self.index = index
        self.ip = ip
        self.port = port
        self.session = lt.session(settings_for(ip, port), lt.session_flags_t.add_default_plugins)
        self.node_id = None
        self.ready = False
        self.torrents = {}  # hex info hash -> (handle, "seed" | "leech")
        self.lookups = {}  # hex info hash -> Lookup
        self.watched = set()  # "ip:port"
        self.stats_waiters = []  # callbacks for the next session_stats_alert, in order
        self.given = 0  # nodes given by `mesh`
        self.last_progress = 0.0

    def name(self):
        return "%s:%d" % (self.ip, self.port)

    def packets(self, on):
        self.session.apply_settings({"alert_mask": PACKET_ALERTS if on else BASE_ALERTS})

    def want_packets(self):
        return bool(self.watched) or bool(self.lookups)

    def read_node_id(self):
        with warnings.catch_warnings():
            # dht_state() is deprecated in 2.0 but is the binding's one way to read the id.
            warnings.simplefilter("ignore")
            state = self.session.dht_state()
        ids = state.get(b"node-id") or []
        if ids:
            self.node_id = ids[0][:20]

    def with_stats(self, callback):
        self.stats_waiters.append(callback)
        self.session.post_session_stats()


class Network:
    def __init__(self, args):
        self.args = args
        first = [int(x) for x in args.first_ip.split(".")]
        self.nodes = []
        for i in range(args.count):
            ip = "%d.%d.%d.%d" % (first[0], first[1], first[2], first[3] + i)
            self.nodes.append(Node(i, ip, args.port))
        self.mesh_pending = False
        self.all_ready = False
        self.mesh_polled = 0.0

    # -- alerts ---------------------------------------------------------------------------

    def poll(self):
        now = time.monotonic()
        for node in self.nodes:
            for alert in node.session.pop_alerts():
                self.on_alert(node, alert)
            if not node.ready:
                node.read_node_id()
                if node.node_id is not None and node.session.is_dht_running():
                    node.ready = True
                    say("ready", node.index, node.name(), node.node_id.hex())
            if now - node.last_progress > 1.0:
                node.last_progress = now
                for hex_hash, (handle, role) in node.torrents.items():
                    status = handle.status()
                    if role == "leech" and not status.is_seeding:
                        say("progress", node.index, hex_hash, "%.4f" % status.progress)
        if not self.all_ready and all(n.ready for n in self.nodes):
            self.all_ready = True
            say("all_ready", len(self.nodes))
        if self.mesh_pending and now - self.mesh_polled > 0.1:
            self.mesh_polled = now
            self.check_mesh()

    def on_alert(self, node, alert):
        if isinstance(alert, lt.session_stats_alert):
            if node.stats_waiters:
                node.stats_waiters.pop(0)(alert.values)
        elif isinstance(alert, lt.dht_pkt_alert):
            self.on_packet(node, alert)
        elif isinstance(alert, lt.dht_outgoing_get_peers_alert):
            lookup = node.lookups.get(str(alert.info_hash))
            if lookup is not None:
                lookup.queries += 1
                lookup.asked.append(endpoint(alert.endpoint))
        elif isinstance(alert, lt.dht_get_peers_reply_alert):
            # Posted for each reply that carries peers ("values"), not once at the end: a
            # lookup that finds nobody posts none.
            lookup = node.lookups.get(str(alert.info_hash))
            if lookup is not None:
                for peer in alert.peers():
                    if endpoint(peer) not in lookup.peers:
                        lookup.peers.append(endpoint(peer))
        elif isinstance(alert, lt.dht_log_alert):
            self.on_dht_log(node, alert.message())
        elif isinstance(alert, lt.dht_announce_alert):
            say("announced", node.index, str(alert.info_hash), "%s:%d" % (alert.ip, alert.port))
        elif isinstance(alert, lt.metadata_received_alert):
            say("metadata", node.index, str(alert.handle.info_hash()))
        elif isinstance(alert, lt.torrent_finished_alert):
            hex_hash = str(alert.handle.info_hash())
            role = node.torrents.get(hex_hash, (None, None))[1]
            if role == "leech":
                say("finished", node.index, hex_hash)
        elif isinstance(alert, lt.state_changed_alert):
            hex_hash = str(alert.handle.info_hash())
            entry = node.torrents.get(hex_hash)
            if entry and entry[1] == "seed" and alert.state == lt.torrent_status.seeding:
                # Announced now, not at libtorrent's own pace (a torrent's first DHT announce
                # may wait for its turn in the session's announce rotation).
                entry[0].force_dht_announce()
                say("seeding", node.index, hex_hash)
        elif isinstance(alert, lt.alerts_dropped_alert):
            say("alert_error", node.index, "libtorrent dropped alerts: its queue was full")
        elif isinstance(alert, ERROR_ALERTS):
            say("alert_error", node.index, alert.message().replace("\n", " "))

    def on_packet(self, node, alert):
        # The message reads "==> [ip:port] {...}" (sent) or "<== [ip:port] {...}" (received).
        text = alert.message()
        direction = "out" if text.startswith("==>") else "in"
        start, end = text.find("["), text.find("]")
        if start < 0 or end < start:
            return
        peer = text[start + 1:end]
        message = lt.bdecode(alert.pkt_buf)
        if peer in node.watched:
            words = render(message) if isinstance(message, dict) else ["garbage=" + alert.pkt_buf.hex()]
            say("pkt", node.index, direction, peer, *words)
        if direction == "in" and isinstance(message, dict) and node.lookups:
            reply = message.get(b"r")
            if isinstance(reply, dict) and reply.get(b"values"):
                for lookup in node.lookups.values():
                    if lookup.first_peer is None:
                        lookup.first_peer = time.monotonic()

    def on_dht_log(self, node, text):
        # The one sign that a lookup ended: libtorrent's traversal log. "[5] NEW target: HASH
        # k: 8" when it starts, "[5] COMPLETED distance: 148 type: get_peers" when it ends.
        if not node.lookups or not text.startswith("DHT traversal: ["):
            return
        number, _, rest = text[len("DHT traversal: ["):].partition("] ")
        if rest.startswith("NEW target: "):
            target = rest.split()[2]
            lookup = node.lookups.get(target)
            if lookup is not None and lookup.traversal is None:
                lookup.traversal = number
        elif rest.startswith("COMPLETED") and rest.endswith("type: get_peers"):
            for hex_hash, lookup in list(node.lookups.items()):
                if lookup.traversal == number:
                    self.on_lookup_done(node, hex_hash, lookup)

    def on_lookup_done(self, node, hex_hash, lookup):
        say("peers", node.index, hex_hash, *lookup.peers)
        done = time.monotonic()
        del node.lookups[hex_hash]
        if not node.want_packets():
            node.packets(False)

        def report(values):
            before = lookup.counters_before or {}
            deltas = ["%s=%d" % (c.split(".")[-1], values[c] - before.get(c, 0))
                      for c in COUNTERS]
            first = "-" if lookup.first_peer is None else "%.1f" % (
                (lookup.first_peer - lookup.started) * 1000)
            say("asked", node.index, hex_hash, *lookup.asked)
            say("lookup", node.index, hex_hash, "queries", lookup.queries, "first_peer_ms", first,
                "done_ms", "%.1f" % ((done - lookup.started) * 1000), "counters", *deltas)
        node.with_stats(report)

    def check_mesh(self):
        def record(node):
            def got(values):
                node.mesh_table = values["dht.dht_nodes"]
            return got
        for node in self.nodes:
            node.with_stats(record(node))
        meshed = [n for n in self.nodes if n.given]
        tables = [getattr(n, "mesh_table", 0) for n in meshed]
        if all(t >= n.given for t, n in zip(tables, meshed)):
            self.mesh_pending = False
            say("meshed", min(tables))

    # -- commands -------------------------------------------------------------------------

    def node(self, text):
        if not text.isdigit() or int(text) >= len(self.nodes):
            raise ValueError("no node %r (there are %d)" % (text, len(self.nodes)))
        return self.nodes[int(text)]

    def command(self, line):
        words = line.split()
        if not words:
            return True
        word, rest = words[0], words[1:]
        try:
            if word == "quit":
                return False
            handler = getattr(self, "cmd_" + word, None)
            if handler is None:
                raise ValueError("unknown command %r" % word)
            handler(rest, line)
        except (ValueError, IndexError, RuntimeError, SyntaxError, OSError) as e:
            say("error", line.strip().replace("\n", " "), "--", str(e).replace("\n", " "))
        return True

    def cmd_add_node(self, rest, _line):
        peer = parse_endpoint(rest[1])
        if peer is None:
            raise ValueError("bad address %r" % rest[1])
        targets = self.nodes if rest[0] == "all" else [self.node(rest[0])]
        for node in targets:
            node.session.add_dht_node(peer)

    def cmd_mesh(self, rest, _line):
        count = int(rest[1]) if len(rest) > 1 else len(self.nodes)
        if not 1 <= count <= len(self.nodes):
            raise ValueError("mesh over %d nodes: there are %d" % (count, len(self.nodes)))
        k = int(rest[0]) if rest else count - 1
        k = min(k, count - 1)
        for node in self.nodes[:count]:
            for step in range(1, k + 1):
                other = self.nodes[(node.index + step) % count]
                node.session.add_dht_node((other.ip, other.port))
            node.given = max(node.given, k)
        self.mesh_pending = True

    def cmd_table(self, rest, _line):
        node = self.node(rest[0])
        node.with_stats(lambda values: say("table", node.index, values["dht.dht_nodes"]))

    def cmd_live(self, rest, _line):
        node = self.node(rest[0])
        if node.node_id is None:
            raise RuntimeError("node %d has no node id yet" % node.index)
        node.session.dht_live_nodes(lt.sha1_hash(node.node_id))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for alert in node.session.pop_alerts():
                if isinstance(alert, lt.dht_live_nodes_alert):
                    say("live", node.index, *[endpoint(n["endpoint"]) for n in alert.nodes])
                    return
                self.on_alert(node, alert)
            time.sleep(0.01)
        raise RuntimeError("no dht_live_nodes_alert from node %d" % node.index)

    def add_torrent(self, node, params, save, role):
        params.save_path = save
        params.trackers = []
        if role == "seed":
            params.flags |= lt.torrent_flags.seed_mode
        handle = node.session.add_torrent(params)
        # A .torrent made with a tracker would announce there too: this network is DHT only.
        handle.replace_trackers([])
        hex_hash = str(handle.info_hash())
        node.torrents[hex_hash] = (handle, role)
        return handle, hex_hash

    def cmd_seed(self, rest, _line):
        node = self.node(rest[0])
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(rest[1])
        self.add_torrent(node, params, rest[2], "seed")

    def cmd_magnet(self, rest, _line):
        node = self.node(rest[0])
        params = lt.parse_magnet_uri(rest[1])
        handle, _ = self.add_torrent(node, params, rest[2], "leech")
        handle.force_dht_announce()

    def cmd_announce(self, rest, _line):
        node = self.node(rest[0])
        entry = node.torrents.get(rest[1].lower())
        if entry is None:
            raise ValueError("node %d has no torrent %s" % (node.index, rest[1]))
        entry[0].force_dht_announce()

    def cmd_get_peers(self, rest, _line):
        node = self.node(rest[0])
        info_hash = bytes.fromhex(rest[1])
        if len(info_hash) != 20:
            raise ValueError("an info hash is 40 hex digits")
        lookup = Lookup(info_hash.hex())
        node.lookups[lookup.info_hash] = lookup
        node.packets(True)

        def before(values):
            lookup.counters_before = values
        # Both calls queue work for the session's network thread, in this order: the counters
        # are read there just before the lookup starts, so their change covers all of it.
        node.with_stats(before)
        lookup.started = time.monotonic()
        node.session.dht_get_peers(lt.sha1_hash(info_hash))

    def cmd_watch(self, rest, _line):
        node = self.node(rest[0])
        if parse_endpoint(rest[1]) is None:
            raise ValueError("bad address %r" % rest[1])
        node.watched.add(rest[1])
        node.packets(True)

    def cmd_direct(self, rest, line):
        node = self.node(rest[0])
        peer = parse_endpoint(rest[1])
        if peer is None:
            raise ValueError("bad address %r" % rest[1])
        if node.node_id is None:
            raise RuntimeError("node %d has no node id yet" % node.index)
        query = build_query(node.node_id, rest[2:], line.split(None, 3)[3])
        threading.Thread(target=direct_exchange, daemon=True,
                         args=(node, peer, query, self.args.direct_timeout)).start()


def build_query(node_id, words, text):
    """The KRPC query of a `direct` command, as a dict for lt.bencode."""
    kind = words[0]
    if kind == "ping":
        message = {b"y": b"q", b"q": b"ping", b"a": {}}
    elif kind == "find_node":
        message = {b"y": b"q", b"q": b"find_node", b"a": {b"target": bytes.fromhex(words[1])}}
    elif kind == "get_peers":
        message = {b"y": b"q", b"q": b"get_peers", b"a": {b"info_hash": bytes.fromhex(words[1])}}
    else:
        message = ast.literal_eval(text)
        if not isinstance(message, dict):
            raise ValueError("a direct query is ping, find_node HEX, get_peers HEX or a dict")
    message.setdefault(b"t", os.urandom(2))
    arguments = message.get(b"a")
    if isinstance(arguments, dict):
        arguments.setdefault(b"id", node_id)
    return message


def direct_exchange(node, peer, query, timeout):
    name = query.get(b"q", b"?")
    name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((node.ip, 0))
            sock.sendto(lt.bencode(query), peer)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    say("direct_timeout", node.index, endpoint(peer), name)
                    return
                sock.settimeout(left)
                try:
                    data, source = sock.recvfrom(65536)
                except (socket.timeout, ConnectionRefusedError):
                    # Refused: an ICMP "port unreachable" from the last query to that address;
                    # for the DHT it is a query without an answer, so keep waiting to the end.
                    continue
                if source[0] != peer[0] or source[1] != peer[1]:
                    continue
                message = lt.bdecode(data)
                if isinstance(message, dict):
                    say("direct_reply", node.index, endpoint(peer), *render(message))
                else:
                    say("direct_garbage", node.index, endpoint(peer), data.hex())
                return
    except OSError as e:
        say("error", "direct", endpoint(peer), "--", str(e))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--first-ip", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--direct-timeout", type=float, default=5)
    args = parser.parse_args()
    first = args.first_ip.split(".")
    if (len(first) != 4 or first[0] != "127" or not all(x.isdigit() for x in first)
            or int(first[3]) + args.count > 255 or args.count < 1):
        parser.error("--first-ip must be 127.x.y.z with z + count <= 255 and count >= 1")
    born = time.monotonic()
    # Should the teardown itself hang, the process still ends soon after its time is up.
    killer = threading.Timer(args.max_seconds + 30, lambda: os._exit(3))
    killer.daemon = True
    killer.start()
    network = Network(args)
    # Input is read from the descriptor, not with sys.stdin.readline(): that one buffers every
    # line that has arrived, and select() then no longer sees the ones after the first.
    pending = b""
    try:
        running = True
        while running and time.monotonic() - born < args.max_seconds:
            network.poll()
            # Alerts are read between waits for input: while a lookup is timed, every
            # millisecond (the times it reports are when its alerts were read), else every 20.
            busy = any(node.lookups for node in network.nodes)
            readable, _, _ = select.select([sys.stdin.fileno()], [], [], 0.001 if busy else 0.02)
            if not readable:
                continue
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                break  # end of input
            pending += chunk
            while running and b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                running = network.command(line.decode("utf-8", "replace"))
    finally:
        sessions = [node.session for node in network.nodes]
        for session in sessions:
            session.pause()
        for node in network.nodes:
            node.session = None
        del sessions
        say("bye")


if __name__ == "__main__":
    main()
