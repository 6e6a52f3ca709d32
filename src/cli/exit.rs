//! How a command ends: the one place that prints a command's error and maps it to an
//! exit code. Commands return [`Outcome`]: `Ok(code)` when they ended as designed (0, or
//! a documented non-zero such as "no scope answered" after their own report), or a
//! [`Failure`], which [`finish`] prints as one `scopecam: ...` line on stderr.

use std::process::ExitCode;

/// Exit code for a failure at run time (an output that cannot be written, ...).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a bad flag or configuration value.
pub const EXIT_USAGE: u8 = 2;

/// What a command hands back to [`finish`].
pub type Outcome = Result<u8, Failure>;

/// Why a command did not do its job; the text is the whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A bad flag or setting: exit 2. Restarting cannot fix it.
    Usage(String),
    /// Failed while running: exit 1.
    Runtime(String),
}

impl Failure {
    /// A bad flag or setting.
    pub fn usage(e: impl std::fmt::Display) -> Self {
        Failure::Usage(e.to_string())
    }

    /// A failure at run time, with every cause in the error's chain.
    pub fn runtime(e: &dyn std::error::Error) -> Self {
        Failure::Runtime(error_chain(e))
    }

    /// A failure at run time said in the command's own words.
    pub fn says(message: impl Into<String>) -> Self {
        Failure::Runtime(message.into())
    }
}

/// Prints a failure (one line) and turns the outcome into the process's exit code.
pub fn finish(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Usage(message)) => {
            eprintln!("scopecam: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("scopecam: {message}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// "outer: inner: innermost", without repeating a message a wrapper already includes.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the camera")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause_once() {
        let e = Outer(std::io::Error::other("permission denied"));
        assert_eq!(error_chain(&e), "cannot open the camera: permission denied");
        let e = std::io::Error::other(Outer(std::io::Error::other("busy")));
        assert_eq!(error_chain(&e), "cannot open the camera: busy");
    }

    #[test]
    fn failures_map_to_their_exit_codes() {
        assert_eq!(finish(Ok(0)), ExitCode::SUCCESS);
        assert_eq!(finish(Ok(3)), ExitCode::from(3));
        assert_eq!(
            finish(Err(Failure::usage("bad value"))),
            ExitCode::from(EXIT_USAGE)
        );
        assert_eq!(
            finish(Err(Failure::says("cannot start"))),
            ExitCode::from(EXIT_FAILURE)
        );
    }
}
