//! `scopecam announce [--stopped] IFACE`: the unit's privileged step around the bridge
//! (see [`crate::service::announce`]).

use super::exit::{Failure, Outcome};
use super::{AnnounceArgs, init_logging};
use crate::output::sinks::v4l2::fed_by_a_producer;
use crate::service::announce::{AnnounceError, Announcer};
use crate::service::state::holders_of;

pub fn announce(args: AnnounceArgs) -> Outcome {
    init_logging("info");
    let announcer = Announcer::system();
    let tree = announcer.tree.clone();
    let mut send = |number: u32, action: &'static str| tree.send_uevent(number, action);
    let result = if args.stopped {
        // Anyone but this process with an fd on the node (PipeWire's own node, an app).
        let mut held = |path: &std::path::Path| {
            holders_of(path, &[std::process::id()], std::path::Path::new("/proc"))
                .is_some_and(|scan| !scan.holders.is_empty())
        };
        announcer.stopped(
            &args.interface,
            &mut |path| fed_by_a_producer(path),
            &mut held,
            &mut send,
        )
    } else {
        // systemd sets MAINPID for ExecStartPost: only that bridge's state file counts.
        let main_pid = std::env::var("MAINPID").ok().and_then(|p| p.parse().ok());
        announcer.started(&args.interface, main_pid, &mut send)
    };
    match result {
        Ok(_) => Ok(0),
        // The camera works for apps that read V4L2 directly either way: a failure here
        // is reported, and the unit treats it as non-fatal (the `-` prefix).
        Err(e @ AnnounceError::BadInterface(_)) => Err(Failure::usage(e)),
        Err(e) => Err(Failure::says(format!(
            "{e}; PipeWire-based apps may not list the camera until it is replugged"
        ))),
    }
}
