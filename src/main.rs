//! The `scopecam` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    scopecam::cli::main()
}
