//! What `bench-fleet` reads from the Prometheus it runs: its memory, its series, how long each
//! rule group takes (`/api/v1/rules`), and how long each dashboard query takes, as Grafana and the
//! OpenShift console would send it (range queries over the dashboard's six hours, instant ones for
//! tables), with one VM chosen and with the whole fleet.

use crate::http::{self, Endpoint};
use crate::process::{Guarded, dies_with_parent, wait_for};
use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Prometheus replays its WAL before it answers `/-/ready`: seconds per hundred thousand series.
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// A stopping Prometheus writes its head's last WAL records.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a dashboard query may run before Grafana would have given up long ago.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

/// A Prometheus on a data directory that outlives it, so that it can be stopped, given blocks,
/// and started again on the same TSDB.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    child: Option<Guarded>,
}

/// One rule group's evaluations seen while polling.
#[derive(Clone, Debug, Default)]
pub struct GroupTimes {
    pub interval: f64,
    /// Seconds of each distinct evaluation.
    pub evaluations: Vec<f64>,
    /// Per rule (record or alert name), seconds of each evaluation.
    pub rules: BTreeMap<String, Vec<f64>>,
}

/// A dashboard's queries, and whether its VM variable offers "All" (without it, a VM is always
/// chosen: the first one, until the user picks others).
#[derive(Clone, Debug)]
pub struct Dashboard {
    pub name: String,
    pub queries: Vec<Query>,
    pub vm_has_all: bool,
}

/// One query of a dashboard.
#[derive(Clone, Debug)]
pub struct Query {
    pub dashboard: String,
    pub panel: String,
    pub expr: String,
    pub kind: QueryKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// A graph: a range query at the dashboard's resolution.
    Range,
    /// A table: an instant query.
    Instant,
    /// A variable's `label_values(selector, label)`: the label's values over the range.
    LabelValues { label: String },
}

/// How one query went.
#[derive(Clone, Debug)]
pub struct Timing {
    pub seconds: f64,
    pub series: usize,
    pub bytes: usize,
    /// Prometheus refused it (an error status), with its message.
    pub error: Option<String>,
}

// === impl Server ===

