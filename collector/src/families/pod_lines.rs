//! The node collector's pods, each written once as sample lines and gathered family by family
//! under one header: what the node's `/metrics` serves, without any text read back.

use std::ops::Range;

use kube_metrics_contract::metrics::FAMILIES;
use kube_metrics_exposition::{Format, Kind, Writer};

use super::{Builder, Metrics};

/// One pod's samples, `namespace` and `pod` first on each, with no HELP or TYPE; each family's
/// lines apart. The buffers are kept from one scrape to the next.
#[derive(Debug, Default)]
pub struct PodLines {
    buf: Vec<u8>,
    sections: Vec<Section>,
}

/// Where one family's lines are in [`PodLines`], and its header.
#[derive(Clone, Debug)]
pub(super) struct Section {
    family: &'static str,
    help: &'static str,
    kind: Kind,
    lines: Range<usize>,
}

// === impl Section ===

impl Section {
    pub(super) fn new(family: &'static str, help: &'static str, kind: Kind, at: usize) -> Self {
        Self {
            family,
            help,
            kind,
            lines: at..at,
        }
    }

    pub(super) fn end(&mut self, at: usize) {
        self.lines.end = at;
    }
}

// === impl PodLines ===

impl PodLines {
    /// Writes the families of `m`, whose scope names the pod (`namespace` and `pod`, which lead
    /// every line), replacing what these lines held.
    pub fn write(&mut self, m: &Metrics) {
        self.buf.clear();
        self.sections.clear();
        let mut writer = Writer::headless(&mut self.buf);
        writer.set_lead(&[
            (
                "namespace",
                m.scope.namespace.as_deref().unwrap_or_default(),
            ),
            ("pod", m.scope.pod.as_deref().unwrap_or_default()),
        ]);
        Builder::new(writer, &m.scope, Some(&mut self.sections)).families(m);
    }

    /// How many series the pod has.
    pub fn series(&self) -> usize {
        self.buf.iter().filter(|&&b| b == b'\n').count()
    }

    /// The bytes of its lines.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The pod's lines of `family`, with its header; empty lines when it has none.
    fn family(&self, family: &str) -> Option<(&Section, &[u8])> {
        let section = self.sections.iter().find(|s| s.family == family)?;
        Some((section, self.buf.get(section.lines.clone())?))
    }
}

/// Text format 0.0.4 of `pods`, family by family in the contract's order, each pod's lines of a
/// family in turn under the family's one HELP and TYPE; a family no pod has is left out.
pub fn write_pods<'p>(pods: impl Iterator<Item = &'p PodLines> + Clone, out: &mut Vec<u8>) {
    for family in &FAMILIES {
        let mut lines = pods
            .clone()
            .filter_map(|pod| pod.family(family.name))
            .filter(|(_, lines)| !lines.is_empty())
            .peekable();
        let Some((section, _)) = lines.peek() else {
            continue;
        };
        let mut writer = Writer::new(out, Format::Text);
        writer.family(section.family, section.help, section.kind);
        writer.header_now();
        drop(writer);
        for (_, lines) in lines {
            out.extend_from_slice(lines);
        }
    }
}
