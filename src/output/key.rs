//! The key the scope's snapshot button presses on this computer, so apps (a video call's
//! "take photo", a screenshot tool) can react to it like to a keyboard's camera key.

/// Key codes as Linux names them (`KEY_CAMERA`, ...).
pub use evdev::KeyCode;

/// Where button presses go.
pub trait KeyOutput: Send {
    /// Presses and releases the key `times` times.
    fn press(&mut self, times: u32) -> Result<(), KeyError>;
    /// For logs, e.g. "KEY_CAMERA on virtual keyboard 'Borescope button'".
    fn describe(&self) -> String;
}

/// `key = "none"`: presses only make snapshots.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullKey;

impl KeyOutput for NullKey {
    fn press(&mut self, _times: u32) -> Result<(), KeyError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "no key".to_owned()
    }
}

/// Why the key cannot be used. The caller logs it and continues with [`NullKey`].
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "'{0}' is not an evdev key name: use a name from linux/input-event-codes.h such as \
         KEY_CAMERA or KEY_F13, or none"
    )]
    UnknownKey(String),
    #[error(
        "cannot open /dev/uinput to create the virtual key: {0}; load the module \
         (`sudo modprobe uinput`) and give this user write access: the package's udev rule \
         gives it to the service's user scopecam (an ACL entry, 75-scopecam-uinput.rules); by \
         hand `sudo setfacl -m u:$USER:rw /dev/uinput` (until reboot)"
    )]
    NoUinput(std::io::Error),
    #[error("cannot create the virtual keyboard: {0}")]
    Create(std::io::Error),
    #[error("cannot send the key press: {0}")]
    Emit(std::io::Error),
}

/// "KEY_CAMERA" -> `Some(KEY_CAMERA)`, "none" -> `None`.
pub fn parse_key(name: &str) -> Result<Option<KeyCode>, KeyError> {
    if name == "none" {
        return Ok(None);
    }
    name.parse::<KeyCode>()
        .map(Some)
        .map_err(|_| KeyError::UnknownKey(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_parse_and_none_is_no_key() {
        assert_eq!(parse_key("KEY_CAMERA").unwrap(), Some(KeyCode::KEY_CAMERA));
        assert_eq!(parse_key("KEY_F13").unwrap(), Some(KeyCode::KEY_F13));
        assert_eq!(parse_key("none").unwrap(), None);
    }

    #[test]
    fn unknown_names_are_errors_with_an_example() {
        for bad in ["KEY_NOPE", "camera", "", "NONE"] {
            let text = parse_key(bad).unwrap_err().to_string();
            assert!(text.contains(&format!("'{bad}'")), "{text}");
            assert!(text.contains("KEY_CAMERA"), "{text}");
        }
    }
}
