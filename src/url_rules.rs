//! Where the gateway will send requests: the rules an upstream server URL must pass before it
//! is stored (absolute http(s), no userinfo — credentials belong in the vault —, not the
//! gateway's own origin, and unless the deployment allows private upstreams a public target: no
//! loopback, private, link-local, CGNAT, unique-local or otherwise special address, however it
//! is spelled), and the host classification other outbound URLs (client metadata documents,
//! redirect URIs) share.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Why a URL was refused (the text is shown to the admin; it never echoes userinfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Not an absolute http(s) URL with a host.
    Malformed,
    /// `user:pass@` in the URL.
    Userinfo,
    /// A loopback, private, link-local or otherwise non-public target.
    NonPublic,
    /// The gateway's own origin (a request loop).
    OwnOrigin,
}

impl UrlRefusal {
    pub fn message(&self) -> &'static str {
        match self {
            UrlRefusal::Malformed => "url must be an absolute http(s) URL",
            UrlRefusal::Userinfo => {
                "url must not contain user information (user:password@); credentials belong in the vault (PUT /admin/v1/servers/{slug}/credentials)"
            }
            UrlRefusal::NonPublic => {
                "url targets a loopback, private, link-local or otherwise non-public address; this deployment does not allow private upstreams (ALLOW_PRIVATE_UPSTREAMS)"
            }
            UrlRefusal::OwnOrigin => "url is the gateway's own origin",
        }
    }
}

/// Checks an upstream URL. `own_origin` is the gateway's public origin (`scheme://host[:port]`).
pub fn check(raw: &str, allow_private: bool, own_origin: &str) -> Result<Url, UrlRefusal> {
    let url = Url::parse(raw).map_err(|_| UrlRefusal::Malformed)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(UrlRefusal::Malformed);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Userinfo);
    }
    if Url::parse(own_origin).is_ok_and(|o| o.origin() == url.origin()) {
        return Err(UrlRefusal::OwnOrigin);
    }
    if !allow_private && !host_is_public(&url) {
        return Err(UrlRefusal::NonPublic);
    }
    Ok(url)
}

/// Whether the URL's host may be public. The `url` parser has already normalized numeric IPv4
/// spellings (`2130706433`, `0177.0.0.1`, `0x7f.1`) to addresses. A hostname is accepted unless
/// it is `localhost` (or under it): a Worker has no DNS API, so a name that resolves to a private
/// address cannot be caught here (documented in docs/tenancy.md).
pub fn host_is_public(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(a)) => ipv4_is_public(a),
        Some(Host::Ipv6(a)) => ipv6_is_public(a),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            !(d.is_empty() || d == "localhost" || d.ends_with(".localhost"))
        }
        None => false,
    }
}

/// A literal loopback address (`127.0.0.0/8`, `[::1]`) or `localhost`: decided on the parsed
/// host, never on a string prefix (`http://127.0.0.1@evil.example/` is not loopback).
pub fn is_loopback_host(u: &Url) -> bool {
    match u.host() {
        Some(Host::Ipv4(a)) => a.is_loopback(),
        Some(Host::Ipv6(a)) => a.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

pub fn ip_is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => ipv4_is_public(a),
        IpAddr::V6(a) => ipv6_is_public(a),
    }
}

