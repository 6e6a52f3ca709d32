//! Raw bindings to `<linux/videodev2.h>`, generated ahead of time by
//! `third_party/v4l2-sys-mit/generate.sh` with the same bindgen call as the
//! upstream crate's build script (see README.md next to this crate).
//!
//! The bindings depend on the target: type sizes, padding and the C library's
//! `struct timeval`. One file per target; the 32-bit ARM file has the EABI
//! layout that every 32-bit ARM glibc target shares (armv6/armv7, hard or
//! soft float, 32-bit `time_t` as in Rust's `libc`).
#![allow(clippy::all)]
#![allow(deref_nullptr)]
#![allow(non_camel_case_types)]
#![allow(non_snake_case)]
#![allow(non_upper_case_globals)]

#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
include!("bindings/x86_64-unknown-linux-gnu.rs");

#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "aarch64"))]
include!("bindings/aarch64-unknown-linux-gnu.rs");

#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "arm"))]
include!("bindings/armv7-unknown-linux-gnueabihf.rs");

#[cfg(not(all(
    target_os = "linux",
    target_env = "gnu",
    any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm")
)))]
compile_error!(
    "third_party/v4l2-sys-mit has pre-generated V4L2 bindings only for x86_64, aarch64 and \
     32-bit ARM Linux with glibc. For this target, generate them (needs libclang and the \
     target's kernel and C library headers): `third_party/v4l2-sys-mit/generate.sh <rust target \
     triple>`, then add an include! line for the new file in third_party/v4l2-sys-mit/src/lib.rs."
);
