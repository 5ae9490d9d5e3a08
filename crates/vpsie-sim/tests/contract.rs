//! Contract test: every route the simulator serves answers in a shape the public VPSie clients decode.
//!
//! Each answer is decoded into the strict mirror of the Go (or CAS/AS) type that reads it
//! (`contract/mirror.rs`); a field of the wrong JSON type or a missing field fails here. `docs/simulator.md`
//! lists, per route, which client's type is the reference.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "contract/mirror.rs"]
mod mirror;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use vpsie_sim::{SimConfig, SimHandle};

use common::{AUTH, JSON, http};
use mirror::*;

/// Calls a route and decodes the answer into `T`, failing with the route and the body.
async fn call<T: DeserializeOwned>(sim: &SimHandle, method: &str, path: &str, body: Value) -> T {
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let (headers, text) = match &body {
        Value::Null => (vec![AUTH], String::new()),
        // The resources route takes a form body, as the CAS autoscaler sends it.
        Value::String(s) => (vec![AUTH, form], s.clone()),
        other => (vec![AUTH, JSON], other.to_string()),
    };
    let r = http(sim, method, path, &headers, &text).await;
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{method} {path} ({}): {e}\nbody: {}", r.status, r.body))
}

async fn done(sim: &SimHandle, method: &str, path: &str, body: Value) {
    let d: Done = call(sim, method, path, body).await;
    assert!(!d.error && d.data, "{method} {path}");
}

async fn wait_for(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 2 s");
}

async fn start() -> SimHandle {
    SimHandle::start(SimConfig { boot_delay: Duration::from_millis(300), ..SimConfig::default() }).await.unwrap()
}

#[tokio::test]
async fn auth_catalog_and_account_routes_decode_into_the_official_types() {
    let sim = start().await;
    let t: TokenRoot =
        call(&sim, "POST", "/apps/v2/auth/from/api", json!({"clientId": "sim-client", "clientSecret": "sim-secret"}))
            .await;
    assert!(!t.error && !t.token.access.token.is_empty() && t.token.access.expires.parse::<jiff::Timestamp>().is_ok());
    assert!(!t.token.refresh.token.is_empty());

    let cats: Root<Vec<PlanCategory>> = call(&sim, "GET", "/api/v2/plans/category", Value::Null).await;
    assert_eq!(cats.data.len(), 2);
    let dcs: ListRoot<DataCenter> = call(&sim, "GET", "/apps/v2/datacenter?offset=0&limit=10", Value::Null).await;
    assert_eq!((dcs.data.len(), dcs.total), (3, 3));
    for dc in &dcs.data {
        let form =
            Value::String(format!("dcIdentifier={}&osIdentifier=ubuntu-22.04-lts&planCatIdentifier=", dc.identifier));
        let offers: Root<Vec<ResourcePlan>> = call(&sim, "POST", "/apps/v2/resources", form).await;
        assert!(
            !offers.data.is_empty() && offers.data.iter().all(|o| o.price > 0.0 && o.net_speed > 0),
            "{}",
            dc.identifier
        );
    }
    let k8s: Root<Vec<K8sOffer>> =
        call(&sim, "POST", "/apps/v2/k8s/offers", json!({"dcIdentifier": "dc-us-east-1"})).await;
    assert!(k8s.data.iter().all(|o| o.price > 0.0 && o.hourly_price > 0.0));
    let images: Root<Vec<CustomImage>> = call(&sim, "GET", "/apps/v2/custom/images", Value::Null).await;
    assert_eq!(images.data.len(), 3);

    done(&sim, "POST", "/apps/v2/sshkey/add", json!({"name": "ops", "privateKey": "ssh-ed25519 AAAA ops"})).await;
    let keys: ListRoot<SshKey> = call(&sim, "GET", "/apps/v2/sshkeys", Value::Null).await;
    let key = &keys.data[0];
    let one: Root<SshKey> = call(&sim, "GET", &format!("/apps/v2/sshkey/{}", key.identifier), Value::Null).await;
    assert_eq!(one.data.name, "ops");
    done(&sim, "DELETE", "/apps/v2/sshkey", json!({"identifier": key.identifier})).await;

    let script = json!({"name": "boot", "scriptContent": "echo hi", "scriptType": "bash", "tags": []});
    done(&sim, "POST", "/apps/v2/script/add", script).await;
    let scripts: ListRoot<Script> = call(&sim, "GET", "/apps/v2/scripts", Value::Null).await;
    assert_eq!(scripts.data[0].script_name, "boot.sh");
    let id = scripts.data[0].identifier.clone();
    let detail: Root<ScriptDetail> = call(&sim, "GET", &format!("/apps/v2/script/{id}"), Value::Null).await;
    assert_eq!(detail.data.kind, "bash");
    done(&sim, "DELETE", "/apps/v2/script", json!({"scriptIdentifier": id})).await;

    let created: Root<TagCreated> = call(&sim, "POST", "/apps/v2/tags/add", json!({"name": "a", "color": "red"})).await;
    let tags: Root<Vec<Tag>> = call(&sim, "GET", "/apps/v2/tags", Value::Null).await;
    assert_eq!(tags.data[0].identifier, created.data.identifier);

    done(&sim, "POST", "/apps/v2/projects/add", json!({"name": "p2", "description": "second"})).await;
    let projects: Root<ProjectRows> = call(&sim, "GET", "/apps/v2/projects", Value::Null).await;
    assert_eq!((projects.data.rows.len(), projects.data.count), (2, 2));
    let p = &projects.data.rows[1].identifier;
    let project: Root<Project> = call(&sim, "GET", &format!("/apps/v2/projects/{p}"), Value::Null).await;
    assert_eq!(project.data.name, "p2");
}

