//! The frame path: complete JPEG -> snapshot -> decode -> sink, on its own thread
//! so decoding never delays heartbeats or fragment reception.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info, warn};

use super::BridgeObserver;
use super::idle::{IdleFrame, IdleSchedule};
use super::mailbox::{Mailbox, Taken};
use crate::output::sinks::{OutFrame, Sink, SinkError};
use crate::output::snapshot::{NotSaved, SnapshotWriter};
use crate::picture::Framer;
use crate::picture::decode::{DecodeError, Decoder, Refusal};
use crate::picture::decode::{YuyvFrame, yuyv_to_jpeg};
use crate::scope::reassembly::CompleteFrame;
use crate::stats::{Stats, bump, read};

/// Why the frame path stopped on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathEnd {
    /// The mailbox was closed: the bridge is shutting down.
    Closed,
    /// `--frames N` frames were written.
    FrameLimit,
    /// The reader of the output went away (e.g. ffplay closed).
    OutputClosed,
}

/// A complete frame on its way to the frame path, with the moment the reassembler
/// completed it (for the latency figures).
#[derive(Debug)]
pub struct ArrivedFrame {
    pub frame: CompleteFrame,
    pub completed_at: Instant,
}

/// Presses waiting for a frame to save, shared with the button task.
///
/// A press saves the next complete frame, if one comes soon: a press made
/// while no video arrives must not save a picture minutes later.
#[derive(Debug, Default)]
pub struct SnapshotRequests(Mutex<VecDeque<Instant>>);

/// How long a press waits for a frame to save.
pub const SNAPSHOT_REQUEST_TTL: Duration = Duration::from_secs(2);
/// On a pass-through output, the shortest time between two decodes that check a
/// snapshot candidate after one failed: at most four extra decodes a second while the
/// scope's frames do not decode and presses wait.
const SNAPSHOT_CHECK_RETRY: Duration = Duration::from_millis(250);
/// Presses remembered at most (a burst beyond this is one long press anyway).
const MAX_PENDING_SNAPSHOTS: usize = 16;

impl SnapshotRequests {
    pub fn add(&self, presses: u32) {
        let mut pending = self.lock();
        let now = Instant::now();
        for _ in 0..presses {
            if pending.len() < MAX_PENDING_SNAPSHOTS {
                pending.push_back(now);
            }
        }
    }

    /// Drops the requests that are no longer fresh at `now`; returns how many, and
    /// whether a fresh one is waiting.
    fn expire(&self, now: Instant) -> (usize, bool) {
        let mut pending = self.lock();
        let mut expired = 0;
        while let Some(&pressed) = pending.front() {
            if now.duration_since(pressed) <= SNAPSHOT_REQUEST_TTL {
                break;
            }
            pending.pop_front();
            expired += 1;
        }
        (expired, !pending.is_empty())
    }

