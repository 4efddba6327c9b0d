//! A one-shot answer a held connection waits on (std only: the door polls it on its
//! runtime, the broker completes it from its own threads). Dropping the sender answers
//! [`Outcome::SandboxEnded`] (only a closing broker drops a question): nothing is ever
//! admitted by accident.

use cordon_policy::Outcome;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Slot {
    value: Option<Outcome>,
    waker: Option<Waker>,
    closed: bool,
}

/// Completes the answer.
pub struct Sender(Arc<Mutex<Slot>>);
/// Resolves to the answer, or a refusal if the sender went away.
pub struct Receiver(Arc<Mutex<Slot>>);

/// A connected pair.
pub fn channel() -> (Sender, Receiver) {
    let s = Arc::new(Mutex::new(Slot::default()));
    (Sender(s.clone()), Receiver(s))
}

impl Sender {
    /// Answers; later answers are ignored.
    pub fn send(self, v: Outcome) {
        self.finish(Some(v));
    }

    fn finish(&self, v: Option<Outcome>) {
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

/// The answer of a question whose sender went away unanswered.
const UNANSWERED: Outcome = Outcome::SandboxEnded;

impl Receiver {
    /// Blocks until answered; [`Outcome::Withdrawn`] as soon as `waiting()` turns false (the
    /// one asking is gone). Polls: a person's answer may wait a few milliseconds more.
    pub fn wait(self, waiting: &dyn Fn() -> bool) -> Outcome {
        loop {
            match self.0.lock() {
                Ok(s) if s.closed => return s.value.unwrap_or(UNANSWERED),
                Ok(_) => {}
                Err(_) => return UNANSWERED,
            }
            if !waiting() {
                return Outcome::Withdrawn;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Future for Receiver {
    type Output = Outcome;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let Ok(mut s) = self.0.lock() else {
            return Poll::Ready(UNANSWERED);
        };
        if s.closed {
            return Poll::Ready(s.value.unwrap_or(UNANSWERED));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