#[tokio::test]
async fn vm_routes_decode_into_the_official_types_under_both_prefixes() {
    let sim = start().await;
    let key_body = json!({"name": "k", "privateKey": "ssh-ed25519 AAAA k"});
    done(&sim, "POST", "/apps/v2/sshkey/add", key_body).await;
    let keys: ListRoot<SshKey> = call(&sim, "GET", "/apps/v2/sshkeys", Value::Null).await;
    let key = keys.data[0].identifier.clone();
    for (i, prefix) in ["/apps/v2/vm", "/api/v2/vm"].into_iter().enumerate() {
        let hostname = format!("contract-{i}");
        let offer = sim.catalog().offer_by_nickname("dc-us-east-1", "sc-2cpu-4gb").unwrap().identifier.clone();
        let create = json!({
            "resourceIdentifier": offer, "osIdentifier": "ubuntu-22.04-lts", "dcIdentifier": "dc-us-east-1",
            "hostname": hostname, "addPublicIpV4": "1", "backupEnabled": 1, "weeklyBackupEnabled": true,
            "sshKeyIdentifier": key, "tags": ["cluster:demo", "nodegroup:a"], "projectId": "0",
            "vmPassword": "do-not-echo", "userData": "#cloud-config",
        });
        done(&sim, "POST", prefix, create).await;
        let pending: Root<Vec<PendingVm>> = call(&sim, "GET", &format!("{prefix}/pending"), Value::Null).await;
        let echo = &pending.data.iter().find(|p| p.data.hostname == hostname).unwrap().data;
        assert_eq!((echo.add_public_ip_v4, echo.backup_enabled, echo.weekly_backup_enabled), (true, true, true));
        assert!(!echo.monthly_backup_enabled);
        assert_eq!(echo.ssh_key_identifier, key);
        assert_eq!(echo.tags, vec![json!("cluster:demo"), json!("nodegroup:a")]);
        let raw = http(&sim, "GET", &format!("{prefix}/pending"), &[AUTH], "").await.body;
        assert!(!raw.contains("do-not-echo") && !raw.contains("cloud-config"), "no secrets echoed: {raw}");

        sim.force_boot(&hostname);
        wait_for(async || {
            let list: ListRoot<VmData> = call(&sim, "GET", prefix, Value::Null).await;
            list.data.iter().any(|v| v.hostname == hostname)
        })
        .await;
        let list: ListRoot<VmData> = call(&sim, "GET", prefix, Value::Null).await;
        let vm = list.data.iter().find(|v| v.hostname == hostname).unwrap();
        assert_eq!((vm.project_id, vm.project_id_camel), (0, 0));
        assert_eq!(vm.sshkey_id.as_deref(), Some(key.as_str()));
        let one: Root<VmByIdentifier> = call(&sim, "GET", &format!("{prefix}/{}", vm.identifier), Value::Null).await;
        assert_eq!(one.data.vm_data.identifier, vm.identifier);
        assert_eq!(one.data.vm_tags.len(), 2);
        let status: Root<Status> = call(&sim, "GET", &format!("{prefix}/status/{}", vm.identifier), Value::Null).await;
        assert_eq!(status.data.status, "running");
        let action = json!({"vmIdentifier": vm.identifier});
        done(&sim, "POST", &format!("{prefix}/stop"), action.clone()).await;
        done(&sim, "POST", &format!("{prefix}/start"), action).await;
        done(&sim, "POST", &format!("{prefix}/addtags"), json!({"vmIdentifier": vm.identifier, "tags": ["x"]})).await;
        let delete = json!({"vmIdentifier": vm.identifier, "password": "sim-password",
                            "deleteStatistic": {"reason": "test", "note": ""}});
        done(&sim, "DELETE", prefix, delete).await;
    }
}

