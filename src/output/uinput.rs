//! A virtual keyboard through `/dev/uinput` that only has the configured key.

use evdev::uinput::VirtualDevice;
use evdev::{AttributeSet, KeyCode, KeyEvent};

use super::key::{KeyError, KeyOutput};

/// The name the virtual keyboard shows in `/proc/bus/input/devices`, `evtest`, and desktop
/// settings, so users can tell where the key comes from.
pub const DEVICE_NAME: &str = "Borescope button";

/// A virtual keyboard that emits one key per button press.
pub struct UinputKey {
    device: VirtualDevice,
    key: KeyCode,
}

impl UinputKey {
    /// Creates the virtual keyboard; fails when `/dev/uinput` is missing or not writable.
    pub fn new(key: KeyCode) -> Result<Self, KeyError> {
        let mut keys = AttributeSet::<KeyCode>::new();
        keys.insert(key);
        let device = VirtualDevice::builder()
            .map_err(KeyError::NoUinput)?
            .name(DEVICE_NAME)
            .with_keys(&keys)
            .map_err(KeyError::Create)?
            .build()
            .map_err(KeyError::Create)?;
        Ok(UinputKey { device, key })
    }

    /// Down then up, each in its own report: apps see a complete press, not a held key.
    fn press_once(&mut self) -> Result<(), KeyError> {
        for value in [1, 0] {
            // `emit` appends the SYN_REPORT that closes the report.
            self.device
                .emit(&[*KeyEvent::new(self.key, value)])
                .map_err(KeyError::Emit)?;
        }
        Ok(())
    }
}

impl KeyOutput for UinputKey {
    fn press(&mut self, times: u32) -> Result<(), KeyError> {
        for _ in 0..times {
            self.press_once()?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("{:?} on virtual keyboard '{DEVICE_NAME}'", self.key)
    }
}
