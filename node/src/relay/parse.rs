//! Reads one target's Prometheus text exposition (format 0.0.4) into families
//! and samples, dropping every line it cannot prove well-formed. No I/O.
//!
//! The input comes from a socket that any pod on the node may have created,
//! so nothing here trusts it: every token is validated, bad lines are counted
//! and skipped, and nothing can panic. Values are kept as the validated source
//! token so that the relay never changes a number by reformatting it.
//!
//! Everything borrows from the exposition text: a node's targets send some
//! 13,000 samples per scrape, and a parser that owns each token allocates 13
//! times as often and takes 6 to 9 times as long (`node/benches/parse.rs`,
//! docs/design.md). Only escaped label values and HELP texts are copied.
//!
//! The work is linear in the text and bounded by the caller's count of sample
//! lines: reading stops at the first line past it.

use std::borrow::Cow;
use std::collections::HashMap;

use kube_metrics_exposition::Kind;

mod tokens;
mod value;

pub use tokens::parse_sample;
use tokens::unescape_help;
pub use tokens::{is_label_name, is_metric_name};
pub use value::{VALUE_SPELLINGS, is_sample_value, is_timestamp};

/// One sample line, with label values unescaped.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    /// The value token exactly as the target wrote it (validated as a float).
    pub value: &'a str,
    /// The optional timestamp token (validated as an integer).
    pub timestamp: Option<&'a str>,
    /// The whole line the sample was read from.
    pub line: &'a str,
}

/// Why a sample line was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Not a sample line of text format 0.0.4, or a value or timestamp
    /// Prometheus would refuse.
    Malformed,
    /// More labels than any collector family has; the rest of the line is
    /// not read.
    TooManyLabels,
    /// A label value longer than the relay forwards.
    LabelTooLong,
}

/// The samples of one metric family, as one target declared them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Family<'a> {
    /// Owned: one small copy per family, not per sample.
    pub name: String,
    /// HELP text, unescaped.
    pub help: Option<Cow<'a, str>>,
    /// TYPE, when the target declared one.
    pub kind: Option<Kind>,
    pub samples: Vec<Sample<'a>>,
}

/// A parsed exposition plus how many lines were thrown away, by [`Fault`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed<'a> {
    pub families: Vec<Family<'a>>,
    pub malformed: u64,
    pub too_many_labels: u64,
    pub label_too_long: u64,
    /// Sample lines read, whatever became of them.
    pub sample_lines: usize,
    /// There were more sample lines than the caller allowed; reading stopped.
    pub too_many_samples: bool,
}

// === impl Parsed ===

impl<'a> Parsed<'a> {
    /// Parses a whole exposition. Never fails: bad lines are counted.
    pub fn from_text(text: &'a str) -> Self {
        Self::read(text, usize::MAX)
    }

    /// Parses an exposition up to its `max_samples`th sample line; one more
    /// stops the reading and sets `too_many_samples`.
    pub fn read(text: &'a str, max_samples: usize) -> Self {
        let mut parsed = Self::default();
        // Where each family name is in `families`, so that finding a family
        // does not scan all of them.
        let mut index: HashMap<&'a str, usize> = HashMap::new();
        // Index into `families` of the family the last HELP/TYPE named.
        let mut current: Option<usize> = None;
        for line in text.split('\n') {
            let read = match line.strip_prefix('#') {
                Some(comment) => match parsed.comment(comment, &mut index, &mut current) {
                    true => Ok(()),
                    false => Err(Fault::Malformed),
                },
                None if line.trim().is_empty() => Ok(()),
                None if parsed.sample_lines == max_samples => {
                    parsed.too_many_samples = true;
                    break;
                }
                None => {
                    parsed.sample_lines += 1;
                    parse_sample(line).map(|s| parsed.push_sample(s, &mut index, current))
                }
            };
            if let Err(fault) = read {
                parsed.count(fault);
            }
        }
        parsed
    }

    fn count(&mut self, fault: Fault) {
        let count = match fault {
            Fault::Malformed => &mut self.malformed,
            Fault::TooManyLabels => &mut self.too_many_labels,
            Fault::LabelTooLong => &mut self.label_too_long,
        };
        *count += 1;
    }

