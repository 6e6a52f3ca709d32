//! The key the scope's snapshot button presses.

pub mod key;
pub mod uinput;
