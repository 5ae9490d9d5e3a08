//! The typed endpoints end to end: VM lifecycle, idempotent create, catalog, pagination, account
//! objects and managed Kubernetes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use vpsie_client::{CreateOutcome, CreateVmRequest, Secret, VmLookup, VmPathPrefix, VpsieClient};
use vpsie_sim::{FaultKind, FaultRule, SimConfig};

async fn wait_active(client: &VpsieClient, hostname: &str) -> vpsie_client::Vm {
    eventually(10, || async {
        match client.find_vm_by_hostname(hostname).await.unwrap() {
            Some(VmLookup::Created(vm)) if vm.is_ready() => Some(vm),
            _ => None,
        }
    })
    .await
}

#[tokio::test]
async fn vm_lifecycle_pending_then_ready_then_deleted() {
    let sim = sim().await;
    let client = token_client(&sim);
    let mut req = CreateVmRequest::new("life-1", DC, offer(&sim, DC, "sc-4cpu-8gb"), OS);
    req.tags = vec!["cluster:demo".into(), "nodegroup:general".into()];
    req.user_data = Some(Secret::new("#cloud-config\n"));
    assert_eq!(client.create_vm(&req).await.unwrap(), CreateOutcome::Requested);
    let pending = client.list_pending_vms().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].data.hostname, "life-1");
    assert_eq!(pending[0].data.dc_identifier, DC);

    sim.force_boot("life-1");
    let vm = wait_active(&client, "life-1").await;
    assert_eq!((vm.cpu, vm.ram), (4, 8192));
    assert!(vm.private_ip.is_some());
    let detail = client.get_vm(&vm.identifier).await.unwrap();
    assert_eq!(detail.tags, req.tags);
    assert_eq!(client.vm_status(&vm.identifier).await.unwrap().status, "running");
    let tagged = client.list_vms_with_tag("nodegroup:general").await.unwrap();
    assert_eq!(tagged.len(), 1);

    client.delete_vm(&vm.identifier, &Secret::new("sim-password"), "scale-down").await.unwrap();
    assert!(client.list_vms(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn create_is_idempotent_across_a_crash() {
    let sim = sim().await;
    let req = CreateVmRequest::new("crash-safe", DC, offer(&sim, DC, "sc-2cpu-4gb"), OS);
    // First process: requests the VM, then "crashes" (the client is dropped before it records anything).
    {
        let first = token_client(&sim);
        assert_eq!(first.create_vm(&req).await.unwrap(), CreateOutcome::Requested);
    }
    // The restarted process retries the same create while the VM is still pending...
    let second = token_client(&sim);
    assert!(matches!(second.create_vm(&req).await.unwrap(), CreateOutcome::AlreadyExists(VmLookup::Pending(_))));
    // ...and again once it is active.
    sim.force_boot("crash-safe");
    wait_active(&second, "crash-safe").await;
    assert!(matches!(second.create_vm(&req).await.unwrap(), CreateOutcome::AlreadyExists(VmLookup::Created(_))));
    assert_eq!(sim.count_requests("POST", "/apps/v2/vm"), 1);
    assert_eq!(sim.dump().vms.len(), 1);
}

#[tokio::test]
async fn create_that_failed_after_taking_effect_is_found_on_retry() {
    let sim = sim().await;
    sim.add_fault(FaultRule::new(Some("POST"), "/apps/v2/vm", FaultKind::FailAfterEffect).times(1));
    let client = token_client(&sim);
    let req = CreateVmRequest::new("ambiguous", DC, offer(&sim, DC, "sc-2cpu-4gb"), OS);
    assert_eq!(client.create_vm(&req).await.unwrap_err().kind(), "server");
    assert!(matches!(client.create_vm(&req).await.unwrap(), CreateOutcome::AlreadyExists(_)));
    assert_eq!(sim.dump().pending.len() + sim.dump().vms.len(), 1, "no second VM");
}

#[tokio::test]
async fn a_vm_that_never_boots_stays_pending() {
    let sim = sim().await;
    sim.update_settings(|s| s.never_boot = true);
    let client = token_client(&sim);
    client.create_vm(&CreateVmRequest::new("stuck", DC, offer(&sim, DC, "sc-1cpu-1gb"), OS)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(client.find_vm_by_hostname("stuck").await.unwrap(), Some(VmLookup::Pending(_))));
}

#[tokio::test]
async fn both_vm_path_prefixes_are_served() {
    let sim = sim().await;
    let mut cfg = token_config(&sim);
    cfg.vm_prefix = VmPathPrefix::ApiV2;
    let client = VpsieClient::new(cfg).unwrap();
    client.create_vm(&CreateVmRequest::new("api-prefix", DC, offer(&sim, DC, "sc-1cpu-2gb"), OS)).await.unwrap();
    assert_eq!(sim.count_requests("POST", "/api/v2/vm"), 1);
    assert_eq!(token_client(&sim).list_pending_vms().await.unwrap().len(), 1, "same VM under /apps/v2/vm");
}

#[tokio::test]
async fn datacenters_are_read_across_pages() {
    let sim = sim_with(SimConfig { datacenters: 23, ..SimConfig::default() }).await;
    let client = token_client(&sim);
    let dcs = client.list_datacenters_paged(5).await.unwrap();
    assert_eq!(dcs.len(), 23);
    let mut ids: Vec<_> = dcs.iter().map(|d| d.identifier.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 23, "no page read twice");
    assert_eq!(sim.count_requests("GET", "/apps/v2/datacenter"), 5);
    assert!(sim.requests().iter().any(|r| r.query == "offset=20&limit=5"));
}

#[tokio::test]
async fn offers_decode_prices_sent_as_numbers_and_as_strings() {
    let sim = sim().await;
    let client = token_client(&sim);
    let cats = client.list_plan_categories().await.unwrap();
    assert_eq!(cats.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Shared CPU", "Compute Optimized"]);
    // The official clients' shape (numbers), then the one some environments send (strings), on the same
    // offers and managed sizes.
    for string_prices in [false, true] {
        sim.update_settings(|s| s.string_prices = string_prices);
        for dc in ["dc-us-east-1", "dc-us-west-1"] {
            let offers = client.list_offers(dc, OS, &cats[0].identifier).await.unwrap();
            let small = offers.iter().find(|o| o.nickname == "sc-2cpu-4gb").expect("offer");
            assert!(small.price > 0.0 && (small.price * 100.0).fract().abs() < 1e-9, "{dc}: {}", small.price);
            assert_eq!((small.cpu, small.ram, small.net_speed.as_str()), (2, 4096, "1000"));
            assert_eq!(sim.catalog().offer(&small.identifier).map(|o| o.price), Some(small.price));
        }
        let k8s = client.list_k8s_offers(DC).await.unwrap();
        assert!(k8s.iter().all(|o| o.price > 0.0 && o.hourly_price > 0.0), "string prices: {string_prices}");
    }
    assert!(!client.list_os_images().await.unwrap().is_empty());
    assert!(sim.requests().iter().any(|r| r.path == "/apps/v2/resources"));
}

#[tokio::test]
async fn account_objects_round_trip() {
    let sim = sim().await;
    let client = token_client(&sim);
    let key = client.add_ssh_key("ops", "ssh-ed25519 AAAA ops@example").await.unwrap();
    assert_eq!(client.get_ssh_key(&key.identifier).await.unwrap().public_key, "ssh-ed25519 AAAA ops@example");
    client.delete_ssh_key(&key.identifier).await.unwrap();
    assert!(client.list_ssh_keys().await.unwrap().is_empty());

    let script = client.add_script("join", "#!/bin/bash\necho hi", &[]).await.unwrap();
    assert_eq!(script.script_name, "join.sh");
    assert_eq!(client.get_script(&script.identifier).await.unwrap().script, "#!/bin/bash\necho hi");
    client.delete_script(&script.identifier).await.unwrap();

    let tag = client.ensure_tag("autoscaler", "#00ff00").await.unwrap();
    assert_eq!(client.ensure_tag("autoscaler", "#00ff00").await.unwrap(), tag, "ensure is idempotent");

    let projects = client.list_projects().await.unwrap();
    assert!(projects.iter().any(|p| p.is_default));
    let p = client.add_project("autoscaled", "nodes").await.unwrap();
    assert_eq!(client.get_project(&p.identifier).await.unwrap().name, "autoscaled");
}

#[tokio::test]
async fn managed_kubernetes_groups_and_nodes() {
    let sim = sim_with(SimConfig { boot_delay: Duration::from_millis(100), ..SimConfig::default() }).await;
    let cluster = sim.create_cluster("demo", DC, "1.36.3").unwrap();
    let client = token_client(&sim);
    let clusters = client.list_clusters().await.unwrap();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].kube_version, "1.36.3");

    let size = client.list_k8s_offers(DC).await.unwrap()[1].id;
    let group = client.add_node_group(&cluster, "general", size).await.unwrap();
    assert_eq!(client.add_node_group(&cluster, "general", size).await.unwrap().id, group.id, "found by name");
    let err = client.add_node_group(&cluster, "other", size).await.unwrap_err();
    assert!(err.to_string().contains("same selected Size"), "{err}");

    client.add_group_node(&cluster, group.id).await.unwrap();
    client.add_group_node(&cluster, group.id).await.unwrap();
    let nodes = eventually(5, || async {
        let c = client.get_cluster(&cluster).await.unwrap();
        let workers: Vec<_> = c.nodes.into_iter().filter(|n| n.node_type == 2).collect();
        (workers.len() == 2).then_some(workers)
    })
    .await;
    assert_eq!(client.list_node_groups(&cluster).await.unwrap()[0].nodes_count, 2);

    client.delete_cluster_node(&cluster, &nodes[0].identifier).await.unwrap();
    client.reduce_group(&cluster, group.id).await.unwrap();
    assert_eq!(client.list_node_groups(&cluster).await.unwrap()[0].nodes_count, 0);
    client.delete_node_group(&group.identifier).await.unwrap();
    assert!(client.list_node_groups(&cluster).await.unwrap().is_empty());
}