    /// Takes one request that is still fresh at `now`; returns how many
    /// expired ones were dropped on the way.
    fn take_one(&self, now: Instant) -> (bool, usize) {
        let (expired, _) = self.expire(now);
        (self.lock().pop_front().is_some(), expired)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct FramePath {
    pub sink: Box<dyn Sink>,
    pub decoder: Decoder,
    /// For outputs with a fixed geometry (cameras): scales every scope
    /// picture to it, and keeps the output alive while the scope is silent.
    pub camera: Option<Camera>,
    pub snapshots: SnapshotWriter,
    pub snapshot_requests: Arc<SnapshotRequests>,
    /// What the snapshot side has logged, so that it logs changes, not every press.
    pub snapshot_log: SnapshotLog,
    /// Kinds of refused frames already logged: each is logged once, then counted.
    pub logged_refusals: Vec<Refusal>,
    pub stats: Arc<Stats>,
    pub frame_limit: Option<u64>,
    /// Buffers go back to the reassembler for reuse.
    pub recycle: Sender<Vec<u8>>,
    /// Told about the first frame written and about every turn of the loop (the
    /// service's readiness and watchdog).
    pub observer: Arc<dyn BridgeObserver>,
}

/// The snapshot side's log state: one line when presses start being refused for a
/// reason (or another reason), one when saving works again; presses within the minimum
/// interval and presses no good frame came for are logged the first time only. All are
/// counted in the stats.
#[derive(Debug, Default)]
pub struct SnapshotLog {
    refusing: Option<NotSaved>,
    told_too_soon: bool,
    told_expired: bool,
    /// Pass-through outputs do not decode; a snapshot candidate is decoded first, and
    /// after one that does not decode, no other is tried before this
    /// ([`SNAPSHOT_CHECK_RETRY`] later).
    next_check: Option<Instant>,
}

/// What a fixed-geometry output needs besides the decoder.
pub struct Camera {
    pub framer: Framer,
    pub idle: IdleSchedule,
    /// Set when the sink takes JPEG rather than YUYV (MJPEG camera): scope frames are
    /// not decoded, and idle frames are JPEG too.
    pub jpeg: Option<JpegPictures>,
}

impl Camera {
    /// A camera for a sink that wants YUYV (`sink_needs_yuyv`) or else JPEG.
    pub fn new(mut framer: Framer, idle: IdleSchedule, sink_needs_yuyv: bool) -> Self {
        let jpeg = (!sink_needs_yuyv).then(|| JpegPictures::new(&mut framer));
        Camera { framer, idle, jpeg }
    }
}

/// The idle pictures of a JPEG camera: "no signal" encoded once, and the last scope JPEG.
pub struct JpegPictures {
    no_signal: Vec<u8>,
    /// Empty until a scope frame was written.
    last: Vec<u8>,
}

/// Quality of the encoded "no signal" picture (flat colours and text: small at 80).
const NO_SIGNAL_JPEG_QUALITY: u8 = 80;

impl JpegPictures {
    fn new(framer: &mut Framer) -> Self {
        let no_signal = yuyv_to_jpeg(framer.no_signal(), NO_SIGNAL_JPEG_QUALITY)
            .expect("the no-signal picture has a valid JPEG size (at most 4096x4096)");
        JpegPictures {
            no_signal,
            last: Vec::new(),
        }
    }

    fn idle(&self, frame: IdleFrame) -> &[u8] {
        match frame {
            IdleFrame::RepeatLast if !self.last.is_empty() => &self.last,
            _ => &self.no_signal,
        }
    }
}

/// The longest the frame path sleeps without checking the mailbox's state.
const MAX_WAIT: Duration = Duration::from_millis(200);

enum Step {
    Continue,
    End(PathEnd),
}

impl FramePath {
    /// Takes frames from `mailbox` until it closes, the frame limit is
    /// reached, or the output goes away. Flushes the sink before returning.
    ///
    /// The loop turns at least every 200 ms (`MAX_WAIT`), with or without scope frames, and
    /// tells the observer each time: that is what feeds the service's watchdog, so a
    /// wedged frame path (a write that never returns) stops feeding it.
    pub fn run(mut self, mailbox: &Mailbox<ArrivedFrame>) -> Result<PathEnd, SinkError> {
        let mut announced_first_write = false;
        let end = loop {
            let step = match mailbox.take(self.wait()) {
                Taken::Item(frame) => self.handle(frame)?,
                Taken::Empty => self.write_idle_frame()?,
                Taken::Closed => break PathEnd::Closed,
            };
            // A camera is ready with its first picture ("no signal" included); a file or
            // null output writes nothing until the scope streams, so open is ready.
            if !announced_first_write
                && (self.camera.is_none()
                    || read(&self.stats.frames_written) + read(&self.stats.idle_frames) > 0)
            {
                announced_first_write = true;
                self.observer.first_write();
            }
            self.observer.tick(Instant::now());
            if let Step::End(end) = step {
                break end;
            }
        };
        match self.sink.flush() {
            Ok(()) | Err(SinkError::Closed { .. }) => Ok(end),
            Err(e) => Err(e),
        }
    }

    /// How long to wait for a scope frame before an idle frame is due.
    fn wait(&self) -> Duration {
        match &self.camera {
            Some(camera) => camera.idle.wait(Instant::now()).min(MAX_WAIT),
            None => MAX_WAIT,
        }
    }

    /// Keeps a camera output alive: the last picture during a short stall,
    /// then "no signal". Outputs without a fixed geometry get nothing.
    fn write_idle_frame(&mut self) -> Result<Step, SinkError> {
        let Some(camera) = &mut self.camera else {
            return Ok(Step::Continue);
        };
        let was_no_signal = camera.idle.showing_no_signal();
        let due = camera.idle.on_idle(Instant::now());
        if due == IdleFrame::Nothing {
            return Ok(Step::Continue);
        }
        if due == IdleFrame::NoSignal && !was_no_signal {
            info!("camera shows \"no signal\" until the scope sends pictures");
        }
        let idle = match &camera.jpeg {
            Some(pictures) => OutFrame {
                jpeg: pictures.idle(due),
                yuyv: None,
                planar: None,
            },
            None => {
                let picture: &YuyvFrame = match due {
                    IdleFrame::RepeatLast => camera.framer.last_or_no_signal(),
                    _ => camera.framer.no_signal(),
                };
                OutFrame {
                    jpeg: &[],
                    yuyv: Some(picture),
                    planar: None,
                }
            }
        };
        match self.sink.write(&idle) {
            Ok(()) => {
                bump(&self.stats.idle_frames);
                Ok(Step::Continue)
            }
            Err(SinkError::Closed { .. }) => Ok(Step::End(PathEnd::OutputClosed)),
            Err(e) => Err(e),
        }
    }

    fn handle(&mut self, arrived: ArrivedFrame) -> Result<Step, SinkError> {
        self.stats
            .handoff
            .record(Instant::now().saturating_duration_since(arrived.completed_at));
        let cpu_before = thread_cpu_time();
        let step = self.write(&arrived.frame.jpeg, arrived.completed_at);
        if let (Some(before), Some(after)) = (cpu_before, thread_cpu_time()) {
            self.stats.work_cpu.record(after.saturating_sub(before));
        }
        let _ = self.recycle.send(arrived.frame.jpeg);
        step
    }

    /// Counts a frame that is not written because it did not decode or was refused before
    /// decoding. Logs the first undecodable frame and the first refusal of each kind only.
    fn drop_frame(&mut self, e: &DecodeError) {
        if let Some(refusal) = e.refusal() {
            self.stats.refused.add(refusal, 1);
            if !self.logged_refusals.contains(&refusal) {
                self.logged_refusals.push(refusal);
                warn!("dropping a frame: {e}; further ones are counted in the summary");
            }
            return;
        }
        let errors = self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
        if errors == 0 {
            warn!(
                "dropping a frame that does not decode ({e}); further ones are counted in the summary"
            );
        } else {
            debug!("dropping undecodable frame: {e}");
        }
    }

    fn write(&mut self, jpeg: &[u8], completed_at: Instant) -> Result<Step, SinkError> {
        // What no scope sends (progressive, arithmetic, lossless or hierarchical JPEGs,
        // pictures beyond the size limit) is refused from its frame header, before any
        // decoding, whatever the output: pass-through outputs included.
        if let Err(e) = crate::picture::decode::check_header(jpeg) {
            self.drop_frame(&e);
            return Ok(Step::Continue);
        }
        // The picture in the form the sink takes: a camera's framed YUYV, the decoder's
        // YUYV or planes, or nothing for pass-through outputs.
        let mut out = OutFrame {
            jpeg,
            yuyv: None,
            planar: None,
        };
        let decoded = match &mut self.camera {
            // A JPEG camera takes the frame as is; the sink checks its size.
            Some(Camera { jpeg: Some(_), .. }) => Ok(false),
            Some(camera) => camera
                .framer
                .frame_jpeg(&mut self.decoder, jpeg)
                .map(|picture| {
                    out.yuyv = Some(picture);
                    true
                }),
            None if self.sink.needs_planar() => self.decoder.decode_planar(jpeg).map(|picture| {
                out.planar = Some(picture);
                true
            }),
            None if self.sink.needs_yuyv() => self.decoder.decode(jpeg).map(|picture| {
                out.yuyv = Some(picture);
                true
            }),
            None => Ok(false),
        };
        let was_decoded = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                self.drop_frame(&e);
                // Never a snapshot: pending presses wait for a frame that decodes.
                return Ok(Step::Continue);
            }
        };
        let accepted = match self.sink.write(&out) {
            Ok(()) => {
                let written_at = Instant::now();
                self.stats
                    .latency
                    .record(written_at.saturating_duration_since(completed_at));
                bump(&self.stats.frames_written);
                if let Some((width, height)) = crate::jpeg::dimensions(jpeg) {
                    self.stats.set_scope_size(width, height);
                }
                if let Some(camera) = &mut self.camera {
                    camera.idle.on_scope_frame(written_at);
                    if let Some(pictures) = &mut camera.jpeg {
                        pictures.last.clear();
                        pictures.last.extend_from_slice(jpeg);
                    }
                }
                true
            }
            Err(SinkError::Closed { .. }) => {
                info!("the output was closed by its reader; stopping");
                return Ok(Step::End(PathEnd::OutputClosed));
            }
            Err(e) if e.concerns_one_frame() => {
                if self.stats.sink_rejected.fetch_add(1, Ordering::Relaxed) == 0 {
                    warn!("{e}; further such frames are counted in the summary");
                }
                false
            }
            Err(e) => return Err(e),
        };
        // A snapshot is a picture the output showed: one the output refused stays unsaved.
        if accepted {
            self.save_snapshot_if_requested(jpeg, was_decoded);
        }
        if self
            .frame_limit
            .is_some_and(|limit| read(&self.stats.frames_written) >= limit)
        {
            return Ok(Step::End(PathEnd::FrameLimit));
        }
        Ok(Step::Continue)
    }

