//! Approvals: each sandbox's broker, its socket protocol (docs/approvals.md), and the
//! terminal approver (`cordon approvals`). Nothing is cached or persisted: an
//! `allow_session` lives in memory only if the policy permits it and ends with the sandbox.

mod broker;
pub mod client;
pub mod files;
mod oneshot;
pub mod procinfo;
pub mod sanitize;
mod server;

pub use broker::Settings;
pub use server::{approvals_dir, sweep, Registration};

use broker::{Ask, Core, Key};
use cordon_net::{Approver, AskRequest, Outcome};
use procinfo::Process;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

/// Finds the process behind a held connection (best effort).
pub type Who = Arc<dyn Fn(SocketAddr) -> Process + Send + Sync>;

/// One sandbox's broker with its socket.
pub struct Broker {
    core: Arc<Core>,
    server: server::Server,
    who: Option<Who>,
}

impl Broker {
    /// Listens on `<dir>/<sandbox>.sock`; `dir` must be private to the person.
    pub fn start(
        dir: &Path,
        settings: Settings,
        audit: crate::audit::Audit,
    ) -> Result<Self, String> {
        let (d, id) = (dir.to_path_buf(), settings.sandbox.clone());
        let registered = Box::new(move || server::approver_registered(&d, &id));
        let core = Core::with_rendezvous(settings, audit, registered);
        let server = server::Server::start(dir, core.clone())?;
        Ok(Broker {
            core,
            server,
            who: None,
        })
    }

    /// Sets how held connections are traced to a process.
    pub fn set_who(&mut self, who: Who) {
        self.who = Some(who);
    }

    /// The sandbox's id.
    pub fn sandbox(&self) -> &str {
        &self.core.settings.sandbox
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.server.path
    }

    /// The door's hook.
    pub fn approver(&self) -> Arc<dyn Approver> {
        Arc::new(DoorHook {
            core: self.core.clone(),
            who: self.who.clone(),
        })
    }

    /// The path guard's hook (starts its naming thread: call from an unconfined thread).
    pub fn file_asker(&self) -> Result<Arc<dyn cordon_linux::pathguard::Asker>, String> {
        Ok(files::FileAsker::start(self.core.clone())?)
    }

    /// A shareable "is an approver connected?" for the connect() precheck: cheap, except
    /// right after the start, when it waits (bounded) for an approver that registered itself.
    pub fn presence(&self) -> Arc<dyn Fn() -> bool + Send + Sync> {
        let core = self.core.clone();
        Arc::new(move || core.has_approver() || core.await_approver())
    }

    /// Denies whatever is pending and removes the socket.
    pub fn close(&self) {
        self.core.close();
        self.server.stop();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.close();
    }
}

struct DoorHook {
    core: Arc<Core>,
    who: Option<Who>,
}

impl Approver for DoorHook {
    fn ask(&self, req: AskRequest) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        // Keyed on the whole name (a host is at most 253 characters of letters, digits, `-`,
        // `_` and `.`, or an address): a prompt, its answer and a session allowance cover
        // exactly the name asked about, never another that shares its first characters.
        let ask = Ask {
            key: Key {
                kind: crate::audit::AskKind::Network,
                host: req.target.to_string(),
                port: req.port,
            },
            via: req.via,
            rule: req.rule,
            fix: req.fix,
        };
        let who = self.who.clone();
        let peer = req.peer;
        let process = move || match (who, peer) {
            (Some(w), Some(p)) => w(p),
            _ => Process::default(),
        };
        if !self.core.rendezvous_pending() {
            return Box::pin(self.core.ask(ask, process));
        }
        // The first decision may wait for a registered approver: on a thread of its own, not
        // on the door's runtime.
        let core = self.core.clone();
        let (tx, rx) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("approval-wait".into())
            .spawn(move || {
                core.await_approver();
                tx.send(core.ask(ask, process).wait(&|| true));
            });
        if spawned.is_err() {
            // No thread: decided as if nobody were there (fails closed).
            let (tx, rx) = oneshot::channel();
            tx.send(Outcome::NoApprover);
            return Box::pin(rx);
        }
        Box::pin(rx)
    }
}

#[cfg(test)]
mod tests;
