//! Which binding connects the pod network to the guest, from the interface's keys.
use serde_json::{Map, Value};

use crate::vmi::presence::is_set;

/// How the pod network is bound to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    Masquerade,
    Bridge,
    /// Core `passt: {}` (up to v1.2), core `passtBinding: {}` (v1.9), or the plugin `binding: {name: passt}`.
    Passt,
    Sriov,
    Slirp,
    Macvtap,
    /// A network binding plugin by its registered name (`managedTap` plugins, `l2bridge`, ...).
    Plugin(String),
    /// None set: the cluster's default binding.
    Default,
    /// More than one set.
    Ambiguous,
}

impl Binding {
    /// The binding an interface sets; several at once are [`Binding::Ambiguous`].
    pub(super) fn of(iface: &Map<String, Value>) -> Binding {
        let set = |key: &str| is_set(iface.get(key));
        let mut found = Vec::new();
        if set("masquerade") {
            found.push(Binding::Masquerade);
        }
        if set("bridge") {
            found.push(Binding::Bridge);
        }
        if set("passt") || set("passtBinding") {
            found.push(Binding::Passt);
        }
        if set("sriov") {
            found.push(Binding::Sriov);
        }
        if set("slirp") {
            found.push(Binding::Slirp);
        }
        if set("macvtap") {
            found.push(Binding::Macvtap);
        }
        if set("binding") {
            match iface
                .get("binding")
                .and_then(|binding| binding.get("name"))
                .and_then(Value::as_str)
            {
                Some("passt") => found.push(Binding::Passt),
                Some(name) => found.push(Binding::Plugin(name.to_owned())),
                None => found.push(Binding::Ambiguous),
            }
        }
        match found.len() {
            0 => Binding::Default,
            1 => found.pop().unwrap_or(Binding::Ambiguous),
            _ => Binding::Ambiguous,
        }
    }
}
