//! What the host helper tells the guest's init in the first frame.

use serde::{Deserialize, Serialize};

/// The guest run's configuration (JSON in a [`super::frame::Kind::Config`] frame).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct GuestConfig {
    /// The command and its arguments (raw bytes).
    pub argv: Vec<Vec<u8>>,
    /// `NAME=VALUE` entries (raw bytes), the outer sandbox's scrubbed environment.
    pub env: Vec<Vec<u8>>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    /// Read-write shares: the tag of share `i` is `w{i}`, mounted at `shares[i]`.
    pub shares: Vec<String>,
    /// Whether the guest forwards 127.0.0.1:{3128,1080,53} to the door.
    pub net: bool,
    /// Rows and columns of the host terminal when interactive.
    pub tty: Option<(u16, u16)>,
    /// Ports on which connections to any address are captured and sent to their original
    /// destination through the outer sandbox (programs that ignore the proxy variables).
    #[serde(default)]
    pub transparent_ports: Vec<u16>,
    /// Whether tags [`HOME_TAG`] and [`VARTMP_TAG`] share the outer `$HOME` and `/var/tmp` (the
    /// outer private layer, or a named sandbox's kept layer). Every `cordon run` sets it; only
    /// the KVM probe's boot does not (its `$HOME` stays read-only).
    #[serde(default)]
    pub kept: bool,
    /// Print guest-side notes (the inner wall's Landlock ABI).
    pub verbose: bool,
}

/// The mount tag of read-write share `i`.
pub fn share_tag(i: usize) -> String {
    format!("w{i}")
}

/// The mount tag of the read-only root share.
pub const ROOT_TAG: &str = "root";
/// The mount tag of the kept `$HOME` (named sandboxes).
pub const HOME_TAG: &str = "home";
/// The mount tag of the kept `/var/tmp` (named sandboxes).
pub const VARTMP_TAG: &str = "vartmp";
/// The virtio-serial port's name.
pub const PORT_NAME: &str = "cordon.ctl";
/// Door ports the guest may open streams to (TCP).
pub const DOOR_PORTS: &[u16] = &[3128, 1080, 53];
