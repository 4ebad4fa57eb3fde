//! The recommendation as a table with its reasoning, as merge patches an admin can apply, or as
//! JSON; no I/O. Every line is escaped ([`crate::text::escape`]), and a printed command names a VM
//! only when its name and namespace are Kubernetes names, shell-quoted besides: the names come from
//! label values, which whoever wrote the series chose.

mod patches;
mod reasoning;
mod report;
#[cfg(test)]
mod tests;

use anyhow::Result;

pub use reasoning::ratio_text;

use super::math::{Advice, Settings};
use super::target::Target;
use crate::cli::RecommendOutput;
use crate::text::to_json;

/// The table, the YAML patches or the JSON, for a cluster that was not read: the KubeVirt CR at
/// its usual name takes the ratio.
pub fn render(advice: &Advice, settings: &Settings, output: RecommendOutput) -> Result<String> {
    render_for(advice, settings, &Target::default(), output)
}

/// The table, the YAML patches or the JSON, for where `target` says the ratio is set.
pub fn render_for(
    advice: &Advice,
    settings: &Settings,
    target: &Target,
    output: RecommendOutput,
) -> Result<String> {
    match output {
        RecommendOutput::Table => Ok(report::render(advice, settings, target)),
        RecommendOutput::Yaml => patches::render(advice, settings, target),
        RecommendOutput::Json => Ok(to_json(advice)?),
    }
}
