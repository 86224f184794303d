//! TLS termination for the public listener (`GATEWAY_TLS_CERT`, `GATEWAY_TLS_KEY`), with
//! rustls and its ring provider.
//!
//! - TLS 1.3 and 1.2 only; ALPN offers `h2` and `http/1.1`, and the protocol the client
//!   picks decides how the connection is served (no ALPN: HTTP/1.1).
//! - The certificate chain and key are PEM files, read at start-up (a missing or unreadable
//!   file, a key that does not match the certificate: the gateway does not start) and again
//!   on SIGHUP. A reload that fails is logged and changes nothing; one that succeeds applies
//!   to the handshakes after it, while connections already open keep theirs.
//! - With `GATEWAY_TLS_CLIENT_CA`, client certificates are verified against that CA bundle:
//!   required (`GATEWAY_TLS_CLIENT_AUTH=required`, the default then) or checked when given
//!   (`optional`). A handshake with a bad or missing required certificate fails; nothing
//!   reaches the phases.
//! - A verified client certificate is described to upstreams in `X-Forwarded-Client-Cert`
//!   (the form Envoy uses): `Hash=<SHA-256 of the DER, hex>;Subject="<RFC 4514>"`, then
//!   `;DNS=<name>` and `;URI=<uri>` for each subject alternative name of those kinds. The
//!   gateway removes any `X-Forwarded-Client-Cert` a client sends, so an upstream can trust
//!   the header.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderValue;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// Whether clients must present a certificate when a client CA is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A verified client certificate is required for the handshake.
    Required,
    /// A client certificate is verified when given; clients without one are served too.
    Optional,
}

/// Where the listener's TLS material is (`GATEWAY_TLS_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) client certificates are verified against.
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required, when `client_ca` is set.
    pub client_auth: ClientAuth,
}

/// The listener's TLS configuration, replaced whole on reload.
#[derive(Debug)]
pub struct Tls {
    settings: TlsSettings,
    config: ArcSwap<ServerConfig>,
}

impl Tls {
    /// Reads the certificate, key and client CA; every problem names its file.
    pub fn load(settings: TlsSettings) -> Result<Tls, String> {
        let config = build(&settings)?;
        Ok(Tls {
            settings,
            config: ArcSwap::from_pointee(config),
        })
    }

    /// Reads the files again; on any error, keeps the configuration it has and says why.
    pub fn reload(&self) -> Result<(), String> {
        let config = build(&self.settings)?;
        self.config.store(Arc::new(config));
        Ok(())
    }

    /// The acceptor for the next handshake.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.load_full())
    }
}

fn build(s: &TlsSettings) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&s.cert)?;
    let key = PrivateKeyDer::from_pem_file(&s.key)
        .map_err(|e| format!("GATEWAY_TLS_KEY: {}: {e}", s.key.display()))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match &s.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("GATEWAY_TLS_CLIENT_CA: {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match s.client_auth {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("GATEWAY_TLS_CLIENT_CA: {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "GATEWAY_TLS_CERT and GATEWAY_TLS_KEY: {} and {}: {e}",
            s.cert.display(),
            s.key.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Every certificate of a PEM file; at least one. The error names the file.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let what = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| what(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| what(&e))?;
    if certs.is_empty() {
        return Err(what(&"no PEM certificate in the file"));
    }
    Ok(certs)
}

/// What the handshake settled for one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Session {
    /// The client chose HTTP/2 by ALPN.
    pub(crate) h2: bool,
    /// The client's verified certificate as an `X-Forwarded-Client-Cert` value.
    pub(crate) client_cert: Option<HeaderValue>,
    /// Who it names: the subject's common name, or the whole subject without one.
    pub(crate) client_identity: Option<Arc<str>>,
}

impl Session {
    pub(crate) fn of(conn: &rustls::ServerConnection) -> Session {
        let leaf = conn.peer_certificates().and_then(<[_]>::first);
        Session {
            h2: conn.alpn_protocol() == Some(b"h2"),
            client_cert: leaf.and_then(|leaf| forwarded_client_cert(leaf.as_ref())),
            client_identity: leaf.and_then(|leaf| identity(leaf.as_ref())),
        }
    }
}

/// The subject's common name of a certificate's DER, or its whole subject (RFC 4514) when
/// it has none; `None` when it cannot be parsed or the subject is empty.
pub(crate) fn identity(der: &[u8]) -> Option<Arc<str>> {
    use x509_cert::der::Decode as _;
    use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
    const CN: x509_cert::der::oid::ObjectIdentifier =
        x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let subject = &cert.tbs_certificate.subject;
    let cn = subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == CN)
        .and_then(|atv| {
            atv.value
                .decode_as::<Utf8StringRef<'_>>()
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    atv.value
                        .decode_as::<PrintableStringRef<'_>>()
                        .map(|s| s.as_str().to_owned())
                })
                .ok()
        });
    let who = cn.unwrap_or_else(|| subject.to_string());
    (!who.is_empty()).then(|| Arc::from(who))
}

/// `Hash=…;Subject="…";DNS=…;URI=…` for a certificate's DER; `None` when it cannot be
/// parsed (rustls has verified it, so only an unusual encoding gets here) or the text is
/// no header value.
pub(crate) fn forwarded_client_cert(der: &[u8]) -> Option<HeaderValue> {
    use sha2::Digest as _;
    use x509_cert::der::Decode as _;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::pkix::name::GeneralName;

    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let mut hash = [0u8; 64];
    crate::observe::trace::hex_into(&sha2::Sha256::digest(der), &mut hash);
    let mut out = String::from("Hash=");
    out.push_str(std::str::from_utf8(&hash).ok()?);
    out.push_str(";Subject=");
    gatewayc_vocab::headers::push_quoted(&mut out, &[&cert.tbs_certificate.subject.to_string()]);
    if let Ok(Some((_, sans))) = cert.tbs_certificate.get::<SubjectAltName>() {
        for name in sans.0 {
            let (kind, value) = match &name {
                GeneralName::DnsName(d) => ("DNS", d.as_str()),
                GeneralName::UniformResourceIdentifier(u) => ("URI", u.as_str()),
                _ => continue,
            };
            // Separators inside a value would change the header's structure: such names
            // are left out rather than escaped.
            if value
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b";,=\"".contains(&b))
            {
                out.push(';');
                out.push_str(kind);
                out.push('=');
                out.push_str(value);
            }
        }
    }
    HeaderValue::from_str(&out).ok()
}
