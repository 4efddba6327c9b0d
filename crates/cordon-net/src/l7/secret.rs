//! One secret as the door holds it: the real value (zeroised on drop), its placeholder, where
//! it may go, and how to fetch a fresh value when it expires.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Fetches a fresh value (runs `from_command` again). Never returns the value in an error.
pub type Refresh = Arc<dyn Fn() -> Result<Zeroizing<String>, String> + Send + Sync>;

/// A secret handed to the door.
pub struct SecretConf {
    /// The policy name (`[secrets.NAME]`), also the variable inside.
    pub name: String,
    /// What the sandbox holds instead of the value.
    pub placeholder: String,
    /// Lower-case hosts (or `*.domain`) that may receive the value.
    pub hosts: Vec<String>,
    /// The value may go over plain HTTP too.
    pub allow_plaintext: bool,
    /// Substitute in the URL query.
    pub in_query: bool,
    /// Substitute in request bodies.
    pub in_body: bool,
    /// The real value now.
    pub value: Zeroizing<String>,
    /// How long a value lasts (with `refresh`).
    pub ttl: Option<Duration>,
    /// How to get a fresh value.
    pub refresh: Option<Refresh>,
}

impl std::fmt::Debug for SecretConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretConf")
            .field("name", &self.name)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// The door's copy, with the current value and when it was fetched.
pub(crate) struct Live {
    pub(crate) conf: SecretConf,
    current: Mutex<(Zeroizing<String>, Instant)>,
    /// Values replaced by a refresh, newest last: a response to a request sent with one of
    /// them may still arrive (and reflect it), and the upstream may still honour it.
    earlier: Mutex<Vec<Zeroizing<String>>>,
    /// Held while a refresh runs, so requests arriving together at expiry run the helper once.
    refreshing: tokio::sync::Mutex<()>,
}

/// How many replaced values are still scrubbed from responses.
const KEEP_EARLIER: usize = 16;

impl Live {
    pub(crate) fn new(mut conf: SecretConf) -> Live {
        let value = std::mem::take(&mut conf.value);
        Live {
            conf,
            current: Mutex::new((value, Instant::now())),
            earlier: Mutex::new(Vec::new()),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn expired(&self) -> Result<bool, String> {
        match (self.conf.ttl, self.current.lock()) {
            (Some(ttl), Ok(c)) => Ok(c.1.elapsed() >= ttl),
            (_, Ok(_)) => Ok(false),
            (_, Err(_)) => Err(format!("secret {}: state poisoned", self.conf.name)),
        }
    }

    /// Whether the value may go to `host` over this transport.
    pub(crate) fn allowed(&self, host: &str, tls: bool) -> bool {
        let host = host.to_ascii_lowercase();
        (tls || self.conf.allow_plaintext)
            && self
                .conf
                .hosts
                .iter()
                .any(|p| super::host_matches(p, &host))
    }

    /// The value now, refreshed first when its time is up.
    pub(crate) async fn value(&self) -> Result<Zeroizing<String>, String> {
        if let (true, Some(refresh)) = (self.expired()?, self.conf.refresh.clone()) {
            let _gate = self.refreshing.lock().await;
            // Another request may have refreshed the value while this one waited.
            if !self.expired()? {
                return self.now();
            }
            let name = self.conf.name.clone();
            let fresh = tokio::task::spawn_blocking(move || refresh())
                .await
                .map_err(|_| format!("secret {name}: refresh failed"))??;
            if let Ok(mut c) = self.current.lock() {
                let old = std::mem::replace(&mut *c, (fresh, Instant::now())).0;
                if let Ok(mut e) = self.earlier.lock() {
                    if *old != *c.0 && !e.contains(&old) {
                        e.push(old);
                    }
                    if e.len() > KEEP_EARLIER {
                        e.remove(0);
                    }
                }
            }
        }
        self.now()
    }

    fn now(&self) -> Result<Zeroizing<String>, String> {
        self.current
            .lock()
            .map(|c| c.0.clone())
            .map_err(|_| format!("secret {}: state poisoned", self.conf.name))
    }

    /// Every value to scrub from responses, without refreshing: the current one and the
    /// ones refreshes replaced.
    pub(crate) fn peek(&self) -> Vec<Zeroizing<String>> {
        let mut all: Vec<Zeroizing<String>> =
            self.earlier.lock().map(|e| e.clone()).unwrap_or_default();
        if let Ok(c) = self.current.lock() {
            all.push(c.0.clone());
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn requests_arriving_together_at_expiry_refresh_once() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let refresh: Refresh = Arc::new(move || {
            std::thread::sleep(Duration::from_millis(100));
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Zeroizing::new(format!("value-{n}")))
        });
        let live = Arc::new(Live::new(SecretConf {
            name: "T".into(),
            placeholder: "p".into(),
            hosts: vec!["h".into()],
            allow_plaintext: false,
            in_query: false,
            in_body: false,
            value: Zeroizing::new("value-0".into()),
            ttl: Some(Duration::from_millis(50)),
            refresh: Some(refresh),
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("runtime");
        let values: Vec<String> = rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(60)).await;
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let l = Arc::clone(&live);
                    tokio::spawn(async move { l.value().await })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("task").expect("value").to_string());
            }
            out
        });
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "one helper run for one expiry"
        );
        assert!(values.iter().all(|v| v == "value-1"), "{values:?}");
        assert_eq!(live.peek().len(), 2, "the replaced value is still scrubbed");
    }
}
