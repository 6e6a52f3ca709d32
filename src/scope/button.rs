//! Turns RETCMD button counters into press events.

use crate::scope::protocol::{ButtonAnswer, ButtonRequest};

/// The largest counter step (mod 65536) between two accepted answers that is
/// still believed to be real presses; anything larger is a reset.
///
/// Why 20: polls go out about every 100 ms and an answer is only accepted
/// while its request is among the last [`REQUESTS_KEPT_IN_FLIGHT`] (16, i.e.
/// about 1.6 s of polls). Even a determined clicker manages about 10 presses
/// per second, so ~16 presses fit in that window; 20 leaves some margin. A
/// counter that went *down* by a little (a rebooted scope) looks like a step
/// of almost 65536, far above this, and is treated as a reset rather than a
/// flood of snapshots.
pub const MAX_PRESSES_PER_POLL: u16 = 20;

/// How many unanswered requests are remembered. Older ones are forgotten and
/// answers to them count as stale.
pub const REQUESTS_KEPT_IN_FLIGHT: usize = 16;

/// Tracks the scope's button counter across polls.
///
/// Feed it every parsed [`ButtonAnswer`]; it reports how many presses are new.
/// Rules (see docs/protocol.md):
/// - the first counter seen (and the first after [`link_lost`](Self::link_lost))
///   is only a baseline;
/// - an answer counts only if it answers a request still in flight; each
///   request is answered at most once, and accepting an answer also retires
///   every older request, so an answer overtaken on the way (UDP reordering)
///   can never move the baseline backwards and cause double counting;
/// - a step above [`MAX_PRESSES_PER_POLL`] is a reset: re-baseline, count it
///   in [`resets`](Self::resets), report no presses.
#[derive(Debug, Clone)]
pub struct ButtonTracker {
    next_counter: u16,
    /// Request counters awaiting an answer, oldest first.
    in_flight: std::collections::VecDeque<u16>,
    baseline: Option<u16>,
    presses_total: u64,
    resets: u64,
}

impl Default for ButtonTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl ButtonTracker {
    pub fn new() -> Self {
        ButtonTracker {
            next_counter: 0,
            in_flight: std::collections::VecDeque::with_capacity(REQUESTS_KEPT_IN_FLIGHT),
            baseline: None,
            presses_total: 0,
            resets: 0,
        }
    }

