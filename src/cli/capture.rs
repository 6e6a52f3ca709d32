//! `scopecam capture FILE`: record what a scope sends, for a bug report or a replay.
//!
//! Does what the bridge does on the wire (heartbeats, button polls) for a bounded time
//! and writes every datagram to and from the scope into a pcapng file; see
//! [`crate::link::capture`]. Prints what it recorded. Exit 0 when a file was written
//! (even when the scope sent nothing: that is worth reporting too), 1 when nothing could
//! be recorded (the file exists already, a bridge holds the scope, no socket), 2 for a
//! bad flag or setting. Ctrl-C ends the recording early with a whole file.

use std::fs::OpenOptions;
use std::io::BufWriter;
use std::path::Path;
use std::time::Duration;

use super::exit::{Failure, Outcome};
use super::{CaptureArgs, Started, config_file, quiet_logs, start};
use crate::config::{self, Overrides};
use crate::link::capture::{CaptureSummary, CaptureTarget, Ended, record};
use crate::service::state::{BridgePresence, bridge_presence};
use crate::service::unit::unit_name_for_shell;

pub fn capture(args: CaptureArgs) -> Outcome {
    let file = config_file(args.config);
    let overrides = Overrides {
        scope: args.scope,
        video_port: args.video_port,
        control_port: args.control_port,
        interface: args.interface,
        ..Overrides::default()
    };
    let loaded = quiet_logs(config::load(&file, &config::process_env(), &overrides));
    let Started {
        settings,
        rt,
        shutdown,
    } = start(loaded)?;
    // A bridge heartbeating the same scope would have the stream taken away, and its
    // traffic is not in the file: one client at a time.
    if let Some(iface) = settings.interface.as_deref() {
        let dir = super::probe::state_dir_of(Some(iface));
        if let BridgePresence::Running { pid, .. } =
            bridge_presence(&dir, iface, Path::new("/proc"))
        {
            let unit = unit_name_for_shell(iface);
            return Err(Failure::says(format!(
                "a bridge (pid {pid}) runs on {iface}; stop it first \
                 (`sudo systemctl stop {unit}`), then capture, then start it again"
            )));
        }
    }
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.file)
        .map_err(|e| {
            Failure::says(format!(
                "cannot create {}: {e} (an existing file is never overwritten)",
                args.file.display()
            ))
        })?;
    let target = CaptureTarget {
        scope: settings.scope,
        video_port: settings.video_port,
        control_port: settings.control_port,
        interface: settings.interface.clone(),
        heartbeat: settings.heartbeat_interval,
        poll: settings.button_poll_interval,
        max_frame_bytes: settings.max_frame_bytes,
        duration: Duration::from_secs_f64(args.seconds),
        max_bytes: args.max_mib * 1024 * 1024,
    };
    println!(
        "recording {}:{} (video) and {}:{} (button){} for up to {} s or {} MiB into {}; \
         Ctrl-C ends it early",
        settings.scope,
        settings.video_port,
        settings.scope,
        settings.control_port,
        settings
            .interface
            .as_deref()
            .map(|i| format!(" on {i}"))
            .unwrap_or_default(),
        args.seconds,
        args.max_mib,
        args.file.display()
    );
    match rt.block_on(record(&target, BufWriter::new(out), shutdown.subscribe())) {
        Ok((summary, _)) => {
            for line in summary_lines(&summary) {
                println!("{line}");
            }
            Ok(0)
        }
        Err(e) => Err(Failure::runtime(&e)),
    }
}

/// What the recording holds, for the person who will send it.
fn summary_lines(s: &CaptureSummary) -> Vec<String> {
    let why = match s.ended {
        Ended::TimeLimit => "the time limit",
        Ended::SizeLimit => "the size limit",
        Ended::Signal => "Ctrl-C",
    };
    let mut lines = vec![format!(
        "recorded {:.1} s, ended by {why}: {} datagrams sent, {} received on the video port, \
         {} on the button port; {:.1} KiB",
        s.recorded_for.as_secs_f64(),
        s.sent,
        s.video_received,
        s.control_received,
        s.file_bytes as f64 / 1024.0
    )];
    let video = &s.video;
    lines.push(match video.size {
        Some((w, h)) => format!(
            "video: {} complete frames, {w}x{h}{}, {} incomplete",
            video.frames,
            video
                .fps
                .map(|f| format!(", {f:.1} fps"))
                .unwrap_or_default(),
            video.dropped
        ),
        None if s.video_received > 0 => format!(
            "video: {} datagrams but no complete frame this version can read ({} incomplete, \
             {} not fragments): the capture shows why",
            s.video_received, video.dropped, video.malformed
        ),
        None => "video: nothing came back (check the address, `video_port`, the cable)".into(),
    });
    lines.push(if s.button_answers > 0 {
        format!("button: {} answers to polls", s.button_answers)
    } else {
        "button: no answer to any poll (this model's button port is silent, or elsewhere)".into()
    });
    if s.foreign > 0 {
        lines.push(format!(
            "{} datagrams from other addresses were not recorded",
            s.foreign
        ));
    }
    lines
}
