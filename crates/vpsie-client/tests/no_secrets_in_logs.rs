//! Nothing the client or the simulator logs contains a token, client secret, password or user data,
//! even at TRACE level, across every auth path and a delete with a password.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use tracing_subscriber::fmt::MakeWriter;
use vpsie_client::{ClientConfig, CreateVmRequest, Credentials, Secret, VmLookup, VpsieClient};
use vpsie_sim::{FaultKind, FaultRule, SimConfig};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

const TOKEN: &str = "tok-SECRET-5f2a9c";
const CLIENT_SECRET: &str = "cs-SECRET-81d0aa";
const PASSWORD: &str = "pw-SECRET-77e1b3";
const USER_DATA: &str = "join-SECRET-token-abcdef";

#[tokio::test]
async fn captured_trace_logs_hold_no_secret() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = sim_with(SimConfig {
        access_tokens: vec![TOKEN.into()],
        client_secret: CLIENT_SECRET.into(),
        account_password: PASSWORD.into(),
        boot_delay: std::time::Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await;

    // Token auth, including a failure path and a retry.
    let client = VpsieClient::new(fast(ClientConfig::new(sim.base_url(), Credentials::Token(TOKEN.into())))).unwrap();
    sim.add_fault(FaultRule::new(Some("GET"), "/apps/v2/vm", FaultKind::BadGateway).times(1));
    client.list_vms(None).await.unwrap();
    let mut req = CreateVmRequest::new("secret-test", DC, offer(&sim, DC, "sc-1cpu-1gb"), OS);
    req.user_data = Some(Secret::new(USER_DATA));
    tracing::info!(request = ?req, "about to create");
    client.create_vm(&req).await.unwrap();
    let vm = eventually(5, || async {
        match client.find_vm_by_hostname("secret-test").await.unwrap() {
            Some(VmLookup::Created(vm)) => Some(vm),
            _ => None,
        }
    })
    .await;
    client.delete_vm(&vm.identifier, &Secret::new("wrong-password"), "test").await.unwrap_err();
    client.delete_vm(&vm.identifier, &Secret::new(PASSWORD), "test").await.unwrap();

    // Client credentials, a 401 and a refresh.
    let cc = VpsieClient::new(fast(ClientConfig::new(
        sim.base_url(),
        Credentials::ClientCredentials { client_id: "sim-client".into(), client_secret: CLIENT_SECRET.into() },
    )))
    .unwrap();
    cc.list_tags().await.unwrap();
    sim.expire_tokens();
    cc.list_tags().await.unwrap();
    tracing::info!(client = ?cc, config = ?credentials_config(&sim), "clients");

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("vpsie_api"), "spans were captured: {} bytes", logs.len());
    assert!(logs.contains("VM booted"), "simulator logs were captured");
    assert!(logs.contains("[redacted]"), "secrets show as redacted");
    for secret in [TOKEN, CLIENT_SECRET, PASSWORD, USER_DATA, "simtok-", "wrong-password"] {
        assert!(!logs.contains(secret), "log contains {secret}");
    }
}
