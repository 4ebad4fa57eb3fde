//! Where the ratio is set and what it is now. Without HyperConverged the KubeVirt CR is patched
//! directly. With it, HCO owns the KubeVirt CR: it reverts a direct patch (and raises
//! `KubeVirtCRModified`), has no field of its own for `additionalGuestMemoryOverheadRatio`, and
//! takes it only through its `kubevirt.kubevirt.io/jsonpatch` annotation, which it reports as an
//! unsupported change (condition `TaintedConfiguration`, alert `UnsupportedHCOModification`). So on
//! HCO clusters each VM's own `addedOverhead` comes first. [`gather`] reads the cluster; the rest
//! is pure.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::{Value, json};

use crate::cluster::{Call, Cluster, ClusterError};

/// The annotation of the HyperConverged CR that HCO applies to the KubeVirt CR as a JSON patch.
pub const HCO_JSONPATCH: &str = "kubevirt.kubevirt.io/jsonpatch";
/// The ratio in the KubeVirt CR, as a JSON pointer.
pub const RATIO_POINTER: &str = "/spec/configuration/additionalGuestMemoryOverheadRatio";
/// KubeVirt's ratio when its CR sets none.
const DEFAULT_RATIO: f64 = 1.0;

/// A namespaced object's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The KubeVirt CR and its ratio as written (a string in the CR).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeVirt {
    pub object: Object,
    pub ratio: Option<String>,
}

/// The HyperConverged CR and its `kubevirt.kubevirt.io/jsonpatch` annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HyperConverged {
    pub object: Object,
    pub jsonpatch: Option<String>,
}

/// What the cluster said; each `Err` says why there is nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub kubevirt: Result<KubeVirt, String>,
    pub hyperconverged: Result<HyperConverged, String>,
}

impl Facts {
    /// The cluster could not be read at all.
    pub fn unread(why: &str) -> Facts {
        Facts {
            kubevirt: Err(why.to_owned()),
            hyperconverged: Err(why.to_owned()),
        }
    }
}

/// Who takes the ratio.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Manager {
    /// The cluster was not read: the KubeVirt CR at its usual name, as before.
    #[default]
    Unread,
    /// No HyperConverged manages KubeVirt (why, e.g. the API is not served): patch the KubeVirt CR.
    KubeVirt { object: Object, no_hco: String },
    /// HyperConverged owns the KubeVirt CR; `existing` is its jsonpatch annotation, whose other
    /// operations the new one keeps.
    HyperConverged {
        object: Object,
        existing: Option<String>,
    },
}

/// Where the ratio goes and where the current ratio came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Target {
    pub manager: Manager,
    pub current_ratio: f64,
    /// `--current-ratio`, the KubeVirt CR, HCO's annotation or KubeVirt's default.
    pub current_from: String,
    /// What was not read, for stderr.
    pub notes: Vec<String>,
}

/// Where to set the ratio and the one in force: `--current-ratio` when given, else the KubeVirt
/// CR's (which HCO's annotation has already been applied to), else the annotation's, else
/// KubeVirt's default.
pub fn decide(facts: &Facts, flag: Option<f64>) -> Result<Target, String> {
    let mut notes = Vec::new();
    let kubevirt = facts.kubevirt.as_ref().ok();
    if let Err(why) = &facts.kubevirt {
        notes.push(format!("KubeVirt CR not read ({why})"));
    }
    let manager = match (&facts.hyperconverged, kubevirt) {
        (Ok(hco), _) => Manager::HyperConverged {
            object: hco.object.clone(),
            existing: hco.jsonpatch.clone(),
        },
        (Err(why), Some(kv)) => Manager::KubeVirt {
            object: kv.object.clone(),
            no_hco: why.clone(),
        },
        (Err(_), None) => Manager::Unread,
    };
    let from_kubevirt = kubevirt.and_then(|kv| {
        kv.ratio
            .as_ref()
            .map(|r| (r.clone(), format!("the KubeVirt CR {}", kv.object)))
    });
    let from_hco = facts.hyperconverged.as_ref().ok().and_then(|hco| {
        let ratio = jsonpatch_ratio(hco.jsonpatch.as_deref()?)?;
        Some((ratio, format!("{HCO_JSONPATCH} of {}", hco.object)))
    });
    let (current_ratio, current_from) = match (flag, from_kubevirt.or(from_hco)) {
        (Some(ratio), _) => (ratio, "--current-ratio".to_owned()),
        (None, Some((text, from))) => match text.trim().parse::<f64>() {
            Ok(ratio) if ratio.is_finite() && ratio >= 1.0 => (ratio, from),
            _ => {
                return Err(format!(
                    "{from} sets additionalGuestMemoryOverheadRatio {text:?}, not a number of at least 1.0: pass --current-ratio"
                ));
            }
        },
        (None, None) if kubevirt.is_some() => (
            DEFAULT_RATIO,
            "KubeVirt's default (its CR sets none)".to_owned(),
        ),
        (None, None) => (
            DEFAULT_RATIO,
            "KubeVirt's default (the cluster was not read; --current-ratio sets it)".to_owned(),
        ),
    };
    Ok(Target {
        manager,
        current_ratio,
        current_from,
        notes,
    })
}

