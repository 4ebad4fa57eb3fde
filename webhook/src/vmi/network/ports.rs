//! The ports an interface forwards (masquerade) or binds (passt): `ports` and `portRanges` read
//! leniently into inclusive TCP ranges.
use serde_json::{Map, Value};

use super::list;

/// The transport of a forwarded port; only TCP matters to us, anything unreadable may be TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// One `ports` entry or `portRanges` entry, as an inclusive range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRule {
    /// `None`: a protocol we do not know, which might cover TCP.
    protocol: Option<Protocol>,
    start: u16,
    end: u16,
}

impl PortRule {
    fn covers_tcp(&self, port: u16) -> bool {
        matches!(self.protocol, Some(Protocol::Tcp) | None)
            && (self.start..=self.end).contains(&port)
    }
}

/// The interface's `ports` and `portRanges` together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ports {
    /// Neither lists anything: KubeVirt forwards (masquerade) or may bind (passt) every port.
    Unlisted,
    Listed(Vec<PortRule>),
    /// Present but not readable (a negative port, a string): we cannot tell what is forwarded.
    Unreadable,
}

impl Ports {
    /// Whether TCP `port` is listed; `None` when the list is unreadable.
    pub(super) fn covers_tcp(&self, port: u16) -> Option<bool> {
        match self {
            Ports::Unlisted => Some(false),
            Ports::Listed(rules) => Some(rules.iter().any(|rule| rule.covers_tcp(port))),
            Ports::Unreadable => None,
        }
    }

    /// The interface's `ports` and `portRanges`; one unreadable entry makes all unreadable.
    pub(super) fn of(iface: &Map<String, Value>) -> Ports {
        let (Some(ports), Some(ranges)) = (list(iface.get("ports")), list(iface.get("portRanges")))
        else {
            return Ports::Unreadable;
        };
        if ports.is_empty() && ranges.is_empty() {
            return Ports::Unlisted;
        }
        let singles = ports.iter().map(|entry| {
            let port = port_number(entry.get("port"))?;
            Some(PortRule {
                protocol: protocol(entry.get("protocol"))?,
                start: port,
                end: port,
            })
        });
        let spans = ranges.iter().map(|entry| {
            let (start, end) = (
                port_number(entry.get("start"))?,
                port_number(entry.get("end"))?,
            );
            (start <= end).then_some(())?;
            Some(PortRule {
                protocol: protocol(entry.get("protocol"))?,
                start,
                end,
            })
        });
        match singles.chain(spans).collect::<Option<Vec<_>>>() {
            Some(rules) => Ports::Listed(rules),
            None => Ports::Unreadable,
        }
    }
}

fn port_number(value: Option<&Value>) -> Option<u16> {
    value
        .and_then(Value::as_u64)
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port != 0)
}

/// `Some(None)`: a protocol we do not know (may cover TCP); `None`: not readable at all.
fn protocol(value: Option<&Value>) -> Option<Option<Protocol>> {
    match value {
        None | Some(Value::Null) => Some(Some(Protocol::Tcp)), // KubeVirt's default
        Some(Value::String(name)) if name.eq_ignore_ascii_case("TCP") => Some(Some(Protocol::Tcp)),
        Some(Value::String(name)) if name.eq_ignore_ascii_case("UDP") => Some(Some(Protocol::Udp)),
        Some(Value::String(name)) if name.eq_ignore_ascii_case("SCTP") => {
            Some(Some(Protocol::Sctp))
        }
        Some(Value::String(_)) => Some(None),
        Some(_) => None,
    }
}
