//! One control plane per test binary, so thirty integration tests do not pay thirty start-ups.

use tokio::sync::OnceCell;

use crate::control_plane::ControlPlane;
use crate::error::Result;

static SHARED: OnceCell<ControlPlane> = OnceCell::const_new();

/// The test binary's shared control plane with every component, started on first use.
///
/// It lives until the test binary exits; a watchdog then stops its processes and removes its directory.
/// It holds no client: call [`ControlPlane::client`] in each test (each `#[tokio::test]` has its own
/// runtime). Tests sharing it should use their own namespaces and node names.
pub async fn shared() -> Result<&'static ControlPlane> {
    SHARED.get_or_try_init(|| ControlPlane::builder().start()).await
}
