//! From a web seed's URL and a stretch of the torrent's byte stream to HTTP range requests
//! (BEP 19 "WebSeed - HTTP/FTP Seeding (GetRight style)") — walkthrough §19.
//!
//! The server knows files, not pieces. A piece may end in one file and start the next, so one
//! stretch of the stream becomes one range request per file it touches:
//!
//! ```text
//!   stream    0             100          160                 400
//!   files     | a.txt        | b.bin      | c/d.mkv            |
//!   90..130   GET URL/name/a.txt  Range: bytes=90-99
//!             GET URL/name/b.bin  Range: bytes=0-29
//! ```
//!
//! The URL rules of BEP 19: a single-file torrent's URL is the file itself, unless it ends in
//! `/`, when the torrent's `name` is added; a multi-file torrent's URL is a folder under which
//! `name/path/segments` are the files. Each segment is percent-encoded, so a name with a space
//! or a letter outside ASCII reaches the server as the file's real name. Padding files (BEP 47)
//! are never asked for: they are zeros by definition. This file is pure: no sockets, no
//! threads; the thread in `mod.rs` sends what it computes.

use crate::encoding::percent_encode;
use crate::metainfo::Info;

/// Where one file of the torrent is on a web seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUrl {
    /// The file's URL; `None` for a padding file (zeros, never fetched).
    pub url: Option<String>,
    /// Where the file starts in the torrent's byte stream.
    pub offset: u64,
    pub length: u64,
}

/// One part of a stretch of the stream: bytes to ask one file for, or zeros to fill in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// `GET url` with `Range: bytes=first-(first + len - 1)`.
    Http { url: String, first: u64, len: u64 },
    /// Padding (BEP 47), or the tail past the last file: zeros, fetched from nobody.
    Zeros { len: u64 },
}

impl RangeRequest {
    /// How many bytes of the stretch this part covers.
    pub fn len(&self) -> u64 {
        match self {
            RangeRequest::Http { len, .. } | RangeRequest::Zeros { len } => *len,
        }
    }

    /// Never true for a part `FileUrls::ranges` returns (it skips empty files).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `Range` header's value: the last byte is inclusive (RFC 9110).
    pub fn range_header(first: u64, len: u64) -> String {
        format!("bytes={first}-{}", first.saturating_add(len.max(1) - 1))
    }
}

/// Every file of a torrent at one web seed: the map from stream offsets to URLs.
#[derive(Debug, Clone)]
pub struct FileUrls {
    files: Vec<FileUrl>,
}

impl FileUrls {
    /// The files of `info` under the `url-list` entry `base`, by the rules of BEP 19. [W19.1]
    pub fn new(base: &str, info: &Info) -> FileUrls {
        let base = escape_unsafe(base);
        let files = info
            .files
            .iter()
            .map(|file| {
                let url = match (info.multi_file, file.padding) {
                    (_, true) => None,
                    // One file: the URL names it, or names its folder when it ends in `/`.
                    (false, false) if base.ends_with('/') => {
                        Some(format!("{base}{}", percent_encode(info.name.as_bytes())))
                    }
                    (false, false) => Some(base.clone()),
                    // Several: always a folder, whether or not the URL ends in `/` (as
                    // libtorrent reads it too), then `name/path/segments`.
                    (true, false) => {
                        let mut url = base.clone();
                        if !url.ends_with('/') {
                            url.push('/');
                        }
                        url.push_str(&percent_encode(info.name.as_bytes()));
                        for segment in &file.path {
                            url.push('/');
                            url.push_str(&percent_encode(segment.as_bytes()));
                        }
                        Some(url)
                    }
                };
                FileUrl {
                    url,
                    offset: file.offset,
                    length: file.length,
                }
            })
            .collect();
        FileUrls { files }
    }

    pub fn files(&self) -> &[FileUrl] {
        &self.files
    }

