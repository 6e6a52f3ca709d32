//! The upstream v4l2-sys-mit build script, run by hand: the same bindgen
//! builder on the same header, written to the file named on the command line.
//! The target comes from `TARGET` and extra clang flags (the target's header
//! directories) from `BINDGEN_EXTRA_CLANG_ARGS`, exactly as bindgen reads them
//! inside a build script; generate.sh sets both.
use std::{env, process::ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().collect();
    let [_, header, out] = args.as_slice() else {
        eprintln!("usage: v4l2-sys-mit-generate WRAPPER_H OUT_RS");
        return ExitCode::from(2);
    };
    let bindings = match bindgen::Builder::default().header(header).generate() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bindgen failed on {header}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = bindings.write_to_file(out) {
        eprintln!("cannot write {out}: {e}");
        return ExitCode::FAILURE;
    }
    // For the provenance line generate.sh records next to the bindings.
    println!("{}", bindgen::clang_version().full);
    ExitCode::SUCCESS
}
