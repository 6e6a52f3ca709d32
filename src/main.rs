//! The `scopecam` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    keep_frame_buffers_mapped();
    scopecam::cli::main()
}

/// zune-jpeg allocates its planes afresh for every picture (it has no reuse API): about
/// 2.7 MB at 1280x720 and 6 MB at 1920x1080 a frame. glibc serves blocks that large with
/// mmap, or trims them back to the kernel on free, so each frame faulted its memory in
/// again: 27 page faults a frame at 720p, 56 at 1080p, measured from /proc/PID/stat.
/// Keeping blocks up to 8 MB on the heap and up to 32 MB of free heap made that 0 and cut
/// the bridge's CPU per 1080p frame by 6-8 % (5.42 -> 4.98 ms, 6.17 -> 5.83 ms in two
/// runs). The largest picture decoded (2592x1944: 15 MB of RGB) is still mapped and
/// returned afterwards.
/// There is no crate for mallopt(3); it is one libc call.
fn keep_frame_buffers_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}
