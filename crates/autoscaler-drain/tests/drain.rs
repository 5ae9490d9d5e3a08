//! Drains against the real control plane: budgets, blocking pods, DaemonSet and mirror pods, grace periods.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use autoscaler_api::constants::{ANNOTATION_DO_NOT_DISRUPT, ANNOTATION_SAFE_TO_EVICT, TAINT_TO_BE_DELETED};
use autoscaler_drain::{BlockReason, DrainClient, DrainFailureReason, DrainPolicy, Drainer};
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec, PodTemplateSpec, ResourceRequirements};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use testenv::{KwokNode, create_namespace, shared, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// The drain's own client, built from the test control plane's config.
async fn drain_client() -> DrainClient {
    DrainClient::new(shared().await.unwrap().config().await.unwrap()).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn pod_spec(pool: &str) -> PodSpec {
    PodSpec {
        containers: vec![Container {
            name: "app".into(),
            image: Some("registry.k8s.io/pause:3.10".into()),
            resources: Some(ResourceRequirements {
                requests: Some([("cpu".to_owned(), Quantity("100m".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        node_selector: Some(labels(&[("pool", pool)])),
        termination_grace_period_seconds: Some(0),
        ..Default::default()
    }
}

fn deployment(name: &str, replicas: i32, pool: &str, annotations: &[(&str, &str)]) -> Deployment {
    Deployment {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(labels(&[("app", name)])), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&[("app", name)])),
                    annotations: Some(labels(annotations)),
                    ..Default::default()
                }),
                spec: Some(pod_spec(pool)),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pdb(name: &str, app: &str, min_available: i32) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(min_available)),
            selector: Some(LabelSelector { match_labels: Some(labels(&[("app", app)])), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn running_on(pods: &[Pod], node: &str) -> usize {
    pods.iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .count()
}

async fn wait_running(client: &Client, ns: &str, app: &str, node: &str, want: usize) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("app={app}"));
    wait_for(&format!("{want} pods of {app} Running on {node}"), WAIT, || {
        let (pods, lp) = (pods.clone(), lp.clone());
        async move {
            let n = running_on(&pods.list(&lp).await?.items, node);
            Ok(if n == want { Ok(()) } else { Err(format!("{n} running on {node}")) })
        }
    })
    .await
    .unwrap();
}

async fn wait_budget(client: &Client, ns: &str, name: &str, allowed: i32) {
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("PDB {name} allowing {allowed}"), WAIT, || {
        let pdbs = pdbs.clone();
        let name = name.to_owned();
        async move {
            let s = pdbs.get(&name).await?.status;
            Ok(match s {
                Some(s) if s.observed_generation == Some(1) && s.disruptions_allowed == Some(allowed) => Ok(()),
                other => Err(format!("{other:?}")),
            })
        }
    })
    .await
    .unwrap();
}

/// Whether the node is schedulable and carries none of our taints.
async fn restored(client: &Client, node: &str) -> bool {
    let n = Api::<Node>::all(client.clone()).get(node).await.unwrap();
    let spec = n.spec.unwrap_or_default();
    !spec.unschedulable.unwrap_or(false)
        && !spec.taints.unwrap_or_default().iter().any(|t| t.key == TAINT_TO_BE_DELETED)
}

fn policy(timeout_secs: u64) -> DrainPolicy {
    DrainPolicy {
        timeout: Duration::from_secs(timeout_secs),
        min_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        nodegroup: "test".into(),
        ..DrainPolicy::default()
    }
}

#[tokio::test]
async fn a_budget_allowing_one_evicts_one_at_a_time_and_completes() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    create_namespace(&client, "d-one").await.unwrap();
    KwokNode::new("d-one-a", "4", "8Gi").label("pool", "d-one").create(&client).await.unwrap();
    Api::<Deployment>::namespaced(client.clone(), "d-one")
        .create(&PostParams::default(), &deployment("web", 3, "d-one", &[]))
        .await
        .unwrap();
    wait_running(&client, "d-one", "web", "d-one-a", 3).await;
    Api::<PodDisruptionBudget>::namespaced(client.clone(), "d-one")
        .create(&PostParams::default(), &pdb("web-pdb", "web", 2))
        .await
        .unwrap();
    wait_budget(&client, "d-one", "web-pdb", 1).await;

    // The replacements have nowhere to go until a spare node appears 2 s into the drain, so after the
    // first eviction the budget allows none: the drain must wait instead of evicting the other two.
    let drainer = Drainer::new(drain_client().await, policy(90));
    let drain = tokio::spawn(async move { drainer.drain("d-one-a").await });
    let pods: Api<Pod> = Api::namespaced(client.clone(), "d-one");
    let mut fewest_running = usize::MAX;
    for _ in 0..20 {
        let running = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            })
            .count();
        fewest_running = fewest_running.min(running);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fewest_running, 2, "exactly one pod was disrupted while no replacement could run");
    KwokNode::new("d-one-b", "4", "8Gi").label("pool", "d-one").create(&client).await.unwrap();
    let drained = drain.await.unwrap().unwrap();
    println!(
        "drained {} in {:.1}s: {} evicted, {} budget waits",
        drained.node(),
        drained.duration().as_secs_f64(),
        drained.evicted(),
        drained.budget_waits()
    );
    assert_eq!(drained.evicted(), 3);
    assert!(drained.budget_waits() > 0, "evictions waited for the budget");
    wait_running(&client, "d-one", "web", "d-one-b", 3).await;
    assert!(!restored(&client, "d-one-a").await, "a drained node stays cordoned and tainted");
}

#[tokio::test]
async fn a_budget_allowing_none_fails_at_the_deadline_and_restores_the_node() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    create_namespace(&client, "d-none").await.unwrap();
    KwokNode::new("d-none-a", "4", "8Gi").label("pool", "d-none").create(&client).await.unwrap();
    Api::<Deployment>::namespaced(client.clone(), "d-none")
        .create(&PostParams::default(), &deployment("db", 3, "d-none", &[]))
        .await
        .unwrap();
    wait_running(&client, "d-none", "db", "d-none-a", 3).await;
    Api::<PodDisruptionBudget>::namespaced(client.clone(), "d-none")
        .create(&PostParams::default(), &pdb("db-pdb", "db", 3))
        .await
        .unwrap();
    wait_budget(&client, "d-none", "db-pdb", 0).await;

    // The config asks for kube's retry layer, which would repeat the budget's 429 for minutes: the drain
    // client turns it off, so the refusal comes back within the drain's own deadline.
    let mut config = cp.config().await.unwrap();
    config.default_retry = true;
    let drainer = Drainer::new(DrainClient::new(config).unwrap(), policy(4));
    let failure = tokio::time::timeout(Duration::from_secs(60), drainer.drain("d-none-a"))
        .await
        .expect("a budget's refusal reaches the drain without kube's retries")
        .unwrap_err();
    println!("{failure}");
    match &failure.reason {
        DrainFailureReason::DisruptionBudget { pod, budgets } => {
            assert!(pod.starts_with("d-none/db-"), "{pod}");
            assert_eq!(budgets, &["db-pdb".to_owned()]);
        }
        other => panic!("expected a budget failure, got {other:?}"),
    }
    assert_eq!(failure.evicted, 0);
    assert!(failure.rollback_error.is_none());
    assert!(restored(&client, "d-none-a").await, "uncordoned and untainted");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "d-none");
    assert_eq!(
        running_on(&pods.list(&ListParams::default()).await.unwrap().items, "d-none-a"),
        3,
        "every pod still running"
    );
}

#[tokio::test]
async fn a_do_not_disrupt_pod_blocks_with_its_reason() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    create_namespace(&client, "d-dnd").await.unwrap();
    KwokNode::new("d-dnd-a", "4", "8Gi").label("pool", "d-dnd").create(&client).await.unwrap();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "d-dnd");
    deploys.create(&PostParams::default(), &deployment("free", 1, "d-dnd", &[])).await.unwrap();
    deploys
        .create(&PostParams::default(), &deployment("pinned", 1, "d-dnd", &[(ANNOTATION_DO_NOT_DISRUPT, "true")]))
        .await
        .unwrap();
    wait_running(&client, "d-dnd", "pinned", "d-dnd-a", 1).await;
    wait_running(&client, "d-dnd", "free", "d-dnd-a", 1).await;

    // Watch every change of the node throughout: pods are classified before the cordon, so it is never
    // cordoned at all (a cordon rolled back at once would still show in the watch).
    let nodes: Api<Node> = Api::all(client.clone());
    let from = nodes.get("d-dnd-a").await.unwrap().metadata.resource_version.unwrap_or_default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watched = nodes.clone();
    let seen_cordoned = tokio::spawn(async move {
        use futures::StreamExt;
        let params = kube::api::WatchParams::default().fields("metadata.name=d-dnd-a");
        let mut events = watched.watch(&params, &from).await.unwrap().boxed();
        let mut stopped = std::pin::pin!(stopped);
        let mut cordoned = false;
        loop {
            tokio::select! {
                _ = &mut stopped => return cordoned,
                ev = events.next() => match ev {
                    Some(Ok(kube::api::WatchEvent::Modified(n))) => {
                        cordoned |= n.spec.unwrap_or_default().unschedulable.unwrap_or(false);
                    }
                    Some(_) => {}
                    None => return cordoned,
                },
            }
        }
    });
    let failure = Drainer::new(drain_client().await, policy(30)).drain("d-dnd-a").await.unwrap_err();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(());
    assert!(!seen_cordoned.await.unwrap(), "a node with a do-not-disrupt pod is never cordoned");
    match &failure.reason {
        DrainFailureReason::Blocked { pod, reason } => {
            assert!(pod.starts_with("d-dnd/pinned-"), "{pod}");
            assert_eq!(*reason, BlockReason::DoNotDisrupt);
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    assert_eq!(failure.evicted, 0, "nothing is evicted when a pod blocks");
    assert!(failure.to_string().contains("do-not-disrupt"), "{failure}");
    assert!(restored(&client, "d-dnd-a").await);
}

#[tokio::test]
async fn daemonset_and_mirror_pods_are_left_alone() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    create_namespace(&client, "d-ds").await.unwrap();
    KwokNode::new("d-ds-a", "4", "8Gi").label("pool", "d-ds").create(&client).await.unwrap();
    let ds = DaemonSet {
        metadata: ObjectMeta { name: Some("agent".into()), ..Default::default() },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector { match_labels: Some(labels(&[("app", "agent")])), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels(&[("app", "agent")])), ..Default::default() }),
                spec: Some(pod_spec("d-ds")),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    Api::<DaemonSet>::namespaced(client.clone(), "d-ds").create(&PostParams::default(), &ds).await.unwrap();
    let mirror = Pod {
        metadata: ObjectMeta {
            name: Some("static-web-d-ds-a".into()),
            labels: Some(labels(&[("app", "static")])),
            annotations: Some(labels(&[("kubernetes.io/config.mirror", "abc123")])),
            ..Default::default()
        },
        spec: Some(PodSpec { node_name: Some("d-ds-a".into()), ..pod_spec("d-ds") }),
        ..Default::default()
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "d-ds");
    pods.create(&PostParams::default(), &mirror).await.unwrap();
    Api::<Deployment>::namespaced(client.clone(), "d-ds")
        .create(&PostParams::default(), &deployment("app", 1, "d-ds", &[]))
        .await
        .unwrap();
    wait_running(&client, "d-ds", "agent", "d-ds-a", 1).await;
    wait_running(&client, "d-ds", "static", "d-ds-a", 1).await;
    wait_running(&client, "d-ds", "app", "d-ds-a", 1).await;
    // Somewhere for the Deployment's replacement to go (the DaemonSet adds its own pod there too).
    KwokNode::new("d-ds-b", "4", "8Gi").label("pool", "d-ds").create(&client).await.unwrap();

    let drained = Drainer::new(drain_client().await, policy(60)).drain("d-ds-a").await.unwrap();
    assert_eq!(drained.evicted(), 1, "only the Deployment pod is evicted");
    let left = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(running_on(&left, "d-ds-a"), 2, "the DaemonSet and mirror pods are still there");
    assert!(left.iter().any(|p| p.metadata.name.as_deref() == Some("static-web-d-ds-a")));
    wait_running(&client, "d-ds", "app", "d-ds-b", 1).await;
}

