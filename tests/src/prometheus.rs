//! A real Prometheus (Debian's `/usr/bin/prometheus`) scraping loopback targets, its HTTP API, and
//! what the `promtool` that ships with it does for the tests: `check metrics`, the exposition-format
//! linter, `check rules` and `test rules` (`promtool_test_rules`), and `tsdb create-blocks-from
//! openmetrics`.

use crate::exposition::Sample;
use crate::http::{self, Endpoint};
use crate::process::{Guarded, dies_with_parent};
use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

/// The scrape interval of the generated config: as short as Prometheus allows in practice.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// Prometheus needs a second or two to replay an empty TSDB and open its port.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Prometheus with its own TSDB in a temporary directory.
#[derive(Debug)]
pub struct Prometheus {
    addr: SocketAddr,
    child: Guarded,
    _dir: TempDir,
}

/// One rule group's last evaluation, from `/api/v1/rules`.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    /// RFC 3339; `0001-01-01T00:00:00Z` before the first evaluation.
    pub last_evaluation: String,
    /// How long the last evaluation took.
    pub seconds: f64,
    /// `<rule>: <error>` of each rule whose last evaluation failed.
    pub errors: Vec<String>,
}

/// One series of a range-vector result.
#[derive(Clone, Debug)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)`, oldest first.
    pub points: Vec<(f64, f64)>,
}

// === impl Prometheus ===

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job `kmc`) every second; returns once it is ready.
    pub fn start(targets: &[SocketAddr]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("e2e-prometheus-")
            .tempdir()?;
        std::fs::write(dir.path().join("prometheus.yml"), config_yaml(targets))?;
        Self::start_in(dir)
    }

    /// Starts Prometheus in `dir`, which holds its `prometheus.yml` and whatever that reads, on the
    /// TSDB in `dir/data` (empty, or blocks made by `promtool tsdb create-blocks-from`).
    pub fn start_in(dir: TempDir) -> Result<Self> {
        let addr: SocketAddr = ([127, 0, 0, 1], http::free_port()?).into();
        let mut command = dies_with_parent("prometheus");
        command
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn");
        let mut child = Guarded::spawn("prometheus", command, dir.path())?;
        child.wait_until_ok(&Endpoint::Tcp(addr), "/-/ready", START_TIMEOUT)?;
        Ok(Self {
            addr,
            child,
            _dir: dir,
        })
    }

    /// Evaluates `expr` at `time` (Unix seconds); it must give an instant vector.
    pub fn query_at(&self, expr: &str, time: f64) -> Result<Vec<Sample>> {
        let data = self.api_path(&format!(
            "/api/v1/query?query={}&time={time}",
            http::encode_query(expr)
        ))?;
        if data["resultType"] != "vector" {
            bail!("{expr} gave {}, not a vector", data["resultType"]);
        }
        samples(&data)
    }

    /// Every alert that is pending or firing now: its labels, with `alertstate`.
    pub fn alerts(&self) -> Result<Vec<Sample>> {
        let data = self.api_path("/api/v1/alerts")?;
        let alerts = data["alerts"].as_array().context("no alerts array")?;
        alerts
            .iter()
            .map(|alert| {
                let mut labels = labels(&alert["labels"])?;
                let state = alert["state"].as_str().unwrap_or("").to_owned();
                labels.insert("alertstate".to_owned(), state);
                let name = labels.get("alertname").cloned().unwrap_or_default();
                let value = alert["value"]
                    .as_str()
                    .unwrap_or("NaN")
                    .parse()
                    .unwrap_or(f64::NAN);
                Ok(Sample {
                    name,
                    labels,
                    value,
                })
            })
            .collect()
    }

    /// Each rule group from `/api/v1/rules`: its name, last evaluation time (RFC 3339), how long
    /// that took (seconds), and the last error of each of its rules that has one.
    pub fn rule_groups(&self) -> Result<Vec<RuleGroup>> {
        let data = self.api_path("/api/v1/rules")?;
        let groups = data["groups"].as_array().context("no groups array")?;
        Ok(groups
            .iter()
            .map(|g| {
                let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
                let rules = g["rules"].as_array().into_iter().flatten();
                RuleGroup {
                    name: text(g, "name"),
                    last_evaluation: text(g, "lastEvaluation"),
                    seconds: g["evaluationTime"].as_f64().unwrap_or(f64::NAN),
                    errors: rules
                        .filter(|r| r["health"] == "err")
                        .map(|r| format!("{}: {}", text(r, "name"), text(r, "lastError")))
                        .collect(),
                }
            })
            .collect())
    }

    /// Prometheus' own log, for failure messages.
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// Evaluates `expr` now; it must give an instant vector.
    pub fn query(&self, expr: &str) -> Result<Vec<Sample>> {
        let data = self.api(expr)?;
        if data["resultType"] != "vector" {
            bail!("{expr} gave {}, not a vector", data["resultType"]);
        }
        results(&data)?.iter().map(sample).collect()
    }

    /// The value of `expr`, which must give exactly one sample.
    pub fn value(&self, expr: &str) -> Result<f64> {
        match self.query(expr)?.as_slice() {
            [one] => Ok(one.value),
            other => bail!("{expr} gave {} samples: {other:?}", other.len()),
        }
    }

    /// Evaluates a range selector such as `metric[30s]`: every stored point of every series.
    pub fn range(&self, expr: &str) -> Result<Vec<Series>> {
        let data = self.api(expr)?;
        if data["resultType"] != "matrix" {
            bail!("{expr} gave {}, not a matrix", data["resultType"]);
        }
        results(&data)?
            .iter()
            .map(|series| {
                let points = series["values"]
                    .as_array()
                    .context("series without values")?
                    .iter()
                    .map(point)
                    .collect::<Result<_>>()?;
                Ok(Series {
                    labels: labels(&series["metric"])?,
                    points,
                })
            })
            .collect()
    }

    fn api(&self, expr: &str) -> Result<Value> {
        self.api_path(&format!("/api/v1/query?query={}", http::encode_query(expr)))
    }

    fn api_path(&self, path: &str) -> Result<Value> {
        let response = http::get(self.addr, path, &[])?;
        let body: Value = serde_json::from_slice(&response.body)
            .with_context(|| format!("GET {path}: not JSON: {}", response.text()))?;
        if body["status"] != "success" {
            bail!("GET {path} failed: {body}");
        }
        Ok(body["data"].clone())
    }
}