#[tokio::test]
async fn managed_kubernetes_routes_decode_into_the_official_types() {
    let sim = start().await;
    // kuberVer is an int in vpsieinc/govpsie and a string in vpsie/govpsie: both are taken.
    let create = json!({"clusterName": "demo", "dcIdentifier": "dc-us-east-1", "nodesCountMaster": 1,
                        "nodesCountSlave": 0, "vpcId": 0, "kuberVer": 136, "resourceIdentifier": "",
                        "projectIdentifier": ""});
    done(&sim, "POST", "/apps/v2/k8s/create/cluster", create).await;
    let create = json!({"clusterName": "other", "dcIdentifier": "dc-us-east-1", "kuberVer": "1.36.3"});
    done(&sim, "POST", "/apps/v2/k8s/create/cluster", create).await;
    let clusters: Root<Vec<ListK8s>> = call(&sim, "GET", "/apps/v2/k8s/cluster/all", Value::Null).await;
    assert_eq!(clusters.data.len(), 2);
    assert!(clusters.data.iter().all(|c| c.price == 0.0 && c.price.is_sign_positive()), "no -0.0 prices");
    let id = clusters.data[0].identifier.clone();
    let by_id = format!("/apps/v2/k8s/cluster/byId/{id}");

    let group = |name: &str, size: i64| json!({"clusterIdentifier": id, "groupName": name, "KubeSizeID": size});
    done(&sim, "POST", "/apps/v2/k8s/cluster/add/group", group("default", 1)).await;
    done(&sim, "POST", "/apps/v2/k8s/cluster/add/group", group("big", 3)).await;
    let groups: Root<Vec<K8sGroup>> =
        call(&sim, "GET", &format!("/apps/v2/k8s/node/groups/byClusterId/{id}"), Value::Null).await;
    let (first, second) = (groups.data[0].id, groups.data[1].id);

    done(&sim, "POST", &format!("{by_id}/add/slave"), Value::Null).await;
    done(&sim, "POST", &format!("{by_id}/add/slave/group/{second}"), Value::Null).await;
    wait_for(async || {
        let c: Root<K8s> = call(&sim, "GET", &by_id, Value::Null).await;
        c.data.nodes.len() == 3
    })
    .await;
    let groups: Root<Vec<K8sGroup>> =
        call(&sim, "GET", &format!("/apps/v2/k8s/node/groups/byClusterId/{id}"), Value::Null).await;
    let count = |gid: i64| groups.data.iter().find(|g| g.id == gid).map(|g| g.nodes_count);
    assert_eq!((count(first), count(second)), (Some(1), Some(1)), "add/slave goes to the default group");

    done(&sim, "DELETE", &format!("{by_id}/reduce"), Value::Null).await;
    let c: Root<K8s> = call(&sim, "GET", &by_id, Value::Null).await;
    assert_eq!(c.data.nodes.len(), 2, "reduce removed the default group's worker");
    assert!(c.data.price > 0.0);
    done(&sim, "DELETE", &format!("{by_id}/reduce/slave"), json!({"groupId": second})).await;
    done(&sim, "DELETE", &format!("/apps/v2/k8s/cluster/delete/group/{}", groups.data[1].identifier), Value::Null)
        .await;
    done(&sim, "DELETE", &by_id, json!({"deleteStatistic": {"reason": "test", "note": ""}})).await;
    let clusters: Root<Vec<ListK8s>> = call(&sim, "GET", "/apps/v2/k8s/cluster/all", Value::Null).await;
    assert_eq!(clusters.data.len(), 1, "the cluster is gone");
    let gone = http(&sim, "GET", &by_id, &[AUTH], "").await.json();
    assert_eq!(gone, json!({"error": false, "data": false}));
}

