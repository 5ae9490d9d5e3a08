//! The simulator's in-memory world and the operations on it. No HTTP here: routes translate.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::boot::BootedVm;
use crate::catalog::{Catalog, K8sSize, Offer};
use crate::config::SimConfig;
use crate::faults::FaultRule;
use crate::rng::SimRng;

/// Why an operation was refused, as the API would say it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// HTTP 200 with `error: true` and this message.
    Api(String),
    /// HTTP 200 with `data: false`.
    Missing,
    /// HTTP 404 with an error body.
    NotFound(String),
}

pub(crate) type Outcome<T> = Result<T, Refusal>;

/// A VM (active, or prepared inside a pending job).
#[derive(Debug, Clone, Serialize)]
pub struct VmRec {
    /// Numeric id.
    pub id: i64,
    /// Identifier.
    pub identifier: String,
    /// Host name.
    pub hostname: String,
    /// The offer it was made from.
    pub offer: Offer,
    /// Numeric datacenter id.
    pub dc_id: i64,
    /// OS image identifier.
    pub os: String,
    /// Project id.
    pub project_id: Option<i64>,
    /// Public IPv4.
    pub default_ip: String,
    /// Private IP.
    pub private_ip: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Notes.
    pub notes: Option<String>,
    /// SSH key identifier given at create.
    pub ssh_key_id: Option<String>,
    /// Startup script identifier given at create.
    pub script_id: Option<String>,
    /// cloud-init; never shown in dumps.
    #[serde(skip)]
    pub user_data: Option<String>,
    /// Powered on.
    pub power: bool,
    /// Creation time.
    pub created_on: String,
    /// When its create request was taken, in milliseconds since the Unix epoch (the ground truth for how
    /// soon a client asked for this VM).
    #[serde(default)]
    pub requested_at_ms: i64,
    /// Boots but never joins a cluster (fault taken at create).
    pub never_joins: bool,
    /// Became active (fault `never_active`: listed, but inactive, powered off and without an IP).
    pub active: bool,
}

impl VmRec {
    pub(crate) fn booted(&self, join_delay: Duration, extra_taints: &str) -> BootedVm {
        BootedVm {
            identifier: self.identifier.clone(),
            hostname: self.hostname.clone(),
            default_ip: self.default_ip.clone(),
            private_ip: self.private_ip.clone(),
            user_data: self.user_data.clone(),
            tags: self.tags.clone(),
            cpu: self.offer.cpu,
            ram_mib: self.offer.ram,
            dc_identifier: self.offer.dc.clone(),
            offer_identifier: self.offer.identifier.clone(),
            offer_nickname: self.offer.nickname.clone(),
            disk_gib: self.offer.ssd,
            join_delay,
            never_joins: self.never_joins,
            extra_taints: extra_taints.to_owned(),
            cluster_identifier: None,
        }
    }
}

/// A create request still being processed.
#[derive(Debug, Clone, Serialize)]
pub struct PendingRec {
    /// Job id.
    pub job_id: String,
    /// The VM that will appear.
    pub vm: VmRec,
    /// The create request as echoed by `/vm/pending`.
    pub echo: serde_json::Value,
    /// When it boots; `None` never ("VM never boots" fault).
    #[serde(skip)]
    pub ready_at: Option<Instant>,
    /// When `/vm/pending` starts listing it (the API lists new creates late).
    #[serde(skip)]
    pub visible_at: Instant,
}

/// An SSH key.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SshKeyRec {
    /// Numeric id.
    pub id: i64,
    /// Identifier.
    pub identifier: String,
    /// Name.
    pub name: String,
    /// Public key.
    pub key: String,
    /// Creation time.
    pub created_on: String,
}

/// A startup script.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScriptRec {
    /// Numeric id.
    pub id: i64,
    /// Identifier.
    pub identifier: String,
    /// Name with `.sh`.
    pub name: String,
    /// Content.
    pub content: String,
    /// Creation time.
    pub created_on: String,
}

/// A tag.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TagRec {
    /// Identifier.
    pub identifier: String,
    /// Name.
    pub name: String,
    /// Colour.
    pub color: String,
}

