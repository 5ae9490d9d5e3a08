//! The real components agree with what the autoscaler relies on: scheduling onto kwok nodes,
//! Unschedulable pods, PDB-guarded eviction, RBAC, and side-by-side instances.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    Container, Node, Pod, PodSpec, PodTemplateSpec, ResourceRequirements, ServiceAccount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{EvictParams, ListParams, PostParams};
use kube::{Api, Client};
use testenv::{ControlPlane, KwokNode, shared, wait_for};

const WAIT: Duration = Duration::from_secs(60);

async fn namespace(client: &Client, name: &str) {
    testenv::create_namespace(client, name).await.unwrap();
}

fn labels(app: &str) -> BTreeMap<String, String> {
    [("app".to_owned(), app.to_owned())].into()
}

fn pod_template(app: &str, cpu: &str, node: Option<&str>) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels(app)), ..Default::default() }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.k8s.io/pause:3.10".into()),
                resources: Some(ResourceRequirements {
                    requests: Some(
                        [("cpu".to_owned(), Quantity(cpu.into())), ("memory".to_owned(), Quantity("64Mi".into()))]
                            .into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            node_selector: node.map(|n| [("kubernetes.io/hostname".to_owned(), n.to_owned())].into()),
            termination_grace_period_seconds: Some(0),
            ..Default::default()
        }),
    }
}

fn deployment(name: &str, replicas: i32, cpu: &str, node: Option<&str>) -> Deployment {
    Deployment {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector { match_labels: Some(labels(name)), ..Default::default() },
            template: pod_template(name, cpu, node),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn running_on(pods: &[Pod], node: &str) -> usize {
    pods.iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .count()
}

async fn pods_running(client: &Client, ns: &str, app: &str, node: &str, want: usize) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("app={app}"));
    wait_for(&format!("{want} pods of {app} Running on {node}"), WAIT, || {
        let (pods, lp) = (pods.clone(), lp.clone());
        async move {
            let list = pods.list(&lp).await?.items;
            let n = running_on(&list, node);
            Ok(if n == want { Ok(list) } else { Err(format!("{n} of {} running on {node}", list.len())) })
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_deployment_lands_on_a_kwok_node_and_runs() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    namespace(&client, "t-deploy").await;
    KwokNode::new("deploy-node", "8", "16Gi").create(&client).await.unwrap();
    let started = Instant::now();
    Api::<Deployment>::namespaced(client.clone(), "t-deploy")
        .create(&PostParams::default(), &deployment("web", 3, "100m", Some("deploy-node")))
        .await
        .unwrap();
    let pods = pods_running(&client, "t-deploy", "web", "deploy-node", 3).await;
    println!(
        "3 replicas Running on a kwok node {:.1}s after the Deployment was created",
        started.elapsed().as_secs_f64()
    );
    assert!(pods.iter().all(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some()), "kwok assigned pod IPs");
}

#[tokio::test]
async fn a_pod_larger_than_every_node_is_unschedulable() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    namespace(&client, "t-unsched").await;
    KwokNode::new("small-node", "2", "4Gi").create(&client).await.unwrap();
    let pod = Pod {
        metadata: ObjectMeta { name: Some("huge".into()), ..Default::default() },
        spec: pod_template("huge", "1000", None).spec,
        ..Default::default()
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "t-unsched");
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let reason = wait_for("PodScheduled=False on pod huge", WAIT, || {
        let pods = pods.clone();
        async move {
            let p = pods.get("huge").await?;
            let cond =
                p.status.and_then(|s| s.conditions).unwrap_or_default().into_iter().find(|c| c.type_ == "PodScheduled");
            Ok(match cond {
                Some(c) if c.status == "False" => Ok((c.reason.unwrap_or_default(), c.message.unwrap_or_default())),
                other => Err(format!("{other:?}")),
            })
        }
    })
    .await
    .unwrap();
    println!("scheduler said: {} / {}", reason.0, reason.1);
    assert_eq!(reason.0, "Unschedulable");
    assert!(reason.1.contains("Insufficient cpu"), "{}", reason.1);
}

#[tokio::test]
async fn a_pdb_with_no_disruptions_allowed_refuses_eviction_with_429() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let client = cp.client().await.unwrap();
    namespace(&client, "t-pdb").await;
    KwokNode::new("pdb-node", "8", "16Gi").create(&client).await.unwrap();
    Api::<Deployment>::namespaced(client.clone(), "t-pdb")
        .create(&PostParams::default(), &deployment("guarded", 3, "100m", Some("pdb-node")))
        .await
        .unwrap();
    let t = Instant::now();
    let running = pods_running(&client, "t-pdb", "guarded", "pdb-node", 3).await;
    println!("pods running after {:.1}s", t.elapsed().as_secs_f64());
    let pdb = PodDisruptionBudget {
        metadata: ObjectMeta { name: Some("guarded-pdb".into()), ..Default::default() },
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(3)),
            selector: Some(LabelSelector { match_labels: Some(labels("guarded")), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "t-pdb");
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    let status = wait_for("PDB status observed by the disruption controller", WAIT, || {
        let pdbs = pdbs.clone();
        async move {
            let s = pdbs.get("guarded-pdb").await?.status;
            Ok(match s {
                Some(s) if s.observed_generation == Some(1) && s.current_healthy == Some(3) => Ok(s),
                other => Err(format!("{other:?}")),
            })
        }
    })
    .await
    .unwrap();
    println!("PDB observed after {:.1}s", t.elapsed().as_secs_f64());
    assert_eq!(status.disruptions_allowed, Some(0));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "t-pdb");
    let victim = running[0].metadata.name.clone().unwrap();
    let err = pods.evict(&victim, &EvictParams::default()).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            println!("eviction refused: {} {}", s.code, s.message);
            assert_eq!(s.code, 429);
            assert!(s.message.contains("disruption budget"), "{}", s.message);
        }
        other => panic!("expected a 429, got {other}"),
    }
    assert!(pods.get(&victim).await.unwrap().metadata.deletion_timestamp.is_none(), "the pod is untouched");
}

