//! The operator binary as a process under its ServiceAccount and `deploy/rbac/`, against a real local control
//! plane and vpsie-sim: leader failover, credential rotation, health, readiness, metrics, audit, start-up
//! refusals, and no secret in any output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use autoscaler_controller::telemetry::metrics::FAMILIES;
use harness::{DELETE_PASSWORD, Env, Operator, exclusive, until};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::Api;

/// Every Event in the cluster as `(reason, reporting instance, note)`.
async fn events(env: &Env) -> Vec<(String, String, String)> {
    let api: Api<Event> = Api::all(env.admin.clone());
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.reporting_instance.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// No secret value in any process output or Event.
async fn assert_no_secrets(env: &Env, ops: &[&Operator], secrets: &[&str]) {
    let mut all: Vec<&str> = secrets.to_vec();
    all.push(DELETE_PASSWORD);
    all.push(&env.sa_token);
    let notes: Vec<String> = events(env).await.into_iter().map(|(r, i, n)| format!("{r} {i} {n}")).collect();
    for op in ops {
        let out = op.output();
        assert!(!out.is_empty(), "{} printed nothing", op.identity);
        for s in &all {
            assert!(!out.contains(s), "{} printed a secret value", op.identity);
        }
    }
    for n in &notes {
        for s in &all {
            assert!(!n.contains(s), "an Event carries a secret value: {n}");
        }
    }
}

fn identities_in_sim_log(env: &Env) -> BTreeSet<String> {
    env.sim
        .requests()
        .iter()
        .filter_map(|r| r.user_agent.split_once('(').and_then(|(_, id)| id.strip_suffix(')')).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn only_the_leader_acts_and_a_standby_takes_over_after_kill_9() {
    let _one = exclusive().await;
    let env = Env::start("tok-failover-7e6d5c4b", true).await;
    env.nodegroup("general", 5).await;
    let fast = ["--catalog-refresh-seconds", "1"];
    let mut a = Operator::start(&env, "op-a", &fast);
    a.wait_ready(Duration::from_secs(60)).await;
    until("op-a leads", Duration::from_secs(30), || a.is_leader()).await;
    let b = Operator::start(&env, "op-b", &fast);
    b.wait_ready(Duration::from_secs(60)).await;
    until("op-a called VPSie", Duration::from_secs(20), || async { !env.sim.requests().is_empty() }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert!(!b.is_leader().await, "op-b stands by while op-a holds the Lease");
    assert_eq!(identities_in_sim_log(&env), BTreeSet::from(["op-a".to_owned()]), "only the leader calls VPSie");
    let leases: Api<Lease> = Api::namespaced(env.admin.clone(), "kube-system");
    let holder = |l: Lease| l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
    assert_eq!(holder(leases.get("vpsie-autoscaler").await.unwrap()), "op-a");
    let ours = |evs: Vec<(String, String, String)>| -> BTreeSet<String> {
        evs.into_iter()
            .filter(|(r, ..)| r == "LeaderElection")
            .map(|(_, i, _)| i)
            .filter(|i| i.starts_with("op-"))
            .collect()
    };
    assert_eq!(ours(events(&env).await), BTreeSet::from(["op-a".to_owned()]), "Events come from the leader only");

    let killed = Instant::now();
    a.kill9();
    // Requests op-a had in flight are logged by now; from here on the log shows only the successor.
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.sim.clear_requests();
    until("op-b leads", Duration::from_secs(30), || b.is_leader()).await;
    let takeover = killed.elapsed();
    println!("takeover after kill -9 of the leader: {:.1}s (lease 10s, grace 3s)", takeover.as_secs_f64());
    assert!(takeover < Duration::from_secs(15), "took {takeover:?}");
    until("op-b called VPSie", Duration::from_secs(10), || async { !env.sim.requests().is_empty() }).await;
    assert_eq!(identities_in_sim_log(&env), BTreeSet::from(["op-b".to_owned()]));
    until("op-b holds the Lease", Duration::from_secs(5), || async {
        holder(leases.get("vpsie-autoscaler").await.unwrap()) == "op-b"
    })
    .await;
    until("op-b's LeaderElection Event", Duration::from_secs(10), || async {
        ours(events(&env).await).contains("op-b")
    })
    .await;
    assert_no_secrets(&env, &[&a, &b], &["tok-failover-7e6d5c4b"]).await;
}

#[tokio::test]
async fn credentials_rotate_without_a_restart_and_a_missing_secret_is_not_ready() {
    let _one = exclusive().await;
    let (tok_a, tok_b) = ("tok-a-1f2e3d4c5b", "tok-b-9a8b7c6d5e");
    let env = Env::start(tok_a, true).await;
    env.nodegroup("general", 5).await;
    let mut op = Operator::start(&env, "op-rot", &["--catalog-refresh-seconds", "1"]);
    op.wait_ready(Duration::from_secs(60)).await;
    let ok_since =
        |env: &Env| env.sim.requests().iter().any(|r| r.status == 200 && r.path.starts_with("/apps/v2/resources"));
    until("a VPSie call with token A", Duration::from_secs(20), || async { ok_since(&env) }).await;

    env.sim.set_access_tokens(vec![tok_b.into()]);
    env.put_secret(&[("token", tok_b), ("deletePassword", DELETE_PASSWORD)]).await;
    env.sim.clear_requests();
    until("a VPSie call with token B", Duration::from_secs(30), || async { ok_since(&env) }).await;
    assert!(op.child.try_wait().unwrap().is_none(), "same process, no restart");
    assert_eq!(op.output().matches("operator running").count(), 1);

    env.delete_secret().await;
    until("not ready without the Secret", Duration::from_secs(10), || async {
        let (code, body) = op.get(false, "/readyz").await;
        code == 503 && body.contains("credentials-loaded: Secret kube-system/vpsie-secret not found")
    })
    .await;
    assert_eq!(op.get(false, "/healthz").await.0, 200, "alive all the same");
    until("a CredentialsInvalid Event naming the Secret", Duration::from_secs(10), || async {
        events(&env).await.iter().any(|(r, _, n)| r == "CredentialsInvalid" && n.contains("vpsie-secret"))
    })
    .await;

    env.put_secret(&[("clientId", "sim-client")]).await;
    until("a malformed Secret names the missing key", Duration::from_secs(10), || async {
        let (code, body) = op.get(false, "/readyz").await;
        code == 503 && body.contains("clientSecret")
    })
    .await;
    env.put_secret(&[("token", tok_b), ("deletePassword", DELETE_PASSWORD)]).await;
    op.wait_ready(Duration::from_secs(10)).await;

    let status = op.terminate(Duration::from_secs(20)).expect("exits on SIGTERM");
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
    let leases: Api<Lease> = Api::namespaced(env.admin.clone(), "kube-system");
    let held = leases.get("vpsie-autoscaler").await.unwrap().spec.and_then(|s| s.holder_identity);
    assert!(held.as_ref().is_none_or(|h| h.is_empty()), "the Lease is released on shutdown: {held:?}");
    assert!(op.output().contains("Lease released"));
    assert_no_secrets(&env, &[&op], &[tok_a, tok_b, "sim-client"]).await;
}

/// `(name, type, labels, recorded?)` rows of docs/metrics.md.
fn documented() -> BTreeMap<String, (String, String, bool)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/metrics.md")).unwrap();
    doc.lines()
        .filter(|l| l.starts_with("| `vpsie_autoscaler_"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let name = cells[0].trim_matches('`').to_owned();
            (name, (cells[1].to_owned(), cells[2].replace('—', ""), cells[4] != "pending"))
        })
        .collect()
}

#[tokio::test]
async fn health_stays_live_without_vpsie_readiness_follows_the_caches_and_metrics_match_the_doc() {
    let _one = exclusive().await;
    let env = Env::start("tok-health-3c2b1a09", true).await;
    env.nodegroup("general", 5).await;
    // Without the right to list PodDisruptionBudgets one cache never syncs: not ready, and says which.
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(env.admin.clone());
    let full = roles.get("vpsie-autoscaler").await.unwrap();
    let mut narrowed = full.clone();
    if let Some(rules) = narrowed.rules.as_mut() {
        rules.retain(|r| !r.api_groups.iter().flatten().any(|g| g == "policy"));
    }
    roles.replace("vpsie-autoscaler", &Default::default(), &narrowed).await.unwrap();
    let mut op = Operator::start(&env, "op-health", &["--catalog-refresh-seconds", "1"]);
    until("not ready while a cache cannot list", Duration::from_secs(30), || async {
        let (code, body) = op.get(false, "/readyz").await;
        code == 503 && body.contains("caches-synced: listing poddisruptionbudgets")
    })
    .await;
    let mut restored = roles.get("vpsie-autoscaler").await.unwrap();
    restored.rules = full.rules.clone();
    roles.replace("vpsie-autoscaler", &Default::default(), &restored).await.unwrap();
    op.wait_ready(Duration::from_secs(60)).await;
    until("op-health leads", Duration::from_secs(30), || op.is_leader()).await;

    // A spec change is audited with who made it; the log verifies, and a changed line fails at that line.
    let groups: Api<autoscaler_api::NodeGroup> = Api::all(env.admin.clone());
    let patch = serde_json::json!({"spec": {"maxNodes": 7}});
    groups
        .patch(
            "general",
            &kube::api::PatchParams { field_manager: Some("platform-team".into()), ..Default::default() },
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    until("the spec change is audited", Duration::from_secs(10), || async {
        std::fs::read_to_string(&op.audit).unwrap_or_default().contains("nodegroup_spec_change")
    })
    .await;
    let audit = std::fs::read_to_string(&op.audit).unwrap();
    assert!(audit.contains(r#""who":"platform-team""#) && audit.contains("generation 1 -> 2"), "{audit}");
    assert_eq!(autoscaler_controller::audit::verify(&audit), Ok(1));
    let tampered = audit.replace("generation 1 -> 2", "generation 1 -> 3");
    assert_eq!(
        autoscaler_controller::audit::verify(&tampered),
        Err(autoscaler_controller::audit::VerifyError::Tampered { line: 1 })
    );

    // VPSie goes away: liveness does not depend on it, readiness neither.
    until("a VPSie call", Duration::from_secs(20), || async { !env.sim.requests().is_empty() }).await;
    let mut env = env;
    env.sim.stop().await;
    until("VPSie errors recorded", Duration::from_secs(20), || async {
        op.get(true, "/metrics").await.1.contains("vpsie_autoscaler_vpsie_api_errors_total{")
    })
    .await;
    for _ in 0..5 {
        assert_eq!(op.get(false, "/healthz").await.0, 200, "liveness never depends on VPSie");
        assert_eq!(op.get(false, "/readyz").await.0, 200);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Every documented family is the one the code lists; each recorded family is exposed with its type;
    // families whose recorder has not landed are not.
    tokio::time::sleep(Duration::from_secs(6)).await; // one state-gauge tick
    let (_, exposition) = op.get(true, "/metrics").await;
    let exposed: BTreeMap<String, String> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' ').map(|(n, t)| (n.to_owned(), t.to_owned())))
        .filter(|(n, _)| n.starts_with("vpsie_autoscaler_"))
        .collect();
    let doc = documented();
    let code: BTreeMap<String, (String, String, bool)> = FAMILIES
        .iter()
        .map(|f| (f.name.to_owned(), (f.kind.as_str().to_owned(), f.labels.join(", "), f.recorded_by.is_some())))
        .collect();
    assert_eq!(doc, code, "docs/metrics.md and FAMILIES differ");
    let per_event: Vec<&str> =
        FAMILIES.iter().filter(|f| f.recorded_by.is_some_and(|r| r.ends_with("per event"))).map(|f| f.name).collect();
    for (name, (kind, _, recorded)) in &doc {
        if per_event.contains(&name.as_str()) {
            if let Some(exposed_kind) = exposed.get(name) {
                assert_eq!(exposed_kind, kind, "{name}");
            }
        } else if *recorded {
            assert_eq!(exposed.get(name), Some(kind), "{name} is documented as recorded but not exposed");
        } else {
            assert!(!exposed.contains_key(name), "{name} is exposed but documented as pending");
        }
    }
    for name in exposed.keys() {
        assert!(doc.contains_key(name), "{name} is exposed but not documented");
    }
    op.terminate(Duration::from_secs(20));
    assert_no_secrets(&env, &[&op], &["tok-health-3c2b1a09"]).await;
}

#[tokio::test]
async fn start_up_refuses_clearly() {
    let _one = exclusive().await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vpsie-autoscaler"))
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let (code, out) = run(&["--cluster-id", "c", "--metrics-addr", "127.0.0.1:9", "--health-addr", "127.0.0.1:9"]);
    assert_eq!(code, Some(2));
    assert!(out.contains("--metrics-addr and --health-addr are both 127.0.0.1:9"), "{out}");
    let (code, out) = run(&["--cluster-id", ""]);
    assert_eq!(code, Some(2));
    assert!(out.contains("--cluster-id is required"), "{out}");

    let dir = std::env::temp_dir().join(format!("vpsie-unreachable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, r#"{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"https://127.0.0.1:1","insecure-skip-tls-verify":true}}],"users":[{"name":"u","user":{"token":"x"}}],"contexts":[{"name":"c","context":{"cluster":"c","user":"u"}}],"current-context":"c"}"#).unwrap();
    let started = Instant::now();
    let (code, out) =
        run(&["--cluster-id", "c", "--kubeconfig", &kc.display().to_string(), "--startup-timeout-seconds", "2"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("the API server did not answer within 2s"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(20));

    let env = Env::start("tok-nocrd-0f1e2d3c", false).await;
    let mut op = Operator::start(&env, "op-nocrd", &[]);
    until("exit without CRDs", Duration::from_secs(30), || {
        let exited = op.child.try_wait().unwrap().is_some();
        async move { exited }
    })
    .await;
    assert_eq!(op.child.wait().unwrap().code(), Some(1));
    assert!(op.output().contains("is not installed: apply deploy/crds/ first"), "{}", op.output());

    // Started without its Secret: it runs, is not ready, and as leader says why in an Event.
    env.install_crds().await;
    env.delete_secret().await;
    let op = Operator::start(&env, "op-nosecret", &[]);
    until("the leader reports the missing Secret", Duration::from_secs(60), || async {
        events(&env).await.iter().any(|(r, i, n)| {
            r == "CredentialsInvalid" && i == "op-nosecret" && n.contains("kube-system/vpsie-secret not found")
        })
    })
    .await;
    let (code, body) = op.get(false, "/readyz").await;
    assert_eq!(code, 503);
    assert!(body.contains("credentials-loaded: Secret kube-system/vpsie-secret not found"), "{body}");
    assert_eq!(op.get(false, "/healthz").await.0, 200);
}
