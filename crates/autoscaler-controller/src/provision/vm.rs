//! Plain VPSie VMs that join the cluster through their cloud-init user data.

use autoscaler_api::VPSieNode;
use vpsie_client::{CreateOutcome, CreateVmRequest, DeleteOutcome, Ownership, Secret, Vm, VmLookup};

use super::{Instance, Lookup, Machine, Pass, Provisioner, Removal, vm_provider_ids};
use crate::error::{Error, Result};

/// The VM backend for the VPSieNodes of one NodeGroup.
#[derive(Debug, Clone)]
pub struct VmBackend {
    /// The operator's cluster id (ownership tag).
    pub cluster_id: String,
    /// The account password VM delete needs (the credentials Secret's `deletePassword`).
    pub delete_password: Option<Secret>,
    /// The group's VPSie project identifier.
    pub project: Option<String>,
    /// The group's notes for the VPSie console.
    pub notes: Option<String>,
}

impl VmBackend {
    fn request(&self, vn: &VPSieNode, user_data: Option<Secret>) -> CreateVmRequest {
        let s = &vn.spec;
        let mut req = CreateVmRequest::new(&s.hostname, &s.datacenter_id, &s.offering_id, &s.os_image_id);
        req.project_id = self.project.clone();
        req.notes = self.notes.clone();
        // The API takes one SSH key at create; the first one of the group (or the operator default) wins.
        req.ssh_key_identifier = s.ssh_key_ids.first().cloned();
        req.tags = s.tags.clone();
        req.user_data = user_data;
        Ownership::new(&self.cluster_id, &s.node_group_name).apply(&mut req);
        req
    }
}

fn instance(vm: &Vm) -> Instance {
    Instance {
        id: vm.id,
        identifier: vm.identifier.clone(),
        hostname: vm.hostname.clone(),
        public_ip: Some(vm.default_ip.clone()).filter(|ip| !ip.is_empty()),
        private_ip: vm.private_ip.clone().filter(|ip| !ip.is_empty()),
        ready: vm.is_ready(),
        provider_ids: vm_provider_ids(&vm.identifier, &vm.hostname),
    }
}

impl Provisioner for VmBackend {
    async fn find(&self, pass: &mut Pass, vn: &VPSieNode) -> Result<Machine> {
        let fleet = pass.fleet().await?;
        Ok(match fleet.find(&vn.spec.hostname).map(|v| &v.lookup) {
            None => Machine::NotListed,
            Some(VmLookup::Pending(_)) => Machine::Pending,
            Some(VmLookup::Created(vm)) => Machine::Active(instance(vm)),
        })
    }

    async fn look_up(&self, pass: &mut Pass, vn: &VPSieNode, identifier: &str) -> Result<Lookup> {
        match pass.client().get_vm(identifier).await {
            Ok(detail) if detail.vm.is_deleted || detail.vm.is_terminated => Ok(Lookup::NotFound),
            Ok(detail) => {
                // The identifier is the VM's; a host name changed in the VPSie panel does not make it another.
                if !detail.vm.hostname.eq_ignore_ascii_case(&vn.spec.hostname) {
                    tracing::warn!(vpsienode = %vn.spec.hostname, vm = identifier, now = %detail.vm.hostname, "the VM's host name changed in VPSie");
                }
                Ok(Lookup::Found(instance(&detail.vm)))
            }
            Err(e) if e.is_not_found() => Ok(Lookup::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    async fn create(&self, pass: &mut Pass, vn: &VPSieNode, user_data: Option<Secret>) -> Result<()> {
        let request = self.request(vn, user_data);
        let client = pass.client().clone();
        let fleet = pass.fleet().await?;
        // The client logs a request it sends; only a create it did not send is said here.
        if !matches!(client.create_vm_in(fleet, &request).await?, CreateOutcome::Requested) {
            tracing::info!(hostname = %vn.spec.hostname, "VM already requested; not creating another");
        }
        Ok(())
    }

    async fn delete(&self, pass: &mut Pass, vn: &VPSieNode) -> Result<Removal> {
        let password = self.delete_password.clone().ok_or_else(|| {
            Error::Config("the credentials Secret has no `deletePassword`, which deleting a VPSie VM needs".into())
        })?;
        let client = pass.client().clone();
        let fleet = pass.fleet().await?;
        let reason = format!("vpsie-autoscaler removed node {}", vn.spec.hostname);
        Ok(match client.delete_vm_in(fleet, &vn.spec.hostname, &password, &reason).await? {
            DeleteOutcome::Deleted => Removal::Deleted,
            DeleteOutcome::StillPending => Removal::StillPending,
            // Not listed, but seen before (a lookup may have found it): delete by its recorded identifier.
            DeleteOutcome::NotListed => match vn.status.as_ref().and_then(|s| s.vm_identifier.as_deref()) {
                Some(identifier) => match client.delete_vm(identifier, &password, &reason).await {
                    Ok(()) => Removal::Deleted,
                    Err(e) if e.is_not_found() => Removal::NotListed,
                    Err(e) => return Err(e.into()),
                },
                None => Removal::NotListed,
            },
        })
    }
}