#[tokio::test]
async fn targeted_node_delete_decodes_and_removes_that_node() {
    let sim = start().await;
    let id = sim.create_cluster("t", "dc-us-east-1", "1.36.3").unwrap();
    done(
        &sim,
        "POST",
        "/apps/v2/k8s/cluster/add/group",
        json!({"clusterIdentifier": id, "groupName": "g", "KubeSizeID": 2}),
    )
    .await;
    let by_id = format!("/apps/v2/k8s/cluster/byId/{id}");
    done(&sim, "POST", &format!("{by_id}/add/slave"), Value::Null).await;
    wait_for(async || {
        let c: Root<K8s> = call(&sim, "GET", &by_id, Value::Null).await;
        c.data.nodes.len() == 2
    })
    .await;
    // govpsie's Node has no identifier; the targeted delete takes it from the raw answer (AS only).
    let raw = http(&sim, "GET", &by_id, &[AUTH], "").await.json();
    let worker = raw["data"]["nodes"].as_array().unwrap().iter().find(|n| n["node_type"] == 2).unwrap().clone();
    done(&sim, "DELETE", &format!("{by_id}/delete/slave"), json!({"identifier": worker["identifier"]})).await;
    let c: Root<K8s> = call(&sim, "GET", &by_id, Value::Null).await;
    assert_eq!(c.data.nodes.len(), 1);
}

#[tokio::test]
async fn every_error_is_the_json_envelope() {
    let sim = start().await;
    let unauth = http(&sim, "GET", "/apps/v2/vm", &[], "").await;
    let e: ErrorRsp = serde_json::from_str(&unauth.body).unwrap();
    assert_eq!((unauth.status, e.code, e.message.as_str()), (401, 401, "Please authenticate"));
    let cases = [
        ("GET", "/apps/v2/no/such/route", 404),
        ("PUT", "/apps/v2/vm", 405),
        ("PATCH", "/api/v2/vm/pending", 405),
        ("POST", "/apps/v2/sshkeys", 405),
        ("POST", "/apps/v2/k8s/cluster/all", 405),
        ("GET", "/apps/v2/auth/from/api", 405),
    ];
    for (method, path, status) in cases {
        let r = http(&sim, method, path, &[AUTH], "").await;
        let e: ErrorRsp =
            serde_json::from_str(&r.body).unwrap_or_else(|err| panic!("{method} {path}: {err}: {:?}", r.body));
        assert_eq!((r.status, e.error, e.code), (status, true, i64::from(status)), "{method} {path}");
    }
    // HTTP 200 with error:true (wrong delete password) is the same envelope.
    let r = http(&sim, "DELETE", "/apps/v2/vm", &[AUTH, JSON], r#"{"vmIdentifier":"x","password":"no"}"#).await;
    let e: ErrorRsp = serde_json::from_str(&r.body).unwrap();
    assert_eq!((r.status, e.error, e.message.as_str()), (200, true, "You entered the wrong password"));
}

#[tokio::test]
async fn string_prices_setting_serves_the_other_shape() {
    let sim = start().await;
    sim.update_settings(|s| s.string_prices = true);
    let form = Value::String("dcIdentifier=dc-us-east-1&osIdentifier=ubuntu-22.04-lts".into());
    let offers: Root<Vec<Value>> = call(&sim, "POST", "/apps/v2/resources", form).await;
    assert!(offers.data.iter().all(|o| o["price"].is_string()), "{:?}", offers.data.first());
    let k8s: Root<Vec<Value>> =
        call(&sim, "POST", "/apps/v2/k8s/offers", json!({"dcIdentifier": "dc-us-east-1"})).await;
    assert!(k8s.data.iter().all(|o| o["price"].is_string() && o["hourly_price"].is_string()));
}
