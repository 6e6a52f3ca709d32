//! Every output of the bridge, where a frame or a press leaves scopecam:
//!
//! - [`sinks`]: the camera (v4l2loopback) and the files (y4m, MJPEG), one backend per
//!   file behind the [`sinks::Sink`] trait;
//! - [`snapshot`]: the button's saved JPEGs, bounded in rate, count and bytes;
//! - [`key`]: the key the button presses, on a uinput keyboard ([`uinput`]) or nowhere.

pub mod key;
pub mod sinks;
pub mod snapshot;
pub mod uinput;

use key::{KeyCode, KeyError, KeyOutput, NullKey};

/// The key output a setting names: [`NullKey`] for none, else a virtual keyboard.
pub fn open_key(key: Option<KeyCode>) -> Result<Box<dyn KeyOutput>, KeyError> {
    match key {
        None => Ok(Box::new(NullKey)),
        Some(key) => Ok(Box::new(uinput::UinputKey::new(key)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_opens_the_null_key() {
        let mut key = open_key(None).expect("null key");
        assert_eq!(key.describe(), "no key");
        key.press(3).expect("no-op");
    }
}
