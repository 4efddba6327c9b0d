//! The terminal relay: a fresh pty for the sandboxed command, whose master stays with the
//! supervisor outside the sandbox, and a relay that copies the person's keystrokes in and
//! the command's output out through [`OutputFilter`], which drops sequences that would make
//! the person's real terminal act (clipboard, file transfer, query replies with chosen
//! content, answerback). See `filter::policy` for the list and the reasons.
//!
//! Typical wiring (by the integrator):
//! 1. [`open_pair`]; give the slave to the command as its controlling terminal; close the
//!    supervisor's copy of the slave.
//! 2. [`RawTerminal::enter`] on the person's terminal; [`copy_winsize`] now and on SIGWINCH.
//! 3. [`Relay::start`]; when the command has exited, [`Relay::stop_and_join`], which says
//!    whether the program queried the terminal (its last output included); if it did,
//!    [`RawTerminal::discard_replies`]; then drop
//!    the [`RawTerminal`] (restores termios and flushes pending input).

mod fdio;
mod filter;
mod pair;
mod raw;
mod relay;
mod replies;

pub use filter::{OutputFilter, MAX_STRING};
pub use pair::{copy_winsize, open_pair};
pub use raw::RawTerminal;
pub use relay::Relay;