/// The ratio a HyperConverged annotation sets: its last `add` or `replace` of the ratio.
pub fn jsonpatch_ratio(annotation: &str) -> Option<String> {
    let ops: Vec<Value> = serde_json::from_str(annotation).ok()?;
    ops.iter()
        .filter(|op| op["path"] == RATIO_POINTER && (op["op"] == "add" || op["op"] == "replace"))
        .filter_map(|op| op["value"].as_str().map(str::to_owned))
        .next_back()
}

/// The annotation that sets `ratio`: the existing operations kept, any on the ratio replaced by
/// one `add` (which, on a member that exists, replaces it). Err when the existing annotation is
/// not a JSON array: overwriting it would drop what someone put there.
pub fn jsonpatch_with_ratio(existing: Option<&str>, ratio: &str) -> Result<String, String> {
    let mut ops: Vec<Value> = match existing {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            format!("the {HCO_JSONPATCH} annotation is not a JSON array of operations ({e}); edit it by hand")
        })?,
    };
    ops.retain(|op| op["path"] != RATIO_POINTER);
    ops.push(json!({"op": "add", "path": RATIO_POINTER, "value": ratio}));
    serde_json::to_string(&ops).map_err(|e| e.to_string())
}

/// The KubeVirt CR and the HyperConverged CR, each listed cluster-wide; a 404 (the API is not
/// served) or a 403 says there is none to use, and why.
pub async fn gather(cluster: &Cluster) -> Facts {
    let kubevirt = list(cluster, "kubevirt.io", &["v1"], "KubeVirt", "kubevirts")
        .await
        .and_then(|objects| {
            let first = objects.first().ok_or("no KubeVirt CR listed")?;
            let ratio = first.data["spec"]["configuration"]["additionalGuestMemoryOverheadRatio"]
                .as_str()
                .map(str::to_owned);
            Ok(KubeVirt {
                object: object(first),
                ratio,
            })
        });
    // HCO serves v1 since recently, v1beta1 before and still.
    let hyperconverged = list(
        cluster,
        "hco.kubevirt.io",
        &["v1", "v1beta1"],
        "HyperConverged",
        "hyperconvergeds",
    )
    .await
    .and_then(|objects| {
        let first = objects
            .first()
            .ok_or("no HyperConverged CR in the cluster")?;
        let jsonpatch = first
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(HCO_JSONPATCH))
            .cloned();
        Ok(HyperConverged {
            object: object(first),
            jsonpatch,
        })
    });
    Facts {
        kubevirt,
        hyperconverged,
    }
}

fn object(o: &DynamicObject) -> Object {
    Object {
        namespace: o.metadata.namespace.clone().unwrap_or_default(),
        name: o.metadata.name.clone().unwrap_or_default(),
    }
}

/// Every object of a kind at the first of `versions` the API serves, first by namespace and
/// name; Err says why none could be read.
async fn list(
    cluster: &Cluster,
    group: &str,
    versions: &[&str],
    kind: &str,
    plural: &'static str,
) -> Result<Vec<DynamicObject>, String> {
    let call = Call {
        verb: "list",
        resource: plural,
        namespace: None,
        name: "",
    };
    for version in versions {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let api: Api<DynamicObject> = Api::all_with(
            cluster.client.clone(),
            &ApiResource::from_gvk_with_plural(&gvk, plural),
        );
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                let mut items = list.items;
                items.sort_by_key(|o| (o.metadata.namespace.clone(), o.metadata.name.clone()));
                return Ok(items);
            }
            Err(e) => match call.error(&cluster.url, e) {
                ClusterError::NotFound { .. } => continue,
                other => return Err(other.to_string()),
            },
        }
    }
    Err(format!(
        "the API serves no {plural}.{group} ({})",
        versions.join(", ")
    ))
}

#[cfg(test)]
mod tests;
