//! What the kubelet wrote on the node about each pod, read back as the node agents trust it: the
//! pod's namespace and name from its log directory (`logs`), the webhook's downward-API volume
//! and whether it routes the pod to the relay (`attest`), the pod a process runs in from its
//! cgroup path (`cgroup`). Nothing here comes from a process's own say.

pub mod attest;
pub mod cgroup;
pub mod logs;

/// A pod as the kubelet attests it: its namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    pub namespace: String,
    pub pod: String,
}