/// Runs `promtool check metrics` on an exposition; fails with what promtool said.
pub fn promtool_check_metrics(exposition: &[u8]) -> Result<()> {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start promtool: run scripts/setup")?;
    let mut stdin = promtool.stdin.take().context("promtool has no stdin")?;
    stdin.write_all(exposition)?;
    // promtool reads until end of input.
    drop(stdin);
    let output = promtool.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "promtool check metrics failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// What promtool said of a PrometheusRule's rules and of a rule test file.
#[derive(Debug)]
pub struct RuleTests {
    /// `promtool check rules`' output; the rules passed it.
    pub checked: String,
    /// Whether `promtool test rules` passed, and what it printed.
    pub passed: bool,
    pub output: String,
}

/// `promtool check rules` of `spec` (a PrometheusRule's), which must pass, then `promtool test rules`
/// of `tests` (a rule test file's YAML, reading `rules.yaml`) over it, in a directory of their own.
pub fn promtool_test_rules(spec: &Value, tests: &str) -> Result<RuleTests> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_norway::to_string(spec)?,
    )?;
    std::fs::write(dir.path().join("rules.test.yaml"), tests)?;
    let checked = crate::process::stdout(
        Command::new("promtool")
            .args(["check", "rules", "rules.yaml"])
            .current_dir(dir.path()),
    )?;
    let output = Command::new("promtool")
        .args(["test", "rules", "rules.test.yaml"])
        .current_dir(dir.path())
        .output()
        .context("cannot start promtool: run scripts/setup")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(RuleTests {
        checked,
        passed: output.status.success() && text.contains("SUCCESS"),
        output: text,
    })
}

fn config_yaml(targets: &[SocketAddr]) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    format!(
        "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {interval}s\n\
         scrape_configs:\n  - job_name: kmc\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", "),
        interval = SCRAPE_INTERVAL.as_secs(),
    )
}

/// The samples of an instant vector: the `data` of `/api/v1/query`.
pub fn samples(data: &Value) -> Result<Vec<Sample>> {
    results(data)?.iter().map(sample).collect()
}

/// Turns the OpenMetrics file `openmetrics` into TSDB blocks under `data`, a data directory whose
/// Prometheus is stopped (or not started yet).
pub fn create_blocks(openmetrics: &Path, data: &Path) -> Result<()> {
    crate::process::output(
        Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(openmetrics)
            .arg(data),
    )
    .context("promtool tsdb create-blocks-from openmetrics")?;
    Ok(())
}

fn results(data: &Value) -> Result<&Vec<Value>> {
    data["result"].as_array().context("no result array")
}

fn sample(value: &Value) -> Result<Sample> {
    let mut labels = labels(&value["metric"])?;
    let name = labels.remove("__name__").unwrap_or_default();
    let (_, value) = point(&value["value"])?;
    Ok(Sample {
        name,
        labels,
        value,
    })
}

fn labels(metric: &Value) -> Result<BTreeMap<String, String>> {
    metric
        .as_object()
        .context("metric is not an object")?
        .iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                v.as_str().context("label is not a string")?.to_owned(),
            ))
        })
        .collect()
}

/// `[1700000000.123, "42"]`
fn point(value: &Value) -> Result<(f64, f64)> {
    let time = value[0].as_f64().context("point without time")?;
    let number = value[1]
        .as_str()
        .context("point without value")?
        .parse()
        .context("value is not a number")?;
    Ok((time, number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_targets() {
        let yaml = config_yaml(&[
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        ]);
        assert!(yaml.contains("scrape_interval: 1s"), "{yaml}");
        assert!(
            yaml.contains("targets: ['127.0.0.1:1', '127.0.0.1:2']"),
            "{yaml}"
        );
    }

    #[test]
    fn promtool_accepts_good_and_rejects_bad_expositions() {
        promtool_check_metrics(b"# HELP up Whether up.\n# TYPE up gauge\nup 1\n").unwrap();
        let error = promtool_check_metrics(b"up{ 1\n").unwrap_err();
        assert!(
            format!("{error:#}").contains("check metrics failed"),
            "{error:#}"
        );
    }

    #[test]
    fn parses_vector_samples() {
        let v: Value = serde_json::from_str(
            r#"{"metric":{"__name__":"up","job":"kmc"},"value":[1700000000.5,"1"]}"#,
        )
        .unwrap();
        let s = sample(&v).unwrap();
        assert_eq!(s.name, "up");
        assert_eq!(s.label("job"), "kmc");
        assert_eq!(s.value, 1.0);
    }
}
