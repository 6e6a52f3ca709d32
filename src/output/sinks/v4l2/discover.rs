//! Finding loopback devices through sysfs, without opening anything.
//!
//! The roots are injectable so tests can run discovery on a fake tree in a temp dir.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where sysfs and device nodes live: `/sys` and `/dev` on a real system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTree {
    pub sys: PathBuf,
    pub dev: PathBuf,
}

/// A `/dev/videoN` node whose sysfs name matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoNode {
    pub number: u32,
    pub path: PathBuf,
}

/// The running v4l2loopback version (from `/sys/module/v4l2loopback/version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LoopbackVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl LoopbackVersion {
    /// "0.13.2" (trailing newline or suffixes like "-1" are tolerated).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split(['.', '-', '+', '~']);
        let mut number = || parts.next().and_then(|p| p.parse::<u32>().ok());
        let major = number()?;
        let minor = number()?;
        let patch = number().unwrap_or(0);
        Some(LoopbackVersion {
            major,
            minor,
            patch,
        })
    }

    /// 0.13 fixed the "writer without STREAMON leaves the node capture-only" bug.
    pub fn needs_streamon_workaround(version: Option<Self>) -> bool {
        // 0.12.x has no version file at all, hence `None` = old.
        version.is_none_or(|v| (v.major, v.minor) < (0, 13))
    }
}

impl fmt::Display for LoopbackVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Default for DeviceTree {
    fn default() -> Self {
        DeviceTree {
            sys: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
        }
    }
}

impl DeviceTree {
    fn module_dir(&self) -> PathBuf {
        self.sys.join("module/v4l2loopback")
    }

    /// Whether the v4l2loopback module is loaded (or built in).
    pub fn module_loaded(&self) -> bool {
        self.module_dir().is_dir()
    }

    /// The module's version; `None` for 0.12.x, which does not publish one.
    pub fn module_version(&self) -> Option<LoopbackVersion> {
        let text = std::fs::read_to_string(self.module_dir().join("version")).ok()?;
        LoopbackVersion::parse(&text)
    }

    /// The control node, if this v4l2loopback has one (0.13+).
    pub fn control_device(&self) -> Option<PathBuf> {
        let path = self.dev.join("v4l2loopback");
        path.exists().then_some(path)
    }

    /// `/dev/videoN` in this tree.
    pub fn video_node(&self, number: u32) -> PathBuf {
        self.dev.join(format!("video{number}"))
    }

    /// N when `device` is `<dev>/videoN` of this tree and sysfs shows a v4l2loopback
    /// node there (the driver's own `buffers` and `max_openers` attributes), judged
    /// without opening anything.
    pub fn loopback_number(&self, device: &Path) -> Option<u32> {
        if device.parent() != Some(self.dev.as_path()) {
            return None;
        }
        let number = video_number(device.file_name()?.to_str()?)?;
        let node = self
            .sys
            .join("class/video4linux")
            .join(format!("video{number}"));
        let loopback = self.module_loaded()
            && ["buffers", "max_openers"]
                .iter()
                .all(|attribute| node.join(attribute).is_file());
        loopback.then_some(number)
    }

    /// Sends the uevent `action` ("add", "remove", "change") for /dev/videoN: udev and
    /// everything listening to it see the node appear or go. Root only.
    pub fn send_uevent(&self, number: u32, action: &str) -> std::io::Result<()> {
        let path = self
            .sys
            .join("class/video4linux")
            .join(format!("video{number}"))
            .join("uevent");
        // No create: only the kernel's attribute file is written.
        let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
        std::io::Write::write_all(&mut file, action.as_bytes())
    }

