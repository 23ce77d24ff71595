//! TLS in front of the simulated upstream, with the test certificate of switchyard-sim's `tls/` (for 127.0.0.1
//! and localhost; `ca.pem` is its CA, which a child process trusts through `SSL_CERT_FILE`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use switchyard_sim::tls_file;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A TLS server config with the test certificate, offering the ALPN protocols `alpn` (in preference order).
pub fn acceptor(alpn: &[&[u8]]) -> TlsAcceptor {
    let certs = CertificateDer::pem_file_iter(tls_file("server.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

/// A TLS front on 127.0.0.1 that passes what each connection carries to `plain`.
pub struct TlsFront {
    pub addr: SocketAddr,
    /// The ALPN protocol each accepted connection agreed on (`-` for none), in order.
    pub negotiated: Arc<Mutex<Vec<String>>>,
}

impl TlsFront {
    /// A front offering `alpn`.
    pub async fn start(plain: SocketAddr, alpn: &[&[u8]]) -> TlsFront {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = acceptor(alpn);
        let negotiated = Arc::new(Mutex::new(Vec::new()));
        let record = negotiated.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, record) = (acceptor.clone(), record.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let protocol = tls.get_ref().1.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
                    record.lock().unwrap().push(protocol.unwrap_or_else(|| "-".to_owned()));
                    let mut upstream = TcpStream::connect(plain).await.unwrap();
                    let _ = copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
        TlsFront { addr, negotiated }
    }
}
