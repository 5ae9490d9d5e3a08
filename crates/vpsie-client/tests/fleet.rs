//! The fleet view at scale, deletes of VMs still being created, creates the API lists late or never, and
//! finding the exact managed node an add-node call made.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use vpsie_client::{
    CreateOutcome, CreateVmRequest, DeleteOutcome, NodeAddition, Ownership, Secret, VmLookup, VpsieClient,
};
use vpsie_sim::{FaultKind, FaultRule, SimConfig};

fn request(sim: &vpsie_sim::SimHandle, hostname: &str, owner: &Ownership) -> CreateVmRequest {
    let mut req = CreateVmRequest::new(hostname, DC, offer(sim, DC, "sc-2cpu-4gb"), OS);
    owner.apply(&mut req);
    req
}

fn vm_requests(sim: &vpsie_sim::SimHandle) -> usize {
    sim.requests().iter().filter(|r| r.path.starts_with("/apps/v2/vm")).count()
}

/// Issue figure: a 50-node scale-up costs 52 VPSie requests through the fleet view (two lists, then one
/// create each), where looking each host name up before its create costs 150.
#[tokio::test]
async fn a_50_node_scale_up_costs_52_requests_through_the_fleet_and_150_without() {
    let sim = sim().await;
    let client = token_client(&sim);
    let owner = Ownership::new("prod", "general");

    sim.clear_requests();
    let mut fleet = client.fleet().await.unwrap();
    for i in 0..50 {
        let outcome = client.create_vm_in(&mut fleet, &request(&sim, &format!("fleet-{i}"), &owner)).await.unwrap();
        assert_eq!(outcome, CreateOutcome::Requested);
    }
    let with_fleet = vm_requests(&sim);

    sim.clear_requests();
    for i in 0..50 {
        let outcome = client.create_vm(&request(&sim, &format!("single-{i}"), &owner)).await.unwrap();
        assert_eq!(outcome, CreateOutcome::Requested);
    }
    let one_by_one = vm_requests(&sim);
    println!("50-node scale-up: {with_fleet} VPSie requests with the fleet view, {one_by_one} looking each VM up");
    assert_eq!(with_fleet, 52);
    assert_eq!(one_by_one, 150);
    assert_eq!(sim.dump().pending.len(), 100, "every create reached the simulator once");
}

#[tokio::test]
async fn a_fleet_never_sends_a_create_twice_and_knows_its_owners() {
    let sim = sim().await;
    let client = token_client(&sim);
    let ours = Ownership::new("prod", "general");
    let theirs = Ownership::new("staging", "general");

    let mut fleet = client.fleet().await.unwrap();
    let req = request(&sim, "own-1", &ours);
    assert_eq!(client.create_vm_in(&mut fleet, &req).await.unwrap(), CreateOutcome::Requested);
    sim.clear_requests();
    assert_eq!(client.create_vm_in(&mut fleet, &req).await.unwrap(), CreateOutcome::AlreadyRequested);
    assert_eq!(vm_requests(&sim), 0, "the second ask in one pass sends nothing");
    client.create_vm_in(&mut fleet, &request(&sim, "their-1", &theirs)).await.unwrap();
    client.create_vm(&CreateVmRequest::new("untagged-1", DC, offer(&sim, DC, "sc-2cpu-4gb"), OS)).await.unwrap();

    // While pending, the owner comes from the echoed tags; once created, from the notes line.
    let fleet = client.fleet().await.unwrap();
    assert!(matches!(fleet.find("OWN-1").map(|v| &v.lookup), Some(VmLookup::Pending(_))), "case-insensitive");
    let owned: Vec<&str> = fleet.owned_by("prod").map(|v| v.hostname()).collect();
    assert_eq!(owned, vec!["own-1"]);
    assert_eq!(fleet.len(), 3);
    for h in ["own-1", "their-1", "untagged-1"] {
        sim.force_boot(h);
    }
    let fleet = eventually(10, || async {
        let f = client.fleet().await.unwrap();
        let all_created = f.iter().all(|v| matches!(v.lookup, VmLookup::Created(_)));
        all_created.then_some(f)
    })
    .await;
    let owned: Vec<_> = fleet.owned_by("prod").map(|v| (v.hostname().to_owned(), v.owner.clone())).collect();
    assert_eq!(owned, vec![("own-1".to_owned(), Some(ours))]);
    assert_eq!(fleet.find("untagged-1").and_then(|v| v.owner.clone()), None);
    let mut fleet = fleet;
    assert!(matches!(
        client.create_vm_in(&mut fleet, &req).await.unwrap(),
        CreateOutcome::AlreadyExists(VmLookup::Created(_))
    ));
}