    /// Video nodes whose sysfs `name` is exactly `label`, lowest number first. The name
    /// alone does not prove a loopback device; the caller checks the driver when opening.
    pub fn nodes_labelled(&self, label: &str) -> Vec<VideoNode> {
        let class = self.sys.join("class/video4linux");
        let Ok(entries) = std::fs::read_dir(&class) else {
            return Vec::new();
        };
        let mut nodes: Vec<VideoNode> = entries
            .flatten()
            .filter_map(|entry| {
                let number = video_number(&entry.file_name().to_string_lossy())?;
                let name = read_name(&entry.path())?;
                (name == label).then(|| VideoNode {
                    number,
                    path: self.video_node(number),
                })
            })
            .collect();
        nodes.sort_by_key(|n| n.number);
        nodes
    }
}

/// `video12` -> 12; other entries (`v4l-subdev0`, `vbi0`) -> None.
fn video_number(entry_name: &str) -> Option<u32> {
    entry_name.strip_prefix("video")?.parse().ok()
}

/// The sysfs `name` attribute without its newline.
fn read_name(node_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(node_dir.join("name")).ok()?;
    Some(text.trim_end_matches('\n').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_tree() -> (tempfile::TempDir, DeviceTree) {
        let dir = tempfile::tempdir().expect("temp dir");
        let tree = DeviceTree {
            sys: dir.path().join("sys"),
            dev: dir.path().join("dev"),
        };
        std::fs::create_dir_all(&tree.dev).unwrap();
        (dir, tree)
    }

    fn add_node(tree: &DeviceTree, entry: &str, name: &str) {
        let dir = tree.sys.join("class/video4linux").join(entry);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    }

    #[test]
    fn finds_labelled_nodes_lowest_first_and_ignores_others() {
        let (_dir, tree) = fake_tree();
        add_node(&tree, "video0", "Integrated Camera: Integrated C");
        add_node(&tree, "video12", "Borescope");
        add_node(&tree, "video3", "Borescope");
        add_node(&tree, "video4", "Borescope 2");
        add_node(&tree, "v4l-subdev0", "Borescope");
        let nodes = tree.nodes_labelled("Borescope");
        let numbers: Vec<u32> = nodes.iter().map(|n| n.number).collect();
        assert_eq!(numbers, [3, 12]);
        assert_eq!(nodes[0].path, tree.dev.join("video3"));
    }

    #[test]
    fn no_video4linux_class_means_no_nodes() {
        let (_dir, tree) = fake_tree();
        assert!(tree.nodes_labelled("Borescope").is_empty());
        assert!(!tree.module_loaded());
    }

    #[test]
    fn module_version_file_and_its_absence_on_0_12() {
        let (_dir, tree) = fake_tree();
        let module = tree.sys.join("module/v4l2loopback");
        std::fs::create_dir_all(&module).unwrap();
        assert!(tree.module_loaded());
        assert_eq!(tree.module_version(), None);
        assert!(LoopbackVersion::needs_streamon_workaround(None));
        std::fs::write(module.join("version"), "0.13.2\n").unwrap();
        let v = tree.module_version().expect("parsed");
        assert_eq!(v.to_string(), "0.13.2");
        assert!(!LoopbackVersion::needs_streamon_workaround(Some(v)));
    }

    #[test]
    fn version_parsing() {
        let v = |s| LoopbackVersion::parse(s);
        assert_eq!(
            v("0.15.4"),
            Some(LoopbackVersion {
                major: 0,
                minor: 15,
                patch: 4
            })
        );
        assert_eq!(v("0.12.7-1").map(|v| v.minor), Some(12));
        assert_eq!(v("0.14").map(|v| v.patch), Some(0));
        assert_eq!(v("garbage"), None);
        assert!(LoopbackVersion::needs_streamon_workaround(v("0.12.7")));
    }

    #[test]
    fn control_device_only_when_present() {
        let (_dir, tree) = fake_tree();
        assert_eq!(tree.control_device(), None);
        std::fs::write(tree.dev.join("v4l2loopback"), "").unwrap();
        assert_eq!(tree.control_device(), Some(tree.dev.join("v4l2loopback")));
    }
}
