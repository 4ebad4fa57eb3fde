//! The VMI list the memory tests' fake API server serves (it stands in for kube-apiserver, which
//! cannot run here): generated VMIs, paged as the client asks, and what the webhook asked for.
use kube_metrics_fake_api::{Answer, FakeApi, Request};

/// Every namespace's VMIs: the list the webhook's cache reads, then watches.
pub const VMIS_PATH: &str = "/apis/kubevirt.io/v1/virtualmachineinstances";

/// The page of `total` VMIs that `request` asks for, the `i`th VMI as `item(i)` makes it.
pub fn vmi_page(request: &Request, total: usize, item: impl Fn(usize) -> String) -> Answer {
    let (range, next) = request.page(total);
    let items: Vec<String> = range.map(item).collect();
    Answer::list(
        "kubevirt.io/v1",
        "VirtualMachineInstanceList",
        &items,
        &next,
    )
}

/// A list of the VMIs (a page of it).
pub fn is_list(request: &Request) -> bool {
    request.path == VMIS_PATH && !request.is_watch()
}

/// The watch that follows the list.
pub fn is_watch(request: &Request) -> bool {
    request.path == VMIS_PATH && request.is_watch()
}

/// Anything else: a GET of one VMI, which the cache should have spared.
pub fn is_get(request: &Request) -> bool {
    request.path != VMIS_PATH
}

/// How many requests of a kind the fake received.
pub fn received(api: &FakeApi, kind: fn(&Request) -> bool) -> usize {
    api.requests()
        .iter()
        .filter(|request| kind(request))
        .count()
}