/// A VM being created has no identifier: deleting it is refused as "still pending", never reported
/// as gone, and the API's own answer to a delete naming it ("Server not found") would be a lie.
/// A create VPSie refused with 429 before acting on it is not remembered as requested: the next attempt
/// through the same fleet sends it (found by `cargo xtask chaos` R1, where such a node waited for a VM
/// that was never going to appear until its provisioning timeout).
#[tokio::test]
async fn a_create_refused_with_429_is_sent_again_through_the_same_fleet() {
    let sim = sim().await;
    let client = token_client(&sim);
    let owner = Ownership::new("prod", "general");
    let mut fleet = client.fleet().await.unwrap();
    sim.add_fault(FaultRule::new(Some("POST"), "/apps/v2/vm", FaultKind::RateLimited { retry_after_secs: 1 }).times(1));
    let refused = client.create_vm_in(&mut fleet, &request(&sim, "refused-once", &owner)).await;
    assert!(matches!(refused, Err(ref e) if e.was_not_processed()), "{refused:?}");
    assert!(!fleet.was_requested("refused-once"));
    let again = client.create_vm_in(&mut fleet, &request(&sim, "refused-once", &owner)).await.unwrap();
    assert_eq!(again, CreateOutcome::Requested);
    assert_eq!(sim.dump().pending.len(), 1, "exactly one VM");

    // An ambiguous failure (the API may have acted) is remembered: never a second request.
    sim.add_fault(FaultRule::new(Some("POST"), "/apps/v2/vm", FaultKind::FailAfterEffect).times(1));
    assert!(client.create_vm_in(&mut fleet, &request(&sim, "unclear", &owner)).await.is_err());
    let after = client.create_vm_in(&mut fleet, &request(&sim, "unclear", &owner)).await.unwrap();
    assert_eq!(after, CreateOutcome::AlreadyRequested);
    assert_eq!(sim.dump().pending.len(), 2);
}

