//! Snapshot-button press tracking (sans-IO).
//!
//! The scope only reports a running press counter; [`ButtonTracker`] turns
//! the answers to our polls into "N new presses", ignoring stale answers and
//! re-baselining when the scope restarts.

pub mod key;
mod tracker;
pub mod uinput;

pub use tracker::{ButtonTracker, MAX_PRESSES_PER_POLL, REQUESTS_KEPT_IN_FLIGHT};
