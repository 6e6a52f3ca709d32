//! Manual check of the virtual key: `press_key [KEY_NAME] [TIMES] [DELAY_MS]` creates the
//! "Borescope button" keyboard, waits DELAY_MS (for a reader to attach), presses the key.

use std::time::Duration;

fn main() {
    if let Err(e) = run() {
        eprintln!("press_key: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "KEY_CAMERA".to_owned());
    let times: u32 = args.next().map_or(Ok(1), |t| t.parse())?;
    let delay_ms: u64 = args.next().map_or(Ok(1000), |t| t.parse())?;
    let mut key = scopecam::output::open_key(scopecam::output::key::parse_key(&name)?)?;
    println!("created: {}", key.describe());
    std::thread::sleep(Duration::from_millis(delay_ms));
    key.press(times)?;
    println!("pressed {times} time(s)");
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}
