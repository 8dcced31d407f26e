//! TLS configuration with rustls: the system trust store by default (what libcurl and WinHTTP
//! users expect on Linux), a private CA bundle, client and server certificates, and an
//! explicit opt-out of verification for tests.

use std::sync::Arc;

use once_cell::sync::Lazy;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::error::{Error, Result, WS_ERROR_SECURE_FAILURE};

/// TLS settings of a handle (the `WS_OPTION_TLS_*` options).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM bundle that replaces the system roots.
    pub ca_file: Option<String>,
    /// Skip certificate and host-name checks.
    pub insecure: bool,
    /// A PEM certificate chain: a listener's, or a client certificate.
    pub cert_file: Option<String>,
    /// The PEM private key for `cert_file`.
    pub key_file: Option<String>,
}

fn secure(detail: impl Into<String>) -> Error {
    Error::new(WS_ERROR_SECURE_FAILURE, detail)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The system's trust store, loaded once per process.
static SYSTEM_ROOTS: Lazy<std::result::Result<Arc<RootCertStore>, String>> = Lazy::new(|| {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "no trusted root certificates were found on this system ({}): install the ca-certificates package or set WS_OPTION_TLS_CA_FILE",
            found.errors.first().map_or("none found".to_owned(), |e| e.to_string())
        ));
    }
    Ok(Arc::new(roots))
});

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| secure(format!("cannot read certificates from {path}: {e}")))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| secure(format!("cannot parse the PEM file {path}: {e}")))?;
    if certs.is_empty() {
        return Err(secure(format!("{path} holds no PEM certificate")));
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| secure(format!("cannot read a PEM private key from {path}: {e}")))
}

fn cert_and_key(
    o: &TlsOptions,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
    match (&o.cert_file, &o.key_file) {
        (Some(c), Some(k)) => Ok(Some((load_certs(c)?, load_key(k)?))),
        (None, None) => Ok(None),
        _ => Err(secure(
            "set both WS_OPTION_TLS_CERT_FILE and WS_OPTION_TLS_KEY_FILE, or neither",
        )),
    }
}

/// A client session for `host`, fed the bytes that already arrived on the stream (behind a
/// proxy's answer: the start of the server's TLS records).
pub fn client_session(o: &TlsOptions, host: &str, early: &[u8]) -> Result<rustls::Connection> {
    let config = client_config(o)?;
    let mut session: rustls::Connection = rustls::ClientConnection::new(config, server_name(host)?)
        .map_err(|e| secure(format!("TLS set-up failed: {e}")))?
        .into();
    let mut rest = early;
    while !rest.is_empty() {
        session
            .read_tls(&mut rest)
            .map_err(|e| Error::connection(format!("TLS failed: {e}")))?;
        session
            .process_new_packets()
            .map_err(|e| secure(describe(&e, host)))?;
    }
    Ok(session)
}

/// The client configuration for these options.
pub fn client_config(o: &TlsOptions) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| secure(format!("TLS set-up failed: {e}")))?;
    let builder = if o.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    } else {
        let roots = match &o.ca_file {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in load_certs(path)? {
                    roots
                        .add(cert)
                        .map_err(|e| secure(format!("{path}: not a usable CA certificate: {e}")))?;
                }
                Arc::new(roots)
            }
            None => SYSTEM_ROOTS.clone().map_err(secure)?,
        };
        builder.with_root_certificates(roots)
    };
    let config = match cert_and_key(o)? {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| secure(format!("the client certificate or key is not usable: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The server configuration for these options (a certificate and key are required).
pub fn server_config(o: &TlsOptions) -> Result<Arc<ServerConfig>> {
    let (certs, key) = cert_and_key(o)?.ok_or_else(|| {
        secure("a wss:// listener needs WS_OPTION_TLS_CERT_FILE and WS_OPTION_TLS_KEY_FILE")
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| secure(format!("TLS set-up failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| secure(format!("the certificate or key is not usable: {e}")))?;
    Ok(Arc::new(config))
}

/// The name to verify and send as SNI (an IP address is verified, and sent as no SNI).
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| secure(format!("{host:?} is not a valid TLS server name")))
}

/// Says what went wrong in words a user can act on.
pub fn describe(e: &rustls::Error, host: &str) -> String {
    use rustls::{CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer) => format!(
            "the certificate of {host} was issued by an unknown certificate authority (unknown issuer); set WS_OPTION_TLS_CA_FILE to trust a private CA"
        ),
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("the certificate of {host} has expired")
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            format!("the certificate of {host} is not valid yet")
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!("the certificate is not valid for the name {host} (name mismatch)")
        }
        E::InvalidCertificate(other) => format!("the certificate of {host} is invalid: {other:?}"),
        E::AlertReceived(alert) => format!("{host} ended the TLS handshake with the alert {alert:?}"),
        other => format!("TLS with {host} failed: {other}"),
    }
}

/// `WS_OPTION_TLS_INSECURE_SKIP_VERIFY`: accepts any certificate for any name. Handshake
/// signatures are still checked, so the peer must hold the key of the certificate it shows.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
