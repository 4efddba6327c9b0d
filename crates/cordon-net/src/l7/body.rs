//! A body passed through a [`Stream`](super::scrub::Stream): replaced on the fly, or cut off
//! (an error, so the upstream request is aborted) where it carries a forbidden placeholder.

use super::scrub::Stream;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::HeaderMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Errors of bodies at the door.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every body the door's layer 7 hands on.
pub type L7Body = BoxBody<Bytes, BoxError>;

/// Records which secret's placeholder a request body carried, if any.
#[derive(Default)]
pub struct Trip(Mutex<Option<usize>>);

impl Trip {
    /// The secret index that tripped.
    pub fn tripped(&self) -> Option<usize> {
        self.0.lock().ok().and_then(|g| *g)
    }

    fn set(&self, k: usize) {
        if let Ok(mut g) = self.0.lock() {
            g.get_or_insert(k);
        }
    }
}

/// The filtered body.
pub struct Filtered<B> {
    inner: Pin<Box<B>>,
    stream: Stream,
    exact_len: bool,
    done: bool,
    trailers: Option<HeaderMap>,
    trip: Arc<Trip>,
}

/// A forbidden placeholder in a body: the request is cut off here.
#[derive(Debug)]
struct Forbidden;

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cordon: the body carries a secret's placeholder for another host")
    }
}

impl std::error::Error for Forbidden {}

/// Wraps `inner`; an unchanged stream (nothing to look for) is passed through as it is.
pub fn filtered<B>(inner: B, stream: Stream, trip: Arc<Trip>) -> L7Body
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    if stream.is_empty() || inner.is_end_stream() {
        return inner.map_err(Into::into).boxed();
    }
    let exact_len = !stream.changes_length();
    Filtered {
        inner: Box::pin(inner),
        stream,
        exact_len,
        done: false,
        trailers: None,
        trip,
    }
    .boxed()
}

impl<B> Filtered<B> {
    fn out(&mut self, r: Result<Vec<u8>, usize>) -> Option<Result<Frame<Bytes>, BoxError>> {
        match r {
            Ok(v) if v.is_empty() => None,
            Ok(v) => Some(Ok(Frame::data(Bytes::from(v)))),
            Err(k) => {
                self.trip.set(k);
                self.done = true;
                self.trailers = None;
                Some(Err(Box::new(Forbidden)))
            }
        }
    }
}

impl<B> Body for Filtered<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let frame = match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(f) => f,
            };
            match frame {
                None => {
                    this.done = true;
                    let r = this.stream.finish();
                    if let Some(f) = this.out(r) {
                        return Poll::Ready(Some(f));
                    }
                }
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let r = this.stream.push(&data);
                        if let Some(f) = this.out(r) {
                            return Poll::Ready(Some(f));
                        }
                    }
                    Err(frame) => {
                        // Trailers end the body: flush what was held back first.
                        this.trailers = frame.into_trailers().ok();
                        this.done = true;
                        let r = this.stream.finish();
                        if let Some(f) = this.out(r) {
                            return Poll::Ready(Some(f));
                        }
                    }
                },
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact_len {
            self.inner.size_hint()
        } else {
            SizeHint::default()
        }
    }
}
