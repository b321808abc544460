"""Print what libtorrent reads from a .torrent file, one fact per line.

Used by tests/interop_create.rs to check that torrents made by `peerwire create` mean the same
thing to libtorrent (the library inside qBittorrent and Deluge) as to peerwire.

    /usr/bin/python3 tests/peers/libtorrent_torrent_info.py FILE.torrent

Output (one item per line, easy to parse without JSON):
    info_hash <40 hex>
    num_pieces <n>
    piece_length <n>
    total_size <n>
    private <0|1>
    comment <text>
    tracker <tier> <url>          (one line per tracker)
    file <size> <pad 0|1> <path>  (one line per file, path relative to the torrent's directory)
"""
import sys

import libtorrent as lt


def main(path):
    info = lt.torrent_info(path)
    files = info.files()
    print("info_hash", str(info.info_hashes().v1))
    print("num_pieces", info.num_pieces())
    print("piece_length", info.piece_length())
    print("total_size", info.total_size())
    print("private", int(info.priv()))
    print("comment", info.comment())
    for tracker in info.trackers():
        print("tracker", tracker.tier, tracker.url)
    prefix = info.name() + "/"
    for i in range(files.num_files()):
        pad = int(bool(files.file_flags(i) & lt.file_storage.flag_pad_file))
        file_path = files.file_path(i)
        if file_path.startswith(prefix):
            file_path = file_path[len(prefix):]
        print("file", files.file_size(i), pad, file_path)


if __name__ == "__main__":
    main(sys.argv[1])
