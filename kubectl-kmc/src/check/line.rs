//! One line of the checklist, with its outcome, and a titled section of them.

/// What became of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Looked at, and right.
    Passed,
    /// Looked at, and wrong: the detail says what to do.
    Failed,
    /// Not looked at, by choice or for want of access (no `--prometheus`, a webhook reached by
    /// URL, an object this user may not read): said, so that a checklist without failures is not
    /// read as covering it.
    NotChecked,
    /// Could not be looked at although asked for (Prometheus unreachable): the checklist is
    /// incomplete, and the command exits as one that could not run.
    Unknown,
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    pub outcome: Outcome,
    pub text: String,
    /// What is wrong and what to do, for a failed line; notes for the others.
    pub detail: Vec<String>,
}

impl Line {
    pub(super) fn new(outcome: Outcome, text: impl Into<String>, detail: Vec<String>) -> Self {
        Self {
            outcome,
            text: text.into(),
            detail,
        }
    }

    pub(super) fn pass(text: impl Into<String>) -> Self {
        Self::new(Outcome::Passed, text, Vec::new())
    }

    pub(super) fn fail(text: impl Into<String>, detail: Vec<String>) -> Self {
        Self::new(Outcome::Failed, text, detail)
    }

    pub(super) fn not_checked(text: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(Outcome::NotChecked, text, vec![why.into()])
    }

    pub(super) fn with(mut self, note: impl Into<String>) -> Self {
        self.detail.push(note.into());
        self
    }
}

/// A titled group of lines.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Section {
    pub title: String,
    pub lines: Vec<Line>,
}
