//! Whether the scope is answering, as a sans-IO state machine.
//!
//! The link tasks report every good packet and every clock tick; the monitor
//! answers only when the state changes, so the log gets one line per change
//! instead of one per packet.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Nothing received yet since start.
    Waiting,
    /// Packets are arriving.
    Alive,
    /// Packets were arriving but none came for the timeout.
    Silent,
}

#[derive(Debug, Clone)]
pub struct HealthMonitor {
    state: Health,
    last_seen: Option<Instant>,
    timeout: Duration,
}

impl HealthMonitor {
    pub fn new(timeout: Duration) -> Self {
        HealthMonitor {
            state: Health::Waiting,
            last_seen: None,
            timeout,
        }
    }

    pub fn state(&self) -> Health {
        self.state
    }

    /// A good packet arrived. Returns the new state if this changed it.
    pub fn on_packet(&mut self, now: Instant) -> Option<Health> {
        self.last_seen = Some(now);
        self.transition(Health::Alive)
    }

    /// Time passed. Returns [`Health::Silent`] once when the timeout runs out.
    pub fn on_tick(&mut self, now: Instant) -> Option<Health> {
        match self.last_seen {
            Some(seen)
                if self.state == Health::Alive && now.duration_since(seen) >= self.timeout =>
            {
                self.transition(Health::Silent)
            }
            _ => None,
        }
    }

    fn transition(&mut self, to: Health) -> Option<Health> {
        if self.state == to {
            None
        } else {
            self.state = to;
            Some(to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_change_once() {
        let t0 = Instant::now();
        let mut m = HealthMonitor::new(Duration::from_secs(2));
        assert_eq!(
            m.on_tick(t0 + Duration::from_secs(10)),
            None,
            "waiting never times out"
        );
        assert_eq!(m.on_packet(t0), Some(Health::Alive));
        assert_eq!(m.on_packet(t0 + Duration::from_millis(10)), None);
        assert_eq!(m.on_tick(t0 + Duration::from_millis(1999)), None);
        assert_eq!(
            m.on_tick(t0 + Duration::from_millis(2010)),
            Some(Health::Silent)
        );
        assert_eq!(m.on_tick(t0 + Duration::from_secs(5)), None);
        assert_eq!(
            m.on_packet(t0 + Duration::from_secs(6)),
            Some(Health::Alive)
        );
        assert_eq!(m.state(), Health::Alive);
    }
}
