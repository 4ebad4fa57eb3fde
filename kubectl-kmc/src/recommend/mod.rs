//! `kubectl kmc recommend`: each VM's history from Prometheus (I/O here), read through the
//! recording rules ([`crate::fleet`]), of the pods KubeVirt vouches for ([`crate::vouch`]); the
//! method in [`math`], the budgets' release in [`release`], the table and the patches in
//! [`render`]. The PromQL asked is [`queries`]; the answers become one history per VM in
//! [`assemble`], without I/O.
//!
//! Every answer is per pod, so that each pod is vouched for on its own: a VM's value is reduced
//! over its vouched pods here (the largest peak, the smallest estimate), not in PromQL.

mod assemble;
pub mod math;
mod queries;
pub mod release;
pub mod render;
pub mod target;

use anyhow::{Result, bail};
use kube_metrics_contract::rules;

pub use assemble::{Answers, assemble};
use queries::Queries;

use crate::cli::VouchArgs;
use crate::fleet::{Relayed, Scope};
use crate::prom::Prometheus;
use crate::units::promql_duration;
use crate::vouch::NoVouchers;
use math::{Fleet, Settings};

/// Every VM with a launcher pod in the range, in scope, relayed series read where `relayed` says
/// they are.
pub async fn fetch(
    prometheus: &Prometheus,
    scope: &Scope,
    settings: &Settings,
    vouch: &VouchArgs,
    relayed: &Relayed,
) -> Result<Fleet> {
    let q = Queries {
        r: promql_duration(settings.range),
        s: promql_duration(settings.resolution),
        job: vouch.kubevirt_job.clone(),
    };
    let ask = |expr: String| async move { prometheus.query(&expr).await.map(|s| scope.filter(s)) };
    let read = |expr: String| relayed.read(&expr);
    let trends_query = read(q.trends())?;
    let trends = async {
        let series = prometheus.query_series(&trends_query).await?;
        Ok::<_, crate::prom::PromError>(
            series
                .into_iter()
                .filter(|s| scope.keeps(&s.labels))
                .collect(),
        )
    };
    let vouchers_query = q.vouchers();
    let (vouchers, pods, first, last, peak, estimate, allowance, kills) = tokio::try_join!(
        prometheus.query(&vouchers_query),
        ask(read(q.pods())?),
        ask(read(q.measured("min"))?),
        ask(read(q.measured("max"))?),
        ask(read(q.peak())?),
        ask(read(q.estimate())?),
        ask(read(q.allowance())?),
        ask(q.kills()),
    )?;
    if vouchers.is_empty() && !vouch.allow_unvouched {
        return Err(NoVouchers {
            job: q.job.clone(),
            range: format!(" in the last {}", q.r),
        }
        .into());
    }
    if pods.is_empty() {
        let r = &q.r;
        match &scope.namespace {
            Some(ns) => bail!(
                "Prometheus has no kubevirt_pod_infra_pod_info in namespace {ns} in the last {r}"
            ),
            None => bail!(
                "Prometheus has no kubevirt_pod_infra_pod_info in the last {r}: is the collector installed and scraped?"
            ),
        }
    }
    let (trends, over_budget, budget, guest_memory, vcpus, instancetypes, budget_releases) = tokio::try_join!(
        trends,
        ask(read(q.per_component(rules::COMPONENT_OVER_BUDGET))?),
        ask(read(q.per_component(rules::COMPONENT_BUDGET))?),
        ask(read(q.guest_memory())?),
        ask(q.vcpus()),
        ask(q.instancetypes()),
        ask(read(q.budget_releases())?),
    )?;
    let kubevirt_releases = prometheus.query(&q.kubevirt_releases()).await?;
    Ok(assemble(&Answers {
        vouchers,
        pods,
        first,
        last,
        peak,
        estimate,
        allowance,
        kills,
        trends,
        over_budget,
        budget,
        guest_memory,
        vcpus,
        instancetypes,
        budget_releases,
        kubevirt_releases,
    }))
}

#[cfg(test)]
mod tests;