#[tokio::test]
async fn a_service_account_without_roles_is_forbidden_to_list_nodes() {
    let cp = shared().await.unwrap();
    let _logs = cp.logs_on_panic();
    let admin = cp.client().await.unwrap();
    namespace(&admin, "t-rbac").await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "t-rbac");
    let sa = ServiceAccount {
        metadata: ObjectMeta { name: Some("nobody".into()), ..Default::default() },
        ..Default::default()
    };
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let req = TokenRequest {
        spec: Some(TokenRequestSpec { expiration_seconds: Some(600), ..Default::default() }),
        ..Default::default()
    };
    let token = sas.create_token_request("nobody", &PostParams::default(), &req).await.unwrap();
    let token = token.status.and_then(|s| s.token).unwrap_or_default();
    assert!(!token.is_empty());

    let as_sa = cp.client_with_token(&token).await.unwrap();
    let err = Api::<Node>::all(as_sa).list(&ListParams::default()).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 403);
            assert!(s.message.contains("system:serviceaccount:t-rbac:nobody"), "{}", s.message);
        }
        other => panic!("expected 403, got {other}"),
    }
    // The admin can, so the 403 is RBAC and not a broken connection.
    Api::<Node>::all(admin).list(&ListParams::default()).await.unwrap();
}

#[tokio::test]
async fn two_control_planes_run_side_by_side() {
    let started = Instant::now();
    let a = ControlPlane::builder().start().await.unwrap();
    let b = ControlPlane::builder().start().await.unwrap();
    println!("two more control planes started in {:.1}s", started.elapsed().as_secs_f64());
    let _lb = b.logs_on_panic();
    assert_ne!(a.server(), b.server());
    let (ca, cb) = (a.client().await.unwrap(), b.client().await.unwrap());
    KwokNode::new("twin", "2", "4Gi").label("plane", "a").create(&ca).await.unwrap();
    KwokNode::new("twin", "4", "8Gi").label("plane", "b").create(&cb).await.unwrap();
    let na = Api::<Node>::all(ca).get("twin").await.unwrap();
    let nb = Api::<Node>::all(cb.clone()).get("twin").await.unwrap();
    assert_eq!(na.metadata.labels.unwrap()["plane"], "a");
    assert_eq!(nb.metadata.labels.unwrap()["plane"], "b");
    let dir_a = a.dir().to_path_buf();
    drop(a);
    assert!(!dir_a.exists(), "a dropped control plane removes its directory");
    assert!(testenv::node_ready(&Api::<Node>::all(cb).get("twin").await.unwrap()), "b is unaffected");
}
