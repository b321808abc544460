//! `--web` and `demo --report` on the command line: start the `web` thread, say where it is,
//! hand each session its board and trace ring — walkthrough §21. A window onto BEP 3 ("The
//! BitTorrent Protocol Specification") at work; between the command line and `session`.

use super::CliError;
use crate::session::DownloadOptions;
use crate::web::{Member, WebServer, is_loopback};
use std::net::SocketAddr;

/// The running view of one or more sessions.
pub struct View {
    pub members: Vec<Member>,
    pub server: Option<WebServer>,
}

/// Starts the web view on `addr` for sessions named `names`, printing its URL on stderr (and a
/// warning when other machines can reach it). `None`: no view, nothing started.
pub fn start(addr: Option<SocketAddr>, names: &[String]) -> Result<Option<View>, CliError> {
    let Some(addr) = addr else { return Ok(None) };
    let members: Vec<Member> = names.iter().map(|n| Member::new(n)).collect();
    let server = WebServer::start(addr, members.clone()).map_err(CliError::Web)?;
    eprintln!("web view: {}", server.url());
    if !is_loopback(&server.addr) {
        eprintln!(
            "warning: the web view listens on {}, which other machines may reach: it shows \
             every peer's address and what this torrent is; anyone who can connect can read it",
            server.addr
        );
    }
    Ok(Some(View {
        members,
        server: Some(server),
    }))
}

/// A session's options, given the board and trace ring of member `index` of the view.
pub fn attach(view: Option<&View>, index: usize, options: DownloadOptions) -> DownloadOptions {
    match view.and_then(|v| v.members.get(index)) {
        Some(member) => member.watch(options),
        None => options,
    }
}
