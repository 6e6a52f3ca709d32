//! Frame reassembly (sans-IO): fragments in, whole JPEGs out.
//!
//! The scope cuts every JPEG into UDP datagrams ([`crate::scope::protocol::Fragment`]).
//! [`Reassembler`] puts them back together, tolerating duplicates and
//! reordering, and counts every frame it has to give up on by
//! [`DropReason`].

mod reassembler;

pub use reassembler::{
    CLOSED_FRAMES_REMEMBERED, CompleteFrame, DropCounts, DropReason, MAX_TRAILING_PADDING,
    Reassembler, ReassemblyLimits,
};
