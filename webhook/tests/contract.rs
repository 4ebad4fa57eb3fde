//! The webhook's patch against what the collector and the relay expect: the injected container's
//! command lines parse with the collector's own flags, its socket lies in the volume where the relay
//! looks on the node, and the downward API projects what the collector's identity reader reads.
//! Every expectation is computed by the other crates (their flags, defaults and readers), not taken
//! from the names they share, so a name typed separately in one crate fails here.

use clap::{CommandFactory, Parser};
use kube_metrics_collector::Args;
use kube_metrics_collector::args::{DEFAULT_LISTEN, Mode, ServeConfig};
use kube_metrics_collector::podinfo::{Env, PodInfo};
use kube_metrics_node::relay::{Layout, discover};
use kube_metrics_webhook::patch::{self, Outcome};
use kube_metrics_webhook::policy::Policy;
use kube_metrics_webhook::vmi::Lookup;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::net::UnixListener;
use std::path::Path;

/// The API server gives the pod its uid after admission; any uid shows the kubelet's layout.
const POD_UID: &str = "6f1c0e8a-0000-4000-8000-000000000001";
/// What the API server and the scheduler fill in after admission, for the env's `fieldRef`s.
const POD_NAME: &str = "virt-launcher-fedora-a-abcde";
const NODE_NAME: &str = "node-0";

/// The fixture pod, edited by `edit`, after the webhook's patch with the default policy.
struct Patched {
    pod: Value,
    /// The one container the patch added.
    container: Value,
}

