//! scopecam: a cheap USB borescope as a normal Linux camera.

pub mod decode;
pub mod mjpeg_stream;
pub mod protocol;
pub mod simulator;
pub mod sinks;
pub mod snapshot;
