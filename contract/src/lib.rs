//! The contract between the binaries of this workspace: the names that the webhook writes into a
//! pod and that the collector, the relay and the tests read back. One definition each, so that a
//! rename is one edit.