    /// Saves `jpeg` for a pending press, within the snapshot limits. Only a frame that
    /// decoded is saved: `decoded` says the path decoded it already; a pass-through
    /// output's frame is decoded here first (after one that fails, the next check waits
    /// [`SNAPSHOT_CHECK_RETRY`]), and one that does not decode leaves the press waiting for the next frame.
    fn save_snapshot_if_requested(&mut self, jpeg: &[u8], decoded: bool) {
        let now = Instant::now();
        let (expired, waiting) = self.snapshot_requests.expire(now);
        if expired > 0 {
            self.stats
                .snapshots_not_saved
                .add(NotSaved::NoGoodFrame, expired as u64);
            if !std::mem::replace(&mut self.snapshot_log.told_expired, true) {
                warn!(
                    "{expired} button press(es) saved nothing: no picture that decodes came \
                     within {} s; further ones are counted in the status",
                    SNAPSHOT_REQUEST_TTL.as_secs()
                );
            }
        }
        if !waiting {
            return;
        }
        if self.snapshots.too_soon(now) {
            self.snapshot_requests.take_one(now);
            self.stats.snapshots_not_saved.add(NotSaved::TooSoon, 1);
            if !std::mem::replace(&mut self.snapshot_log.told_too_soon, true) {
                info!(
                    "a button press came too soon after the last snapshot and saved nothing; \
                     further ones are counted in the status (snapshot_min_interval_ms)"
                );
            }
            return;
        }
        if !decoded {
            if self.snapshot_log.next_check.is_some_and(|t| now < t) {
                return;
            }
            if self.decoder.decode_rgb(jpeg).is_err() {
                self.snapshot_log.next_check = Some(now + SNAPSHOT_CHECK_RETRY);
                return;
            }
        }
        self.snapshot_requests.take_one(now);
        match self.snapshots.save(jpeg, SystemTime::now(), now) {
            Ok(path) => {
                bump(&self.stats.snapshots);
                if self.snapshot_log.refusing.take().is_some() {
                    info!("snapshots are saved again");
                }
                info!("snapshot saved to {}", path.display());
            }
            Err(e) => {
                let reason = e.reason();
                self.stats.snapshots_not_saved.add(reason, 1);
                if self.snapshot_log.refusing.replace(reason) != Some(reason) {
                    warn!("{e}; further refusals are counted in the status");
                } else {
                    debug!("snapshot not saved: {e}");
                }
            }
        }
    }
}

