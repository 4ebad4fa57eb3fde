//! Server plumbing shared by every binary of this workspace: listeners (`listen`), the one accept
//! loop with its timeouts, connection cap, accept-error backoff and drain (`serve`), the one
//! shutdown path (`shutdown`), the one logging setup (`log`) and the plain-text answers every
//! server gives (`response`).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod activity;
pub mod backoff;
pub mod listen;
pub mod log;
pub mod response;
pub mod serve;
pub mod shutdown;

use std::time::Duration;

pub use activity::Activity;
pub use listen::{Listener, Peer, Stream};
pub use serve::{ConnectionStats, Handshake, Kind, Options, Plain, serve, serve_with};
pub use shutdown::Shutdown;

/// A client must send its request head within this time; hyper applies it to an idle keep-alive
/// connection too. Long enough for a slow link (every client here sends its head in one packet),
/// short enough that a port scanner or a stalled client gives its connection back soon.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time for the per-connection handshake step (the webhook's TLS accept): a handshake is a few
/// round trips, so this only cuts clients that never start or never finish one.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long in-flight requests may finish after shutdown starts. Below the pod's default 30 s
/// termination grace period, so we exit on our own terms before the kubelet sends SIGKILL, and
/// above the longest request we serve on purpose (the webhook gives a body 15 s).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Most connections served at once per listener. Legitimate clients need a handful (a scrape, a
/// probe, the relay, the API server's few keep-alive connections); the cap bounds memory and file
/// descriptors well under the usual soft limit of 1024 (two listeners: 512), leaving room for the
/// collector's /proc files. At the cap the oldest idle connection is closed for the new one
/// (`activity`), so idle clients cannot hold the cap against busy ones.
pub const MAX_CONNECTIONS: usize = 256;

/// Largest request head a connection buffers. Every client here sends a head of a few hundred
/// bytes; hyper's default (~400 KiB) would let each of `MAX_CONNECTIONS` slowloris clients hold
/// 400 KiB, 100 MiB per listener.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
