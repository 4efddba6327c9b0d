//! The agent-sandbox objects cordon renders (kubernetes-sigs/agent-sandbox v0.5.x), as typed
//! structs with only the fields cordon sets. Core types come from k8s-openapi. Field names
//! follow the CRDs; `cordon kube check` validates the output against their schemas.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, PodSpec};
use k8s_openapi::api::networking::v1::{NetworkPolicyEgressRule, NetworkPolicyIngressRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// `Sandbox`'s group and version.
pub const SANDBOX_API: &str = "agents.x-k8s.io/v1beta1";
/// `SandboxTemplate`, `SandboxWarmPool`, `SandboxClaim`.
pub const EXTENSIONS_API: &str = "extensions.agents.x-k8s.io/v1beta1";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: SandboxSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxSpec {
    pub pod_template: PodTemplate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_claim_templates: Option<Vec<VolumeClaimTemplate>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_policy: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    pub metadata: PodTemplateMeta,
    pub spec: PodSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeClaimTemplate {
    pub metadata: VolumeClaimTemplateMeta,
    pub spec: PersistentVolumeClaimSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeClaimTemplateMeta {
    pub name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxTemplate {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: SandboxTemplateSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxTemplateSpec {
    pub pod_template: PodTemplate,
    pub network_policy: TemplateNetworkPolicy,
}

/// The template's own network policy (the controller turns it into a NetworkPolicy).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateNetworkPolicy {
    pub ingress: Vec<NetworkPolicyIngressRule>,
    pub egress: Vec<NetworkPolicyEgressRule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxWarmPool {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: SandboxWarmPoolSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxWarmPoolSpec {
    pub replicas: u32,
    pub sandbox_template_ref: LocalRef,
}

#[derive(Serialize)]
pub struct LocalRef {
    pub name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxClaim {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: SandboxClaimSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxClaimSpec {
    pub warm_pool_ref: LocalRef,
    pub lifecycle: ClaimLifecycle,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimLifecycle {
    pub shutdown_time: String,
    pub shutdown_policy: &'static str,
}
