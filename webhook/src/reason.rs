//! Why a pod is not injected: the closed set of names the webhook shares with `kubectl kmc`, which
//! lives in the contract (docs/webhook.md, "Skip reasons").

pub use kube_metrics_contract::skip::{SkipReason, UnsafeReason};
