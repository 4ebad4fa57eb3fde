//! The checklist as text or JSON, and the exit code it earns; no I/O.

use serde::Serialize;

use super::line::{Outcome, Section};
use crate::text::escape;

/// How many lines ended each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub not_checked: usize,
    pub unknown: usize,
}

impl Summary {
    pub fn of(sections: &[Section]) -> Summary {
        let mut summary = Summary::default();
        for line in sections.iter().flat_map(|s| &s.lines) {
            *match line.outcome {
                Outcome::Passed => &mut summary.passed,
                Outcome::Failed => &mut summary.failed,
                Outcome::NotChecked => &mut summary.not_checked,
                Outcome::Unknown => &mut summary.unknown,
            } += 1;
        }
        summary
    }
}

/// What the checklist as a whole says, for the exit code (docs/kubectl-kmc.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overall {
    /// Nothing failed and nothing asked for was out of reach (lines not checked by choice allowed).
    Passed,
    /// Some line failed: there is something to fix, whatever else could not be looked at.
    Failed,
    /// Nothing failed, but something asked for could not be looked at.
    Incomplete,
}

impl Summary {
    pub fn overall(&self) -> Overall {
        if self.failed > 0 {
            Overall::Failed
        } else if self.unknown > 0 {
            Overall::Incomplete
        } else {
            Overall::Passed
        }
    }
}

/// The checklist as text: a title per section, a mark per line (`√` passed, `×` failed, `-` not
/// checked, `?` could not be checked), details indented; every line escaped, so that a tenant's
/// annotation stays on its line and cannot drive the terminal.
pub fn text(sections: &[Section]) -> String {
    let mut out = String::new();
    for section in sections {
        let title = escape(&section.title);
        out.push_str(&format!("{title}\n{}\n", "-".repeat(title.chars().count())));
        for line in &section.lines {
            let mark = match line.outcome {
                Outcome::Passed => "√",
                Outcome::Failed => "×",
                Outcome::NotChecked => "-",
                Outcome::Unknown => "?",
            };
            out.push_str(&format!("{mark} {}\n", escape(&line.text)));
            for detail in &line.detail {
                out.push_str(&format!("    {}\n", escape(detail)));
            }
        }
        out.push('\n');
    }
    let summary = Summary::of(sections);
    let mut counts = Vec::new();
    for (n, what) in [
        (summary.failed, "failed"),
        (summary.unknown, "could not be checked"),
        (summary.not_checked, "not checked"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {what}"));
        }
    }
    let mark = match summary.overall() {
        Overall::Passed => "√",
        Overall::Failed => "×",
        Overall::Incomplete => "?",
    };
    out.push_str(&format!("Status check results are {mark}"));
    if !counts.is_empty() {
        out.push_str(&format!(" ({})", counts.join(", ")));
    }
    out.push('\n');
    out
}

#[derive(Serialize)]
struct Json<'a> {
    sections: &'a [Section],
    summary: Summary,
}

/// The checklist as one JSON document: `sections` (title, lines with `outcome`, `text`,
/// `detail`) and `summary` (counts per outcome). JSON escapes control characters itself.
pub fn json(sections: &[Section]) -> Result<String, serde_json::Error> {
    let document = Json {
        sections,
        summary: Summary::of(sections),
    };
    Ok(serde_json::to_string_pretty(&document)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::line::Line;

    fn section(lines: Vec<Line>) -> Vec<Section> {
        vec![Section {
            title: "t".into(),
            lines,
        }]
    }

    #[test]
    fn text_marks_each_outcome_and_counts_them() {
        let sections = section(vec![
            Line::pass("a"),
            Line::fail("b", vec!["fix: c".into()]),
            Line::not_checked("d", "why"),
            Line::new(Outcome::Unknown, "e", vec!["unreachable".into()]),
        ]);
        assert_eq!(
            text(&sections),
            "t\n-\n√ a\n× b\n    fix: c\n- d\n    why\n? e\n    unreachable\n\n\
             Status check results are × (1 failed, 1 could not be checked, 1 not checked)\n"
        );
    }

    #[test]
    fn verdicts() {
        let cases = [
            (vec![Line::pass("a")], Overall::Passed, "√"),
            (
                vec![Line::pass("a"), Line::not_checked("b", "w")],
                Overall::Passed,
                "√ (1 not checked)",
            ),
            (
                vec![Line::new(Outcome::Unknown, "a", vec![])],
                Overall::Incomplete,
                "? (1 could not be checked)",
            ),
            (
                vec![
                    Line::fail("a", vec![]),
                    Line::new(Outcome::Unknown, "b", vec![]),
                ],
                Overall::Failed,
                "× (1 failed, 1 could not be checked)",
            ),
        ];
        for (lines, verdict, last) in cases {
            let sections = section(lines);
            assert_eq!(Summary::of(&sections).overall(), verdict, "{last}");
            let rendered = text(&sections);
            assert!(
                rendered.ends_with(&format!("Status check results are {last}\n")),
                "{rendered}"
            );
        }
    }

    #[test]
    fn json_keeps_hostile_text_inert() {
        let sections = section(vec![Line::fail("b\u{1b}[2J", vec!["x\ny".into()])]);
        let document: serde_json::Value = serde_json::from_str(&json(&sections).unwrap()).unwrap();
        assert_eq!(document["sections"][0]["lines"][0]["outcome"], "failed");
        assert_eq!(document["sections"][0]["lines"][0]["text"], "b\u{1b}[2J");
        assert_eq!(document["summary"]["failed"], 1);
        assert!(!json(&sections).unwrap().contains('\u{1b}'));
    }
}
