//! The client address behind a load balancer. A connection's peer is the client, unless the
//! peer is a trusted proxy (`--trusted-proxy CIDR`, [`TrustedProxies`]); then the client is
//! read from what that proxy says, and from nowhere else:
//!
//! - a PROXY protocol header (v1 text or v2 binary, as HAProxy, AWS NLB and others send it)
//!   before the TLS handshake, read only on a connection from a trusted peer
//!   (`read_proxy_header`); an untrusted peer's header is not read, and its TLS handshake
//!   fails on it;
//! - `X-Forwarded-For` on each request (`forwarded_client`): the rightmost hop that is not a
//!   trusted proxy, as each proxy appends the address it received the request from; the hops
//!   to its left are the client's own word and are ignored.
//!
//! An untrusted peer's `X-Forwarded-For` is ignored: it cannot choose the address it is
//! audited and rate-limited under.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::ServerError;

/// The networks whose connections are load balancers or reverse proxies to believe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trusts the given networks (none: every peer is the client).
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    /// Whether `address` (IPv4-mapped IPv6 as IPv4) is in a trusted network.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// Whether no network is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = ServerError;

    /// A comma-separated list of CIDRs (`10.0.0.0/8,fd00::/8`); a bare address is its /32 or
    /// /128.
    fn from_str(text: &str) -> Result<Self, ServerError> {
        let mut networks = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            networks.push(parse_network(item)?);
        }
        Ok(Self(networks))
    }
}

/// One CIDR, or a bare address as its host network.
pub fn parse_network(text: &str) -> Result<IpNet, ServerError> {
    let text = text.trim();
    IpNet::from_str(text)
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| {
            ServerError::InvalidInput(format!(
                "a trusted proxy is a CIDR like 10.0.0.0/8 or an address (got \"{}\")",
                text.chars().take(64).collect::<String>().escape_debug()
            ))
        })
}

/// One `X-Forwarded-For` hop: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    IpAddr::from_str(hop)
        .ok()
        .or_else(|| SocketAddr::from_str(hop).ok().map(|s| s.ip()))
        .or_else(|| {
            let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
            IpAddr::from_str(inner).ok()
        })
        .map(|ip| ip.to_canonical())
}

