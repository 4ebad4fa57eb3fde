//! Server plumbing shared by every binary of this workspace.