fn patched(edit: impl FnOnce(&mut Value)) -> Patched {
    let text = include_str!("fixtures/admission/pod-a.json");
    let mut review: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture: {e}"));
    edit(&mut review["request"]["object"]);
    let body = serde_json::to_vec(&review).unwrap_or_else(|e| panic!("{e}"));
    let parsed = patch::parse(&body).unwrap_or_else(|e| panic!("review: {e}"));
    let reviewed = patch::answer(&parsed, &Policy::default(), &Lookup::NotFound);
    assert_eq!(reviewed.outcome, Outcome::Injected);
    let answer: Value =
        serde_json::from_slice(&reviewed.response).unwrap_or_else(|e| panic!("{e}"));
    let bytes: Vec<u8> = serde_json::from_value(answer["response"]["patch"].clone())
        .unwrap_or_else(|e| panic!("no patch: {e}"));
    let ops: json_patch::Patch =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("patch: {e}"));
    let before = review["request"]["object"].clone();
    let mut pod = before.clone();
    json_patch::patch(&mut pod, &ops).unwrap_or_else(|e| panic!("patch does not apply: {e}"));
    let containers = |pod: &Value| -> Vec<Value> {
        ["initContainers", "containers"]
            .iter()
            .flat_map(|list| pod["spec"][list].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let old = containers(&before);
    let added: Vec<Value> = containers(&pod)
        .into_iter()
        .filter(|c| !old.iter().any(|o| o["name"] == c["name"]))
        .collect();
    let [container] = added.as_slice() else {
        panic!("the patch adds {} containers", added.len());
    };
    Patched {
        container: container.clone(),
        pod,
    }
}

impl Patched {
    /// The one volume of `kind` (`emptyDir`, `downwardAPI`) the patch added and the container mounts,
    /// and its mount path.
    fn mounted(&self, kind: &str) -> (&Value, &str) {
        let volumes = self.pod["spec"]["volumes"].as_array().into_iter().flatten();
        let mounts = self.container["volumeMounts"].as_array();
        let found: Vec<(&Value, &str)> = volumes
            .filter(|v| v.get(kind).is_some())
            .filter_map(|v| {
                let mount = mounts
                    .into_iter()
                    .flatten()
                    .find(|m| m["name"] == v["name"])?;
                Some((v, mount["mountPath"].as_str()?))
            })
            .collect();
        let [one] = found.as_slice() else {
            panic!("{} mounted {kind} volumes", found.len());
        };
        *one
    }

    /// The collector's settings from the container's command and args, as its `main` reads them.
    fn serve_config(&self) -> ServeConfig {
        let argv: Vec<&str> = self.container["command"]
            .as_array()
            .into_iter()
            .chain(self.container["args"].as_array())
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match parse(&argv) {
            Mode::Serve(config) => config,
            other => panic!("{argv:?} is not a server: {other:?}"),
        }
    }
}

/// `argv` through the collector's own flags.
fn parse(argv: &[&str]) -> Mode {
    let args = Args::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let (_, mode) = args
        .into_config()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    mode
}

/// The relay's settings when the node relay runs with its defaults.
fn relay_layout() -> Layout {
    match parse(&["kube-metrics-collector", "relay"]) {
        Mode::Relay(config) => config.layout,
        other => panic!("not the relay: {other:?}"),
    }
}

/// What the kubelet would project for `compute`'s memory request and limit.
const REQUEST: u64 = 1_073_741_824;
const LIMIT: u64 = 2_147_483_648;

/// The files the kubelet would write in the patched pod's downward-API volume: `(path, text)`.
fn projected(patched: &Patched) -> Vec<(String, String)> {
    let pod = &patched.pod;
    let (volume, _) = patched.mounted("downwardAPI");
    let map_file = |map: &Value| -> String {
        let entries = map.as_object().into_iter().flatten();
        entries
            .map(|(k, v)| format!("{k}={:?}\n", v.as_str().unwrap_or("")))
            .collect()
    };
    let compute = &pod["spec"]["containers"][0]["name"];
    let namespace = pod["metadata"]["namespace"].as_str().expect("a namespace");
    let items = volume["downwardAPI"]["items"].as_array().cloned();
    let mut files = Vec::new();
    for item in items.into_iter().flatten() {
        let text = match (
            item["fieldRef"]["fieldPath"].as_str(),
            &item["resourceFieldRef"],
        ) {
            (Some("metadata.labels"), _) => map_file(&pod["metadata"]["labels"]),
            (Some("metadata.annotations"), _) => map_file(&pod["metadata"]["annotations"]),
            (Some("metadata.uid"), _) => POD_UID.to_owned(),
            (Some("metadata.namespace"), _) => namespace.to_owned(),
            (Some("metadata.name"), _) => POD_NAME.to_owned(),
            (None, resource) if &resource["containerName"] == compute => {
                match resource["resource"].as_str() {
                    Some("requests.memory") => REQUEST.to_string(),
                    Some("limits.memory") => LIMIT.to_string(),
                    other => panic!("unexpected resource {other:?}"),
                }
            }
            _ => panic!("unexpected item {item}"),
        };
        files.push((item["path"].as_str().expect("a path").to_owned(), text));
    }
    files
}

#[test]
fn the_collector_accepts_the_injected_command_lines() {
    let patched = patched(|_| {});
    let config = patched.serve_config();

    let socket = config
        .socket
        .clone()
        .expect("the collector serves on a socket");
    let (_, socket_dir) = patched.mounted("emptyDir");
    assert_eq!(socket.parent(), Some(Path::new(socket_dir)));

    let (_, podinfo_dir) = patched.mounted("downwardAPI");
    assert_eq!(config.scrape.podinfo, Path::new(podinfo_dir));

    // The declared port is the one the collector listens on, by default its own default.
    let listen = config.listen.expect("the collector listens on TCP");
    let ports = patched.container["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        ports,
        [json!({"name": kube_metrics_contract::sidecar::PORT_NAME,
                "containerPort": listen.port(), "protocol": "TCP"})]
    );
    assert_eq!(listen, DEFAULT_LISTEN);

    // The liveness probe asks the same socket.
    let probe: Vec<&str> = patched.container["livenessProbe"]["exec"]["command"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match parse(&probe) {
        Mode::Probe { socket: probed } => assert_eq!(probed, socket),
        other => panic!("{probe:?} is not a probe: {other:?}"),
    }
}

#[test]
fn the_relay_finds_the_socket_where_the_kubelet_shows_the_volume() {
    let patched = patched(|_| {});
    let socket = patched.serve_config().socket.expect("a socket");
    let socket_name = socket
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    let (volume, _) = patched.mounted("emptyDir");
    let volume = volume["name"].as_str().expect("a volume name");

    let layout = relay_layout();
    assert_eq!(
        (layout.volume.as_str(), layout.socket.as_str()),
        (volume, socket_name)
    );
    // The kubelet's own layout for emptyDir volumes, as Kubernetes names it.
    let in_root = Path::new("pods")
        .join(POD_UID)
        .join("volumes/kubernetes.io~empty-dir")
        .join(volume)
        .join(socket_name);
    assert_eq!(
        discover::socket_path(&layout, POD_UID),
        layout.kubelet_root.join(&in_root)
    );

    // And the relay's walk finds a socket put there.
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let layout = Layout {
        kubelet_root: root.path().to_owned(),
        pod_logs: root.path().join("logs"),
        ..layout
    };
    let path = root.path().join(&in_root);
    std::fs::create_dir_all(path.parent().expect("a parent")).unwrap_or_else(|e| panic!("{e}"));
    // The full path exceeds sun_path: bind short, then move into place as the kubelet's mount would.
    let short = root.path().join("s.sock");
    let _listener = UnixListener::bind(&short).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&short, &path).unwrap_or_else(|e| panic!("{e}"));
    // The relay attributes it only through the downward-API volume the patch added, as the
    // kubelet shows it: pods/<uid>/volumes/kubernetes.io~downward-api/<volume>.
    let (podinfo, _) = patched.mounted("downwardAPI");
    let podinfo = podinfo["name"].as_str().expect("a volume name");
    assert_eq!(layout.podinfo_volume, podinfo);
    let podinfo_dir = root
        .path()
        .join("pods")
        .join(POD_UID)
        .join("volumes/kubernetes.io~downward-api")
        .join(podinfo);
    assert_eq!(discover::podinfo_path(&layout, POD_UID), podinfo_dir);
    std::fs::create_dir_all(&podinfo_dir).unwrap_or_else(|e| panic!("{e}"));
    for (path, text) in projected(&patched) {
        std::fs::write(podinfo_dir.join(path), text).unwrap_or_else(|e| panic!("{e}"));
    }
    // The kubelet's log directory names the pod: `<namespace>_<name>_<uid>`.
    let namespace = patched.pod["metadata"]["namespace"]
        .as_str()
        .expect("a namespace");
    let logs = layout
        .pod_logs
        .join(format!("{namespace}_{POD_NAME}_{POD_UID}"));
    std::fs::create_dir_all(logs).unwrap_or_else(|e| panic!("{e}"));
    let found = discover::discover(&layout).unwrap_or_else(|e| panic!("{e}"));
    let scrape = &patched.pod["metadata"]["labels"][kube_metrics_contract::pod::SCRAPE];
    let targets: Vec<(&str, &str, &str)> = found
        .targets
        .iter()
        .map(|t| {
            let id = &t.identity;
            (t.pod_uid.as_str(), id.namespace.as_str(), id.pod.as_str())
        })
        .collect();
    if scrape == kube_metrics_contract::pod::SCRAPE_RELAY {
        assert_eq!(targets, vec![(POD_UID, namespace, POD_NAME)]);
    } else {
        assert_eq!(
            (targets.len(), found.direct.clone()),
            (0, vec![POD_UID.to_owned()])
        );
    }
    assert_eq!(found.skipped.len(), 0);
}

#[test]
fn the_downward_api_gives_the_collector_its_identity() {
    let patched = patched(|_| {});
    let pod = &patched.pod;

    // Env: what the kubelet would set from each fieldRef, read with the collector's reader.
    let namespace = pod["metadata"]["namespace"].as_str().expect("a namespace");
    let field = |path: &str| match path {
        "metadata.name" => POD_NAME,
        "metadata.namespace" => namespace,
        "spec.nodeName" => NODE_NAME,
        other => panic!("unexpected fieldRef {other}"),
    };
    let env: BTreeMap<String, String> = patched.container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let path = e["valueFrom"]["fieldRef"]["fieldPath"].as_str()?;
            Some((e["name"].as_str()?.to_owned(), field(path).to_owned()))
        })
        .collect();
    let identity = Env::from_lookup(|name| env.get(name).cloned());
    assert_eq!(
        identity,
        Env {
            pod_name: Some(POD_NAME.into()),
            pod_namespace: Some(namespace.into()),
            node_name: Some(NODE_NAME.into()),
        }
    );

    // Files: what the kubelet would project for each item, read with the collector's reader.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (request, limit) = (REQUEST, LIMIT);
    for (path, text) in projected(&patched) {
        std::fs::write(dir.path().join(path), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let info = PodInfo::read(dir.path());
    let strings = |map: &Value| -> BTreeMap<String, String> {
        serde_json::from_value(map.clone()).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(info.labels, strings(&pod["metadata"]["labels"]));
    assert_eq!(info.annotations, strings(&pod["metadata"]["annotations"]));
    assert_eq!(
        (info.memory_request, info.memory_limit),
        (Some(request), Some(limit))
    );
}

#[test]
fn the_log_level_annotation_reaches_the_collectors_flag() {
    let patched = patched(|pod| {
        pod["metadata"]["annotations"][kube_metrics_contract::pod::LOG_LEVEL] = json!("debug");
    });
    let set: Vec<&str> = patched.container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["value"] == "debug")
        .filter_map(|e| e["name"].as_str())
        .collect();
    let command = Args::command();
    let flag = command
        .get_arguments()
        .find(|a| a.get_long() == Some("log-level"))
        .expect("the collector has --log-level");
    let twin = flag.get_env().and_then(|e| e.to_str());
    assert_eq!(set.as_slice(), twin.as_slice());
}
