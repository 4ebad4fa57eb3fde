//! promtool input series reshaped as user-workload monitoring stores them: a relayed series gets
//! the relay's `namespace`/`pod` with the VM's kept as `exported_namespace`/`exported_pod`, and
//! a directly scraped `kubevirt_pod_infra_pod_info` keeps its own `namespace`/`pod` as
//! `exported_*` too (the target's labels win, even when equal).

use crate::manifests::NAMESPACE;
use anyhow::{Context as _, Result};
use kube_metrics_contract::metrics;
use serde_json::Value;

/// The relay pod every relayed series is scraped from.
pub const RELAY_POD: &str = "kube-metrics-collector-relay-x7k2q";

/// A series of a promtool test: its metric name and its labels, values as written (escaped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl Series {
    /// `name{a="x",b="y"}`, as promtool's `series:` writes it.
    pub fn parse(text: &str) -> Result<Self> {
        let (name, rest) = text.split_once('{').unwrap_or((text, "}"));
        let mut inside = rest.strip_suffix('}').context("no closing brace")?.trim();
        let mut labels = Vec::new();
        while !inside.is_empty() {
            let (label, after) = inside.split_once("=\"").context("not label=\"value\"")?;
            let mut end = 0;
            let bytes = after.as_bytes();
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            let value = after.get(..end).context("unterminated value")?;
            labels.push((label.trim().to_owned(), value.to_owned()));
            inside = after
                .get(end + 1..)
                .unwrap_or("")
                .trim_start_matches([',', ' ']);
        }
        Ok(Self {
            name: name.trim().to_owned(),
            labels,
        })
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(l, _)| l == name)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: &str) {
        match self.labels.iter_mut().find(|(l, _)| l == name) {
            Some(label) => label.1 = value.to_owned(),
            None => self.labels.push((name.to_owned(), value.to_owned())),
        }
    }

    /// As the relay's target delivers it under user-workload monitoring.
    pub fn relayed(&self) -> Self {
        let mut out = self.clone();
        for label in ["namespace", "pod"] {
            if let Some(value) = self.label(label) {
                out.set(&format!("exported_{label}"), value);
            }
        }
        out.set("namespace", NAMESPACE);
        out.set("pod", RELAY_POD);
        out
    }

    /// As a launcher pod's own target delivers it under user-workload monitoring.
    pub fn direct(&self) -> Self {
        let mut out = self.clone();
        if self.name == metrics::POD_INFO {
            for label in ["namespace", "pod"] {
                if let Some(value) = self.label(label) {
                    out.set(&format!("exported_{label}"), value);
                }
            }
        }
        out
    }

    pub fn text(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(l, v)| format!("{l}=\"{v}\""))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// A promtool test file (parsed) with every collector series of a pod reshaped: the pods of each
/// test group, in the order they first appear, alternately relayed (first, third, …) and
/// directly scraped. The expected values stay as they are: the rules must find every VM either
/// way. Other series (KubeVirt's, cAdvisor's, the relay's and the webhook's own) are left alone.
pub fn reshape(tests: &mut Value) -> Result<usize> {
    let mut relayed = 0;
    for group in tests["tests"].as_array_mut().into_iter().flatten() {
        let mut routes = Routes::default();
        for input in group["input_series"].as_array_mut().into_iter().flatten() {
            let text = input["series"].as_str().context("series without text")?;
            let series = Series::parse(text)?;
            let shaped = routes.shape(&series);
            if shaped != series {
                input["series"] = Value::String(shaped.text());
            }
        }
        relayed += routes.relayed;
    }
    Ok(relayed)
}

#[derive(Debug, Default)]
struct Routes {
    pods: Vec<String>,
    relayed: usize,
}

impl Routes {
    /// `series` as its pod's route delivers it; any other series as it is.
    fn shape(&mut self, series: &Series) -> Series {
        let Some(pod) = series
            .label("pod")
            .filter(|_| metrics::family(&series.name).is_some())
        else {
            return series.clone();
        };
        let index = self.pods.iter().position(|p| p == pod).unwrap_or_else(|| {
            self.pods.push(pod.to_owned());
            self.pods.len() - 1
        });
        if index % 2 == 0 {
            self.relayed += 1;
            series.relayed()
        } else {
            series.direct()
        }
    }
}

/// OpenMetrics history (`name{labels} value timestamp` lines) reshaped as [`reshape`] does, and
/// how many lines were relayed.
pub fn reshape_openmetrics(text: &str) -> Result<(String, usize)> {
    let mut routes = Routes::default();
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        match line.find("} ").filter(|_| !line.starts_with('#')) {
            Some(end) => {
                let series = Series::parse(&line[..=end])?;
                let shaped = routes.shape(&series);
                if shaped == series {
                    out.push_str(line);
                } else {
                    out.push_str(&shaped.text());
                    out.push_str(&line[end + 1..]);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    Ok((out, routes.relayed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_round_trip_and_reshape() {
        let text = r#"kubevirt_pod_infra_pod_info{namespace="vms",pod="p",name="a\"b"}"#;
        let series = Series::parse(text).unwrap();
        assert_eq!(series.text(), text);
        assert_eq!(
            series.relayed().text(),
            format!(
                r#"kubevirt_pod_infra_pod_info{{namespace="{NAMESPACE}",pod="{RELAY_POD}",name="a\"b",exported_namespace="vms",exported_pod="p"}}"#
            )
        );
        assert_eq!(
            series.direct().text(),
            r#"kubevirt_pod_infra_pod_info{namespace="vms",pod="p",name="a\"b",exported_namespace="vms",exported_pod="p"}"#
        );
        let other = Series::parse(r#"up{job="x"}"#).unwrap();
        assert_eq!(other.direct(), other);
        assert_eq!(Series::parse("up").unwrap().text(), "up{}");
        assert!(Series::parse(r#"up{a="x"#).is_err());
        assert!(Series::parse(r#"up{a="x\"#).is_err());
        let history = "# TYPE kubevirt_pod_infra_threads gauge\nkubevirt_pod_infra_threads{namespace=\"a\",pod=\"p\"} 1 10\nkubevirt_pod_infra_threads{namespace=\"a\",pod=\"q\"} 2 10\n# EOF\n";
        let (shaped, relayed) = reshape_openmetrics(history).unwrap();
        assert_eq!(relayed, 1);
        assert_eq!(
            shaped,
            format!(
                "# TYPE kubevirt_pod_infra_threads gauge\nkubevirt_pod_infra_threads{{namespace=\"{NAMESPACE}\",pod=\"{RELAY_POD}\",exported_namespace=\"a\",exported_pod=\"p\"}} 1 10\nkubevirt_pod_infra_threads{{namespace=\"a\",pod=\"q\"}} 2 10\n# EOF\n"
            )
        );
    }
}