/// The client of a request that came from `peer`: `peer` itself unless it is trusted; else the
/// rightmost `X-Forwarded-For` hop that is not trusted (all header lines, in order). Walking
/// stops at a hop that is not an address (the trusted hop to its right is the client then),
/// and if every hop is trusted the leftmost one is the client.
pub(crate) fn forwarded_client(
    peer: IpAddr,
    trusted: &TrustedProxies,
    headers: &HeaderMap,
) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let values = headers.get_all("x-forwarded-for");
    let mut hops: Vec<&str> = Vec::new();
    for value in values {
        let Ok(text) = value.to_str() else {
            // Not ASCII: no hop of it can be believed, nor any to its left.
            hops.clear();
            continue;
        };
        hops.extend(text.split(','));
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// The PROXY protocol v2 signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 header is at most 107 bytes, CRLF included.
const V1_MAX: usize = 107;

/// Reads a PROXY protocol header (v1 or v2) if the connection starts with one, and returns the
/// source address it names: `Ok(None)` if the connection starts with anything else (a TLS
/// ClientHello: nothing is consumed) or the header names no address (v1 `UNKNOWN`, v2 `LOCAL`
/// health checks, UNIX sockets). Call it only for a trusted peer. An error for a malformed
/// header (the connection is to be closed).
pub(crate) async fn read_proxy_header(
    stream: &mut TcpStream,
) -> Result<Option<IpAddr>, std::io::Error> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    match first[0] {
        b'P' => {
            let mut line = Vec::with_capacity(V1_MAX);
            while !line.ends_with(b"\r\n") {
                if line.len() >= V1_MAX {
                    return Err(bad("PROXY v1 header too long"));
                }
                line.push(stream.read_u8().await?);
            }
            let text = std::str::from_utf8(&line).map_err(|_| bad("PROXY v1 header not text"))?;
            let header =
                ppp::v1::Header::try_from(text).map_err(|_| bad("malformed PROXY v1 header"))?;
            Ok(match header.addresses {
                ppp::v1::Addresses::Tcp4(a) => Some(IpAddr::V4(a.source_address)),
                ppp::v1::Addresses::Tcp6(a) => Some(IpAddr::V6(a.source_address).to_canonical()),
                ppp::v1::Addresses::Unknown => None,
            })
        }
        b'\r' => {
            let mut fixed = [0u8; 16];
            stream.read_exact(&mut fixed).await?;
            if fixed[..12] != V2_SIGNATURE {
                return Err(bad("not a PROXY v2 header"));
            }
            let length = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
            let mut whole = fixed.to_vec();
            whole.resize(16 + length, 0);
            stream.read_exact(&mut whole[16..]).await?;
            let header = ppp::v2::Header::try_from(whole.as_slice())
                .map_err(|_| bad("malformed PROXY v2 header"))?;
            if header.command == ppp::v2::Command::Local {
                return Ok(None);
            }
            Ok(match header.addresses {
                ppp::v2::Addresses::IPv4(a) => Some(IpAddr::V4(a.source_address)),
                ppp::v2::Addresses::IPv6(a) => Some(IpAddr::V6(a.source_address).to_canonical()),
                ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
            })
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bad trusted-proxy entry is quoted in the refusal as given, with control characters
    /// escaped (a configuration value cannot forge a second log line).
    #[test]
    fn a_bad_network_is_quoted_escaped() {
        let e = parse_network("10.0.0.0/33").unwrap_err().to_string();
        assert!(e.ends_with("(got \"10.0.0.0/33\")"), "{e}");
        let e = parse_network("x\ny").unwrap_err().to_string();
        assert!(e.ends_with("(got \"x\\ny\")") && !e.contains('\n'), "{e}");
    }
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn lb() -> TrustedProxies {
        "10.0.0.0/8, 192.168.1.1".parse().unwrap()
    }

    /// Proves a client that is not a trusted proxy cannot choose its audited address: its
    /// `X-Forwarded-For` is ignored.
    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let headers = xff(&["1.2.3.4"]);
        assert_eq!(
            forwarded_client(ip("203.0.113.7"), &lb(), &headers),
            ip("203.0.113.7")
        );
        let nobody = TrustedProxies::default();
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), &nobody, &headers),
            ip("10.0.0.1")
        );
    }

    /// Proves the rightmost untrusted hop is taken, not the leftmost one a client can forge.
    #[test]
    fn a_trusted_peer_gives_the_rightmost_untrusted_hop() {
        let headers = xff(&["6.6.6.6, 198.51.100.9", "10.1.2.3"]);
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), &lb(), &headers),
            ip("198.51.100.9")
        );
        let headers = xff(&["198.51.100.9:4711"]);
        assert_eq!(
            forwarded_client(ip("192.168.1.1"), &lb(), &headers),
            ip("198.51.100.9")
        );
        let headers = xff(&["[2001:db8::1]:443"]);
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), &lb(), &headers),
            ip("2001:db8::1")
        );
        assert_eq!(
            forwarded_client(ip("::ffff:10.0.0.1"), &lb(), &xff(&["1.1.1.1"])),
            ip("1.1.1.1")
        );
    }

    /// Proves garbage in the header stops the walk at the trusted hop beside it, and a missing
    /// header leaves the peer.
    #[test]
    fn garbage_or_nothing_stops_at_the_last_trusted_hop() {
        let headers = xff(&["1.1.1.1, unknown, 10.9.9.9"]);
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), &lb(), &headers),
            ip("10.9.9.9")
        );
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), &lb(), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        let headers = xff(&["10.2.2.2, 10.3.3.3"]);
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), &lb(), &headers),
            ip("10.2.2.2")
        );
    }

    #[test]
    fn networks_parse_or_are_refused() {
        assert!(lb().contains(ip("10.255.0.1")));
        assert!(lb().contains(ip("192.168.1.1")));
        assert!(!lb().contains(ip("192.168.1.2")));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("example.com".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
    }
}