/// A project.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProjectRec {
    /// Numeric id.
    pub id: i64,
    /// Identifier.
    pub identifier: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Default project.
    pub is_default: bool,
    /// Creation time.
    pub created_on: String,
}

/// A managed cluster node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRec {
    /// Numeric id.
    pub id: i64,
    /// Identifier.
    pub identifier: String,
    /// Host name.
    pub hostname: String,
    /// Public IP.
    pub default_ip: String,
    /// Private IP.
    pub private_ip: String,
    /// 1 master, 2 worker.
    pub node_type: i64,
    /// Group numeric id (workers).
    pub group_id: Option<i64>,
    /// Creation time.
    pub created_on: String,
}

/// A managed cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterRec {
    /// Numeric id.
    pub id: i64,
    /// Identifier.
    pub identifier: String,
    /// Name.
    pub name: String,
    /// Datacenter identifier.
    pub dc: String,
    /// Kubernetes version without `v`.
    pub kube_version: String,
    /// Nodes.
    pub nodes: Vec<NodeRec>,
    /// Creation time.
    pub created_on: String,
}

/// A node group of a managed cluster.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRec {
    /// Numeric id.
    pub id: i64,
    /// Identifier.
    pub identifier: String,
    /// Cluster identifier.
    pub cluster: String,
    /// Name.
    pub name: String,
    /// Node size.
    pub size: K8sSize,
    /// Creation time.
    pub created_on: String,
}

/// A managed node being added.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PendingNode {
    /// Cluster identifier.
    pub cluster: String,
    /// The node that will appear.
    pub node: NodeRec,
    /// When it appears; `None` never.
    #[serde(skip)]
    pub ready_at: Option<Instant>,
    /// Boots but never joins (fault taken at the request).
    pub never_joins: bool,
}

/// One served request, for assertions. Holds no header values and no bodies (they carry secrets).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LoggedRequest {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// HTTP status sent.
    pub status: u16,
    /// Which auth header was present: `vpsie-auth`, `bearer` or `none`.
    pub auth: String,
    /// The fault applied, if any.
    pub fault: Option<String>,
    /// The `User-Agent` header (tells the replicas of a client apart).
    #[serde(default)]
    pub user_agent: String,
    /// When the request arrived, in milliseconds since the Unix epoch (the ground truth for how soon a
    /// client asked for something, e.g. a VM after a pod went pending).
    #[serde(default)]
    pub received_at_ms: i64,
}

/// Settings that can change at run time.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RuntimeSettings {
    /// Boot delay in milliseconds.
    pub boot_delay_ms: u64,
    /// VMs created from now on never boot.
    pub never_boot: bool,
    /// VM quota.
    pub max_vms: Option<usize>,
    /// Lifetime of exchanged tokens in seconds.
    pub token_ttl_secs: u64,
    /// Send offer prices as strings (`"12.50"`) instead of numbers, as the real API does in some
    /// environments (govpsie `flexstring.go`); off by default, where the official clients' types hold.
    #[serde(default)]
    pub string_prices: bool,
    /// How long an accepted create stays out of `/vm/pending` (it is in neither list meanwhile), in
    /// milliseconds. The VM boots no earlier than this.
    #[serde(default)]
    pub pending_visibility_delay_ms: u64,
    /// How long after boot a VM's kubelet registers its Node (when the simulator joins a cluster), in
    /// milliseconds.
    #[serde(default)]
    pub join_delay_ms: u64,
    /// VMs and managed nodes created from now on boot but never join the cluster.
    #[serde(default)]
    pub never_join: bool,
    /// VMs created from now on leave the pending list but never become active: `is_active` 0, powered
    /// off, no IP (a VM stuck in provisioning that can still be deleted).
    #[serde(default)]
    pub never_active: bool,
    /// Taints every Node registered from now on carries besides those its kubelet flags ask for, in
    /// `--register-with-taints` form (`key[=value]:Effect`, comma-separated): a node agent that never
    /// removes its startup taint, for runaway-launch tests. Empty: none.
    #[serde(default)]
    pub join_taints: String,
}

