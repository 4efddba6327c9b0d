//! The audit trail: JSON lines, one event per decision cordon takes or observes.

use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// A cloneable sink; a disabled one drops events.
#[derive(Clone, Default)]
pub struct Audit {
    file: Option<Arc<Mutex<File>>>,
}

impl Audit {
    pub fn open(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        // `-`: the standard output cordon was given, as is (in a pod, what `kubectl logs`
        // shows; re-opening /dev/stdout there is refused: the pipe belongs to the node's root).
        let file = if path == Path::new("-") {
            use std::os::fd::AsFd;
            std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .map(File::from)
                .map_err(|e| format!("cannot use standard output for audit events: {e}"))?
        } else {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open the audit file {}: {e}", path.display()))?
        };
        Ok(Self {
            file: Some(Arc::new(Mutex::new(file))),
        })
    }

    /// Whether events are written at all (so costly fields can be skipped otherwise).
    pub fn enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Appends one event; `event` names it, `fields` adds to it.
    pub fn event(&self, event: &str, fields: Value) {
        let Some(file) = &self.file else { return };
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut obj = json!({ "ts": ts, "event": event, "pid": std::process::id() });
        if let (Some(o), Value::Object(extra)) = (obj.as_object_mut(), fields) {
            o.extend(extra);
        }
        let mut line = obj.to_string();
        line.push('\n');
        if let Ok(mut f) = file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}
