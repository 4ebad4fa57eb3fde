//! The answer being assembled from the planned targets, and its text. The text
//! is written once, straight into a buffer of its final size: each planned line
//! is read again from its target and relabelled there, so that nothing of the
//! answer exists twice (docs/threat-model.md, "The relay's bounds").

use kube_metrics_contract::limits::RELAY_OWN_BYTES;
use kube_metrics_contract::metrics::FAMILIES;
use kube_metrics_exposition::{Format, Kind, Writer};

use super::plan::{Help, N, Planned, help_line_bytes, write_line};
use super::{Rejected, Room};
use crate::relay::parse::parse_sample;

/// The accepted targets, in order, and what they add up to.
#[derive(Debug, Default)]
pub(super) struct Answer<'a> {
    targets: Vec<Planned<'a>>,
    /// Each family's HELP while every target that declared it agrees on it.
    help: [Help<'a>; N],
    /// The identities served so far, and what their lines weigh.
    pub room: Room<'a>,
}

// === impl Answer ===

impl<'a> Answer<'a> {
    /// Takes a planned target in, unless the answer would then hold more
    /// series or bytes than a node's worth of collectors at their caps.
    pub fn add(&mut self, planned: Planned<'a>) -> Result<(), Rejected> {
        let bytes = planned.line_bytes + planned.help_bytes;
        self.room
            .take(planned.identity, planned.lines.len(), bytes)?;
        for (agreed, declared) in self.help.iter_mut().zip(&planned.help) {
            *agreed = match (agreed.take(), declared) {
                (agreed, None) => agreed,
                (None, Some(help)) => Some(help.clone()),
                (Some(agreed), Some(help)) if agreed == *help => Some(agreed),
                (Some(_), Some(_)) => Some(None),
            };
        }
        self.targets.push(planned);
        Ok(())
    }

    /// Text format 0.0.4 of every accepted target's lines, family by family
    /// in the contract's order, each target's in turn, with room left for the
    /// relay's own families.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(self.text_bytes() + RELAY_OWN_BYTES);
        for (f, family) in FAMILIES.iter().enumerate() {
            if !self.has_lines(f) {
                continue;
            }
            let kind = Kind::from_text(family.kind);
            let help = self.help.get(f).and_then(|h| h.as_ref()?.as_deref());
            let mut writer = Writer::new(&mut out, Format::Text);
            writer.declared(family.name, help, kind);
            writer.header_now();
            drop(writer);
            for target in &self.targets {
                for line in target.lines_of(f) {
                    // Read and checked whole when planned: it reads the same again.
                    if let Ok(sample) = parse_sample(line) {
                        write_line(&mut out, &sample, target.identity);
                    }
                }
            }
        }
        // Every piece is UTF-8: the targets' text, ASCII escapes and ASCII syntax.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// The bytes [`Answer::render`] writes: every line, and each family's
    /// header.
    fn text_bytes(&self) -> usize {
        let lines: usize = self.targets.iter().map(|t| t.line_bytes).sum();
        let headers: usize = FAMILIES
            .iter()
            .zip(&self.help)
            .enumerate()
            .filter(|(f, _)| self.has_lines(*f))
            .map(|(_, (family, help))| {
                let help = help.as_ref().and_then(|h| h.as_deref());
                let type_line = "# TYPE ".len() + family.name.len() + 1 + family.kind.len() + 1;
                type_line + help.map_or(0, |h| help_line_bytes(family.name, h))
            })
            .sum();
        lines + headers
    }

    /// Whether any target forwards a line of family `f`: the text format has
    /// no empty family, so only those get a header.
    fn has_lines(&self, f: usize) -> bool {
        self.targets.iter().any(|t| !t.lines_of(f).is_empty())
    }
}