    /// Handles `# HELP`/`# TYPE`; other comments are ignored. Returns false
    /// for a malformed or contradictory metadata line.
    fn comment(
        &mut self,
        comment: &'a str,
        index: &mut HashMap<&'a str, usize>,
        current: &mut Option<usize>,
    ) -> bool {
        let mut words = comment
            .trim_start_matches([' ', '\t'])
            .splitn(2, [' ', '\t']);
        let keyword = words.next().unwrap_or_default();
        if keyword != "HELP" && keyword != "TYPE" {
            return true;
        }
        let rest = words
            .next()
            .unwrap_or_default()
            .trim_start_matches([' ', '\t']);
        let (name, arg) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
        if !is_metric_name(name) {
            return false;
        }
        let at = self.family_index(name, index);
        *current = Some(at);
        let Some(family) = self.families.get_mut(at) else {
            return false;
        };
        if keyword == "HELP" {
            let Some(help) = unescape_help(arg) else {
                return false;
            };
            if family.help.is_some() {
                return false;
            }
            family.help = Some(help);
            return true;
        }
        let Some(kind) = Kind::from_text(arg.trim()) else {
            return false;
        };
        // A TYPE after the family's samples or a second TYPE is invalid in
        // the format; keep the first declaration.
        if family.kind.is_some() || !family.samples.is_empty() {
            return false;
        }
        family.kind = Some(kind);
        true
    }

    fn family_index(&mut self, name: &'a str, index: &mut HashMap<&'a str, usize>) -> usize {
        *index.entry(name).or_insert_with(|| {
            self.families.push(Family {
                name: name.to_owned(),
                ..Family::default()
            });
            self.families.len() - 1
        })
    }

    /// A sample belongs to the family last named by HELP/TYPE when its name
    /// fits that family's type; otherwise to the family of its own name.
    fn push_sample(
        &mut self,
        sample: Sample<'a>,
        index: &mut HashMap<&'a str, usize>,
        current: Option<usize>,
    ) {
        let fits = current
            .and_then(|i| self.families.get(i))
            .is_some_and(|f| belongs_to(sample.name, &f.name, f.kind));
        let at = match current {
            Some(at) if fits => at,
            _ => self.family_index(sample.name, index),
        };
        if let Some(family) = self.families.get_mut(at) {
            family.samples.push(sample);
        }
    }
}

/// Whether a sample name is part of a family of this name and type.
pub fn belongs_to(sample: &str, family: &str, kind: Option<Kind>) -> bool {
    if sample == family {
        return true;
    }
    let Some(suffix) = sample.strip_prefix(family) else {
        return false;
    };
    match kind {
        Some(Kind::Histogram) => matches!(suffix, "_bucket" | "_sum" | "_count"),
        Some(Kind::Summary) => matches!(suffix, "_sum" | "_count"),
        _ => false,
    }
}

/// The well-formed samples called exactly `name`, in order, without parsing
/// the rest. Such a sample always lands in the family of its own name unless
/// `name` ends in a histogram or summary suffix.
pub fn samples_named<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = Sample<'a>> {
    text.split('\n')
        .filter(move |line| line.starts_with(name))
        .filter_map(|line| parse_sample(line).ok())
        .filter(move |sample| sample.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_histogram_suffixes_under_their_family() {
        let text = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 1\nother 3\n";
        let parsed = Parsed::from_text(text);
        let names: Vec<_> = parsed
            .families
            .iter()
            .map(|f| (f.name.as_str(), f.samples.len()))
            .collect();
        assert_eq!(names, vec![("h", 3), ("other", 1)]);
        assert_eq!(parsed.malformed, 0);
    }

    #[test]
    fn counts_bad_metadata_and_keeps_first_type() {
        let text = "# TYPE a gauge\n# TYPE a counter\n# TYPE b bogus\n# HELP 1x y\n# random comment\na 1\n";
        let parsed = Parsed::from_text(text);
        assert_eq!(parsed.malformed, 3);
        assert_eq!(
            parsed
                .families
                .first()
                .and_then(|f| f.kind)
                .map(Kind::as_str),
            Some("gauge")
        );
    }

    #[test]
    fn counts_refused_lines_by_fault_and_stops_past_the_sample_cap() {
        let long = "x".repeat(kube_metrics_contract::limits::MAX_LABEL_VALUE_BYTES + 1);
        let text = format!(
            "a 1\nb{{l=\"{long}\"}} 1\nc{{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\"}} 1\nd{{ 1\n# TYPE e gauge\ne 1\n"
        );
        let parsed = Parsed::read(&text, 5);
        let counts = (
            parsed.malformed,
            parsed.too_many_labels,
            parsed.label_too_long,
        );
        assert_eq!(counts, (1, 1, 1));
        assert_eq!((parsed.sample_lines, parsed.too_many_samples), (5, false));
        let parsed = Parsed::read(&text, 4);
        assert_eq!((parsed.sample_lines, parsed.too_many_samples), (4, true));
        let samples: usize = parsed.families.iter().map(|f| f.samples.len()).sum();
        assert_eq!(samples, 1, "only a's sample of the four lines read");
    }

    #[test]
    fn unescapes_help() {
        let parsed = Parsed::from_text("# HELP a x\\\\y\\nz\\q\n");
        assert_eq!(
            parsed
                .families
                .first()
                .and_then(|f| f.help.clone())
                .as_deref(),
            Some("x\\y\nz\\q")
        );
    }
}
