//! Shared helpers for the end-to-end tests: run the real `scopecam` binary
//! (simulator and bridge) over loopback and check what comes out.
#![allow(dead_code)]

pub mod chaos;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_scopecam");

/// A child process that is killed if the test panics.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Proc {
    pub fn spawn(name: &'static str, args: &[&str]) -> Proc {
        Self::spawn_with(name, args, |_| {})
    }

    pub fn spawn_with(name: &'static str, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "scopecam=info")
            .env_remove("SCOPECAM_CONFIG");
        tweak(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { child, name }
    }

    /// Waits for exit, failing the test after `limit`.
    pub fn wait_for_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr();
                panic!(
                    "{} did not exit within {limit:?}; stderr:
{stderr}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn terminate(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }

    /// Everything the process wrote to stderr (after it exited).
    pub fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The simulator on `ip` with the real port numbers and extra flags.
pub fn simulator(ip: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["simulate", "--bind", ip];
    args.extend_from_slice(extra);
    Proc::spawn("simulator", &args)
}

/// The bridge pointed at `ip`, no config file, summaries every second.
pub fn bridge(ip: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["run", "--config", "/dev/null", "--scope", ip];
    args.extend_from_slice(extra);
    Proc::spawn_with("bridge", &args, |cmd| {
        cmd.env("SCOPECAM_SUMMARY_INTERVAL_S", "1");
    })
}

/// Distinct JPEG test frames: each a different picture, so a frame that
/// came out can be matched to the one that went in.
pub fn make_source_frames(
    count: usize,
    width: u16,
    height: u16,
    sampling: jpeg_encoder::SamplingFactor,
) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let rgb = test_picture(i, width as usize, height as usize);
            let mut out = Vec::new();
            let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
            enc.set_sampling_factor(sampling);
            enc.encode(&rgb, width, height, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            out
        })
        .collect()
}

/// A smooth picture that differs clearly per index: a gradient whose
/// direction and colour cast depend on `i`, plus a bright square that moves.
pub fn test_picture(i: usize, w: usize, h: usize) -> Vec<u8> {
    let mut rgb = vec![0u8; w * h * 3];
    let square = (i * 37) % w.max(1);
    for y in 0..h {
        for x in 0..w {
            let p = (y * w + x) * 3;
            let fx = x as f64 / w as f64;
            let fy = y as f64 / h as f64;
            let t = if i % 2 == 0 { fx } else { fy };
            rgb[p] = (40.0 + 180.0 * t) as u8;
            rgb[p + 1] = (30 + (i * 29) % 190) as u8;
            rgb[p + 2] = (220.0 - 170.0 * t * ((i % 3) as f64 / 2.0)) as u8;
            if x >= square && x < square + w / 8 && y < h / 4 {
                rgb[p..p + 3].copy_from_slice(&[250, 250, 250]);
            }
        }
    }
    rgb
}

pub fn write_mjpeg(dir: &Path, frames: &[Vec<u8>]) -> PathBuf {
    let path = dir.join("source.mjpeg");
    std::fs::write(&path, frames.concat()).unwrap();
    path
}

/// A 4:2:2 picture in planes, as a y4m C422 stream stores it.
#[derive(Debug, Clone)]
pub struct Planes {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

/// Parses a YUV4MPEG2 C422 stream.
pub fn parse_y4m(data: &[u8]) -> (String, Vec<Planes>) {
    let header_end = data.iter().position(|&b| b == b'\n').expect("y4m header");
    let header = String::from_utf8(data[..header_end].to_vec()).unwrap();
    let field = |tag: char| -> usize {
        header
            .split(' ')
            .find_map(|f| f.strip_prefix(tag))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {tag} in {header}"))
    };
    let (w, h) = (field('W'), field('H'));
    let cw = w.div_ceil(2);
    let mut frames = Vec::new();
    let mut at = header_end + 1;
    while at < data.len() {
        assert_eq!(&data[at..at + 6], b"FRAME\n", "frame marker at {at}");
        at += 6;
        let take = |at: &mut usize, n: usize| {
            let part = data[*at..*at + n].to_vec();
            *at += n;
            part
        };
        let y = take(&mut at, w * h);
        let u = take(&mut at, cw * h);
        let v = take(&mut at, cw * h);
        frames.push(Planes {
            width: w,
            height: h,
            y,
            u,
            v,
        });
    }
    (header, frames)
}

/// Independent reference: jpeg-decoder to RGB, then BT.601 limited range in
/// floating point, chroma averaged over each horizontal pair.
pub fn reference_planes(jpeg: &[u8]) -> Planes {
    let mut dec = jpeg_decoder::Decoder::new(jpeg);
    let pixels = dec.decode().unwrap();
    let info = dec.info().unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let rgb: Vec<[f64; 3]> = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels
            .chunks_exact(3)
            .map(|p| [p[0] as f64, p[1] as f64, p[2] as f64])
            .collect(),
        jpeg_decoder::PixelFormat::L8 => pixels.iter().map(|&l| [l as f64; 3]).collect(),
        other => panic!("unexpected {other:?}"),
    };
    let ew = w + w % 2;
    let cw = ew / 2;
    let (mut y, mut u, mut v) = (vec![0u8; ew * h], vec![0u8; cw * h], vec![0u8; cw * h]);
    let clamp = |x: f64| x.round().clamp(0.0, 255.0) as u8;
    for row in 0..h {
        for cx in 0..cw {
            let mut us = 0.0;
            let mut vs = 0.0;
            for dx in 0..2 {
                let x = (cx * 2 + dx).min(w - 1);
                let [r, g, b] = rgb[row * w + x];
                let luma = 0.299 * r + 0.587 * g + 0.114 * b;
                y[row * ew + cx * 2 + dx] = clamp(16.0 + luma * 219.0 / 255.0);
                us += 128.0 + (b - luma) / 1.772 * 224.0 / 255.0;
                vs += 128.0 + (r - luma) / 1.402 * 224.0 / 255.0;
            }
            u[row * cw + cx] = clamp(us / 2.0);
            v[row * cw + cx] = clamp(vs / 2.0);
        }
    }
    Planes {
        width: ew,
        height: h,
        y,
        u,
        v,
    }
}

/// PSNR over all three planes, in dB.
pub fn psnr(a: &Planes, b: &Planes) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height), "geometry differs");
    let mut sum = 0.0;
    let mut n = 0usize;
    for (pa, pb) in [(&a.y, &b.y), (&a.u, &b.u), (&a.v, &b.v)] {
        for (x, y) in pa.iter().zip(pb.iter()) {
            let d = *x as f64 - *y as f64;
            sum += d * d;
        }
        n += pa.len();
    }
    let mse = sum / n as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

/// Splits a file of JPEGs written back to back.
pub fn split_mjpeg(data: &[u8]) -> Vec<Vec<u8>> {
    scopecam::jpeg::stream::split_jpegs(data)
        .into_iter()
        .map(|r| data[r].to_vec())
        .collect()
}

/// The counters of the bridge's final summary line ("stopped: N frames written;
/// dropped: reassembly R (...), ..., skipped S, ..."): (written, skipped, reassembly drops).
pub fn final_counts(log: &str) -> (u64, u64, u64) {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("stopped: "))
        .unwrap_or_else(|| panic!("no final summary in:\n{log}"));
    let after = |label: &str| -> u64 {
        let at = line
            .find(label)
            .unwrap_or_else(|| panic!("{label} in {line}"))
            + label.len();
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (
        after("stopped: "),
        after("skipped "),
        after("dropped: reassembly "),
    )
}