    /// The requests that fetch `len` bytes from `offset` of the stream, in stream order; their
    /// lengths add up to `len`. [W19.2]
    pub fn ranges(&self, offset: u64, len: u64) -> Vec<RangeRequest> {
        let end = offset.saturating_add(len);
        let mut parts = Vec::new();
        let mut at = offset;
        for file in &self.files {
            let file_end = file.offset + file.length;
            // Files before the stretch, and empty ones (they hold no byte of any piece).
            if file_end <= at || file.length == 0 {
                continue;
            }
            if file.offset >= end {
                break;
            }
            let stop = end.min(file_end);
            let part_len = stop - at;
            parts.push(match &file.url {
                Some(url) => RangeRequest::Http {
                    url: url.clone(),
                    first: at - file.offset,
                    len: part_len,
                },
                None => RangeRequest::Zeros { len: part_len },
            });
            at = stop;
        }
        // Past the last file: the tail of a v2 torrent's last 16 KiB block, zeros as storage
        // reads them.
        if at < end {
            parts.push(RangeRequest::Zeros { len: end - at });
        }
        parts
    }
}

/// A `url-list` entry as a URL ureq accepts: a space or a byte outside printable ASCII (a
/// magnet link's `ws=` decodes to raw text) is percent-encoded; what is already escaped, and
/// the URL's own `/ : ? & %`, stay as written.
fn escape_unsafe(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for &byte in url.as_bytes() {
        if byte.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::FileEntry;

    fn info(name: &str, files: &[(&[&str], u64, bool)], multi_file: bool) -> Info {
        let mut offset = 0;
        let files = files
            .iter()
            .map(|&(path, length, padding)| {
                let entry = FileEntry {
                    path: path.iter().map(|s| s.to_string()).collect(),
                    length,
                    offset,
                    padding,
                    symlink: None,
                    executable: false,
                    hidden: false,
                };
                offset += length;
                entry
            })
            .collect();
        Info {
            name: name.to_string(),
            piece_length: 16384,
            pieces: Vec::new(),
            files,
            multi_file,
            private: false,
            total_length: offset,
            hybrid: false,
        }
    }

    #[test]
    fn a_single_file_url_names_the_file_or_its_folder() {
        let one = info("disc one.iso", &[(&["disc one.iso"], 1000, false)], false);
        let exact = FileUrls::new("http://mirror.example/pub/d1.iso", &one);
        assert_eq!(
            exact.files()[0].url.as_deref(),
            Some("http://mirror.example/pub/d1.iso")
        );
        let folder = FileUrls::new("http://mirror.example/pub/", &one);
        assert_eq!(
            folder.files()[0].url.as_deref(),
            Some("http://mirror.example/pub/disc%20one.iso")
        );
    }

    #[test]
    fn a_multi_file_url_is_a_folder_with_name_and_path_encoded() {
        let many = info(
            "michael",
            &[
                (&["Readme.txt"], 949, false),
                (&["sub dir", "été.bin"], 10, false),
            ],
            true,
        );
        for base in ["http://mirror.example/pub/", "http://mirror.example/pub"] {
            let urls = FileUrls::new(base, &many);
            assert_eq!(
                urls.files()[0].url.as_deref(),
                Some("http://mirror.example/pub/michael/Readme.txt")
            );
            assert_eq!(
                urls.files()[1].url.as_deref(),
                Some("http://mirror.example/pub/michael/sub%20dir/%C3%A9t%C3%A9.bin")
            );
        }
    }

    #[test]
    fn a_stretch_across_files_and_padding_becomes_several_parts() {
        let many = info(
            "t",
            &[
                (&["a.txt"], 100, false),
                (&[".pad", "20"], 20, true),
                (&["empty"], 0, false),
                (&["b.bin"], 60, false),
            ],
            true,
        );
        let urls = FileUrls::new("http://h/", &many);
        assert_eq!(
            urls.ranges(90, 70),
            [
                RangeRequest::Http {
                    url: "http://h/t/a.txt".into(),
                    first: 90,
                    len: 10
                },
                RangeRequest::Zeros { len: 20 },
                RangeRequest::Http {
                    url: "http://h/t/b.bin".into(),
                    first: 0,
                    len: 40
                },
            ]
        );
        // Past the end: zeros, and the lengths still add up.
        let tail = urls.ranges(170, 30);
        assert_eq!(tail.iter().map(RangeRequest::len).sum::<u64>(), 30);
        assert_eq!(tail.last(), Some(&RangeRequest::Zeros { len: 20 }));
        assert_eq!(RangeRequest::range_header(90, 10), "bytes=90-99");
    }

    #[test]
    fn a_base_with_a_space_is_escaped_but_escapes_stay() {
        assert_eq!(
            escape_unsafe("http://m.example/a b/%41?x=1"),
            "http://m.example/a%20b/%41?x=1"
        );
    }
}
