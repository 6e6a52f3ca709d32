//! The scope as pure data and state machines: no sockets, no files, no clocks of
//! their own (time comes in as an argument).
//!
//! - [`protocol`]: the wire format, packets to bytes and back.
//! - [`reassembly`]: fragments in, whole JPEGs out.
//! - [`button`]: the press counter's answers turned into new presses.
//! - [`health`]: waiting, streaming or silent, from when packets arrive.
//! - [`probe`]: is a borescope there? Polls, the heartbeat that joins them, the answer.
//!
//! `link` drives these with real sockets; the simulator and the tests drive them with
//! whatever they like.

pub mod button;
pub mod health;
pub mod probe;
pub mod protocol;
pub mod reassembly;
