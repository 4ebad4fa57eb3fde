//! Where the ratio is set, as the cluster's KubeVirt and HyperConverged objects say.

use super::*;

fn obj(namespace: &str, name: &str) -> Object {
    Object {
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn kubevirt(ratio: Option<&str>) -> Result<KubeVirt, String> {
    Ok(KubeVirt {
        object: obj("kubevirt", "kubevirt"),
        ratio: ratio.map(str::to_owned),
    })
}

fn hco(jsonpatch: Option<&str>) -> Result<HyperConverged, String> {
    Ok(HyperConverged {
        object: obj("openshift-cnv", "kubevirt-hyperconverged"),
        jsonpatch: jsonpatch.map(str::to_owned),
    })
}

const SET_1_2: &str = r#"[{"op":"add","path":"/spec/configuration/additionalGuestMemoryOverheadRatio","value":"1.2"}]"#;

/// The facts, `--current-ratio`, and the ratio with where it came from, or the error.
type Case = (
    Facts,
    Option<f64>,
    Result<(f64, &'static str), &'static str>,
);

#[test]
fn the_current_ratio_and_where_it_came_from() {
    let none = || Err("the API serves no hyperconvergeds.hco.kubevirt.io (v1, v1beta1)".to_owned());
    let cases: [Case; 7] = [
        (
            Facts {
                kubevirt: kubevirt(Some("1.3")),
                hyperconverged: none(),
            },
            None,
            Ok((1.3, "the KubeVirt CR kubevirt/kubevirt")),
        ),
        (
            Facts {
                kubevirt: kubevirt(Some("1.3")),
                hyperconverged: none(),
            },
            Some(1.5),
            Ok((1.5, "--current-ratio")),
        ),
        (
            Facts {
                kubevirt: kubevirt(None),
                hyperconverged: none(),
            },
            None,
            Ok((1.0, "KubeVirt's default (its CR sets none)")),
        ),
        // HCO's annotation counts only when the KubeVirt CR is not readable: once applied the
        // CR carries it.
        (
            Facts {
                kubevirt: Err("forbidden".into()),
                hyperconverged: hco(Some(SET_1_2)),
            },
            None,
            Ok((
                1.2,
                "kubevirt.kubevirt.io/jsonpatch of openshift-cnv/kubevirt-hyperconverged",
            )),
        ),
        (
            Facts {
                kubevirt: kubevirt(Some("1.25")),
                hyperconverged: hco(Some(SET_1_2)),
            },
            None,
            Ok((1.25, "the KubeVirt CR kubevirt/kubevirt")),
        ),
        (
            Facts::unread("no cluster"),
            None,
            Ok((
                1.0,
                "KubeVirt's default (the cluster was not read; --current-ratio sets it)",
            )),
        ),
        (
            Facts {
                kubevirt: kubevirt(Some("a lot")),
                hyperconverged: none(),
            },
            None,
            Err(
                "the KubeVirt CR kubevirt/kubevirt sets additionalGuestMemoryOverheadRatio \"a lot\", not a number of at least 1.0: pass --current-ratio",
            ),
        ),
    ];
    for (facts, flag, want) in cases {
        let got = decide(&facts, flag);
        match (got, want) {
            (Ok(t), Ok((ratio, from))) => {
                assert_eq!((t.current_ratio, t.current_from.as_str()), (ratio, from));
            }
            (Err(e), Err(want)) => assert_eq!(e, want),
            (got, want) => panic!("{facts:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn who_takes_the_ratio() {
    let cases = [
        (
            Facts {
                kubevirt: kubevirt(None),
                hyperconverged: Err("404".into()),
            },
            Manager::KubeVirt {
                object: obj("kubevirt", "kubevirt"),
                no_hco: "404".into(),
            },
        ),
        (
            Facts {
                kubevirt: kubevirt(None),
                hyperconverged: hco(Some("[]")),
            },
            Manager::HyperConverged {
                object: obj("openshift-cnv", "kubevirt-hyperconverged"),
                existing: Some("[]".into()),
            },
        ),
        (Facts::unread("no cluster"), Manager::Unread),
    ];
    for (facts, want) in cases {
        assert_eq!(decide(&facts, None).unwrap().manager, want, "{facts:?}");
    }
}

#[test]
fn the_annotation_keeps_other_operations_and_replaces_the_ratio() {
    let post_copy =
        r#"{"op":"add","path":"/spec/configuration/migrations","value":{"allowPostCopy":true}}"#;
    let ratio = |r: &str| {
        format!(
            r#"{{"op":"add","path":"/spec/configuration/additionalGuestMemoryOverheadRatio","value":"{r}"}}"#
        )
    };
    let cases = [
        (None, Ok(format!("[{}]", ratio("1.15")))),
        (
            Some(format!("[{post_copy}]")),
            Ok(format!("[{post_copy},{}]", ratio("1.15"))),
        ),
        (
            Some(format!("[{},{post_copy}]", ratio("1.1"))),
            Ok(format!("[{post_copy},{}]", ratio("1.15"))),
        ),
        (Some("{not json".to_owned()), Err(())),
    ];
    for (existing, want) in cases {
        let got = jsonpatch_with_ratio(existing.as_deref(), "1.15").map_err(drop);
        assert_eq!(got, want, "{existing:?}");
    }
    assert_eq!(jsonpatch_ratio(SET_1_2).as_deref(), Some("1.2"));
    assert_eq!(jsonpatch_ratio(&format!("[{post_copy}]")), None);
    assert_eq!(jsonpatch_ratio("nonsense"), None);
}
