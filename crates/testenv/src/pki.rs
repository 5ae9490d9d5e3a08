//! Certificates for one control plane, generated in Rust: a CA, the apiserver's serving certificate, the
//! service-account signing key, and one client certificate per identity (CN = user, O = groups).

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

use crate::error::{Error, Result};

/// A client identity: file paths of its certificate and key.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// User name (certificate CN).
    pub user: String,
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM key.
    pub key: PathBuf,
}

/// All files of a control plane's PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    /// CA certificate (serving and client CA).
    pub ca_cert: PathBuf,
    /// apiserver serving certificate.
    pub serving_cert: PathBuf,
    /// apiserver serving key.
    pub serving_key: PathBuf,
    /// Service-account signing key (private, PKCS#8).
    pub sa_key: PathBuf,
    /// Its public half (the apiserver's `--service-account-key-file` takes only public keys or certs).
    pub sa_pub: PathBuf,
    /// The cluster admin (`system:masters`).
    pub admin: ClientCert,
    /// kube-controller-manager (bound by bootstrap RBAC).
    pub controller_manager: ClientCert,
    /// kube-scheduler (bound by bootstrap RBAC).
    pub scheduler: ClientCert,
    /// kwok (`system:masters`, as kwokctl runs it).
    pub kwok: ClientCert,
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
    Ok(p)
}

fn leaf(cn: &str, orgs: &[&str], server: bool) -> Result<CertificateParams> {
    let sans = if server { vec!["localhost".to_owned()] } else { Vec::new() };
    let mut p = CertificateParams::new(sans)?;
    if server {
        p.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    }
    p.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        p.distinguished_name.push(DnType::OrganizationName, *o);
    }
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages =
        vec![if server { ExtendedKeyUsagePurpose::ServerAuth } else { ExtendedKeyUsagePurpose::ClientAuth }];
    Ok(p)
}

impl Pki {
    /// Generates every certificate into `dir`.
    pub fn generate(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "vpsie-autoscaler-testenv-ca");
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_cert_path = write(dir, "ca.crt", &ca_cert.pem())?;
        let issuer = Issuer::new(ca_params, ca_key);

        let issue = |name: &str, cn: &str, orgs: &[&str], server: bool| -> Result<(PathBuf, PathBuf)> {
            let key = KeyPair::generate()?;
            let cert = leaf(cn, orgs, server)?.signed_by(&key, &issuer)?;
            Ok((
                write(dir, &format!("{name}.crt"), &cert.pem())?,
                write(dir, &format!("{name}.key"), &key.serialize_pem())?,
            ))
        };
        let client = |name: &str, cn: &str, orgs: &[&str]| -> Result<ClientCert> {
            let (cert, key) = issue(name, cn, orgs, false)?;
            Ok(ClientCert { user: cn.to_owned(), cert, key })
        };
        let (serving_cert, serving_key) = issue("apiserver", "kube-apiserver", &[], true)?;
        let sa = KeyPair::generate()?;
        let sa_key = write(dir, "sa.key", &sa.serialize_pem())?;
        let sa_pub = write(dir, "sa.pub", &sa.public_key_pem())?;
        Ok(Self {
            ca_cert: ca_cert_path,
            serving_cert,
            serving_key,
            sa_key,
            sa_pub,
            admin: client("admin", "admin", &["system:masters"])?,
            controller_manager: client("kube-controller-manager", "system:kube-controller-manager", &[])?,
            scheduler: client("kube-scheduler", "system:kube-scheduler", &[])?,
            kwok: client("kwok", "kwok", &["system:masters"])?,
        })
    }
}

/// Writes a kubeconfig (JSON, which kubectl and kube-rs read as YAML) for one client identity.
pub(crate) fn write_kubeconfig(path: &Path, server: &str, ca: &Path, client: &ClientCert) -> Result<()> {
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "testenv", "cluster": { "server": server, "certificate-authority": ca } }],
        "users": [{ "name": client.user, "user": {
            "client-certificate": client.cert, "client-key": client.key } }],
        "contexts": [{ "name": "testenv", "context": { "cluster": "testenv", "user": client.user } }],
        "current-context": "testenv",
    });
    let text = serde_json::to_string_pretty(&config).map_err(|e| Error::Kubeconfig(e.to_string()))?;
    fs::write(path, text).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_all_files() {
        let dir = std::env::temp_dir().join(format!("testenv-pki-{}", std::process::id()));
        let pki = Pki::generate(&dir);
        assert!(pki.is_ok(), "{pki:?}");
        if let Ok(pki) = pki {
            for p in [&pki.ca_cert, &pki.serving_cert, &pki.sa_key, &pki.admin.cert, &pki.scheduler.key] {
                let text = fs::read_to_string(p).unwrap_or_default();
                assert!(text.starts_with("-----BEGIN"), "{}", p.display());
            }
            assert_eq!(pki.controller_manager.user, "system:kube-controller-manager");
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