/// The whole world.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) rng: SimRng,
    pub(crate) catalog: Catalog,
    pub(crate) settings: RuntimeSettings,
    next_id: i64,
    pub(crate) vms: Vec<VmRec>,
    pub(crate) pending: Vec<PendingRec>,
    pub(crate) ssh_keys: Vec<SshKeyRec>,
    pub(crate) scripts: Vec<ScriptRec>,
    pub(crate) tags: Vec<TagRec>,
    pub(crate) projects: Vec<ProjectRec>,
    pub(crate) clusters: Vec<ClusterRec>,
    pub(crate) groups: Vec<GroupRec>,
    pub(crate) pending_nodes: Vec<PendingNode>,
    /// Exchanged tokens and their expiry.
    pub(crate) issued_tokens: HashMap<String, Instant>,
    /// Long-lived access tokens accepted now (starts as the configured ones; replaceable to rotate).
    pub(crate) access_tokens: Vec<String>,
    pub(crate) faults: Vec<FaultRule>,
    pub(crate) log: Vec<LoggedRequest>,
}

pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}

/// Inputs of a VM create, already read from the body.
#[derive(Debug, Clone)]
pub(crate) struct CreateVm {
    pub(crate) hostname: String,
    pub(crate) dc: String,
    pub(crate) resource: String,
    pub(crate) os: String,
    pub(crate) project_id: Option<i64>,
    pub(crate) notes: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) user_data: Option<String>,
    pub(crate) ssh_key_id: Option<String>,
    pub(crate) script_id: Option<String>,
    pub(crate) echo: serde_json::Value,
}

impl State {
    pub(crate) fn new(config: &SimConfig) -> Self {
        let mut rng = SimRng::new(config.seed);
        let catalog = Catalog::generate(&mut rng, config.datacenters);
        let mut state = Self {
            catalog,
            settings: RuntimeSettings {
                boot_delay_ms: config.boot_delay.as_millis() as u64,
                never_boot: false,
                max_vms: config.max_vms,
                token_ttl_secs: config.token_ttl.as_secs(),
                string_prices: false,
                pending_visibility_delay_ms: 0,
                join_delay_ms: 0,
                never_join: false,
                join_taints: String::new(),
                never_active: false,
            },
            next_id: 1000,
            vms: Vec::new(),
            pending: Vec::new(),
            ssh_keys: Vec::new(),
            scripts: Vec::new(),
            tags: Vec::new(),
            projects: Vec::new(),
            clusters: Vec::new(),
            groups: Vec::new(),
            pending_nodes: Vec::new(),
            issued_tokens: HashMap::new(),
            access_tokens: config.access_tokens.clone(),
            faults: Vec::new(),
            log: Vec::new(),
            rng,
        };
        let identifier = state.rng.identifier();
        let id = state.id();
        state.projects.push(ProjectRec {
            id,
            identifier,
            name: "Default".into(),
            description: "Default project".into(),
            is_default: true,
            created_on: now_rfc3339(),
        });
        state
    }

    pub(crate) fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn ready_at(&self) -> Option<Instant> {
        (!self.settings.never_boot).then(|| Instant::now() + Duration::from_millis(self.settings.boot_delay_ms))
    }

    /// Accepts a create: validates like the API, then queues the VM as pending.
    pub(crate) fn create_vm(&mut self, req: CreateVm) -> Outcome<()> {
        if req.hostname.trim().is_empty() {
            return Err(Refusal::Api("hostname is required".into()));
        }
        let dc = self
            .catalog
            .datacenters
            .iter()
            .find(|d| d.identifier == req.dc)
            .ok_or_else(|| Refusal::Api(format!("Datacenter {} not found", req.dc)))?
            .clone();
        let offer = match self.catalog.offer(&req.resource) {
            Some(o) if o.dc == dc.identifier => o.clone(),
            _ => return Err(Refusal::Api("Please select the right package for this OS".into())),
        };
        if !self.catalog.os_images.iter().any(|i| i.identifier == req.os) {
            return Err(Refusal::Api("Please select the right package for this OS".into()));
        }
        if let Some(max) = self.settings.max_vms
            && self.vms.len() + self.pending.len() >= max
        {
            return Err(Refusal::Api(format!("Number of servers exceeds the allowed limit of {max}")));
        }
        let vm = VmRec {
            id: self.id(),
            identifier: self.rng.identifier(),
            hostname: req.hostname,
            offer,
            dc_id: dc.id,
            os: req.os,
            project_id: req.project_id,
            default_ip: self.rng.ip("203.0"),
            private_ip: self.rng.ip("10.10"),
            tags: req.tags,
            notes: req.notes,
            ssh_key_id: req.ssh_key_id,
            script_id: req.script_id,
            user_data: req.user_data,
            power: true,
            created_on: now_rfc3339(),
            requested_at_ms: jiff::Timestamp::now().as_millisecond(),
            never_joins: self.settings.never_join,
            active: !self.settings.never_active,
        };
        let job_id = self.id().to_string();
        let visible_at = Instant::now() + Duration::from_millis(self.settings.pending_visibility_delay_ms);
        let ready_at = self.ready_at().map(|t| t.max(visible_at));
        self.pending.push(PendingRec { job_id, vm, echo: req.echo, ready_at, visible_at });
        Ok(())
    }