#[tokio::test]
async fn a_pending_vm_is_never_reported_gone() {
    let sim = sim().await;
    let client = token_client(&sim);
    let password = Secret::new("sim-password");
    let owner = Ownership::new("prod", "general");
    let mut fleet = client.fleet().await.unwrap();
    client.create_vm_in(&mut fleet, &request(&sim, "pend-del", &owner)).await.unwrap();

    let mut fleet = client.fleet().await.unwrap();
    sim.clear_requests();
    let outcome = client.delete_vm_in(&mut fleet, "pend-del", &password, "scale-down").await.unwrap();
    assert_eq!(outcome, DeleteOutcome::StillPending);
    assert_eq!(vm_requests(&sim), 0, "nothing to send: the VM has no identifier yet");

    // What a naive caller would do: delete by whatever name it has. The API says not found...
    let job = sim.dump().pending[0].job_id.clone();
    for name in ["pend-del", job.as_str()] {
        let err = client.delete_vm(name, &password, "scale-down").await.unwrap_err();
        assert!(matches!(err, vpsie_client::Error::NotFound { .. }), "{err}");
    }
    // ...and the VM boots all the same.
    sim.force_boot("pend-del");
    let mut fleet = eventually(10, || async {
        let f = client.fleet().await.unwrap();
        let created = matches!(f.find("pend-del").map(|v| &v.lookup), Some(VmLookup::Created(_)));
        created.then_some(f)
    })
    .await;
    assert_eq!(
        client.delete_vm_in(&mut fleet, "pend-del", &password, "scale-down").await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(sim.dump().vms.is_empty());
    let mut fleet = client.fleet().await.unwrap();
    assert_eq!(
        client.delete_vm_in(&mut fleet, "pend-del", &password, "scale-down").await.unwrap(),
        DeleteOutcome::NotListed
    );
}

/// The API may list an accepted create late: for a while the host name is in neither list. "Not
/// listed" is therefore not "gone" until the caller's bound after its last create request has passed.
#[tokio::test]
async fn a_create_listed_late_is_in_neither_list_for_a_while() {
    let sim = sim_with(SimConfig { boot_delay: Duration::from_millis(100), ..SimConfig::default() }).await;
    sim.update_settings(|s| s.pending_visibility_delay_ms = 1_500);
    let client = token_client(&sim);
    let mut fleet = client.fleet().await.unwrap();
    client.create_vm_in(&mut fleet, &request(&sim, "late-1", &Ownership::new("c", "g"))).await.unwrap();
    let fresh = client.fleet().await.unwrap();
    assert!(fresh.find("late-1").is_none(), "not listed yet");
    assert_eq!(sim.dump().pending.len(), 1, "but the simulator's ground truth holds it");
    let vm = eventually(10, || async {
        match client.fleet().await.unwrap().find("late-1").map(|v| v.lookup.clone()) {
            Some(VmLookup::Created(vm)) => Some(vm),
            _ => None,
        }
    })
    .await;
    assert!(vm.is_ready());
}

/// A create the API answers with success and then never shows: the simulator's ground truth has
/// nothing, so a caller bounding "not listed" by time sees it lost, and a late appearance is an orphan.
#[tokio::test]
async fn a_swallowed_create_never_appears() {
    let sim = sim_with(SimConfig { boot_delay: Duration::from_millis(50), ..SimConfig::default() }).await;
    sim.add_fault(FaultRule::new(Some("POST"), "/apps/v2/vm", FaultKind::Swallowed).times(1));
    let client = token_client(&sim);
    let mut fleet = client.fleet().await.unwrap();
    let outcome = client.create_vm_in(&mut fleet, &request(&sim, "lost-1", &Ownership::new("c", "g"))).await;
    assert_eq!(outcome.unwrap(), CreateOutcome::Requested, "the API said yes");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(client.fleet().await.unwrap().find("lost-1").is_none());
    let dump = sim.dump();
    assert!(dump.pending.is_empty() && dump.vms.is_empty());
    assert_eq!(sim.requests().iter().filter(|r| r.fault.as_deref() == Some("swallowed")).count(), 1);
}

/// Managed clusters: two add-node requests in flight in one group, then a "crash" (nothing kept but
/// each request's time stamp): the diff by group and creation time gives each request its own node and
/// never a master or another group's worker.
#[tokio::test]
async fn each_managed_add_node_finds_exactly_its_own_node_after_a_crash() {
    let sim = sim_with(SimConfig { boot_delay: Duration::from_millis(300), ..SimConfig::default() }).await;
    let client = token_client(&sim);
    let cluster = sim.create_cluster("demo", DC, "1.36.3").unwrap();
    let sizes = client.list_k8s_offers(DC).await.unwrap();
    let group = client.add_node_group(&cluster, "general", sizes[1].id).await.unwrap();
    let other = client.add_node_group(&cluster, "other", sizes[2].id).await.unwrap();
    client.add_group_node(&cluster, group.id).await.unwrap();
    let before = wait_nodes(&client, &cluster, 2).await;
    // That worker belongs to an earlier addition (its VPSieNode holds its id): it is claimed.
    let old: HashSet<i64> = before.iter().filter(|n| n.node_type == 2).map(|n| n.id).collect();

    let mut additions = Vec::new();
    for _ in 0..2 {
        additions.push(NodeAddition { group_id: group.id, requested_at: jiff::Timestamp::now() });
        client.add_group_node(&cluster, group.id).await.unwrap();
    }
    client.add_group_node(&cluster, other.id).await.unwrap();
    let nodes = wait_nodes(&client, &cluster, 5).await;

    // A new process: it knows only the additions' time stamps (as a VPSieNode status keeps them).
    let restarted = token_client(&sim);
    let nodes_again = restarted.get_cluster(&cluster).await.unwrap().nodes;
    assert_eq!(nodes, nodes_again);
    let mut claimed = old.clone();
    let mut found = Vec::new();
    for a in &additions {
        let n = a.find(&nodes_again, &claimed).expect("each addition finds a node");
        assert_eq!((n.node_type, n.group_id), (2, Some(group.id)));
        claimed.insert(n.id);
        found.push(n.id);
    }
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|id| !old.contains(id)), "a node another addition holds is never claimed");
    assert_eq!(additions[0].find(&nodes_again, &claimed), None, "no third node to claim");
}

async fn wait_nodes(client: &VpsieClient, cluster: &str, n: usize) -> Vec<vpsie_client::ClusterNode> {
    eventually(10, || async {
        let nodes = client.get_cluster(cluster).await.unwrap().nodes;
        (nodes.len() == n).then_some(nodes)
    })
    .await
}