fn in_v4(a: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    (u32::from(a) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

/// IPv4 ranges that are not public unicast (IANA special-purpose registry, RFC 6890).
const V4_NON_PUBLIC: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", incl. 0.0.0.0
    ([10, 0, 0, 0], 8),      // RFC 1918
    ([100, 64, 0, 0], 10),   // CGNAT (RFC 6598)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local (cloud metadata endpoints live here)
    ([172, 16, 0, 0], 12),   // RFC 1918
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // RFC 1918
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation
    ([203, 0, 113, 0], 24),  // documentation
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, incl. broadcast
];

pub fn ipv4_is_public(a: Ipv4Addr) -> bool {
    !V4_NON_PUBLIC.iter().any(|(net, p)| in_v4(a, *net, *p))
}

pub fn ipv6_is_public(a: Ipv6Addr) -> bool {
    let s = a.segments();
    // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d) forms reach
    // IPv4 hosts through an IPv6 spelling: never a reason to use them for an upstream.
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return false;
    }
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4 address: judge that address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return ipv4_is_public(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if s[0] == 0x2002 {
        return ipv4_is_public(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    let non_public = a.is_unspecified()
        || a.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: tunnels to an IPv4 host
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]); // discard-only 100::/64
    !non_public
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "https://gw.example.com";

    fn refused(u: &str) -> Option<UrlRefusal> {
        check(u, false, OWN).err()
    }

    #[test]
    fn numeric_ipv4_spellings_of_loopback_are_refused() {
        for u in [
            "http://127.0.0.1/mcp",
            "http://127.1/mcp",
            "http://2130706433/mcp",
            "http://0177.0.0.1/mcp",
            "http://0x7f.1/mcp",
            "http://0x7f000001/mcp",
            "http://017700000001/mcp",
            "http://127.000.000.001/mcp",
            "http://0/mcp",
            "http://0.0.0.0:8080/mcp",
        ] {
            assert_eq!(refused(u), Some(UrlRefusal::NonPublic), "{u}");
        }
    }

    #[test]
    fn private_and_special_ipv4_ranges_are_refused() {
        for u in [
            "http://10.0.0.1/",
            "http://10.255.255.255/",
            "http://172.16.0.1/",
            "http://172.31.255.254/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://100.127.255.254/",
            "http://192.0.0.8/",
            "http://198.18.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://0xa9fea9fe/", // 169.254.169.254 in hex
        ] {
            assert_eq!(refused(u), Some(UrlRefusal::NonPublic), "{u}");
        }
    }

    #[test]
    fn ipv6_non_public_forms_are_refused() {
        for u in [
            "http://[::1]/",
            "http://[::]/",
            "http://[fc00::1]/",
            "http://[fd12:3456::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:8.8.8.8]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:c0a8:0101::1]/",
            "http://[ff02::1]/",
            "http://[2001:db8::1]/",
        ] {
            assert_eq!(refused(u), Some(UrlRefusal::NonPublic), "{u}");
        }
    }

    #[test]
    fn localhost_names_are_refused() {
        for u in [
            "http://localhost/",
            "http://LOCALHOST:9/",
            "http://a.localhost/",
            "http://localhost./",
        ] {
            assert_eq!(refused(u), Some(UrlRefusal::NonPublic), "{u}");
        }
    }

    #[test]
    fn public_targets_pass() {
        for u in [
            "https://mcp.example.com/mcp",
            "http://8.8.8.8/",
            "http://100.63.255.255/",
            "http://100.128.0.1/",
            "http://172.15.255.255/",
            "http://172.32.0.1/",
            "http://[2606:4700::1111]/",
            "http://[64:ff9b::808:808]/",
            "https://11.0.0.1:8443/x",
        ] {
            assert_eq!(check(u, false, OWN).map(|_| ()), Ok(()), "{u}");
        }
    }

    #[test]
    fn userinfo_is_refused_even_where_private_targets_are_allowed() {
        for u in [
            "http://user:pass@example.com/",
            "http://user@example.com/",
            "http://:pw@127.0.0.1/",
        ] {
            assert_eq!(check(u, true, OWN).err(), Some(UrlRefusal::Userinfo), "{u}");
        }
        // `127.0.0.1@evil` is userinfo, not a host.
        assert_eq!(
            check("http://127.0.0.1@evil.example/", true, OWN).err(),
            Some(UrlRefusal::Userinfo)
        );
    }

    #[test]
    fn own_origin_and_malformed_are_refused() {
        assert_eq!(
            check("https://gw.example.com/mcp/x", true, OWN).err(),
            Some(UrlRefusal::OwnOrigin)
        );
        assert_eq!(
            check("https://GW.example.com:443/mcp", true, OWN).err(),
            Some(UrlRefusal::OwnOrigin)
        );
        assert!(
            check("https://gw.example.com:8443/mcp", true, OWN).is_ok(),
            "another port is another origin"
        );
        for u in ["ftp://x/", "not a url", "file:///etc/passwd", "http://"] {
            assert_eq!(check(u, true, OWN).err(), Some(UrlRefusal::Malformed), "{u}");
        }
    }

    #[test]
    fn private_targets_pass_when_allowed() {
        assert!(check("http://127.0.0.1:9/mcp", true, OWN).is_ok());
        assert!(check("http://[::1]:9/mcp", true, OWN).is_ok());
    }
}
