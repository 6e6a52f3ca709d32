//! The systemd unit that runs the bridge for an interface, named as systemd names it,
//! for the commands scopecam tells people to type.

/// `scopecam@IFACE.service` with the instance escaped as `systemd-escape --template`
/// does: `-` and bytes outside `[A-Za-z0-9:_.]` become `\xNN`, `/` becomes `-`, and a
/// leading `.` is escaped. An interface name needs it when it holds a dash (a name udev
/// or an administrator chose, such as `scope-1`); `enx...` names pass unchanged.
///
/// Written by hand: the rule is a few lines, and libsystemd's `unit_name_escape` is not
/// in any maintained Rust crate without linking libsystemd.
pub fn unit_name(interface: &str) -> String {
    let mut escaped = String::with_capacity(interface.len());
    for (i, byte) in interface.bytes().enumerate() {
        match byte {
            b'/' => escaped.push('-'),
            b'.' if i == 0 => escaped.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => {
                escaped.push(char::from(b))
            }
            b => escaped.push_str(&format!("\\x{b:02x}")),
        }
    }
    format!("scopecam@{escaped}.service")
}

/// The unit's name quoted for a shell when it needs it (a backslash), so the command
/// scopecam prints can be pasted as it is.
pub fn unit_name_for_shell(interface: &str) -> String {
    let unit = unit_name(interface);
    if unit.contains('\\') {
        format!("'{unit}'")
    } else {
        unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_as_systemd_escape_does() {
        // Checked against `systemd-escape --template=scopecam@.service NAME` (systemd 252).
        for (interface, unit) in [
            ("enx00e04c680001", "scopecam@enx00e04c680001.service"),
            ("scope-1", "scopecam@scope\\x2d1.service"),
            ("-scope-e0", "scopecam@\\x2dscope\\x2de0.service"),
            ("eth0.5", "scopecam@eth0.5.service"),
            (".hidden", "scopecam@\\x2ehidden.service"),
            ("a b", "scopecam@a\\x20b.service"),
            ("wl:x_y", "scopecam@wl:x_y.service"),
        ] {
            assert_eq!(unit_name(interface), unit, "{interface}");
        }
    }

    #[test]
    fn escaped_names_are_quoted_for_the_shell() {
        assert_eq!(
            unit_name_for_shell("enx1"),
            "scopecam@enx1.service",
            "nothing to quote"
        );
        assert_eq!(
            unit_name_for_shell("scope-1"),
            "'scopecam@scope\\x2d1.service'"
        );
    }
}
