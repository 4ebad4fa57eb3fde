//! `kube-metrics-webhook`: a mutating admission webhook that injects `kube-metrics-collector` into
//! opted-in KubeVirt virt-launcher pods, only where that is safe.
//!
//! What it serves: `POST /mutate` over HTTPS on `--listen` (the API server's AdmissionReview v1
//! for Pod CREATE), and `GET /healthz`, `/readyz`, `/metrics` over plain HTTP on `--admin-listen`.
//! What it reads: the request body (the pod in it); the serving certificate and key from
//! `--tls-cert`/`--tls-key`, re-read when the mounted Secret is rotated; and, unless `--vmi-lookup
//! off`, the pod's owning VirtualMachineInstance, only by the uid the pod states and in the
//! request's namespace (a watch-backed cache with a GET on a miss, within `--vmi-lookup-budget`;
//! read-only): a review sent by anyone must not learn about other namespaces' VMIs. It never denies a pod (an internal error admits it unpatched,
//! with a warning), never waits for the API server longer than the budget, and keeps no state
//! between requests besides its metrics and the VMI cache. The rules: docs/webhook.md.
//!
//! `kube-metrics-webhook certgen` is a one-shot helper for clusters without cert-manager: it
//! creates the serving Secret (CA-signed) if absent and patches `caBundle` into the
//! MutatingWebhookConfiguration; with `--out-dir` it only writes the files.
//!
//! Layout: `args` (flags -> config), `serve` (HTTPS accept loop, the `/mutate` route), `admin`
//! (health and metrics listener), `tls` (certificate parsing and hot reload), `metrics`,
//! `certgen`, `vmi` (VMI facts and verdict without I/O; `vmi::lookup`, the one I/O edge); the
//! admission logic is `policy` -> `decide` -> `patch`, all without I/O, with `quantity` (Kubernetes
//! resource quantities) under both `policy` and `decide`, and `reason` (the closed set of skip
//! reasons, shared by `vmi` and `decide`).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod args;
pub mod certgen;
pub mod decide;
pub mod log;
pub mod metrics;
pub mod patch;
pub mod policy;
pub mod quantity;
pub mod reason;
pub mod serve;
pub mod state;
pub mod tls;
pub mod vmi;

pub use args::Args;
