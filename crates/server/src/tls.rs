//! TLS for the HTTPS listener: the operator's certificate and key, or a self-signed pair made on
//! first start in the data folder (ssl_encryption.md: Enterprise Manager also installs a
//! self-signed certificate by default).

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A TLS set-up problem, with the file it concerns.
#[derive(thiserror::Error, Debug)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("TLS: {0}")]
    Config(String),
}

/// The certificate in use and its SHA-256 fingerprint (hex, colon separated).
pub struct TlsSetup {
    pub config: Arc<rustls::ServerConfig>,
    pub fingerprint: String,
    pub generated: bool,
}

fn file_err(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn write_private(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| file_err(&tmp, e))?;
    f.write_all(data).map_err(|e| file_err(&tmp, e))?;
    f.sync_all().map_err(|e| file_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_err(path, e))
}

/// Load `cert`/`key` when given, else the pair in `data_dir/tls`, generating it when missing.
pub fn setup(
    data_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<TlsSetup, TlsError> {
    let (cert_path, key_path, generated) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf(), false),
        (None, None) => {
            let dir = data_dir.join("tls");
            let c = dir.join("cert.pem");
            let k = dir.join("key.pem");
            let mut generated = false;
            if !c.exists() || !k.exists() {
                std::fs::create_dir_all(&dir).map_err(|e| file_err(&dir, e))?;
                let host = hostname();
                let names = vec![host, "localhost".to_string(), "127.0.0.1".to_string()];
                let ck = rcgen::generate_simple_self_signed(names)
                    .map_err(|e| TlsError::Config(format!("cannot generate a certificate: {e}")))?;
                write_private(&k, ck.key_pair.serialize_pem().as_bytes(), 0o600)?;
                write_private(&c, ck.cert.pem().as_bytes(), 0o644)?;
                generated = true;
            }
            (c, k, generated)
        }
        _ => {
            return Err(TlsError::Config(
                "--tls-cert and --tls-key must be given together".into(),
            ))
        }
    };
    let cert_pem = std::fs::read(&cert_path).map_err(|e| file_err(&cert_path, e))?;
    let key_pem = std::fs::read(&key_path).map_err(|e| file_err(&key_path, e))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&cert_path, e))?;
    let first = certs
        .first()
        .ok_or_else(|| file_err(&cert_path, "no certificate found in the PEM file"))?;
    let fingerprint = Sha256::digest(first.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| file_err(&key_path, e))?
        .ok_or_else(|| file_err(&key_path, "no private key found in the PEM file"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsSetup {
        config: Arc::new(config),
        fingerprint,
        generated,
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
