//! A one-slot mailbox between the network side and the frame path.
//!
//! Live video wants the newest frame, not a queue: if decoding or the sink
//! falls behind, the frame waiting in the slot is replaced by the newer one
//! (and counted), so latency never builds up and memory stays at one frame.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What [`Mailbox::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken<T> {
    Item(T),
    /// Nothing arrived within the timeout.
    Empty,
    /// The mailbox was closed and is empty.
    Closed,
}

#[derive(Debug)]
struct Slot<T> {
    item: Option<T>,
    closed: bool,
}

#[derive(Debug)]
pub struct Mailbox<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox {
            slot: Mutex::new(Slot {
                item: None,
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<T> Mailbox<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `item` in the slot and returns the older item it replaced, if any.
    pub fn put(&self, item: T) -> Option<T> {
        let mut slot = self.lock();
        let replaced = slot.item.replace(item);
        drop(slot);
        self.ready.notify_one();
        replaced
    }

    /// Waits up to `timeout` for an item.
    pub fn take(&self, timeout: Duration) -> Taken<T> {
        let slot = self.lock();
        let (mut slot, _) = self
            .ready
            .wait_timeout_while(slot, timeout, |s| s.item.is_none() && !s.closed)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match slot.item.take() {
            Some(item) => Taken::Item(item),
            None if slot.closed => Taken::Closed,
            None => Taken::Empty,
        }
    }

    /// No more items will come; a waiting [`take`](Self::take) returns at once.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        // A panic elsewhere must not take the video down with it.
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn newer_item_replaces_the_waiting_one() {
        let mb = Mailbox::new();
        assert_eq!(mb.put(1), None);
        assert_eq!(mb.put(2), Some(1));
        assert_eq!(mb.take(Duration::ZERO), Taken::Item(2));
        assert_eq!(mb.take(Duration::from_millis(1)), Taken::Empty);
    }

    #[test]
    fn close_wakes_a_waiting_taker() {
        let mb = Arc::new(Mailbox::<u8>::new());
        let taker = {
            let mb = mb.clone();
            std::thread::spawn(move || mb.take(Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(20));
        mb.close();
        assert_eq!(taker.join().unwrap(), Taken::Closed);
    }

    #[test]
    fn item_put_before_close_is_still_delivered() {
        let mb = Mailbox::new();
        mb.put(7);
        mb.close();
        assert_eq!(mb.take(Duration::ZERO), Taken::Item(7));
        assert_eq!(mb.take(Duration::ZERO), Taken::Closed);
    }
}
