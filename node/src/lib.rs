//! What runs once per node, as subcommands of `kube-metrics-collector`:
//!
//! - [`relay`]: serves, for the pods whose network belongs to the guest, what their injected
//!   collectors answer on their Unix sockets, each series under the pod the kubelet attests;
//! - [`collector`]: the opt-in hostPID node collector, which reads the launcher pods the webhook
//!   did not inject from the host's `/proc` with the collector library;
//! - [`kubelet`]: what both trust about a pod, read from what the kubelet wrote on the node: its
//!   namespace and name (pod log directories), its downward-API volume, its cgroup path.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod collector;
pub mod kubelet;
pub mod relay;
