//! `scopecam generate-assets DIR` (hidden): man pages and shell completions generated
//! from the clap definition, for the packages.

use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use super::exit::{Failure, Outcome};
use super::{Cli, GenerateAssetsArgs};

pub fn generate_assets(args: GenerateAssetsArgs) -> Outcome {
    match write_assets(&args.dir) {
        Ok(files) => {
            for file in files {
                println!("{}", file.display());
            }
            Ok(0)
        }
        Err(e) => Err(Failure::says(format!(
            "cannot write the man pages and completions to {}: {e}",
            args.dir.display()
        ))),
    }
}

/// Writes `DIR/man/scopecam.1`, `DIR/man/scopecam-SUB.1` for every visible subcommand,
/// and `DIR/completions/{scopecam.bash,_scopecam,scopecam.fish}`; returns the files.
pub fn write_assets(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    clap_mangen::generate_to(Cli::command(), &man)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&man)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "1"))
        .collect();
    files.sort();
    let mut cmd = Cli::command();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        files.push(clap_complete::generate_to(
            shell,
            &mut cmd,
            "scopecam",
            &completions,
        )?);
    }
    Ok(files)
}
