//! A one-shot answer a held connection waits on (std only: the door polls it on its
//! runtime, the broker completes it from its own threads). Dropping the sender answers
//! `false`: nothing is ever admitted by accident.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Slot {
    value: Option<bool>,
    waker: Option<Waker>,
    closed: bool,
}

/// Completes the answer.
pub struct Sender(Arc<Mutex<Slot>>);
/// Resolves to the answer, or `false` if the sender went away.
pub struct Receiver(Arc<Mutex<Slot>>);

/// A connected pair.
pub fn channel() -> (Sender, Receiver) {
    let s = Arc::new(Mutex::new(Slot::default()));
    (Sender(s.clone()), Receiver(s))
}

impl Sender {
    /// Answers; later answers are ignored.
    pub fn send(self, v: bool) {
        self.finish(Some(v));
    }

    fn finish(&self, v: Option<bool>) {
        let waker = match self.0.lock() {
            Ok(mut s) => {
                if s.value.is_none() && !s.closed {
                    s.value = v;
                    s.closed = true;
                }
                s.waker.take()
            }
            Err(_) => None,
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.finish(None);
    }
}

impl Receiver {
    /// Blocks until answered; `false` as soon as `waiting()` turns false (the one asking
    /// is gone). Polls: a person's answer may wait a few milliseconds more.
    pub fn wait(self, waiting: &dyn Fn() -> bool) -> bool {
        loop {
            match self.0.lock() {
                Ok(s) if s.closed => return s.value.unwrap_or(false),
                Ok(_) => {}
                Err(_) => return false,
            }
            if !waiting() {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Future for Receiver {
    type Output = bool;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let Ok(mut s) = self.0.lock() else {
            return Poll::Ready(false);
        };
        if s.closed {
            return Poll::Ready(s.value.unwrap_or(false));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
