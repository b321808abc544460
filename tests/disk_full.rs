//! A full disk and a read-only output directory ("the disk is sacred", walkthrough §9).
//!
//! Both are real here, not simulated: the download goes to a 2 MiB `tmpfs` (the torrent holds
//! 4 MiB), or to a directory bind-mounted read-only — a mount, because root ignores permission
//! bits. Each must give one clear `error:` (with the OS's reason as its cause), end in bounded
//! time, and keep every piece already verified: the run after it, with room to write, resumes
//! from at least as many pieces as the error said were kept, and ends with the right bytes.
//!
//! Mounting needs root (CAP_SYS_ADMIN); without it the tests skip loudly, and fail under
//! `PEERWIRE_INTEROP=require` (CI runs as root).

pub mod common;

use common::{Script, ScriptedPeer, peerwire, pseudo_random, run_with_deadline};
use peerwire::metainfo::Metainfo;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

const PIECE: u64 = 65_536;
const CONTENT: usize = 4 << 20; // 64 pieces

/// A mount of ours, undone when dropped (also when the test panics).
struct Mounted(PathBuf);

impl Mounted {
    /// Runs `mount args... dir`; skips the test if this machine will not let us.
    fn new(args: &[&str], dir: &Path) -> Option<Mounted> {
        let out = Command::new("mount")
            .args(args)
            .arg(dir)
            .output()
            .expect("mount runs");
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return common::skip(&format!("cannot mount (needs root): {why}"));
        }
        Some(Mounted(dir.to_path_buf()))
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", options])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount {options} failed");
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The content, its torrent, and an honest seeder of it.
struct Setup {
    dir: tempfile::TempDir,
    content: Arc<Vec<u8>>,
    torrent: PathBuf,
    seeder: ScriptedPeer,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let content = Arc::new(pseudo_random(CONTENT, 61));
    let data = dir.path().join("data.bin");
    std::fs::write(&data, &*content).unwrap();
    let torrent = dir.path().join("data.torrent");
    common::create_torrent(&data, &torrent, &["--piece-length", "65536"]);
    let info_hash = Metainfo::from_file(&torrent).unwrap().info_hash;
    let seeder = ScriptedPeer::start(info_hash, Arc::clone(&content), PIECE, Script::Honest);
    Setup {
        dir,
        content,
        torrent,
        seeder,
    }
}

impl Setup {
    /// `peerwire download -o out` from the seeder, logging at info, bounded in time.
    fn download(&self, out: &Path) -> Output {
        let mut command = peerwire();
        command
            .env("RUST_LOG", "peerwire=info")
            .arg("download")
            .arg("-o")
            .arg(out)
            .arg(&self.torrent)
            .args(["--peer", &self.seeder.addr.to_string(), "--port", "0"])
            .args(["--give-up-after", "30"]);
        run_with_deadline(&mut command, Duration::from_secs(90))
    }

    /// A download that must succeed: returns how many pieces it found on disk at the start.
    fn download_ok(&self, out: &Path) -> usize {
        let output = self.download(out);
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{log}");
        assert!(std::fs::read(out).unwrap() == *self.content, "wrong bytes");
        number_after(&log, "resume: ")
    }
}

/// The number that follows `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> usize {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"));
    let digits: String = text[at + prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a number")
}

/// The failed run's stderr: exactly one `error:` line, with the OS's reason among its causes.
fn check_one_clear_error(output: &Output, reason: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(stderr.contains(&format!("caused by: {reason}")), "{stderr}");
    stderr
}

#[test]
fn a_full_disk_stops_the_download_with_one_error_and_keeps_the_verified_pieces() {
    let s = setup();
    let disk = s.dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let Some(mount) = Mounted::new(&["-t", "tmpfs", "-o", "size=2m", "tmpfs"], &disk) else {
        return;
    };
    let out = disk.join("data.bin");
    let stderr = check_one_clear_error(&s.download(&out), "No space left on device");
    let kept = number_after(&stderr, "the download stopped: ");
    assert!(
        stderr.contains(&format!("cannot write {}", out.display())),
        "{stderr}"
    );
    // The count may lag behind the disk: pieces still being hashed when the download stopped
    // are not in it, but they are on disk, and the next run finds them.
    assert!(kept < 64, "{kept} pieces kept:\n{stderr}");
    // Room again: every piece it kept is found, and only the rest is fetched.
    mount.remount("remount,size=16m");
    let resumed = s.download_ok(&out);
    eprintln!("full disk: {kept} of 64 pieces kept at the error, {resumed} found on resume");
    assert!(resumed >= kept, "{kept} pieces were kept, {resumed} found");
    assert!(
        resumed >= 16,
        "2 MiB were written, but only {resumed} pieces were found"
    );
}

#[test]
fn a_read_only_directory_gives_one_error_and_changes_nothing() {
    let s = setup();
    let dir = s.dir.path().join("read-only");
    std::fs::create_dir(&dir).unwrap();
    let out = dir.join("data.bin");
    let half = &s.content[..CONTENT / 2]; // the first 32 pieces, already downloaded
    std::fs::write(&out, half).unwrap();
    let Some(bind) = Mounted::new(&["--bind", &dir.display().to_string()], &dir) else {
        return;
    };
    bind.remount("remount,bind,ro");
    let stderr = check_one_clear_error(&s.download(&out), "Read-only file system");
    assert!(stderr.contains(&out.display().to_string()), "{stderr}");
    assert!(std::fs::read(&out).unwrap() == half, "the file changed");
    drop(bind);
    assert_eq!(s.download_ok(&out), 32, "the verified half was not found");
}
