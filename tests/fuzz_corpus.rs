//! Replays every committed fuzz input (fuzz/corpus/<target>/ and
//! fuzz/regressions/<target>/) through the fuzz targets' own checks, so the
//! normal test suite keeps every crash the fuzzer ever found fixed. Running
//! the fuzzers themselves: fuzz/run.sh (see fuzz/README.md).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable corpus dir").path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue; // .keep
            }
            let data = std::fs::read(&path).expect("readable corpus file");
            // The decoder contains panics (the bridge must survive them), so its own
            // count is what tells a caught panic here.
            let contained_before = scopecam::picture::decode::panics_caught();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{target} check failed on {}",
                path.display()
            );
            assert_eq!(
                scopecam::picture::decode::panics_caught(),
                contained_before,
                "the decoder panicked (contained) on {}",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no committed inputs for the {target} fuzz target"
    );
}

#[test]
fn reassembly_inputs_hold_the_properties() {
    replay("reassembly", checks::reassembly);
}

#[test]
fn button_inputs_hold_the_properties() {
    replay("button", checks::button);
}

#[test]
fn decode_inputs_hold_the_properties() {
    replay("decode", checks::decode);
}
