//! The pod's owning `VirtualMachineInstance` (kubevirt.io/v1): what it says about whether a shared PID
//! namespace is safe (docs/kubevirt.md §3.2) and whether `podIP:port` reaches the sidecar (docs/kubevirt.md §4).
//!
//! - [`facts`]: raw VMI JSON -> [`VmiFacts`]; no I/O.
//! - [`network`]: the pod-network interface -> [`ScrapePath`]; no I/O.
//! - `presence`: whether a field is set, as KubeVirt reads it; shared by the two above.
//! - [`verdict`]: VMI facts or pod-spec signals -> one [`Verdict`] that says which source decided; no I/O.
//! - [`cache`]: the facts of every VMI, fed by the watch; no I/O.
//! - [`lookup`]: the only I/O: the watch behind that cache, with a GET on a miss, inside a time budget.
pub mod cache;
pub mod facts;
pub mod lookup;
pub mod network;
mod presence;
pub mod verdict;

pub use crate::reason::UnsafeReason;
pub use facts::{FactsError, VmiFacts};
pub use lookup::{Lookup, Unavailable, VmiLookup, VmiRef};
pub use network::{PathDecision, PathReason, ScrapePath};
pub use verdict::{Source, Verdict, verdict};