#[tokio::test]
async fn a_pod_with_a_long_grace_period_is_waited_for() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    create_namespace(&client, "d-grace").await.unwrap();
    KwokNode::new("d-grace-a", "4", "8Gi").label("pool", "d-grace").create(&client).await.unwrap();
    // A finalizer stands in for a slow shutdown: the pod stays terminating until it is removed.
    let slow = Pod {
        metadata: ObjectMeta {
            name: Some("slow".into()),
            labels: Some(labels(&[("app", "slow")])),
            annotations: Some(labels(&[(ANNOTATION_SAFE_TO_EVICT, "true")])),
            finalizers: Some(vec!["test.vpsie.com/hold".into()]),
            ..Default::default()
        },
        spec: Some(PodSpec { termination_grace_period_seconds: Some(120), ..pod_spec("d-grace") }),
        ..Default::default()
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "d-grace");
    pods.create(&PostParams::default(), &slow).await.unwrap();
    wait_running(&client, "d-grace", "slow", "d-grace-a", 1).await;

    let drainer = Drainer::new(drain_client().await, policy(60));
    let drain = tokio::spawn(async move { drainer.drain("d-grace-a").await });
    wait_for("the pod to be terminating", WAIT, || {
        let pods = pods.clone();
        async move {
            Ok(if pods.get("slow").await?.metadata.deletion_timestamp.is_some() {
                Ok(())
            } else {
                Err("not yet".into())
            })
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!drain.is_finished(), "the drain waits while the pod terminates");
    pods.patch("slow", &PatchParams::default(), &Patch::Merge(&serde_json::json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    let drained = drain.await.unwrap().unwrap();
    println!("drain took {:.1}s", drained.duration().as_secs_f64());
    assert!(drained.duration() >= Duration::from_secs(3));
    assert_eq!(drained.evicted(), 1);
}

#[tokio::test]
async fn a_cancelled_drain_rolls_the_node_back_and_rollback_restores_an_interrupted_one() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    create_namespace(&client, "d-cancel").await.unwrap();
    KwokNode::new("d-cancel-a", "4", "8Gi").label("pool", "d-cancel").create(&client).await.unwrap();
    Api::<Deployment>::namespaced(client.clone(), "d-cancel")
        .create(&PostParams::default(), &deployment("db", 2, "d-cancel", &[]))
        .await
        .unwrap();
    wait_running(&client, "d-cancel", "db", "d-cancel-a", 2).await;
    Api::<PodDisruptionBudget>::namespaced(client.clone(), "d-cancel")
        .create(&PostParams::default(), &pdb("db-pdb", "db", 2))
        .await
        .unwrap();
    wait_budget(&client, "d-cancel", "db-pdb", 0).await;

    // The drain waits on the budget; the caller gives up after 2 s and drops it.
    let drainer = Drainer::new(drain_client().await, policy(60));
    let dropped = tokio::time::timeout(Duration::from_secs(2), drainer.drain("d-cancel-a")).await;
    assert!(dropped.is_err(), "still waiting on the budget when cancelled");
    wait_for("the node rolled back after the cancel", Duration::from_secs(10), || async {
        Ok(if restored(&client, "d-cancel-a").await { Ok(()) } else { Err("still cordoned".to_owned()) })
    })
    .await
    .unwrap();

    // What a crash mid-drain leaves (cordon plus our taint) is undone by `rollback`; a node someone else
    // had cordoned before our drain stays cordoned, without our taint.
    let nodes: Api<Node> = Api::all(client.clone());
    for (value, stays_cordoned) in [("1700000000", false), ("1700000000.was-cordoned", true)] {
        let patch = serde_json::json!({ "spec": { "unschedulable": true,
            "taints": [{ "key": TAINT_TO_BE_DELETED, "value": value, "effect": "NoSchedule" }] } });
        nodes.patch("d-cancel-a", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        drainer.rollback("d-cancel-a").await.unwrap();
        let spec = nodes.get("d-cancel-a").await.unwrap().spec.unwrap_or_default();
        assert_eq!(spec.unschedulable.unwrap_or(false), stays_cordoned, "{value}");
        assert!(!spec.taints.unwrap_or_default().iter().any(|t| t.key == TAINT_TO_BE_DELETED));
    }
}

/// The involuntary policy evicts what the conservative one refuses (a controller-less pod with an emptyDir
/// volume) and, when a budget still blocks at the deadline, leaves the leaving node cordoned and tainted so
/// nothing new lands on it before the retry, which resumes the drain.
#[tokio::test]
async fn an_involuntary_drain_evicts_local_storage_and_bare_pods_and_keeps_a_blocked_node_cordoned() {
    use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, Volume};
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    create_namespace(&client, "d-inv").await.unwrap();
    KwokNode::new("d-inv-a", "4", "8Gi").label("pool", "d-inv").create(&client).await.unwrap();
    let mut spec = pod_spec("d-inv");
    spec.volumes = Some(vec![Volume {
        name: "scratch".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }]);
    let bare = Pod {
        metadata: ObjectMeta {
            name: Some("scratch".into()),
            labels: Some(labels(&[("app", "scratch")])),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    };
    Api::<Pod>::namespaced(client.clone(), "d-inv").create(&PostParams::default(), &bare).await.unwrap();
    Api::<Deployment>::namespaced(client.clone(), "d-inv")
        .create(&PostParams::default(), &deployment("db", 1, "d-inv", &[]))
        .await
        .unwrap();
    wait_running(&client, "d-inv", "scratch", "d-inv-a", 1).await;
    wait_running(&client, "d-inv", "db", "d-inv-a", 1).await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "d-inv");
    pdbs.create(&PostParams::default(), &pdb("db-pdb", "db", 1)).await.unwrap();
    wait_budget(&client, "d-inv", "db-pdb", 0).await;

    // The conservative policy refuses the bare emptyDir pod and never cordons.
    let strict = Drainer::new(drain_client().await, policy(5)).drain("d-inv-a").await.unwrap_err();
    assert!(matches!(strict.reason, DrainFailureReason::Blocked { .. }), "{strict}");
    assert!(restored(&client, "d-inv-a").await);

    let involuntary = DrainPolicy {
        min_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        ..DrainPolicy::involuntary("test", Duration::from_secs(4))
    };
    let drainer = Drainer::new(drain_client().await, involuntary);
    let failure = drainer.drain("d-inv-a").await.unwrap_err();
    println!("{failure}");
    assert!(
        matches!(&failure.reason, DrainFailureReason::DisruptionBudget { pod, .. } if pod.starts_with("d-inv/db-"))
    );
    assert_eq!(failure.evicted, 1, "the bare emptyDir pod was evicted; the budget held the other");
    assert!(!restored(&client, "d-inv-a").await, "a leaving node stays cordoned and tainted after a failed drain");

    // The budget lifted (its pod has room elsewhere): the retry resumes and completes; still cordoned.
    KwokNode::new("d-inv-b", "4", "8Gi").label("pool", "d-inv").create(&client).await.unwrap();
    pdbs.delete("db-pdb", &Default::default()).await.unwrap();
    let drained = drainer.drain("d-inv-a").await.unwrap();
    assert_eq!(drained.evicted(), 1);
    wait_running(&client, "d-inv", "db", "d-inv-b", 1).await;
    assert!(!restored(&client, "d-inv-a").await);
}
