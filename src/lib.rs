//! scopecam: a cheap USB borescope as a normal Linux camera.
//!
//! The data path, one module per step:
//! [`link`] (UDP to the scope) -> [`frames`] (fragment reassembly) ->
//! [`decode`] (JPEG to limited-range YUYV) -> [`sinks`] (y4m, mjpeg, null);
//! [`link::button`] -> [`button`] (press tracking) -> [`snapshot`] (saved JPEGs).
//! [`protocol`], [`frames`] and [`button`] are sans-IO state machines;
//! [`bridge`] wires them together, [`simulator`] is a fake scope for tests
//! and demos, [`cli`] and [`config`] are the user-facing edges.

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
