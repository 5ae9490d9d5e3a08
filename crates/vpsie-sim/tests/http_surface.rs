//! The simulator's HTTP surface, spoken to with raw HTTP/1.1 so these tests do not depend on our client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use vpsie_sim::{BootHook, BootedVm, FaultKind, FaultRule, PoweredVm, SimConfig, SimHandle};

mod common;

use common::{AUTH, JSON, http};

/// VMs stay pending for 2 s, so a test always sees them pending; `force_boot` finishes them sooner.
async fn start() -> SimHandle {
    SimHandle::start(SimConfig { boot_delay: Duration::from_secs(2), ..SimConfig::default() }).await.unwrap()
}

#[tokio::test]
async fn auth_is_required_and_both_headers_work() {
    let sim = start().await;
    let r = http(&sim, "GET", "/apps/v2/vm", &[], "").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"error": true, "code": 401, "message": "Please authenticate"}));
    assert_eq!(http(&sim, "GET", "/apps/v2/vm", &[AUTH], "").await.status, 200);
    let bearer = http(&sim, "GET", "/api/v2/vm", &[("Authorization", "Bearer sim-token")], "").await;
    assert_eq!(bearer.json(), json!({"error": false, "data": [], "total": 0}));
}

#[tokio::test]
async fn exchange_accepts_form_and_json_and_answers_both_shapes() {
    let sim = start().await;
    let form = http(
        &sim,
        "POST",
        "/apps/v2/auth/from/api",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "clientId=sim-client&clientSecret=sim-secret",
    )
    .await
    .json();
    let token = form["token"]["access"]["token"].as_str().unwrap().to_owned();
    assert_eq!(form["accessToken"]["token"], token.as_str());
    assert!(form["accessToken"]["expires"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
    let bearer = format!("Bearer {token}");
    assert_eq!(http(&sim, "GET", "/apps/v2/tags", &[("Authorization", &bearer)], "").await.status, 200);
    let bad =
        http(&sim, "POST", "/apps/v2/auth/from/api", &[JSON], r#"{"clientId":"sim-client","clientSecret":"no"}"#).await;
    assert_eq!(bad.status, 401);
    sim.expire_tokens();
    assert_eq!(http(&sim, "GET", "/apps/v2/tags", &[("Authorization", &bearer)], "").await.status, 401);
}

#[tokio::test]
async fn unknown_routes_and_missing_objects() {
    let sim = start().await;
    let r = http(&sim, "GET", "/apps/v2/nothing-here", &[AUTH], "").await;
    assert_eq!((r.status, r.json()["message"].clone()), (404, json!("Not found")));
    let r = http(&sim, "GET", "/apps/v2/vm/does-not-exist", &[AUTH], "").await;
    assert_eq!(r.json(), json!({"error": false, "data": false}));
}

#[tokio::test]
async fn admin_api_injects_faults_and_shows_the_log() {
    let sim = start().await;
    let rule = json!({"path_prefix": "/apps/v2/vm", "kind": "bad_gateway", "remaining": 1});
    assert_eq!(http(&sim, "POST", "/__sim/faults", &[JSON], &rule.to_string()).await.status, 200);
    let r = http(&sim, "GET", "/apps/v2/vm", &[AUTH], "").await;
    assert_eq!(r.status, 502);
    assert!(r.headers.to_ascii_lowercase().contains("content-type: text/html"));
    assert!(r.body.contains("502 Bad Gateway"));
    assert_eq!(http(&sim, "GET", "/apps/v2/vm", &[AUTH], "").await.status, 200, "rule fired once");
    let log = http(&sim, "GET", "/__sim/requests", &[], "").await.json();
    assert_eq!(log.as_array().map(Vec::len), Some(2), "admin calls are not logged: {log}");
    assert_eq!(log[0]["fault"], "bad_gateway");
    assert_eq!(log[0]["auth"], "vpsie-auth");

    let slow = json!({"path_prefix": "/apps/v2/tags", "kind": "rate_limited", "retry_after_secs": 3});
    http(&sim, "POST", "/__sim/faults", &[JSON], &slow.to_string()).await;
    let r = http(&sim, "GET", "/apps/v2/tags", &[AUTH], "").await;
    assert_eq!(r.status, 429);
    assert!(r.headers.to_ascii_lowercase().contains("retry-after: 3"));
    http(&sim, "DELETE", "/__sim/faults", &[], "").await;
    assert_eq!(http(&sim, "GET", "/apps/v2/tags", &[AUTH], "").await.status, 200);

    // Rotation: only the new token is accepted afterwards; the log names each caller's User-Agent.
    http(&sim, "POST", "/__sim/tokens", &[JSON], r#"["tok-b"]"#).await;
    assert_eq!(http(&sim, "GET", "/apps/v2/tags", &[AUTH], "").await.status, 401);
    let r = http(&sim, "GET", "/apps/v2/tags", &[("Vpsie-Auth", "tok-b"), ("User-Agent", "replica-1")], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.requests().last().map(|l| l.user_agent.clone()).as_deref(), Some("replica-1"));
    assert_eq!(http(&sim, "GET", "/__sim/tokens", &[], "").await.json(), json!(["tok-b"]));

    let settings = json!({"boot_delay_ms": 10, "never_boot": true, "max_vms": 5, "token_ttl_secs": 60,
        "string_prices": true, "pending_visibility_delay_ms": 250, "join_delay_ms": 40, "never_join": true, "never_active": true,
        "join_taints": "example.com/agent-missing:NoSchedule"});
    http(&sim, "POST", "/__sim/settings", &[JSON], &settings.to_string()).await;
    assert_eq!(http(&sim, "GET", "/__sim/settings", &[], "").await.json(), settings);
}

#[derive(Default)]
struct Recorder(Mutex<Vec<BootedVm>>, Mutex<Vec<(String, bool)>>);

impl BootHook for Recorder {
    fn vm_booted(&self, vm: &BootedVm) {
        self.0.lock().unwrap().push(vm.clone());
    }
    fn vm_powered(&self, vm: &PoweredVm, on: bool) {
        self.1.lock().unwrap().push((vm.hostname.clone(), on));
    }
}

fn create_body(sim: &SimHandle, hostname: &str) -> String {
    let offer = sim.catalog().offer_by_nickname("dc-us-east-1", "sc-2cpu-4gb").unwrap().identifier.clone();
    json!({
        "resourceIdentifier": offer, "osIdentifier": "ubuntu-22.04-lts", "dcIdentifier": "dc-us-east-1",
        "hostname": hostname, "addPublicIpV4": "1", "tags": ["cluster:demo"], "userData": "#cloud-config\nruncmd: []",
    })
    .to_string()
}

#[tokio::test]
async fn boot_hook_sees_the_booted_vm_with_its_user_data() {
    let sim = start().await;
    let recorder = Arc::new(Recorder::default());
    sim.set_boot_hook(recorder.clone());
    let r = http(&sim, "POST", "/apps/v2/vm", &[AUTH, JSON], &create_body(&sim, "hooked")).await;
    assert_eq!(r.json(), json!({"error": false, "data": true}));
    let pending = http(&sim, "GET", "/apps/v2/vm/pending", &[AUTH], "").await.json();
    assert_eq!(pending["data"][0]["data"]["hostname"], "hooked");
    assert_eq!(pending["data"][0]["data"]["addPublicIpV4"], true, "echo shows flags as bools");
    assert!(!pending.to_string().contains("cloud-config"), "user data is not echoed");
    assert!(sim.force_boot("hooked"));
    for _ in 0..100 {
        if !recorder.0.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let booted = recorder.0.lock().unwrap().clone();
    assert_eq!(booted.len(), 1);
    assert_eq!(booted[0].hostname, "hooked");
    assert_eq!(booted[0].user_data.as_deref(), Some("#cloud-config\nruncmd: []"));
    assert_eq!((booted[0].cpu, booted[0].ram_mib), (2, 4096));
    let list = http(&sim, "GET", "/apps/v2/vm", &[AUTH], "").await.json();
    assert_eq!(list["data"][0]["is_active"], 1);
    assert_eq!(list["data"][0]["default_ip"], booted[0].default_ip.as_str());
}

/// Stopping and starting a VM through the API changes what the listing says and tells the boot hook (so a
/// joined Node can follow); a `partial_listing` fault truncates list answers only.
#[tokio::test]
async fn power_changes_reach_the_hook_and_a_partial_listing_truncates_lists_only() {
    let sim = start().await;
    let recorder = Arc::new(Recorder::default());
    sim.set_boot_hook(recorder.clone());
    for h in ["p1", "p2", "p3", "p4"] {
        http(&sim, "POST", "/apps/v2/vm", &[AUTH, JSON], &create_body(&sim, h)).await;
        assert!(sim.force_boot(h));
    }
    let listed = || async {
        http(&sim, "GET", "/apps/v2/vm", &[AUTH], "").await.json()["data"].as_array().cloned().unwrap_or_default()
    };
    for _ in 0..100 {
        if listed().await.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let vms = listed().await;
    let p1 = vms.iter().find(|v| v["hostname"] == "p1").unwrap()["identifier"].as_str().unwrap().to_owned();
    let stop = json!({ "vmIdentifier": p1 }).to_string();
    assert_eq!(http(&sim, "POST", "/apps/v2/vm/stop", &[AUTH, JSON], &stop).await.json()["error"], false);
    let power = |vms: &[Value]| vms.iter().find(|v| v["hostname"] == "p1").map(|v| v["power"].clone());
    assert_eq!(power(&listed().await), Some(json!(0)));
    assert_eq!(http(&sim, "POST", "/apps/v2/vm/start", &[AUTH, JSON], &stop).await.json()["error"], false);
    assert_eq!(power(&listed().await), Some(json!(1)));
    assert!(sim.set_power("p2", false) && !sim.set_power("nope", false));
    let gone = json!({ "vmIdentifier": "no-such-vm" }).to_string();
    assert_eq!(http(&sim, "POST", "/apps/v2/vm/stop", &[AUTH, JSON], &gone).await.json()["error"], true);
    assert_eq!(
        *recorder.1.lock().unwrap(),
        vec![("p1".to_owned(), false), ("p1".to_owned(), true), ("p2".to_owned(), false)]
    );

    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/vm", FaultKind::PartialListing { keep_percent: 50 }));
    assert_eq!(listed().await.len(), 2, "half of 4");
    let one = http(&sim, "GET", &format!("/apps/v2/vm/{p1}"), &[AUTH], "").await.json();
    assert_eq!(one["data"]["vmData"]["hostname"], "p1", "a get by identifier is not a list: unchanged");
    sim.clear_faults();
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/vm", FaultKind::PartialListing { keep_percent: 0 }).times(1));
    assert!(listed().await.is_empty());
    assert_eq!(listed().await.len(), 4, "the rule fired once");
}

/// Runs the same script against a fresh simulator and returns what it observed.
async fn script(seed: u64) -> (Vec<u16>, Value) {
    let sim = SimHandle::start(SimConfig { seed, boot_delay: Duration::from_millis(10), ..SimConfig::default() })
        .await
        .unwrap();
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/tags", FaultKind::Unavailable).with_rate(0.5));
    let mut statuses = Vec::new();
    for _ in 0..24 {
        statuses.push(http(&sim, "GET", "/apps/v2/tags", &[AUTH], "").await.status);
    }
    for h in ["d1", "d2"] {
        http(&sim, "POST", "/apps/v2/vm", &[AUTH, JSON], &create_body(&sim, h)).await;
        sim.force_boot(h);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let vms = http(&sim, "GET", "/apps/v2/vm", &[AUTH], "").await.json();
    let ids: Value = vms["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| json!([v["identifier"], v["default_ip"], v["private_ip"]]))
        .collect();
    (statuses, ids)
}

#[tokio::test]
async fn a_seeded_run_is_repeatable() {
    let (a_status, a_ids) = script(42).await;
    let (b_status, b_ids) = script(42).await;
    let (c_status, _) = script(43).await;
    assert_eq!(a_status, b_status);
    assert_eq!(a_ids, b_ids);
    assert_eq!(a_ids.as_array().map(Vec::len), Some(2));
    assert!(a_status.contains(&503) && a_status.contains(&200), "rate 0.5 hits some: {a_status:?}");
    assert_ne!(a_status, c_status, "another seed draws differently");
}