    /// Allocates the next request counter (wrapping at 65535) and remembers it
    /// as in flight; only the last [`REQUESTS_KEPT_IN_FLIGHT`] are kept.
    pub fn next_request(&mut self) -> ButtonRequest {
        let counter = self.next_counter;
        self.next_counter = self.next_counter.wrapping_add(1);
        if self.in_flight.len() >= REQUESTS_KEPT_IN_FLIGHT {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back(counter);
        ButtonRequest { counter }
    }

    /// Feeds an answer. Returns the number of new presses: 0 for a baseline,
    /// a stale or duplicate answer, or a reset.
    pub fn on_answer(&mut self, answer: ButtonAnswer) -> u32 {
        if !self.retire_requests_up_to(answer.request) {
            return 0;
        }
        let Some(previous) = self.baseline.replace(answer.presses) else {
            return 0;
        };
        let step = answer.presses.wrapping_sub(previous);
        if step > MAX_PRESSES_PER_POLL {
            self.resets += 1;
            return 0;
        }
        self.presses_total += u64::from(step);
        u32::from(step)
    }

    /// The scope stopped answering: forget outstanding requests (their late
    /// answers would describe the old link) and treat the next answer as a
    /// new baseline.
    pub fn link_lost(&mut self) {
        self.in_flight.clear();
        self.baseline = None;
    }

    /// The counter value new answers are compared against, if any.
    pub fn baseline(&self) -> Option<u16> {
        self.baseline
    }

    /// All presses reported so far.
    pub fn presses_total(&self) -> u64 {
        self.presses_total
    }

    /// How many times the counter jumped implausibly and was re-baselined.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// If `request` is in flight, removes it and every older request and
    /// returns true; otherwise (stale, duplicate, unknown) returns false.
    fn retire_requests_up_to(&mut self, request: u16) -> bool {
        let Some(position) = self.in_flight.iter().position(|&r| r == request) else {
            return false;
        };
        self.in_flight.drain(..=position);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Polls once and answers with `presses`, as a well-behaved scope would.
    fn poll(tracker: &mut ButtonTracker, presses: u16) -> u32 {
        let request = tracker.next_request();
        tracker.on_answer(ButtonAnswer {
            request: request.counter,
            presses,
        })
    }

    #[test]
    fn first_answer_is_only_a_baseline() {
        let mut t = ButtonTracker::new();
        assert_eq!(t.baseline(), None);
        assert_eq!(poll(&mut t, 1234), 0);
        assert_eq!(t.baseline(), Some(1234));
        assert_eq!(t.presses_total(), 0);
    }

    #[test]
    fn increases_are_presses_including_several_at_once() {
        let mut t = ButtonTracker::new();
        poll(&mut t, 10);
        assert_eq!(poll(&mut t, 10), 0);
        assert_eq!(poll(&mut t, 11), 1);
        assert_eq!(poll(&mut t, 14), 3);
        assert_eq!(t.presses_total(), 4);
        assert_eq!(t.resets(), 0);
    }

    #[test]
    fn counter_wrap_is_one_press() {
        let mut t = ButtonTracker::new();
        poll(&mut t, 65535);
        assert_eq!(poll(&mut t, 0), 1);
        assert_eq!(poll(&mut t, 2), 2);
        assert_eq!(t.resets(), 0);
    }

    #[test]
    fn request_counter_wraps() {
        let mut t = ButtonTracker::new();
        for expected in 0..=u16::MAX {
            assert_eq!(t.next_request().counter, expected);
        }
        assert_eq!(t.next_request().counter, 0);
    }

    #[test]
    fn unknown_and_duplicate_answers_are_ignored() {
        let mut t = ButtonTracker::new();
        let r = t.next_request();
        assert_eq!(
            t.on_answer(ButtonAnswer {
                request: 999,
                presses: 5
            }),
            0
        );
        assert_eq!(
            t.baseline(),
            None,
            "an unknown request must not set the baseline"
        );
        t.on_answer(ButtonAnswer {
            request: r.counter,
            presses: 5,
        });
        let r2 = t.next_request();
        let answer = ButtonAnswer {
            request: r2.counter,
            presses: 7,
        };
        assert_eq!(t.on_answer(answer), 2);
        assert_eq!(t.on_answer(answer), 0, "second answer to one request");
        assert_eq!(t.presses_total(), 2);
    }

    #[test]
    fn answers_to_forgotten_requests_are_stale() {
        let mut t = ButtonTracker::new();
        let first = t.next_request();
        for _ in 0..REQUESTS_KEPT_IN_FLIGHT {
            t.next_request();
        }
        assert_eq!(
            t.on_answer(ButtonAnswer {
                request: first.counter,
                presses: 3
            }),
            0
        );
        assert_eq!(t.baseline(), None);
    }

    #[test]
    fn overtaken_answer_cannot_move_baseline_back() {
        let mut t = ButtonTracker::new();
        poll(&mut t, 100);
        let older = t.next_request();
        let newer = t.next_request();
        assert_eq!(
            t.on_answer(ButtonAnswer {
                request: newer.counter,
                presses: 102
            }),
            2
        );
        assert_eq!(
            t.on_answer(ButtonAnswer {
                request: older.counter,
                presses: 101
            }),
            0
        );
        assert_eq!(t.baseline(), Some(102));
        assert_eq!(poll(&mut t, 103), 1);
        assert_eq!(t.presses_total(), 3);
        assert_eq!(t.resets(), 0);
    }

    #[test]
    fn small_decrease_is_a_reset_not_a_flood() {
        let mut t = ButtonTracker::new();
        poll(&mut t, 500);
        assert_eq!(poll(&mut t, 498), 0);
        assert_eq!(t.resets(), 1);
        assert_eq!(t.baseline(), Some(498));
        assert_eq!(poll(&mut t, 499), 1);
    }

    #[test]
    fn step_limit_is_inclusive() {
        let mut t = ButtonTracker::new();
        poll(&mut t, 0);
        assert_eq!(
            poll(&mut t, MAX_PRESSES_PER_POLL),
            u32::from(MAX_PRESSES_PER_POLL)
        );
        assert_eq!(poll(&mut t, 2 * MAX_PRESSES_PER_POLL + 1), 0);
        assert_eq!(t.resets(), 1);
    }

    #[test]
    fn after_link_loss_next_answer_is_a_baseline() {
        let mut t = ButtonTracker::new();
        poll(&mut t, 40);
        let pending = t.next_request();
        t.link_lost();
        assert_eq!(t.baseline(), None);
        assert_eq!(
            t.on_answer(ButtonAnswer {
                request: pending.counter,
                presses: 41
            }),
            0,
            "answers to requests sent before the loss are stale"
        );
        assert_eq!(poll(&mut t, 7), 0);
        assert_eq!(t.baseline(), Some(7));
        assert_eq!(t.resets(), 0);
        assert_eq!(poll(&mut t, 8), 1);
    }

    proptest! {
        #[test]
        fn reported_presses_sum_to_the_increments(
            baseline in any::<u16>(),
            increments in proptest::collection::vec(0..=MAX_PRESSES_PER_POLL, 0..200),
        ) {
            let mut t = ButtonTracker::new();
            prop_assert_eq!(poll(&mut t, baseline), 0);
            let mut counter = baseline;
            let mut reported = 0u64;
            for inc in &increments {
                counter = counter.wrapping_add(*inc);
                reported += u64::from(poll(&mut t, counter));
            }
            let expected: u64 = increments.iter().map(|&i| u64::from(i)).sum();
            prop_assert_eq!(reported, expected);
            prop_assert_eq!(t.presses_total(), expected);
            prop_assert_eq!(t.resets(), 0);
        }

        #[test]
        fn stale_answers_never_count(
            baseline in any::<u16>(),
            steps in proptest::collection::vec((0..=MAX_PRESSES_PER_POLL, any::<u16>(), any::<u16>()), 0..100),
        ) {
            let mut t = ButtonTracker::new();
            poll(&mut t, baseline);
            let mut counter = baseline;
            let mut expected = 0u64;
            for (inc, junk_request, junk_presses) in steps {
                let request = t.next_request();
                // An answer to anything but the one request in flight is stale.
                if junk_request != request.counter {
                    let junk = ButtonAnswer { request: junk_request, presses: junk_presses };
                    prop_assert_eq!(t.on_answer(junk), 0);
                }
                counter = counter.wrapping_add(inc);
                let answer = ButtonAnswer { request: request.counter, presses: counter };
                prop_assert_eq!(t.on_answer(answer), u32::from(inc));
                // A replay of the same answer is ignored.
                prop_assert_eq!(t.on_answer(answer), 0);
                expected += u64::from(inc);
            }
            prop_assert_eq!(t.presses_total(), expected);
            prop_assert_eq!(t.resets(), 0);
        }

        #[test]
        fn arbitrary_answers_never_panic(
            ops in proptest::collection::vec((any::<bool>(), any::<u16>(), any::<u16>()), 0..300),
        ) {
            let mut t = ButtonTracker::new();
            for (request_first, request, presses) in ops {
                if request_first {
                    t.next_request();
                }
                let got = t.on_answer(ButtonAnswer { request, presses });
                prop_assert!(got <= u32::from(MAX_PRESSES_PER_POLL));
                prop_assert!(t.in_flight.len() <= REQUESTS_KEPT_IN_FLIGHT);
            }
        }
    }
}
