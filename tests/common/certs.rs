//! A private PKI made at test time with rcgen: a CA, certificates for 127.0.0.1/localhost,
//! and the broken kinds (expired, wrong name, unknown issuer).

use std::path::{Path, PathBuf};

use once_cell::sync::Lazy;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, Issuer, KeyPair};

/// PEM files of the test PKI.
pub struct Pki {
    /// The CA that signs the good certificates.
    pub ca: PathBuf,
    /// A certificate for 127.0.0.1 and localhost, and its key.
    pub good: (PathBuf, PathBuf),
    /// The same names, expired in 2020.
    pub expired: (PathBuf, PathBuf),
    /// A certificate for other.example only.
    pub wrong_name: (PathBuf, PathBuf),
    /// A certificate for 127.0.0.1 from a CA nobody trusts.
    pub unknown_issuer: (PathBuf, PathBuf),
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    dir: &Path,
    file: &str,
    names: &[&str],
    issuer: &Issuer<'_, KeyPair>,
    expired: bool,
) -> (PathBuf, PathBuf) {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if expired {
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{file}.pem")),
        dir.join(format!("{file}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

pub static PKI: Lazy<Pki> = Lazy::new(|| {
    let dir = super::target_dir().join(format!("test-pki-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trusted = ca("wshandle test CA");
    let stranger = ca("nobody trusts this CA");
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, trusted.pem()).unwrap();
    let names = ["127.0.0.1", "localhost"];
    Pki {
        ca: ca_path,
        good: leaf(&dir, "good", &names, &trusted, false),
        expired: leaf(&dir, "expired", &names, &trusted, true),
        wrong_name: leaf(&dir, "wrong-name", &["other.example"], &trusted, false),
        unknown_issuer: leaf(&dir, "unknown-issuer", &names, &stranger, false),
    }
});
