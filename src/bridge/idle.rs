//! What a camera output shows while the scope sends nothing, as a sans-IO
//! schedule.
//!
//! Apps give up on a camera that goes quiet (Chrome after about ten 1-second
//! polls without a frame), so a fixed-geometry output must never stop: during
//! a short stall the last picture is repeated, after that a "no signal"
//! picture is shown, both at a low rate; from the very start, before the
//! scope's first frame, it is "no signal" too, so apps see a live camera as
//! soon as the service runs.

use std::time::{Duration, Instant};

/// What to write when no scope frame came in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleFrame {
    /// Not due yet.
    Nothing,
    /// Repeat the last scope picture (short stall).
    RepeatLast,
    /// Show the "no signal" picture.
    NoSignal,
}

#[derive(Debug, Clone)]
pub struct IdleSchedule {
    /// Gap between idle frames.
    interval: Duration,
    /// How long after the last scope frame the last picture is repeated.
    hold: Duration,
    last_scope_frame: Option<Instant>,
    last_write: Option<Instant>,
    showing_no_signal: bool,
}

impl IdleSchedule {
    pub fn new(idle_fps: u32, hold: Duration) -> Self {
        IdleSchedule {
            interval: Duration::from_secs(1) / idle_fps.max(1),
            hold,
            last_scope_frame: None,
            last_write: None,
            showing_no_signal: false,
        }
    }

    /// A scope frame was written at `now`.
    pub fn on_scope_frame(&mut self, now: Instant) {
        self.last_scope_frame = Some(now);
        self.last_write = Some(now);
        self.showing_no_signal = false;
    }

    /// How long the frame path may wait for a scope frame before an idle
    /// frame is due.
    pub fn wait(&self, now: Instant) -> Duration {
        match self.last_write {
            None => Duration::ZERO,
            Some(at) => (at + self.interval).saturating_duration_since(now),
        }
    }

    /// No scope frame came: decides what, if anything, to write now.
    pub fn on_idle(&mut self, now: Instant) -> IdleFrame {
        if self.wait(now) > Duration::ZERO {
            return IdleFrame::Nothing;
        }
        self.last_write = Some(now);
        match self.last_scope_frame {
            Some(at) if now.duration_since(at) < self.hold => IdleFrame::RepeatLast,
            _ => {
                self.showing_no_signal = true;
                IdleFrame::NoSignal
            }
        }
    }

    /// Whether the output currently shows "no signal" (for one log line per change).
    pub fn showing_no_signal(&self) -> bool {
        self.showing_no_signal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn no_signal_right_away_before_the_first_frame() {
        let t0 = Instant::now();
        let mut s = IdleSchedule::new(5, 1500 * MS);
        assert_eq!(s.wait(t0), Duration::ZERO);
        assert_eq!(s.on_idle(t0), IdleFrame::NoSignal);
        assert!(s.showing_no_signal());
        assert_eq!(s.wait(t0), 200 * MS);
        assert_eq!(s.on_idle(t0 + 100 * MS), IdleFrame::Nothing);
        assert_eq!(s.on_idle(t0 + 200 * MS), IdleFrame::NoSignal);
    }

    #[test]
    fn short_stall_repeats_the_last_picture_then_no_signal() {
        let t0 = Instant::now();
        let mut s = IdleSchedule::new(5, 1000 * MS);
        s.on_scope_frame(t0);
        assert!(!s.showing_no_signal());
        assert_eq!(s.wait(t0 + 50 * MS), 150 * MS);
        assert_eq!(s.on_idle(t0 + 200 * MS), IdleFrame::RepeatLast);
        assert_eq!(s.on_idle(t0 + 800 * MS), IdleFrame::RepeatLast);
        assert_eq!(s.on_idle(t0 + 900 * MS), IdleFrame::Nothing);
        assert_eq!(s.on_idle(t0 + 1000 * MS), IdleFrame::NoSignal);
        s.on_scope_frame(t0 + 5000 * MS);
        assert!(!s.showing_no_signal());
        assert_eq!(s.on_idle(t0 + 5200 * MS), IdleFrame::RepeatLast);
    }

    #[test]
    fn a_steady_stream_never_gets_idle_frames() {
        let t0 = Instant::now();
        let mut s = IdleSchedule::new(5, 1000 * MS);
        for i in 0..100u32 {
            let now = t0 + i * 66 * MS;
            s.on_scope_frame(now);
            assert_eq!(s.on_idle(now + 60 * MS), IdleFrame::Nothing);
        }
    }
}
