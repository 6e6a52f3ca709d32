//! scopecam: a cheap USB borescope as a normal Linux camera.
//!
//! The data path, one module per step:
//! `link` (UDP to the scope) -> `frames` (fragment reassembly) ->
//! `decode` (JPEG to limited-range YUYV) -> `sinks` (y4m, mjpeg, null, ...);
//! `button` (press tracking) -> `snapshot` (saved JPEGs).
//! `protocol`, `frames` and `button` are sans-IO state machines.

pub mod button;
pub mod frames;
pub mod protocol;
