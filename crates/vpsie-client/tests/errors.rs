//! Every error kind, produced by the simulator over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use vpsie_client::{ClientConfig, CreateVmRequest, Credentials, Error, Secret, VpsieClient};
use vpsie_sim::{FaultKind, FaultRule, SimConfig};

#[tokio::test]
async fn data_false_and_unknown_routes_are_not_found() {
    let sim = sim().await;
    let client = token_client(&sim);
    assert!(client.get_vm("no-such-vm").await.unwrap_err().is_not_found());
    assert!(client.get_ssh_key("no-such-key").await.unwrap_err().is_not_found());
    assert!(client.get_cluster("no-such-cluster").await.unwrap_err().is_not_found());
    let err = client.delete_vm("no-such-vm", &Secret::new("sim-password"), "test").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn http_200_with_error_true_is_an_api_error() {
    let sim = sim().await;
    let client = token_client(&sim);
    // An offer of another datacenter.
    let req = CreateVmRequest::new("wrong-offer", DC, offer(&sim, "dc-us-west-1", "sc-2cpu-4gb"), OS);
    let err = client.create_vm(&req).await.unwrap_err();
    assert!(
        matches!(err, Error::Api { status: 200, ref message, .. } if message == "Please select the right package for this OS"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_delete_password_keeps_the_vm() {
    let sim = sim().await;
    let client = token_client(&sim);
    let req = CreateVmRequest::new("keep-me", DC, offer(&sim, DC, "sc-2cpu-4gb"), OS);
    client.create_vm(&req).await.unwrap();
    sim.force_boot("keep-me");
    let vm = eventually(5, || async {
        match client.find_vm_by_hostname("keep-me").await.unwrap() {
            Some(vpsie_client::VmLookup::Created(vm)) => Some(vm),
            _ => None,
        }
    })
    .await;
    let err = client.delete_vm(&vm.identifier, &Secret::new("wrong"), "test").await.unwrap_err();
    assert!(matches!(err, Error::Api { ref message, .. } if message == "You entered the wrong password"), "{err}");
    assert!(client.get_vm(&vm.identifier).await.is_ok(), "the VM keeps running");
    client.delete_vm(&vm.identifier, &Secret::new("sim-password"), "test").await.unwrap();
    assert!(client.get_vm(&vm.identifier).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn quota_messages_are_quota_exceeded() {
    let sim = sim_with(SimConfig { max_vms: Some(1), ..SimConfig::default() }).await;
    let client = token_client(&sim);
    let o = offer(&sim, DC, "sc-1cpu-1gb");
    client.create_vm(&CreateVmRequest::new("q1", DC, o.clone(), OS)).await.unwrap();
    let err = client.create_vm(&CreateVmRequest::new("q2", DC, o, OS)).await.unwrap_err();
    assert!(
        matches!(err, Error::QuotaExceeded { ref message, .. } if message.contains("exceeds the allowed limit")),
        "{err}"
    );
}

#[tokio::test]
async fn html_502_is_a_server_error_with_a_snippet() {
    let sim = sim().await;
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/sshkeys", FaultKind::BadGateway));
    let err = token_client(&sim).list_ssh_keys().await.unwrap_err();
    assert!(
        matches!(err, Error::Server { status: 502, ref snippet, .. } if snippet.contains("502 Bad Gateway") && !snippet.contains('\n')),
        "{err}"
    );
}

#[tokio::test]
async fn truncated_json_is_a_decode_error() {
    let sim = sim().await;
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/tags", FaultKind::Garbage));
    let err = token_client(&sim).list_tags().await.unwrap_err();
    assert!(
        matches!(err, Error::Decode { endpoint: "tag.list", ref snippet, .. } if snippet.contains("trunc")),
        "{err}"
    );
}

#[tokio::test]
async fn rate_limit_is_reported_with_retry_after() {
    let sim = sim().await;
    sim.add_fault(FaultRule::new(Some("POST"), "/apps/v2/vm", FaultKind::RateLimited { retry_after_secs: 7 }));
    let client = token_client(&sim);
    let req = CreateVmRequest::new("rl", DC, offer(&sim, DC, "sc-2cpu-4gb"), OS);
    let err = client.create_vm(&req).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)), "{err}");
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    // Bind then drop a listener: nothing listens on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = fast(ClientConfig::new(format!("http://127.0.0.1:{port}"), Credentials::Token("t".into())));
    let err = VpsieClient::new(cfg).unwrap().list_vms(None).await.unwrap_err();
    assert!(matches!(err, Error::Transport { timed_out: false, .. }), "{err}");
}

#[tokio::test]
async fn slow_answers_time_out() {
    let sim = sim().await;
    sim.add_fault(FaultRule::new(None, "/apps/v2/projects", FaultKind::LatencyOnly).with_latency_ms(800));
    let mut cfg = token_config(&sim);
    cfg.request_timeout = Duration::from_millis(150);
    cfg.retry.max_retries = 0;
    let err = VpsieClient::new(cfg).unwrap().list_projects().await.unwrap_err();
    assert!(matches!(err, Error::Transport { timed_out: true, .. }), "{err}");
    assert_eq!(err.kind(), "timeout");
}