/// CPU time this thread has used. Read around each frame, it tells the work a frame
/// costs apart from the time the thread waited for a core, which latency includes.
fn thread_cpu_time() -> Option<Duration> {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .ok()
        .map(Duration::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::{Geometry, Placement, Rotation};

    /// Every frame a sink got: (was it an idle frame, the picture).
    type Written = Arc<Mutex<Vec<(bool, YuyvFrame)>>>;

    /// Holds writes until opened: `(open, opened)`.
    type Gate = Arc<(Mutex<bool>, std::sync::Condvar)>;

    /// A camera-like sink that remembers what it was given; with a gate, every write
    /// after the first waits for it (a driver that wedges).
    struct FakeCamera {
        written: Written,
        wedge: Option<Gate>,
    }

    impl Sink for FakeCamera {
        fn describe(&self) -> String {
            "fake camera".into()
        }
        fn needs_yuyv(&self) -> bool {
            true
        }
        fn fixed_geometry(&self) -> Option<(u32, u32)> {
            Some((64, 48))
        }
        fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), SinkError> {
            let picture = frame.yuyv.expect("a camera always gets pixels").clone();
            self.written
                .lock()
                .unwrap()
                .push((frame.jpeg.is_empty(), picture));
            if let Some((open, opened)) = self.wedge.as_deref() {
                let mut open = open.lock().unwrap();
                while self.written.lock().unwrap().len() > 1 && !*open {
                    open = opened.wait(open).unwrap();
                }
            }
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn wait_until(written: &Written, what: &str, check: impl Fn(&[(bool, YuyvFrame)]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check(&written.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A 64x48 camera; `yuyv` false: one that takes JPEG.
    fn test_camera(yuyv: bool) -> Camera {
        Camera::new(
            Framer::new(Placement {
                rotation: Rotation::None,
                mirror: false,
                output: Geometry {
                    width: 64,
                    height: 48,
                },
            }),
            IdleSchedule::new(20, Duration::from_millis(150)),
            yuyv,
        )
    }

    fn camera_path(written: Written) -> FramePath {
        let (recycle, _) = std::sync::mpsc::channel();
        FramePath {
            sink: Box::new(FakeCamera {
                written,
                wedge: None,
            }),
            decoder: Decoder::new(),
            camera: Some(test_camera(true)),
            snapshots: SnapshotWriter::new(
                std::env::temp_dir().join("scopecam-unused"),
                crate::output::snapshot::SnapshotLimits::default(),
            ),
            snapshot_requests: Arc::new(SnapshotRequests::default()),
            snapshot_log: SnapshotLog::default(),
            logged_refusals: Vec::new(),
            stats: Arc::new(Stats::default()),
            frame_limit: None,
            recycle,
            observer: Arc::new(crate::bridge::NullObserver),
        }
    }

    /// Counts what the frame path tells its observer.
    #[derive(Default)]
    struct CountingObserver {
        first_writes: std::sync::atomic::AtomicU64,
        ticks: std::sync::atomic::AtomicU64,
    }

    impl BridgeObserver for CountingObserver {
        fn first_write(&self) {
            bump(&self.first_writes);
        }
        fn tick(&self, _now: Instant) {
            bump(&self.ticks);
        }
    }

    /// A running frame path watched by a [`CountingObserver`].
    struct Observed {
        observer: Arc<CountingObserver>,
        mailbox: Arc<Mailbox<ArrivedFrame>>,
        runner: std::thread::JoinHandle<Result<PathEnd, SinkError>>,
    }

    impl Observed {
        fn start(mut path: FramePath) -> Self {
            let observer = Arc::new(CountingObserver::default());
            path.observer = observer.clone();
            let mailbox = Arc::new(Mailbox::new());
            let runner = {
                let mailbox = mailbox.clone();
                std::thread::spawn(move || path.run(&mailbox))
            };
            Observed {
                observer,
                mailbox,
                runner,
            }
        }

        fn stop(self) -> Arc<CountingObserver> {
            self.mailbox.close();
            self.runner.join().unwrap().unwrap();
            self.observer
        }
    }

    /// The watchdog is fed from the loop, so the loop must keep turning while the scope
    /// is silent: for a camera (idle frames) and for a file output (mailbox timeouts).
    #[test]
    fn the_loop_keeps_ticking_without_scope_frames() {
        for camera in [true, false] {
            let mut path = camera_path(Arc::new(Mutex::new(Vec::new())));
            if !camera {
                path.camera = None;
            }
            let running = Observed::start(path);
            std::thread::sleep(Duration::from_millis(1100));
            let observer = running.stop();
            let ticks = read(&observer.ticks);
            // At most MAX_WAIT (200 ms) between turns: 5 in 1.1 s, some slack for a busy host.
            assert!(ticks >= 4, "camera={camera}: only {ticks} ticks in 1.1 s");
            // Readiness comes without scope frames either way: a camera writes "no
            // signal" at once, and a file output is ready once open (else a service
            // with a file output and a silent scope would never become ready).
            assert_eq!(read(&observer.first_writes), 1, "camera={camera}");
        }
    }

    /// What the watchdog relies on: a frame path stuck in a write stops ticking.
    #[test]
    fn a_wedged_write_stops_the_ticks() {
        let release: Gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let mut path = camera_path(Arc::new(Mutex::new(Vec::new())));
        path.sink = Box::new(FakeCamera {
            written: Arc::new(Mutex::new(Vec::new())),
            wedge: Some(release.clone()),
        });
        let running = Observed::start(path);
        let observer = running.observer.clone();
        // The first idle frame goes out at once, the second (50 ms later at 20 fps) wedges.
        std::thread::sleep(Duration::from_millis(400));
        let stuck_at = read(&observer.ticks);
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(read(&observer.ticks), stuck_at, "no ticks while wedged");
        assert!(stuck_at <= 2, "{stuck_at} ticks before wedging");
        assert_eq!(read(&observer.first_writes), 1);
        *release.0.lock().unwrap() = true;
        release.1.notify_all();
        running.stop();
        assert!(read(&observer.ticks) > stuck_at, "ticks again once unstuck");
    }

    #[test]
    fn stale_snapshot_requests_expire_and_bursts_are_capped() {
        let requests = SnapshotRequests::default();
        requests.add(40);
        let now = Instant::now();
        assert_eq!(requests.take_one(now), (true, 0));
        let later = now + SNAPSHOT_REQUEST_TTL + Duration::from_millis(1);
        assert_eq!(requests.take_one(later), (false, MAX_PENDING_SNAPSHOTS - 1));
        requests.add(1);
        assert_eq!(requests.take_one(Instant::now()), (true, 0));
        assert_eq!(requests.take_one(Instant::now()), (false, 0));
    }

    #[test]
    fn camera_output_is_live_before_during_and_after_the_scope() {
        let written: Written = Arc::new(Mutex::new(Vec::new()));
        let path = camera_path(written.clone());
        let stats = path.stats.clone();
        let mailbox = Arc::new(Mailbox::new());
        let runner = {
            let mailbox = mailbox.clone();
            std::thread::spawn(move || path.run(&mailbox))
        };
        wait_until(&written, "no-signal before any scope frame", |w| {
            !w.is_empty()
        });
        let no_signal = written.lock().unwrap()[0].1.clone();
        assert_eq!((no_signal.width, no_signal.height), (64, 48));

        // A 4:3 scope frame of another size is framed to 64x48.
        mailbox.put(ArrivedFrame {
            frame: CompleteFrame {
                frame_id: 1,
                jpeg: crate::picture::decode::solid_jpeg(32, 32, 255),
            },
            completed_at: Instant::now(),
        });
        wait_until(&written, "the scope frame", |w| {
            w.iter().any(|(idle, _)| !idle)
        });
        let scope = written
            .lock()
            .unwrap()
            .iter()
            .find(|(idle, _)| !idle)
            .unwrap()
            .1
            .clone();
        assert_ne!(scope.data, no_signal.data);
        assert_eq!(scope.data.len(), 64 * 2 * 48);
        // Letterboxed: a square picture in a 4:3 frame has black bars left and right.
        assert_eq!(&scope.data[..4], &[16, 128, 16, 128]);
        assert!(scope.data[64] > 200, "content in the middle is white");

        // Silence: first the last picture is repeated, then "no signal".
        wait_until(&written, "no-signal after the stall", |w| {
            w.last()
                .is_some_and(|(idle, p)| *idle && p.data == no_signal.data)
        });
        let frames = written.lock().unwrap().clone();
        let first_scope = frames.iter().position(|(idle, _)| !idle).unwrap();
        assert!(
            frames[first_scope + 1].1.data == scope.data,
            "a short stall repeats the last picture first"
        );
        mailbox.close();
        assert_eq!(runner.join().unwrap().unwrap(), PathEnd::Closed);
        assert_eq!(
            read(&stats.frames_written),
            1,
            "idle frames are not scope frames"
        );
        assert!(read(&stats.idle_frames) >= 2);
        assert_eq!(
            stats.latency.snapshot().total(),
            1,
            "one latency sample per scope frame, none for idle frames"
        );
    }

    /// Every JPEG a JPEG-taking camera got: (was it an idle frame, the bytes).
    type WrittenJpegs = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;

    /// A camera that takes JPEG (like the v4l2 sink with `format = "mjpeg"`).
    struct FakeJpegCamera {
        written: WrittenJpegs,
        scope_frames: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl Sink for FakeJpegCamera {
        fn describe(&self) -> String {
            "fake jpeg camera".into()
        }
        fn needs_yuyv(&self) -> bool {
            false
        }
        fn fixed_geometry(&self) -> Option<(u32, u32)> {
            Some((64, 48))
        }
        fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), SinkError> {
            assert!(frame.yuyv.is_none(), "a JPEG camera needs no decoding");
            let scope = self
                .scope_frames
                .lock()
                .unwrap()
                .contains(&frame.jpeg.to_vec());
            self.written
                .lock()
                .unwrap()
                .push((!scope, frame.jpeg.to_vec()));
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    #[test]
    fn jpeg_camera_gets_scope_jpegs_as_is_and_idle_frames_as_jpeg() {
        let written: WrittenJpegs = Arc::new(Mutex::new(Vec::new()));
        let scope_jpeg = crate::picture::decode::solid_jpeg(64, 48, 255);
        let scope_frames = Arc::new(Mutex::new(vec![scope_jpeg.clone()]));
        let mut path = camera_path(Arc::new(Mutex::new(Vec::new())));
        path.sink = Box::new(FakeJpegCamera {
            written: written.clone(),
            scope_frames,
        });
        path.camera = Some(test_camera(false));
        let mailbox = Arc::new(Mailbox::new());
        let runner = {
            let mailbox = mailbox.clone();
            std::thread::spawn(move || path.run(&mailbox))
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while written.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "no idle frame came");
            std::thread::sleep(Duration::from_millis(5));
        }
        let no_signal = written.lock().unwrap()[0].1.clone();
        assert_eq!(crate::jpeg::dimensions(&no_signal), Some((64, 48)));
        Decoder::new()
            .decode(&no_signal)
            .expect("no-signal is a valid JPEG");

        mailbox.put(ArrivedFrame {
            frame: CompleteFrame {
                frame_id: 1,
                jpeg: scope_jpeg.clone(),
            },
            completed_at: Instant::now(),
        });
        // After the scope frame: repeats of it, then "no signal" again.
        while !written
            .lock()
            .unwrap()
            .iter()
            .skip_while(|(idle, _)| *idle)
            .any(|(_, bytes)| *bytes == no_signal)
        {
            assert!(Instant::now() < deadline, "no-signal did not come back");
            std::thread::sleep(Duration::from_millis(5));
        }
        mailbox.close();
        assert_eq!(runner.join().unwrap().unwrap(), PathEnd::Closed);
        let frames = written.lock().unwrap().clone();
        let first_scope = frames.iter().position(|(idle, _)| !idle).unwrap();
        assert_eq!(frames[first_scope].1, scope_jpeg, "written byte for byte");
        assert_eq!(
            frames[first_scope + 1].1,
            scope_jpeg,
            "a short stall repeats the last JPEG"
        );
    }

    /// Puts `jpeg` in the mailbox and waits until the path has dealt with it (snapshot
    /// included: the loop's tick after the frame was counted).
    fn feed(running: &Observed, stats: &Stats, jpeg: Vec<u8>) {
        let mailbox = &running.mailbox;
        let handled =
            |s: &Stats| read(&s.frames_written) + read(&s.decode_errors) + read(&s.sink_rejected);
        let before = handled(stats);
        mailbox.put(ArrivedFrame {
            frame: CompleteFrame { frame_id: 1, jpeg },
            completed_at: Instant::now(),
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while handled(stats) == before {
            assert!(Instant::now() < deadline, "the frame was not handled");
            std::thread::sleep(Duration::from_millis(2));
        }
        let ticks = read(&running.observer.ticks);
        while read(&running.observer.ticks) == ticks {
            assert!(Instant::now() < deadline, "the loop did not turn");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A JPEG with the right markers whose scan is garbage: it does not decode.
    fn undecodable_jpeg() -> Vec<u8> {
        let mut jpeg = crate::picture::decode::solid_jpeg(64, 48, 10);
        let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        jpeg.truncate(sos);
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        jpeg
    }

    /// A stream output (no fixed geometry) that takes planes, as y4m does.
    struct FakePlanarStream {
        written: Arc<Mutex<Vec<crate::picture::decode::Planar422Frame>>>,
    }

    impl Sink for FakePlanarStream {
        fn describe(&self) -> String {
            "fake planar stream".into()
        }
        fn needs_yuyv(&self) -> bool {
            false
        }
        fn needs_planar(&self) -> bool {
            true
        }
        fn write(&mut self, frame: &OutFrame<'_>) -> Result<(), SinkError> {
            assert!(frame.yuyv.is_none(), "a planar sink gets no YUYV");
            let planar = frame.planar.expect("a planar sink gets planes");
            self.written.lock().unwrap().push(planar.clone());
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    /// A planar sink gets the decoder's planes of every frame that decodes; a frame that
    /// does not is counted as undecodable and never reaches it.
    #[test]
    fn a_planar_sink_gets_the_decoders_planes_and_no_undecodable_frame() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut path = camera_path(Arc::new(Mutex::new(Vec::new())));
        path.camera = None;
        path.sink = Box::new(FakePlanarStream {
            written: written.clone(),
        });
        let stats = path.stats.clone();
        let running = Observed::start(path);
        let good = crate::picture::decode::solid_jpeg(33, 20, 200);
        feed(&running, &stats, good.clone());
        feed(&running, &stats, undecodable_jpeg());
        feed(&running, &stats, good.clone());
        running.stop();
        let expected = Decoder::new()
            .decode_planar(&good)
            .expect("decodes")
            .clone();
        assert_eq!(*written.lock().unwrap(), vec![expected.clone(), expected]);
        assert_eq!(
            (read(&stats.frames_written), read(&stats.decode_errors)),
            (2, 1)
        );
    }

    fn snapshot_files(dir: &std::path::Path) -> Vec<Vec<u8>> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| std::fs::read(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Presses are saved only from frames that decoded and that the output took, at
    /// most one per minimum interval, whether the output decodes (YUYV camera) or
    /// passes the JPEG through (MJPEG camera: the candidate is decoded to check it).
    #[test]
    fn only_decoded_frames_are_saved_and_a_press_flood_saves_one() {
        for pass_through in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut path = camera_path(Arc::new(Mutex::new(Vec::new())));
            if pass_through {
                path.sink = Box::new(FakeJpegCamera {
                    written: Arc::new(Mutex::new(Vec::new())),
                    scope_frames: Arc::new(Mutex::new(Vec::new())),
                });
                path.camera = Some(test_camera(false));
            }
            path.snapshots = SnapshotWriter::new(
                dir.path(),
                crate::output::snapshot::SnapshotLimits {
                    min_interval: Duration::from_secs(3600),
                    ..Default::default()
                },
            );
            let stats = path.stats.clone();
            let requests = path.snapshot_requests.clone();
            let running = Observed::start(path);
            requests.add(1);
            feed(&running, &stats, undecodable_jpeg());
            assert!(
                snapshot_files(dir.path()).is_empty(),
                "pass_through={pass_through}: an undecodable frame was saved"
            );
            std::thread::sleep(SNAPSHOT_CHECK_RETRY);
            let good = crate::picture::decode::solid_jpeg(64, 48, 200);
            feed(&running, &stats, good.clone());
            assert_eq!(
                snapshot_files(dir.path()),
                std::slice::from_ref(&good),
                "{pass_through}"
            );
            // A flood: 16 presses pending, five good frames; the interval allows none.
            requests.add(40);
            for _ in 0..5 {
                feed(&running, &stats, good.clone());
            }
            running.stop();
            assert_eq!(snapshot_files(dir.path()).len(), 1, "{pass_through}");
            assert_eq!(read(&stats.snapshots), 1);
            assert_eq!(
                stats.snapshots_not_saved.get(NotSaved::TooSoon),
                5,
                "pass_through={pass_through}"
            );
        }
    }
}