    /// The pending creates `/vm/pending` lists now.
    pub(crate) fn listed_pending(&self, now: Instant) -> impl Iterator<Item = &PendingRec> {
        self.pending.iter().filter(move |p| p.visible_at <= now)
    }

    /// Deletes a VM after checking the account password. Only created VMs have an identifier; a VM still
    /// pending is "Server not found" and boots later all the same.
    pub(crate) fn delete_vm(&mut self, identifier: &str, password: &str, expected: &str) -> Outcome<VmRec> {
        if password != expected {
            return Err(Refusal::Api("You entered the wrong password".into()));
        }
        let pos = self
            .vms
            .iter()
            .position(|v| v.identifier == identifier)
            .ok_or_else(|| Refusal::NotFound("Server not found".into()))?;
        Ok(self.vms.remove(pos))
    }

    /// Moves every pending VM and node whose time has come to active; returns what booted.
    pub(crate) fn boot_due(&mut self, now: Instant) -> Vec<crate::boot::BootedVm> {
        let mut booted = Vec::new();
        let join_delay = Duration::from_millis(self.settings.join_delay_ms);
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending).into_iter().partition(|p| p.ready_at.is_some_and(|t| t <= now));
        self.pending = waiting;
        for mut p in due {
            if p.vm.active {
                booted.push(p.vm.booted(join_delay, &self.settings.join_taints));
            } else {
                p.vm.power = false;
                p.vm.default_ip.clear();
                p.vm.private_ip.clear();
            }
            self.vms.push(p.vm);
        }
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending_nodes).into_iter().partition(|p| p.ready_at.is_some_and(|t| t <= now));
        self.pending_nodes = waiting;
        for p in due {
            let size = self.groups.iter().find(|g| Some(g.id) == p.node.group_id).map(|g| g.size.clone());
            if let Some(cluster) = self.clusters.iter_mut().find(|c| c.identifier == p.cluster) {
                booted.push(crate::boot::BootedVm {
                    identifier: p.node.identifier.clone(),
                    hostname: p.node.hostname.clone(),
                    default_ip: p.node.default_ip.clone(),
                    private_ip: p.node.private_ip.clone(),
                    user_data: None,
                    tags: Vec::new(),
                    cpu: size.as_ref().map_or(0, |s| s.cpu),
                    ram_mib: size.as_ref().map_or(0, |s| s.ram),
                    dc_identifier: cluster.dc.clone(),
                    offer_identifier: String::new(),
                    offer_nickname: size.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
                    disk_gib: size.as_ref().map_or(0, |s| s.disk),
                    join_delay,
                    never_joins: p.never_joins,
                    extra_taints: self.settings.join_taints.clone(),
                    cluster_identifier: Some(cluster.identifier.clone()),
                });
                cluster.nodes.push(p.node);
            }
        }
        booted
    }

    /// Boots one pending VM now, whatever its delay.
    pub(crate) fn force_boot(&mut self, identifier_or_hostname: &str) -> bool {
        let now = Instant::now();
        let mut found = false;
        for p in &mut self.pending {
            if p.vm.identifier == identifier_or_hostname || p.vm.hostname == identifier_or_hostname {
                p.ready_at = Some(now);
                found = true;
            }
        }
        found
    }

    /// Makes a worker node record for a managed cluster.
    pub(crate) fn new_node(&mut self, cluster_name: &str, group_id: Option<i64>, node_type: i64) -> NodeRec {
        let id = self.id();
        NodeRec {
            id,
            identifier: self.rng.identifier(),
            hostname: format!("{cluster_name}-{}-{id}", if node_type == 1 { "master" } else { "worker" }),
            default_ip: self.rng.ip("198.51"),
            private_ip: self.rng.ip("10.20"),
            node_type,
            group_id,
            created_on: now_rfc3339(),
        }
    }

    /// Creates a managed cluster with one master node.
    pub(crate) fn create_cluster(&mut self, name: &str, dc: &str, kube_version: &str) -> Outcome<String> {
        if !self.catalog.datacenters.iter().any(|d| d.identifier == dc) {
            return Err(Refusal::Api(format!("Datacenter {dc} not found")));
        }
        let master = self.new_node(name, None, 1);
        let rec = ClusterRec {
            id: self.id(),
            identifier: self.rng.identifier(),
            name: name.to_owned(),
            dc: dc.to_owned(),
            kube_version: kube_version.trim_start_matches('v').to_owned(),
            nodes: vec![master],
            created_on: now_rfc3339(),
        };
        let identifier = rec.identifier.clone();
        self.clusters.push(rec);
        Ok(identifier)
    }

    pub(crate) fn cluster(&self, identifier: &str) -> Outcome<&ClusterRec> {
        self.clusters.iter().find(|c| c.identifier == identifier).ok_or(Refusal::Missing)
    }

    /// Adds a node group; a second group of the same size is refused as the API does.
    pub(crate) fn add_group(&mut self, cluster: &str, name: &str, size_id: i64) -> Outcome<()> {
        self.cluster(cluster)?;
        let size = self
            .catalog
            .k8s_sizes
            .iter()
            .find(|s| s.id == size_id)
            .cloned()
            .ok_or_else(|| Refusal::Api(format!("Unknown KubeSizeID {size_id}")))?;
        if self.groups.iter().any(|g| g.cluster == cluster && g.size.id == size_id) {
            return Err(Refusal::Api(format!("Group {name} has same selected Size, please select another size")));
        }
        let rec = GroupRec {
            id: self.id(),
            identifier: self.rng.identifier(),
            cluster: cluster.to_owned(),
            name: name.to_owned(),
            size,
            created_on: now_rfc3339(),
        };
        self.groups.push(rec);
        Ok(())
    }

    /// The cluster's default node group: the first one made. The `add/slave` and `reduce` calls without a
    /// group act on it.
    pub(crate) fn default_group(&self, cluster: &str) -> Outcome<i64> {
        let c = self.cluster(cluster)?;
        self.groups
            .iter()
            .filter(|g| g.cluster == c.identifier)
            .map(|g| g.id)
            .min()
            .ok_or_else(|| Refusal::Api("The cluster has no node group".into()))
    }

    /// Deletes a managed cluster with its groups and nodes; returns the nodes removed.
    pub(crate) fn delete_cluster(&mut self, identifier: &str) -> Outcome<Vec<NodeRec>> {
        let pos = self.clusters.iter().position(|c| c.identifier == identifier).ok_or(Refusal::Missing)?;
        let c = self.clusters.remove(pos);
        self.groups.retain(|g| g.cluster != c.identifier);
        self.pending_nodes.retain(|p| p.cluster != c.identifier);
        Ok(c.nodes)
    }

    /// Queues one more worker in a group.
    pub(crate) fn add_group_node(&mut self, cluster: &str, group_id: i64) -> Outcome<()> {
        let name = self.cluster(cluster)?.name.clone();
        if !self.groups.iter().any(|g| g.id == group_id && g.cluster == cluster) {
            return Err(Refusal::Api(format!("Group {group_id} not found in cluster")));
        }
        let node = self.new_node(&name, Some(group_id), 2);
        let ready_at = self.ready_at();
        let never_joins = self.settings.never_join;
        self.pending_nodes.push(PendingNode { cluster: cluster.to_owned(), node, ready_at, never_joins });
        Ok(())
    }

    /// Removes one worker of a group (the newest, as the API chooses for us).
    pub(crate) fn reduce_group(&mut self, cluster: &str, group_id: i64) -> Outcome<NodeRec> {
        let c = self.clusters.iter_mut().find(|c| c.identifier == cluster).ok_or(Refusal::Missing)?;
        let pos = c
            .nodes
            .iter()
            .rposition(|n| n.group_id == Some(group_id))
            .ok_or_else(|| Refusal::Api("The group has no node to remove".into()))?;
        Ok(c.nodes.remove(pos))
    }

    /// Removes one worker by identifier.
    pub(crate) fn delete_node(&mut self, cluster: &str, node: &str) -> Outcome<NodeRec> {
        let c = self.clusters.iter_mut().find(|c| c.identifier == cluster).ok_or(Refusal::Missing)?;
        let pos = c
            .nodes
            .iter()
            .position(|n| n.identifier == node && n.node_type == 2)
            .ok_or_else(|| Refusal::NotFound("Node not found".into()))?;
        Ok(c.nodes.remove(pos))
    }

    /// Deletes a node group and its nodes.
    pub(crate) fn delete_group(&mut self, identifier: &str) -> Outcome<Vec<NodeRec>> {
        let pos = self.groups.iter().position(|g| g.identifier == identifier).ok_or(Refusal::Missing)?;
        let g = self.groups.remove(pos);
        let mut removed = Vec::new();
        if let Some(c) = self.clusters.iter_mut().find(|c| c.identifier == g.cluster) {
            let (gone, kept): (Vec<_>, Vec<_>) =
                std::mem::take(&mut c.nodes).into_iter().partition(|n| n.group_id == Some(g.id));
            c.nodes = kept;
            removed = gone;
        }
        self.pending_nodes.retain(|p| p.node.group_id != Some(g.id));
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Creates a VM in `dc` from the offer `nickname` of `offer_dc`.
    fn create_from(state: &mut State, hostname: &str, dc: &str, offer_dc: &str, nickname: &str) -> Outcome<()> {
        let resource =
            state.catalog.offer_by_nickname(offer_dc, nickname).map(|o| o.identifier.clone()).unwrap_or_default();
        state.create_vm(CreateVm {
            hostname: hostname.into(),
            dc: dc.into(),
            resource,
            os: "ubuntu-22.04-lts".into(),
            project_id: None,
            notes: None,
            tags: vec![],
            user_data: None,
            ssh_key_id: None,
            script_id: None,
            echo: serde_json::json!({}),
        })
    }

    fn create(state: &mut State, hostname: &str, dc: &str, nickname: &str) -> Outcome<()> {
        create_from(state, hostname, dc, dc, nickname)
    }

    #[tokio::test(start_paused = true)]
    async fn vm_boots_after_delay_and_quota_holds() {
        let mut s = State::new(&SimConfig { max_vms: Some(1), ..SimConfig::default() });
        assert_eq!(create(&mut s, "a", "dc-us-east-1", "sc-2cpu-4gb"), Ok(()));
        assert!(
            matches!(create(&mut s, "b", "dc-us-east-1", "sc-2cpu-4gb"), Err(Refusal::Api(m)) if m.contains("exceeds the allowed limit"))
        );
        assert!(s.boot_due(Instant::now()).is_empty());
        tokio::time::advance(Duration::from_millis(600)).await;
        let booted = s.boot_due(Instant::now());
        assert_eq!(booted.len(), 1);
        assert_eq!(s.vms.len(), 1);
        assert!(s.pending.is_empty());
    }

    #[test]
    fn offer_must_belong_to_the_datacenter() {
        let mut s = State::new(&SimConfig::default());
        let r = create_from(&mut s, "x", "dc-us-east-1", "dc-us-west-1", "sc-2cpu-4gb");
        assert_eq!(r, Err(Refusal::Api("Please select the right package for this OS".into())));
    }

    #[test]
    fn managed_groups_refuse_duplicate_size() {
        let mut s = State::new(&SimConfig::default());
        let c = s.create_cluster("demo", "dc-us-east-1", "1.36.3").unwrap_or_default();
        assert_eq!(s.add_group(&c, "g1", 2), Ok(()));
        assert!(matches!(s.add_group(&c, "g2", 2), Err(Refusal::Api(m)) if m.contains("same selected Size")));
    }
}