impl Server {
    /// A Prometheus for `dir`, which holds `prometheus.yml` (and what it reads) and `data/`.
    pub fn new(dir: &Path) -> Result<Self> {
        Ok(Self {
            addr: ([127, 0, 0, 1], http::free_port()?).into(),
            dir: dir.to_owned(),
            child: None,
        })
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts it and waits until it is ready (its WAL replayed).
    pub fn start(&mut self) -> Result<()> {
        let mut command = dies_with_parent("prometheus");
        command
            .arg(format!(
                "--config.file={}",
                self.dir.join("prometheus.yml").display()
            ))
            .arg(format!("--storage.tsdb.path={}", self.data().display()))
            .arg("--storage.tsdb.retention.time=30d")
            .arg(format!("--web.listen-address={}", self.addr))
            .arg("--log.level=warn");
        let mut child = Guarded::spawn("prometheus", command, &self.dir)?;
        child.wait_until_ok(&Endpoint::Tcp(self.addr), "/-/ready", START_TIMEOUT)?;
        self.child = Some(child);
        Ok(())
    }

    /// Stops it with SIGTERM, as Kubernetes would, so that its WAL is complete.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = i32::try_from(child.pid())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        wait_for("Prometheus to stop", STOP_TIMEOUT, || {
            Ok(child.check_running().is_err().then_some(()))
        })
    }

    /// Host PID of the running Prometheus.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Guarded::pid)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `VmRSS` and `VmHWM` of the running Prometheus, bytes.
    pub fn rss(&self) -> Result<(u64, u64)> {
        let pid = self.pid().context("Prometheus is not running")?;
        Ok((
            crate::hostproc::status_bytes(pid, "VmRSS")?,
            crate::hostproc::status_bytes(pid, "VmHWM")?,
        ))
    }

    /// `GET /api/v1/<path>`'s `data`.
    pub fn api(&self, path: &str) -> Result<Value> {
        let response = http::get(self.addr, &format!("/api/v1/{path}"), &[])?;
        let body: Value = serde_json::from_slice(&response.body)
            .with_context(|| format!("GET {path}: not JSON: {}", response.text()))?;
        if body["status"] != "success" {
            bail!("GET {path} failed: {body}");
        }
        Ok(body["data"].clone())
    }

    /// The instant vector of `expr` now.
    pub fn instant(&self, expr: &str) -> Result<Vec<crate::exposition::Sample>> {
        let data = self.api(&format!("query?query={}", http::encode_query(expr)))?;
        crate::prometheus::samples(&data)
    }

    /// The single value of `expr` now.
    pub fn scalar(&self, expr: &str) -> Result<f64> {
        match self.instant(expr)?.as_slice() {
            [one] => Ok(one.value),
            other => bail!("{expr}: {} samples", other.len()),
        }
    }

    /// Polls `/api/v1/rules` for `span`, keeping each distinct evaluation of each group.
    pub fn rule_times(&self, span: Duration) -> Result<BTreeMap<String, GroupTimes>> {
        let mut seen: BTreeMap<String, (String, GroupTimes)> = BTreeMap::new();
        let deadline = Instant::now() + span;
        while Instant::now() < deadline {
            let data = self.api("rules")?;
            for group in data["groups"].as_array().into_iter().flatten() {
                let name = group["name"].as_str().unwrap_or("").to_owned();
                let last = group["lastEvaluation"].as_str().unwrap_or("").to_owned();
                let entry = seen.entry(name).or_default();
                if entry.0 == last || last.starts_with("0001") {
                    continue;
                }
                entry.0 = last;
                let times = &mut entry.1;
                times.interval = group["interval"].as_f64().unwrap_or(0.0);
                times
                    .evaluations
                    .push(group["evaluationTime"].as_f64().unwrap_or(0.0));
                for rule in group["rules"].as_array().into_iter().flatten() {
                    times
                        .rules
                        .entry(rule["name"].as_str().unwrap_or("").to_owned())
                        .or_default()
                        .push(rule["evaluationTime"].as_f64().unwrap_or(0.0));
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(seen.into_iter().map(|(k, (_, v))| (k, v)).collect())
    }

    /// Runs `query` with `variables` replaced, at `now`, over `range` seconds at `step`.
    pub fn time_query(
        &self,
        query: &Query,
        variables: &[(&str, String)],
        now: f64,
        range: f64,
        step: f64,
    ) -> Result<Timing> {
        let expr = substitute(&query.expr, variables);
        let path = match &query.kind {
            QueryKind::Range => format!(
                "/api/v1/query_range?query={}&start={}&end={now}&step={step}",
                http::encode_query(&expr),
                now - range
            ),
            QueryKind::Instant => format!(
                "/api/v1/query?query={}&time={now}",
                http::encode_query(&expr)
            ),
            QueryKind::LabelValues { label } => format!(
                "/api/v1/label/{label}/values?match[]={}&start={}&end={now}",
                http::encode_query(&expr),
                now - range
            ),
        };
        streamed_get(
            self.addr,
            &path,
            matches!(query.kind, QueryKind::LabelValues { .. }),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// `GET path` over HTTP/1.0, so that the server closes the connection after the body: the body is
/// counted as it arrives (series are `"metric":` objects; with `values`, label values are
/// strings) and not kept.
fn streamed_get(addr: SocketAddr, path: &str, values: bool) -> Result<Timing> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(QUERY_TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut head = Vec::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0usize;
    let marker = b"\"metric\":";
    let mut found = 0usize;
    // Label values are a short list: kept whole, and counted once parsed.
    let mut whole = Vec::new();
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        let chunk = buffer.get(..n).unwrap_or_default();
        if head.len() < 4096 {
            head.extend_from_slice(chunk.get(..(4096 - head.len()).min(n)).unwrap_or_default());
        }
        bytes += n;
        if values {
            whole.extend_from_slice(chunk);
        }
        carry.extend_from_slice(chunk);
        found += carry.windows(marker.len()).filter(|w| *w == marker).count();
        let keep = carry.len().saturating_sub(marker.len() - 1);
        carry.drain(..keep);
    }
    let seconds = started.elapsed().as_secs_f64();
    let head = String::from_utf8_lossy(&head).into_owned();
    let error = (!head.contains("\"status\":\"success\"")).then(|| {
        head.split("\r\n\r\n")
            .nth(1)
            .unwrap_or(&head)
            .chars()
            .take(300)
            .collect()
    });
    let series = if values {
        let body = whole
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .and_then(|at| whole.get(at + 4..))
            .unwrap_or_default();
        let parsed: Value = serde_json::from_slice(body).unwrap_or_default();
        parsed["data"].as_array().map_or(0, Vec::len)
    } else {
        found
    };
    Ok(Timing {
        seconds,
        series,
        bytes,
        error,
    })
}

/// `expr` with each `$name` of `variables` replaced, longest names first.
pub fn substitute(expr: &str, variables: &[(&str, String)]) -> String {
    let mut variables: Vec<&(&str, String)> = variables.iter().collect();
    variables.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    variables
        .iter()
        .fold(expr.to_owned(), |e, (name, value)| e.replace(name, value))
}

/// The dashboard in `path` (Grafana's `panels`, or the OpenShift console's `rows` of panels): its
/// panel targets, variables and annotations.
pub fn dashboard(path: &Path) -> Result<Dashboard> {
    let text = std::fs::read_to_string(path)?;
    let dashboard: Value = serde_json::from_str(&text)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rows = dashboard["rows"].as_array().into_iter().flatten();
    let top = dashboard["panels"].as_array().into_iter().flatten();
    // Grafana's collapsed rows keep their panels inside.
    let nested = top
        .clone()
        .flat_map(|p| p["panels"].as_array().into_iter().flatten());
    let panels = top
        .chain(nested)
        .chain(rows.flat_map(|r| r["panels"].as_array().into_iter().flatten()));
    let mut out = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("").to_owned();
        let table = panel["type"] == "table";
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = target["expr"].as_str() else {
                continue;
            };
            let kind = if table || target["instant"] == true {
                QueryKind::Instant
            } else {
                QueryKind::Range
            };
            let reference = target["refId"].as_str().unwrap_or("");
            out.push(Query {
                dashboard: name.clone(),
                panel: format!("{title} {reference}").trim().to_owned(),
                expr: expr.to_owned(),
                kind,
            });
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let definition = variable["definition"].as_str().unwrap_or("");
        let Some(inner) = definition
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
        else {
            continue;
        };
        let Some((selector, label)) = inner.rsplit_once(',') else {
            continue;
        };
        out.push(Query {
            dashboard: name.clone(),
            panel: format!("variable ${}", variable["name"].as_str().unwrap_or("")),
            expr: selector.trim().to_owned(),
            kind: QueryKind::LabelValues {
                label: label.trim().to_owned(),
            },
        });
    }
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(expr) = annotation["expr"].as_str() {
            out.push(Query {
                dashboard: name.clone(),
                panel: format!(
                    "annotation {}",
                    annotation["name"].as_str().unwrap_or_default()
                ),
                expr: expr.to_owned(),
                kind: QueryKind::Range,
            });
        }
    }
    let vm_has_all = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|v| v["name"] == "vm" && v["includeAll"] == true);
    Ok(Dashboard {
        name,
        queries: out,
        vm_has_all,
    })
}

/// Median and maximum of `values`.
pub fn median_max(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    (median, sorted.last().copied().unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_replaced_longest_first() {
        let vars = [("$vm", "a".to_owned()), ("$vmx", "b".to_owned())];
        assert_eq!(
            substitute("x{n=~\"$vmx\",m=~\"$vm\"}", &vars),
            "x{n=~\"b\",m=~\"a\"}"
        );
    }

    #[test]
    fn medians_of_odd_and_even_lists() {
        assert_eq!(median_max(&[3.0, 1.0, 2.0]), (2.0, 3.0));
        assert_eq!(median_max(&[]), (0.0, 0.0));
    }

    #[test]
    fn both_dashboards_have_their_queries_read() {
        for path in [
            "manifests/components/monitoring/dashboard.json",
            "manifests/components/openshift-console-dashboard/console-dashboard.json",
        ] {
            let queries = dashboard(&crate::workspace().join(path)).unwrap().queries;
            assert!(queries.len() >= 15, "{path}: {}", queries.len());
            assert!(
                queries
                    .iter()
                    .any(|q| matches!(q.kind, QueryKind::LabelValues { .. }))
            );
            assert!(queries.iter().any(|q| q.kind == QueryKind::Instant));
        }
    }
}
