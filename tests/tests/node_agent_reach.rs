//! What the node agents can open of a node, measured: a fake node laid out with the owners and modes
//! the kubelet and the container runtimes give their files (`/var/lib/kubelet/pods`, mounted at
//! `pods/`, and `/var/log/pods`, at `logs/`), and a probe run under `setpriv` as each agent's user,
//! groups and capabilities, read from the rendered DaemonSets. Then the real relay runs as its
//! DaemonSet makes it and relays a collector's socket through the kubelet's modes: the identity
//! is enough for its work. Prints the table (docs/threat-model.md, "What a node agent can read").
//!
//! The modes are the kubelet's (`makePodDataDirs`: pod and volume directories `0750` root; an
//! `emptyDir` or a tmpfs volume `0777` with the sticky bit, setgid and its fsGroup; the atomic
//! writer's files with the volume's mode, group fsGroup and group read added on a read-only
//! volume; a service-account token `0600` owned by the pod's user when every container states the
//! same `runAsUser`, `0644` otherwise) and containerd's (`0640` container logs; CRI-O's conmon
//! writes them `0600`). Mount propagation is not measured here (it needs mount namespaces): with
//! `None`, tmpfs volumes mounted after the agent started would not be visible to it at all.

#[path = "node_agent_reach/fake_node.rs"]
mod fake_node;

use anyhow::{Context as _, Result, ensure};
use e2e::manifests::{self, of_kind};
use e2e::relay::{Kubelet, Relay};
use fake_node::{QEMU, node};
use kube_metrics_contract::metrics::POD_INFO;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// One agent as its DaemonSet runs it: user, group, supplementary groups, no capability.
#[derive(Debug)]
struct Agent {
    name: &'static str,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

// === impl Agent ===

impl Agent {
    /// The DaemonSet `name` of `variant`, as rendered; it must drop every capability.
    fn of(variant: &str, name: &'static str) -> Result<Agent> {
        let pod = pod_spec(variant, "DaemonSet", name)?;
        for container in pod["containers"].as_array().into_iter().flatten() {
            let caps = &container["securityContext"]["capabilities"];
            ensure!(
                caps["drop"] == serde_json::json!(["ALL"]) && caps.get("add").is_none(),
                "{name}: {caps}"
            );
        }
        let context = &pod["securityContext"];
        Ok(Agent {
            name,
            uid: id(&context["runAsUser"]).context("runAsUser")?,
            gid: id(&context["runAsGroup"]).context("runAsGroup")?,
            groups: context["supplementalGroups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(id)
                .collect(),
        })
    }

    /// `setpriv` options that make a process this agent: the runtime adds the primary group to
    /// the supplementary ones; no capability in any set, none to gain.
    fn setpriv(&self) -> Vec<String> {
        let mut groups = vec![self.gid];
        groups.extend(&self.groups);
        let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
        vec![
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            format!("--groups={}", groups.join(",")),
            "--inh-caps=-all".into(),
            "--bounding-set=-all".into(),
            "--no-new-privs".into(),
        ]
    }

    /// Whether this agent reaches each path, as the probe says.
    fn reach(&self, paths: &[&Path]) -> Result<Vec<bool>> {
        let output = e2e::process::output(
            Command::new("setpriv")
                .args(self.setpriv())
                .arg("--")
                .arg(env!("CARGO_BIN_EXE_reach-probe"))
                .args(paths),
        )?;
        let text = String::from_utf8_lossy(&output.stdout);
        let reached: Vec<bool> = text.lines().map(|l| l.starts_with("yes ")).collect();
        ensure!(reached.len() == paths.len(), "probe said:\n{text}");
        Ok(reached)
    }
}

/// The webhook's pod security context in the default install: its user and fsGroup.
fn webhook_ids() -> Result<(u32, u32)> {
    let pod = pod_spec(".", "Deployment", "kube-metrics-webhook")?;
    let context = &pod["securityContext"];
    let id = |key: &str| id(&context[key]).with_context(|| format!("webhook {key}"));
    Ok((id("runAsUser")?, id("fsGroup")?))
}

/// The pod spec of the `kind` named `name` in `variant`'s rendered manifests.
fn pod_spec(variant: &str, kind: &str, name: &str) -> Result<Value> {
    let docs = &manifests::rendered()?
        .iter()
        .find(|r| r.variant == variant)
        .with_context(|| format!("{variant} not rendered"))?
        .docs;
    let object = of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name}"))?;
    Ok(object["spec"]["template"]["spec"].clone())
}

/// A user or group id in a manifest.
fn id(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|n| u32::try_from(n).ok())
}

#[test]
fn node_agents_reach_only_what_their_users_and_groups_may() {
    e2e::preflight(&["setpriv"]).unwrap();
    let relay = Agent::of(".", "kube-metrics-collector-relay").unwrap();
    let collector = Agent::of("overlays/node-collector", "kube-metrics-collector-node").unwrap();
    let before = Agent {
        name: "relay as uid 0",
        uid: 0,
        gid: 0,
        groups: vec![QEMU],
    };
    let kubelet = Kubelet::new("kmc-reach-").unwrap();
    let node = node(&kubelet, webhook_ids().unwrap()).unwrap();
    let rows = &node.rows;
    let paths: Vec<&Path> = rows.iter().map(|r| r.path.as_path()).collect();
    let agents = [&relay, &collector, &before];
    let reached: Vec<Vec<bool>> = agents.iter().map(|a| a.reach(&paths).unwrap()).collect();

    let mark = |yes: bool| if yes { "yes" } else { "-" };
    println!("{:<64} {:>6} {:>6} {:>6}", "", "relay", "node", "uid 0");
    for agent in agents {
        println!(
            "{}: uid {} gid {} groups {:?}",
            agent.name, agent.uid, agent.gid, agent.groups
        );
    }
    let mut wrong = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let got = [reached[0][i], reached[1][i], reached[2][i]];
        println!(
            "{:<64} {:>6} {:>6} {:>6}",
            row.what,
            mark(got[0]),
            mark(got[1]),
            mark(got[2])
        );
        if got != row.want {
            wrong.push(format!("{}: got {got:?}, want {:?}", row.what, row.want));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");

    // The relay, as its DaemonSet runs it, still relays the launcher's collector.
    let running = Relay::start_as(&kubelet, &[], &relay.setpriv()).unwrap();
    let answer = e2e::http::get(running.addr, "/metrics", &[])
        .unwrap()
        .text();
    assert!(
        answer.contains(&format!(
            "{POD_INFO}{{namespace=\"vms\",pod=\"virt-launcher-a\"}} 1"
        )),
        "{answer}\n--- relay log:\n{}",
        running.log()
    );
}
