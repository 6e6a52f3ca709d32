//! scopecam: a cheap USB borescope as a normal Linux camera.
//!
//! The path of a frame, one folder per step, from the bottom up (a module uses only
//! the ones listed before it):
//!
//! - [`jpeg`]: the one JPEG marker walker (where a frame ends, its size and coding),
//!   and [`capture`]: the pcapng format of recorded scope traffic.
//! - [`scope`]: the scope as pure data and state machines, no IO: the wire
//!   [`scope::protocol`], fragment [`scope::reassembly`], the [`scope::button`] press
//!   counter, link [`scope::health`] and the [`scope::probe`] session.
//! - [`picture`]: decoding (JPEG to limited-range YUYV) and geometry (rotation,
//!   scaling, letterbox, the "no signal" card).
//! - [`output`]: every way out: the camera and file [`output::sinks`], button
//!   [`output::snapshot`]s and the [`output::key`] press.
//! - [`stats`]: the counters and latency histograms the layers above bump and read.
//! - [`link`]: the sockets at the edge: video and button ports, the probe, the
//!   interface's address; they hand frames and presses on through callbacks.
//! - [`config`]: built-in defaults, the file, the environment and flags parsed once
//!   into typed [`config::Settings`].
//! - [`bridge`]: one running bridge: the links feed a mailbox, the frame path decodes
//!   and writes, the button takes snapshots and presses the key.
//! - [`service`]: `scopecam service IFACE`, what the systemd unit runs: is this link a
//!   scope's, probe, take a camera, bridge, report to systemd.
//! - [`cli`]: the command line; [`simulator`]: a protocol-faithful fake scope for
//!   tests and demos.

pub mod bridge;
pub mod capture;
pub mod cli;
pub mod config;
pub mod jpeg;
pub mod link;
pub mod output;
pub mod picture;
pub mod scope;
pub mod service;
pub mod simulator;
pub mod stats;
